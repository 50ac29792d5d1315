"""Truth labels from the two densities, the mass-effect displacement, and the truth folder.

    >>> import numpy as np
    >>> from HybridNeuroLib.synth.truth import truth_labels
    >>> u = np.array([0.1, 0.3, 0.8, 0.2, 0.5]); n = np.array([0.0, 0.0, 0.1, 0.6, 0.0])
    >>> truth_labels(u, n, edema_threshold=0.25, enhancing_threshold=0.65).tolist()
    [0, 2, 3, 1, 2]

BraTS 2023 labels from proliferating density u and necrotic density n (c = u + n):
edema (2) where c ≥ θ_FLAIR; enhancing tumour (3) where u ≥ θ_T1Gd; non-enhancing /
necrotic core (1) where c ≥ θ_T1Gd but u < θ_T1Gd (dense, but not enough viable cells to
enhance). The rendered images use the same thresholds, so labels match what is visible.

Truth folder (next to, never inside, the study folder)::

    parameters.json               every parameter, the seed, grid, days, volumes, attribution
    tissue/gm|wm|csf.nii.gz       the subject's anatomy the lesion grew in (first scan's space)
    day-<d>/proliferating.nii.gz  u at day d (every observed and every prediction day)
    day-<d>/necrotic.nii.gz       n at day d
    day-<d>/labels.nii.gz         the labels above
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from HybridNeuroLib.geometry import ImageGeometry

TRUTH_FORMAT = "hybridneuro-synth-truth/1"


def truth_labels(u: np.ndarray, n: np.ndarray, *, edema_threshold: float, enhancing_threshold: float) -> np.ndarray:
    total = np.asarray(u) + np.asarray(n)
    labels = np.zeros(total.shape, np.uint8)
    labels[total >= edema_threshold] = 2
    labels[total >= enhancing_threshold] = 1
    labels[np.asarray(u) >= enhancing_threshold] = 3
    return labels


def mass_effect_displacement(total: np.ndarray, spacing_kji_mm, largest_mm: float) -> np.ndarray:
    """Pull displacement ``[3, k, j, i]`` (mm) along ∇(G_σ∗c), largest magnitude ``largest_mm``.

    Sampling the anatomy at x + d(x), nearer the lesion, pushes the tissue outward.
    """
    radius_mm = max(4.0, (float((total >= 0.25).sum()) * float(np.prod(spacing_kji_mm)) * 3 / (4 * np.pi)) ** (1 / 3))
    smooth = ndimage.gaussian_filter(total.astype(np.float64), [radius_mm / h for h in spacing_kji_mm])
    gradient = np.stack(np.gradient(smooth, *spacing_kji_mm))
    peak = float(np.sqrt((gradient ** 2).sum(axis=0)).max())
    scale = largest_mm / peak if peak > 0 else 0.0
    return (gradient * scale).astype(np.float32)


def day_folder_name(day: float) -> str:
    return f"day-{day:g}"


def write_truth(folder: Path, geometry: ImageGeometry, tissue: dict[str, np.ndarray],
                densities: dict[float, tuple[np.ndarray, np.ndarray]], labels: dict[float, np.ndarray],
                record: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in tissue.items():
        (folder / "tissue").mkdir(exist_ok=True)
        sitk.WriteImage(geometry.image_from_array(array.astype(np.float32)), str(folder / "tissue" / f"{key}.nii.gz"),
                        useCompression=True)
    for day, (u, n) in densities.items():
        day_folder = folder / day_folder_name(day)
        day_folder.mkdir(exist_ok=True)
        for name, array in (("proliferating", u), ("necrotic", n), ("labels", labels[day])):
            sitk.WriteImage(geometry.image_from_array(array), str(day_folder / f"{name}.nii.gz"), useCompression=True)
    (folder / "parameters.json").write_text(json.dumps({"format": TRUTH_FORMAT, **record}, indent=2, sort_keys=True)
                                            + "\n", encoding="utf-8")
    return folder
