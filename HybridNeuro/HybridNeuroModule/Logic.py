"""The HybridNeuro logic: every action of the panel, callable from Slicer's Python console.

    >>> import HybridNeuro
    >>> logic = HybridNeuro.HybridNeuroLogic()
    >>> logic.ensureDependencies()                     # first use: asks, then installs torch, monai, …
    >>> density, lesion = logic.createDemoOverlay(slicer.util.getNode("MRHead"), lesionRadiusMm=20.0)
"""

from __future__ import annotations

from typing import Annotated

import slicer
from slicer import vtkMRMLScalarVolumeNode
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

from . import Dependencies, Results


@parameterNodeWrapper
class HybridNeuroParameterNode:
    """What the panel edits, saved with the scene.

    inputVolume - the scan results are shown on (only read, never modified).
    lesionRadiusMm - radius of the demo lesion's visible (edema) edge, in mm.
    """

    inputVolume: vtkMRMLScalarVolumeNode
    lesionRadiusMm: Annotated[float, WithinRange(2.0, 60.0)] = 15.0


class HybridNeuroLogic(ScriptedLoadableModuleLogic):
    """Computations and scene updates of the module; works without the widget."""

    def getParameterNode(self) -> HybridNeuroParameterNode:
        return HybridNeuroParameterNode(super().getParameterNode())

    # -- dependencies -----------------------------------------------------------
    @staticmethod
    def dependencyVersions() -> dict[str, str | None]:
        """Installed version of torch and each engine package (None if missing); imports nothing."""
        return Dependencies.installedVersions()

    @staticmethod
    def ensureDependencies(askConfirmation: bool = True) -> None:
        """Install missing packages (torch via the PyTorch extension first); raises RuntimeError if not possible."""
        Dependencies.ensureDependencies(askConfirmation)

    # -- results into the scene ---------------------------------------------------
    @staticmethod
    def addDensityOverlay(density, background: slicer.vtkMRMLVolumeNode, name: str) -> vtkMRMLScalarVolumeNode:
        """Show a tumor-cell density (SimpleITK image in [0, 1] on the background's grid) as a heat map."""
        return Results.addDensityOverlay(density, background, name)

    @staticmethod
    def addLesionSegmentation(labels, reference: slicer.vtkMRMLVolumeNode, name: str) -> slicer.vtkMRMLSegmentationNode:
        """Add BraTS labels (SimpleITK image or [k, j, i] array on the reference grid) as a segmentation."""
        return Results.addLesionSegmentation(labels, reference, name)

    @staticmethod
    def createDemoOverlay(inputVolume: vtkMRMLScalarVolumeNode, lesionRadiusMm: float = 15.0
                          ) -> tuple[vtkMRMLScalarVolumeNode, slicer.vtkMRMLSegmentationNode]:
        """Add a Gaussian demo lesion centred in ``inputVolume``: density overlay plus BraTS segmentation."""
        if inputVolume is None:
            raise ValueError("select an input volume")
        return Results.createDemoOverlay(inputVolume, lesionRadiusMm)
