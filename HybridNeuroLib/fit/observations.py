"""Observed lesions made ready to fit: checked, put on the fitting grid, as soft whole-tumour/core masks.

    >>> import numpy as np, SimpleITK as sitk
    >>> from HybridNeuroLib.geometry import ImageGeometry
    >>> from HybridNeuroLib.physics import TissueMaps
    >>> from HybridNeuroLib.fit.observations import prepare_observations
    >>> grid = ImageGeometry((16, 16, 16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    >>> wm = np.ones(grid.shape_kji, np.float32)
    >>> tissue = TissueMaps(gm=0 * wm, wm=wm, csf=0 * wm, geometry=grid)
    >>> seg = np.zeros(grid.shape_kji, np.uint8); seg[6:10, 6:10, 6:10] = 2
    >>> data = prepare_observations(tissue, [(0.0, grid.image_from_array(seg))], voxel_mm=2.0)
    >>> data.tissue.geometry.size, data.observations[0].volume_ml, round(float(data.observations[0].whole.sum()), 3)
    ((8, 8, 8), 0.064, 8.0)

Checks, each naming the offending timepoint: a timepoint with no lesion; labels that are not
finite integers; a lesion that shrinks between scans (treatment likely — the untreated model
cannot explain it, so we refuse clearly instead of fitting nonsense). Masks are resampled to
the fitting grid by linear interpolation of the 0/1 mask, so a voxel holds the fraction of it
covered by the lesion; tissue maps likewise. The fitting grid keeps the tissue grid's corner,
orientation and extent with spacing max(native, ``voxel_mm``) per axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.physics import TissueMaps


class ShrinkingLesionError(ValueError):
    """The lesion shrinks between two timepoints: treatment likely; the untreated model does not apply."""


@dataclass(frozen=True, eq=False)
class Observation:
    """One timepoint on the fitting grid: ``day`` since the first timepoint, masks as fractions in [0, 1]."""

    day: float
    whole: np.ndarray
    core: np.ndarray
    volume_ml: float        # whole tumour, measured on the native labels
    core_volume_ml: float


@dataclass(frozen=True, eq=False)
class FitData:
    """Everything a fit reads: tissue and observations on the fitting grid, the first native labels."""

    tissue: TissueMaps
    observations: tuple[Observation, ...]
    first_labels: sitk.Image
    first_day: float       # study day of the first timepoint (fit days are relative to it)


def fitting_geometry(geometry: ImageGeometry, voxel_mm: float) -> ImageGeometry:
    """The grid with spacing max(native, ``voxel_mm``) covering the same box (same corner and directions)."""
    spacing = np.maximum(np.asarray(geometry.spacing_mm), voxel_mm)
    extent = np.asarray(geometry.size) * np.asarray(geometry.spacing_mm)
    size = np.maximum(np.ceil(extent / spacing - 1e-6).astype(int), 1)
    corner = np.asarray(geometry.origin_lps_mm) - geometry.direction_lps_matrix @ (np.asarray(geometry.spacing_mm) / 2)
    origin = corner + geometry.direction_lps_matrix @ (spacing / 2)
    return ImageGeometry(tuple(int(n) for n in size), tuple(float(s) for s in spacing),
                         tuple(float(o) for o in origin), geometry.direction_lps)


def sub_box(geometry: ImageGeometry, masks: Sequence[np.ndarray], margin_mm: float
            ) -> tuple[ImageGeometry, tuple[slice, slice, slice]]:
    """The part of ``geometry`` holding every mask's voxels grown by ``margin_mm`` (clipped to the grid)."""
    index = np.argwhere(np.any([mask > 0 for mask in masks], axis=0))
    margin = np.ceil(margin_mm / np.asarray(geometry.spacing_mm[::-1])).astype(int)
    low = np.maximum(index.min(axis=0) - margin, 0)
    high = np.minimum(index.max(axis=0) + 1 + margin, geometry.shape_kji)
    origin = np.asarray(geometry.origin_lps_mm) + geometry.direction_lps_matrix @ (
        np.asarray(geometry.spacing_mm) * low[::-1])
    box = ImageGeometry(tuple(int(n) for n in (high - low)[::-1]), geometry.spacing_mm,
                        tuple(float(o) for o in origin), geometry.direction_lps)
    return box, tuple(slice(int(a), int(b)) for a, b in zip(low, high))


