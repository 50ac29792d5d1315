"""The HybridNeuro panel: a thin view over ``HybridNeuroLogic`` and the parameter node.

    >>> widget = slicer.modules.HybridNeuroWidget        # the panel Slicer created
    >>> widget.ui.loadSampleButton.click()                # then Segment lesions, Fit model, Predict

The layout is ``Resources/UI/HybridNeuro.ui``; each widget bound to a parameter carries a
``SlicerParameterName`` property naming a field of ``HybridNeuroParameterNode``. Steps (and
loading the sample case) run in a background process (``HybridNeuroLogic`` with
``blocking=False``), polled by a timer that drives the progress bar and log; Cancel stops the
process and nothing is added. Before each step the panel checks (from package metadata, without
importing torch) that the Python packages are installed and offers to install them; before the
shipped synthetic-data model segments real scans it warns and offers to stop.
"""

from __future__ import annotations

import qt
import vtk

import slicer
from slicer.i18n import tr as _
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from . import Models
from .Logic import DEVICES, HybridNeuroLogic, HybridNeuroParameterNode, modelNames

VOLUME_COLUMN, CONTRAST_COLUMN, DAY_COLUMN = 0, 1, 2
POLL_INTERVAL_MS = 200


class HybridNeuroWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Module panel: inputs with days, the steps, progress/log/cancel, demo lesion, dependency installer."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)  # observes the parameter node and scene
        self.logic: HybridNeuroLogic | None = None
        self._parameterNode: HybridNeuroParameterNode | None = None
        self._parameterNodeGuiTag = None
        self._step = None            # the running StepJob
        self._dayEdits: dict[str, str] = {}  # volume node ID → day typed by the user (nodes are never modified)
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.connect("timeout()", self.pollStep)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/HybridNeuro.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)  # reaches the node selectors via the .ui's connections
        self.logic = HybridNeuroLogic()

        self.ui.inputsTableWidget.setHorizontalHeaderLabels([_("Volume"), _("Contrast"), _("Day")])
        self.ui.inputsTableWidget.horizontalHeader().setStretchLastSection(True)
        self.ui.modelComboBox.addItems(modelNames())  # imports nothing: torch is imported only by the child
        self.ui.deviceComboBox.addItems(list(DEVICES))
        for kind, title in Models.KINDS.items():
            self.ui.segmentationModelComboBox.addItem(_(title), kind)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.loadSampleButton.connect("clicked(bool)", self.onLoadSample)
        self.ui.refreshInputsButton.connect("clicked(bool)", self.refreshInputs)
        self.ui.inputsTableWidget.connect("cellChanged(int,int)", self.onCellChanged)
        self.ui.segmentButton.connect("clicked(bool)", self.onSegment)
        self.ui.fitButton.connect("clicked(bool)", self.onFit)
        self.ui.predictButton.connect("clicked(bool)", self.onPredict)
        self.ui.treatButton.connect("clicked(bool)", self.onTreat)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.modelComboBox.connect("currentTextChanged(QString)", self.onModelChanged)
        self.ui.deviceComboBox.connect("currentTextChanged(QString)", self.onDeviceChanged)
        self.ui.checkDevicesButton.connect("clicked(bool)", self.onCheckDevices)
        self.ui.segmentationModelComboBox.connect("currentIndexChanged(int)", self.onSegmentationModelChanged)
        self.ui.segmentationModelPathLineEdit.connect("currentPathChanged(QString)", self.onSegmentationModelChanged)
        self.ui.createDemoOverlayButton.connect("clicked(bool)", self.onCreateDemoOverlay)
        self.ui.installDependenciesButton.connect("clicked(bool)", self.onInstallDependencies)

        self.initializeParameterNode()
        self.updateDependencyStatus()
        self.refreshInputs()

    def cleanup(self) -> None:
        self.onCancel()
        self._timer.stop()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()
        self.refreshInputs()

    def exit(self) -> None:
        self.setParameterNode(None)  # stop updating a hidden panel

    def onSceneStartClose(self, caller, event) -> None:
        self.onCancel()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        self._dayEdits.clear()
        if self.parent.isEntered:
            self.initializeParameterNode()
            self.refreshInputs()

    # -- parameter node ------------------------------------------------------------
    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:  # save a click: preselect the first scan
            firstVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolume:
                self._parameterNode.inputVolume = firstVolume
        index = self.ui.modelComboBox.findText(self._parameterNode.model)
        self.ui.modelComboBox.setCurrentIndex(max(index, 0))
        self.ui.deviceComboBox.setCurrentIndex(max(self.ui.deviceComboBox.findText(self._parameterNode.device), 0))
        # set both widgets from the saved choice before either handler writes a half-updated one back
        kind, folder = self._parameterNode.segmentationModel, self._parameterNode.segmentationModelFolder
        comboBox, pathLineEdit = self.ui.segmentationModelComboBox, self.ui.segmentationModelPathLineEdit
        blocked = comboBox.blockSignals(True), pathLineEdit.blockSignals(True)
        pathLineEdit.currentPath = folder
        comboBox.setCurrentIndex(max(comboBox.findData(kind), 0))
        comboBox.blockSignals(blocked[0])
        pathLineEdit.blockSignals(blocked[1])
        self.onSegmentationModelChanged()

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

    def onModelChanged(self, text: str) -> None:
        if self._parameterNode and text:
            self._parameterNode.model = text

    def onDeviceChanged(self, text: str) -> None:
        if self._parameterNode and text:
            self._parameterNode.device = text

    def onCheckDevices(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Cannot check the devices."), waitCursor=True):
            status = self.logic.deviceStatus()
            self.ui.deviceStatusLabel.text = "\n".join(f"{name}: {state}" for name, state in status.items())

    # -- segmentation model ----------------------------------------------------------
    def segmentationModelChoice(self) -> Models.ModelChoice:
        kind = self.ui.segmentationModelComboBox.currentData or "shipped"
        return Models.ModelChoice(kind, self.ui.segmentationModelPathLineEdit.currentPath.strip())

    def onSegmentationModelChanged(self, *args) -> None:
        choice = self.segmentationModelChoice()
        self.ui.segmentationModelPathLineEdit.enabled = choice.kind != "shipped"
        if self._parameterNode:
            self._parameterNode.segmentationModel = choice.kind
            self._parameterNode.segmentationModelFolder = choice.folder
        self.showModelCard()

    def showModelCard(self) -> None:
        choice = self.segmentationModelChoice()
        self.ui.modelCardTextEdit.setPlainText(Models.modelCard(choice))
        self.ui.syntheticModelWarningLabel.visible = choice.syntheticOnly

    def updateButtons(self, caller=None, event=None) -> None:
        running = self._step is not None
        hasInput = bool(self._parameterNode and self._parameterNode.inputVolume)
        self.ui.createDemoOverlayButton.enabled = hasInput and not running
        self.ui.createDemoOverlayButton.toolTip = (
            _("Add a demo tumor-cell density and lesion segmentation centred in the input volume")
            if hasInput else _("Select an input volume first"))
        for button in (self.ui.loadSampleButton, self.ui.segmentButton, self.ui.fitButton,
                       self.ui.installDependenciesButton):
            button.enabled = not running
        for button in (self.ui.predictButton, self.ui.treatButton):
            button.enabled = not running and self.logic.lastFit is not None
        self.ui.cancelButton.enabled = running

    def updateDependencyStatus(self) -> None:
        versions = self.logic.dependencyVersions()
        self.ui.dependencyStatusLabel.text = ", ".join(
            f"{name} {version}" if version else _("{name} missing").format(name=name)
            for name, version in versions.items())
        if self.logic.missingDependencies():  # a first use: show what is missing without a click
            self.ui.dependenciesCollapsibleButton.collapsed = False

    def dependenciesReady(self) -> bool:
        """True when every package a step needs is installed, after offering to install what is missing."""
        missing = self.logic.missingDependencies()
        if not missing:
            return True
        if not slicer.util.confirmOkCancelDisplay(
                _("This step needs Python packages that are not installed yet:\n\n{packages}\n\nInstall them now? "
                  "PyTorch comes from the PyTorch extension, the others from the Python Package Index; this may "
                  "take several minutes and may ask for a restart of Slicer.").format(packages="\n".join(missing)),
                windowTitle=_("HybridNeuro: install Python packages")):
            self.ui.statusLabel.text = _("Not started: Python packages missing ({packages}).").format(
                packages=", ".join(missing))
            return False
        try:
            with slicer.util.tryWithErrorDisplay(_("Failed to install the Python packages.")):  # installers show dialogs
                self.logic.ensureDependencies(askConfirmation=False)
        finally:
            self.updateDependencyStatus()
        return not self.logic.missingDependencies()

    # -- inputs table ----------------------------------------------------------------
    def refreshInputs(self) -> None:
        from HybridNeuroLib.mrml import study_nodes

        volumes = study_nodes.scene_volumes(slicer.mrmlScene)
        days = self.logic.volumeDays(volumes)
        table = self.ui.inputsTableWidget
        wasBlocked = table.blockSignals(True)
        table.setRowCount(len(volumes))
        for row, node in enumerate(volumes):
            nameItem = qt.QTableWidgetItem(node.GetName())
            nameItem.setData(qt.Qt.UserRole, node.GetID())
            nameItem.setFlags(qt.Qt.ItemIsSelectable | qt.Qt.ItemIsEnabled)
            table.setItem(row, VOLUME_COLUMN, nameItem)
            table.setItem(row, CONTRAST_COLUMN, qt.QTableWidgetItem(study_nodes.contrast_of(node) or ""))
            day = self._dayEdits.get(node.GetID(), "" if days[node.GetID()] is None else f"{days[node.GetID()]:g}")
            table.setItem(row, DAY_COLUMN, qt.QTableWidgetItem(day))
        table.blockSignals(wasBlocked)

    def onCellChanged(self, row: int, column: int) -> None:
        if column == DAY_COLUMN:
            nodeID = self.ui.inputsTableWidget.item(row, VOLUME_COLUMN).data(qt.Qt.UserRole)
            self._dayEdits[nodeID] = self.ui.inputsTableWidget.item(row, DAY_COLUMN).text().strip()

    def tableVolumes(self) -> dict[float, dict]:
        """{day: {contrast: volume}} from the table; raises ValueError naming every row without a usable day."""
        table, volumes, problems = self.ui.inputsTableWidget, {}, []
        for row in range(table.rowCount):
            node = slicer.mrmlScene.GetNodeByID(table.item(row, VOLUME_COLUMN).data(qt.Qt.UserRole))
            if node is None:
                continue  # deleted since the last refresh
            dayText = table.item(row, DAY_COLUMN).text().strip()
            try:
                day = float(dayText)
            except ValueError:
                problems.append(_("'{name}': enter its day (days since the first scan)").format(name=node.GetName()))
                continue
            contrast = table.item(row, CONTRAST_COLUMN).text().strip() or None
            volumes.setdefault(day, {})[contrast] = node
        if problems:
            raise ValueError("\n".join(problems))
        return volumes

    # -- steps -----------------------------------------------------------------------
    def onLoadSample(self) -> None:
        if not self.dependenciesReady():
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to load the sample case.")):
            self.startStep(self.logic.loadSampleCase(**self._callbacks(withDevice=False)))

    def onSegment(self) -> None:
        if not self.dependenciesReady():
            return
        with slicer.util.tryWithErrorDisplay(_("Cannot segment the lesions.")):
            volumes, choice = self.tableVolumes(), self.segmentationModelChoice()
            warning = Models.syntheticModelWarning(choice, [n for byContrast in volumes.values()
                                                            for n in byContrast.values()])
            if warning and not slicer.util.confirmOkCancelDisplay(
                    warning + "\n\n" + _("Segment with the synthetic-data model anyway?"),
                    windowTitle=_("HybridNeuro: synthetic-data model")):
                return
            self.startStep(self.logic.segmentLesions(
                volumes, patient=self._parameterNode.patientName or None, tta=self._parameterNode.segmentationTta,
                **choice.segmentArguments(), **self._callbacks()))

    def onFit(self) -> None:
        if not self.dependenciesReady():
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Cannot fit the model.")):
            self.startStep(self.logic.fitModel(
                None, volumes=self.tableVolumes(), model=p.model, patient=p.patientName or None, voxelMm=p.fitVoxelMm,
                iterations=p.fitIterations, members=p.fitMembers, **self._callbacks()))

    def predictDays(self) -> list[float]:
        try:
            return [float(word) for word in self._parameterNode.predictDays.replace(",", " ").split()]
        except ValueError:
            raise ValueError(_("Predict days must be numbers separated by spaces, e.g. 180 240")) from None

    def onPredict(self) -> None:
        if not self.dependenciesReady():
            return
        with slicer.util.tryWithErrorDisplay(_("Cannot predict.")):
            self.startStep(self.logic.predict(self.predictDays(), **self._callbacks()))

    def onTreat(self) -> None:
        if not self.dependenciesReady():
            return
        with slicer.util.tryWithErrorDisplay(_("Cannot compare treatment scenarios.")):
            self.startStep(self.logic.treatmentScenarios(self.predictDays(), **self._callbacks()))

    def _callbacks(self, withDevice: bool = True) -> dict:
        callbacks = {"onProgress": self.onProgress, "onLog": self.appendLog, "blocking": False}
        if withDevice:
            callbacks["device"] = self._parameterNode.device
        return callbacks

    def startStep(self, step) -> None:
        self._step = step
        self.ui.progressBar.value = 0
        self.ui.statusLabel.text = _("{step}: running…").format(step=step.step)
        self.appendLog(f"--- {step.step}")
        self.updateButtons()
        self._timer.start()

    def pollStep(self) -> None:
        if self._step is None:
            self._timer.stop()
            return
        step = self._step
        try:
            result = step.poll()
        except Exception as error:  # HybridNeuroError: failed or cancelled, the scene is unchanged
            self._endStep()
            self.ui.statusLabel.text = str(error).splitlines()[0]
            self.appendLog(str(error))
            if not step.job.cancelled:
                slicer.util.errorDisplay(str(error), windowTitle=_("HybridNeuro"))
            return
        if not step.done:
            return
        self._endStep()
        self.ui.progressBar.value = 100
        self.ui.statusLabel.text = _("{step}: done.").format(step=step.step)
        if step.step == "sample case":
            self.refreshInputs()
        if step.step == "fit":
            self.ui.statusLabel.text += " " + _("Parameters in table '{name}'.").format(name=result.table.GetName())

    def _endStep(self) -> None:
        self._timer.stop()
        self._step = None
        self.updateButtons()

    def onProgress(self, step: str, fraction: float) -> None:
        self.ui.progressBar.value = int(round(100 * fraction))
        self.ui.statusLabel.text = _("{step}: {percent}%").format(step=step, percent=int(round(100 * fraction)))

    def appendLog(self, line: str) -> None:
        self.ui.logTextEdit.appendPlainText(line)

    def onCancel(self) -> None:
        if self._step is not None:
            self.appendLog(_("Cancelling…"))
            self._step.cancel()  # the next poll reports it and removes the partial output

    # -- demo and dependencies -----------------------------------------------------------
    def onCreateDemoOverlay(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to create the demo overlay."), waitCursor=True):
            self.logic.createDemoOverlay(self._parameterNode.inputVolume, self._parameterNode.lesionRadiusMm)

    def onInstallDependencies(self) -> None:
        # no wait cursor: the installers ask questions in dialogs
        with slicer.util.tryWithErrorDisplay(_("Failed to install the dependencies.")):
            self.logic.ensureDependencies()
        self.updateDependencyStatus()
