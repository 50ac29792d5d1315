"""params.json round trip, and the ``hybridneuro fit`` / ``predict`` commands on a tiny study."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from fit_cases import grown_lesion, phantom_tissue
from HybridNeuroLib import __version__
from HybridNeuroLib.cli import main
from HybridNeuroLib.fit import FitResult, FitSettings, fit_growth
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.hybrid import load_model
from HybridNeuroLib.study import Study, Timepoint, write_study


@pytest.fixture(scope="module")
def small():
    tissue = phantom_tissue(16, voxel_mm=4.0)
    labels, _ = grown_lesion(tissue, days=(0.0, 40.0, 80.0))
    return tissue, labels


def test_params_json_round_trip_keeps_everything(small, tmp_path):
    tissue, labels = small
    settings = FitSettings(voxel_mm=4.0, starts=2, iterations=5, members=2, member_iterations=3, seed=5)
    result = fit_growth(tissue, labels[:2], settings, progress=False)
    result.extra["study"] = {"folder": "/somewhere"}
    result.save(tmp_path)
    record = json.loads((tmp_path / "params.json").read_text())
    for key in ("D_w_mm2_per_day", "rho_per_day", "thresholds", "seed", "intervals", "model", "software",
                "loss_history", "settings"):
        assert key in record, key
    assert record["software"]["version"] == __version__ and record["model"] == "fisher-kolmogorov"
    assert record["seed"]["centre_ras_mm"] == list(result.best.centre_ras_mm)
    assert len(record["loss_history"]) == 2 and len(record["loss_history"][0]) == 5
    again = FitResult.load(tmp_path)
    assert again.best == result.best and again.members == result.members and again.starts == result.starts
    assert again.settings == settings and again.observed_days == result.observed_days
    assert again.intervals() == result.intervals() and again.extra["study"] == {"folder": "/somewhere"}
    assert again.to_dict() == result.to_dict()


def test_load_refuses_a_missing_or_foreign_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="params.json"):
        FitResult.load(tmp_path)
    (tmp_path / "params.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a hybridneuro-fit/1"):
        FitResult.load(tmp_path)


def _study(tmp_path, tissue, labels, with_seg=True):
    timepoints = tuple(Timepoint(f"tp{n}", day, {"t2f": sitk.Cast(seg, sitk.sitkFloat32)}, seg if with_seg else None)
                       for n, (day, seg) in enumerate(labels))
    maps = {name: tissue.geometry.image_from_array(getattr(tissue, name)) for name in ("gm", "wm", "csf")}
    return write_study(Study("phantom", "glioma", timepoints, (120.0,), maps), tmp_path / "study")


def test_fit_and_predict_commands_write_the_promised_files(small, tmp_path, capsys):
    tissue, labels = small
    study = _study(tmp_path, tissue, labels)
    before = sorted(p.relative_to(study) for p in study.rglob("*"))
    fit_dir, out = tmp_path / "fit", tmp_path / "forecast"
    args = ["fit", str(study), "--out", str(fit_dir), "--voxel-mm", "4", "--starts", "1", "--iterations", "6",
            "--members", "2"]
    assert main(args) == 0
    assert (fit_dir / "params.json").is_file() and (fit_dir / "initial_density.nii.gz").is_file()
    assert main(["predict", str(fit_dir), "--out", str(out)]) == 0          # default: predict_days (120)
    grid = ImageGeometry.from_image(labels[0][1])
    for stem in ("seg", "density", "probability"):
        image = sitk.ReadImage(str(out / f"{stem}_day120.nii.gz"))
        assert ImageGeometry.from_image(image) == grid, stem
        assert np.isfinite(sitk.GetArrayViewFromImage(image)).all()
    assert sitk.GetArrayViewFromImage(sitk.ReadImage(str(out / "seg_day120.nii.gz"))).any()
    report = json.loads((out / "forecast.json").read_text())
    assert report["volumes"][0]["day"] == 120.0 and report["members"] == 3
    assert sorted(p.relative_to(study) for p in study.rglob("*")) == before  # the study is untouched
    # the checkpoint loads as the physics model holding the same fit as params.json
    model = load_model(fit_dir, expected="physics")
    assert model.result.to_dict() == FitResult.load(fit_dir).to_dict()
    # a fit folder of an older version (params.json only) still predicts, the same forecast
    legacy = tmp_path / "legacy-fit"
    shutil.copytree(fit_dir, legacy)
    (legacy / "model.json").unlink()
    (legacy / "tensors.pt").unlink()
    assert main(["predict", str(legacy), "--out", str(tmp_path / "legacy-forecast")]) == 0
    for stem in ("seg", "density", "probability"):
        again, first = (sitk.ReadImage(str(folder / f"{stem}_day120.nii.gz"))
                        for folder in (tmp_path / "legacy-forecast", out))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(again), sitk.GetArrayFromImage(first))

    capsys.readouterr()
    assert main(args) == 2 and "exists" in capsys.readouterr().err                        # no silent overwrite
    assert main(args + ["--overwrite"]) == 0
    assert main(["predict", str(fit_dir), "--out", str(study / "out"), "--days", "90"]) == 2  # not into the study
    assert "read-only" in capsys.readouterr().err and not (study / "out").exists()


def test_fit_command_without_segmentations_says_so(small, tmp_path, capsys):
    tissue, labels = small
    study = _study(tmp_path, tissue, labels, with_seg=False)
    assert main(["fit", str(study), "--out", str(tmp_path / "fit")]) == 2
    error = capsys.readouterr().err
    assert "timepoint tp0 has no lesion segmentation" in error and "t1n, t1c, t2w" in error
    assert not (tmp_path / "fit").exists()


def test_fit_command_with_cmaes_and_onset_records_the_age_and_writes_the_grown_initial_state(small, tmp_path):
    tissue, labels = small
    study = _study(tmp_path, tissue, labels)
    fit_dir = tmp_path / "fit"
    assert main(["fit", str(study), "--out", str(fit_dir), "--voxel-mm", "4", "--starts", "1", "--members", "0",
                 "--optimizer", "cmaes", "--evaluations", "40", "--fit-onset"]) == 0
    record = json.loads((fit_dir / "params.json").read_text())
    assert record["settings"]["optimizer"] == "cmaes" and record["settings"]["fit_onset"] is True
    assert record["seed"]["onset_days"] > 0 and record["best"]["onset_days"] == record["seed"]["onset_days"]
    initial = sitk.GetArrayFromImage(sitk.ReadImage(str(fit_dir / "initial_density.nii.gz")))
    model = load_model(fit_dir)
    at_first_day = sitk.GetArrayFromImage(model.predict([labels[0][0]]).density[0])
    np.testing.assert_array_equal(initial, at_first_day)   # the grown seed, not the bare one
    assert initial.max() < 1.0 and (initial > 0.25).sum() > 1
