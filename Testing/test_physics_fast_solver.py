"""The opt-in growing step schedule of RKL2: evaluation counts, restarts after treatment, conservation."""

import pytest
import torch

from HybridNeuroLib.physics import FisherKolmogorov, ScalarDiffusion, SolverSettings, solve

GROWING = SolverSettings("rkl2", step_schedule="growing")


def standard_model(rho: float = 0.05, dtype=torch.float32) -> FisherKolmogorov:
    """1 mm grid, D_w = 1 mm²/day: counts depend only on this stiffness and the horizon."""
    return FisherKolmogorov(ScalarDiffusion(torch.ones(12, 12, 12, dtype=dtype), (1.0, 1.0, 1.0)), 1.0, rho)


def point_seed(dtype=torch.float32) -> torch.Tensor:
    u0 = torch.zeros(12, 12, 12, dtype=dtype)
    u0[6, 6, 6] = 0.5
    return u0


def test_growing_schedule_needs_ten_times_fewer_evaluations_than_euler_over_200_days():
    model, u0 = standard_model(), point_seed()
    euler = solve(model, u0, [200.0], SolverSettings("euler"))[1].rhs_evaluations
    _, stats = solve(model, u0, [200.0], GROWING)
    assert stats.step_days == pytest.approx([10.0, 30.0, 80.0, 80.0])
    assert stats.rhs_evaluations == 16 + 27 + 44 + 44 == 131
    assert euler >= 10 * stats.rhs_evaluations


def test_growing_schedule_continues_across_outputs_and_restarts_after_an_event():
    model, u0 = standard_model(), point_seed()
    _, plain = solve(model, u0, [25.0, 200.0], GROWING)
    assert plain.step_days[:3] == pytest.approx([10.0, 15.0, 75.0])     # day 25 is an output, not a restart
    _, treated = solve(model, u0, [200.0], GROWING, events=[(100.0, lambda u: 0.5 * u)])
    assert treated.step_days == pytest.approx([10.0, 30.0, 60.0, 10.0, 30.0, 60.0])


def test_growing_schedule_conserves_mass_without_growth():
    model, u0 = standard_model(rho=0.0, dtype=torch.float64), point_seed(torch.float64)
    (u,), stats = solve(model, u0, [400.0], GROWING)
    assert stats.step_days[0] == pytest.approx(50.0) and max(stats.step_days) <= 100.0 + 1e-9
    assert float(u.sum()) == pytest.approx(float(u0.sum()), rel=1e-12)   # RKL2 is not monotone: no sign check


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="step_schedule"):
        SolverSettings(step_schedule="adaptive")
