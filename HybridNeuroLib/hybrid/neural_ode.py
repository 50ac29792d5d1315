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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torchdiffeq import odeint

from HybridNeuroLib.fit import Forecast
from HybridNeuroLib.fit.predict import forecast_from_members
from HybridNeuroLib.fit.observations import FitData, prepare_observations, resample_array
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.hybrid.base import (PRETRAINED_ROOT, ForecastModel, LabelsByDay, geometry_from_record,
                                        geometry_record, load_model, register)
from HybridNeuroLib.hybrid.ode_field import FieldNetwork, VectorField
from HybridNeuroLib.labels import ImagingThresholds
from HybridNeuroLib.physics import FisherKolmogorov, ScalarDiffusion, TissueMaps
from HybridNeuroLib.progress import Progress

DEFAULT_WEIGHTS = PRETRAINED_ROOT / "neural-ode"
VARIANTS = {False: "data-only", True: "physics"}
WHOLE_LEVEL, CORE_LEVEL = 0.5, 0.3          # u = 0.5·whole + 0.3·core (see the module docstring)
SOFT_WIDTH = 0.05                           # sigmoid width of the soft labels in the loss (density units)
CORE_WEIGHT = 0.25
DW_BOUNDS_MM2_PER_DAY, RHO_BOUNDS_PER_DAY = (0.02, 1.5), (0.005, 0.2)
WM_TO_GM_RATIO, TISSUE_THRESHOLD = 10.0, 0.1
SPEED_SCALE_MM_PER_DAY = 0.05              # typical glioma front speed: code[0] starts at speed / this
PHYSICS_MAX_STEP_DAYS = 10.0               # the logistic term stiffens where a network pushes u past 1
RK4_STABILITY = 2.5                         # RK4 is stable for Δt·λ ≤ 2.78 on the negative real axis


# -- patient data on the coarse box ---------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BoxData:
    """One patient on the coarse box: tissue channels, diffusivity factor, states and targets per day."""

    geometry: ImageGeometry
    static: torch.Tensor        # [3, k, j, i]: p_wm, p_gm, domain
    diffusivity: torch.Tensor   # [k, j, i]: p_wm + p_gm/r in the domain, 0 outside
    days: tuple[float, ...]     # study days of the observations
    states: torch.Tensor        # [T, k, j, i]: density encoded from each day's labels
    whole: torch.Tensor         # [T, k, j, i]: whole-tumour fraction per voxel
    core: torch.Tensor          # [T, k, j, i]

    @classmethod
    def from_fit_data(cls, data: FitData) -> BoxData:
        tissue = data.tissue
        domain = tissue.domain_mask(TISSUE_THRESHOLD).astype(np.float32)
        static = torch.from_numpy(np.stack([tissue.wm, tissue.gm, domain]).astype(np.float32))
        diffusivity = torch.from_numpy(tissue.relative_diffusivity(WM_TO_GM_RATIO, TISSUE_THRESHOLD))
        whole = torch.from_numpy(np.stack([o.whole for o in data.observations]).astype(np.float32))
        core = torch.from_numpy(np.stack([o.core for o in data.observations]).astype(np.float32))
        days = tuple(data.first_day + o.day for o in data.observations)
        return cls(tissue.geometry, static, diffusivity, days, encode_state(whole, core), whole, core)

    @classmethod
    def prepare(cls, tissue: TissueMaps, labels_by_day: LabelsByDay, *, voxel_mm: float,
                margin_mm: float) -> BoxData:
        return cls.from_fit_data(prepare_observations(tissue, labels_by_day, voxel_mm=voxel_mm,
                                                      region_margin_mm=margin_mm))


def encode_state(whole: torch.Tensor, core: torch.Tensor) -> torch.Tensor:
    """Density from observed label fractions: the FLAIR front on the boundary, the core above θ_T1Gd."""
    return WHOLE_LEVEL * whole + CORE_LEVEL * core


def radial_speed_mm_per_day(box: BoxData, timepoints: int) -> float:
    """Growth of the equivalent-sphere radius of the whole tumour over the first ``timepoints`` days, mm/day."""
    voxel_mm3 = box.geometry.voxel_volume_mm3
    radius = [(3.0 * float(box.whole[n].sum()) * voxel_mm3 / (4.0 * math.pi)) ** (1.0 / 3.0)
              for n in (0, timepoints - 1)]
    return (radius[1] - radius[0]) / (box.days[timepoints - 1] - box.days[0])


def initial_code(box: BoxData, timepoints: int, code_size: int) -> torch.Tensor:
    """The code a fit starts from: the observed radial speed (in units of ``SPEED_SCALE_MM_PER_DAY``), then zeros."""
    code = torch.zeros(1, code_size)
    if code_size:
        code[0, 0] = radial_speed_mm_per_day(box, timepoints) / SPEED_SCALE_MM_PER_DAY
    return code


