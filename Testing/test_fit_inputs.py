"""Bad and limited input: one timepoint, empty or shrinking lesions, NaN labels, a divergent fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from fit_cases import grown_lesion, phantom_tissue
from HybridNeuroLib.fit import FitSettings, ShrinkingLesionError, fit_growth, predict
from HybridNeuroLib.fit import objective as objective_module

FAST = FitSettings(voxel_mm=4.0, starts=1, iterations=8, members=0)


@pytest.fixture(scope="module")
def small():
    tissue = phantom_tissue(16, voxel_mm=4.0)
    labels, _ = grown_lesion(tissue, days=(0.0, 40.0, 80.0))
    return tissue, labels


def test_single_timepoint_warns_keeps_priors_and_still_predicts(small):
    tissue, labels = small
    with pytest.warns(UserWarning, match="not identifiable"):
        result = fit_growth(tissue, labels[:1], FAST, progress=False)
    assert not result.identifiable
    assert (result.best.dw_mm2_per_day, result.best.rho_per_day) == (FAST.prior_dw_mm2_per_day, FAST.prior_rho_per_day)
    assert any("not identifiable" in w for w in result.warnings) and result.to_dict()["identifiable"] is False
    forecast = predict(result, tissue, [60.0])
    assert forecast.volumes[0]["whole_ml"] > 0
    assert np.isfinite(sitk.GetArrayViewFromImage(forecast.density[0])).all()


def test_two_timepoints_do_not_warn(small, recwarn):
    tissue, labels = small
    result = fit_growth(tissue, labels[:2], FAST, progress=False)
    assert result.identifiable and not [w for w in recwarn if "identifiable" in str(w.message)]


def test_empty_lesion_is_refused_naming_the_day(small):
    tissue, labels = small
    empty = sitk.Image(labels[1][1]) * 0
    with pytest.raises(ValueError, match="day 40: the lesion is empty"):
        fit_growth(tissue, [labels[0], (40.0, empty)], FAST, progress=False)


def test_shrinking_lesion_says_treatment_likely(small):
    tissue, labels = small
    with pytest.raises(ShrinkingLesionError, match="shrinks .* day 0 .* day 40: treatment"):
        fit_growth(tissue, [(0.0, labels[2][1]), (40.0, labels[0][1])], FAST, progress=False)


def test_nan_or_non_label_values_are_refused(small):
    tissue, labels = small
    array = sitk.GetArrayFromImage(labels[1][1]).astype(np.float32)
    array[0, 0, 0] = np.nan
    bad = sitk.GetImageFromArray(array)
    bad.CopyInformation(labels[1][1])
    with pytest.raises(ValueError, match="day 40: contain NaN"):
        fit_growth(tissue, [labels[0], (40.0, bad)], FAST, progress=False)
    with pytest.raises(ValueError, match="day 40: values span"):
        fit_growth(tissue, [labels[0], (40.0, labels[1][1] * 7)], FAST, progress=False)


def test_no_labels_and_lesion_outside_the_brain_are_refused(small):
    tissue, labels = small
    with pytest.raises(ValueError, match="none given"):
        fit_growth(tissue, [], FAST, progress=False)
    outside = np.zeros(tissue.geometry.shape_kji, np.uint8)
    outside[0:2, 0:2, 0:2] = 2  # in the CSF rim
    with pytest.raises(ValueError, match="not in the brain tissue domain"), \
            pytest.warns(UserWarning, match="not identifiable"):  # one timepoint: warned before refused
        fit_growth(tissue, [(0.0, tissue.geometry.image_from_array(outside))], FAST, progress=False)


def test_nan_loss_stops_with_the_last_good_state(small, monkeypatch):
    tissue, labels = small
    real_loss, calls = objective_module.Objective.loss, []

    def failing_loss(self, *args, **kwargs):
        calls.append(1)
        value = real_loss(self, *args, **kwargs)
        return value if len(calls) <= 3 else value * torch.tensor(float("nan"))

    monkeypatch.setattr(objective_module.Objective, "loss", failing_loss)
    result = fit_growth(tissue, labels, FitSettings(voxel_mm=4.0, starts=1, iterations=10, members=0),
                        progress=False)
    assert len(result.best.loss_history) == 3 and math.isfinite(result.best.loss)
    assert "divergent" in result.best.stopped_reason and any("divergent" in w for w in result.warnings)
    assert all(math.isfinite(v) for v in (result.best.dw_mm2_per_day, result.best.rho_per_day, result.best.radius_mm))

    monkeypatch.setattr(objective_module.Objective, "loss",
                        lambda self, *a, **k: real_loss(self, *a, **k) * torch.tensor(float("nan")))
    with pytest.raises(ValueError, match="fit diverged"):
        fit_growth(tissue, labels, FAST, progress=False)


@pytest.mark.parametrize("changes, message", [({"starts": 0}, "starts"), ({"voxel_mm": -1.0}, "voxel_mm"),
                                              ({"loss": "l2"}, "loss"), ({"prior_rho_per_day": 0.5}, "prior_rho")])
def test_bad_settings_name_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        FitSettings(**changes)


def test_fitting_region_is_the_lesion_box_plus_margin_in_world_space(small):
    from HybridNeuroLib.fit.observations import prepare_observations

    tissue, labels = small
    whole = prepare_observations(tissue, labels, voxel_mm=4.0)
    boxed = prepare_observations(tissue, labels, voxel_mm=4.0, region_margin_mm=8.0)
    assert boxed.tissue.geometry.size < whole.tissue.geometry.size
    # the same voxel (same world point) holds the same values in both
    ras = boxed.tissue.geometry.ijk_to_ras() @ np.array([1.0, 2.0, 3.0, 1.0])
    i, j, k = np.rint(whole.tissue.geometry.ras_to_ijk(ras[:3])).astype(int)
    assert boxed.tissue.wm[3, 2, 1] == whole.tissue.wm[k, j, i]
    assert boxed.observations[-1].whole.sum() == whole.observations[-1].whole.sum()  # no lesion cut off
