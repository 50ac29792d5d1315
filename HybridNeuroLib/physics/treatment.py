"""Treatments acting on the tumour-cell density during a solve: resection, radiotherapy, chemotherapy.

    >>> import math
    >>> from HybridNeuroLib.physics.treatment import Chemotherapy, Radiotherapy, TreatmentPlan
    >>> rt = Radiotherapy.standard(start_day=30.0, alpha_per_gy=0.06)   # 30 × 2 Gy, Monday–Friday
    >>> len(rt.days), rt.days[:6], round(rt.surviving_fraction(2.0), 4)  # exp(−0.06·2 − 0.006·4)
    (30, (30.0, 31.0, 32.0, 33.0, 34.0, 37.0), 0.8659)
    >>> plan = TreatmentPlan(radiotherapy=(rt,), chemotherapy=(Chemotherapy(30.0, 72.0, 0.02),))
    >>> plan.kill_rate_per_day(40.0), plan.kill_rate_per_day(80.0)
    (0.02, 0.0)

- **Resection** at a day: cells inside a mask are removed (``removed_fraction`` of them,
  default all) — an instantaneous event.
- **Radiotherapy** by the linear–quadratic model: each fraction of dose d (Gy) multiplies
  the density by the surviving fraction exp(−αd − βd²), β = α/(α/β), with α/β = 10 Gy by
  default (tumour tissue). An optional relative dose map scales d per voxel (1 = the
  prescribed fraction dose). Repopulation between fractions is the model's own growth.
- **Chemotherapy**: an added kill rate k (1/day) in du/dt = … − k·u over [start, end);
  the splitting solver integrates it exactly together with the logistic reaction.

Masks and dose maps are numpy arrays ``[k, j, i]`` on the simulation grid (the tissue
grid); :meth:`TreatmentPlan.events` cuts them to the solver's box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from HybridNeuroLib.physics.tissue import Crop


def _check_day(name: str, day: float) -> float:
    if not (isinstance(day, (int, float)) and math.isfinite(day) and day >= 0):
        raise ValueError(f"{name} must be a finite day ≥ 0, got {day!r}")
    return float(day)


@dataclass(frozen=True, eq=False)
class Resection:
    day: float
    mask: np.ndarray
    removed_fraction: float = 1.0

    def __post_init__(self) -> None:
        _check_day("resection.day", self.day)
        if not (math.isfinite(self.removed_fraction) and 0.0 <= self.removed_fraction <= 1.0):
            raise ValueError(f"resection.removed_fraction must lie in [0, 1], got {self.removed_fraction!r}")
        if not np.asarray(self.mask).any():
            raise ValueError("resection.mask is empty; give a mask with at least one voxel removed")

    def factor(self) -> np.ndarray:
        return np.where(np.asarray(self.mask, bool), 1.0 - self.removed_fraction, 1.0).astype(np.float32)


@dataclass(frozen=True, eq=False)
class Radiotherapy:
    days: tuple[float, ...]
    doses_gy: tuple[float, ...]
    alpha_per_gy: float
    alpha_beta_gy: float = 10.0
    dose_map_relative: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.days) == 0:
            raise ValueError("radiotherapy.days: the schedule is empty; give at least one fraction day ≥ 0")
        if len(self.doses_gy) != len(self.days):
            raise ValueError(f"radiotherapy.doses_gy: {len(self.doses_gy)} doses for {len(self.days)} days; "
                             "give one dose per fraction")
        object.__setattr__(self, "days", tuple(_check_day("radiotherapy.days", d) for d in self.days))
        for dose in self.doses_gy:
            if not (math.isfinite(dose) and 0.0 <= dose <= 30.0):
                raise ValueError(f"radiotherapy.doses_gy must lie in [0, 30] Gy per fraction, got {dose!r}")
        if not (math.isfinite(self.alpha_per_gy) and 0.0 < self.alpha_per_gy <= 2.0):
            raise ValueError(f"radiotherapy.alpha_per_gy must lie in (0, 2] per Gy, got {self.alpha_per_gy!r}")
        if not (math.isfinite(self.alpha_beta_gy) and 0.0 < self.alpha_beta_gy <= 100.0):
            raise ValueError(f"radiotherapy.alpha_beta_gy must lie in (0, 100] Gy, got {self.alpha_beta_gy!r}")
        if self.dose_map_relative is not None:
            dose_map = np.asarray(self.dose_map_relative, dtype=np.float32)
            if not np.all(np.isfinite(dose_map)) or dose_map.min() < 0:
                raise ValueError("radiotherapy.dose_map_relative must be finite and ≥ 0 (1 = prescribed dose)")

    @classmethod
    def standard(cls, start_day: float, alpha_per_gy: float, dose_gy: float = 2.0, fractions: int = 30,
                 alpha_beta_gy: float = 10.0) -> Radiotherapy:
        """Fractions on five consecutive days a week from ``start_day`` (e.g. Stupp: 30 × 2 Gy)."""
        days = tuple(float(start_day + 7 * (n // 5) + n % 5) for n in range(fractions))
        return cls(days, (dose_gy,) * fractions, alpha_per_gy, alpha_beta_gy)

    def surviving_fraction(self, dose_gy):
        """exp(−αd − βd²) of one fraction of ``dose_gy`` (number or array)."""
        beta = self.alpha_per_gy / self.alpha_beta_gy
        return np.exp(-self.alpha_per_gy * dose_gy - beta * np.square(dose_gy)) if isinstance(
            dose_gy, np.ndarray) else math.exp(-self.alpha_per_gy * dose_gy - beta * dose_gy ** 2)

    def factor(self, dose_gy: float) -> np.ndarray | float:
        if self.dose_map_relative is None:
            return self.surviving_fraction(dose_gy)
        return self.surviving_fraction(dose_gy * np.asarray(self.dose_map_relative, np.float32)).astype(np.float32)


@dataclass(frozen=True)
class Chemotherapy:
    start_day: float
    end_day: float
    kill_rate_per_day: float

    def __post_init__(self) -> None:
        _check_day("chemotherapy.start_day", self.start_day)
        _check_day("chemotherapy.end_day", self.end_day)
        if not self.end_day > self.start_day:
            raise ValueError(f"chemotherapy: end_day ({self.end_day}) must be after start_day "
                             f"({self.start_day}); the schedule is empty")
        if not (math.isfinite(self.kill_rate_per_day) and 0.0 <= self.kill_rate_per_day <= 10.0):
            raise ValueError(f"chemotherapy.kill_rate_per_day must lie in [0, 10] per day, "
                             f"got {self.kill_rate_per_day!r}")


@dataclass(frozen=True, eq=False)
class TreatmentPlan:
    resections: tuple[Resection, ...] = ()
    radiotherapy: tuple[Radiotherapy, ...] = ()
    chemotherapy: tuple[Chemotherapy, ...] = ()

    def kill_rate_per_day(self, day: float) -> float:
        return sum((c.kill_rate_per_day for c in self.chemotherapy if c.start_day <= day < c.end_day), 0.0)

    def schedule_days(self) -> list[float]:
        return sorted({d for c in self.chemotherapy for d in (c.start_day, c.end_day)})

    def events(self, crop: Crop, device: torch.device | str = "cpu"
               ) -> list[tuple[float, Callable[[torch.Tensor], torch.Tensor]]]:
        """(day, u ↦ u·factor) pairs, factors cut to ``crop`` and placed on ``device``."""
        def multiply(factor) -> Callable[[torch.Tensor], torch.Tensor]:
            if isinstance(factor, np.ndarray):
                if factor.shape != crop.full_shape:
                    raise ValueError(f"treatment map shape {factor.shape} differs from the tissue grid "
                                     f"{crop.full_shape} (k, j, i)")
                factor = torch.from_numpy(np.ascontiguousarray(crop.crop(factor))).to(device)
            return lambda u: u * factor

        events = [(r.day, multiply(r.factor())) for r in self.resections]
        for course in self.radiotherapy:
            events += [(day, multiply(course.factor(dose))) for day, dose in zip(course.days, course.doses_gy)]
        return sorted(events, key=lambda event: event[0])
