"""Label images ⇄ segmentation nodes with named, coloured segments.

    >>> import numpy as np, SimpleITK as sitk
    >>> from HybridNeuroLib.mrml import (create_headless_scene, image_to_volume,
    ...                                  labels_to_segmentation, segmentation_to_labels)
    >>> scene = create_headless_scene().scene
    >>> t1 = image_to_volume(sitk.Image(6, 6, 6, sitk.sitkFloat32), scene, "T1")
    >>> labels = np.zeros((6, 6, 6), np.uint8); labels[2:4, 2:4, 2:4] = 2
    >>> segmentation = labels_to_segmentation(labels, scene, "day 60", reference=t1)
    >>> segmentation.GetSegmentation().GetNthSegment(1).GetName()
    'edema'
    >>> int(sitk.GetArrayFromImage(segmentation_to_labels(segmentation, t1)).max())
    2

Segments follow a label table (default: BraTS, :data:`HybridNeuroLib.labels.BRATS_LABELS`):
one segment per label, always present (empty when the label is absent) so that every
segmentation of a series has the same segments. Going back, segments are matched by
name, so a user may edit them in the Segment Editor before fitting.

Every segment carries its standard terminology (SNOMED CT, in Slicer's terminology-entry
format, the tag DICOM SEG export and the Segment Editor read):

    >>> segment_terminology(segmentation.GetSegmentation().GetNthSegment(1)).split("~")[1:3]
    ['SCT^49755003^Morphologically Altered Structure', 'SCT^79654002^Edema']
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
import vtk.util.numpy_support

from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.labels import BRAIN, BRATS_LABELS, MORPHOLOGICALLY_ALTERED_STRUCTURE, Code, Label
from HybridNeuroLib.mrml.volumes import BridgeError, _describe, volume_geometry


# Slicer's default terminology contexts; a code absent from them is still stored and exported
CATEGORY_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
ANATOMY_CONTEXT = "Anatomic codes - DICOM master list"


def terminology_entry(label: Label) -> str:
    """The label's terminology in Slicer's serialised form (``context~category~type~modifier~…``).

    Category: morphologically altered structure; type: the label's SNOMED CT code; region: brain.
    """
    def coded(code: Code | None) -> str:
        return "^^" if code is None else f"{code.scheme}^{code.value}^{code.meaning}"

    return "~".join([CATEGORY_CONTEXT, coded(MORPHOLOGICALLY_ALTERED_STRUCTURE), coded(label.snomed), coded(None),
                     ANATOMY_CONTEXT, coded(BRAIN), coded(None)])


def segment_terminology(segment: "slicer.vtkSegment") -> str:
    """The segment's terminology entry tag ("" if it has none)."""
    value = vtk.reference("")
    return str(value) if segment.GetTag(segment.GetTerminologyEntryTagName(), value) else ""


def _oriented_image(array_kji: np.ndarray, geometry: ImageGeometry) -> "slicer.vtkOrientedImageData":
    image = slicer.vtkOrientedImageData()
    image.SetDimensions(*geometry.size)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    vtk.util.numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = array_kji.ravel()
    image.SetImageToWorldMatrix(slicer.util.vtkMatrixFromArray(geometry.ijk_to_ras()))
    return image


def labels_to_segmentation(labels, scene: "slicer.vtkMRMLScene", name: str, *,
                           reference: "slicer.vtkMRMLVolumeNode",
                           label_table: Sequence[Label] = BRATS_LABELS) -> "slicer.vtkMRMLSegmentationNode":
    """Add a segmentation node named ``name`` with one segment per entry of ``label_table``.

    ``labels`` is a SimpleITK label image or a numpy array indexed [k, j, i] on the grid
    of ``reference``. Values not in the table are refused (nothing is added to the scene).
    """
    geometry = volume_geometry(reference)
    if isinstance(labels, sitk.Image):
        label_geometry = ImageGeometry.from_image(labels)
        if label_geometry != geometry:
            raise BridgeError(f"label image for '{name}' is not on the grid of reference {_describe(reference)}: "
                              f"size {label_geometry.size} vs {geometry.size}, spacing {label_geometry.spacing_mm} "
                              f"vs {geometry.spacing_mm}; resample it onto the reference first")
        labels = sitk.GetArrayFromImage(labels)
    labels = np.asarray(labels)
    if labels.shape != geometry.shape_kji:
        raise BridgeError(f"label array for '{name}' has shape {labels.shape}, but reference {_describe(reference)} "
                          f"has shape {geometry.shape_kji} (k, j, i)")
    known = {label.value for label in label_table}
    unknown = sorted(set(np.unique(labels).tolist()) - known - {0})
    if unknown:
        raise BridgeError(f"label array for '{name}' contains values {unknown[:10]} that are not in the label table "
                          f"{sorted(known)}")

    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(reference)
    segmentation = node.GetSegmentation()
    segmentation.SetSourceRepresentationName(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName())
    # All labels go into one shared labelmap layer, as the Segment Editor stores them: with one
    # layer nothing is resampled when the scene is saved (layers merged on save lose voxels on
    # oblique grids).
    if labels.any():  # one segment per label value present, in a single layer
        slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(
            _oriented_image(labels.astype(np.uint8), geometry), node, "", "")
    by_value = {int(segmentation.GetNthSegment(i).GetLabelValue()): segmentation.GetNthSegmentID(i)
                for i in range(segmentation.GetNumberOfSegments())}
    for index, label in enumerate(label_table):  # name, colour and order every segment after the table
        segment_id = by_value.get(label.value) or segmentation.AddEmptySegment("", label.name, label.color_rgb)
        segment = segmentation.GetSegment(segment_id)
        segment.SetName(label.name)
        segment.SetColor(*label.color_rgb)
        segment.SetTag(segment.GetTerminologyEntryTagName(), terminology_entry(label))
        segmentation.SetSegmentIndex(segment_id, index)
    return node


def segmentation_to_labels(node: "slicer.vtkMRMLSegmentationNode", reference: "slicer.vtkMRMLVolumeNode", *,
                           label_table: Sequence[Label] = BRATS_LABELS) -> sitk.Image:
    """A label image on the grid of ``reference`` from the segments of ``node``, matched by name.

    Where segments overlap, the later entry of ``label_table`` wins.
    """
    geometry = volume_geometry(reference)
    segmentation = node.GetSegmentation() if node is not None else None
    if segmentation is None:
        raise BridgeError("segmentation node is None; select a segmentation")
    by_name = {label.name: label for label in label_table}
    names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise BridgeError(f"{_describe(node)} has segments {unknown} that are not in the label table "
                          f"({', '.join(by_name)}); rename or delete them in the Segment Editor")

    reference_image = _oriented_image(np.zeros(geometry.shape_kji, np.uint8), geometry)
    labels = np.zeros(geometry.shape_kji, np.uint8)
    for label in label_table:  # in table order, so later labels overwrite earlier ones
        segment_id = segmentation.GetSegmentIdBySegmentName(label.name)
        if not segment_id:
            continue
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        merged = slicer.vtkOrientedImageData()
        node.GenerateMergedLabelmapForAllSegments(
            merged, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY, reference_image, ids)
        if merged.GetPointData().GetScalars() is None:
            continue  # empty segment
        if tuple(merged.GetDimensions()) != geometry.size:
            raise BridgeError(f"segment '{label.name}' of {_describe(node)} could not be resampled onto "
                              f"{_describe(reference)}")
        mask = vtk.util.numpy_support.vtk_to_numpy(merged.GetPointData().GetScalars()).reshape(geometry.shape_kji)
        labels[mask > 0] = label.value
    return geometry.image_from_array(labels)
