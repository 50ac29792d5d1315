"""Neural ODE model (issue #7): integration oracles, the physics term, fit/predict, checkpoints, training."""

import math

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.hybrid import load_model, make_model
from HybridNeuroLib.hybrid.cohort import synthetic_case
from HybridNeuroLib.hybrid.neural_ode import DEFAULT_WEIGHTS
from HybridNeuroLib.hybrid.neural_ode_core import BoxData, Trajectories, integrate, time_grid
from HybridNeuroLib.hybrid.neural_ode_training import train_network
from HybridNeuroLib.hybrid.ode_field import FieldNetwork, VectorField
from HybridNeuroLib.metrics import dice
from HybridNeuroLib.physics import FisherKolmogorov, ScalarDiffusion


def _zeroed(network: FieldNetwork) -> FieldNetwork:
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
    return network


def _box_inputs(shape=(7, 8, 9), seed=0):
    generator = torch.Generator().manual_seed(seed)
    wm = torch.rand(shape, generator=generator)
    gm = 1.0 - wm
    domain = torch.ones(shape)
    domain[0] = 0.0                      # one CSF slab: the field must be 0 there
    static = torch.stack([wm, gm, domain])[None]
    u = torch.rand((1, *shape), generator=generator)
    return static, u, (wm + gm / 10.0) * domain


def test_linear_field_integrates_to_the_exact_exponential():
    rate_per_day = -0.02
    network = _zeroed(FieldNetwork(hidden=4, code_size=2)).double()
    with torch.no_grad():
        network.skip.weight[0, 0] = rate_per_day * network.time_scale_days   # N = λ·u exactly
    static, u0, _ = _box_inputs()
    static[:, 2] = 1.0
    field = VectorField(network, static.double(), torch.zeros(1, 2, dtype=torch.float64))
    offsets = [30.0, 45.0, 100.0]
    states = integrate(field, u0.double(), offsets, max_step_days=5.0)
    z = rate_per_day * 5.0
    rk4_factor = 1 + z + z ** 2 / 2 + z ** 3 / 6 + z ** 4 / 24     # RK4's exact one-step factor for du/dt = λu
    for n, day in enumerate(offsets):
        steps = round(day / 5.0)
        assert torch.allclose(states[n], u0.double() * rk4_factor ** steps, rtol=1e-12, atol=0.0), day
        assert torch.allclose(states[n], u0.double() * math.exp(rate_per_day * day), rtol=2e-6, atol=0.0), day
    grid = time_grid(offsets, 20.0).tolist()
    assert set(offsets) <= set(grid) and max(np.diff(grid)) <= 20.0


def test_zero_field_keeps_the_state_exactly():
    static, u0, _ = _box_inputs()
    field = VectorField(_zeroed(FieldNetwork()), static, torch.zeros(1, 2))
    states = integrate(field, u0, [60.0, 120.0], max_step_days=20.0)
    assert torch.equal(states[0], u0) and torch.equal(states[1], u0)
    with pytest.raises(ValueError, match="positive and increasing"):
        integrate(field, u0, [60.0, 30.0], max_step_days=20.0)


def test_network_respects_the_domain():
    static, u0, _ = _box_inputs()
    field = VectorField(FieldNetwork(), static, torch.randn(1, 2))
    rate = field(0.0, u0)
    assert torch.all(rate[:, 0] == 0) and rate[:, 1:].abs().sum() > 0


def test_physics_term_with_zeroed_network_is_fisher_kolmogorov_exactly():
    static, u0, diffusivity = _box_inputs()
    spacing = (4.0, 4.0, 3.0)
    log_physics = torch.tensor([[math.log(0.3), math.log(0.05)]])
    trajectories = Trajectories(static, diffusivity[None], spacing, _zeroed(FieldNetwork()), torch.zeros(1, 2),
                                log_physics, max_step_days=20.0)
    field, step = trajectories.field()
    dw, rho = float(torch.exp(log_physics[0, 0])), float(torch.exp(log_physics[0, 1]))
    reference = FisherKolmogorov(ScalarDiffusion(diffusivity, spacing), dw, rho, domain=static[0, 2])
    assert torch.equal(field(0.0, u0)[0], reference(0.0, u0[0]))
    assert step == pytest.approx(min(10.0, 2.5 / (2.0 * reference.diffusion_rate_per_day())))   # RK4 limit
    # with the physics term off, the same zeroed network is no dynamics at all
    trajectories.log_physics = None
    assert torch.equal(trajectories.field()[0](0.0, u0), torch.zeros_like(u0))


@pytest.fixture(scope="module")
def small_case():
    return synthetic_case(5, voxel_mm=4, observed_days=(0, 60, 120), future_days=(180,))


def _arrays(images):
    return [sitk.GetArrayFromImage(image) for image in images]


