"""The parallel hybrid: du/dt = F_FK(u; θ) + F_net(u, tissue), APHYNITY-style; and its parallel-series variant.

    >>> from HybridNeuroLib.hybrid import make_model
    >>> model = make_model("parallel")          # the shipped population F_net; then fit(...), predict([180, 240])
    >>> model.name, model.minimum_timepoints, model.net.voxel_mm
    ('parallel', 2, 2.0)
    >>> make_model("parallel", use_network=False).net is None    # the physics model exactly
    True

θ = (D_w, ρ, seed) keeps its meaning: per patient the physics is fitted first, exactly as the
``physics`` model does (:func:`HybridNeuroLib.fit.fit_growth`, same settings, same result), then
the population residual network F_net (:mod:`HybridNeuroLib.hybrid.residual`, trained once on a
synthetic cohort by :meth:`ParallelModel.train_population`) is fine-tuned for
``fine_tune_iterations`` steps on the observed days only, θ fixed, with strong regularisation:
the APHYNITY norm ‖F_net‖² plus a pull towards the population weights. Forecasts roll out
physics + residual from the fitted seed for the best fit and every ensemble member; the
probability map is the fraction of them whose whole tumour covers a voxel (as for the physics
model), so with ``members=0`` it is the best fit's 0/1 map.

Grids: the network was trained at ``net.voxel_mm`` (2 mm), so the rollout runs on the
requested grid coarsened to that spacing (:func:`~HybridNeuroLib.fit.observations.fitting_geometry`)
and the density is resampled (linearly, world space) onto the requested grid before labelling;
on a grid already that coarse (e.g. the 2 mm synthetic cases) nothing is resampled. Without
the network (``use_network=False``) the rollout is the physics model's own solver call on the
requested grid, so predictions equal the ``physics`` model's bit for bit.

``parallel-series``: the same model whose physics fit also descends from the series encoder's
estimate (:func:`HybridNeuroLib.hybrid.series.encoder_start`) beside the default starts.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import SimpleITK as sitk
import torch

from HybridNeuroLib import __version__
from HybridNeuroLib.fit import FitResult, FitSettings, Forecast, GrowthFit, fit_growth
from HybridNeuroLib.fit.observations import fitting_geometry, prepare_observations, resample_array
from HybridNeuroLib.fit.predict import forecast_from_members, initial_state, tissue_on_grid
from HybridNeuroLib.hybrid.cohort import evaluation_seeds, synthetic_case, training_seeds
from HybridNeuroLib.hybrid.base import (PRETRAINED_ROOT, ForecastModel, LabelsByDay, load_model, register,
                                        tissue_from_saved, tissue_record, tissue_tensors)
from HybridNeuroLib.hybrid.residual import Aphynity, HybridObjective, ResidualNet, rollout, tissue_features, \
    train_residual
from HybridNeuroLib.metrics import dice
from HybridNeuroLib.physics import GrowthProblem, TissueMaps
from HybridNeuroLib.progress import Progress
from HybridNeuroLib.synth.sample import cache_root

SHIPPED = PRETRAINED_ROOT / "parallel"
VALIDATION_SUBJECTS = 3
POPULATION_NET_NOTE = ("0.05/day · tanh(CNN(u, p_wm + p_gm/r, p_wm, p_csf)) · domain, "
                       "CNN = 3×3×3 conv (12 channels), two 1×1×1 convs, SiLU")
# per-patient fine-tuning: few steps, small rate, strong pull towards the population weights
FINE_TUNE = Aphynity(epochs=5, learning_rate=1e-3, lambda_step=0.0, anchor_weight=10.0)
# population training: physics fits of the training subjects (one start, no ensemble: θ only)
TRAINING_FIT = FitSettings(starts=1, iterations=40, members=0)
POPULATION = Aphynity(epochs=14, learning_rate=1e-2, lambda_start=1.0, lambda_step=1.0)


@register
class ParallelModel(ForecastModel):
    """Physics fit per patient + a population residual network, fine-tuned on the patient's days."""

    name = "parallel"
    minimum_timepoints = 2

    def __init__(self, settings: FitSettings = FitSettings(), *, pretrained: str | Path | None = SHIPPED,
                 use_network: bool = True, fine_tune_iterations: int = FINE_TUNE.epochs,
                 step_days: float = 20.0, device: torch.device | str | None = "cpu"):
        """``pretrained``: a population component folder (default: the shipped one), or None for an
        untrained network (F_net ≡ 0 until fine-tuned) at ``settings.voxel_mm``;
        ``use_network=False``: the physics model exactly."""
        if int(fine_tune_iterations) < 0:
            raise ValueError(f"model {self.name!r}: fine_tune_iterations must be ≥ 0, got {fine_tune_iterations!r}")
        self.settings, self.device = settings, device
        self.fine_tune_iterations, self.step_days = int(fine_tune_iterations), float(step_days)
        self.result: FitResult | None = None
        self.tissue: TissueMaps | None = None
        self.training: dict = {}
        self.schedule = FINE_TUNE
        self.net: ResidualNet | None = None
        if use_network:
            self.net = ResidualNet(settings.voxel_mm) if pretrained is None else self._population(pretrained)
            if self.net.voxel_mm != settings.voxel_mm:
                raise ValueError(f"model {self.name!r}: the network in {pretrained} was trained at "
                                 f"{self.net.voxel_mm:g} mm, the fit runs at voxel_mm = {settings.voxel_mm:g} mm; "
                                 "use the same voxel size or pretrained=None")
            if not 0 < self.step_days * self.net.max_rate_per_day <= 1:
                raise ValueError(f"model {self.name!r}: step_days must lie in (0, "
                                 f"{1 / self.net.max_rate_per_day:g}] days, got {step_days!r}")
        # every fit fine-tunes from the population weights, however often the model is refitted
        self.population_state = None if self.net is None else self._copy_state()

    def _copy_state(self) -> dict[str, torch.Tensor]:
        return {name: value.detach().clone() for name, value in self.net.state_dict().items()}

    def _population(self, folder: str | Path) -> ResidualNet:
        component = load_model(folder, expected="parallel")
        if component.net is None:
            raise ValueError(f"model {self.name!r}: {folder} holds no residual network")
        self.training = component.training
        fitted_lambda = component.training.get("lambda_final")
        if fitted_lambda is not None:  # the data/norm balance the population training ended with
            self.schedule = Aphynity(**{**FINE_TUNE.to_dict(), "lambda_start": float(fitted_lambda)})
        return component.net

    # -- fitting ------------------------------------------------------------------------
    def _extra_starts(self, tissue: TissueMaps, labels_by_day: LabelsByDay) -> list[GrowthFit]:
        return []

    def _fit(self, tissue: TissueMaps, labels_by_day: LabelsByDay, *, progress: bool,
             log: Callable[[str], None]) -> None:
        started = time.perf_counter()
        self.tissue = tissue
        self.result = fit_growth(tissue, labels_by_day, self.settings, device=self.device, progress=progress,
                                 log=log, extra_starts=self._extra_starts(tissue, labels_by_day))
        if self.net is not None:
            self._fine_tune(tissue, labels_by_day, progress=progress, log=log)
        self.training = {**self.training, "fit_wall_time_s": round(time.perf_counter() - started, 3)}

    def _fine_tune(self, tissue: TissueMaps, labels_by_day: LabelsByDay, *, progress: bool,
                   log: Callable[[str], None]) -> None:
        """From the population weights, on the observed days, θ fixed at the physics fit."""
        self.net.load_state_dict(self.population_state)
        if self.fine_tune_iterations == 0:
            return
        data = prepare_observations(tissue, labels_by_day, voxel_mm=self.settings.voxel_mm,
                                    shrink_tolerance=self.settings.shrink_tolerance,
                                    region_margin_mm=self.settings.region_margin_mm)
        objective = HybridObjective(data, self.settings, self.net, step_days=self.step_days, device=self.device)
        anchor = dict(self.population_state)
        schedule = Aphynity(**{**self.schedule.to_dict(), "epochs": self.fine_tune_iterations})
        with Progress("fine-tune", total=schedule.epochs, enabled=progress, unit="it") as bar:
            history = train_residual(self.net, [(objective, self.result.best)], schedule, seed=self.settings.seed,
                                     anchor=anchor, on_epoch=lambda row: bar.advance())
        self.training = {**self.training, "fine_tune": history}
        log(f"fine-tuned the residual network: data loss {history[0]['data_loss']:.4f} → "
            f"{history[-1]['data_loss']:.4f}, residual norm {history[-1]['residual_norm']:.4g}")

    # -- forecasting ----------------------------------------------------------------------
    def predict(self, days: Sequence[float], *, grid=None, progress: bool = False) -> Forecast:
        if self.result is None:
            raise ValueError(f"model {self.name!r}: not fitted yet; call fit(...) or load a saved model first")
        fit = self.result
        days = tuple(sorted({float(d) for d in days}))
        if not days:
            raise ValueError(f"model {self.name!r}: predict got no days; list the study days to forecast")
        if days[0] < fit.first_day:
            raise ValueError(f"model {self.name!r}: day {days[0]:g} lies before the fit's first timepoint "
                             f"(day {fit.first_day:g}); the model forecasts forward only")
        tissue = tissue_on_grid(self.tissue, grid)
        geometry = tissue.geometry
        run_tissue = tissue
        if self.net is not None and min(geometry.spacing_mm) < self.net.voxel_mm - 1e-6:
            # the network runs at the spacing it was trained at
            run_tissue = tissue_on_grid(self.tissue, fitting_geometry(geometry, self.net.voxel_mm))
        relative = [day - fit.first_day for day in days]
        with Progress("forecast", total=len(fit.ensemble), enabled=progress, unit="member") as bar:
            runs = []
            for member in fit.ensemble:
                runs.append(self._densities(run_tissue, member, relative, geometry))
                bar.advance()
        return forecast_from_members(days, runs, geometry, fit.settings.thresholds)

    def _densities(self, run_tissue: TissueMaps, member: GrowthFit, relative_days: list[float],
                   geometry) -> list[np.ndarray]:
        """One member's densities (float32 ``[k, j, i]``) on ``geometry`` at the relative days."""
        parameters = member.parameters(self.result.settings)
        problem = GrowthProblem(run_tissue, parameters, device=self.device)   # as simulate() builds it
        initial = initial_state(member, self.result.settings, run_tissue, self.device)  # as fit.predict
        with torch.inference_mode():
            u0 = problem.initial_density(initial)
            states = rollout(problem, u0, parameters.dw_mm2_per_day, parameters.rho_per_day, relative_days,
                             net=self.net, features=None if self.net is None else tissue_features(problem),
                             step_days=self.step_days).states
            arrays = [problem.to_full_grid(state) for state in states]
        if run_tissue.geometry == geometry:
            return arrays
        return [np.clip(resample_array(run_tissue.geometry.image_from_array(array), geometry), 0.0, 1.0)
                for array in arrays]

    # -- checkpoints ---------------------------------------------------------------------
    def to_record(self) -> dict:
        return {"settings": self.settings.to_dict(), "fit": None if self.result is None else self.result.to_dict(),
                "tissue_grid": None if self.tissue is None else tissue_record(self.tissue),
                "network": None if self.net is None else self.net.architecture(),
                "fine_tune_iterations": self.fine_tune_iterations, "step_days": self.step_days,
                "fine_tune_schedule": self.schedule.to_dict(), "training": self.training}

    def tensors(self) -> dict[str, torch.Tensor]:
        tensors = {} if self.tissue is None else tissue_tensors(self.tissue)
        if self.net is not None:
            tensors.update({f"net.{name}": value for name, value in self.net.state_dict().items()})
            if self.result is not None:   # fine-tuned: keep the population weights to refit from
                tensors.update({f"population.{name}": value for name, value in self.population_state.items()})
        return tensors

    @classmethod
    def from_record(cls, record: dict, tensors: dict[str, torch.Tensor]) -> ParallelModel:
        model = cls(FitSettings.from_dict(record["settings"]), pretrained=None, use_network=False,
                    fine_tune_iterations=record["fine_tune_iterations"], step_days=record["step_days"])
        if record["network"] is not None:
            model.net = ResidualNet.from_architecture(record["network"])
            model.net.load_state_dict({name[len("net."):]: value for name, value in tensors.items()
                                       if name.startswith("net.")})
            # a population component holds only its network: that is the population state
            model.population_state = {name[len("population."):]: value for name, value in tensors.items()
                                      if name.startswith("population.")} or model._copy_state()
        model.schedule = Aphynity(**record["fine_tune_schedule"])
        model.training = record.get("training", {})
        if record["fit"] is not None:
            model.result = FitResult.from_dict(record["fit"])
            model.tissue = tissue_from_saved(record["tissue_grid"], tensors)
        return model

    # -- population component -----------------------------------------------------------
    @classmethod
    def train_population(cls, folder: Path, *, subjects: int, seed: int = 0, progress: bool = True,
                         log: Callable[[str], None] = print) -> Path:
        """Train the shared F_net on ``subjects`` synthetic training cases (see the module docstring of
        :mod:`HybridNeuroLib.hybrid.residual`): per subject the physics is fitted on its observed days
        (0, 60, 120; ``TRAINING_FIT``), then F_net learns, θ fixed, to reproduce *all* its days
        including the future 180 and 240 — what Fisher–Kolmogorov misses. Writes the component and
        its ``MODEL_CARD.md`` (with a held-out check on evaluation cases) into ``folder``."""
        started = time.perf_counter()
        settings = FitSettings()
        model = cls(settings, pretrained=None)
        model.net = ResidualNet(settings.voxel_mm, seed=seed)
        cohort = []
        seeds = training_seeds(subjects)
        with Progress("physics fits", total=subjects, enabled=progress, unit="subject") as bar:
            for case_seed in seeds:
                case = synthetic_case(case_seed)
                fit = _training_fit(case_seed, case)
                data = prepare_observations(case.tissue, case.all_days, voxel_mm=settings.voxel_mm,
                                            region_margin_mm=settings.region_margin_mm)
                cohort.append((HybridObjective(data, TRAINING_FIT, model.net, step_days=model.step_days), fit))
                bar.advance()
        log(f"fitted the physics of {subjects} training subjects in {time.perf_counter() - started:.0f} s")
        history = train_residual(model.net, cohort, POPULATION, seed=seed, on_epoch=lambda row: log(
            f"epoch {row['epoch']}: data loss {row['data_loss']:.4f}, residual norm {row['residual_norm']:.4f}, "
            f"λ {row['lambda']:.3f}"))
        model.training = {"subjects": subjects, "training_seeds": seeds, "seed": seed, "fit": TRAINING_FIT.to_dict(),
                          "schedule": POPULATION.to_dict(), "history": history,
                          "lambda_final": history[-1]["lambda"] + POPULATION.lambda_step * history[-1]["data_loss"],
                          "train_wall_time_s": round(time.perf_counter() - started, 1)}
        model.population_state = model._copy_state()
        model.training["validation"] = _validate(model.net, model.step_days, VALIDATION_SUBJECTS)
        path = model.save(folder)
        (Path(folder) / "MODEL_CARD.md").write_text(_model_card(model.training), encoding="utf-8")
        return path


