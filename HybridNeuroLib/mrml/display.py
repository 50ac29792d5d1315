"""Tumor-cell density shown as a colour-mapped foreground over a scan.

    >>> import numpy as np, SimpleITK as sitk
    >>> from HybridNeuroLib.mrml import create_headless_scene, image_to_volume, add_density_overlay
    >>> scene = create_headless_scene().scene
    >>> t1 = image_to_volume(sitk.Image(6, 6, 6, sitk.sitkFloat32), scene, "T1")
    >>> density = sitk.GetImageFromArray(np.full((6, 6, 6), 0.5, np.float32))
    >>> overlay = add_density_overlay(density, scene, "density day 120", background=t1)
    >>> overlay.GetDisplayNode().GetColorNodeID()
    'vtkMRMLPETProceduralColorNodePET-Heat'

Display settings are set on the nodes: the density node's display node (colour map,
fixed window 0–1 so colours mean the same density on every day, densities below the
visibility threshold transparent), and every slice composite node of the scene
(background = scan, foreground = density, foreground opacity).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import slicer

from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.mrml.volumes import BridgeError, _describe, image_to_volume, volume_geometry

DENSITY_COLOR_NODE_ID = "vtkMRMLPETProceduralColorNodePET-Heat"  # present in every Slicer scene


def show_density_overlay(density: "slicer.vtkMRMLScalarVolumeNode", background: "slicer.vtkMRMLVolumeNode", *,
                         opacity: float = 0.6, visible_from: float = 0.01) -> None:
    """Style ``density`` (values in [0, 1]) as a heat map and show it over ``background`` in all slice views."""
    if not 0.0 <= opacity <= 1.0:
        raise BridgeError(f"overlay opacity must be in [0, 1], got {opacity}")
    volume_geometry(background)  # refuses empty/vector/NaN backgrounds before anything changes
    display = density.GetDisplayNode()
    if display is None:
        density.CreateDefaultDisplayNodes()
        display = density.GetDisplayNode()
    display.SetAndObserveColorNodeID(DENSITY_COLOR_NODE_ID)
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(0.0, 1.0)
    display.SetApplyThreshold(True)
    display.SetLowerThreshold(visible_from)
    display.SetUpperThreshold(1.0)
    scene = density.GetScene()
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
        composite = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        composite.SetBackgroundVolumeID(background.GetID())
        composite.SetForegroundVolumeID(density.GetID())
        composite.SetForegroundOpacity(opacity)


def add_density_overlay(density: sitk.Image, scene: "slicer.vtkMRMLScene", name: str, *,
                        background: "slicer.vtkMRMLVolumeNode", opacity: float = 0.6) -> "slicer.vtkMRMLScalarVolumeNode":
    """Add ``density`` as a new volume named ``name`` and show it over ``background``.

    The density must be on the background's grid and within [0, 1]; a refused call adds nothing.
    """
    reference = volume_geometry(background)
    if ImageGeometry.from_image(density) != reference:
        raise BridgeError(f"density '{name}' is not on the grid of {_describe(background)}; resample it first")
    values = sitk.GetArrayViewFromImage(density)
    finite = np.isfinite(values)
    if not finite.all() or values.min() < 0.0 or values.max() > 1.0:
        found = f"[{values[finite].min()}, {values[finite].max()}]" if finite.any() else "no finite value"
        raise BridgeError(f"density '{name}' must lie in [0, 1] (tumor-cell fraction) without NaN, got "
                          f"{found}{'' if finite.all() else f' and {np.count_nonzero(~finite)} NaN/inf voxels'}")
    if not 0.0 <= opacity <= 1.0:
        raise BridgeError(f"overlay opacity must be in [0, 1], got {opacity}")
    node = image_to_volume(sitk.Cast(density, sitk.sitkFloat32), scene, name)
    show_density_overlay(node, background, opacity=opacity)
    return node
