"""``hybridneuro run`` end to end on a small synthetic study, ``treat`` through the CLI, and bad input."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import matplotlib.image
import numpy as np
import pytest
import SimpleITK as sitk

from study_helpers import folder_digest, make_study_folder
from HybridNeuroLib import __version__
from HybridNeuroLib.cli import main
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.labels import BRATS_LABELS
from HybridNeuroLib.progress import Progress, parse_progress_line, PROGRESS_PREFIX

TINY_FIT = ["--voxel-mm", "4", "--starts", "1", "--iterations", "6", "--members", "2", "--member-iterations", "3"]
DAYS = [0.0, 20.0, 40.0, 60.0]  # observed 0, 20, 40; predicted 60


def _main(argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI in this process; (exit code, stdout, stderr). Restores the global progress-line switch."""
    out, err = io.StringIO(), io.StringIO()
    saved = Progress.machine_lines_default
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        Progress.machine_lines_default = saved
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A 4 mm synthetic subject; tp2 has no seg, so ``run`` must segment it."""
    from HybridNeuroLib.synth import generate_subject
    from HybridNeuroLib.synth.parameters import SubjectParameters

    root = tmp_path_factory.mktemp("subject")
    fast = SubjectParameters(dw_mm2_per_day=0.3, rho_per_day=0.03, detection_radius_mm=8.0)
    subject = generate_subject(1, root / "s1", days=(0, 20, 40), predict_days=(60,), voxel_mm=4, parameters=fast)
    true_tp2 = sitk.ReadImage(str(subject.study_folder / "tp2" / "seg.nii.gz"))
    (subject.study_folder / "tp2" / "seg.nii.gz").unlink()
    return subject.study_folder, true_tp2


@pytest.fixture(scope="module")
def run(study, tmp_path_factory):
    folder, _ = study
    before = folder_digest(folder)
    out = tmp_path_factory.mktemp("run") / "results"
    code, stdout, stderr = _main(["--progress-lines", "run", str(folder), "--out", str(out), *TINY_FIT])
    assert code == 0, stderr
    assert folder_digest(folder) == before  # the study is read-only
    return out, json.loads((out / "report.json").read_text(), parse_constant=_refuse), stdout


def _refuse(constant):
    raise AssertionError(f"report.json holds {constant}")


def test_report_holds_parameters_volumes_inputs_and_warnings(run, study):
    out, report, _ = run
    assert report["software"] == {"name": "hybridneuro", "version": __version__}
    assert report["model"]["name"] == "physics" and report["settings"]["fit"]["voxel_mm"] == 4.0
    parameters, intervals = report["parameters"], report["intervals"]
    assert 0.02 <= parameters["D_w_mm2_per_day"] <= 1.5 and 0.005 <= parameters["rho_per_day"] <= 0.2
    for key in ("D_w_mm2_per_day", "rho_per_day"):
        low, high = intervals[key]
        assert low <= parameters[key] <= high
    assert [row["day"] for row in report["volumes"]] == DAYS
    assert [row["kind"] for row in report["volumes"]] == ["observed"] * 3 + ["predicted"]
    voxel_ml = 4.0 ** 3 / 1000
    for row in report["volumes"]:
        low, high = row["whole_ml_range"]
        assert 0 < low <= row["whole_ml"] <= high
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out / f"seg_day{row['day']:g}.nii.gz")))
        assert row["whole_ml"] == pytest.approx(np.count_nonzero(labels) * voxel_ml, abs=1e-3)
        if row["kind"] == "observed":
            assert row["observed_ml"] > 0 and 0.3 < row["dice_vs_observed"] <= 1.0
    timepoints = report["inputs"]["timepoints"]
    assert [tp["lesion_labels"].startswith("segmented automatically") for tp in timepoints] == [False, False, True]
    assert report["inputs"]["tissue"] == "study"
    assert any("segmented automatically" in w and "synthetic data only" in w for w in report["warnings"])
    assert sorted(report["scenarios"]) == ["RT 30×2 Gy", "RT 30×2 Gy + TMZ-like chemo", "untreated"]
    assert all((out / name).is_file() for name in report["files"])
    assert {"scene.mrb", "forecast_overlay.png", "lesion_volume.png", "scenarios/scenarios.png",
            "model/model.json", "model/params.json", "segmentation/seg_tp2.nii.gz"} <= set(report["files"])


def test_images_lie_on_the_first_timepoint_grid(run, study):
    out, _, _ = run
    folder, true_tp2 = study
    grid = ImageGeometry.from_image(sitk.ReadImage(str(folder / "tp0" / "t1n.nii.gz")))
    for day in DAYS:
        for stem in ("seg", "density", "probability"):
            image = sitk.ReadImage(str(out / f"{stem}_day{day:g}.nii.gz"))
            assert ImageGeometry.from_image(image) == grid, (stem, day)
            values = sitk.GetArrayViewFromImage(image)
            assert np.isfinite(values).all() and values.min() >= 0
            if stem == "probability":
                assert values.max() <= 1
    # the automatic segmentation of tp2 found the lesion the generator drew
    segmented = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "segmentation" / "seg_tp2.nii.gz"))) > 0
    truth = sitk.GetArrayFromImage(true_tp2) > 0
    assert 2 * (segmented & truth).sum() / (segmented.sum() + truth.sum()) > 0.7


def _colour_pixels(path, rgb, tolerance=0.08) -> int:
    image = matplotlib.image.imread(path)[..., :3]
    return int((np.abs(image - np.array(rgb)).max(axis=-1) < tolerance).sum())


def test_figures_show_the_lesion(run):
    out, _, _ = run
    edema = next(label.color_rgb for label in BRATS_LABELS if label.value == 2)
    overlay = out / "forecast_overlay.png"
    assert _colour_pixels(overlay, edema) > 100          # predicted outlines
    assert _colour_pixels(overlay, (0.0, 1.0, 1.0)) > 50  # observed outlines (dashed cyan)
    assert _colour_pixels(out / "scenarios" / "scenarios.png", edema) > 20  # the untreated lesion at day 60
    assert matplotlib.image.imread(out / "lesion_volume.png").shape[0] > 200


def test_scene_reimports_with_every_node(run, mrml):
    from HybridNeuroLib.mrml import segmentation_to_labels

    out, report, _ = run
    subject = report["inputs"]["subject"]
    scene = mrml.scene
    assert scene.ReadFromMRB(str(out / "scene.mrb"))
    scan = scene.GetFirstNodeByName(f"{subject} scan")
    assert scan is not None and scene.GetFirstNodeByName(f"{subject} density day 60") is not None
    for day in DAYS:
        lesion = scene.GetFirstNodeByName(f"{subject} lesion day {day:g}")
        expected = sitk.ReadImage(str(out / f"seg_day{day:g}.nii.gz"))
        reloaded = sitk.Resample(segmentation_to_labels(lesion, scan), expected, sitk.Transform(),
                                 sitk.sitkNearestNeighbor)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(reloaded), sitk.GetArrayFromImage(expected))
    for day in DAYS[:3]:
        assert scene.GetFirstNodeByName(f"{subject} observed lesion day {day:g}") is not None
    for name in report["scenarios"]:
        assert scene.GetFirstNodeByName(f"{subject} scenario {name} lesion day 60") is not None
    sequences = [scene.GetNthNodeByClass(i, "vtkMRMLSequenceNode") for i in range(2)]
    for sequence in sequences:
        assert [sequence.GetNthIndexValue(n) for n in range(sequence.GetNumberOfDataNodes())] == ["0", "20", "40", "60"]
    assert scene.GetFirstNodeByClass("vtkMRMLSequenceBrowserNode") is not None


def test_progress_lines_parse(run):
    _, _, stdout = run
    lines = [line for line in stdout.splitlines() if line.startswith(PROGRESS_PREFIX)]
    records = [parse_progress_line(line) for line in lines]
    assert records and all(record is not None for record in records)
    steps = {record["step"] for record in records}
    assert {"run", "segment", "fit", "scenarios"} <= steps
    overall = [record["fraction"] for record in records if record["step"] == "run"]
    assert overall == sorted(overall) and overall[-1] == 1.0


def test_predict_from_the_run_checkpoint_reproduces_the_forecast(run, tmp_path):
    out, _, _ = run
    days = [f"{day:g}" for day in DAYS]  # the same output days: the same solver steps, the same numbers
    code, _, stderr = _main(["predict", str(out / "model"), "--out", str(tmp_path / "p"), "--days", *days])
    assert code == 0, stderr
    for stem in ("seg", "density", "probability"):
        again, first = (sitk.ReadImage(str(folder / f"{stem}_day60.nii.gz")) for folder in (tmp_path / "p", out))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(again), sitk.GetArrayFromImage(first))


def test_more_radiotherapy_dose_leaves_fewer_cells(run, tmp_path):
    out, _, _ = run
    cells = {}
    for dose in ("1", "2", "3"):
        code, _, stderr = _main(["treat", str(out / "model"), "--out", str(tmp_path / dose), "--days", "60",
                                 "--rt-start-day", "40", "--rt-fractions", "10", "--rt-dose-per-fraction-gy", dose])
        assert code == 0, stderr
        record = json.loads((tmp_path / dose / "scenarios.json").read_text())
        assert [s["name"] for s in record["scenarios"]] == ["untreated", f"RT 10×{dose} Gy day 40"]
        untreated, treated = (s["outcomes"][-1] for s in record["scenarios"])
        assert untreated["day"] == 60.0 and treated["cells_ml"] < untreated["cells_ml"]
        cells[dose] = treated["cells_ml"]
        assert (tmp_path / dose / "scenarios.png").is_file()
        assert (tmp_path / dose / f"rt-10x{dose}-gy-day-40" / "seg_day60.nii.gz").is_file()
    assert cells["3"] < cells["2"] < cells["1"]


def test_a_study_with_several_errors_is_refused_with_all_of_them(tmp_path):
    folder = make_study_folder(tmp_path / "study")
    manifest = json.loads((folder / "study.json").read_text())
    manifest["subject"], manifest["timepoints"][1]["day"] = 7, "45"
    (folder / "study.json").write_text(json.dumps(manifest))
    shutil.rmtree(folder / "tp1")
    code, _, stderr = _main(["run", str(folder), "--out", str(tmp_path / "out")])
    assert code == 2 and "Traceback" not in stderr
    for problem in ("subject: must be a non-empty text string", "timepoints[1].day: must be a number", "tp1/"):
        assert problem in stderr, problem
    assert not (tmp_path / "out").exists()


def test_output_inside_the_study_or_over_results_is_refused(run, study, tmp_path):
    folder, _ = study
    out, _, _ = run
    before = folder_digest(folder)
    code, _, stderr = _main(["run", str(folder), "--out", str(folder / "results")])
    assert code == 2 and "read-only" in stderr and folder_digest(folder) == before
    report = (out / "report.json").read_bytes()
    code, _, stderr = _main(["run", str(folder), "--out", str(out)])
    assert code == 2 and "--overwrite" in stderr and (out / "report.json").read_bytes() == report


def test_unknown_model_lists_the_models(study, tmp_path):
    folder, _ = study
    for command in ("fit", "run"):
        code, _, stderr = _main([command, str(folder), "--out", str(tmp_path / command), "--model", "unknown"])
        assert code == 2 and "unknown model 'unknown'" in stderr and "physics" in stderr
        assert not (tmp_path / command).exists()


def test_a_failure_midway_leaves_no_output_folder(study, tmp_path):
    folder, _ = study
    out = tmp_path / "results"
    code, _, stderr = _main(["run", str(folder), "--out", str(out), *TINY_FIT, "--members", "0",
                             "--chemo-start-day", "50", "--chemo-end-day", "45"])  # fails after the fit
    assert code == 2 and "--chemo-end-day 45" in stderr
    assert list(tmp_path.iterdir()) == []  # neither the result nor its staging folder


def test_a_cancelled_run_leaves_nothing_behind(study, tmp_path):
    import time

    from HybridNeuroLib.jobs import CliJob

    folder, _ = study
    steps = []
    job = CliJob(["run", str(folder), *TINY_FIT], out=tmp_path / "results",
                 on_progress=lambda record: steps.append(record["step"]))
    job.start()
    while "fit" not in steps and job.poll() is None:  # cancel while it fits, after the staging folder exists
        time.sleep(0.05)
    assert job.returncode is None, job.lines
    job.cancel()
    assert job.wait(timeout_s=120) != 0 and not job.succeeded
    assert list(tmp_path.iterdir()) == []  # no result, no staging folder of the job or of the pipeline


def test_run_needs_exactly_one_study(study, tmp_path):
    folder, _ = study
    for argv in (["run", "--out", str(tmp_path / "a")], ["run", str(folder), "--sample", "--out", str(tmp_path / "b")]):
        code, _, stderr = _main(argv)
        assert code == 2 and "either a study folder or --sample" in stderr
    assert list(tmp_path.iterdir()) == []


def test_fit_segments_timepoints_without_seg_and_keeps_them_beside_the_fit(study, tmp_path):
    folder, true_tp2 = study
    before = folder_digest(folder)
    code, stdout, stderr = _main(["fit", str(folder), "--out", str(tmp_path / "fit"), *TINY_FIT])
    assert code == 0, stderr
    segmented = sitk.ReadImage(str(tmp_path / "fit" / "segmentation" / "seg_tp2.nii.gz"))
    found, truth = sitk.GetArrayFromImage(segmented) > 0, sitk.GetArrayFromImage(true_tp2) > 0
    assert 2 * (found & truth).sum() / (found.sum() + truth.sum()) > 0.7
    assert "segmented automatically" in stdout and (tmp_path / "fit" / "params.json").is_file()
    assert folder_digest(folder) == before   # the study stays read-only
