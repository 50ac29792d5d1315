"""The neural ODE's building blocks: patient data on the coarse box, integration, losses (no model class).

    >>> from HybridNeuroLib.hybrid.neural_ode_core import bounded
    >>> import torch
    >>> [round(float(bounded(torch.tensor(v), (0.02, 1.5))), 4) for v in (0.0, 5.0)]  # exp(v), kept in bounds
    [1.0, 1.5]

Shared by the model (:mod:`HybridNeuroLib.hybrid.neural_ode`) and its population training
(:mod:`HybridNeuroLib.hybrid.neural_ode_training`), so that neither imports the other's module
both ways. See :mod:`HybridNeuroLib.hybrid.neural_ode` for the design.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torchdiffeq import odeint

from HybridNeuroLib.fit.observations import FitData, prepare_observations
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.hybrid.base import LabelsByDay
from HybridNeuroLib.hybrid.ode_field import FieldNetwork, VectorField
from HybridNeuroLib.labels import ImagingThresholds
from HybridNeuroLib.physics import FisherKolmogorov, ScalarDiffusion, TissueMaps

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
