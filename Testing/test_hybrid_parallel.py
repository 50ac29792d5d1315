"""The parallel hybrid (physics + residual network): exact physics without the network, the APHYNITY
penalty, fit/predict, checkpoints, input errors, and the parallel-series wiring."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from HybridNeuroLib.fit import FitSettings, GrowthFit
from HybridNeuroLib.fit.observations import fitting_geometry, prepare_observations
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.hybrid import CheckpointError, load_model, make_model
from HybridNeuroLib.hybrid.cohort import synthetic_case
from HybridNeuroLib.hybrid.residual import Aphynity, HybridObjective, ResidualNet, train_residual
from HybridNeuroLib.physics import GrowthParameters, Seed, TissueMaps, simulate

SMALL = FitSettings(voxel_mm=4.0, starts=1, iterations=4, members=1, member_iterations=2)


def arrays(forecast) -> list[np.ndarray]:
    return [sitk.GetArrayFromImage(image) for image in forecast.density + forecast.labels + forecast.probability]


@pytest.fixture(scope="module")
def case():
    """A CI-sized synthetic patient (4 mm), truth richer than FK: observed days 0 and 60, future 120."""
    return synthetic_case(5, voxel_mm=4, observed_days=(0, 60), future_days=(120,))


@pytest.fixture(scope="module")
def fitted(case):
    """The parallel model with an untrained 4 mm network, fine-tuned for two steps on the observed days."""
    return make_model("parallel", settings=SMALL, pretrained=None, fine_tune_iterations=2).fit(
        case.tissue, case.observed, progress=False)


def test_without_the_network_predictions_equal_the_physics_model_exactly(case):
    physics = make_model("physics", settings=SMALL).fit(case.tissue, case.observed, progress=False)
    parallel = make_model("parallel", settings=SMALL, use_network=False).fit(case.tissue, case.observed,
                                                                            progress=False)
    assert parallel.net is None and parallel.result.best == physics.result.best
    expected, got = physics.predict([60, 120]), parallel.predict([60, 120])
    for a, b in zip(arrays(expected), arrays(got), strict=True):
        assert np.array_equal(a, b)
    assert expected.volumes == got.volumes and expected.days == got.days
    # on another grid (world-space resampling of the tissue) too
    grid = fitting_geometry(case.tissue.geometry, 5.0)
    for a, b in zip(arrays(physics.predict([120], grid=grid)), arrays(parallel.predict([120], grid=grid))):
        assert np.array_equal(a, b)


def test_the_residual_penalty_drives_the_network_to_zero_when_the_truth_is_pure_fk():
    grid = ImageGeometry((14, 14, 14), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    wm = np.zeros(grid.shape_kji, np.float32)
    wm[1:-1, 1:-1, 4:-1] = 1.0
    gm = np.zeros_like(wm)
    gm[1:-1, 1:-1, 1:4] = 1.0
    tissue = TissueMaps(gm=gm, wm=wm, csf=1.0 - wm - gm, geometry=grid)
    seed = Seed((-28.0, -28.0, 28.0), 6.0)
    truth = simulate(tissue, seed, GrowthParameters(0.3, 0.03), [0, 40, 80], progress=False)
    data = prepare_observations(tissue, list(zip([0.0, 40.0, 80.0], truth.labels)), voxel_mm=4.0,
                                region_margin_mm=None)
    net = ResidualNet(4.0, seed=1)
    torch.manual_seed(3)   # a network that starts away from zero: a spurious residual to remove
    torch.nn.init.normal_(net.layers[-1].weight, std=0.05)
    torch.nn.init.constant_(net.layers[-1].bias, 0.02)
    objective = HybridObjective(data, FitSettings(voxel_mm=4.0, region_margin_mm=None), net, step_days=20.0)
    fit = GrowthFit(0.3, 0.03, seed.centre_ras_mm, seed.radius_mm, float("nan"))
    history = train_residual(net, [(objective, fit)], Aphynity(epochs=12, learning_rate=1e-2))
    parameters = [torch.tensor(v, dtype=torch.float64) for v in (0.3, 0.03, seed.centre_ras_mm, seed.radius_mm)]
    with torch.no_grad():
        final_loss = float(objective.loss(*parameters))
    final_norm = float(objective.residual_norm)
    assert history[0]["residual_norm"] > 0.02
    # history is in units of the penalty's scale² (0.01/day)²; residual_norm in 1/day²
    assert final_norm / 0.01 ** 2 < history[0]["residual_norm"] / 10
    assert final_loss < history[0]["data_loss"] / 4          # the physics alone explains the data
    assert history[-1]["lambda"] > history[0]["lambda"]        # Uzawa: λ grows while data loss remains
    # Not shown: that the penalty is what removes the residual. Here θ is the truth and fixed, and
    # without the penalty (scale 10⁶) the data loss alone reached nearly the same ‖F_net‖² after 12
    # passes (3.9e-7 vs 3.2e-7 per day², measured).


def test_fit_and_predict_a_ci_sized_subject(case, fitted):
    fine_tune = fitted.training["fine_tune"]
    assert [row["epoch"] for row in fine_tune] == [1, 2]
    assert any(bool(p.abs().sum() > 0) for p in fitted.net.layers[-1].parameters())   # the network moved
    forecast = fitted.predict([60, 120])
    labels = sitk.GetArrayFromImage(forecast.labels[1])
    assert forecast.labels[0].GetSize() == case.tissue.geometry.size
    truth = sitk.GetArrayFromImage(case.future[0][1]) > 0
    overlap = 2 * np.sum((labels > 0) & truth) / (np.sum(labels > 0) + np.sum(truth))
    assert overlap > 0.5
    assert forecast.volumes[1]["whole_ml"] > forecast.volumes[0]["whole_ml"] > 0    # growth continues
    probability = sitk.GetArrayFromImage(forecast.probability[1])
    assert set(np.unique(probability)) <= {0.0, 0.5, 1.0}           # best fit + one member
    # a finer grid: the network runs at its 4 mm and the density is resampled in world space
    fine = ImageGeometry(tuple(2 * n for n in case.tissue.geometry.size), (2.0, 2.0, 2.0),
                         tuple(o - 1.0 for o in case.tissue.geometry.origin_lps_mm), case.tissue.geometry.direction_lps)
    on_fine = fitted.predict([120], grid=fine)
    assert on_fine.labels[0].GetSize() == fine.size
    assert on_fine.volumes[0]["whole_ml"] == pytest.approx(forecast.volumes[1]["whole_ml"], rel=0.15)


def test_save_and_load_reproduce_predictions_bit_for_bit(fitted, tmp_path):
    fitted.save(tmp_path / "model")
    again = load_model(tmp_path / "model", expected="parallel")
    for a, b in zip(arrays(fitted.predict([60, 120])), arrays(again.predict([60, 120])), strict=True):
        assert np.array_equal(a, b)
    for name, value in fitted.net.state_dict().items():
        assert torch.equal(value, again.net.state_dict()[name])
        # a refit starts from the population weights again (here: the untrained, zero-output network)
        assert torch.equal(fitted.population_state[name], again.population_state[name])
    assert not torch.equal(fitted.net.layers[-1].weight, again.population_state["layers.4.weight"])
    assert not again.population_state["layers.4.weight"].any()


def test_too_few_timepoints_and_foreign_checkpoints_are_refused(case, tmp_path):
    with pytest.raises(ValueError, match=r"'parallel' needs at least 2 timepoints"):
        make_model("parallel", settings=SMALL, pretrained=None).fit(case.tissue, case.observed[:1], progress=False)
    make_model("physics", settings=SMALL).fit(case.tissue, case.observed, progress=False).save(tmp_path / "physics")
    with pytest.raises(CheckpointError, match="holds a 'physics' model, not the requested 'parallel'"):
        load_model(tmp_path / "physics", expected="parallel")


def test_the_shipped_network_loads_by_default_and_refuses_another_voxel_size():
    model = make_model("parallel")
    assert model.net is not None and model.net.voxel_mm == 2.0 and model.training["subjects"] >= 1
    assert any(bool(p.abs().sum() > 0) for p in model.net.layers[-1].parameters())   # trained, not zero
    with pytest.raises(ValueError, match="trained at 2 mm.*voxel_mm = 4 mm"):
        make_model("parallel", settings=SMALL)


def test_parallel_series_descends_from_the_series_encoder_estimate_too(case):
    from HybridNeuroLib.hybrid.series import encoder_start

    estimate = encoder_start(case.tissue, case.observed)
    messages = []
    model = make_model("parallel-series", settings=SMALL, pretrained=None, fine_tune_iterations=0)
    model.fit(case.tissue, case.observed, progress=False, log=messages.append)
    assert len(model.result.starts) == SMALL.starts + 1
    assert (f"start 2/2: D_w = {estimate.dw_mm2_per_day:.3g} mm²/day, ρ = {estimate.rho_per_day:.3g} /day"
            in messages)
    assert model.predict([120]).volumes[0]["whole_ml"] > 0
