"""Personalised radiotherapy target (PREDICT-GBM protocol): iso-volumetric model target vs the 15 mm margin.

    >>> import numpy as np
    >>> from HybridNeuroLib.fit.target import standard_target, iso_volumetric_target, coverage_fraction
    >>> labels = np.zeros((1, 1, 40), np.uint8); labels[0, 0, 10:12] = 3          # a 2 mm core on a 1 mm rod
    >>> domain = np.ones(labels.shape, bool)
    >>> standard = standard_target(labels, (1.0, 1.0, 1.0), domain, margin_mm=5.0)
    >>> int(standard.sum()), np.flatnonzero(standard[0, 0]).tolist()[:2]           # voxels 5 … 16
    (12, [5, 6])
    >>> density = np.exp(-np.abs(np.arange(40) - 14.0) / 8.0).reshape(labels.shape)  # spreads to the right
    >>> model = iso_volumetric_target(density, int(standard.sum()), domain, labels)
    >>> int(model.sum()), np.flatnonzero(model[0, 0]).tolist()[:2]                 # voxels 8 … 19
    (12, [8, 9])
    >>> later = np.zeros(labels.shape, bool); later[0, 0, 10:20] = True             # the recurrence
    >>> coverage_fraction(standard, later), coverage_fraction(model, later)
    (0.7, 1.0)

PREDICT-GBM (Balcerak et al., evaluation of tumour growth models for radiotherapy planning)
compares, for each patient, two targets of *equal volume*:

- the **standard target**: the tumour core (BraTS labels 1 and 3) grown by a 15 mm margin
  (Euclidean distance in mm, spacing honoured), clipped to the brain/tissue domain (a lesion
  without a core: its whole tumour, ``basis="whole"``);
- the **model target**: the voxels of the domain with the highest predicted tumour-cell density,
  as many as the standard target holds (iso-volumetric). Ties in density (e.g. the zero density
  far from the tumour) are broken by distance to the core, nearest first, then by voxel order,
  so the two volumes are equal exactly and a constant density gives back the standard target.

Each target is scored by its **coverage** of a later observed lesion: the fraction of the
lesion's voxels inside the target (whole tumour, and tumour core where the later scan has one).
:func:`compare_targets` does it all on images and returns a JSON-ready summary.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from HybridNeuroLib.geometry import ImageGeometry

STANDARD_MARGIN_MM = 15.0
CORE_LABELS = (1, 3)
BASES = ("core", "whole")


def core_mask(labels_kji: np.ndarray) -> np.ndarray:
    """Tumour core (BraTS labels 1 = necrotic core, 3 = enhancing) as a boolean mask."""
    return np.isin(np.asarray(labels_kji), CORE_LABELS)


def distance_to_mask_mm(mask_kji: np.ndarray, spacing_kji_mm: Sequence[float]) -> np.ndarray:
    """Euclidean distance (mm) of every voxel centre to the nearest voxel of ``mask_kji`` (0 inside)."""
    return ndimage.distance_transform_edt(~np.asarray(mask_kji, bool), sampling=tuple(spacing_kji_mm))


def basis_mask(labels_kji: np.ndarray, basis: str) -> np.ndarray:
    """What the margin grows from: ``"core"`` (labels 1, 3) or ``"whole"`` tumour (labels > 0)."""
    if basis not in BASES:
        raise ValueError(f"standard target: basis must be one of {BASES}, got {basis!r}")
    mask = core_mask(labels_kji) if basis == "core" else np.asarray(labels_kji) > 0
    if not mask.any():
        what = "tumour core (labels 1 or 3)" if basis == "core" else "lesion"
        raise ValueError(f"standard target: the planning labels have no {what}; "
                         "the margin is grown from it — give labels with one (or basis=\"whole\" for a lesion "
                         "without a core)")
    return mask


def standard_target(labels_kji: np.ndarray, spacing_kji_mm: Sequence[float], domain_kji: np.ndarray,
                    margin_mm: float = STANDARD_MARGIN_MM, basis: str = "core") -> np.ndarray:
    """The tumour core (or ``basis="whole"`` tumour) grown by ``margin_mm``, clipped to ``domain_kji``."""
    grown_from = basis_mask(labels_kji, basis)
    if not (np.isfinite(margin_mm) and margin_mm >= 0):
        raise ValueError(f"standard target: margin_mm must be a finite number ≥ 0, got {margin_mm!r}")
    return (distance_to_mask_mm(grown_from, spacing_kji_mm) <= margin_mm) & np.asarray(domain_kji, bool)


def iso_volumetric_target(density_kji: np.ndarray, voxels: int, domain_kji: np.ndarray, labels_kji: np.ndarray,
                          spacing_kji_mm: Sequence[float] = (1.0, 1.0, 1.0), basis: str = "core") -> np.ndarray:
    """The ``voxels`` domain voxels of highest density (ties: nearest to the basis first, then voxel order)."""
    density = np.asarray(density_kji, np.float64)
    domain = np.asarray(domain_kji, bool)
    if density.shape != domain.shape or np.shape(labels_kji) != domain.shape:
        raise ValueError(f"model target: density {density.shape}, domain {domain.shape} and labels "
                         f"{np.shape(labels_kji)} must share one grid")
    if not np.all(np.isfinite(density[domain])):
        raise ValueError("model target: the predicted density has NaN or infinite values in the domain")
    inside = np.flatnonzero(domain)
    if not 0 <= voxels <= inside.size:
        raise ValueError(f"model target: {voxels} voxels requested, the domain holds {inside.size}")
    grown_from = core_mask(labels_kji) if basis == "core" else np.asarray(labels_kji) > 0
    distance = (distance_to_mask_mm(grown_from, spacing_kji_mm) if grown_from.any()
                else np.zeros(domain.shape)).ravel()
    # lexsort: last key first — density descending, then distance ascending, then index (stable)
    order = np.lexsort((distance[inside], -density.ravel()[inside]))
    target = np.zeros(domain.size, bool)
    target[inside[order[:voxels]]] = True
    return target.reshape(domain.shape)


def coverage_fraction(target_kji: np.ndarray, lesion_kji: np.ndarray) -> float:
    """|target ∩ lesion| / |lesion|: the fraction of the later lesion inside the target."""
    lesion = np.asarray(lesion_kji, bool)
    if not lesion.any():
        raise ValueError("coverage: the later lesion is empty; coverage is undefined")
    return float(np.count_nonzero(np.asarray(target_kji, bool) & lesion) / np.count_nonzero(lesion))


def compare_targets(density: sitk.Image, planning_labels: sitk.Image, later_labels: sitk.Image,
                    domain_kji: np.ndarray, margin_mm: float = STANDARD_MARGIN_MM, *,
                    with_masks: bool = False) -> dict:
    """Both targets on the planning grid and their coverage of the later lesion.

    ``density``: the model's predicted density at the planning day; ``planning_labels``: the
    lesion labels that day (its core defines the standard target); ``later_labels``: the later
    observed lesion; ``domain_kji``: the brain/tissue mask. All on one grid. A planning lesion
    without a core (non-enhancing) gets the margin around its whole tumour instead, as is usual
    for such lesions (``standard_basis`` in the summary says which). The summary is JSON-ready
    (coverages ``None`` where the later scan has no such lesion); ``with_masks`` adds
    ``masks`` = {"standard", "model"} boolean arrays.
    """
    geometry = ImageGeometry.from_image(planning_labels)
    for name, image in (("density", density), ("later_labels", later_labels)):
        if ImageGeometry.from_image(image) != geometry:
            raise ValueError(f"compare_targets: {name} is not on the planning labels' grid; resample it first")
    if np.shape(domain_kji) != geometry.shape_kji:
        raise ValueError(f"compare_targets: domain_kji has shape {np.shape(domain_kji)}, expected "
                         f"{geometry.shape_kji}")
    spacing = geometry.spacing_mm[::-1]
    labels = sitk.GetArrayFromImage(planning_labels)
    later = sitk.GetArrayFromImage(later_labels)
    basis = "core" if core_mask(labels).any() else "whole"
    standard = standard_target(labels, spacing, domain_kji, margin_mm, basis)
    model = iso_volumetric_target(sitk.GetArrayFromImage(density), int(standard.sum()), domain_kji, labels,
                                  spacing, basis)
    voxel_ml = geometry.voxel_volume_mm3 / 1000.0
    lesions = {"whole": later > 0, "core": core_mask(later)}
    summary = {"margin_mm": float(margin_mm), "standard_basis": basis,
               "target_volume_ml": round(float(standard.sum()) * voxel_ml, 4),
               "model_min_density": float(sitk.GetArrayViewFromImage(density)[model].min()) if model.any() else None,
               "later_whole_ml": round(float(lesions["whole"].sum()) * voxel_ml, 4),
               "later_core_ml": round(float(lesions["core"].sum()) * voxel_ml, 4)}
    for name, target in (("standard", standard), ("model", model)):
        summary[name] = {f"{kind}_coverage": (coverage_fraction(target, lesion) if lesion.any() else None)
                         for kind, lesion in lesions.items()}
    if with_masks:
        summary["masks"] = {"standard": standard, "model": model}
    return summary