def pad_to(tensor: torch.Tensor, shape_kji: Sequence[int]) -> torch.Tensor:
    """Zero-pad the last three axes at their ends to ``shape_kji`` (zeros = outside the domain)."""
    pad = []
    for have, want in zip(reversed(tensor.shape[-3:]), reversed(tuple(shape_kji))):
        pad += [0, want - have]
    return torch.nn.functional.pad(tensor, pad)


# -- integration ---------------------------------------------------------------------------------------
def time_grid(offsets_days: Sequence[float], max_step_days: float) -> torch.Tensor:
    """0 = t₀ < t₁ … with every output offset on the grid and steps ≤ ``max_step_days``."""
    points = [0.0]
    for start, end in zip([0.0, *offsets_days[:-1]], offsets_days):
        steps = max(1, math.ceil((end - start) / max_step_days - 1e-9))
        points += [start + (end - start) * (n + 1) / steps for n in range(steps)]
    points[-1] = float(offsets_days[-1])
    return torch.tensor(points, dtype=torch.float64)


def integrate(field: torch.nn.Module, u0: torch.Tensor, offsets_days: Sequence[float],
              max_step_days: float) -> torch.Tensor:
    """States at ``offsets_days`` (ascending, > 0) after ``u0``: ``[len(offsets), *u0.shape]`` (fixed-grid RK4)."""
    offsets = [float(d) for d in offsets_days]
    if not offsets or offsets[0] <= 0 or any(b <= a for a, b in zip(offsets, offsets[1:])):
        raise ValueError(f"integration offsets must be positive and increasing days, got {offsets}")
    grid = time_grid(offsets, max_step_days).to(u0.dtype)
    times = torch.tensor([0.0, *offsets], dtype=u0.dtype)
    # the grid holds every output time, so the solver returns grid states exactly (no interpolation)
    return odeint(field, u0, times, method="rk4", options={"grid_constructor": lambda f, y, t: grid})[1:]


def bounded(log_value: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    return torch.exp(log_value.clamp(math.log(bounds[0]), math.log(bounds[1])))


@dataclass(eq=False)
class Trajectories:
    """A batch of patient boxes (padded to one shape) and their per-patient parameters, ready to integrate."""

    static: torch.Tensor                  # [B, 3, k, j, i]
    diffusivity: torch.Tensor             # [B, k, j, i]
    spacing_kji_mm: tuple[float, float, float]
    network: FieldNetwork
    code: torch.Tensor                    # [B, code_size]
    log_physics: torch.Tensor | None      # [B, 2]: log D_w, log ρ (None: data-only)
    max_step_days: float

    def field(self) -> tuple[VectorField, float]:
        """The vector field and the step size it allows."""
        if self.log_physics is None:
            return VectorField(self.network, self.static, self.code), self.max_step_days
        step = min(self.max_step_days, PHYSICS_MAX_STEP_DAYS)
        dw = bounded(self.log_physics[:, 0], DW_BOUNDS_MM2_PER_DAY)
        rho = bounded(self.log_physics[:, 1], RHO_BOUNDS_PER_DAY)
        models = []
        for n in range(self.static.shape[0]):
            operator = ScalarDiffusion(self.diffusivity[n], self.spacing_kji_mm)
            models.append(FisherKolmogorov(operator, dw[n], rho[n], domain=self.static[n, 2]))
            step = min(step, RK4_STABILITY / (2.0 * max(models[-1].diffusion_rate_per_day(), 1e-12)))
        return VectorField(self.network, self.static, self.code, models), step

    def run(self, u0: torch.Tensor, offsets_days: Sequence[float]) -> torch.Tensor:
        field, step = self.field()
        return integrate(field, u0, offsets_days, step)


def soft_dice(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − soft Dice over the last three axes (per batch element)."""
    overlap = (predicted * target).sum((-3, -2, -1))
    return 1.0 - 2.0 * overlap / (predicted.sum((-3, -2, -1)) + target.sum((-3, -2, -1)) + 1e-6)


def label_loss(states: torch.Tensor, whole: torch.Tensor, core: torch.Tensor,
               thresholds: ImagingThresholds = ImagingThresholds()) -> torch.Tensor:
    """Per-trajectory loss: whole-tumour soft Dice + ¼ core soft Dice (core only where observed)."""
    loss = soft_dice(torch.sigmoid((states - thresholds.edema_flair) / SOFT_WIDTH), whole)
    has_core = (core.sum((-3, -2, -1)) > 0).to(states.dtype)
    core_loss = soft_dice(torch.sigmoid((states - thresholds.enhancing_t1gd) / SOFT_WIDTH), core)
    return loss + CORE_WEIGHT * has_core * core_loss


def transition_pairs(days: Sequence[float]) -> tuple[list[int], list[float], list[tuple[int, int, int]]]:
    """Starts (every day but the last), the union of offsets to later days, and (start, offset, target) triples."""
    starts = list(range(len(days) - 1))
    offsets = sorted({days[j] - days[i] for i in starts for j in range(i + 1, len(days))})
    triples = [(n, offsets.index(days[j] - days[i]), j) for n, i in enumerate(starts) for j in range(i + 1, len(days))]
    return starts, offsets, triples


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