def resample_array(image: sitk.Image, geometry: ImageGeometry, linear: bool = True) -> np.ndarray:
    """``image`` on ``geometry`` (world space), as a float32 array ``[k, j, i]``; 0 outside."""
    reference = geometry.image_from_array(np.zeros(geometry.shape_kji, np.float32))
    resampled = sitk.Resample(sitk.Cast(image, sitk.sitkFloat32), reference, sitk.Transform(),
                              sitk.sitkLinear if linear else sitk.sitkNearestNeighbor, 0.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(resampled)


def _label_masks(day: float, labels: sitk.Image) -> tuple[sitk.Image, sitk.Image]:
    array = sitk.GetArrayFromImage(labels)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"lesion labels of day {day:g}: contain NaN or infinite values; expected BraTS labels 0–3")
    if np.any(array != np.round(array)) or array.min() < 0 or array.max() > 3:
        raise ValueError(f"lesion labels of day {day:g}: values span [{array.min()}, {array.max()}]; "
                         "expected integer BraTS labels 0–3")
    if not (array > 0).any():
        raise ValueError(f"lesion labels of day {day:g}: the lesion is empty; the model needs a visible lesion "
                         "at every timepoint used for fitting (drop this timepoint or fix its segmentation)")
    whole, core = (array > 0).astype(np.float32), ((array == 1) | (array == 3)).astype(np.float32)
    return tuple(ImageGeometry.from_image(labels).image_from_array(mask) for mask in (whole, core))


def check_growth(volumes_ml: Sequence[tuple[float, float]], shrink_tolerance: float) -> None:
    """Raise :class:`ShrinkingLesionError` if a (day, volume) pair is below ``shrink_tolerance`` × an earlier one."""
    for (day_a, volume_a), (day_b, volume_b) in zip(volumes_ml, volumes_ml[1:]):
        if volume_b < shrink_tolerance * volume_a:
            raise ShrinkingLesionError(
                f"the lesion shrinks from {volume_a:.2f} mL on day {day_a:g} to {volume_b:.2f} mL on day {day_b:g}: "
                "treatment (resection, radiotherapy, chemotherapy) likely happened between these scans, and the "
                "untreated growth model cannot explain shrinkage. Fit only the timepoints before treatment; a "
                "treatment-aware fit is not available yet.")


def prepare_observations(tissue: TissueMaps, labels_by_day: Sequence[tuple[float, sitk.Image]], *,
                         voxel_mm: float = 2.0, shrink_tolerance: float = 0.9,
                         region_margin_mm: float | None = None) -> FitData:
    """Check the ``(study day, BraTS label image)`` pairs and put tissue and masks on the fitting grid.

    ``region_margin_mm``: fit only on the box around every observed lesion grown by this margin
    (its faces act as no-flux walls; the fitted lesions never reach past the last observed one
    by much, so 20–30 mm keeps the walls out of play and makes a whole-brain fit ~10× cheaper).
    """
    if not labels_by_day:
        raise ValueError("lesion labels: none given; the fit needs the lesion segmentation (seg) of at least "
                         "one timepoint")
    pairs = sorted(((float(day), image) for day, image in labels_by_day), key=lambda pair: pair[0])
    days = [day for day, _ in pairs]
    if len(set(days)) != len(days) or not all(math.isfinite(d) for d in days):
        raise ValueError(f"lesion labels: days {days} must be finite and distinct")
    masks = [_label_masks(day, image) for day, image in pairs]
    volumes = [(day, float(sitk.GetArrayViewFromImage(whole).sum()) * ImageGeometry.from_image(whole).voxel_volume_mm3
                / 1000.0) for (day, _), (whole, _) in zip(pairs, masks)]
    check_growth(volumes, shrink_tolerance)

    grid = fitting_geometry(tissue.geometry, voxel_mm)
    if grid == tissue.geometry:
        coarse = tissue
    else:
        maps = {name: np.clip(resample_array(tissue.geometry.image_from_array(getattr(tissue, name)), grid), 0, 1)
                for name in ("gm", "wm", "csf")}
        coarse = TissueMaps(geometry=grid, **maps)
    fitted = [[np.clip(resample_array(mask, grid), 0, 1) for mask in pair] for pair in masks]
    for (day, _), (whole_fit, _) in zip(pairs, fitted):
        if not whole_fit.any():
            raise ValueError(f"lesion labels of day {day:g}: the lesion lies outside the tissue maps' grid")
    if region_margin_mm is not None:
        box, slices = sub_box(grid, [whole for whole, _ in fitted], region_margin_mm)
        coarse = TissueMaps(geometry=box, **{name: getattr(coarse, name)[slices] for name in ("gm", "wm", "csf")})
        fitted = [[mask[slices] for mask in pair] for pair in fitted]
    observations = []
    for (day, _), (whole, core), (_, volume), (whole_fit, core_fit) in zip(pairs, masks, volumes, fitted):
        core_ml = float(sitk.GetArrayViewFromImage(core).sum()) * ImageGeometry.from_image(core).voxel_volume_mm3 / 1000
        observations.append(Observation(day - days[0], whole_fit, core_fit, round(volume, 6), round(core_ml, 6)))
    return FitData(coarse, tuple(observations), pairs[0][1], days[0])