def _training_fit(case_seed: int, case) -> GrowthFit:
    """The physics fit of a training case on its observed days (cached beside the cases: it is
    deterministic and the slowest part of a training run)."""
    key = json.dumps([case_seed, TRAINING_FIT.to_dict()], sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    path = cache_root() / f"hybrid-cases-{__version__}" / f"parallel-fit-{case_seed}-{digest}.json"
    if path.is_file():
        try:
            return GrowthFit.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError):
            pass   # unreadable: fit again
    fit = fit_growth(case.tissue, case.observed, TRAINING_FIT, progress=False).best
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fit.to_dict()), encoding="utf-8")
    return fit


def _validate(net: ResidualNet, step_days: float, subjects: int) -> list[dict]:
    """Future whole-tumour Dice with and without the network on held-out evaluation cases (fit: TRAINING_FIT)."""
    rows = []
    for case_seed in evaluation_seeds(subjects):
        case = synthetic_case(case_seed)
        model = ParallelModel(TRAINING_FIT, pretrained=None, fine_tune_iterations=0, step_days=step_days)
        model.net = net
        model.population_state = model._copy_state()
        model.fit(case.tissue, case.observed, progress=False)
        future = [day for day, _ in case.future]
        hybrid = model.predict(future)
        model.net, trained = None, model.net
        physics = model.predict(future)
        model.net = trained
        for n, (day, truth) in enumerate(case.future):
            observed = sitk.GetArrayViewFromImage(truth) > 0
            rows.append({"seed": case_seed, "day": day,
                         "dice_parallel": round(dice(sitk.GetArrayViewFromImage(hybrid.labels[n]) > 0, observed), 4),
                         "dice_physics": round(dice(sitk.GetArrayViewFromImage(physics.labels[n]) > 0, observed), 4)})
    return rows


