"""The neural ODE's vector field: a small CNN on a coarse density box, optionally beside Fisher–Kolmogorov.

    >>> import torch
    >>> from torchdiffeq import odeint
    >>> from HybridNeuroLib.hybrid.ode_field import FieldNetwork, VectorField
    >>> network = FieldNetwork(hidden=4, code_size=2)
    >>> static = torch.zeros(1, 3, 6, 6, 6); static[:, 0] = 1.0; static[:, 2] = 1.0   # wm, gm, domain
    >>> field = VectorField(network, static, torch.zeros(1, 2))
    >>> u0 = torch.rand(1, 6, 6, 6)
    >>> odeint(field, u0, torch.tensor([0.0, 30.0]), method="rk4", options={"step_size": 6.0}).shape
    torch.Size([2, 1, 6, 6, 6])

    du/dt = domain · N(u, p_wm, p_gm, domain, z) / T  [+ D_w·∇·(F∇u) + ρ·u(1 − u)]

u is a batch ``[B, k, j, i]`` of tumour-cell densities on coarse boxes, ``static`` the tissue
channels ``[B, 3, k, j, i]`` (:data:`STATIC_CHANNELS`), z a per-patient code ``[B, code_size]``
(a learned shift of the first layer), T = ``time_scale_days`` (the network's output is a rate per
T days, so untrained weights give rates of a plausible order). N is one 3×3×3 convolution
(neighbours: transport, like a stencil) followed by two 1×1×1 layers (a pointwise nonlinear rate,
like a reaction term), plus a linear 1×1×1 skip from [u, tissue] — local and translation-invariant,
i.e. a learned PDE, so one population network applies to any box size and position. The factor
``domain`` keeps cells out of CSF and background (exactly, as the physics' no-flux walls do).

With ``physics`` (one :class:`~HybridNeuroLib.physics.FisherKolmogorov` per batch element, each on
its own patient's tissue) the Fisher–Kolmogorov right-hand side is added: the parallel hybrid. A
zeroed network contributes exactly 0, so the field is then exactly Fisher–Kolmogorov.
"""

from __future__ import annotations

from typing import Sequence

import torch

from HybridNeuroLib.physics import FisherKolmogorov

STATIC_CHANNELS = ("wm", "gm", "domain")


class FieldNetwork(torch.nn.Module):
    """N(u, tissue, z): density change per ``time_scale_days``; weights shared by the population.

    The first layer is a 3×3×3 convolution of [u, tissue] plus a linear map of z; it is split into its
    u part (evaluated at every solver stage) and its tissue + code part (:meth:`context`, once per
    trajectory: tissue and code do not change in time) — the same function at a fifth of the cost.
    """

    def __init__(self, hidden: int = 8, code_size: int = 2, time_scale_days: float = 30.0):
        super().__init__()
        if hidden < 1 or code_size < 0 or not time_scale_days > 0:
            raise ValueError(f"FieldNetwork: need hidden ≥ 1, code_size ≥ 0, time_scale_days > 0; got {hidden}, "
                             f"{code_size}, {time_scale_days}")
        self.hidden, self.code_size, self.time_scale_days = hidden, code_size, float(time_scale_days)
        self.local = torch.nn.Conv3d(1, hidden, 3, padding=1)
        self.tissue = torch.nn.Conv3d(len(STATIC_CHANNELS), hidden, 3, padding=1, bias=False)
        self.code = torch.nn.Linear(code_size, hidden, bias=False) if code_size else None
        self.mix = torch.nn.Conv3d(hidden, hidden, 1)
        self.head = torch.nn.Conv3d(hidden, 1, 1)
        self.skip = torch.nn.Conv3d(1 + len(STATIC_CHANNELS), 1, 1, bias=False)
        with torch.no_grad():  # start near "no change": training grows the rates it needs
            self.head.weight.mul_(0.1)
            self.skip.weight.zero_()

    def config(self) -> dict:
        return {"hidden": self.hidden, "code_size": self.code_size, "time_scale_days": self.time_scale_days}

    def context(self, static: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """The first layer's tissue and code terms, ``[B, hidden, k, j, i]``."""
        context = self.tissue(static)
        if self.code is not None:
            context = context + self.code(code)[:, :, None, None, None]
        return context

    def forward(self, u: torch.Tensor, static: torch.Tensor, code: torch.Tensor,
                context: torch.Tensor | None = None) -> torch.Tensor:
        """Rate in 1/day, shape of ``u`` (``[B, k, j, i]``); pass :meth:`context` to reuse it."""
        context = self.context(static, code) if context is None else context
        u = u.unsqueeze(1)
        hidden = torch.tanh(self.mix(torch.tanh(self.local(u) + context)))
        return (self.head(hidden) + self.skip(torch.cat([u, static], dim=1))).squeeze(1) / self.time_scale_days


class VectorField(torch.nn.Module):
    """``forward(t, u)`` for ``torchdiffeq.odeint``: the network's rate (× domain) [+ Fisher–Kolmogorov]."""

    def __init__(self, network: FieldNetwork, static: torch.Tensor, code: torch.Tensor,
                 physics: Sequence[FisherKolmogorov] | None = None):
        super().__init__()
        if static.dim() != 5 or static.shape[1] != len(STATIC_CHANNELS):
            raise ValueError(f"static tissue channels must have shape [B, {len(STATIC_CHANNELS)}, k, j, i], "
                             f"got {tuple(static.shape)}")
        if physics is not None and len(physics) != static.shape[0]:
            raise ValueError(f"physics: one FisherKolmogorov per batch element needed ({static.shape[0]}), "
                             f"got {len(physics)}")
        self.network, self.static, self.code = network, static, code
        self.context = network.context(static, code)
        self.physics = None if physics is None else torch.nn.ModuleList(physics)
        self.evaluations = 0

    def forward(self, t, u: torch.Tensor) -> torch.Tensor:
        self.evaluations += 1
        rate = self.network(u, self.static, self.code, self.context) * self.static[:, STATIC_CHANNELS.index("domain")]
        if self.physics is None:
            return rate
        return torch.stack([model(t, u[n]) for n, model in enumerate(self.physics)]) + rate
