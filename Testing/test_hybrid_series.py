"""The series hybrid: the shipped encoder recovers FK parameters of a held-out case; fit, predict, save, load."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from HybridNeuroLib.fit import FitSettings
from HybridNeuroLib.hybrid import CheckpointError, load_model, make_model
from HybridNeuroLib.hybrid import encoder as enc
from HybridNeuroLib.hybrid.cohort import evaluation_seeds
from HybridNeuroLib.hybrid.series import COMPONENT_FOLDER, encoder_start, load_encoder
from HybridNeuroLib.metrics import dice
from HybridNeuroLib.physics import GrowthParameters, Seed, TissueMaps, simulate
from HybridNeuroLib.synth.generator import _seed_voxel, subject_anatomy

TRUE_DW, TRUE_RHO = 0.05, 0.03           # front speed 0.077 mm/day, inside the training ranges
OBSERVED, FUTURE = (0.0, 60.0, 120.0), 180.0


@pytest.fixture(scope="module")
def case():
    """An FK lesion on an evaluation-cohort anatomy (never a training anatomy), seen at days 0, 60, 120."""
    subject = evaluation_seeds(1)[0]
    geometry, maps = subject_anatomy(2, 4.0, np.random.default_rng([subject, 1]))
    tissue = TissueMaps(geometry=geometry, **maps)
    seed_kji = _seed_voxel(maps, geometry.spacing_mm[::-1], np.random.default_rng(5))
    centre = tuple(float(v) for v in (geometry.ijk_to_ras() @ np.append(seed_kji[::-1], 1.0))[:3])
    onset = (12.0 - 4.0) / (2 * math.sqrt(TRUE_DW * TRUE_RHO))     # as bench_fit: visible at day 0 (0.36 mL)
    run = simulate(tissue, Seed(centre, 3.0), GrowthParameters(TRUE_DW, TRUE_RHO),
                   [onset + d for d in (*OBSERVED, FUTURE)], progress=False)
    labels = list(zip((*OBSERVED, FUTURE), run.labels))
    return tissue, centre, labels[:3], labels[3]


def test_shipped_encoder_recovers_a_held_out_fk_case(case):
    tissue, centre, observed, _ = case
    start = encoder_start(tissue, observed)
    # measured on this case: D_w 0.0544 (+9 %), ρ 0.0268 (−11 %), speed −1.4 %, seed 0.45 mm; the spread over
    # held-out cases is in the model card (a case in the tails, e.g. a barely visible first lesion, misses by 2×)
    assert abs(math.log(start.dw_mm2_per_day / TRUE_DW)) < math.log(1.3)
    assert abs(math.log(start.rho_per_day / TRUE_RHO)) < math.log(1.3)
    assert abs(start.front_speed_mm_per_day / (2 * math.sqrt(TRUE_DW * TRUE_RHO)) - 1) < 0.1
    assert np.linalg.norm(np.subtract(start.centre_ras_mm, centre)) < 2.0
    assert math.isnan(start.loss) and start.radius_mm > 0
    assert encoder_start(tissue, observed[:2]).dw_mm2_per_day > 0          # two timepoints are enough


def test_fit_predict_save_load_round_trip(case, tmp_path):
    tissue, _, observed, (future_day, future) = case
    model = make_model("series").fit(tissue, observed, progress=False)
    start = encoder_start(tissue, observed)
    assert (model.result.best.dw_mm2_per_day, model.result.best.rho_per_day) == (start.dw_mm2_per_day,
                                                                                  start.rho_per_day)
    forecast = model.predict([OBSERVED[-1], future_day])
    assert forecast.volumes[1]["whole_ml"] > forecast.volumes[0]["whole_ml"] > 0
    truth = sitk.GetArrayViewFromImage(future) > 0
    assert dice(sitk.GetArrayViewFromImage(forecast.labels[1]) > 0, truth) > 0.8      # measured 0.861
    assert forecast.labels[1].GetSize() == tissue.geometry.size

    model.save(tmp_path / "series")
    record = json.loads((tmp_path / "series" / "model.json").read_text())
    assert record["model"] == "series" and record["record"]["encoder_sha256"] == load_encoder().sha256
    loaded = load_model(tmp_path / "series", expected="series")
    again = loaded.predict([OBSERVED[-1], future_day])      # same days → same solver steps → same bits
    assert np.array_equal(sitk.GetArrayFromImage(again.density[1]), sitk.GetArrayFromImage(forecast.density[1]))
    assert loaded.result.best.centre_ras_mm == model.result.best.centre_ras_mm
    assert loaded.result.best.radius_mm == model.result.best.radius_mm


def test_too_few_timepoints_are_refused(case):
    tissue, _, observed, _ = case
    with pytest.raises(ValueError, match="at least 2 timepoints"):
        make_model("series").fit(tissue, observed[:1], progress=False)
    with pytest.raises(ValueError, match="at least 2 timepoints"):
        encoder_start(tissue, observed[:1])
    with pytest.raises(ValueError, match="not fitted"):
        make_model("series").predict([10])


def test_physics_fit_with_the_encoder_start_is_no_worse(case):
    tissue, _, observed, _ = case
    settings = FitSettings(voxel_mm=4.0, starts=1, iterations=4, members=0)
    plain = make_model("physics", settings=settings).fit(tissue, observed, progress=False).result
    started = make_model("physics", settings=settings, start_from_encoder=True).fit(tissue, observed,
                                                                                   progress=False).result
    assert len(plain.starts) == 1 and len(started.starts) == 2
    assert started.starts[0].loss == plain.starts[0].loss          # the default start is untouched
    assert started.best.loss <= plain.best.loss
    assert math.isfinite(started.starts[1].loss)


def test_augmentation_moves_the_seed_offset_with_the_volume():
    volume = torch.zeros(len(enc.CHANNELS), *(enc.CROP_VOXELS,) * 3)
    position = np.array([3, 17, 8])
    volume[0, 3, 17, 8] = 1.0
    half = (enc.CROP_VOXELS - 1) / 2
    offset = torch.tensor((position - half) * enc.CROP_SPACING_MM, dtype=torch.float32)
    rng = np.random.default_rng(0)
    for _ in range(8):
        moved, moved_offset = enc._symmetry(volume, offset, rng)
        new_position = np.argwhere(moved[0].numpy() == 1.0)[0]
        assert np.allclose((new_position - half) * enc.CROP_SPACING_MM, moved_offset.numpy())


def test_crop_offsets_round_trip_in_world_space(case):
    tissue, centre, _, _ = case
    crop = enc.crop_geometry(tissue.geometry.direction_lps, (1.0, -2.0, 3.0))
    assert np.allclose(enc.offset_to_ras(crop, enc.ras_to_offset(crop, centre)), centre)
    assert np.allclose(enc.offset_to_ras(crop, (0.0, 0.0, 0.0)), (1.0, -2.0, 3.0))


def test_a_damaged_or_foreign_component_is_refused(tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    record = json.loads((COMPONENT_FOLDER / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**record, "format": "something/9"}))
    with pytest.raises(CheckpointError, match="something/9"):
        load_encoder(folder)
    (folder / "model.json").write_text(json.dumps(record))
    (folder / "tensors.pt").write_bytes(b"not a tensor file")
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        load_encoder(folder)
