"""Volume nodes ⇄ SimpleITK images, with exact geometry.

    >>> import SimpleITK as sitk
    >>> from HybridNeuroLib.mrml import create_headless_scene, image_to_volume, volume_to_image
    >>> scene = create_headless_scene().scene
    >>> image = sitk.Image(8, 8, 4, sitk.sitkFloat32)
    >>> image.SetSpacing((1.0, 1.0, 3.0))
    >>> node = image_to_volume(image, scene, "T1 day 0")
    >>> volume_to_image(node).GetSpacing()
    (1.0, 1.0, 3.0)

Geometry goes through :class:`HybridNeuroLib.geometry.ImageGeometry` (the one LPS ⇄ RAS
conversion); spacing, origin and directions are set separately on the node, never via a
composed matrix, so the round trip is bit-exact even for oblique, anisotropic grids.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import slicer
import vtk.util.numpy_support

from HybridNeuroLib.geometry import ImageGeometry


class BridgeError(ValueError):
    """An engine ⇄ MRML conversion was refused; the message names the node and the problem."""


def _describe(node) -> str:
    return f"node '{node.GetName()}' ({node.GetID() or 'not in a scene'})"


def volume_geometry(node: "slicer.vtkMRMLVolumeNode") -> ImageGeometry:
    """Geometry of a scalar volume node, validated; raises BridgeError naming the node."""
    image_data = node.GetImageData() if node is not None else None
    if image_data is None:
        what = _describe(node) if node is not None else "volume node None"
        raise BridgeError(f"{what} has no voxels; load or compute an image into it first")
    if image_data.GetNumberOfScalarComponents() != 1 or node.IsA("vtkMRMLDiffusionTensorVolumeNode"):
        raise BridgeError(f"{_describe(node)} has {image_data.GetNumberOfScalarComponents()} components per voxel; "
                          "only scalar 3D volumes are supported (split vector volumes first)")
    directions = np.zeros((3, 3))
    node.GetIJKToRASDirections(directions)
    geometry = ImageGeometry.from_ras(image_data.GetDimensions(), node.GetSpacing(), node.GetOrigin(), directions)
    try:
        geometry.validate(_describe(node))
    except ValueError as error:
        raise BridgeError(str(error)) from None
    return geometry


def volume_array(node: "slicer.vtkMRMLVolumeNode") -> np.ndarray:
    """A copy of the voxels of a scalar volume node, indexed [k, j, i]."""
    geometry = volume_geometry(node)
    scalars = node.GetImageData().GetPointData().GetScalars()
    return vtk.util.numpy_support.vtk_to_numpy(scalars).reshape(geometry.shape_kji).copy()


def volume_to_image(node: "slicer.vtkMRMLVolumeNode") -> sitk.Image:
    """A SimpleITK image (LPS) with the voxels and exact geometry of ``node``; the node is untouched."""
    return volume_geometry(node).image_from_array(volume_array(node))


def _check_image(image: sitk.Image, name: str) -> ImageGeometry:
    if image.GetDimension() != 3:
        raise BridgeError(f"image for '{name}' is {image.GetDimension()}D; only 3D images can become volume nodes")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise BridgeError(f"image for '{name}' has {image.GetNumberOfComponentsPerPixel()} components per voxel; "
                          "only scalar images are supported")
    geometry = ImageGeometry.from_image(image)
    try:
        geometry.validate(f"image for '{name}'")
    except ValueError as error:
        raise BridgeError(str(error)) from None
    return geometry


def set_volume_geometry(node: "slicer.vtkMRMLVolumeNode", geometry: ImageGeometry) -> None:
    node.SetSpacing(*geometry.spacing_mm)
    node.SetOrigin(*geometry.origin_ras_mm)
    node.SetIJKToRASDirections(geometry.direction_ras_matrix)


def image_to_volume(image: sitk.Image, scene: "slicer.vtkMRMLScene", name: str, *,
                    labelmap: bool = False) -> "slicer.vtkMRMLScalarVolumeNode":
    """Add a new scalar (or label map) volume node named ``name`` holding ``image``.

    The image is validated before anything is added, so a refused image leaves the scene as it was.
    """
    geometry = _check_image(image, name)
    array = sitk.GetArrayFromImage(image)
    if array.dtype == np.int64:  # VTK volumes of 'long long' do not render in Slicer
        if array.size and (array.min() < np.iinfo(np.int32).min or array.max() > np.iinfo(np.int32).max):
            raise BridgeError(f"image for '{name}' has 64-bit integer values outside the 32-bit range")
        array = array.astype(np.int32)
    node_class = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    node = scene.AddNewNodeByClass(node_class, name)
    set_volume_geometry(node, geometry)
    slicer.util.updateVolumeFromArray(node, array)
    node.CreateDefaultDisplayNodes()
    return node
