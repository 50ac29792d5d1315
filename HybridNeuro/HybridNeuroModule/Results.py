"""Engine results into the Slicer scene, and a demo lesion to try the display with.

    >>> from HybridNeuroModule import Results
    >>> density, lesion = Results.createDemoOverlay(slicer.util.getNode("MRHead"), lesionRadiusMm=20.0)
    >>> [lesion.GetSegmentation().GetNthSegment(i).GetName() for i in range(3)]
    ['necrotic core', 'edema', 'enhancing tumor']

Everything goes through the MRML bridge (``HybridNeuroLib.mrml``) and needs no Qt, so it
runs headless with ``slicer-core`` too. New nodes go into the scene of the volume they
belong to, with unique names; the input volume is only read.

The demo density is a Gaussian tumor-cell density centred in the scan, labelled with the
engine's imaging model (``HybridNeuroLib.labels.density_to_labels``: literature visibility
thresholds, edema on FLAIR from 0.25, enhancement on T1Gd from 0.65).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from HybridNeuroLib.labels import ImagingThresholds, density_to_labels

if TYPE_CHECKING:  # the engine's geometry and the bridge import SimpleITK: load them on first use
    import SimpleITK as sitk
    import slicer

    from HybridNeuroLib.geometry import ImageGeometry

EDEMA_THRESHOLD = ImagingThresholds().edema_flair  # the visible (FLAIR) edge of the demo lesion


def _sceneOf(node) -> slicer.vtkMRMLScene:
    scene = node.GetScene() if node is not None else None
    if scene is None:
        raise ValueError("the volume is not in a scene; select a volume loaded in Slicer")
    return scene


def addDensityOverlay(density: sitk.Image, background: slicer.vtkMRMLVolumeNode,
                      name: str) -> slicer.vtkMRMLScalarVolumeNode:
    """Add ``density`` (values in [0, 1], on the grid of ``background``) as a heat-map overlay."""
    from HybridNeuroLib import mrml

    scene = _sceneOf(background)
    return mrml.add_density_overlay(density, scene, scene.GenerateUniqueName(name), background=background)


def addLesionSegmentation(labels: sitk.Image | np.ndarray, reference: slicer.vtkMRMLVolumeNode,
                          name: str) -> slicer.vtkMRMLSegmentationNode:
    """Add BraTS ``labels`` (on the grid of ``reference``) as a segmentation with named, coloured segments."""
    from HybridNeuroLib import mrml

    scene = _sceneOf(reference)
    return mrml.labels_to_segmentation(labels, scene, scene.GenerateUniqueName(name), reference=reference)


def gaussianDensity(geometry: ImageGeometry, radiusMm: float) -> np.ndarray:
    """Density array [k, j, i] peaking at the grid centre and equal to ``EDEMA_THRESHOLD`` at ``radiusMm``.

        >>> density = gaussianDensity(ImageGeometry.from_image(sitk.Image(5, 5, 5, sitk.sitkFloat32)), 2.0)
        >>> round(float(density[2, 2, 2]), 3), round(float(density[2, 2, 4]), 3)
        (1.0, 0.25)
    """
    if not radiusMm > 0:
        raise ValueError(f"lesion radius must be positive, got {radiusMm} mm")
    sigmaMm = radiusMm / math.sqrt(2.0 * math.log(1.0 / EDEMA_THRESHOLD))
    # Grid axes are orthonormal in the world, so the squared distance in mm is a sum over axes
    # and the Gaussian a product of 1D profiles: no full-size coordinate arrays are needed.
    profiles = [np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2.0) * spacing / sigmaMm) ** 2).astype(np.float32)
                for n, spacing in zip(geometry.size, geometry.spacing_mm)]
    alongI, alongJ, alongK = profiles
    return alongK[:, None, None] * alongJ[None, :, None] * alongI[None, None, :]


def createDemoOverlay(inputVolume: slicer.vtkMRMLScalarVolumeNode, lesionRadiusMm: float = 15.0
                      ) -> tuple[slicer.vtkMRMLScalarVolumeNode, slicer.vtkMRMLSegmentationNode]:
    """Add a demo lesion on the grid of ``inputVolume``: a density overlay and its BraTS segmentation."""
    from HybridNeuroLib import mrml

    geometry = mrml.volume_geometry(inputVolume)  # refuses empty, vector or broken volumes first
    density = gaussianDensity(geometry, lesionRadiusMm)
    name = inputVolume.GetName()
    densityNode = addDensityOverlay(geometry.image_from_array(density), inputVolume, f"{name} demo density")
    lesionNode = addLesionSegmentation(density_to_labels(density), inputVolume, f"{name} demo lesion")
    return densityNode, lesionNode
