"""Neural ODE forecasting model: lesion density dynamics learned by a network, integrated by torchdiffeq.

    >>> import numpy as np
    >>> from HybridNeuroLib.geometry import ImageGeometry
    >>> from HybridNeuroLib.physics import TissueMaps
    >>> from HybridNeuroLib.hybrid import make_model
    >>> grid = ImageGeometry((12, 12, 12), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    >>> wm = np.ones(grid.shape_kji, np.float32)
    >>> tissue = TissueMaps(gm=0 * wm, wm=wm, csf=0 * wm, geometry=grid)
    >>> seg = np.zeros(grid.shape_kji, np.uint8); seg[5:8, 5:8, 5:8] = 2
    >>> later = np.zeros(grid.shape_kji, np.uint8); later[4:9, 4:9, 4:9] = 2
    >>> model = make_model("neural-ode", fit_iterations=2).fit(
    ...     tissue, [(0.0, grid.image_from_array(seg)), (30.0, grid.image_from_array(later))], progress=False)
    >>> forecast = model.predict([30, 60])
    >>> forecast.volumes[1]["whole_ml"] > 0
    True

Design (issue #7). **State**: tumour-cell density u on a coarse box (``box_voxel_mm`` = 4 mm) around
the observed lesions grown by ``box_margin_mm`` — the fitting grid of
:func:`HybridNeuroLib.fit.observations.prepare_observations`, which also checks the labels. A dense
coarse field rather than a low-dimensional code because it must give 3D labels scored voxel by voxel
against the truth, it keeps the anatomy (CSF walls, white matter) in the state, and a local CNN on it
is translation-invariant — a learned PDE — so one small population network serves every lesion
position and box size. **Vector field** (:mod:`.ode_field`): du/dt = domain·N(u, p_wm, p_gm, z)
("data-only": no physics), or with ``physics_term=True`` the parallel hybrid
FK(u; D_w, ρ) + domain·N(...) with :class:`~HybridNeuroLib.physics.FisherKolmogorov` on a
:class:`~HybridNeuroLib.physics.ScalarDiffusion` of the same box (D = D_w·(p_wm + p_gm/10)).
**State from labels**: u = 0.5·whole + 0.3·core (fractions of each 4 mm voxel), so the visible
front (u = θ_FLAIR = 0.25) sits on the segmented boundary, tumour core starts above θ_T1Gd.
**Per patient** (network fixed): the code z (and log D_w, log ρ with the physics term) is fitted by
Adam so that integrating from every observed timepoint reproduces each later observed one (soft
whole-tumour Dice + ¼ core Dice); the forecast integrates from the *last* observed state — the
model's own prediction replaces nothing that was seen. **Integration**: ``torchdiffeq.odeint``,
fixed-grid RK4 whose grid contains every output day (no interpolation) with steps ≤
``max_step_days`` (20 days: the data-only network is trained on that grid, so it is part of the
learned dynamics) and, with the physics term, ≤ 10 days and inside RK4's stability limit of the
diffusion term (the logistic term stiffens where u leaves [0, 1]; training penalises that).
**Labels**: the density resampled linearly (world space) onto ``grid`` and thresholded with
:func:`HybridNeuroLib.labels.density_to_labels` (default :class:`~HybridNeuroLib.labels.ImagingThresholds`);
the probability map is 0/1 (the whole tumour: no ensemble). **Population training**
(:meth:`NeuralOdeModel.train_population`, ``hybridneuro train-hybrid neural-ode``) fits both
networks (data-only and physics-term) with per-subject codes (auto-decoder) on synthetic training
cases (days 0–240: from days 0, 60, 120 to +60 and +120 days). The shipped weights are in
``models/neural-ode/`` (see its MODEL_CARD.md).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from HybridNeuroLib.fit import Forecast
from HybridNeuroLib.fit.predict import forecast_from_members
from HybridNeuroLib.fit.observations import resample_array
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.hybrid.base import (PRETRAINED_ROOT, ForecastModel, LabelsByDay, geometry_from_record,
                                        geometry_record, load_model, register)
from HybridNeuroLib.hybrid.ode_field import FieldNetwork
from HybridNeuroLib.labels import ImagingThresholds
from HybridNeuroLib.physics import TissueMaps
from HybridNeuroLib.progress import Progress

DEFAULT_WEIGHTS = PRETRAINED_ROOT / "neural-ode"
from HybridNeuroLib.hybrid.neural_ode_core import (VARIANTS, DW_BOUNDS_MM2_PER_DAY, RHO_BOUNDS_PER_DAY,
                                                  BoxData, initial_code, bounded, Trajectories, label_loss,
                                                  transition_pairs)


# -- the model -------------------------------------------------------------------------------------------
@register
class NeuralOdeModel(ForecastModel):
    """Neural ODE on a coarse lesion box: population network, per-patient code (and D_w, ρ with physics)."""

    name = "neural-ode"
    minimum_timepoints = 2

    def __init__(self, *, physics_term: bool = False, weights: str | Path | None = DEFAULT_WEIGHTS,
                 fit_iterations: int = 20, learning_rate: float = 0.1, max_step_days: float = 20.0,
                 box_voxel_mm: float = 4.0, box_margin_mm: float = 24.0, seed: int = 0):
        """``weights``: a population folder from ``train-hybrid neural-ode`` (default: the shipped one;
        None: untrained network, for tests)."""
        if fit_iterations < 0 or not (learning_rate > 0 and max_step_days > 0 and box_voxel_mm > 0
                                      and box_margin_mm >= 0):
            raise ValueError("neural-ode: fit_iterations must be ≥ 0 and learning_rate, max_step_days, box_voxel_mm "
                             f"> 0, box_margin_mm ≥ 0; got {fit_iterations}, {learning_rate}, {max_step_days}, "
                             f"{box_voxel_mm}, {box_margin_mm}")
        self.physics_term = bool(physics_term)
        self.options = {"fit_iterations": int(fit_iterations), "learning_rate": float(learning_rate),
                        "max_step_days": float(max_step_days), "box_voxel_mm": float(box_voxel_mm),
                        "box_margin_mm": float(box_margin_mm), "seed": int(seed)}
        self.weights = None if weights is None else str(weights)
        self.networks: dict[str, FieldNetwork] = {}
        self.population: dict = {"dw_mm2_per_day": 0.1, "rho_per_day": 0.02}
        self.training: dict = {}
        self.box: BoxData | None = None
        self.tissue_grid: ImageGeometry | None = None
        self.code: torch.Tensor | None = None
        self.log_physics: torch.Tensor | None = None
        self.fit_record: dict = {}

    # -- networks ----------------------------------------------------------------------------------------
    @property
    def variant(self) -> str:
        return VARIANTS[self.physics_term]

    def network(self) -> FieldNetwork:
        """The population network of this variant (loaded from ``weights`` on first use)."""
        if self.variant not in self.networks:
            if self.weights is None:
                torch.manual_seed(self.options["seed"])
                self.networks[self.variant] = FieldNetwork()
            else:
                population = load_model(self.weights, expected=NeuralOdeModel.name)
                if self.variant not in population.networks:
                    raise ValueError(f"model 'neural-ode': {self.weights} holds no {self.variant!r} network "
                                     f"(has {sorted(population.networks)}); retrain with train-hybrid neural-ode")
                self.networks[self.variant] = population.networks[self.variant]
                self.population = population.population
        network = self.networks[self.variant]
        network.requires_grad_(False)
        return network

    def _trajectories(self, box: BoxData, code: torch.Tensor, log_physics: torch.Tensor | None,
                      batch: int) -> Trajectories:
        spacing = tuple(float(h) for h in reversed(box.geometry.spacing_mm))
        return Trajectories(box.static.expand(batch, -1, -1, -1, -1), box.diffusivity.expand(batch, -1, -1, -1),
                            spacing, self.network(), code.expand(batch, -1),
                            None if log_physics is None else log_physics.expand(batch, -1),
                            self.options["max_step_days"])

    # -- fit ---------------------------------------------------------------------------------------------
    def _fit(self, tissue: TissueMaps, labels_by_day: LabelsByDay, *, progress: bool,
             log: Callable[[str], None]) -> None:
        started = time.perf_counter()
        box = BoxData.prepare(tissue, labels_by_day, voxel_mm=self.options["box_voxel_mm"],
                              margin_mm=self.options["box_margin_mm"])
        network = self.network()
        code = initial_code(box, len(box.days), network.code_size).requires_grad_(True)
        parameters = [code]
        log_physics = None
        if self.physics_term:
            log_physics = torch.tensor([[math.log(self.population["dw_mm2_per_day"]),
                                         math.log(self.population["rho_per_day"])]], requires_grad=True)
            parameters.append(log_physics)
        starts, offsets, triples = transition_pairs(box.days)
        start_index, offset_index, target_index = (list(column) for column in zip(*triples))
        optimizer = torch.optim.Adam(parameters, lr=self.options["learning_rate"])
        best = (math.inf, code.detach().clone(), None if log_physics is None else log_physics.detach().clone())
        history = []
        with Progress("fit neural-ode", total=self.options["fit_iterations"] + 1, enabled=progress) as bar:
            for iteration in range(self.options["fit_iterations"] + 1):
                optimizer.zero_grad()
                trajectories = self._trajectories(box, code, log_physics, len(starts))
                states = trajectories.run(box.states[starts], offsets)
                loss = label_loss(states[offset_index, start_index], box.whole[target_index],
                                  box.core[target_index]).mean()
                history.append(round(loss.item(), 6))
                if history[-1] < best[0]:
                    best = (history[-1], code.detach().clone(),
                            None if log_physics is None else log_physics.detach().clone())
                bar.advance()
                if iteration == self.options["fit_iterations"] or not math.isfinite(history[-1]):
                    break  # (a NaN gradient would carry into every later Adam step: keep the best so far)
                loss.backward()
                optimizer.step()
        if not math.isfinite(best[0]):
            raise ValueError(f"model '{self.name}': every fit iteration diverged (non-finite density); the learned "
                             "dynamics are outside their training range for this lesion's growth. Use the 'physics' "
                             "model for this patient")
        self.box, self.tissue_grid = box, tissue.geometry
        self.code, self.log_physics = best[1], best[2]
        self.fit_record = {"loss": best[0], "loss_history": history,
                           "wall_time_s": round(time.perf_counter() - started, 3)}
        if self.log_physics is not None:
            self.fit_record.update(self.physics_parameters())
        log(f"neural-ode ({self.variant}): loss {best[0]:.4f} after {self.options['fit_iterations']} iterations")

    def physics_parameters(self) -> dict:
        if self.log_physics is None:
            return {}
        return {"dw_mm2_per_day": float(bounded(self.log_physics[0, 0], DW_BOUNDS_MM2_PER_DAY)),
                "rho_per_day": float(bounded(self.log_physics[0, 1], RHO_BOUNDS_PER_DAY))}

    # -- predict -----------------------------------------------------------------------------------------
    def predict(self, days: Sequence[float], *, grid: ImageGeometry | None = None, progress: bool = False) -> Forecast:
        if self.box is None:
            raise ValueError("model 'neural-ode': not fitted yet; call fit(...) or load a saved model first")
        days = tuple(sorted({float(d) for d in days}))
        if not days:
            raise ValueError("predict: no days given; list the study days to forecast")
        if days[0] < self.box.days[0]:
            raise ValueError(f"predict: day {days[0]:g} lies before the first fitted timepoint "
                             f"(day {self.box.days[0]:g}); the model forecasts forward only")
        grid = self.tissue_grid if grid is None else grid
        densities = {}
        with torch.no_grad():
            for start, day0 in enumerate(self.box.days):   # each day from the latest observation before it
                later = [d for d in days if d >= day0 and (start + 1 == len(self.box.days)
                                                           or d < self.box.days[start + 1])]
                if not later:
                    continue
                ahead = [d - day0 for d in later if d > day0]
                states = (self._trajectories(self.box, self.code, self.log_physics, 1)
                          .run(self.box.states[start:start + 1], ahead)[:, 0] if ahead else [])
                for d in later:
                    densities[d] = self.box.states[start] if d == day0 else states[ahead.index(d - day0)]
        diverged = [day for day in days if not bool(torch.isfinite(densities[day]).all())]
        if diverged:  # NaN would threshold to an empty lesion: a forecast of cure, silently wrong
            raise ValueError(f"model '{self.name}': the forecast diverged (non-finite density) by day {diverged[0]:g}; "
                             "the learned dynamics leave their training range this far ahead. Forecast fewer days "
                             "or use the 'physics' model")
        arrays = [np.clip(resample_array(self.box.geometry.image_from_array(densities[day].clamp(0.0, 1.0).numpy()),
                                         grid), 0.0, 1.0) for day in days]
        return forecast_from_members(days, [arrays], grid, ImagingThresholds())   # one member: 0/1 probability

    # -- checkpoints ---------------------------------------------------------------------------------------
    def to_record(self) -> dict:
        record = {"physics_term": self.physics_term, "options": self.options, "weights": self.weights,
                  "networks": {name: net.config() for name, net in self.networks.items()},
                  "population": self.population, "training": self.training}
        if self.box is not None:
            record["patient"] = {"box_grid": geometry_record(self.box.geometry), "days": list(self.box.days),
                                 "tissue_grid": geometry_record(self.tissue_grid),
                                 "fit": self.fit_record, **self.physics_parameters()}
        return record

    def tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"network.{name}.{key}": value for name, net in self.networks.items()
                   for key, value in net.state_dict().items()}
        if self.box is not None:
            tensors.update({"box.static": self.box.static, "box.diffusivity": self.box.diffusivity,
                            "box.states": self.box.states, "box.whole": self.box.whole, "box.core": self.box.core,
                            "patient.code": self.code})
            if self.log_physics is not None:
                tensors["patient.log_physics"] = self.log_physics
        return tensors

    @classmethod
    def from_record(cls, record: dict, tensors: dict[str, torch.Tensor]) -> NeuralOdeModel:
        model = cls(physics_term=record["physics_term"], weights=record["weights"], **record["options"])
        model.population, model.training = record["population"], record.get("training", {})
        for name, config in record["networks"].items():
            network = FieldNetwork(**config)
            prefix = f"network.{name}."
            network.load_state_dict({key[len(prefix):]: value for key, value in tensors.items()
                                     if key.startswith(prefix)})
            model.networks[name] = network
        patient = record.get("patient")
        if patient is not None:
            model.box = BoxData(geometry_from_record(patient["box_grid"]), tensors["box.static"],
                                tensors["box.diffusivity"], tuple(patient["days"]), tensors["box.states"],
                                tensors["box.whole"], tensors["box.core"])
            model.tissue_grid = geometry_from_record(patient["tissue_grid"])
            model.code, model.log_physics = tensors["patient.code"], tensors.get("patient.log_physics")
            model.fit_record = patient["fit"]
        return model

    # -- population training -----------------------------------------------------------------------------
    @classmethod
    def train_population(cls, folder: Path, *, subjects: int, seed: int = 0, progress: bool = True,
                         log: Callable[[str], None] = print, steps: int = 150, batch: int = 4) -> Path:
        """Train the data-only and the physics-term networks on ``subjects`` training cases into ``folder``.

        Each network gets ``steps`` Adam steps on random batches of ``batch`` trajectories (subject,
        start day) with its own per-subject codes (auto-decoder); writes ``model.json``, ``tensors.pt``
        and ``MODEL_CARD.md``. Reproducible on CPU for the same arguments.
        """
        from HybridNeuroLib.hybrid.cohort import synthetic_case, training_seeds
        from HybridNeuroLib.hybrid.neural_ode_training import model_card, train_network

        started = time.perf_counter()
        seeds = training_seeds(subjects)
        boxes = []
        with Progress("training cases", total=len(seeds), enabled=progress) as bar:
            for case_seed in seeds:
                case = synthetic_case(case_seed)
                boxes.append(BoxData.prepare(case.tissue, case.all_days, voxel_mm=4.0, margin_mm=12.0))
                bar.advance()
        model = cls(weights=None, seed=seed)
        training = {"subjects": subjects, "seed": seed, "steps": steps, "batch": batch, "case_seeds": seeds,
                    "case_days": list(boxes[0].days), "box": "observations' box + 12 mm at 4 mm"}
        for physics_term in (False, True):
            network, summary, physics = train_network(boxes, physics_term, steps=steps, batch=batch, seed=seed,
                                                      max_step_days=model.options["max_step_days"],
                                                      progress=progress, log=log)
            model.networks[VARIANTS[physics_term]] = network
            training[VARIANTS[physics_term]] = summary
            if physics:
                model.population = physics
        training["wall_time_s"] = round(time.perf_counter() - started, 1)
        model.training = training
        folder = Path(folder)
        path = model.save(folder)
        (folder / "MODEL_CARD.md").write_text(model_card(training, model.population), encoding="utf-8")
        log(f"neural-ode population networks trained in {training['wall_time_s']:.0f} s → {path}")
        return path


@register
class NeuralOdePhysicsModel(NeuralOdeModel):
    """The neural ODE whose vector field includes the Fisher–Kolmogorov term: ``physics_term=True`` by name."""

    name = "neural-ode-physics"

    def __init__(self, *, physics_term: bool = True, **options):
        if not physics_term:
            raise ValueError("model 'neural-ode-physics' always has the physics term; use 'neural-ode' without it")
        super().__init__(physics_term=True, **options)


