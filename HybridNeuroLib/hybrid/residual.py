"""The parallel hybrid's pieces: the residual network F_net and the rollout du/dt = F_FK(u; θ) + F_net(u, tissue).

    >>> import torch
    >>> from HybridNeuroLib.hybrid.residual import ResidualNet
    >>> net = ResidualNet(voxel_mm=4.0)
    >>> u, features = torch.rand(6, 6, 6), torch.rand(3, 6, 6, 6)
    >>> rate = net(u, features, domain=torch.ones(6, 6, 6))
    >>> rate.shape, float(rate.detach().abs().max())      # a new network starts at exactly zero
    (torch.Size([6, 6, 6]), 0.0)

F_net(u, tissue) = u · g_max · tanh(CNN(u, F, p_wm, p_csf)) · domain, in 1/day: a 3×3×3
convolution then two 1×1×1 ones (local and translation-equivariant, like the PDE's own
operators) read the density u and the tissue channels — the diffusivity factor
F = p_wm + p_gm/r the physics uses, p_wm and p_csf — and give a per-cell rate correction g
bounded by ``max_rate_per_day`` (g_max, default 0.05/day, about the population ρ).
The factor u keeps the residual from creating tumour where there is none (so healthy
tissue stays healthy and the APHYNITY norm measures corrections to the lesion, not
background noise); the bound and the clamp below keep u in [0, 1]. The last layer starts
at zero: an untrained network adds nothing.

:func:`rollout` integrates by Lie splitting: each interval between output days is split
into equal steps of at most ``step_days``; per step the physics solver
(:meth:`HybridNeuroLib.physics.GrowthProblem.solve`, the fit's own solver) advances u over
Δt, then u ← clamp(u + Δt·F_net(u), 0, 1). The splitting error is O(Δt²·|F_net|·|F_FK|);
the explicit residual step u·(1 + Δt·g) is stable and never negative while
Δt·g_max ≤ 1 (checked; 20 days × 0.05/day), and costs one network evaluation per step
where Strang splitting would cost two (the network dominates the cost on CPU). Without a
network the rollout is *one* solve call over all output days — literally the call
:func:`HybridNeuroLib.physics.simulate` makes — so the parallel model without its network
reproduces the physics model's forecasts bit for bit.

Training: :class:`HybridObjective` is the fit's margin-loss objective with this rollout as the
model; :func:`train_residual` minimises the APHYNITY objective (:class:`Aphynity`) over
subjects with θ fixed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from HybridNeuroLib.fit.objective import Objective
from HybridNeuroLib.fit.observations import FitData
from HybridNeuroLib.fit.optimize import GrowthFit
from HybridNeuroLib.fit.settings import FitSettings
from HybridNeuroLib.physics import GrowthProblem
from HybridNeuroLib.physics.solvers import denormals_flushed

FEATURES = ("u", "diffusivity_factor", "wm", "csf")
ACTIVE_FROM_DENSITY = 1e-3   # F_net is evaluated where u reaches this (F_net ∝ u)


class ResidualNet(torch.nn.Module):
    """Small 3D CNN: (u, tissue channels) → rate correction in 1/day on the solver's box."""

    def __init__(self, voxel_mm: float, channels: int = 12, max_rate_per_day: float = 0.05, seed: int = 0):
        super().__init__()
        if not (math.isfinite(voxel_mm) and voxel_mm > 0):
            raise ValueError(f"ResidualNet: voxel_mm must be a finite number > 0, got {voxel_mm!r}")
        self.voxel_mm, self.channels, self.max_rate_per_day = float(voxel_mm), int(channels), float(max_rate_per_day)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)  # reproducible initialisation without disturbing the caller's stream
        # one 3×3×3 layer sees the neighbourhood (gradients, curvature of u and tissue); the 1×1×1
        # layers mix channels per voxel: measured 5× cheaper on CPU than three 3×3×3 layers
        self.layers = torch.nn.Sequential(
            torch.nn.Conv3d(len(FEATURES), channels, 3), torch.nn.SiLU(),
            torch.nn.Conv3d(channels, channels, 1), torch.nn.SiLU(),
            torch.nn.Conv3d(channels, 1, 1))
        torch.random.set_rng_state(generator_state)
        torch.nn.init.zeros_(self.layers[-1].weight)
        torch.nn.init.zeros_(self.layers[-1].bias)

    def architecture(self) -> dict:
        return {"voxel_mm": self.voxel_mm, "channels": self.channels, "max_rate_per_day": self.max_rate_per_day,
                "features": list(FEATURES), "active_from_density": ACTIVE_FROM_DENSITY}

    @classmethod
    def from_architecture(cls, record: dict) -> ResidualNet:
        if list(record.get("features", ())) != list(FEATURES):
            raise ValueError(f"residual network: features {record.get('features')} differ from this software's "
                             f"{list(FEATURES)}; retrain the network")
        return cls(record["voxel_mm"], record["channels"], record["max_rate_per_day"])

    def forward(self, u: torch.Tensor, features: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """Rate (1/day) on u's grid; ``features`` = the tissue channels ``[3, k, j, i]``.

        Evaluated on the bounding box of u ≥ ``ACTIVE_FROM_DENSITY`` only (zero elsewhere, where
        |F_net| ≤ 5e-5/day anyway): the lesion is a small part of the box early on. Inside it the
        result equals the whole-box convolution with zero padding.
        """
        active = (u.detach() >= ACTIVE_FROM_DENSITY).nonzero()
        if not len(active):
            return torch.zeros_like(u)
        low, high = active.min(0).values.tolist(), (active.max(0).values + 1).tolist()
        window = tuple(slice(a, b + 2) for a, b in zip(low, high))   # +1 voxel each side, in padded indices
        x = torch.nn.functional.pad(torch.cat([u[None], features]), (1, 1) * 3)[(slice(None), *window)]
        inner = tuple(slice(a, b) for a, b in zip(low, high))
        rate = u[inner] * self.max_rate_per_day * torch.tanh(self.layers(x[None])[0, 0]) * domain[inner]
        pads = [n for axis in (2, 1, 0) for n in (low[axis], u.shape[axis] - high[axis])]
        return torch.nn.functional.pad(rate, pads)


def tissue_features(problem: GrowthProblem) -> torch.Tensor:
    """The network's tissue channels on the solver's box: diffusivity factor, p_wm, p_csf."""
    tissue, parameters = problem.tissue, problem.parameters
    maps = (tissue.relative_diffusivity(parameters.wm_to_gm_ratio, parameters.tissue_threshold),
            tissue.wm, tissue.csf)
    stacked = np.stack([np.ascontiguousarray(problem.crop.crop(m), np.float32) for m in maps])
    return torch.from_numpy(stacked).to(problem.device)


@dataclass
class Rollout:
    """States at the output days; ``residual_norm``: ΣF_net²/Σu² over the box and the steps ((1/day)²).

    That is the u²-weighted mean square of the relative rate F_net/u: independent of the box and
    lesion size (a plain mean over the box would be diluted by the empty tissue around a lesion).
    """

    states: list[torch.Tensor]
    residual_norm: torch.Tensor | float = 0.0
    residual_steps: int = 0


def rollout(problem: GrowthProblem, u0: torch.Tensor, dw_mm2_per_day, rho_per_day, days: Sequence[float], *,
            net: ResidualNet | None = None, features: torch.Tensor | None = None,
            step_days: float = 20.0) -> Rollout:
    """u from day 0 (``u0`` on the box) to each of ``days`` (sorted, relative, ≥ 0); see the module docstring."""
    days = [float(d) for d in days]
    if net is None:  # exactly the physics model's call
        return Rollout(problem.solve(u0, dw_mm2_per_day, rho_per_day, days)[0])
    if not (math.isfinite(step_days) and 0 < step_days * net.max_rate_per_day <= 1):
        raise ValueError(f"step_days must be > 0 and at most 1/max_rate_per_day = {1 / net.max_rate_per_day:g} "
                         f"days (stability of the residual step), got {step_days!r}")
    if features is None:
        features = tissue_features(problem)
    with denormals_flushed():  # the seed's far tail underflows; denormals are ~100× slower
        return _residual_rollout(problem, u0, dw_mm2_per_day, rho_per_day, days, net, features, step_days)


def _residual_rollout(problem, u0, dw_mm2_per_day, rho_per_day, days, net, features, step_days) -> Rollout:
    u, previous, states, squares, weights, count = u0, 0.0, [], 0.0, 0.0, 0
    for day in days:
        length = day - previous
        if length < 0:
            raise ValueError(f"rollout days must be increasing, got {days}")
        steps = math.ceil(length / step_days - 1e-9) if length > 0 else 0
        for _ in range(steps):
            dt = length / steps
            u = problem.solve(u, dw_mm2_per_day, rho_per_day, [dt])[0][0]
            rate = net(u, features, problem.domain)
            squares = squares + rate.square().sum()
            weights = weights + float(u.detach().square().sum())   # a weight, not a path to shrink u
            count += 1
            u = (u + dt * rate).clamp(0.0, 1.0)
        previous = day
        states.append(u)
    return Rollout(states, squares / max(weights, 1e-12), count)


class HybridObjective(Objective):
    """The fit's objective (margin loss over the observed days) with the hybrid rollout as the model.

    After each :meth:`loss` the trajectory's residual norm (:class:`Rollout`) is in ``residual_norm``.
    """

    def __init__(self, data: FitData, settings: FitSettings, net: ResidualNet, *, step_days: float,
                 device: torch.device | str | None = "cpu"):
        super().__init__(data, settings, device=device)
        self.net, self.step_days = net, step_days
        self.features = tissue_features(self.problem)
        self.residual_norm: torch.Tensor | float = 0.0

    def states(self, dw, rho, centre_ras_mm, radius_mm, onset_days=None, peak=None) -> list[torch.Tensor]:
        # before the first timepoint (a fitted onset) the physics alone grew the seed, as in the fit
        run = rollout(self.problem, self.first_state(dw, rho, centre_ras_mm, radius_mm, onset_days, peak), dw, rho,
                      self.days, net=self.net, features=self.features, step_days=self.step_days)
        self.residual_norm = run.residual_norm
        return run.states


@dataclass(frozen=True)
class Aphynity:
    """min ‖F_net‖² subject to the data (Yin et al., ICLR 2021): loss = ‖F_net‖²/scale² + λ·L_data,
    λ ← λ + ``lambda_step``·L_data after every pass over the subjects (Uzawa's increasing schedule).

    ‖F_net‖² is the rollout's ``residual_norm`` (:class:`Rollout`), in units of
    ``norm_scale_per_day``². ``anchor_weight`` > 0 adds anchor_weight·Σ(w − w₀)²/Σw₀², a pull
    towards reference weights w₀ (the population network when fine-tuning one patient).
    """

    epochs: int = 12
    learning_rate: float = 3e-3
    lambda_start: float = 1.0
    lambda_step: float = 1.0
    norm_scale_per_day: float = 0.01
    anchor_weight: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def train_residual(net: ResidualNet, subjects: Sequence[tuple[HybridObjective, GrowthFit]], schedule: Aphynity, *,
                   seed: int = 0, anchor: dict[str, torch.Tensor] | None = None,
                   on_epoch: Callable[[dict], None] = lambda row: None) -> list[dict]:
    """Train ``net`` in place, physics parameters fixed per subject; returns one row per epoch
    (mean data loss, mean residual norm, λ). Deterministic for a fixed ``seed`` on CPU."""
    optimizer = torch.optim.Adam(net.parameters(), lr=schedule.learning_rate)
    rng = np.random.default_rng(seed)
    weight, history = schedule.lambda_start, []
    reference = {name: value.detach().clone() for name, value in (anchor or {}).items()}
    reference_size = sum(float(value.square().sum()) for value in reference.values()) or 1.0
    with denormals_flushed():
        for epoch in range(schedule.epochs):
            data_losses, norms = [], []
            for index in rng.permutation(len(subjects)):
                objective, fit = subjects[index]
                optimizer.zero_grad()
                data = objective.loss(*_fixed(fit), onset_days=torch.tensor(fit.onset_days, dtype=torch.float64))
                norm = objective.residual_norm / schedule.norm_scale_per_day ** 2
                total = weight * data + norm
                if reference and schedule.anchor_weight > 0:
                    drift = sum((p - reference[name]).square().sum() for name, p in net.named_parameters())
                    total = total + schedule.anchor_weight * drift / reference_size
                total.backward()
                optimizer.step()
                data_losses.append(float(data.detach()))
                norms.append(float(torch.as_tensor(norm).detach()))
            row = {"epoch": epoch + 1, "data_loss": float(np.mean(data_losses)),
                   "residual_norm": float(np.mean(norms)), "lambda": weight}
            history.append(row)
            on_epoch(row)
            weight += schedule.lambda_step * row["data_loss"]
    return history


def _fixed(fit: GrowthFit) -> tuple[torch.Tensor, ...]:
    return (torch.tensor(fit.dw_mm2_per_day, dtype=torch.float64), torch.tensor(fit.rho_per_day, dtype=torch.float64),
            torch.tensor(fit.centre_ras_mm, dtype=torch.float64), torch.tensor(fit.radius_mm, dtype=torch.float64))