@pytest.mark.parametrize("name", ["neural-ode", "neural-ode-physics"])
def test_fit_predict_save_load(small_case, tmp_path, name):
    physics_term = name == "neural-ode-physics"    # the same class with the FK term in its vector field
    model = make_model(name, fit_iterations=3)
    assert model.physics_term == physics_term
    model.fit(small_case.tissue, small_case.observed, progress=False)
    history = model.fit_record["loss_history"]
    assert len(history) == 4 and model.fit_record["loss"] == min(history) < history[0]    # the fit descends
    forecast = model.predict([120, 180])
    assert ImageGeometry.from_image(forecast.labels[0]) == small_case.tissue.geometry
    observed = sitk.GetArrayFromImage(small_case.observed[-1][1]) > 0
    truth = sitk.GetArrayFromImage(small_case.future[0][1]) > 0
    labels = _arrays(forecast.labels)
    assert dice(labels[0] > 0, observed) > 0.9                  # day 120 is the observed state, re-labelled
    assert (labels[1] > 0).sum() > observed.sum()               # the lesion grows
    assert dice(labels[1] > 0, truth) > 0.7
    assert forecast.volumes[1]["whole_ml"] == pytest.approx((labels[1] > 0).sum() * 0.064)
    assert np.array_equal(_arrays(forecast.probability)[1], (labels[1] > 0).astype(np.float32))
    if physics_term:
        parameters = model.physics_parameters()
        assert 0.02 <= parameters["dw_mm2_per_day"] <= 1.5 and 0.005 <= parameters["rho_per_day"] <= 0.2

    model.save(tmp_path)
    loaded = load_model(tmp_path, expected=name)
    again = loaded.predict([120, 180])
    for before, after in zip(forecast.density + forecast.labels, again.density + again.labels):
        assert np.array_equal(sitk.GetArrayFromImage(before), sitk.GetArrayFromImage(after))
    assert again.volumes == forecast.volumes and loaded.physics_term == physics_term


def test_errors_name_the_model(small_case):
    model = make_model("neural-ode")
    with pytest.raises(ValueError, match="'neural-ode' needs at least 2 timepoints"):
        model.fit(small_case.tissue, small_case.observed[:1], progress=False)
    with pytest.raises(ValueError, match="not fitted yet"):
        model.predict([180])
    with pytest.raises(ValueError, match="fit_iterations"):
        make_model("neural-ode", fit_iterations=-1)
    with pytest.raises(ValueError, match="always has the physics term"):
        make_model("neural-ode-physics", physics_term=False)


def test_diverging_dynamics_are_refused_instead_of_forecasting_an_empty_lesion(small_case):
    """NaN density thresholds to 'no tumour': fit and forecast must say the dynamics diverged instead.

    (Measured: the physics-term network started at ρ = 0.07/day on a fast held-out subject left u > 1
    and turned NaN between days 60 and 120, and the forecast used to be an empty lesion.)
    """
    model = make_model("neural-ode", fit_iterations=1)
    model.fit(small_case.tissue, small_case.observed, progress=False)
    assert np.isfinite(model.fit_record["loss"])
    with torch.no_grad():
        next(model.network().parameters()).fill_(float("nan"))   # any non-finite vector field
    with pytest.raises(ValueError, match=r"'neural-ode': the forecast diverged \(non-finite density\) by day 180"):
        model.predict([120, 180])
    with pytest.raises(ValueError, match="'neural-ode': every fit iteration diverged"):
        model.fit(small_case.tissue, small_case.observed, progress=False)


def test_shipped_population_weights():
    population = load_model(DEFAULT_WEIGHTS, expected="neural-ode")
    assert set(population.networks) == {"data-only", "physics"}
    assert population.box is None and population.training["subjects"] >= 8
    assert sum(path.stat().st_size for path in DEFAULT_WEIGHTS.iterdir()) < 3_000_000
    card = (DEFAULT_WEIGHTS / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "Not a clinical model" in card and "train-hybrid neural-ode" in card


@pytest.mark.parametrize("physics_term", [False, True])
def test_population_training_is_reproducible_and_learns(small_case, physics_term):
    box = BoxData.prepare(small_case.tissue, small_case.all_days, voxel_mm=4.0, margin_mm=8.0)
    runs = [train_network([box], physics_term=physics_term, steps=3, batch=2, seed=1, max_step_days=20.0,
                          progress=False, log=lambda message: None) for _ in range(2)]
    (first, summary, _), (second, _, _) = runs
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    torch.manual_seed(1)
    untrained = FieldNetwork()                                              # the initialisation it started from
    assert not torch.equal(first.local.weight, untrained.local.weight)       # the steps moved the weights
    assert math.isfinite(summary["final_label_loss_last25"]) and summary["skipped_steps"] == 0
