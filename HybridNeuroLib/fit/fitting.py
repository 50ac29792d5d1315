"""Fit D_w, ρ and the seed to one patient's observed lesions: the one-call API.

    >>> import numpy as np
    >>> from HybridNeuroLib.geometry import ImageGeometry
    >>> from HybridNeuroLib.physics import TissueMaps
    >>> from HybridNeuroLib.fit import FitSettings, fit_growth
    >>> grid = ImageGeometry((12, 12, 12), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    >>> wm = np.ones(grid.shape_kji, np.float32)
    >>> tissue = TissueMaps(gm=0 * wm, wm=wm, csf=0 * wm, geometry=grid)
    >>> seg = np.zeros(grid.shape_kji, np.uint8); seg[5:8, 5:8, 5:8] = 2; seg[6, 6, 6] = 3
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     result = fit_growth(tissue, [(0.0, grid.image_from_array(seg))],
    ...                         FitSettings(voxel_mm=4.0, iterations=5, members=0), progress=False)
    >>> result.identifiable, result.best.dw_mm2_per_day, "not identifiable" in str(caught[0].message)
    (False, 0.3, True)

Steps: check and resample the observations (:mod:`.observations`); seed at the first lesion's
centre with its visible volume matched (:func:`HybridNeuroLib.physics.initial.lesion_seed`); starting
(D_w, ρ) from the observed radial speed and front width (:mod:`.initialise`); Adam
(:mod:`.optimize`) or CMA-ES (:mod:`.cmaes_fit`, ``settings.optimizer``) from each start,
keeping the lowest loss; then the uncertainty ensemble
(:mod:`.ensemble`). With one timepoint only the seed is fitted, D_w and ρ stay at the
population priors, and a warning says that growth speed is not identifiable. With
``settings.fit_onset`` the starts are a small seed (``onset_seed_radius_mm``; its radius still
fitted) grown for a fitted onset before the first timepoint, instead of a Gaussian at the first
timepoint; the onset starts are the age estimate × each of ``settings.age_factors()`` (every
start has the full budget; ``GrowthFit.start_onset_days`` records where each began, and the
message says which won). With ``settings.fit_thresholds`` (CMA-ES) θ_FLAIR and θ_T1Gd are searched too, within
their bounds; the result's ``settings.thresholds`` are then the fitted ones.
Deterministic for a fixed ``settings.seed`` (CPU).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import replace
from typing import Callable, Sequence

import SimpleITK as sitk
import torch

from HybridNeuroLib.fit.ensemble import ensemble_members
from HybridNeuroLib.fit.initialise import onset_starts_days, starting_points
from HybridNeuroLib.fit.objective import Objective
from HybridNeuroLib.fit.observations import FitData, prepare_observations
from HybridNeuroLib.fit.optimize import GrowthFit
from HybridNeuroLib.fit.refine import refine, steps
from HybridNeuroLib.fit.result import FitResult
from HybridNeuroLib.fit.settings import FitSettings
from HybridNeuroLib.labels import ImagingThresholds
from HybridNeuroLib.physics import TissueMaps
from HybridNeuroLib.physics.initial import lesion_seed
from HybridNeuroLib.progress import Progress

NOT_IDENTIFIABLE = ("only one timepoint: growth speed (D_w, ρ) is not identifiable from a single scan; "
                    "fitted the initial state only, with population priors D_w = {dw} mm²/day, ρ = {rho} /day — "
                    "forecasts show the population's growth, not this patient's")


def fit_growth(tissue: TissueMaps, labels_by_day: Sequence[tuple[float, sitk.Image]],
               settings: FitSettings = FitSettings(), *, device: torch.device | str | None = "cpu",
               progress: bool = True, progress_callback: Callable[[str, float], None] | None = None,
               log: Callable[[str], None] = lambda message: None,
               extra_starts: Sequence[GrowthFit] = (),
               objective_factory: Callable[[FitData, FitSettings], Objective] | None = None) -> FitResult:
    """Fit to ``(study day, BraTS label image)`` pairs on ``tissue``; see the module docstring.

    ``extra_starts``: more starting states (e.g. an encoder's estimate), descended after the
    default ones; the lowest final loss wins as always. ``objective_factory(data, settings)``:
    another forward model with the same loss (the solver-in-the-loop's corrected solver);
    default :class:`Objective` on ``device``.
    """
    started = time.perf_counter()
    if settings.fit_onset and settings.onset_age_factors is None:  # the record says which ages were started
        settings = replace(settings, onset_age_factors=settings.age_factors())
    data = prepare_observations(tissue, labels_by_day, voxel_mm=settings.voxel_mm,
                                shrink_tolerance=settings.shrink_tolerance,
                                region_margin_mm=settings.region_margin_mm)
    identifiable = len(data.observations) >= 2
    notes: list[str] = []
    if not identifiable:
        notes.append(NOT_IDENTIFIABLE.format(dw=settings.prior_dw_mm2_per_day, rho=settings.prior_rho_per_day))
        warnings.warn(notes[-1], UserWarning, stacklevel=2)
    seed = lesion_seed(data.first_labels, settings.thresholds.edema_flair)
    objective = (objective_factory(data, settings) if objective_factory is not None
                 else Objective(data, settings, device=device))
    try:
        objective.check_seed(seed.centre_ras_mm)
    except ValueError as error:
        raise ValueError(f"lesion labels of day {data.first_day:g}: the lesion's centre is not in the brain "
                         f"tissue domain ({error})") from None
    if settings.fit_onset and identifiable:  # a small seed, dated from the first lesion's size
        radius = min(settings.onset_seed_radius_mm, seed.radius_mm)
        growth = starting_points(data, settings)
        ages = [onset_starts_days(data, settings, dw, rho, radius) for dw, rho in growth]
        # age factor outer, (D_w, ρ) start inner: the factor-1 starts keep the indices (random seeds) of a
        # single-age fit, so adding factors only adds starts (the best loss cannot get worse)
        points = [GrowthFit(dw, rho, seed.centre_ras_mm, radius, math.nan, onset_days=age[k])
                  for k in range(max(len(a) for a in ages)) for (dw, rho), age in zip(growth, ages) if k < len(age)]
    else:
        points = [GrowthFit(dw, rho, seed.centre_ras_mm, seed.radius_mm, math.nan)
                  for dw, rho in starting_points(data, settings)]
    points += list(extra_starts)
    total = len(points) * steps(settings) + settings.members * steps(settings, member=True)
    with Progress("fit", total=total, enabled=progress, callback=progress_callback, unit="it") as bar:
        starts = []
        for n, start in enumerate(points):
            log(f"start {n + 1}/{len(points)}: D_w = {start.dw_mm2_per_day:.3g} mm²/day, "
                f"ρ = {start.rho_per_day:.3g} /day"
                + (f", onset {start.onset_days:.4g} days" if settings.fit_onset and identifiable else ""))
            fitted = refine(objective, start, settings, random_seed=settings.seed * 1000 + n,
                            fit_growth=identifiable, on_step=bar.advance)
            starts.append(replace(fitted, start_onset_days=start.onset_days))
        good = [s for s in starts if math.isfinite(s.loss)]
        if not good:
            raise ValueError("fit diverged: every start stopped before a finite loss "
                             f"({'; '.join(s.stopped_reason for s in starts)}); check the inputs")
        best = min(good, key=lambda s: s.loss)
        notes += [f"start {n + 1}: {s.stopped_reason}" for n, s in enumerate(starts) if s.stopped_reason]
        members = ensemble_members(objective, data, best, settings, fit_growth=identifiable,
                                   on_iteration=bar.advance) if settings.members else []
    if best.edema_flair is not None:  # thresholds fitted per patient: the result (and its forecasts) use them
        settings = replace(settings, thresholds=ImagingThresholds(best.edema_flair, best.enhancing_t1gd,
                                                                  settings.thresholds.necrotic))
    for note in notes[1 if not identifiable else 0:]:
        log(note)
    messages = (f"best of {len(starts)} start(s) ({settings.optimizer}): loss {best.loss:.4f}, "
                f"D_w = {best.dw_mm2_per_day:.4g} mm²/day, ρ = {best.rho_per_day:.4g} /day, "
                f"front speed {best.front_speed_mm_per_day:.4g} mm/day"
                + (f", onset {best.onset_days:.4g} days before day {data.first_day:g}" if best.onset_days else "")
                + (f" (from the start at onset {best.start_onset_days:.4g} days, of "
                   f"{', '.join(sorted({f'{s.start_onset_days:.4g}' for s in starts}, key=float))})"
                   if len({s.start_onset_days for s in starts}) > 1 else "")
                + (f", thresholds FLAIR {best.edema_flair:.3f}, T1Gd {best.enhancing_t1gd:.3f} (fitted)"
                   if best.edema_flair is not None else ""),)
    return FitResult(best, tuple(members), settings, tuple(data.first_day + o.day for o in data.observations),
                     data.first_day, tuple(starts), identifiable, tuple(notes), messages,
                     time.perf_counter() - started)
