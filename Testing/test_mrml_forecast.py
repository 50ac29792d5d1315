"""The forecast scene: scan, per-day lesions and densities, one browser stepping through days."""

import numpy as np
import pytest
import SimpleITK as sitk
import slicer

from HybridNeuroLib.mrml import BridgeError, segmentation_to_labels, volume_to_image
from HybridNeuroLib.mrml.forecast import add_forecast


def _day_images(scan: sitk.Image, days):
    density, labels = [], []
    for n, _ in enumerate(days):
        array = np.zeros(sitk.GetArrayFromImage(scan).shape, np.float32)
        array[2:4, 3:5, 3:4 + n] = 0.5 + 0.1 * n
        image = sitk.GetImageFromArray(array)
        image.CopyInformation(scan)
        label = sitk.GetImageFromArray((array > 0).astype(np.uint8) * 2)
        label.CopyInformation(scan)
        density.append(image)
        labels.append(label)
    return density, labels


def test_forecast_nodes_names_days_and_browsing(mrml, oblique_image):
    days = [0, 60, 120]
    density, labels = _day_images(oblique_image, days)
    nodes = add_forecast(mrml.scene, "sub-01", oblique_image, days, density, labels)
    assert nodes.scan.GetName() == "sub-01 scan"
    assert [n.GetName() for n in nodes.segmentations] == [f"sub-01 lesion day {d}" for d in days]
    assert nodes.overlay.GetName() == "sub-01 density day 120"
    for sequence in (nodes.density_sequence, nodes.lesion_sequence):
        assert [sequence.GetNthIndexValue(i) for i in range(sequence.GetNumberOfDataNodes())] == ["0", "60", "120"]
        assert sequence.GetIndexName() == "day"
    browser = nodes.browser
    density_proxy = browser.GetProxyNode(nodes.density_sequence)
    lesion_proxy = browser.GetProxyNode(nodes.lesion_sequence)
    assert lesion_proxy.IsA("vtkMRMLSegmentationNode")
    composite = mrml.scene.GetFirstNodeByClass("vtkMRMLSliceCompositeNode")
    assert composite.GetForegroundVolumeID() == density_proxy.GetID()
    assert composite.GetBackgroundVolumeID() == nodes.scan.GetID()
    for item, day_density, day_labels in zip(range(3), density, labels):
        browser.SetSelectedItemNumber(item)
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(density_proxy), sitk.GetArrayFromImage(day_density))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(segmentation_to_labels(lesion_proxy, nodes.scan)),
                                      sitk.GetArrayFromImage(day_labels))
    # only one standalone density (the last day) stays in the scene beside the sequence
    names = [mrml.scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode").GetName()
             for i in range(mrml.scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode"))]
    assert sum(name.startswith("sub-01 density day") for name in names) == 1
    np.testing.assert_array_equal(sitk.GetArrayFromImage(volume_to_image(nodes.scan)),
                                  sitk.GetArrayFromImage(oblique_image))


def test_forecast_refuses_mismatched_lists(mrml, oblique_image):
    density, labels = _day_images(oblique_image, [0, 1])
    count = mrml.scene.GetNumberOfNodes()
    with pytest.raises(BridgeError, match="as many"):
        add_forecast(mrml.scene, "x", oblique_image, [0, 1, 2], density, labels)
    assert mrml.scene.GetNumberOfNodes() == count


def test_a_failure_half_way_leaves_the_scene_as_it_was(mrml, oblique_image):
    density, labels = _day_images(oblique_image, [0, 1, 2])
    bad = sitk.GetArrayFromImage(density[2]) * 10  # last day's density above 1: refused after two days were added
    density[2] = sitk.GetImageFromArray(bad)
    density[2].CopyInformation(oblique_image)
    count = mrml.scene.GetNumberOfNodes()
    with pytest.raises(BridgeError, match=r"\[0, 1\]"):
        add_forecast(mrml.scene, "x", oblique_image, [0, 1, 2], density, labels)
    assert mrml.scene.GetNumberOfNodes() == count
