"""Time series (sequence + browser) and the density overlay on a real vtkMRMLScene."""

import numpy as np
import pytest
import SimpleITK as sitk
import slicer

from conftest import make_oblique_image
from HybridNeuroLib.mrml import (BridgeError, add_density_overlay, add_time_series, image_to_volume,
                                 labels_to_segmentation, show_density_overlay, volume_to_image)


def _volumes(scene, days):
    return [image_to_volume(make_oblique_image(seed=int(d)), scene, f"density day {d}") for d in days]


def test_sequence_has_day_values_and_browser_shows_them(mrml):
    days = [0, 60, 120.5]
    nodes = _volumes(mrml.scene, days)
    sequence, browser = add_time_series(mrml.scene, "glioma density", list(zip(days, nodes)))
    assert sequence.GetIndexName() == "day" and sequence.GetIndexUnit() == "d"
    assert sequence.GetIndexType() == slicer.vtkMRMLSequenceNode.NumericIndex
    assert [sequence.GetNthIndexValue(i) for i in range(sequence.GetNumberOfDataNodes())] == ["0", "60", "120.5"]
    assert browser.GetMasterSequenceNode() is sequence
    proxy = browser.GetProxyNode(sequence)
    assert proxy is not None and proxy.GetScene() is mrml.scene
    # the proxy shows the selected frame: frame 2 holds day 120.5's voxels
    browser.SetSelectedItemNumber(2)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(volume_to_image(proxy)),
                                  sitk.GetArrayFromImage(make_oblique_image(seed=120)))


def test_segmentation_series(mrml, oblique_image):
    reference = image_to_volume(oblique_image, mrml.scene, "T1c")
    segmentations = []
    for day in (0, 30):
        labels = np.zeros((7, 9, 11), np.uint8)
        labels[2:4 + day // 30, 2:5, 2:5] = 2
        segmentations.append((day, labels_to_segmentation(labels, mrml.scene, f"tumor day {day}", reference=reference)))
    sequence, browser = add_time_series(mrml.scene, "tumor", segmentations)
    assert sequence.GetNumberOfDataNodes() == 2
    assert browser.GetProxyNode(sequence).IsA("vtkMRMLSegmentationNode")


def test_input_nodes_are_left_untouched(mrml):
    days = [0, 10]
    nodes = _volumes(mrml.scene, days)
    before = [(n.GetName(), slicer.util.arrayFromVolume(n).copy(), n.GetImageData().GetMTime()) for n in nodes]
    add_time_series(mrml.scene, "series", list(zip(days, nodes)))
    for node, (name, voxels, mtime) in zip(nodes, before):
        assert node.GetName() == name and node.GetScene() is mrml.scene
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(node), voxels)
        assert node.GetImageData().GetMTime() == mtime


@pytest.mark.parametrize("days, words", [([0, 0], "strictly increasing"), ([30, 10], "strictly increasing"),
                                         ([0, float("nan")], "finite")])
def test_bad_days_are_refused_without_touching_scene(mrml, days, words):
    nodes = _volumes(mrml.scene, [0, 1])
    count = mrml.scene.GetNumberOfNodes()
    with pytest.raises(BridgeError, match=words):
        add_time_series(mrml.scene, "bad", list(zip(days, nodes)))
    assert mrml.scene.GetNumberOfNodes() == count


def test_empty_and_mixed_series_are_refused(mrml, oblique_image):
    with pytest.raises(BridgeError, match="no items"):
        add_time_series(mrml.scene, "nothing", [])
    volume = image_to_volume(oblique_image, mrml.scene, "T1c")
    segmentation = labels_to_segmentation(np.zeros((7, 9, 11), np.uint8), mrml.scene, "seg", reference=volume)
    with pytest.raises(BridgeError, match="mixes node classes"):
        add_time_series(mrml.scene, "mixed", [(0, volume), (1, segmentation)])


def _density_like(reference_image: sitk.Image, value: float) -> sitk.Image:
    density = sitk.GetImageFromArray(np.full(sitk.GetArrayFromImage(reference_image).shape, value, np.float32))
    density.CopyInformation(reference_image)
    return density


def test_density_overlay_display_settings(mrml, oblique_image):
    background = image_to_volume(oblique_image, mrml.scene, "T1c day 60")
    overlay = add_density_overlay(_density_like(oblique_image, 0.4), mrml.scene, "density day 120",
                                  background=background, opacity=0.5)
    display = overlay.GetDisplayNode()
    assert display.GetColorNode() is not None  # the colour node exists in the scene
    assert not display.GetAutoWindowLevel()
    assert (display.GetWindowLevelMin(), display.GetWindowLevelMax()) == (0.0, 1.0)
    assert display.GetApplyThreshold() and 0.0 < display.GetLowerThreshold() < 0.2
    composites = [mrml.scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode") for i in range(3)]
    for composite in composites:
        assert composite.GetBackgroundVolumeID() == background.GetID()
        assert composite.GetForegroundVolumeID() == overlay.GetID()
        assert composite.GetForegroundOpacity() == 0.5
    np.testing.assert_allclose(slicer.util.arrayFromVolume(overlay), 0.4)


def test_density_overlay_refuses_bad_density(mrml, oblique_image):
    background = image_to_volume(oblique_image, mrml.scene, "T1c")
    count = mrml.scene.GetNumberOfNodes()
    with pytest.raises(BridgeError, match=r"\[0, 1\]"):
        add_density_overlay(_density_like(oblique_image, 1.5), mrml.scene, "too dense", background=background)
    with pytest.raises(BridgeError, match=r"\[0, 1\]"):
        add_density_overlay(_density_like(oblique_image, float("nan")), mrml.scene, "nan", background=background)
    with pytest.raises(BridgeError, match="not on the grid"):
        add_density_overlay(sitk.Image(3, 3, 3, sitk.sitkFloat32), mrml.scene, "off grid", background=background)
    assert mrml.scene.GetNumberOfNodes() == count


def test_show_overlay_refuses_empty_background_before_changing_anything(mrml, oblique_image):
    density = image_to_volume(_density_like(oblique_image, 0.3), mrml.scene, "density")
    empty = mrml.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty background")
    color_before = density.GetDisplayNode().GetColorNodeID()
    with pytest.raises(BridgeError, match="empty background"):
        show_density_overlay(density, empty)
    assert density.GetDisplayNode().GetColorNodeID() == color_before
