"""Label images ⇄ segmentation nodes on a real vtkMRMLScene."""

import numpy as np
import pytest
import SimpleITK as sitk
import slicer
import vtk

from conftest import assert_refused
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.labels import BRATS_LABELS
from HybridNeuroLib.mrml import BridgeError, image_to_volume, labels_to_segmentation, segmentation_to_labels


def brats_like_labels(shape_kji=(7, 9, 11)) -> np.ndarray:
    labels = np.zeros(shape_kji, np.uint8)
    labels[1:6, 2:7, 2:9] = 2        # edema around
    labels[2:5, 3:6, 4:7] = 3        # enhancing rim
    labels[3, 4, 5] = 1              # necrotic core
    return labels


def test_round_trip_is_exact_on_oblique_anisotropic_grid(mrml, oblique_image):
    reference = image_to_volume(oblique_image, mrml.scene, "T1c")
    labels = brats_like_labels()
    node = labels_to_segmentation(labels, mrml.scene, "tumor day 0", reference=reference)
    back = segmentation_to_labels(node, reference)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), labels)
    assert ImageGeometry.from_image(back) == ImageGeometry.from_image(oblique_image)


def test_segments_are_named_coloured_and_on_the_reference_geometry(mrml, oblique_image):
    reference = image_to_volume(oblique_image, mrml.scene, "T1c")
    node = labels_to_segmentation(brats_like_labels(), mrml.scene, "tumor", reference=reference)
    segmentation = node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 3
    for i, label in enumerate(BRATS_LABELS):
        segment = segmentation.GetNthSegment(i)
        assert segment.GetName() == label.name
        np.testing.assert_allclose(segment.GetColor(), label.color_rgb)
    # the stored binary labelmap sits exactly on the reference voxel grid
    edema_id = segmentation.GetSegmentIdBySegmentName("edema")
    stored = slicer.vtkOrientedImageData()
    node.GetBinaryLabelmapRepresentation(edema_id, stored)
    matrix = vtk.vtkMatrix4x4()
    stored.GetImageToWorldMatrix(matrix)
    expected = ImageGeometry.from_image(oblique_image).ijk_to_ras()
    np.testing.assert_allclose(slicer.util.arrayFromVTKMatrix(matrix), expected, atol=1e-12)
    assert node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole()) is reference
    # one shared layer, as the Segment Editor keeps it (merging layers on save moves voxels on oblique grids)
    assert segmentation.GetNumberOfLayers() == 1


def test_absent_labels_still_get_empty_segments(mrml, oblique_image):
    reference = image_to_volume(oblique_image, mrml.scene, "T1c")
    only_edema = np.where(brats_like_labels() > 0, 2, 0).astype(np.uint8)
    node = labels_to_segmentation(only_edema, mrml.scene, "edema only", reference=reference)
    assert node.GetSegmentation().GetNumberOfSegments() == 3
    np.testing.assert_array_equal(sitk.GetArrayFromImage(segmentation_to_labels(node, reference)), only_edema)


def test_accepts_a_sitk_label_image_on_the_reference_grid(mrml, oblique_image):
    reference = image_to_volume(oblique_image, mrml.scene, "T1c")
    labels = sitk.GetImageFromArray(brats_like_labels())
    labels.CopyInformation(oblique_image)
    node = labels_to_segmentation(labels, mrml.scene, "from image", reference=reference)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(segmentation_to_labels(node, reference)),
                                  brats_like_labels())


def test_user_edits_are_read_back_and_later_labels_win_overlaps(mrml, oblique_image):
    from HybridNeuroLib.mrml.segmentations import _oriented_image

    reference = image_to_volume(oblique_image, mrml.scene, "T1c")
    labels = brats_like_labels()
    node = labels_to_segmentation(labels, mrml.scene, "tumor", reference=reference)
    edited_core = np.zeros_like(labels)
    edited_core[0, 0, 0] = 1      # a new necrotic voxel outside the tumor
    edited_core[1, 2, 2] = 1      # overlaps edema: edema comes later in the table, so edema wins
    segment_id = node.GetSegmentation().GetSegmentIdBySegmentName("necrotic core")
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(  # what the Segment Editor does
        _oriented_image(edited_core, ImageGeometry.from_image(oblique_image)), node, segment_id,
        slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)
    expected = labels.copy()
    expected[labels == 1] = 0
    expected[0, 0, 0] = 1
    np.testing.assert_array_equal(sitk.GetArrayFromImage(segmentation_to_labels(node, reference)), expected)


def test_refuses_mismatched_shapes_unknown_labels_and_segments(mrml, oblique_image):
    scene = mrml.scene
    reference = image_to_volume(oblique_image, scene, "T1c")
    assert_refused(scene, lambda: labels_to_segmentation(np.zeros((7, 9, 10), np.uint8), scene, "wrong shape",
                                                   reference=reference), "wrong shape", "(7, 9, 10)", "T1c")
    off_grid = sitk.Image(11, 9, 7, sitk.sitkUInt8)  # right size, identity geometry
    assert_refused(scene, lambda: labels_to_segmentation(off_grid, scene, "off grid", reference=reference),
             "off grid", "not on the grid")
    unknown = brats_like_labels()
    unknown[0, 0, 0] = 7
    assert_refused(scene, lambda: labels_to_segmentation(unknown, scene, "label 7", reference=reference), "[7]")

    node = labels_to_segmentation(brats_like_labels(), scene, "tumor", reference=reference)
    node.GetSegmentation().AddEmptySegment("", "ventricles", (0.0, 0.0, 1.0))
    with pytest.raises(BridgeError, match="ventricles"):
        segmentation_to_labels(node, reference)


def test_input_reference_volume_is_not_modified(mrml, oblique_image):
    reference = image_to_volume(oblique_image, mrml.scene, "T1c")
    before = slicer.util.arrayFromVolume(reference).copy(), reference.GetImageData().GetMTime()
    node = labels_to_segmentation(brats_like_labels(), mrml.scene, "tumor", reference=reference)
    segmentation_to_labels(node, reference)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(reference), before[0])
    assert reference.GetImageData().GetMTime() == before[1]


def test_every_segment_carries_its_snomed_terminology_through_a_saved_file(mrml, oblique_image, tmp_path):
    from HybridNeuroLib.mrml.segmentations import segment_terminology

    reference = image_to_volume(oblique_image, mrml.scene, "T1c")
    only_edema = np.where(brats_like_labels() > 0, 2, 0).astype(np.uint8)  # two of the segments stay empty
    node = labels_to_segmentation(only_edema, mrml.scene, "tumor", reference=reference)
    path = str(tmp_path / "tumor.seg.nrrd")
    writer = slicer.vtkMRMLSegmentationStorageNode()
    writer.SetFileName(path)
    assert writer.WriteData(node)
    loaded = mrml.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "loaded")
    reader = slicer.vtkMRMLSegmentationStorageNode()
    reader.SetFileName(path)
    assert reader.ReadData(loaded)
    for copy in (node, loaded):
        segmentation = copy.GetSegmentation()
        for label in BRATS_LABELS:
            segment = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName(label.name))
            # context ~ category ~ type ~ type modifier ~ anatomic context ~ region ~ region modifier
            parts = segment_terminology(segment).split("~")
            assert len(parts) == 7, parts
            assert parts[1] == "SCT^49755003^Morphologically Altered Structure"
            assert parts[2] == f"SCT^{label.snomed.value}^{label.snomed.meaning}"
            assert parts[5] == "SCT^12738006^Brain"
    assert len({label.snomed.value for label in BRATS_LABELS}) == len(BRATS_LABELS)  # one concept per region
