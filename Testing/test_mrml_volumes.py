"""Volume nodes ⇄ SimpleITK images on a real vtkMRMLScene: voxels and geometry exact."""

import numpy as np
import pytest
import SimpleITK as sitk
import slicer
import vtk

from conftest import assert_refused, make_oblique_image
from HybridNeuroLib.mrml import BridgeError, image_to_volume, volume_to_image


def node_ijk_to_ras(node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix)


def itk_voxel_to_ras(image: sitk.Image, index) -> np.ndarray:
    """Independent oracle: ITK's own index → physical (LPS) point, flipped to RAS."""
    x, y, z = image.TransformContinuousIndexToPhysicalPoint([float(i) for i in index])
    return np.array([-x, -y, z])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.uint8, np.int32])
def test_round_trip_preserves_voxels_and_geometry_exactly(mrml, dtype):
    image = make_oblique_image(dtype=dtype)
    node = image_to_volume(image, mrml.scene, "T1 day 0")
    back = volume_to_image(node)
    assert back.GetSpacing() == image.GetSpacing()
    assert back.GetOrigin() == image.GetOrigin()
    assert back.GetDirection() == image.GetDirection()
    assert back.GetPixelID() == image.GetPixelID()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))


def test_node_voxel_to_world_matrix_matches_itk(mrml, oblique_image):
    node = image_to_volume(oblique_image, mrml.scene, "oblique")
    matrix = node_ijk_to_ras(node)
    for index in [(0, 0, 0), (10, 0, 0), (0, 8, 0), (0, 0, 6), (3.5, 2.25, 1.0)]:
        ras = matrix @ np.append(index, 1.0)
        np.testing.assert_allclose(ras[:3], itk_voxel_to_ras(oblique_image, index), atol=1e-9)


def test_node_from_scene_with_identity_geometry_converts_to_lps(mrml):
    # A node built the MRML way (RAS origin), read by the bridge: LPS origin has x, y negated.
    node = mrml.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "made in Slicer")
    slicer.util.updateVolumeFromArray(node, np.zeros((2, 3, 4), np.float32))
    node.SetOrigin(5.0, 6.0, 7.0)
    image = volume_to_image(node)
    assert image.GetOrigin() == (-5.0, -6.0, 7.0)
    assert image.GetSize() == (4, 3, 2)
    assert image.GetDirection() == (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


def test_reading_a_node_does_not_modify_it(mrml, oblique_image):
    node = image_to_volume(oblique_image, mrml.scene, "input")
    before = node.GetMTime(), node.GetImageData().GetMTime()
    volume_to_image(node)
    assert (node.GetMTime(), node.GetImageData().GetMTime()) == before


def test_int64_labels_become_int32_volumes(mrml):
    image = sitk.GetImageFromArray(np.arange(24, dtype=np.int64).reshape(2, 3, 4))
    node = image_to_volume(image, mrml.scene, "labels", labelmap=True)
    assert node.IsA("vtkMRMLLabelMapVolumeNode")
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(node), np.arange(24).reshape(2, 3, 4))


def test_refuses_4d_vector_and_nan_images_without_touching_scene(mrml):
    scene = mrml.scene
    image_4d = sitk.Image([3, 3, 3, 2], sitk.sitkFloat32)
    assert_refused(scene, lambda: image_to_volume(image_4d, scene, "4D scan"), "4D scan", "4D")
    vector = sitk.Image([3, 3, 3], sitk.sitkVectorFloat32, 3)
    assert_refused(scene, lambda: image_to_volume(vector, scene, "RGB"), "RGB", "components")
    nan_origin = sitk.Image([3, 3, 3], sitk.sitkFloat32)
    nan_origin.SetOrigin((float("nan"), 0.0, 0.0))
    assert_refused(scene, lambda: image_to_volume(nan_origin, scene, "bad header"), "bad header", "NaN")


def test_refuses_empty_vector_and_nan_nodes_naming_them(mrml):
    scene = mrml.scene
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty volume")
    assert_refused(scene, lambda: volume_to_image(empty), "empty volume", "no voxels")

    vector = scene.AddNewNodeByClass("vtkMRMLVectorVolumeNode", "colour photo")
    slicer.util.updateVolumeFromArray(vector, np.zeros((2, 3, 4, 3), np.uint8))
    assert_refused(scene, lambda: volume_to_image(vector), "colour photo", "components")

    nan_node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "nan spacing")
    slicer.util.updateVolumeFromArray(nan_node, np.zeros((2, 3, 4), np.float32))
    nan_node.SetSpacing(float("nan"), 1.0, 1.0)
    assert_refused(scene, lambda: volume_to_image(nan_node), "nan spacing", "NaN")

    zero_size = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "zero size")
    zero_size.SetAndObserveImageData(vtk.vtkImageData())
    assert_refused(scene, lambda: volume_to_image(zero_size), "zero size", "empty")
