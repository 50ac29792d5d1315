"""Derivative-free fit: CMA-ES over the same bounded parameters and the same objective, no autograd.

    >>> from HybridNeuroLib.fit.cmaes_fit import to_unit, from_unit
    >>> round(from_unit(to_unit(0.3, (0.02, 1.5)), (0.02, 1.5)), 6)
    0.3

The search space is the unit-scaled version of what :func:`HybridNeuroLib.fit.optimize.descend`
moves: log D_w and log ρ as fractions of their log bounds (0 = lower, 1 = upper bound), the log
seed radius as a fraction of ``RADIUS_RANGE_MM`` (with ``settings.fit_thresholds`` also θ_FLAIR
and θ_T1Gd, with ``settings.fit_seed_peak`` the seed's peak density, as fractions of their log
ranges), and the seed centre as an offset from the
start in units of ``CENTRE_SCALE_MM`` (at most ``CENTRE_LIMIT`` units). CMA-ES (package
``cmaes``, its own bounds handling) starts at the start state with step size
``settings.cmaes_sigma`` and stops after ``settings.evaluations`` loss evaluations (whole
generations). Each candidate's loss is the :class:`HybridNeuroLib.fit.objective.Objective`
under ``torch.inference_mode``. A candidate whose seed centre leaves the brain, or whose loss is
NaN/infinite, is ranked worst (``BAD_LOSS``) — a bad candidate, not a crash; if no candidate ever
gives a finite loss the start is returned with a NaN loss and a ``stopped_reason``, exactly like
the gradient path. Deterministic for a fixed ``seed``: the sampler's own random state.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from cmaes import CMA

from HybridNeuroLib.fit.objective import Objective
from HybridNeuroLib.fit.optimize import RADIUS_RANGE_MM, GrowthFit
from HybridNeuroLib.fit.settings import FitSettings
from HybridNeuroLib.physics.solvers import denormals_flushed

CENTRE_SCALE_MM = 10.0   # one unit of the centre coordinates
CENTRE_LIMIT = 3.0       # the centre moves at most 3 units (30 mm) from the start
BAD_LOSS = 1.0e6         # rank given to a candidate without a finite loss (CMA-ES uses ranks only)


def to_unit(value: float, bounds: tuple[float, float]) -> float:
    """Position of ``value`` in [0, 1] along the log of ``bounds`` (clipped)."""
    low, high = math.log(bounds[0]), math.log(bounds[1])
    return min(max((math.log(value) - low) / (high - low), 0.0), 1.0)


def from_unit(fraction: float, bounds: tuple[float, float]) -> float:
    low, high = math.log(bounds[0]), math.log(bounds[1])
    return math.exp(low + (high - low) * min(max(float(fraction), 0.0), 1.0))


class _Space:
    """Which coordinates move (growth unless fixed, radius if fitted, always the centre) and their bounds."""

    def __init__(self, start: GrowthFit, settings: FitSettings, fit_growth: bool):
        self.start = start
        self.scalars: list[tuple[str, tuple[float, float]]] = []
        if fit_growth:
            self.scalars += [("dw_mm2_per_day", settings.dw_bounds_mm2_per_day),
                             ("rho_per_day", settings.rho_bounds_per_day)]
        if settings.fit_radius:
            self.scalars.append(("radius_mm", RADIUS_RANGE_MM))
        if fit_growth and settings.fit_onset:  # one scan cannot date a lesion
            self.scalars.append(("onset_days", settings.onset_bounds_days))
        self.defaults = {"edema_flair": settings.thresholds.edema_flair,
                         "enhancing_t1gd": settings.thresholds.enhancing_t1gd}
        if fit_growth and settings.fit_thresholds:  # per-patient visibility thresholds within their ranges
            self.scalars += [("edema_flair", settings.flair_threshold_bounds),
                             ("enhancing_t1gd", settings.t1gd_threshold_bounds)]
        if settings.fit_seed_peak:  # the seed's amplitude: a young lesion need not be saturated
            self.scalars.append(("peak_density", settings.seed_peak_bounds))

    def _start_value(self, name: str) -> float:
        value = getattr(self.start, name)
        return self.defaults[name] if value is None else value

    def initial(self) -> np.ndarray:
        values = [to_unit(max(self._start_value(name), bounds[0]), bounds) for name, bounds in self.scalars]
        return np.array(values + [0.0, 0.0, 0.0])

    def bounds(self) -> np.ndarray:
        return np.array([[0.0, 1.0]] * len(self.scalars) + [[-CENTRE_LIMIT, CENTRE_LIMIT]] * 3)

    def state(self, x: np.ndarray) -> dict:
        """The GrowthFit fields of the unit vector ``x`` (fixed ones copied from the start)."""
        values = {"dw_mm2_per_day": self.start.dw_mm2_per_day, "rho_per_day": self.start.rho_per_day,
                  "radius_mm": self.start.radius_mm, "onset_days": self.start.onset_days,
                  "edema_flair": self.start.edema_flair, "enhancing_t1gd": self.start.enhancing_t1gd,
                  "peak_density": self.start.peak_density}
        for (name, bounds), fraction in zip(self.scalars, x):
            values[name] = from_unit(fraction, bounds)
        offset = np.clip(x[len(self.scalars):], -CENTRE_LIMIT, CENTRE_LIMIT) * CENTRE_SCALE_MM
        values["centre_ras_mm"] = tuple(float(c + o) for c, o in zip(self.start.centre_ras_mm, offset))
        return values


def evaluate(objective: Objective, state: dict, weights: Sequence[float] | None = None) -> float:
    """The objective at one state (GrowthFit fields) without autograd; NaN for a bad candidate."""
    try:
        objective.check_seed(state["centre_ras_mm"])
    except ValueError:
        return math.nan
    value = {name: torch.tensor(state[name], dtype=torch.float64)
             for name in ("dw_mm2_per_day", "rho_per_day", "centre_ras_mm", "radius_mm", "onset_days")}
    thresholds = None if state.get("edema_flair") is None else (state["edema_flair"], state["enhancing_t1gd"])
    try:
        with torch.inference_mode():
            loss = objective.loss(value["dw_mm2_per_day"], value["rho_per_day"], value["centre_ras_mm"],
                                  value["radius_mm"], weights, onset_days=value["onset_days"], thresholds=thresholds,
                                  peak=state.get("peak_density", 1.0))
    except FloatingPointError:  # the solver's own check: the density became NaN/infinite
        return math.nan
    return float(loss)


def search(objective: Objective, start: GrowthFit, settings: FitSettings, *, evaluations: int, seed: int,
           sigma: float | None = None, fit_growth: bool = True, weights: Sequence[float] | None = None,
           on_evaluation: Callable[[], None] = lambda: None) -> GrowthFit:
    """CMA-ES from ``start`` for ``evaluations`` losses; the lowest-loss candidate seen (see module docstring).

    ``loss_history`` holds the best loss of each generation.
    """
    space = _Space(start, settings, fit_growth)
    mean, bounds = space.initial(), space.bounds()
    mean = np.clip(mean, bounds[:, 0] + 1e-6, bounds[:, 1] - 1e-6)  # cmaes needs the mean strictly inside
    optimizer = CMA(mean=mean, sigma=settings.cmaes_sigma if sigma is None else sigma, bounds=bounds,
                    seed=int(seed) % 2 ** 32)
    generations = max(1, evaluations // optimizer.population_size)
    best, history, bad, done = None, [], 0, 0
    with denormals_flushed():  # the seed's far tail underflows to slow denormals (as in descend)
        for _ in range(generations):
            told, generation_best = [], math.inf
            for _ in range(optimizer.population_size):
                x = optimizer.ask()
                state = space.state(x)
                value = evaluate(objective, state, weights)
                done += 1
                on_evaluation()
                if not math.isfinite(value):
                    bad += 1
                    told.append((x, BAD_LOSS))
                    continue
                told.append((x, value))
                generation_best = min(generation_best, value)
                if best is None or value < best[0]:
                    best = (value, state)
            optimizer.tell(told)
            if math.isfinite(generation_best):
                history.append(generation_best)
            if optimizer.should_stop():
                break
    if best is None:
        return GrowthFit(start.dw_mm2_per_day, start.rho_per_day, start.centre_ras_mm, start.radius_mm, math.nan,
                         tuple(history), "stopped: no CMA-ES candidate gave a finite loss with its seed in the brain")
    value, state = best
    reason = f"{bad} of {done} CMA-ES candidates had no finite loss or left the brain (ranked worst)" if bad else ""
    if not fit_growth:  # exactly the given values, as in descend
        state.update(dw_mm2_per_day=start.dw_mm2_per_day, rho_per_day=start.rho_per_day)
    return GrowthFit(loss=value, loss_history=tuple(history), stopped_reason=reason, **state)
