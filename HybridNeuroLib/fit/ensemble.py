"""Uncertainty by an ensemble: refits under resampled segmentation boundaries and timepoint weights.

    >>> import numpy as np
    >>> from HybridNeuroLib.fit.ensemble import interval
    >>> interval([0.2, 0.3, 0.25, 0.4])
    [0.2, 0.4]

Each member m (random numbers from ``numpy.random.default_rng([settings.seed, m])``):

- moves every observed lesion boundary by its own δ ~ N(0, ``boundary_sd_mm``) (outward when
  δ > 0) — the rater/segmentation variability that limits what the data say; the perturbed
  mask is the partial-volume fraction 0.5 − (signed distance − δ)/h, clipped to [0, 1];
- weights the timepoints by a Bayesian bootstrap (n × Dirichlet(1, …, 1));
- refits from the best fit (warm start: ``member_iterations`` Adam steps, or a quarter of the
  CMA-ES budget, :mod:`.refine`).

Parameter intervals are the range over the best fit and the members; per-day probability maps
(fraction of members whose lesion covers a voxel) come from :mod:`HybridNeuroLib.fit.predict`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy import ndimage

from HybridNeuroLib.fit.objective import Objective
from HybridNeuroLib.fit.observations import FitData
from HybridNeuroLib.fit.optimize import GrowthFit
from HybridNeuroLib.fit.refine import refine
from HybridNeuroLib.fit.settings import FitSettings


def interval(values: Sequence[float]) -> list[float]:
    """[lowest, highest] of the ensemble's values."""
    return [float(np.min(values)), float(np.max(values))]


def shifted_mask(fraction: np.ndarray, shift_mm: float, spacing_kji_mm: Sequence[float]) -> np.ndarray:
    """The mask (fractions) with its boundary moved outward by ``shift_mm`` (inward if negative)."""
    inside = fraction >= 0.5
    if not inside.any() or shift_mm == 0:
        return fraction
    outside_distance = ndimage.distance_transform_edt(~inside, sampling=spacing_kji_mm)
    inside_distance = ndimage.distance_transform_edt(inside, sampling=spacing_kji_mm)
    signed = np.where(inside, -inside_distance, outside_distance) + np.where(inside, 0.5, -0.5) * min(spacing_kji_mm)
    return np.clip(0.5 - (signed - shift_mm) / float(np.mean(spacing_kji_mm)), 0.0, 1.0).astype(np.float32)


def ensemble_members(objective: Objective, data: FitData, best: GrowthFit, settings: FitSettings, *,
                     fit_growth: bool = True, on_iteration: Callable[[], None] = lambda: None) -> list[GrowthFit]:
    """``settings.members`` refits (see the module docstring); members that failed are left out."""
    spacing = data.tissue.geometry.spacing_mm[::-1]
    members = []
    for m in range(settings.members):
        rng = np.random.default_rng([settings.seed, m])
        shifts = rng.normal(0.0, settings.boundary_sd_mm, size=len(data.observations))
        weights = rng.dirichlet(np.ones(len(data.observations))) * len(data.observations)
        objective.set_targets([shifted_mask(o.whole, s, spacing) for o, s in zip(data.observations, shifts)],
                              [shifted_mask(o.core, s, spacing) for o, s in zip(data.observations, shifts)])
        member = refine(objective, best, settings, random_seed=int(rng.integers(2 ** 31)), member=True,
                        fit_growth=fit_growth, weights=weights, on_step=on_iteration)
        if np.isfinite(member.loss):
            members.append(member)
    objective.set_targets([o.whole for o in data.observations], [o.core for o in data.observations])
    return members
