"""Settings of a personalised fit: bounds, resolution, optimiser, ensemble — units in the names.

    >>> from HybridNeuroLib.fit.settings import FitSettings
    >>> settings = FitSettings(voxel_mm=4.0, starts=2)
    >>> settings.dw_bounds_mm2_per_day, settings.rho_bounds_per_day
    ((0.02, 1.5), (0.005, 0.2))
    >>> FitSettings(starts=0)
    Traceback (most recent call last):
    ...
    ValueError: fit settings: starts must be ≥ 1, got 0

Bounds are the literature ranges (DESIGN.md): D_w 0.02–1.5 mm²/day, ρ 0.005–0.2 /day. The fitting
grid's ``voxel_mm`` lies in (0, 10] mm (coarser grids cannot resolve a lesion's front).
With ``fit_thresholds`` (CMA-ES only) the visibility thresholds are estimated per patient within
``flair_threshold_bounds`` / ``t1gd_threshold_bounds``; the fit result's settings then carry the
fitted ones (forecast labels use them). With ``fit_seed_peak`` (CMA-ES only) the seed's peak
density is fitted within ``seed_peak_bounds`` too (a young lesion need not be saturated).
With ``fit_onset``, ``onset_age_factors`` multiply the estimated lesion age (days the seed grew
before the first scan, :func:`HybridNeuroLib.fit.initialise.onset_days`): one start per factor
(and per (D_w, ρ) start), each with the full optimiser budget, the lowest final loss wins — two
scans of a lesion without a core barely date it, and the estimate is often far too young. Default
(``None``): ``CMAES_ONSET_AGE_FACTORS`` for a CMA-ES onset fit, one age otherwise
(:meth:`FitSettings.age_factors`).
The priors are the population values used when growth speed is not identifiable (one timepoint).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from HybridNeuroLib.labels import ImagingThresholds

LOSSES = ("margin", "soft-dice")
MAX_VOXEL_MM = 10.0   # coarser fitting grids cannot resolve a lesion of 1–5 cm or its growth front
OPTIMIZERS = ("adam", "cmaes")
# default lesion-age multipliers of a CMA-ES onset fit (bench/results/fit_bias_cpu.md, "Onset multi-start")
CMAES_ONSET_AGE_FACTORS = (1.0, 4.0, 10.0)


@dataclass(frozen=True)
class FitSettings:
    """How to fit; every field is recorded in ``params.json``."""

    voxel_mm: float = 2.0                  # fitting grid (coarser of this and the native spacing)
    region_margin_mm: float | None = 30.0  # fit on the lesions' box + this margin (None: whole tissue grid)
    starts: int = 3                        # multi-start: initial points along D_w·ρ = const
    iterations: int = 60                   # Adam iterations per start
    learning_rate: float = 0.1             # on the bounded log-parameters (and seed radius)
    centre_learning_rate_mm: float = 0.5   # Adam step of the seed centre, in mm
    fit_radius: bool = True                # also fit the seed's half-maximum radius
    seed: int = 0                          # random seed: same seed, same data → same fit
    dw_bounds_mm2_per_day: tuple[float, float] = (0.02, 1.5)
    rho_bounds_per_day: tuple[float, float] = (0.005, 0.2)
    prior_dw_mm2_per_day: float = 0.3      # population values (single timepoint)
    prior_rho_per_day: float = 0.03
    thresholds: ImagingThresholds = field(default_factory=ImagingThresholds)
    loss: str = "margin"                   # "margin" (threshold hinge) or "soft-dice" (see objective)
    soft_label_width: float = 0.05         # sigmoid width of the soft labels (density units)
    core_weight: float = 1.0               # weight of the tumour-core Dice term (0 = whole tumour only)
    shrink_tolerance: float = 0.9          # later volume < this × earlier volume → "shrinking lesion"
    wm_to_gm_ratio: float = 10.0
    tissue_threshold: float = 0.1
    members: int = 6                       # ensemble size for intervals and probability maps (0 = none)
    member_iterations: int = 25            # Adam iterations of each ensemble member (warm start)
    boundary_sd_mm: float = 1.0            # segmentation boundary uncertainty simulated by the ensemble
    optimizer: str = "adam"                # "adam" (gradients through the solver) or "cmaes" (derivative-free)
    evaluations: int = 600                 # CMA-ES: loss evaluations per start (members get a quarter)
    cmaes_sigma: float = 0.1               # CMA-ES: initial step in unit-scaled coordinates (see cmaes_fit)
    fit_onset: bool = False                # also fit how long the seed grew before the first timepoint
    onset_bounds_days: tuple[float, float] = (1.0, 2000.0)
    onset_seed_radius_mm: float = 3.0      # with fit_onset: the starting seed's half-maximum radius
    onset_age_factors: tuple[float, ...] | None = None  # with fit_onset: start ages = age estimate × each (see age_factors)
    fit_thresholds: bool = False           # CMA-ES only: also estimate θ_FLAIR, θ_T1Gd per patient (bounds below)
    flair_threshold_bounds: tuple[float, float] = (0.2, 0.3)   # literature ranges (DESIGN.md)
    t1gd_threshold_bounds: tuple[float, float] = (0.6, 0.7)
    fit_seed_peak: bool = False            # CMA-ES only: also fit the seed's peak density (starts at 1)
    seed_peak_bounds: tuple[float, float] = (0.05, 1.0)
    absent_core_evidence: bool = False     # a scan with no core penalises a model core (objective.absent_core_term)

    def __post_init__(self) -> None:
        positive = {"voxel_mm": self.voxel_mm, "learning_rate": self.learning_rate,
                    "centre_learning_rate_mm": self.centre_learning_rate_mm,
                    "soft_label_width": self.soft_label_width}
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"fit settings: {name} must be a finite number > 0, got {value!r}")
        if self.voxel_mm > MAX_VOXEL_MM:
            raise ValueError(f"fit settings: voxel_mm (--voxel-mm) must lie in (0, {MAX_VOXEL_MM:g}] mm, got "
                             f"{self.voxel_mm:g}: it is the fitting grid's spacing (the coarser of it and the scans' "
                             f"spacing), and on a grid coarser than {MAX_VOXEL_MM:g} mm a lesion of a few cm spans "
                             "only a few voxels, too few to resolve its growth front; 2 (default) to 4 mm is usual")
        for name in ("starts", "iterations"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"fit settings: {name} must be ≥ 1, got {getattr(self, name)!r}")
        for name in ("members", "member_iterations"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"fit settings: {name} must be ≥ 0, got {getattr(self, name)!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"fit settings: optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if int(self.evaluations) < 1:
            raise ValueError(f"fit settings: evaluations must be ≥ 1, got {self.evaluations!r}")
        for name in ("cmaes_sigma", "onset_seed_radius_mm"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"fit settings: {name} must be a finite number > 0, got {getattr(self, name)!r}")
        for name in ("dw_bounds_mm2_per_day", "rho_bounds_per_day", "onset_bounds_days"):
            low, high = getattr(self, name)
            if not (0 < low < high and math.isfinite(high)):
                raise ValueError(f"fit settings: {name} must be (low, high) with 0 < low < high, got {(low, high)}")
        flair, t1gd = self.flair_threshold_bounds, self.t1gd_threshold_bounds
        if not (0 < flair[0] < flair[1] < t1gd[0] < t1gd[1] < self.thresholds.necrotic):
            raise ValueError(f"fit settings: threshold bounds must satisfy 0 < FLAIR low < FLAIR high < T1Gd low < "
                             f"T1Gd high < necrotic {self.thresholds.necrotic}, got FLAIR {tuple(flair)}, "
                             f"T1Gd {tuple(t1gd)}")
        factors = self.onset_age_factors
        if factors is not None and (len(factors) < 1 or not all(
                isinstance(f, (int, float)) and math.isfinite(f) and f > 0 for f in factors)):
            raise ValueError("fit settings: onset_age_factors must be None or a non-empty tuple of finite numbers > 0 "
                             f"(multipliers of the estimated lesion age), got {factors!r}")
        low, high = self.seed_peak_bounds
        if not 0 < low < high <= 1:
            raise ValueError(f"fit settings: seed_peak_bounds must satisfy 0 < low < high ≤ 1, got {(low, high)}")
        if self.fit_seed_peak and self.optimizer != "cmaes":
            raise ValueError("fit settings: fit_seed_peak (fitting the seed's peak density) needs optimizer='cmaes', "
                             f"got {self.optimizer!r}")
        if self.fit_thresholds and self.optimizer != "cmaes":
            raise ValueError("fit settings: fit_thresholds (estimating the visibility thresholds per patient) needs "
                             f"optimizer='cmaes', got {self.optimizer!r}")
        if not self.dw_bounds_mm2_per_day[0] <= self.prior_dw_mm2_per_day <= self.dw_bounds_mm2_per_day[1]:
            raise ValueError(f"fit settings: prior_dw_mm2_per_day {self.prior_dw_mm2_per_day} lies outside "
                             f"the bounds {self.dw_bounds_mm2_per_day}")
        if not self.rho_bounds_per_day[0] <= self.prior_rho_per_day <= self.rho_bounds_per_day[1]:
            raise ValueError(f"fit settings: prior_rho_per_day {self.prior_rho_per_day} lies outside "
                             f"the bounds {self.rho_bounds_per_day}")
        if self.region_margin_mm is not None and not (math.isfinite(self.region_margin_mm)
                                                      and self.region_margin_mm >= 0):
            raise ValueError(f"fit settings: region_margin_mm must be ≥ 0 or None, got {self.region_margin_mm!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"fit settings: loss must be one of {LOSSES}, got {self.loss!r}")
        if not (math.isfinite(self.boundary_sd_mm) and self.boundary_sd_mm >= 0):
            raise ValueError(f"fit settings: boundary_sd_mm must be ≥ 0, got {self.boundary_sd_mm!r}")
        if not 0 < self.shrink_tolerance <= 1:
            raise ValueError(f"fit settings: shrink_tolerance must lie in (0, 1], got {self.shrink_tolerance!r}")

    def age_factors(self) -> tuple[float, ...]:
        """The lesion-age multipliers of the onset starts (dimensionless; ``onset_age_factors`` resolved).

        Each start's onset (days before the first scan) is the age estimate × one factor, clipped to
        ``onset_bounds_days``; equal clipped onsets are started once. Every start gets the full budget
        (``evaluations`` CMA-ES losses / ``iterations`` Adam steps), so the fit costs ``len(factors)``×
        a single-age fit, and the factor-1.0 start is exactly the single-age fit: the multi-start's
        best loss is never higher. ``None`` (the default) means ``CMAES_ONSET_AGE_FACTORS`` with
        ``optimizer="cmaes"`` and ``fit_onset`` (measured: bench/results/fit_bias_cpu.md), else (1.0,)
        (the Adam onset fit is not measured with more ages). Unused without ``fit_onset``.
        """
        if self.onset_age_factors is not None:
            return tuple(float(f) for f in self.onset_age_factors)
        return CMAES_ONSET_AGE_FACTORS if self.optimizer == "cmaes" and self.fit_onset else (1.0,)

    def to_dict(self) -> dict:
        record = asdict(self)
        record["dw_bounds_mm2_per_day"] = list(self.dw_bounds_mm2_per_day)
        record["rho_bounds_per_day"] = list(self.rho_bounds_per_day)
        record["onset_bounds_days"] = list(self.onset_bounds_days)
        record["flair_threshold_bounds"] = list(self.flair_threshold_bounds)
        record["t1gd_threshold_bounds"] = list(self.t1gd_threshold_bounds)
        record["seed_peak_bounds"] = list(self.seed_peak_bounds)
        if self.onset_age_factors is not None:
            record["onset_age_factors"] = list(self.onset_age_factors)
        return record

    @classmethod
    def from_dict(cls, record: dict) -> FitSettings:
        record = dict(record)
        record["thresholds"] = ImagingThresholds(**record.get("thresholds", {}))
        for name in ("dw_bounds_mm2_per_day", "rho_bounds_per_day", "onset_bounds_days", "flair_threshold_bounds",
                     "t1gd_threshold_bounds", "seed_peak_bounds", "onset_age_factors"):
            if record.get(name) is not None:
                record[name] = tuple(record[name])
        return cls(**record)
