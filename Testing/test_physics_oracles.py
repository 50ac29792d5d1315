"""The FK solvers against exact solutions: logistic law, heat kernel, front speed, convergence, Euler agreement."""

import math

import numpy as np
import pytest
import torch

from HybridNeuroLib.physics import (FisherKolmogorov, GrowthParameters, GrowthProblem, ScalarDiffusion, Seed,
                                    SolverSettings, solve)
from physics_cases import dice, phantom_brain

METHODS = ("euler", "rkl2")


def slab_model(cells: int, spacing_mm: float, dw: float, rho: float, axis: int = -1,
               dtype=torch.float64) -> FisherKolmogorov:
    """A 1D problem as a 3D grid one voxel thick (the operator sees no faces along the thin axes)."""
    shape = [1, 1, 1]
    shape[axis] = cells
    spacing = [1.0, 1.0, 1.0]
    spacing[axis] = spacing_mm
    return FisherKolmogorov(ScalarDiffusion(torch.ones(shape, dtype=dtype), spacing), dw, rho)


@pytest.mark.parametrize("method", METHODS)
def test_logistic_closed_form_without_diffusion(method):
    rho, days = 0.08, [10.0, 30.0, 75.0]
    u0 = torch.linspace(0.01, 0.9, 64).reshape(4, 4, 4)
    model = FisherKolmogorov(ScalarDiffusion(torch.ones(4, 4, 4), (1.0, 1.0, 1.0)), 0.0, rho)
    step = 0.01 if method == "euler" else None           # Euler is first order; the splitting is exact here
    states, _ = solve(model, u0, days, SolverSettings(method, step))
    for day, u in zip(days, states):
        growth = math.exp(rho * day)
        exact = u0 * growth / (1.0 - u0 + u0 * growth)
        torch.testing.assert_close(u, exact, rtol=0, atol=2e-3 if method == "euler" else 2e-6)


