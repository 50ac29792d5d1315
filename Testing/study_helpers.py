"""Small study folders for the study tests (tiny grids, written with plain SimpleITK)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk


def tiny_image(shape_kji=(6, 7, 8), seed: int = 0, spacing=(1.5, 1.5, 2.0), origin=(-5.0, 3.0, 7.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(np.random.default_rng(seed).random(shape_kji).astype(np.float32) * 100)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def like(image: sitk.Image, array: np.ndarray) -> sitk.Image:
    result = sitk.GetImageFromArray(array)
    result.CopyInformation(image)
    return result


def make_study_folder(folder: Path, *, with_tissue: bool = True) -> Path:
    """A valid glioma study: 2 timepoints × 2 modalities, a seg at tp0, tissue maps."""
    folder.mkdir(parents=True)
    manifest = {"format": "hybridneuro-study/1", "subject": "s01", "disease": "glioma",
                "timepoints": [{"id": "tp0", "day": 0}, {"id": "tp1", "day": 45.5}], "predict_days": [90, 180]}
    for n, tp in enumerate(("tp0", "tp1")):
        (folder / tp).mkdir()
        for m, key in enumerate(("t1n", "t2f")):
            sitk.WriteImage(tiny_image(seed=10 * n + m), str(folder / tp / f"{key}.nii.gz"))
    seg = np.zeros((6, 7, 8), np.uint8)
    seg[2:4, 2:5, 3:6] = 2
    seg[3, 3, 4] = 1
    sitk.WriteImage(like(tiny_image(), seg), str(folder / "tp0" / "seg.nii.gz"))
    if with_tissue:
        manifest["tissue"] = "tissue"
        (folder / "tissue").mkdir()
        rng = np.random.default_rng(5)
        raw = rng.random((3, 6, 7, 8)).astype(np.float32)
        raw /= raw.sum(axis=0)
        for key, array in zip(("gm", "wm", "csf"), raw):
            sitk.WriteImage(like(tiny_image(), array), str(folder / "tissue" / f"{key}.nii.gz"))
    (folder / "study.json").write_text(json.dumps(manifest, indent=2))
    return folder


def folder_digest(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` with the SHA-256 of its bytes (proves nothing was written)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
