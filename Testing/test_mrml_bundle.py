"""Scene bundles (.mrb) written with slicer-core re-import with all nodes and data."""

import numpy as np
import pytest
import SimpleITK as sitk
import slicer

from HybridNeuroLib.mrml import (add_density_overlay, add_time_series, image_to_volume, labels_to_segmentation,
                                 load_scene_bundle, save_scene_bundle, segmentation_to_labels, volume_to_image)


def test_bundle_round_trip_keeps_volumes_segmentations_overlay_and_sequence(mrml, oblique_image, tmp_path):
    scene = mrml.scene
    t1 = image_to_volume(oblique_image, scene, "T1c")
    density = sitk.GetImageFromArray(np.linspace(0, 1, 7 * 9 * 11, dtype=np.float32).reshape(7, 9, 11))
    density.CopyInformation(oblique_image)
    add_density_overlay(density, scene, "density day 90", background=t1)
    labels = {day: np.zeros((7, 9, 11), np.uint8) for day in (0, 90)}
    labels[0][3, 4, 5] = 2
    labels[90][2:5, 3:6, 4:7] = 3
    series = [(day, labels_to_segmentation(labels[day], scene, f"tumor day {day}", reference=t1)) for day in labels]
    add_time_series(scene, "tumor", series)

    path = save_scene_bundle(scene, tmp_path / "case.mrb")
    loaded = load_scene_bundle(path).scene

    t1_back = loaded.GetFirstNodeByName("T1c")
    image_back = volume_to_image(t1_back)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image_back), sitk.GetArrayFromImage(oblique_image))
    np.testing.assert_allclose(image_back.GetDirection(), oblique_image.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(image_back.GetOrigin(), oblique_image.GetOrigin(), atol=1e-6)
    overlay = loaded.GetFirstNodeByName("density day 90")
    assert overlay.GetDisplayNode().GetColorNodeID() == "vtkMRMLPETProceduralColorNodePET-Heat"
    np.testing.assert_allclose(slicer.util.arrayFromVolume(overlay), sitk.GetArrayFromImage(density))
    for day in labels:
        segmentation = loaded.GetFirstNodeByName(f"tumor day {day}")
        np.testing.assert_array_equal(sitk.GetArrayFromImage(segmentation_to_labels(segmentation, t1_back)),
                                      labels[day])
    sequence = loaded.GetFirstNodeByClass("vtkMRMLSequenceNode")
    assert [sequence.GetNthIndexValue(i) for i in range(sequence.GetNumberOfDataNodes())] == ["0", "90"]
    assert sequence.GetIndexName() == "day"
    assert loaded.GetFirstNodeByClass("vtkMRMLSequenceBrowserNode").GetMasterSequenceNode() is sequence


def test_bundle_never_overwrites_silently(mrml, tmp_path):
    image_to_volume(sitk.Image(3, 3, 3, sitk.sitkFloat32), mrml.scene, "T1")
    path = save_scene_bundle(mrml.scene, tmp_path / "case.mrb")
    size = path.stat().st_size
    with pytest.raises(FileExistsError, match="case.mrb"):
        save_scene_bundle(mrml.scene, path)
    assert path.stat().st_size == size
    with pytest.raises(ValueError, match=".mrb"):
        save_scene_bundle(mrml.scene, tmp_path / "case.zip")
    with pytest.raises(FileNotFoundError, match="missing.mrb"):
        load_scene_bundle(tmp_path / "missing.mrb")
