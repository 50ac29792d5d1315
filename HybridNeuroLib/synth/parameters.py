"""Ground-truth parameters of a synthetic subject, and their distribution for cohorts.

    >>> import numpy as np
    >>> from HybridNeuroLib.synth.parameters import sample_parameters
    >>> p = sample_parameters(np.random.default_rng(3))
    >>> 0.02 <= p.dw_mm2_per_day <= 1.5 and 0.005 <= p.rho_per_day <= 0.2
    True
    >>> 0.02 <= p.front_speed_mm_per_day <= 0.12          # 2√(D_w ρ): visible change over months
    True

Ranges (DESIGN.md, Konukoglu 2010, Lipková 2019, Swanson 2000): D_w 0.02–1.5 mm²/day and
ρ 0.005–0.2 /day, both log-uniform; pairs are kept only if the Fisher–Kolmogorov front
speed 2√(D_w ρ) lies in 0.02–0.12 mm/day (≈ 7–44 mm/year radial growth, from low- to
high-grade gliomas), so that a lesion neither stands still nor fills the brain within the
follow-up. Visibility thresholds: FLAIR 0.2–0.3, T1Gd 0.6–0.7. White/grey diffusivity
ratio r 5–20 (r ≈ 10 usual). The rest is this generator's own modelling choice (the
truth is deliberately richer than the default model): anisotropy along white-matter
sheets 1–5, log-normal spatial variation of ρ with SD 0–0.4, necrosis rate 0.01–0.06 /day
above a crowding threshold 0.85–0.95, treatment with probability ½ (one radiotherapy-like
cell kill keeping 30–70 % of cells plus a 42-day chemotherapy kill rate 0–0.03 /day), mass
effect pushing the anatomy by up to 0–30 % of the lesion radius.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Treatment:
    """At ``day`` (days after the first scan) a fraction ``surviving_fraction`` of cells survives;
    then a chemotherapy kill rate ``chemo_kill_rate_per_day`` acts for ``chemo_days`` days."""

    day: float
    surviving_fraction: float = 0.5
    chemo_kill_rate_per_day: float = 0.0
    chemo_days: float = 42.0


@dataclass(frozen=True)
class SubjectParameters:
    """Everything that defines a synthetic subject besides the random seed's noise draws."""

    dw_mm2_per_day: float
    rho_per_day: float
    wm_to_gm_ratio: float = 10.0
    anisotropy: float = 3.0            # diffusion along / across white-matter sheets
    rho_log_sd: float = 0.2            # spatial SD of log ρ
    rho_correlation_mm: float = 10.0
    necrosis_rate_per_day: float = 0.03
    crowding_threshold: float = 0.9    # u + n above which cells die (hypoxia)
    seed_radius_mm: float = 3.0
    detection_radius_mm: float = 10.0  # equivalent radius of the FLAIR-visible lesion at day 0
    edema_threshold: float = 0.25      # FLAIR-visible total density
    enhancing_threshold: float = 0.65  # T1Gd-visible proliferating density
    treatment: Treatment | None = None
    mass_effect_ratio: float = 0.15    # largest anatomy displacement / lesion radius
    deformation_mm: float = 4.0        # random anatomy deformation amplitude
    noise_fraction: float = 0.03       # Rician noise σ relative to the white-matter T1 signal
    bias_amplitude: float = 0.15       # largest |log| of the multiplicative bias field

    @property
    def front_speed_mm_per_day(self) -> float:
        return 2.0 * math.sqrt(self.dw_mm2_per_day * self.rho_per_day)

    def to_dict(self) -> dict:
        return asdict(self)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def sample_parameters(rng: np.random.Generator, follow_up_days: float = 180.0) -> SubjectParameters:
    """Draw one subject's parameters from the literature ranges above."""
    while True:
        dw, rho = _log_uniform(rng, 0.02, 1.5), _log_uniform(rng, 0.005, 0.2)
        if 0.02 <= 2.0 * math.sqrt(dw * rho) <= 0.12:
            break
    treatment = None
    if rng.random() < 0.5:
        treatment = Treatment(day=float(round(rng.uniform(0.2, 0.6) * follow_up_days)),
                              surviving_fraction=float(rng.uniform(0.3, 0.7)),
                              chemo_kill_rate_per_day=float(rng.uniform(0.0, 0.03)))
    return SubjectParameters(
        dw_mm2_per_day=dw, rho_per_day=rho,
        wm_to_gm_ratio=float(rng.uniform(5.0, 20.0)),
        anisotropy=float(rng.uniform(1.0, 5.0)),
        rho_log_sd=float(rng.uniform(0.0, 0.4)),
        necrosis_rate_per_day=float(rng.uniform(0.01, 0.06)),
        crowding_threshold=float(rng.uniform(0.85, 0.95)),
        detection_radius_mm=float(rng.uniform(7.0, 14.0)),
        edema_threshold=float(rng.uniform(0.2, 0.3)),
        enhancing_threshold=float(rng.uniform(0.6, 0.7)),
        treatment=treatment,
        mass_effect_ratio=float(rng.uniform(0.0, 0.3)),
        deformation_mm=float(rng.uniform(2.0, 6.0)),
        noise_fraction=float(rng.uniform(0.02, 0.05)),
        bias_amplitude=float(rng.uniform(0.05, 0.2)),
    )
