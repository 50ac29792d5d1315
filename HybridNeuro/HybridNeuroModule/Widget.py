"""The HybridNeuro panel: a thin view over ``HybridNeuroLogic`` and the parameter node.

    >>> widget = slicer.modules.HybridNeuroWidget        # the panel Slicer created
    >>> widget.ui.createDemoOverlayButton.click()

The layout is ``Resources/UI/HybridNeuro.ui``; each widget bound to a parameter carries a
``SlicerParameterName`` property naming a field of ``HybridNeuroParameterNode``.
"""

from __future__ import annotations

import vtk

import slicer
from slicer.i18n import tr as _
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from .Logic import HybridNeuroLogic, HybridNeuroParameterNode


class HybridNeuroWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Module panel: input volume, demo lesion, dependency installer."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)  # observes the parameter node and scene
        self.logic: HybridNeuroLogic | None = None
        self._parameterNode: HybridNeuroParameterNode | None = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/HybridNeuro.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)  # reaches the node selectors via the .ui's connections
        self.logic = HybridNeuroLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.createDemoOverlayButton.connect("clicked(bool)", self.onCreateDemoOverlay)
        self.ui.installDependenciesButton.connect("clicked(bool)", self.onInstallDependencies)

        self.initializeParameterNode()
        self.updateDependencyStatus()

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.setParameterNode(None)  # stop updating a hidden panel

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    # -- parameter node ------------------------------------------------------------
    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:  # save a click: preselect the first scan
            firstVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolume:
                self._parameterNode.inputVolume = firstVolume

    def setParameterNode(self, parameterNode: HybridNeuroParameterNode | None) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)
        self._parameterNode = parameterNode
        if self._parameterNode:
            # binds every .ui widget that has a SlicerParameterName property
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)
            self.updateButtons()

    def updateButtons(self, caller=None, event=None) -> None:
        hasInput = bool(self._parameterNode and self._parameterNode.inputVolume)
        self.ui.createDemoOverlayButton.enabled = hasInput
        self.ui.createDemoOverlayButton.toolTip = (
            _("Add a demo tumor-cell density and lesion segmentation centred in the input volume")
            if hasInput else _("Select an input volume first"))

    def updateDependencyStatus(self) -> None:
        versions = self.logic.dependencyVersions()
        self.ui.dependencyStatusLabel.text = ", ".join(
            f"{name} {version}" if version else _("{name} missing").format(name=name)
            for name, version in versions.items())

    # -- actions -----------------------------------------------------------------
    def onCreateDemoOverlay(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to create the demo overlay."), waitCursor=True):
            self.logic.createDemoOverlay(self._parameterNode.inputVolume, self._parameterNode.lesionRadiusMm)

    def onInstallDependencies(self) -> None:
        # no wait cursor: the installers ask questions in dialogs
        with slicer.util.tryWithErrorDisplay(_("Failed to install the dependencies.")):
            self.logic.ensureDependencies()
        self.updateDependencyStatus()
