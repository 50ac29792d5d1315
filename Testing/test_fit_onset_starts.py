"""Multi-start over lesion ages (FitSettings.onset_age_factors): one start per age factor, the lowest loss wins."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from fit_cases import grown_lesion, phantom_tissue
from HybridNeuroLib.fit import FitResult, FitSettings, fit_growth
from HybridNeuroLib.fit import fitting as fitting_module
from HybridNeuroLib.fit.initialise import multiply_onset, onset_days, onset_starts_days, starting_points
from HybridNeuroLib.fit.observations import prepare_observations
from HybridNeuroLib.fit.settings import CMAES_ONSET_AGE_FACTORS

TINY = FitSettings(voxel_mm=4.0, starts=1, optimizer="cmaes", evaluations=24, members=0, seed=2, fit_onset=True,
                   onset_age_factors=(1.0,))


@pytest.fixture(scope="module")
def tiny():
    tissue = phantom_tissue(16, voxel_mm=4.0)
    labels, _ = grown_lesion(tissue, days=(0.0, 40.0), onset_days=60.0, seed_radius_mm=3.0)
    return tissue, labels


def test_settings_check_round_trip_and_resolve_the_factors():
    # the default (None): several ages for a CMA-ES onset fit only; Adam and fits without onset keep one
    assert FitSettings().onset_age_factors is None and FitSettings().age_factors() == (1.0,)
    assert FitSettings(fit_onset=True).age_factors() == FitSettings(optimizer="cmaes").age_factors() == (1.0,)
    assert FitSettings(optimizer="cmaes", fit_onset=True).age_factors() == CMAES_ONSET_AGE_FACTORS
    assert len(CMAES_ONSET_AGE_FACTORS) > 1 and CMAES_ONSET_AGE_FACTORS[0] == 1.0
    assert FitSettings(onset_age_factors=(1, 3, 10)).age_factors() == (1.0, 3.0, 10.0)
    for bad in ((), (1.0, 0.0), (1.0, -4.0), (math.nan,), (math.inf,)):
        with pytest.raises(ValueError, match="onset_age_factors"):
            FitSettings(onset_age_factors=bad)
    settings = FitSettings(optimizer="cmaes", fit_onset=True, onset_age_factors=(1.0, 4.0))
    assert FitSettings.from_dict(settings.to_dict()) == settings
    assert FitSettings.from_dict(FitSettings(onset_age_factors=None).to_dict()).onset_age_factors is None


def test_start_ages_are_the_estimate_times_each_factor_clipped_once(tiny):
    tissue, labels = tiny
    settings = replace(TINY, onset_age_factors=(1.0, 4.0, 1e6, 2e6), onset_bounds_days=(1.0, 900.0))
    data = prepare_observations(tissue, labels, voxel_mm=settings.voxel_mm, region_margin_mm=settings.region_margin_mm)
    dw, rho = starting_points(data, settings)[0]
    estimate = onset_days(data, settings, dw, rho, 3.0)
    assert 1.0 < estimate < 225.0   # the phantom's estimate is inside the bounds, ×4 too
    assert onset_starts_days(data, settings, dw, rho, 3.0) == pytest.approx([estimate, 4 * estimate, 900.0])
    assert multiply_onset(0.5, (1.0, 1.5), (1.0, 900.0)) == [1.0]   # both clip to the lower bound: one start


def test_the_lowest_loss_start_wins_and_the_result_records_its_onset(tiny, monkeypatch):
    # a fake optimiser whose loss falls with the start's age: the oldest start must be chosen, and every start
    # must have been given the estimate × its factor (the wiring from settings to the optimiser)
    tissue, labels = tiny
    seen = []

    def fake_refine(objective, start, settings, *, random_seed, fit_growth=True, on_step=lambda: None, **_):
        seen.append((start.onset_days, random_seed))
        return replace(start, loss=1.0 / start.onset_days, onset_days=start.onset_days * 1.1)

    monkeypatch.setattr(fitting_module, "refine", fake_refine)
    result = fit_growth(tissue, labels, replace(TINY, onset_age_factors=(1.0, 4.0, 2.0)), progress=False)
    ages = [age for age, _ in seen]
    assert ages == pytest.approx([ages[0], 4 * ages[0], 2 * ages[0]])
    assert [s.start_onset_days for s in result.starts] == ages
    assert result.best.start_onset_days == pytest.approx(4 * ages[0])   # the lowest loss
    assert result.best.onset_days == pytest.approx(4.4 * ages[0])
    assert [seed for _, seed in seen] == [TINY.seed * 1000 + n for n in range(3)]
    assert f"from the start at onset {4 * ages[0]:.4g} days" in result.messages[0]


def test_real_fit_adds_starts_without_changing_the_single_age_start(tiny, tmp_path):
    # the factor-1 start is exactly the single-age fit (same random seed, same budget): the multi-start's best
    # loss can only be lower or equal, and the chosen start is the lower-loss one
    tissue, labels = tiny
    single = fit_growth(tissue, labels, TINY, progress=False)
    multi = fit_growth(tissue, labels, replace(TINY, onset_age_factors=(1.0, 4.0)), progress=False)
    assert len(single.starts) == 1 and len(multi.starts) == 2
    assert multi.starts[0] == single.starts[0] and multi.starts[0].loss == single.starts[0].loss
    assert multi.starts[1].start_onset_days == pytest.approx(4 * multi.starts[0].start_onset_days)
    assert multi.best.loss == min(s.loss for s in multi.starts) <= single.best.loss
    assert multi.best.start_onset_days == min(multi.starts, key=lambda s: s.loss).start_onset_days
    multi.save(tmp_path)
    loaded = FitResult.load(tmp_path)
    assert loaded.best.start_onset_days == multi.best.start_onset_days
    assert loaded.settings.onset_age_factors == (1.0, 4.0)


def test_the_default_cmaes_onset_fit_starts_every_default_age_and_records_them(tiny):
    tissue, labels = tiny
    result = fit_growth(tissue, labels, replace(TINY, onset_age_factors=None, evaluations=8), progress=False)
    assert result.settings.onset_age_factors == CMAES_ONSET_AGE_FACTORS   # resolved in the record
    ages = [s.start_onset_days for s in result.starts]
    assert ages == pytest.approx([ages[0] * f for f in CMAES_ONSET_AGE_FACTORS])