def _model_card(training: dict) -> str:
    rows = training["validation"]
    table = "\n".join(f"| {r['seed']} | {r['day']:g} | {r['dice_physics']:.3f} | {r['dice_parallel']:.3f} |"
                      for r in rows)
    mean = lambda key: float(np.mean([r[key] for r in rows]))  # noqa: E731
    last = training["history"][-1]
    return f"""# Parallel hybrid: population residual network F_net

**Trained on synthetic data only. Not a clinical model**: do not use it for diagnosis or treatment decisions.

- Model: du/dt = F_FK(u; θ) + F_net(u, tissue) (`HybridNeuroLib/hybrid/parallel.py`, `residual.py`);
  F_net = u · {POPULATION_NET_NOTE}
- Training command:
  `hybridneuro train-hybrid parallel --subjects {training['subjects']} --seed {training['seed']} --out <folder>`
- Data: {training['subjects']} synthetic training subjects (`hybrid.cohort.training_seeds`, 2 mm, truth =
  anisotropic FK + necrosis + heterogeneous ρ), observed days 0/60/120 for the physics fit, all days
  0/60/120/180/240 as training targets (margin loss on whole tumour and core).
- Per subject the physics (D_w, ρ, seed) is fitted on the observed days (1 start, 40 iterations) and kept
  fixed; F_net is trained with the APHYNITY objective ‖F_net‖²/(0.01/day)² + λ·loss, λ increased by the
  epoch's mean loss after each epoch ({training['schedule']['epochs']} epochs,
  Adam lr {training['schedule']['learning_rate']}).
- Final epoch: data loss {last['data_loss']:.4f}, residual norm {last['residual_norm']:.4f},
  λ {training['lambda_final']:.3f};
  wall time {training['train_wall_time_s']:.0f} s on CPU (the training subjects' physics fits are cached under
  `$HYBRIDNEURO_CACHE`; each uncached one adds ~20–60 s).

## Held-out check (evaluation seeds, physics fit with 1 start × 40 iterations, no fine-tuning)

Whole-tumour Dice of the forecast against the truth at the future days:

| seed | day | physics | parallel |
|---|---|---|---|
{table}

Mean: physics {mean('dice_physics'):.3f}, parallel {mean('dice_parallel'):.3f}.
"""


@register
class ParallelSeriesModel(ParallelModel):
    """The parallel model whose physics fit also starts from the series encoder's estimate."""

    name = "parallel-series"

    def _extra_starts(self, tissue: TissueMaps, labels_by_day: LabelsByDay) -> list[GrowthFit]:
        try:
            from HybridNeuroLib.hybrid.series import encoder_start
        except ImportError as error:
            raise ValueError(f"model {self.name!r}: the series encoder is not available ({error}); "
                             "use the 'parallel' model") from None
        estimate = encoder_start(tissue, labels_by_day)
        if not all(math.isfinite(v) for v in (estimate.dw_mm2_per_day, estimate.rho_per_day, estimate.radius_mm,
                                               *estimate.centre_ras_mm)):
            return []   # no usable estimate: the default starts alone, as in 'parallel'
        return [estimate]

    @classmethod
    def train_population(cls, folder: Path, *, subjects: int, seed: int = 0, progress: bool = True,
                         log: Callable[[str], None] = print) -> Path:
        raise ValueError(f"model {cls.name!r} shares the 'parallel' model's residual network; train that one "
                         "(hybridneuro train-hybrid parallel)")
