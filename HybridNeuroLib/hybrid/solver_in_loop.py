"""Forecasting with the corrected coarse solver: fit D_w, ρ and the seed at 4 mm with the corrector in the loop.

    >>> import numpy as np
    >>> from HybridNeuroLib.geometry import ImageGeometry
    >>> from HybridNeuroLib.physics import TissueMaps
    >>> from HybridNeuroLib.hybrid import make_model
    >>> from HybridNeuroLib.hybrid.solver_in_loop import SolverInTheLoop
    >>> grid = ImageGeometry((12, 12, 12), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    >>> wm = np.ones(grid.shape_kji, np.float32)
    >>> tissue = TissueMaps(gm=0 * wm, wm=wm, csf=0 * wm, geometry=grid)
    >>> seg = np.zeros(grid.shape_kji, np.uint8); seg[5:8, 5:8, 5:8] = 2
    >>> later = np.zeros(grid.shape_kji, np.uint8); later[4:9, 4:9, 4:9] = 2
    >>> model = make_model("solver-in-the-loop", settings=SolverInTheLoop.default_settings(starts=1, iterations=2))
    >>> model = model.fit(tissue, [(0.0, grid.image_from_array(seg)), (30.0, grid.image_from_array(later))],
    ...                   progress=False)
    >>> forecast = model.predict([60])
    >>> forecast.volumes[0]["whole_ml"] > 0, forecast.density[0].GetSize()
    (True, (12, 12, 12))

The model is :mod:`HybridNeuroLib.hybrid.corrector`'s corrected coarse solver with the shipped,
frozen corrector (``models/solver-in-the-loop``, made by ``hybridneuro train-hybrid
solver-in-the-loop``). Fitting *is* the physics fit (:func:`~HybridNeuroLib.fit.fitting.fit_growth`
on the 4 mm fitting grid: its checks, seed, starting points, margin loss and optimiser) with only
the Objective's state sequence replaced by the corrected rollout (``objective_factory``).
There is no uncertainty ensemble: the
probability map is the best fit's visible lesion (0/1) and the volume range is a point.
Forecasts run on the whole 4 mm tissue grid and are resampled (linearly) onto the requested
grid, then thresholded into labels there. The checkpoint holds the fit, the tissue maps and
the corrector's weights, so a saved model predicts bit for bit the same after loading.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

import numpy as np
import torch

from HybridNeuroLib.fit import FitSettings, Forecast
from HybridNeuroLib.fit.fitting import fit_growth
from HybridNeuroLib.fit.objective import Objective
from HybridNeuroLib.fit.observations import FitData, fitting_geometry, resample_array
from HybridNeuroLib.fit.optimize import GrowthFit
from HybridNeuroLib.fit.predict import forecast_from_members, tissue_on_grid
from HybridNeuroLib.hybrid.base import (PRETRAINED_ROOT, CheckpointError, ForecastModel, LabelsByDay, load_model,
                                        register, tissue_from_saved, tissue_record, tissue_tensors)
from HybridNeuroLib.hybrid.corrector import (COARSE_VOXEL_MM, CorrectedSolver, Corrector, CorrectorConfig,
                                             coarse_problem, coarse_tissue)
from HybridNeuroLib.physics import TissueMaps
from HybridNeuroLib.progress import Progress

NAME = "solver-in-the-loop"


class CorrectedObjective(Objective):
    """The fit's objective with the corrected coarse rollout as the model's states."""

    def __init__(self, data: FitData, settings: FitSettings, corrector: Corrector):
        super().__init__(data, settings, device="cpu")
        self.solver = CorrectedSolver(self.problem, corrector)

    def states(self, dw, rho, centre_ras_mm, radius_mm, onset_days=None, peak=None) -> list[torch.Tensor]:
        if onset_days is not None and float(onset_days) > 0:
            raise ValueError(f"model {NAME!r}: fitting an onset is not supported; use settings without fit_onset")
        return self.solver.rollout(self.initial_density(centre_ras_mm, radius_mm, peak), dw, rho, self.days)


def shipped_corrector() -> Corrector:
    """The pretrained corrector shipped in ``hybrid/models/solver-in-the-loop``."""
    folder = PRETRAINED_ROOT / NAME
    try:
        model = load_model(folder, expected=NAME)
    except FileNotFoundError:
        raise FileNotFoundError(f"model {NAME!r}: the shipped corrector is missing in {folder}; train it with "
                                f"`hybridneuro train-hybrid {NAME} --out {folder}`") from None
    return model.corrector


@register
class SolverInTheLoop(ForecastModel):
    """Fisher–Kolmogorov at 4 mm, corrected after every step by a network trained against 1 mm rollouts."""

    name = NAME
    minimum_timepoints = 2

    @staticmethod
    def default_settings(**changes) -> FitSettings:
        """The physics fit's settings at 4 mm without an ensemble (``changes`` override fields)."""
        return replace(FitSettings(voxel_mm=COARSE_VOXEL_MM, members=0, starts=2, iterations=40), **changes)

    def __init__(self, settings: FitSettings | None = None, *, corrector: Corrector | None = None):
        settings = self.default_settings() if settings is None else settings
        if settings.voxel_mm != COARSE_VOXEL_MM:
            raise ValueError(f"model {NAME!r}: settings.voxel_mm must be {COARSE_VOXEL_MM:g} (the corrector's grid), "
                             f"got {settings.voxel_mm:g}")
        self.settings = settings
        self.corrector = corrector if corrector is not None else shipped_corrector()
        self.corrector.requires_grad_(False).eval()  # frozen: only the physics is fitted
        self.best: GrowthFit | None = None
        self.starts: tuple[GrowthFit, ...] = ()
        self.first_day = 0.0
        self.observed_days: tuple[float, ...] = ()
        self.tissue: TissueMaps | None = None
        self.training: dict = {}

    # -- fit -----------------------------------------------------------------------------
    def _fit(self, tissue: TissueMaps, labels_by_day: LabelsByDay, *, progress: bool,
             log: Callable[[str], None]) -> None:
        def corrected(data: FitData, settings: FitSettings) -> CorrectedObjective:
            _check_coarse(data.tissue.geometry.spacing_mm)
            # the fit's box of the coarse grid, with the tissue the corrector was trained on
            data = replace(data, tissue=tissue_on_grid(corrector_tissue(tissue), data.tissue.geometry))
            return CorrectedObjective(data, settings, self.corrector)

        result = fit_growth(tissue, labels_by_day, self.settings, progress=progress, log=log,
                            objective_factory=corrected)
        self.best, self.starts, self.tissue = result.best, result.starts, tissue
        self.first_day, self.observed_days = result.first_day, result.observed_days

    # -- predict ------------------------------------------------------------------------
    def predict(self, days: Sequence[float], *, grid=None, progress: bool = False) -> Forecast:
        if self.best is None:
            raise ValueError(f"model {NAME!r}: not fitted yet; call fit(...) or load a saved model first")
        days = tuple(sorted({float(d) for d in days}))
        if not days:
            raise ValueError("predict: no days given; list the study days to forecast")
        if days[0] < self.first_day:
            raise ValueError(f"predict: day {days[0]:g} lies before the first fitted timepoint (day "
                             f"{self.first_day:g}); the model forecasts forward only")
        coarse = corrector_tissue(self.tissue)
        _check_coarse(coarse.geometry.spacing_mm)
        problem = coarse_problem(coarse, self.settings.wm_to_gm_ratio, self.settings.tissue_threshold)
        best = self.best
        with torch.inference_mode(), Progress("predict", total=days[-1] - self.first_day, enabled=progress,
                                              unit="day") as bar:
            states = CorrectedSolver(problem, self.corrector).rollout(
                problem.initial_density(best.seed), best.dw_mm2_per_day, best.rho_per_day,
                [day - self.first_day for day in days], on_step=bar.advance)
        target = self.tissue.geometry if grid is None else grid
        densities = []
        for state in states:
            array = problem.to_full_grid(state)
            if target != coarse.geometry:
                array = np.clip(resample_array(coarse.geometry.image_from_array(array), target), 0.0, 1.0)
            densities.append(array)
        return forecast_from_members(days, [densities], target, self.settings.thresholds)  # one member: 0/1

    # -- checkpoint ---------------------------------------------------------------------
    def to_record(self) -> dict:
        record = {"settings": self.settings.to_dict(), "corrector": self.corrector.config.to_dict(),
                  "training": self.training}
        if self.best is not None:
            record.update({"best": self.best.to_dict(), "starts": [s.to_dict() for s in self.starts],
                           "first_day": self.first_day, "observed_days": list(self.observed_days),
                           "tissue_grid": tissue_record(self.tissue)})
        return record

    def tensors(self) -> dict[str, torch.Tensor]:
        weights = {f"corrector.{key}": value for key, value in self.corrector.state_dict().items()}
        return weights | (tissue_tensors(self.tissue) if self.tissue is not None else {})

    @classmethod
    def from_record(cls, record: dict, tensors: dict[str, torch.Tensor]) -> SolverInTheLoop:
        corrector = Corrector(CorrectorConfig(**record["corrector"]))
        weights = {key[len("corrector."):]: value for key, value in tensors.items() if key.startswith("corrector.")}
        try:
            corrector.load_state_dict(weights)
        except RuntimeError as error:
            raise CheckpointError(f"model {NAME!r}: corrector weights do not fit its configuration ({error})") from None
        model = cls(FitSettings.from_dict(record["settings"]), corrector=corrector)
        model.training = dict(record.get("training", {}))
        if "best" in record:
            model.best = GrowthFit.from_dict(record["best"])
            model.starts = tuple(GrowthFit.from_dict(s) for s in record["starts"])
            model.first_day, model.observed_days = float(record["first_day"]), tuple(record["observed_days"])
            model.tissue = tissue_from_saved(record["tissue_grid"], tensors)
        return model

    @classmethod
    def train_population(cls, folder, *, subjects: int, seed: int = 0, progress: bool = True,
                         log: Callable[[str], None] = print):
        """Train the corrector on ``subjects`` training anatomies (2 rollouts each) and save it (unfitted model)."""
        from HybridNeuroLib.hybrid.corrector import train_and_save

        return train_and_save(cls, folder, subjects=subjects, seed=seed, log=log)


def corrector_tissue(tissue: TissueMaps) -> TissueMaps:
    """``tissue`` on its 4 mm fitting grid as the corrector saw it in training: block means
    (:func:`~HybridNeuroLib.hybrid.corrector.coarse_tissue`) where the grid splits into whole 4 mm
    blocks (1, 2 or 4 mm isotropic), else linear resampling. From 2 mm the two agree; from 1 mm,
    linear resampling would average only the central 2³ of each block's 4³ voxels."""
    try:
        return coarse_tissue(tissue, COARSE_VOXEL_MM)
    except ValueError:  # anisotropic, or a spacing that does not divide 4 mm
        return tissue_on_grid(tissue, fitting_geometry(tissue.geometry, COARSE_VOXEL_MM))


def _check_coarse(spacing_mm: Sequence[float]) -> None:
    if not np.allclose(spacing_mm, COARSE_VOXEL_MM):
        raise ValueError(f"model {NAME!r}: the fitting grid has spacing {tuple(spacing_mm)} mm, the corrector needs "
                         f"{COARSE_VOXEL_MM:g} mm; give tissue maps with spacing ≤ {COARSE_VOXEL_MM:g} mm")
