"""Visibility thresholds estimated per patient (``FitSettings(fit_thresholds=True)``, CMA-ES)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from fit_cases import centre_ras, phantom_tissue
from HybridNeuroLib.fit import FitResult, FitSettings, fit_growth, predict
from HybridNeuroLib.fit.objective import Objective
from HybridNeuroLib.fit.observations import prepare_observations
from HybridNeuroLib.labels import ImagingThresholds, density_to_labels
from HybridNeuroLib.physics import GrowthParameters, Seed, simulate

TRUE = ImagingThresholds(0.21, 0.69)
SMALL = FitSettings(voxel_mm=4.0, starts=1, optimizer="cmaes", evaluations=60, members=0, seed=2,
                    fit_thresholds=True)


@pytest.fixture(scope="module")
def case():
    tissue = phantom_tissue(16, voxel_mm=4.0)
    run = simulate(tissue, Seed(centre_ras(tissue), 6.0), GrowthParameters(0.4, 0.04), [0.0, 40.0, 80.0],
                   progress=False)
    labels = [(day, tissue.geometry.image_from_array(density_to_labels(sitk.GetArrayFromImage(d), TRUE)))
              for day, d in zip((0.0, 40.0, 80.0), run.density)]
    return tissue, labels


def test_settings_check_and_record_the_threshold_option():
    with pytest.raises(ValueError, match="needs optimizer='cmaes'"):
        FitSettings(fit_thresholds=True)
    with pytest.raises(ValueError, match="threshold bounds"):
        FitSettings(optimizer="cmaes", flair_threshold_bounds=(0.2, 0.62))
    settings = FitSettings(optimizer="cmaes", fit_thresholds=True, t1gd_threshold_bounds=(0.55, 0.75))
    assert FitSettings.from_dict(settings.to_dict()) == settings


def test_candidate_thresholds_reach_the_loss(case):
    tissue, labels = case
    data = prepare_observations(tissue, labels, voxel_mm=4.0)
    told = Objective(data, FitSettings(thresholds=TRUE))
    default = Objective(data, FitSettings())
    state = [torch.tensor(v, dtype=torch.float64) for v in (0.4, 0.04)] + [
        torch.tensor(centre_ras(tissue), dtype=torch.float64), torch.tensor(6.0, dtype=torch.float64)]
    with torch.inference_mode():
        given = default.loss(*state, thresholds=(TRUE.edema_flair, TRUE.enhancing_t1gd))
        assert float(given) == pytest.approx(float(told.loss(*state)), rel=1e-6)
        assert float(given) < float(default.loss(*state))   # the truth's thresholds explain its labels better


def test_fit_estimates_thresholds_within_bounds_and_forecasts_with_them(case, tmp_path):
    tissue, labels = case
    result = fit_growth(tissue, labels, SMALL, progress=False)
    best = result.best
    assert 0.2 <= best.edema_flair <= 0.3 and 0.6 <= best.enhancing_t1gd <= 0.7
    assert (result.settings.thresholds.edema_flair, result.settings.thresholds.enhancing_t1gd) == (
        best.edema_flair, best.enhancing_t1gd)
    assert "thresholds FLAIR" in result.messages[0]
    result.save(tmp_path)
    loaded = FitResult.load(tmp_path)
    assert loaded.best == best and loaded.settings.thresholds == result.settings.thresholds
    forecast = predict(loaded, tissue, [80.0])
    density = sitk.GetArrayFromImage(forecast.density[0])
    np.testing.assert_array_equal(sitk.GetArrayFromImage(forecast.labels[0]),
                                  density_to_labels(density, result.settings.thresholds))
    # without the option the thresholds stay fixed and are not reported as fitted
    fixed = fit_growth(tissue, labels, FitSettings(**{**SMALL.__dict__, "fit_thresholds": False}), progress=False)
    assert fixed.best.edema_flair is None and fixed.settings.thresholds == ImagingThresholds()
    assert math.isfinite(fixed.best.loss)


def test_seed_peak_option_fits_an_unsaturated_seed(case):
    """``fit_seed_peak``: the seed's amplitude is searched (CMA-ES only), recorded, and used by the forecast."""
    with pytest.raises(ValueError, match="needs optimizer='cmaes'"):
        FitSettings(fit_seed_peak=True)
    with pytest.raises(ValueError, match="seed_peak_bounds"):
        FitSettings(optimizer="cmaes", seed_peak_bounds=(0.5, 1.5))
    tissue, labels = case
    data = prepare_observations(tissue, labels, voxel_mm=4.0)
    objective = Objective(data, FitSettings())
    centre, radius = torch.tensor(centre_ras(tissue), dtype=torch.float64), torch.tensor(6.0, dtype=torch.float64)
    full, half = objective.initial_density(centre, radius), objective.initial_density(centre, radius, 0.5)
    assert torch.allclose(half, 0.5 * full)
    settings = FitSettings(**{**SMALL.__dict__, "fit_thresholds": False, "fit_seed_peak": True})
    result = fit_growth(tissue, labels, settings, progress=False)
    assert 0.05 <= result.best.peak_density <= 1.0 and result.best.peak_density != 1.0
    assert result.best.seed.peak_density == result.best.peak_density
    assert FitSettings.from_dict(settings.to_dict()) == settings


def test_absent_core_term_penalises_only_a_core_the_scan_does_not_show():
    from HybridNeuroLib.fit.objective import absent_core_term

    whole = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0])
    below = torch.tensor([0.6, 0.5, 0.3, 0.3, 0.0])
    above = torch.tensor([0.9, 0.5, 0.3, 0.3, 0.0])
    assert float(absent_core_term(below, whole, 0.65, 0.05)) == 0.0
    assert float(absent_core_term(above, whole, 0.65, 0.05)) == pytest.approx(0.25 / (0.65 * 4))
    assert float(absent_core_term(above, whole, 0.65, 0.05, "soft-dice")) > 0.0
    assert FitSettings(absent_core_evidence=True).to_dict()["absent_core_evidence"] is True
