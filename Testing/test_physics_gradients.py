"""The gradient path: autograd through the (checkpointed) solvers against central finite differences, float64."""

import numpy as np
import pytest
import torch

from HybridNeuroLib.physics import FisherKolmogorov, ScalarDiffusion, Seed, SolverSettings, seed_density, solve
from physics_cases import grid

GEOMETRY = grid((10, 9, 8), (1.0, 1.5, 2.0))
SEED = Seed(centre_ras_mm=(-4.5, -6.0, 8.0), radius_mm=3.0, peak_density=0.6)
DAYS = [6.0, 12.0]


def field():
    rng = np.random.default_rng(5)
    values = rng.uniform(0.1, 1.0, GEOMETRY.shape_kji)
    values[0] = 0.0                                         # a wall
    return torch.from_numpy(values)


def loss(dw, rho, centre, method, extra=None):
    model = FisherKolmogorov(ScalarDiffusion(field(), GEOMETRY.spacing_mm[::-1]), dw, rho)
    u0 = seed_density(GEOMETRY, SEED, centre_ras_mm=centre, dtype=torch.float64)
    if extra is not None:
        u0 = u0 + extra
    weights = torch.linspace(0.0, 1.0, u0.numel(), dtype=torch.float64).reshape(u0.shape)
    states, _ = solve(model, u0, DAYS, SolverSettings(method, max_step_days=2.0 if method == "rkl2" else None,
                                                      checkpoint_steps=3))
    return sum((weights * state).sum() for state in states)


@pytest.mark.parametrize("method", ["euler", "rkl2"])
def test_gradients_match_finite_differences(method):
    dw = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    rho = torch.tensor(0.15, dtype=torch.float64, requires_grad=True)
    centre = torch.tensor(SEED.centre_ras_mm, dtype=torch.float64, requires_grad=True)
    direction = torch.from_numpy(np.random.default_rng(6).uniform(0, 0.05, GEOMETRY.shape_kji))
    extra = torch.zeros(GEOMETRY.shape_kji, dtype=torch.float64, requires_grad=True)
    loss(dw, rho, centre, method, extra).backward()

    def central(f, eps):
        return (f(eps) - f(-eps)) / (2 * eps)

    with torch.no_grad():
        c = centre.detach()
        # the Euler step count depends on D_w (stability), so keep its perturbation inside one step count
        numeric = {
            "dw": central(lambda e: loss(0.7 + e, 0.15, c, method), 1e-7),
            "rho": central(lambda e: loss(0.7, 0.15 + e, c, method), 1e-6),
            "centre_y": central(lambda e: loss(0.7, 0.15, c + torch.tensor([0.0, e, 0.0], dtype=torch.float64),
                                               method), 1e-5),
            "initial": central(lambda e: loss(0.7, 0.15, c, method, e * direction), 1e-5),
        }
    analytic = {"dw": dw.grad, "rho": rho.grad, "centre_y": centre.grad[1], "initial": (extra.grad * direction).sum()}
    for name, value in numeric.items():
        assert float(analytic[name]) == pytest.approx(float(value), rel=1e-5), name
    assert float(dw.grad) != 0 and float(centre.grad.abs().sum()) > 0


@pytest.mark.parametrize("method", ["euler", "rkl2"])
def test_gradients_through_output_days_with_different_step_plans(method, monkeypatch):
    """Checkpoint recomputation in backward must replay each segment's own steps (5 d then 8 d)."""
    monkeypatch.setattr(__import__(__name__), "DAYS", [5.0, 13.0])
    rho = torch.tensor(0.15, dtype=torch.float64, requires_grad=True)
    centre = torch.tensor(SEED.centre_ras_mm, dtype=torch.float64)
    loss(0.7, rho, centre, method).backward()
    with torch.no_grad():
        numeric = (loss(0.7, 0.15 + 1e-6, centre, method) - loss(0.7, 0.15 - 1e-6, centre, method)) / 2e-6
    assert float(rho.grad) == pytest.approx(float(numeric), rel=1e-5)
