"""The main job end to end on the coarse (4 mm) sample case: files, report, figures, a scene that re-imports."""

import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from HybridNeuroLib.demo import QUICK_DEMO, run_demo
from HybridNeuroLib.physics.initial import lesion_seed
from HybridNeuroLib.metrics import dice
from HybridNeuroLib.mrml import load_scene_bundle, segmentation_to_labels
from HybridNeuroLib.physics import simulate  # noqa: F401  (the demo's engine; imported to fail early)

QUICK = QUICK_DEMO


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo"), QUICK, progress=False)


def test_demo_covers_observed_and_predicted_days_with_scores(demo):
    assert [(row["day"], row["kind"]) for row in demo.rows] == [
        (0.0, "observed"), (60.0, "observed"), (120.0, "observed"), (180.0, "predicted"), (240.0, "predicted")]
    # every day is scored: observed labels, or the sample's truth at future days
    assert all("dice_population" in row and "dice_fitted" in row for row in demo.rows)
    assert demo.rows[0]["dice_population"] > 0.6  # the seed reproduces the day-0 lesion
    for key in ("population_ml", "fitted_ml"):
        volumes = [row[key] for row in demo.rows]
        assert volumes == sorted(volumes) and volumes[0] > 0
    for row in demo.rows:
        low, high = row["fitted_ml_range"]
        assert low <= row["fitted_ml"] <= high
    # personalisation pays off where it matters, at the future days (even with the quick 4 mm fit)
    future = [row for row in demo.rows if row["kind"] == "predicted"]
    assert all(row["dice_fitted"] > row["dice_population"] for row in future)


def test_demo_files_are_on_the_study_grid_and_match_the_report(demo):
    names = {path.name for path in demo.files}
    assert {"density_day0.nii.gz", "seg_day240.nii.gz", "probability_day240.nii.gz", "report.json",
            "forecast_overlay.png", "lesion_volume.png", "hybridneuro-demo.mrb", "params.json"} <= names
    assert (demo.out / "fit" / "params.json").is_file()
    study = demo.report["study"]["folder"]
    reference = sitk.ReadImage(f"{study}/tp0/t1c.nii.gz")
    labels = sitk.ReadImage(str(demo.out / "seg_day60.nii.gz"))
    assert labels.GetSize() == reference.GetSize() and labels.GetSpacing() == reference.GetSpacing()
    np.testing.assert_allclose(labels.GetOrigin(), reference.GetOrigin())
    report = json.loads((demo.out / "report.json").read_text())
    row = report["days"][1]
    observed = sitk.GetArrayFromImage(sitk.ReadImage(f"{study}/tp1/seg.nii.gz")) > 0
    assert row["dice_fitted"] == pytest.approx(dice(sitk.GetArrayFromImage(labels) > 0, observed), abs=1e-4)
    voxel_ml = np.prod(labels.GetSpacing()) / 1000
    assert row["fitted_ml"] == pytest.approx(np.count_nonzero(sitk.GetArrayFromImage(labels)) * voxel_ml, abs=1e-3)
    probability = sitk.GetArrayFromImage(sitk.ReadImage(str(demo.out / "probability_day60.nii.gz")))
    assert probability.min() >= 0 and probability.max() <= 1
    assert report["software"]["name"] == "hybridneuro"
    assert report["population_simulation"]["settings"]["parameters"]["dw_mm2_per_day"] == QUICK.dw_mm2_per_day
    assert report["fit"]["best"]["dw_mm2_per_day"] > 0


def test_seed_matches_lesion_centre_and_visible_volume():
    labels = np.zeros((21, 21, 21), np.uint8)
    grid = np.indices(labels.shape)
    labels[((grid - np.array([10, 8, 12])[:, None, None, None]) ** 2).sum(0) <= 16] = 2
    image = sitk.GetImageFromArray(labels)
    image.SetOrigin((1.0, 2.0, 3.0))
    seed = lesion_seed(image, visible_from=0.25)
    np.testing.assert_allclose(seed.centre_ras_mm, (-(1.0 + 12), -(2.0 + 8), 3.0 + 10))
    visible_radius = seed.radius_mm * np.sqrt(np.log2(4.0))  # 2^(-r²/R²) = 0.25
    assert 4.0 * np.pi / 3 * visible_radius ** 3 == pytest.approx(np.count_nonzero(labels), rel=1e-9)


def test_demo_scene_reimports_with_scan_lesions_overlay_and_days(demo):
    scene = load_scene_bundle(demo.out / "hybridneuro-demo.mrb").scene
    subject = demo.report["study"]["subject"]
    scan = scene.GetFirstNodeByName(f"{subject} scan")
    lesion = scene.GetFirstNodeByName(f"{subject} lesion day 240")
    observed = scene.GetFirstNodeByName(f"{subject} observed lesion day 120")
    assert scan is not None and observed is not None
    expected = sitk.ReadImage(str(demo.out / "seg_day240.nii.gz"))
    # Slicer may re-read a left-handed grid flipped along k, so compare in world space:
    # nearest-neighbour resampling between grids with coinciding voxel centres is exact
    reloaded = sitk.Resample(segmentation_to_labels(lesion, scan), expected, sitk.Transform(),
                             sitk.sitkNearestNeighbor)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(reloaded), sitk.GetArrayFromImage(expected))
    for i in range(2):
        sequence = scene.GetNthNodeByClass(i, "vtkMRMLSequenceNode")
        assert [sequence.GetNthIndexValue(n) for n in range(sequence.GetNumberOfDataNodes())] == \
            ["0", "60", "120", "180", "240"]
    assert scene.GetFirstNodeByClass("vtkMRMLSequenceBrowserNode") is not None


def test_demo_never_replaces_earlier_results_silently(demo):
    before = (demo.out / "report.json").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        run_demo(demo.out, QUICK, progress=False)
    assert (demo.out / "report.json").read_bytes() == before


def test_demo_command_line(tmp_path):
    command = [sys.executable, "-m", "HybridNeuroLib.cli", "demo", "--out", str(tmp_path / "d"), "--sample-voxel-mm", "4"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "personalised" in result.stdout and "hybridneuro-demo.mrb" in result.stdout
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 2 and "exists" in again.stderr and "Traceback" not in again.stderr
