"""Treatment what-ifs on a fitted patient: compare resection, radiotherapy and chemotherapy plans.

    >>> import numpy as np
    >>> from HybridNeuroLib.geometry import ImageGeometry
    >>> from HybridNeuroLib.physics import TissueMaps
    >>> from HybridNeuroLib.fit import FitResult, FitSettings, GrowthFit
    >>> from HybridNeuroLib.fit.scenarios import compare_scenarios, radiotherapy
    >>> grid = ImageGeometry((12, 12, 12), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    >>> wm = np.ones(grid.shape_kji, np.float32)
    >>> tissue = TissueMaps(gm=0 * wm, wm=wm, csf=0 * wm, geometry=grid)
    >>> fit = FitResult(GrowthFit(0.3, 0.03, (-24.0, -24.0, 24.0), 6.0, 0.1), (), FitSettings(), (0.0, 30.0), 0.0)
    >>> rows = compare_scenarios(fit, tissue, {"untreated": None, "RT 30×2 Gy": radiotherapy(fit, 40.0)}, [100])
    >>> rows["RT 30×2 Gy"][0]["cells_ml"] < rows["untreated"][0]["cells_ml"]
    True

All days here are *study* days; plans are built in the solver's time (days since the fit's
first timepoint) by the helpers :func:`resection`, :func:`radiotherapy`, :func:`chemotherapy`
and combined with :func:`combine`. Each scenario is solved with the best fit's parameters;
outcomes per day: whole-tumour and core volumes (mL) and total tumour cells ∫u dV (mL of
tissue at carrying capacity), plus the label images for side-by-side display.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import SimpleITK as sitk

from HybridNeuroLib.fit.predict import initial_state, tissue_on_grid
from HybridNeuroLib.fit.result import FitResult
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.physics import Chemotherapy, Radiotherapy, Resection, TissueMaps, TreatmentPlan, simulate


def _relative(fit: FitResult, study_day: float, what: str) -> float:
    if study_day < fit.first_day:
        raise ValueError(f"{what}: day {study_day:g} lies before the fit's first timepoint (day {fit.first_day:g})")
    return float(study_day - fit.first_day)


def resection(fit: FitResult, study_day: float, mask_kji: np.ndarray, removed_fraction: float = 1.0) -> TreatmentPlan:
    """Remove ``removed_fraction`` of the cells inside ``mask_kji`` (on the simulation grid) at ``study_day``."""
    return TreatmentPlan(resections=(Resection(_relative(fit, study_day, "resection"), np.asarray(mask_kji, bool),
                                               removed_fraction),))


def radiotherapy(fit: FitResult, start_day: float, dose_per_fraction_gy: float = 2.0, fractions: int = 30,
                 alpha_per_gy: float = 0.06, alpha_beta_gy: float = 10.0) -> TreatmentPlan:
    """Fractions Monday–Friday from study day ``start_day`` (linear–quadratic cell kill)."""
    return TreatmentPlan(radiotherapy=(Radiotherapy.standard(_relative(fit, start_day, "radiotherapy"), alpha_per_gy,
                                                             dose_per_fraction_gy, fractions, alpha_beta_gy),))


def chemotherapy(fit: FitResult, start_day: float, end_day: float, kill_rate_per_day: float = 0.02) -> TreatmentPlan:
    """An added kill rate (1/day) over study days [start_day, end_day)."""
    return TreatmentPlan(chemotherapy=(Chemotherapy(_relative(fit, start_day, "chemotherapy"),
                                                    _relative(fit, end_day, "chemotherapy"), kill_rate_per_day),))


def combine(*plans: TreatmentPlan) -> TreatmentPlan:
    return TreatmentPlan(tuple(r for p in plans for r in p.resections), tuple(r for p in plans for r in p.radiotherapy),
                         tuple(c for p in plans for c in p.chemotherapy))


def compare_scenarios(fit: FitResult, tissue: TissueMaps, scenarios: Mapping[str, TreatmentPlan | None],
                      days: Sequence[float], *, grid: ImageGeometry | None = None,
                      with_images: bool = False) -> dict[str, list[dict]]:
    """Per scenario name, one row per study day (volumes, cells; ``labels`` images if ``with_images``)."""
    days = sorted({float(d) for d in days})
    relative = [_relative(fit, day, "scenario output") for day in days]
    tissue = tissue_on_grid(tissue, grid)
    voxel_ml = tissue.geometry.voxel_volume_mm3 / 1000.0
    outcomes = {}
    initial = initial_state(fit.best, fit.settings, tissue)
    for name, plan in scenarios.items():
        run = simulate(tissue, initial, fit.best.parameters(fit.settings), relative,
                       thresholds=fit.settings.thresholds, treatment=plan, progress=False, device="cpu")
        rows = []
        for day, density, labels in zip(days, run.density, run.labels):
            u, lab = sitk.GetArrayViewFromImage(density), sitk.GetArrayViewFromImage(labels)
            row = {"day": day, "whole_ml": round(float((lab > 0).sum()) * voxel_ml, 4),
                   "core_ml": round(float(((lab == 1) | (lab == 3)).sum()) * voxel_ml, 4),
                   "cells_ml": float(u.sum()) * voxel_ml}
            if with_images:
                row["labels"] = labels
            rows.append(row)
        outcomes[name] = rows
    return outcomes
