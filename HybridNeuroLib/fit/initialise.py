"""Starting points of a fit, from what the lesion visibly did: radial speed and front width.

    >>> from HybridNeuroLib.fit.initialise import growth_from_speed
    >>> dw, rho = growth_from_speed(speed_mm_per_day=0.2, front_width_mm=5.0)
    >>> round(dw, 3), round(rho, 3), round(2 * (dw * rho) ** 0.5, 3)     # 2√(D_w ρ) = the speed
    (0.5, 0.02, 0.2)

A Fisher–Kolmogorov front moves at v = 2√(Dρ) and has width ℓ = √(D/ρ); so D = vℓ/2 and
ρ = v/(2ℓ). v is the least-squares slope of the equivalent-sphere radius (3V/4π)^⅓ over the
days; ℓ is estimated from the gap between the whole-tumour (u ≥ θ_FLAIR) and tumour-core
(u ≥ θ_T1Gd) radii of the last timepoint: on the travelling wave (Ablowitz–Zeppetella
profile u = (1 + e^{ξ/√6})^−2, ξ in units of ℓ) the gap between u = 0.25 and u = 0.65 is
≈ 3.5 ℓ. Without a core, ℓ comes from the population priors. Multi-start points spread ℓ by
factors e^{−1}…e^{+1} along the curve D·ρ = (v/2)², the direction that whole-tumour growth
alone cannot pin down; a random jitter (from the fit's seed) breaks ties. With an onset to
fit, :func:`onset_days` dates a small seed from the first lesion's size and the front speed, and
:func:`onset_starts_days` turns that estimate into one start age per ``settings.age_factors()``:

    >>> from HybridNeuroLib.fit.initialise import multiply_onset
    >>> multiply_onset(60.0, (1.0, 4.0, 40.0, 50.0), (1.0, 2000.0))   # clipped, equal ones once
    [60.0, 240.0, 2000.0]
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from HybridNeuroLib.fit.observations import FitData
from HybridNeuroLib.fit.settings import FitSettings

PROFILE_GAP_IN_WIDTHS = 3.5
SPEED_RANGE_MM_PER_DAY = (0.005, 0.5)


def equivalent_radius_mm(volume_ml: float) -> float:
    return (3.0 * volume_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)


def growth_from_speed(speed_mm_per_day: float, front_width_mm: float) -> tuple[float, float]:
    """(D_w mm²/day, ρ /day) of a front of that speed and width."""
    return speed_mm_per_day * front_width_mm / 2.0, speed_mm_per_day / (2.0 * front_width_mm)


def observed_speed_mm_per_day(days: Sequence[float], volumes_ml: Sequence[float]) -> float:
    """Least-squares slope of the equivalent radius over the days (clipped to a plausible range)."""
    radii = [equivalent_radius_mm(v) for v in volumes_ml]
    slope = float(np.polyfit(np.asarray(days, float), np.asarray(radii), 1)[0])
    return float(np.clip(slope, *SPEED_RANGE_MM_PER_DAY))


def starting_points(data: FitData, settings: FitSettings) -> list[tuple[float, float]]:
    """``settings.starts`` (D_w, ρ) pairs inside the bounds; the first is the unjittered estimate."""
    prior_width = math.sqrt(settings.prior_dw_mm2_per_day / settings.prior_rho_per_day)
    obs = data.observations
    if len(obs) < 2:
        return [(settings.prior_dw_mm2_per_day, settings.prior_rho_per_day)]
    speed = observed_speed_mm_per_day([o.day for o in obs], [o.volume_ml for o in obs])
    gap = equivalent_radius_mm(obs[-1].volume_ml) - equivalent_radius_mm(obs[-1].core_volume_ml)
    width = gap / PROFILE_GAP_IN_WIDTHS if obs[-1].core_volume_ml > 0 and gap > 0 else prior_width
    width = float(np.clip(width, 0.5, 30.0))
    rng = np.random.default_rng(settings.seed)
    factors = np.exp(np.linspace(-1.0, 1.0, settings.starts)) if settings.starts > 1 else np.ones(1)
    order = np.argsort(np.abs(np.log(factors)), kind="stable")  # the central estimate first
    points = []
    for n, index in enumerate(order):
        jitter = 1.0 if n == 0 else float(np.exp(rng.normal(0.0, 0.1)))
        dw, rho = growth_from_speed(speed, width * factors[index] * jitter)
        points.append((float(np.clip(dw, *settings.dw_bounds_mm2_per_day)),
                       float(np.clip(rho, *settings.rho_bounds_per_day))))
    return points


def onset_days(data: FitData, settings: FitSettings, dw_mm2_per_day: float, rho_per_day: float,
               seed_radius_mm: float) -> float:
    """Days a seed of ``seed_radius_mm`` needs to grow to the first lesion's size at front speed 2√(D_w ρ).

    The seed is visible (u ≥ θ_FLAIR) out to R·√(log₂(1/θ)); the rest of the first lesion's
    equivalent radius is covered at the front speed (clipped to the onset bounds).
    """
    visible_mm = seed_radius_mm * math.sqrt(math.log2(1.0 / settings.thresholds.edema_flair))
    gap_mm = equivalent_radius_mm(data.observations[0].volume_ml) - visible_mm
    days = max(gap_mm, 0.0) / (2.0 * math.sqrt(dw_mm2_per_day * rho_per_day))
    return float(np.clip(days, *settings.onset_bounds_days))


def multiply_onset(onset: float, factors: Sequence[float], bounds_days: tuple[float, float]) -> list[float]:
    """``onset`` (days) × each factor, clipped to ``bounds_days``; equal results once, first-seen order."""
    ages: list[float] = []
    for factor in factors:
        age = float(np.clip(onset * factor, *bounds_days))
        if not any(math.isclose(age, seen, rel_tol=1e-9) for seen in ages):
            ages.append(age)
    return ages


def onset_starts_days(data: FitData, settings: FitSettings, dw_mm2_per_day: float, rho_per_day: float,
                      seed_radius_mm: float) -> list[float]:
    """Start onsets (days before the first scan): :func:`onset_days` × each of ``settings.age_factors()``.

    Two scans of a lesion without a visible core barely date it, and the single estimate tends to
    make it far too young (a young front has not reached its asymptotic speed 2√(D_w ρ), so a fit
    started there raises D_w to cover the observed growth); older starts let the optimiser reach
    the older basin. Clipped to ``settings.onset_bounds_days``, duplicates dropped, the factor order kept.
    """
    return multiply_onset(onset_days(data, settings, dw_mm2_per_day, rho_per_day, seed_radius_mm),
                          settings.age_factors(), settings.onset_bounds_days)
