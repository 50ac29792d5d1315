"""The Fisher–Kolmogorov glioma model: parameters with units, and its right-hand side as a torch module.

    >>> import torch
    >>> from torchdiffeq import odeint
    >>> from HybridNeuroLib.physics.model import FisherKolmogorov, GrowthParameters
    >>> from HybridNeuroLib.physics.operators import ScalarDiffusion
    >>> parameters = GrowthParameters(dw_mm2_per_day=0.5, rho_per_day=0.1)
    >>> model = FisherKolmogorov(ScalarDiffusion(torch.ones(8, 8, 8), (1.0, 1.0, 1.0)),
    ...                          parameters.dw_mm2_per_day, parameters.rho_per_day)
    >>> u0 = torch.full((8, 8, 8), 0.1)
    >>> u = odeint(model, u0, torch.tensor([0.0, 10.0]), method="rk4", options={"step_size": 0.5})
    >>> round(float(u[-1].mean()), 4)                    # logistic: 0.1e/(0.9 + 0.1e)
    0.232

    ∂u/∂t = D_w·∇·(F(x)∇u) + ρ·u(1 − u) − k(t)·u

u is tumour-cell density relative to the carrying capacity (dimensionless, in [0, 1]),
F = p_wm + p_gm/r the dimensionless tissue factor (0 outside the domain), D_w the white
matter diffusivity in mm²/day, ρ the proliferation rate in 1/day and k(t) ≥ 0 an optional
chemotherapy kill rate in 1/day. Because D_w is one scalar in front of a fixed operator,
gradients with respect to it are cheap and exact.

``forward(t, u)`` is the full right-hand side (the call signature ``torchdiffeq.odeint``
expects); :meth:`diffusion` and :meth:`react_exactly` are the two halves the splitting
solver uses. Every evaluation of the diffusion operator is counted in ``evaluations``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import torch


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must be a finite number in [{low:g}, {high:g}], got {value!r}")


@dataclass(frozen=True)
class GrowthParameters:
    """Fisher–Kolmogorov parameters. Literature: D_w ≈ 0.02–1.5 mm²/day, ρ ≈ 0.005–0.2 /day.

    ``wm_to_gm_ratio`` is r in D = D_w·(p_wm + p_gm/r); ``tissue_threshold`` is the minimum
    p_wm + p_gm of a voxel that tumour cells can occupy (the rest is a no-flux wall).
    """

    dw_mm2_per_day: float
    rho_per_day: float
    wm_to_gm_ratio: float = 10.0
    tissue_threshold: float = 0.1

    def __post_init__(self) -> None:
        # upper bounds catch unit slips (cm²/day vs mm²/day is ×100) without limiting real tumours
        _check_range("dw_mm2_per_day", self.dw_mm2_per_day, 0.0, 100.0)
        _check_range("rho_per_day", self.rho_per_day, 0.0, 10.0)
        _check_range("wm_to_gm_ratio", self.wm_to_gm_ratio, 1.0, 1000.0)
        _check_range("tissue_threshold", self.tissue_threshold, 1e-6, 1.0)

    def to_dict(self) -> dict:
        return asdict(self)


def _as_scalar(value, reference: torch.Tensor) -> torch.Tensor:
    """A 0-d tensor on the operator's device; an existing tensor keeps its autograd graph."""
    if isinstance(value, torch.Tensor):
        return value.to(device=reference.device, dtype=reference.dtype)
    return torch.tensor(float(value), device=reference.device, dtype=reference.dtype)


def exp_ratio(x: torch.Tensor | float):
    """(eˣ − 1)/x, continuous at 0 (used by the exact logistic step)."""
    if isinstance(x, torch.Tensor):
        small = x.abs() < 1e-6
        safe = torch.where(small, torch.ones_like(x), x)
        return torch.where(small, 1.0 + 0.5 * x, torch.expm1(safe) / safe)
    return 1.0 + 0.5 * x if abs(x) < 1e-6 else math.expm1(x) / x


class FisherKolmogorov(torch.nn.Module):
    """Right-hand side of the FK model on a fixed diffusion operator (scalar or tensor)."""

    def __init__(self, operator: torch.nn.Module, dw_mm2_per_day, rho_per_day,
                 kill_rate_per_day: Callable[[float], float] | None = None,
                 domain: torch.Tensor | None = None):
        super().__init__()
        self.operator = operator
        reference = next(iter(operator.buffers()))
        self.dw_mm2_per_day = _as_scalar(dw_mm2_per_day, reference)
        self.rho_per_day = _as_scalar(rho_per_day, reference)
        self.kill_rate_per_day = kill_rate_per_day
        self.register_buffer("domain", domain)
        self.rate_bound_per_mm2 = operator.rate_bound_per_mm2()
        self.evaluations = 0

    # -- stability ---------------------------------------------------------------
    def diffusion_rate_per_day(self) -> float:
        """Bound on half the spectral radius of the diffusion term: Euler needs Δt ≤ 1/this."""
        return float(self.dw_mm2_per_day.detach()) * self.rate_bound_per_mm2

    def euler_step_limit_days(self, kill_rate_per_day: float = 0.0) -> float:
        """Largest Euler step that keeps 0 ≤ u ≤ 1 (discrete maximum principle) and is stable."""
        rate = self.diffusion_rate_per_day() + float(self.rho_per_day.detach()) + kill_rate_per_day
        return math.inf if rate == 0 else 1.0 / rate

    # -- the two halves and the whole ----------------------------------------------
    def diffusion(self, u: torch.Tensor, out: torch.Tensor | None = None, scaled: bool = True) -> torch.Tensor:
        """D_w·∇·(F∇u) (or ∇·(F∇u) with ``scaled=False``); counts one evaluation."""
        self.evaluations += 1
        result = self.operator(u, out=out)
        if not scaled:
            return result
        return result.mul_(float(self.dw_mm2_per_day.detach())) if out is not None else self.dw_mm2_per_day * result

    def react_exactly(self, u: torch.Tensor, days, kill_rate_per_day: float = 0.0,
                      inplace: bool = False) -> torch.Tensor:
        """Exact solution of du/dt = ρu(1−u) − k·u after ``days``: u·e^{rt}/(1 + ρu·(e^{rt}−1)/r), r = ρ−k."""
        if not self.rho_per_day.requires_grad and float(self.rho_per_day.detach()) == 0.0 and kill_rate_per_day == 0.0:
            return u  # identity; skipping it keeps pure diffusion exactly conservative
        # the closed form needs u ≥ 0; super-time-stepping can leave round-off-sized undershoots
        u = u.clamp_(min=0.0) if inplace else u.clamp(min=0.0)
        rate = self.rho_per_day - kill_rate_per_day
        growth = torch.exp(rate * days) if isinstance(rate, torch.Tensor) else math.exp(rate * days)
        saturation = self.rho_per_day * days * exp_ratio(rate * days)
        if inplace:
            denominator = torch.mul(u, float(saturation)).add_(1.0)
            return u.mul_(float(growth)).div_(denominator)
        return growth * u / (1.0 + saturation * u)

    def reaction(self, u: torch.Tensor, kill_rate_per_day: float = 0.0) -> torch.Tensor:
        reaction = self.rho_per_day * u * (1.0 - u) - kill_rate_per_day * u
        return reaction if self.domain is None else reaction * self.domain

    def forward(self, t, u: torch.Tensor) -> torch.Tensor:
        kill = 0.0 if self.kill_rate_per_day is None else self.kill_rate_per_day(float(t))
        return self.diffusion(u) + self.reaction(u, kill)
