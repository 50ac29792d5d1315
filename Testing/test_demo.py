"""The main job end to end on a coarse grid: files, report, figures and a scene that re-imports."""

import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from HybridNeuroLib.demo import DemoSettings, run_demo
from HybridNeuroLib.mrml import load_scene_bundle, segmentation_to_labels


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, DemoSettings(voxel_mm=4, days=(45.0, 90.0)), progress=False)


def test_demo_writes_images_on_the_atlas_grid_and_a_report(demo):
    names = {path.name for path in demo.files}
    assert {"t1.nii.gz", "density_day45.nii.gz", "seg_day90.nii.gz", "report.json", "forecast_overlay.png",
            "lesion_volume.png", "hybridneuro-demo.mrb"} <= names
    t1 = sitk.ReadImage(str(demo.out / "t1.nii.gz"))
    density = sitk.ReadImage(str(demo.out / "density_day90.nii.gz"))
    labels = sitk.ReadImage(str(demo.out / "seg_day90.nii.gz"))
    for image in (density, labels):
        assert image.GetSize() == t1.GetSize() and image.GetSpacing() == t1.GetSpacing()
        np.testing.assert_allclose(image.GetOrigin(), t1.GetOrigin())
    report = json.loads((demo.out / "report.json").read_text())
    assert report["software"]["name"] == "hybridneuro"
    assert report["simulation"]["settings"]["parameters"]["dw_mm2_per_day"] == DemoSettings().dw_mm2_per_day
    volume_90 = report["lesion_volumes_ml"]["90"]["whole lesion"]
    voxel_ml = np.prod(labels.GetSpacing()) / 1000
    assert volume_90 == pytest.approx(np.count_nonzero(sitk.GetArrayFromImage(labels)) * voxel_ml)
    assert 0 < report["lesion_volumes_ml"]["45"]["whole lesion"] < volume_90


def test_lesion_grows_from_the_seed_in_white_matter(demo):
    labels = sitk.ReadImage(str(demo.out / "seg_day45.nii.gz"))
    index = labels.TransformPhysicalPointToIndex((-demo.seed_ras_mm[0], -demo.seed_ras_mm[1], demo.seed_ras_mm[2]))
    assert labels[index] > 0


def test_demo_scene_reimports_with_scan_lesions_overlay_and_days(demo):
    scene = load_scene_bundle(demo.out / "hybridneuro-demo.mrb").scene
    scan = scene.GetFirstNodeByName("SRI24 demo scan")
    assert scan is not None
    lesion = scene.GetFirstNodeByName("SRI24 demo lesion day 90")
    expected = sitk.ReadImage(str(demo.out / "seg_day90.nii.gz"))
    # Slicer stores the atlas's left-handed grid flipped along k when it re-reads it, so compare in
    # world space: nearest-neighbour resampling between grids with coinciding voxel centres is exact
    reloaded = sitk.Resample(segmentation_to_labels(lesion, scan), expected, sitk.Transform(),
                             sitk.sitkNearestNeighbor)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(reloaded), sitk.GetArrayFromImage(expected))
    sequences = [scene.GetNthNodeByClass(i, "vtkMRMLSequenceNode") for i in range(2)]
    for sequence in sequences:
        assert [sequence.GetNthIndexValue(i) for i in range(sequence.GetNumberOfDataNodes())] == ["45", "90"]
    assert scene.GetFirstNodeByClass("vtkMRMLSequenceBrowserNode") is not None


def test_demo_never_replaces_earlier_results_silently(demo):
    before = (demo.out / "report.json").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        run_demo(demo.out, DemoSettings(voxel_mm=4, days=(45.0, 90.0)), progress=False)
    assert (demo.out / "report.json").read_bytes() == before


def test_demo_command_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "HybridNeuroLib.cli", "demo", "--out", str(tmp_path / "d"),
                             "--voxel-mm", "4", "--days", "30"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Lesion volume (mL) by day" in result.stdout and "hybridneuro-demo.mrb" in result.stdout
    again = subprocess.run([sys.executable, "-m", "HybridNeuroLib.cli", "demo", "--out", str(tmp_path / "d"),
                            "--voxel-mm", "4", "--days", "30"], capture_output=True, text=True)
    assert again.returncode == 2 and "exists" in again.stderr and "Traceback" not in again.stderr
