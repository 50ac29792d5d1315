"""Gradient descent through the solver: Adam on bounded log-parameters, multi-start, NaN-safe.

    >>> from HybridNeuroLib.fit.optimize import bounded, unbounded
    >>> z = unbounded(0.3, (0.02, 1.5))
    >>> round(float(bounded(z, (0.02, 1.5))), 6)
    0.3

D_w and ρ are optimised as z with value = exp(log lo + (log hi − log lo)·σ(z)): always inside
the literature bounds and uniform in log scale; the seed radius as log R; the seed centre in mm;
with ``settings.fit_onset`` the seed's onset (days grown before the first timepoint) like D_w.
Each start runs ``iterations`` Adam steps and keeps its lowest-loss state. A non-finite loss or
gradient stops the optimisation at once: the last good state is kept and the reason recorded
(``stopped_reason``) — never a NaN result.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import torch

from HybridNeuroLib.fit.objective import Objective
from HybridNeuroLib.fit.settings import FitSettings
from HybridNeuroLib.physics import GrowthParameters, Seed
from HybridNeuroLib.physics.solvers import denormals_flushed

RADIUS_RANGE_MM = (0.5, 60.0)


def unbounded(value: float, bounds: tuple[float, float]) -> torch.Tensor:
    low, high = math.log(bounds[0]), math.log(bounds[1])
    fraction = min(max((math.log(value) - low) / (high - low), 1e-3), 1 - 1e-3)
    return torch.tensor(math.log(fraction / (1.0 - fraction)), dtype=torch.float64)


def bounded(z: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    low, high = math.log(bounds[0]), math.log(bounds[1])
    return torch.exp(low + (high - low) * torch.sigmoid(z))


@dataclass(frozen=True)
class GrowthFit:
    """One fitted state: FK parameters and the seed at the first timepoint (RAS mm)."""

    dw_mm2_per_day: float
    rho_per_day: float
    centre_ras_mm: tuple[float, float, float]
    radius_mm: float
    loss: float
    loss_history: tuple[float, ...] = field(default=(), compare=False)
    stopped_reason: str = ""
    onset_days: float = 0.0   # the seed grew this long under the same model before the first timepoint
    edema_flair: float | None = None     # fitted visibility thresholds (settings.fit_thresholds), else None
    enhancing_t1gd: float | None = None
    peak_density: float = 1.0            # the seed's peak (fitted with settings.fit_seed_peak)
    start_onset_days: float | None = field(default=None, compare=False)  # onset (days) this start began from

    @property
    def seed(self) -> Seed:
        return Seed(tuple(self.centre_ras_mm), float(self.radius_mm), float(self.peak_density))

    @property
    def front_speed_mm_per_day(self) -> float:
        return 2.0 * math.sqrt(self.dw_mm2_per_day * self.rho_per_day)

    def parameters(self, settings: FitSettings) -> GrowthParameters:
        return GrowthParameters(self.dw_mm2_per_day, self.rho_per_day, settings.wm_to_gm_ratio,
                                settings.tissue_threshold)

    def to_dict(self) -> dict:
        record = asdict(self)
        record["centre_ras_mm"] = list(self.centre_ras_mm)
        record["loss_history"] = list(self.loss_history)
        return record

    @classmethod
    def from_dict(cls, record: dict) -> GrowthFit:
        record = dict(record)
        record["centre_ras_mm"] = tuple(float(v) for v in record["centre_ras_mm"])
        record["loss_history"] = tuple(record.get("loss_history", ()))
        return cls(**record)


def descend(objective: Objective, start: GrowthFit, settings: FitSettings, *, iterations: int,
            learning_rate: float, fit_growth: bool = True, weights: Sequence[float] | None = None,
            on_iteration: Callable[[], None] = lambda: None) -> GrowthFit:
    """Adam from ``start``; returns the lowest-loss state seen (growth fixed unless ``fit_growth``).

    The onset (``settings.fit_onset``) moves only with the growth: one scan cannot date a lesion.
    """
    z_dw = unbounded(start.dw_mm2_per_day, settings.dw_bounds_mm2_per_day).requires_grad_(fit_growth)
    z_rho = unbounded(start.rho_per_day, settings.rho_bounds_per_day).requires_grad_(fit_growth)
    log_radius = torch.tensor(math.log(start.radius_mm), dtype=torch.float64, requires_grad=settings.fit_radius)
    centre = torch.tensor(start.centre_ras_mm, dtype=torch.float64, requires_grad=True)
    onset_bounds = settings.onset_bounds_days
    z_onset = (unbounded(max(start.onset_days, onset_bounds[0]), onset_bounds).requires_grad_(True)
               if fit_growth and settings.fit_onset else None)
    groups = [{"params": [centre], "lr": settings.centre_learning_rate_mm}]
    scalars = [p for p in (z_dw, z_rho, log_radius, z_onset) if p is not None and p.requires_grad]
    if scalars:
        groups.append({"params": scalars, "lr": learning_rate})
    optimizer = torch.optim.Adam(groups)
    # the seed's far tail underflows to denormal floats, ~100× slower on CPUs: flush them for the
    # forward *and* backward passes of the whole descent
    with denormals_flushed():
        return _iterate(objective, start, settings, optimizer, groups, (z_dw, z_rho, log_radius, centre, z_onset),
                        iterations, fit_growth, weights, on_iteration)


def _iterate(objective, start, settings, optimizer, groups, variables, iterations, fit_growth, weights,
             on_iteration) -> GrowthFit:
    z_dw, z_rho, log_radius, centre, z_onset = variables
    best, history, reason = None, [], ""
    for _ in range(iterations):
        optimizer.zero_grad()
        dw, rho = bounded(z_dw, settings.dw_bounds_mm2_per_day), bounded(z_rho, settings.rho_bounds_per_day)
        radius = torch.exp(log_radius).clamp(*RADIUS_RANGE_MM)
        onset = (bounded(z_onset, settings.onset_bounds_days) if z_onset is not None
                 else torch.tensor(float(start.onset_days), dtype=torch.float64))
        state = (float(dw.detach()), float(rho.detach()), tuple(float(c) for c in centre.detach()),
                 float(radius.detach()), float(onset.detach()))
        try:
            objective.check_seed(state[2])
        except ValueError as error:
            reason = f"stopped: the seed centre left the brain domain ({error}); kept the last good state"
            break
        loss = objective.loss(dw, rho, centre, radius, weights, onset_days=onset)
        value = float(loss.detach())
        if not math.isfinite(value):
            reason = f"stopped: the loss became {value} (divergent fit); kept the last good state"
            break
        loss.backward()
        gradients = [p.grad for group in groups for p in group["params"] if p.grad is not None]
        if not all(bool(torch.isfinite(g).all()) for g in gradients):
            reason = "stopped: a gradient became NaN or infinite (divergent fit); kept the last good state"
            history.append(value)
            if best is None or value < best[0]:
                best = (value, state)
            break
        history.append(value)
        if best is None or value < best[0]:
            best = (value, state)
        optimizer.step()
        on_iteration()
    if best is None:
        return GrowthFit(start.dw_mm2_per_day, start.rho_per_day, start.centre_ras_mm, start.radius_mm,
                         math.nan, tuple(history), reason or "stopped before the first good state")
    value, (dw, rho, centre_mm, radius, onset) = best
    if not fit_growth:  # exactly the given values, not their round trip through the bounded map
        dw, rho = start.dw_mm2_per_day, start.rho_per_day
    if z_onset is None:
        onset = start.onset_days
    return GrowthFit(dw, rho, centre_mm, radius, value, tuple(history), reason, onset)
