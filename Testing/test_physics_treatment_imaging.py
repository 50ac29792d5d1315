"""Treatments on the density during a solve, and the imaging model (density → BraTS labels)."""

import math

import numpy as np
import pytest
import torch

from HybridNeuroLib.physics import (Chemotherapy, GrowthParameters, GrowthProblem, ImagingThresholds, Radiotherapy,
                                    Resection, TreatmentPlan, density_to_labels, soft_labels)
from physics_cases import white_box

METHODS = ("euler", "rkl2")


def uniform_problem(value=0.4):
    tissue = white_box((10, 9, 8))
    problem = GrowthProblem(tissue, GrowthParameters(0.0, 0.0), device="cpu")
    return tissue, problem, problem.initial_density(np.where(tissue.wm > 0, value, 0.0).astype(np.float32))


@pytest.mark.parametrize("method", METHODS)
def test_radiotherapy_fraction_multiplies_density_by_lq_surviving_fraction(method):
    tissue, problem, u0 = uniform_problem()
    dose_map = np.full(tissue.geometry.shape_kji, 1.0, np.float32)
    dose_map[:, :, :4] = 0.5                               # half dose on one side
    course = Radiotherapy(days=(3.0,), doses_gy=(2.0,), alpha_per_gy=0.1, dose_map_relative=dose_map)
    before, after = problem.solve(u0, 0.0, 0.0, [2.0, 3.0], treatment=TreatmentPlan(radiotherapy=(course,)))[0]
    beta = 0.1 / 10.0
    full, half = math.exp(-0.1 * 2.0 - beta * 4.0), math.exp(-0.1 * 1.0 - beta * 1.0)
    inside = problem.domain > 0
    expected = torch.where(torch.from_numpy(problem.crop.crop(dose_map) == 1.0), full, half) * before
    torch.testing.assert_close(after[inside], expected[inside], rtol=1e-6, atol=0)


def test_standard_schedule_compounds_fractions():
    tissue, problem, u0 = uniform_problem()
    course = Radiotherapy.standard(start_day=1.0, alpha_per_gy=0.05, fractions=10)
    (u,), _ = problem.solve(u0, 0.0, 0.0, [20.0], treatment=TreatmentPlan(radiotherapy=(course,)))
    assert float(u.max()) == pytest.approx(0.4 * course.surviving_fraction(2.0) ** 10, rel=1e-5)


def test_resection_removes_cells_inside_the_mask_only():
    tissue, problem, u0 = uniform_problem()
    mask = np.zeros(tissue.geometry.shape_kji, bool)
    mask[3:6, 3:6, 3:6] = True
    plan = TreatmentPlan(resections=(Resection(day=5.0, mask=mask),))
    (u,), _ = problem.solve(u0, 0.0, 0.0, [6.0], treatment=plan)
    cropped = torch.from_numpy(problem.crop.crop(mask))
    assert float(u[cropped].abs().max()) == 0.0
    assert float(u[~cropped & (problem.domain > 0)].min()) == pytest.approx(0.4)


@pytest.mark.parametrize("method", METHODS)
def test_chemotherapy_kill_rate_follows_the_closed_form(method):
    tissue, problem, u0 = uniform_problem(0.1)
    rho, kill = 0.1, 0.04
    plan = TreatmentPlan(chemotherapy=(Chemotherapy(start_day=10.0, end_day=30.0, kill_rate_per_day=kill),))
    from HybridNeuroLib.physics import SolverSettings
    states, _ = problem.solve(u0, 0.0, rho, [10.0, 30.0], SolverSettings(method, 0.01 if method == "euler" else None),
                              treatment=plan)

    def logistic(u, r, t):  # du/dt = ρu(1−u) − k·u with r = ρ − k
        return u * math.exp(r * t) / (1 + rho * u * math.expm1(r * t) / r)

    u10 = logistic(0.1, rho, 10.0)
    u30 = logistic(u10, rho - kill, 20.0)
    inside = problem.domain > 0
    tolerance = 2e-3 if method == "euler" else 1e-5
    assert float(states[0][inside].mean()) == pytest.approx(u10, abs=tolerance)
    assert float(states[1][inside].mean()) == pytest.approx(u30, abs=tolerance)


def test_hard_labels_follow_thresholds_and_soft_labels_agree_and_have_gradients():
    thresholds = ImagingThresholds(edema_flair=0.3, enhancing_t1gd=0.6, necrotic=0.9)
    density = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    labels = density_to_labels(density.numpy(), thresholds)
    assert labels[density.numpy() < 0.3].max() == 0 and set(labels[(density >= 0.3) & (density < 0.6)]) == {2}
    assert set(labels[(density >= 0.6) & (density < 0.9)]) == {3} and set(labels[density >= 0.9]) == {1}
    density.requires_grad_(True)
    soft = soft_labels(density, thresholds, width=0.01)
    torch.testing.assert_close(soft.sum(0), torch.ones_like(density))
    assert float(soft.detach().min()) >= 0.0
    away = (torch.stack([(density - t).abs() for t in (0.3, 0.6, 0.9)]).min(0).values > 0.05)
    assert torch.equal(soft.argmax(0)[away], torch.from_numpy(labels.astype(np.int64))[away])
    soft[1:].sum().backward()                              # soft whole-tumour volume grows with density
    assert float(density.grad.max()) > 0