@pytest.mark.parametrize("method", METHODS)
def test_point_source_spreads_as_the_heat_kernel(method):
    """Start from the kernel of a unit point source at t0 = 2 days (a delta holds every lattice mode,
    which RKL2 damps only slowly), run 12 more days, compare with the kernel at 14 days.
    RKL2 is accurate for modes with D·k²·Δt ≲ 1, so pure diffusion of a 2-voxel-wide blob needs
    short steps (the default step is set by ρ, which is 0 here)."""
    dw, t0, days, h, n = 0.8, 2.0, 12.0, 1.0, 41
    r2 = sum(((torch.arange(n, dtype=torch.float64) - n // 2) * h).reshape(
        [-1 if a == axis else 1 for a in range(3)]) ** 2 for axis in range(3))

    def kernel(t):
        return (4 * math.pi * dw * t) ** -1.5 * torch.exp(-r2 / (4 * dw * t))

    u0 = kernel(t0)
    model = FisherKolmogorov(ScalarDiffusion(torch.ones(n, n, n, dtype=torch.float64), (h, h, h)), dw, 0.0)
    (u,), _ = solve(model, u0, [days], SolverSettings(method, 1.0 if method == "rkl2" else None))
    # the second moment grows exactly by 6·D·t for the lattice diffusion (and any consistent scheme)
    assert float(((u - u0) * r2).sum() * h ** 3) == pytest.approx(6 * dw * days, rel=1e-4)
    # lattice vs continuum kernel at σ ≈ 2 voxels differ by ~1–2 %; a 10 % error in D gives ~13 %
    assert float((u - kernel(t0 + days)).abs().max()) < 0.03 * float(kernel(t0 + days).max())


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("axis, spacing_mm", [(-1, 0.5), (-3, 0.4)])
def test_front_speed_is_two_sqrt_d_rho(method, axis, spacing_mm):
    dw, rho = 1.0, 0.2
    cells = int(200 / spacing_mm)
    model = slab_model(cells, spacing_mm, dw, rho, axis)
    u0 = torch.zeros(model.operator.shape, dtype=torch.float64)
    u0.narrow(axis, 0, int(4 / spacing_mm)).fill_(1.0)
    days = [100.0, 180.0]
    states, _ = solve(model, u0, days, SolverSettings(method, 2.0 if method == "rkl2" else None))
    positions = []
    for u in states:
        profile = u.flatten().numpy()
        cell = int(np.argmax(profile < 0.5))              # first cell below one half
        fraction = (profile[cell - 1] - 0.5) / (profile[cell - 1] - profile[cell])
        positions.append((cell - 1 + fraction + 0.5) * spacing_mm)
    speed = (positions[1] - positions[0]) / (days[1] - days[0])
    assert speed == pytest.approx(2 * math.sqrt(dw * rho), rel=0.05)


def test_spatial_convergence_on_refinement():
    """Gaussian heat solution on a 1 mm → 0.25 mm sequence: error falls ~4× per halving (2nd order)."""
    dw, day, sigma0, length = 0.5, 6.0, 2.0, 40.0
    errors = []
    for h in (1.0, 0.5, 0.25):
        cells = int(length / h)
        x = (torch.arange(cells, dtype=torch.float64) + 0.5) * h - length / 2
        model = slab_model(cells, h, dw, 0.0)
        u0 = torch.exp(-x ** 2 / (2 * sigma0 ** 2)).reshape(1, 1, -1)
        (u,), _ = solve(model, u0, [day], SolverSettings("euler", max_step_days=0.05 * h * h))
        variance = sigma0 ** 2 + 2 * dw * day
        exact = sigma0 / math.sqrt(variance) * torch.exp(-x ** 2 / (2 * variance))
        errors.append(float((u.flatten() - exact).abs().max()))
    assert errors[0] / errors[1] > 3.0 and errors[1] / errors[2] > 3.0, errors


def test_fast_scheme_matches_euler_with_far_fewer_evaluations():
    """The standard case (D_w = 1 mm²/day, ρ = 0.05/day, 1 mm grid) on a CI-sized phantom brain, 80 days."""
    tissue = phantom_brain(size_ijk=(72, 80, 64), spacing_mm=1.0)
    problem = GrowthProblem(tissue, GrowthParameters(1.0, 0.05))
    seed = Seed(centre_ras_mm=(-4.0, 10.0, 3.0), radius_mm=4.0)
    results = {}
    with torch.inference_mode():
        u0 = problem.initial_density(seed)
        for method in METHODS:
            (u,), stats = problem.solve(u0, 1.0, 0.05, [80.0], SolverSettings(method))
            results[method] = (u, stats)
    (euler, euler_stats), (fast, fast_stats) = results["euler"], results["rkl2"]
    assert euler_stats.rhs_evaluations >= 4 * fast_stats.rhs_evaluations
    assert 0.05 < float((euler >= 0.25).float().mean()) < 0.6     # a large tumour, not the whole box
    assert dice(euler >= 0.25, fast >= 0.25) >= 0.98


def test_evaluation_counts_for_the_standard_200_day_case():
    """Counts depend only on the stiffness (1 mm, D_w = 1) and the horizon, so a small grid gives them."""
    model = FisherKolmogorov(ScalarDiffusion(torch.ones(12, 12, 12), (1.0, 1.0, 1.0)), 1.0, 0.05)
    u0 = torch.zeros(12, 12, 12)
    u0[6, 6, 6] = 0.5
    counts = {method: solve(model, u0, [200.0], SolverSettings(method))[1].rhs_evaluations for method in METHODS}
    assert counts["euler"] == 1345                         # 200 days / (0.9 / (6 + 0.05)) steps
    assert counts["rkl2"] == 20 * 16                       # 20 Strang steps (ρΔt = 0.5) × 16 RKL2 stages
    assert counts["euler"] >= 4 * counts["rkl2"]
