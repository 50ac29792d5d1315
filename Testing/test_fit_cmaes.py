"""The derivative-free fit (CMA-ES): same interface and result as Adam, reproducible, NaN-safe."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fit_cases import TRUE_DW_MM2_PER_DAY, TRUE_RHO_PER_DAY, centre_ras, grown_lesion, phantom_tissue
from HybridNeuroLib.fit import FitResult, FitSettings, fit_growth, predict
from HybridNeuroLib.fit import objective as objective_module

SMALL = FitSettings(voxel_mm=4.0, starts=2, optimizer="cmaes", evaluations=40, members=2, seed=3)


@pytest.fixture(scope="module")
def small():
    tissue = phantom_tissue(16, voxel_mm=4.0)
    labels, _ = grown_lesion(tissue, days=(0.0, 40.0, 80.0))
    return tissue, labels


def test_cmaes_recovers_dw_and_rho_on_the_ci_phantom():
    # the same 2 mm phantom and tolerances as the Adam test (test_fit_recovery.py)
    tissue = phantom_tissue(32)
    labels, _ = grown_lesion(tissue, days=(0.0, 40.0, 80.0))
    result = fit_growth(tissue, labels, FitSettings(optimizer="cmaes", starts=1, evaluations=600, members=0,
                                                    seed=7), progress=False)
    best = result.best
    # measured: D_w +0.9 %, ρ +0.5 %, centre 0.04 mm off, loss 0.0 (600 evaluations, ~17 s on one thread)
    assert abs(best.dw_mm2_per_day / TRUE_DW_MM2_PER_DAY - 1) < 0.10, best
    assert abs(best.rho_per_day / TRUE_RHO_PER_DAY - 1) < 0.10, best
    assert np.linalg.norm(np.subtract(best.centre_ras_mm, centre_ras(tissue))) < 2.0
    assert best.loss == min(best.loss_history) and best.loss < 0.05 * best.loss_history[0]
    assert "cmaes" in result.messages[0] and result.settings.optimizer == "cmaes"


def test_same_seed_same_fit_and_the_seed_drives_the_sampling(small):
    tissue, labels = small
    first, second = (fit_growth(tissue, labels, SMALL, progress=False) for _ in range(2))
    assert first.best == second.best and first.members == second.members
    assert first.best.loss_history == second.best.loss_history
    other = fit_growth(tissue, labels, FitSettings(**{**SMALL.__dict__, "seed": 4}), progress=False)
    assert other.best != first.best


def test_result_is_an_ordinary_fit_result(small, tmp_path):
    tissue, labels = small
    result = fit_growth(tissue, labels, SMALL, progress=False)
    assert len(result.members) == 2 and len(result.starts) == 2
    low, high = result.intervals()["D_w_mm2_per_day"]
    assert low <= result.best.dw_mm2_per_day <= high
    result.save(tmp_path)
    loaded = FitResult.load(tmp_path)
    assert loaded.best == result.best and loaded.settings == result.settings
    forecast = predict(loaded, tissue, [120.0])
    assert forecast.volumes[0]["whole_ml"] > 0


def test_single_timepoint_moves_only_the_seed(small):
    tissue, labels = small
    with pytest.warns(UserWarning, match="not identifiable"):
        result = fit_growth(tissue, labels[:1], SMALL, progress=False)
    assert (result.best.dw_mm2_per_day, result.best.rho_per_day) == (SMALL.prior_dw_mm2_per_day,
                                                                      SMALL.prior_rho_per_day)


def test_a_nan_loss_is_a_bad_candidate_not_a_crash(small, monkeypatch):
    tissue, labels = small
    real_loss = objective_module.Objective.loss

    def nan_for_fast_growth(self, dw, rho, *args, **kwargs):  # a "divergent" region of parameter space
        value = real_loss(self, dw, rho, *args, **kwargs)
        return value * torch.tensor(float("nan")) if float(dw) > 0.3 else value

    monkeypatch.setattr(objective_module.Objective, "loss", nan_for_fast_growth)
    settings = FitSettings(**{**SMALL.__dict__, "starts": 1, "members": 0, "evaluations": 60})
    result = fit_growth(tissue, labels, settings, progress=False)
    assert math.isfinite(result.best.loss) and result.best.dw_mm2_per_day <= 0.3
    assert "ranked worst" in result.best.stopped_reason

    monkeypatch.setattr(objective_module.Objective, "loss",
                        lambda self, *a, **k: real_loss(self, *a, **k) * torch.tensor(float("nan")))
    with pytest.raises(ValueError, match="fit diverged"):
        fit_growth(tissue, labels, settings, progress=False)


def test_onset_is_searched_too(small):
    tissue, labels = small
    settings = FitSettings(**{**SMALL.__dict__, "starts": 1, "members": 0, "evaluations": 30, "fit_onset": True})
    result = fit_growth(tissue, labels, settings, progress=False)
    assert math.isfinite(result.best.loss) and result.best.onset_days > settings.onset_bounds_days[0]
    assert "onset" in result.messages[0]


def test_bad_optimizer_settings_name_the_field():
    with pytest.raises(ValueError, match="optimizer"):
        FitSettings(optimizer="lbfgs")
    with pytest.raises(ValueError, match="evaluations"):
        FitSettings(evaluations=0)
