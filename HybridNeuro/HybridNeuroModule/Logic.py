"""The HybridNeuro logic: every step of the panel, callable from Slicer's Python console.

    >>> import HybridNeuro
    >>> logic = HybridNeuro.HybridNeuroLogic()
    >>> volumes = logic.loadSampleCase()                 # {day: {contrast: volume node}}, tissue maps too
    >>> logic.missingDependencies()                      # [] once torch, MONAI … are installed
    >>> lesions = logic.segmentLesions(volumes)          # one segmentation node per day (edit them if needed)
    >>> fitted = logic.fitModel(lesions)                 # parameter table node (+ fitted.folder)
    >>> forecast = logic.predict([180, 240])             # segmentations, density, browser, plot
    >>> forecast.segmentations[180].GetName()
    'synth-2024 forecast day 180'

Your own scans: give the volumes with their days, ``{day: volume}`` or ``{day: {"t1c": volume,
…}}``, or set each volume's attribute ``HybridNeuro.day`` (volumes loaded from DICOM get their
day from the acquisition date). The fit also needs gm/wm/csf tissue probability volumes
(``tissue={"gm": …, "wm": …, "csf": …}`` or volumes with the attribute ``HybridNeuro.tissue``).

Each step (the sample case too) blocks by default and takes ``onProgress(step, fraction)``
and ``onLog(line)`` callbacks; with ``blocking=False`` it returns a :class:`StepJob` at once
(poll it from a timer; its ``job`` is the :class:`HybridNeuroLib.jobs.CliJob`). The work runs
in a child process executing the ``hybridneuro`` CLI with this Python (Slicer's PythonSlicer),
on a temporary study folder copied from the nodes: input nodes and the user's files are never
modified. The child writes UTF-8 whatever the system's code page (PYTHONUTF8, PYTHONIOENCODING),
computes on ``device`` ("auto", "cuda", "mps", "cpu"; HYBRIDNEURO_DEVICE), and a step whose
packages are not installed yet is refused before it starts, naming them (:meth:`missingDependencies`,
:meth:`ensureDependencies`). This process never imports torch: only the child does. On failure or cancel nothing is added to the scene and :class:`HybridNeuroError`
says what went wrong and what to do. Works without the widget, inside Slicer and headless
with ``slicer-core``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Callable, Mapping, Sequence

import slicer
from slicer import vtkMRMLScalarVolumeNode

from . import Results

try:  # the Qt-based module framework exists inside Slicer only; slicer-core (headless tests) lacks it
    from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
    from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic
except ModuleNotFoundError:
    ScriptedLoadableModuleLogic = object

    def parameterNodeWrapper(cls):  # noqa: D103 - headless stand-in: a plain class
        return cls

    def WithinRange(low, high):  # noqa: N802, D103
        return (low, high)

DEFAULT_MODEL = "physics"
# HybridNeuroLib.hybrid.base.MODEL_MODULES, which cannot be imported here without importing torch
# (a torch imported in Slicer's process cannot be replaced by the PyTorch extension); tested equal
MODEL_NAMES = ("physics", "parallel", "series", "parallel-series", "neural-ode", "neural-ode-physics",
               "solver-in-the-loop")
DEVICES = ("auto", "cuda", "mps", "cpu")  # HybridNeuroLib.device.DEVICE_CHOICES
DEFAULT_PREDICT_DAYS = (180.0, 240.0)
ProgressCallback = Callable[[str, float], None]
LogCallback = Callable[[str], None]


@parameterNodeWrapper
class HybridNeuroParameterNode:
    """What the panel edits, saved with the scene.

    inputVolume - the scan the demo lesion is placed on (only read, never modified).
    lesionRadiusMm - radius of the demo lesion's visible (edema) edge, in mm.
    patientName - name the new nodes start with (empty: from the volumes or DICOM).
    model - forecasting model (HybridNeuroLib.hybrid.base.MODEL_MODULES names).
    predictDays - days to forecast, separated by spaces.
    fitVoxelMm, fitIterations, fitMembers - fitting grid, Adam iterations, ensemble size (intervals).
    segmentationTta - test-time augmentation when segmenting (4x slower).
    segmentationModel, segmentationModelFolder - "shipped", "bundle" (MONAI bundle folder) or "trained"
        (``hybridneuro train-seg`` folder), and the folder (Models.ModelChoice).
    device - "auto" (CUDA if torch can use it, else CPU), "cuda", "mps" or "cpu".
    """

    inputVolume: vtkMRMLScalarVolumeNode
    lesionRadiusMm: Annotated[float, WithinRange(2.0, 60.0)] = 15.0
    patientName: str = ""
    model: str = DEFAULT_MODEL
    predictDays: str = "180 240"
    fitVoxelMm: Annotated[float, WithinRange(1.0, 8.0)] = 2.0
    fitIterations: Annotated[int, WithinRange(1, 1000)] = 60
    fitMembers: Annotated[int, WithinRange(0, 50)] = 6
    segmentationTta: bool = False
    segmentationModel: str = "shipped"
    segmentationModelFolder: str = ""
    device: str = "auto"


class HybridNeuroError(RuntimeError):
    """A step failed or was cancelled; the scene is as it was before the step. The message says what to do."""


@dataclass
class FittedModel:
    """A fitted model: its parameter table node, fit folder and what it was fitted to (nodes only read)."""

    patient: str
    model: str
    folder: Path                  # the fit folder (params.json), inside the logic's work folder
    parameters: dict              # params.json
    table: object                 # vtkMRMLTableNode: parameters with intervals
    timepoints: list              # [TimepointNodes]: the scans per observed day
    lesions: list                 # the observed segmentation nodes, one per timepoint

    @property
    def observedDays(self) -> list[float]:
        return [tp.day for tp in self.timepoints]


@dataclass
class Forecast:
    """What ``predict`` added: per-day segmentations, density, sequences, browser, plot."""

    days: list[float]             # the predicted days
    segmentations: dict           # day → segmentation node "<patient> forecast day <d>"
    density: object               # colour-mapped density shown over the latest scan (the browser's day)
    lesion: object                # segmentation of the browser's day
    sequences: dict               # "density", "lesion" → sequence node (observed and predicted days)
    browser: object               # sequence browser node
    plot: object                  # HybridNeuroLib.mrml.plots.VolumePlot (chart, tables, series)
    volumes: list                 # forecast.json volumes: day, whole_ml, whole_ml_range, core_ml
    observedVolumesMl: list       # [(day, mL)] of the observed segmentations
    folder: Path


@dataclass
class TreatmentScenarios:
    """What ``treatmentScenarios`` added: the comparison chart and each scenario's lesions."""

    plot: object                  # VolumePlot: observed points, one line per scenario
    segmentations: dict           # scenario name → {day: segmentation node}
    scenarios: list               # scenarios.json "scenarios": name, treatment, outcomes per day
    folder: Path


class StepJob:
    """A step running in the background: its :class:`CliJob` and what turns the output into nodes.

    Call :meth:`poll` from a timer: None while running, the step's result once done (the nodes are
    added then, once); it raises :class:`HybridNeuroError` if the step failed or was cancelled.
    """

    def __init__(self, step: str, job, finish: Callable[[], object], cleanup: Callable[[], None]):
        self.step, self.job = step, job
        self._finish, self._cleanup = finish, cleanup
        self._done, self._result, self._error = False, None, None

    def poll(self):
        if not self._done:
            if self.job.poll() is None:
                return None
            self._done = True
            try:
                if not self.job.succeeded:
                    self._error = HybridNeuroError(_failureMessage(self.step, self.job))
                else:
                    try:
                        self._result = self._finish()
                    except Exception as error:  # the scene was rolled back by finish
                        self._error = HybridNeuroError(
                            f"{self.step}: the results could not be added to the scene: {error}\n"
                            "The scene is unchanged. Run the step again; if it fails again, report it with the log.")
            finally:
                if self._error is not None:
                    self._cleanup()
        if self._error is not None:
            raise self._error
        return self._result

    def wait(self, pollIntervalS: float = 0.1):
        """Block until the step ends; its result (or HybridNeuroError)."""
        import time

        application = getattr(slicer, "app", None)
        while (result := self.poll()) is None and not self._done:
            if application is not None:
                application.processEvents()  # a blocking console call still repaints Slicer's views
            time.sleep(pollIntervalS)
        return result

    def cancel(self) -> None:
        """Stop the step; nothing is added to the scene and its partial output is deleted."""
        self.job.cancel()

    @property
    def done(self) -> bool:
        return self._done


def _failureMessage(step: str, job) -> str:
    if job.cancelled:
        return f"{step} was cancelled; the scene is unchanged and no partial result was kept."
    message = job.error_message()
    if "missing package" in message or "ModuleNotFoundError" in message:
        return (f"{message}\nThe scene is unchanged. Install the missing packages (Dependencies section: Install "
                "dependencies, or logic.ensureDependencies()) and run the step again.")
    return (f"{message}\nThe scene is unchanged. Correct what the message names (inputs or settings) "
            "and run the step again; the full log is in the module's log panel.")


def modelNames() -> list[str]:
    """Forecasting models to choose from (the engine's registry); imports nothing."""
    return list(MODEL_NAMES)


SAMPLE_COMMAND = "import sys; from HybridNeuroLib.synth.sample import main; sys.exit(main())"
STUDY_LINE = "study: "  # the sample generator's last line names the study folder


class HybridNeuroLogic(ScriptedLoadableModuleLogic):
    """Computations and scene updates of the module; works without the widget (see the module docstring)."""

    def __init__(self, scene: slicer.vtkMRMLScene | None = None, workDirectory: str | os.PathLike | None = None):
        if ScriptedLoadableModuleLogic is not object:
            ScriptedLoadableModuleLogic.__init__(self)
        self._scene = scene
        self._workDirectory = Path(workDirectory) if workDirectory is not None else None
        self._runs = 0
        self.python = sys.executable  # inside Slicer: PythonSlicer, the Python with Slicer's packages
        self.dicomValue = _slicerDicomValue()  # (uid, tag) → value, None without Slicer's DICOM database
        self.lastLesions: list = []
        self.lastFit: FittedModel | None = None

    @property
    def scene(self) -> slicer.vtkMRMLScene:
        return self._scene if self._scene is not None else slicer.mrmlScene

    def getParameterNode(self) -> HybridNeuroParameterNode:
        return HybridNeuroParameterNode(super().getParameterNode())

    @property
    def workDirectory(self) -> Path:
        """Temporary folder of this session's studies, fits and forecasts (never the user's data)."""
        if self._workDirectory is None:
            self._workDirectory = Path(tempfile.mkdtemp(prefix="hybridneuro-"))
        self._workDirectory.mkdir(parents=True, exist_ok=True)
        return self._workDirectory

    # -- dependencies -----------------------------------------------------------
    @staticmethod
    def dependencyVersions() -> dict[str, str | None]:
        """Installed version of torch and each engine package (None if missing); imports nothing."""
        from . import Dependencies

        return Dependencies.installedVersions()

    @staticmethod
    def missingDependencies() -> list[str]:
        """The requirements not met yet (torch first), e.g. ``["torch>=2.4", "monai>=1.4"]``; imports nothing."""
        from . import Dependencies

        return Dependencies.missingRequirements()

    @staticmethod
    def ensureDependencies(askConfirmation: bool = True) -> None:
        """Install missing packages (torch via the PyTorch extension first); raises RuntimeError if not possible."""
        from . import Dependencies

        Dependencies.ensureDependencies(askConfirmation)

    def _requireDependencies(self, step: str) -> None:
        """Refuse ``step`` before any work when its packages are missing (the child would die importing them)."""
        missing = self.missingDependencies()
        if missing:
            raise HybridNeuroError(
                f"{step} needs Python packages that are not installed yet: {', '.join(missing)}. Install them "
                "from the module panel (Dependencies: Install dependencies; every step offers it too) or with "
                "logic.ensureDependencies(), then run the step again. Nothing was changed.")

    def deviceStatus(self) -> dict[str, str]:
        """{"cuda" / "mps" / "cpu": "available" or why not}, as torch in the child process sees them (a few seconds).

        Runs ``python -m HybridNeuroLib.device`` (this process never imports torch).
        """
        import json
        import subprocess

        noWindow = {"creationflags": subprocess.CREATE_NO_WINDOW} if os.name == "nt" else {}
        result = subprocess.run([self.python, "-m", "HybridNeuroLib.device"], capture_output=True, encoding="utf-8",
                                errors="replace", env=self._environment(), stdin=subprocess.DEVNULL, **noWindow)
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-3:])
            raise HybridNeuroError(f"the device check failed (exit code {result.returncode}): {tail}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    # -- inputs -------------------------------------------------------------------
    def loadSampleCase(self, *, onProgress: ProgressCallback | None = None, onLog: LogCallback | None = None,
                       blocking: bool = True):
        """Put the embedded synthetic subject into the scene: {day: {contrast: volume node}}, tissue maps too.

        Generated in a background process on first use (seconds to a minute), then cached
        (``HybridNeuroLib.synth.sample``); a :class:`StepJob` if not ``blocking``. Its volumes are
        marked synthetic (attribute ``HybridNeuro.synthetic``), so the shipped model segments them without
        a warning.
        """
        self._requireDependencies("sample case")
        run = self._newRun("sample")
        command = [self.python, "-c", SAMPLE_COMMAND, "--progress-lines"]

        def finish():
            studies = [line[len(STUDY_LINE):] for line in step.job.lines if line.startswith(STUDY_LINE)]
            if not studies:
                raise HybridNeuroError("the sample generator did not say where the study is; see the log")
            return self.loadStudy(studies[-1], synthetic=True)

        step = self._start("sample case", [], run, None, finish, False, "auto", onProgress, onLog, False,
                           command=command)
        return step.wait() if blocking else step

    def loadStudy(self, studyFolder: str | os.PathLike, *, synthetic: bool | None = None
                  ) -> dict[float, dict[str, vtkMRMLScalarVolumeNode]]:
        """Add a ``hybridneuro-study/1`` folder's scans (with days and contrasts) and tissue maps to the scene.

        ``synthetic``: mark the volumes as a synthetic subject's (None: when the folder was written by
        ``hybridneuro synth``, i.e. has a ``truth`` folder with ``parameters.json`` beside it).
        """
        from . import Models

        if synthetic is None:
            synthetic = (Path(studyFolder).parent / "truth" / "parameters.json").is_file()
        _, volumes = Results.addStudyVolumes(studyFolder, self.scene)
        if synthetic:
            for node in (node for contrasts in volumes.values() for node in contrasts.values()):
                node.SetAttribute(Models.SYNTHETIC_ATTRIBUTE, "1")
        return volumes

    def timepoints(self, volumes=None) -> list:
        """The study the scene's volumes make: [TimepointNodes(day, {contrast: node})] in day order.

        ``volumes``: None (every scan of the scene), a list of volume nodes (days from their
        attributes or DICOM dates), ``{day: volume}`` / ``{day: {contrast: volume}}``, or a volume
        sequence node indexed by day. Raises
        ``StudyInputError`` listing every problem (no volumes, a volume without a day, days out of order, …).
        """
        from HybridNeuroLib.mrml import study_nodes

        if volumes is None:  # the scene's order means nothing: the days give the order
            return study_nodes.collect_timepoints(study_nodes.scene_volumes(self.scene), dicom_value=self.dicomValue,
                                                  in_acquisition_order=False)
        if hasattr(volumes, "IsA") and volumes.IsA("vtkMRMLSequenceNode"):
            volumes = study_nodes.sequence_volumes(volumes)
        return study_nodes.collect_timepoints(volumes, dicom_value=self.dicomValue)

    def volumeDays(self, volumes: Sequence | None = None) -> dict[str, float | None]:
        """Day of each volume (by node ID) as the logic would read it: attribute, else DICOM date; None if unknown."""
        from HybridNeuroLib.mrml import study_nodes

        nodes = list(volumes) if volumes is not None else study_nodes.scene_volumes(self.scene)
        return study_nodes.node_days(nodes, self.dicomValue)

    def patientName(self, nodes: Sequence, patient: str | None = None) -> str:
        """``patient``, else the volumes' ``HybridNeuro.patient`` attribute, else their DICOM patient name."""
        from HybridNeuroLib.mrml import study_nodes

        if patient:
            return patient
        for node in nodes:
            name = node.GetAttribute(study_nodes.PATIENT_ATTRIBUTE) or study_nodes.dicom_patient_name(
                node, self.dicomValue)
            if name:
                return name
        return "patient"

    # -- steps --------------------------------------------------------------------
    def segmentLesions(self, volumes=None, *, patient: str | None = None, modelFolder: str | None = None,
                       bundleFolder: str | None = None, bundleSpacingMm: float | None = None, tta: bool = False,
                       forceCpu: bool = False, device: str = "auto", onProgress: ProgressCallback | None = None,
                       onLog: LogCallback | None = None, blocking: bool = True):
        """Segment the lesion of every timepoint (MONAI): one segmentation node per day, "<patient> lesion day <d>".

        ``volumes`` as in :meth:`timepoints`; each timepoint needs the contrasts the model uses
        (the shipped model: t1n, t1c, t2w, t2f). ``modelFolder`` (from ``hybridneuro train-seg``)
        or ``bundleFolder`` (a MONAI bundle you trust: loading one runs the code its configs name;
        ``bundleSpacingMm``: the voxel size it expects, default the CLI's 1 mm) replace the shipped
        synthetic-data model; a folder lacking the model's files is refused before
        any work. The shipped model on scans not marked synthetic logs a warning (its lesions on real
        scans are not meaningful). Returns the list of segmentation nodes (a :class:`StepJob` if not
        ``blocking``).
        """
        import logging

        from HybridNeuroLib.mrml import study_nodes

        from . import Models

        if modelFolder and bundleFolder:
            raise study_nodes.StudyInputError(["give modelFolder or bundleFolder, not both"])
        choice = (Models.ModelChoice("bundle", str(bundleFolder)) if bundleFolder else
                  Models.ModelChoice("trained", str(modelFolder)) if modelFolder else Models.ModelChoice())
        if choice.problems():
            raise study_nodes.StudyInputError(choice.problems())
        self._requireDependencies("segment")
        timepoints = self.timepoints(volumes)
        unnamed = [f"'{tp.volumes[key].GetName()}' (day {study_nodes.day_text(tp.day)})"
                   for tp in timepoints for key in tp.guessed]
        if unnamed:
            raise study_nodes.StudyInputError([
                f"volume {name}: its contrast is unknown; put t1n, t1c, t2w or t2f (or FLAIR) in its name or set its "
                f"attribute {study_nodes.CONTRAST_ATTRIBUTE}" for name in unnamed])
        patient = self.patientName([n for tp in timepoints for n in tp.volumes.values()], patient)
        warning = Models.syntheticModelWarning(choice, [n for tp in timepoints for n in tp.volumes.values()])
        if warning:
            logging.warning(warning)
            if onLog:
                onLog(f"WARNING: {warning}")
        run = self._newRun("segment")
        with _removedOnError(run):
            study = study_nodes.write_study_folder(run / "study", patient, timepoints)
        arguments = ["segment", str(study)]
        if modelFolder:
            arguments += ["--model", str(modelFolder)]
        if bundleFolder:
            arguments += ["--bundle", str(bundleFolder)]
            if bundleSpacingMm is not None:
                arguments += ["--bundle-spacing-mm", str(float(bundleSpacingMm))]
        if tta:
            arguments.append("--tta")
        if forceCpu:
            arguments.append("--cpu")

        def finish():
            return self._addLesions(run / "segment", patient, timepoints)

        return self._start("segment", arguments, run, run / "segment", finish, forceCpu, device, onProgress, onLog,
                           blocking)

    def _addLesions(self, folder: Path, patient: str, timepoints: list) -> list:
        import SimpleITK as sitk

        from HybridNeuroLib import mrml
        from HybridNeuroLib.mrml.scene import rollback_on_error
        from HybridNeuroLib.mrml.study_nodes import day_text

        lesions = []
        with rollback_on_error(self.scene):
            for n, tp in enumerate(timepoints):
                labels = Results.onGridOf(sitk.ReadImage(str(folder / f"seg_tp{n}.nii.gz")), tp.reference, labels=True)
                name = self.scene.GenerateUniqueName(f"{patient} lesion day {day_text(tp.day)}")
                node = mrml.labels_to_segmentation(labels, self.scene, name, reference=tp.reference)
                lesions.append(Results.markOutput(node, "segment", tp.day, patient))
        self.lastLesions = lesions
        return lesions

    def fitModel(self, lesions=None, *, volumes=None, tissue: Mapping[str, object] | None = None,
                 model: str = DEFAULT_MODEL, patient: str | None = None, voxelMm: float | None = None,
                 starts: int | None = None, iterations: int | None = None, members: int | None = None,
                 seed: int | None = None, extraArguments: Sequence[str] = (), forceCpu: bool = False,
                 device: str = "auto", onProgress: ProgressCallback | None = None, onLog: LogCallback | None = None,
                 blocking: bool = True):
        """Fit the growth model to the observed lesions: a parameter table node "<patient> <model> fit parameters".

        ``lesions``: segmentation nodes (list, days from their ``HybridNeuro.day`` attribute, or
        ``{day: segmentation}``); default: the last ``segmentLesions`` result (or, in a reloaded
        scene, its segmentations there, the newest per day). Each lesion is read
        on the grid of its scan: ``volumes`` as in :meth:`timepoints` (default: the segmentation's
        reference volume, else the scene's scan of that day). ``tissue``: {"gm", "wm", "csf"} →
        probability volume (default: the scene's volumes with attribute ``HybridNeuro.tissue``; with
        none, the fit derives them by registering the SRI24 atlas to the first timepoint's T1 and adds
        them to the scene as "<patient> gm (atlas-derived)" …, reused by later fits).
        ``voxelMm``, ``starts``, ``iterations``, ``members`` (ensemble size for the intervals;
        0 = none), ``seed``: ``hybridneuro fit`` options (None: its defaults). Returns a
        :class:`FittedModel` (a :class:`StepJob` if not ``blocking``); it is also kept as ``lastFit``
        for :meth:`predict`.
        """
        from HybridNeuroLib.mrml import study_nodes

        self._requireDependencies("fit")
        pairs = self._lesionsWithDays(lesions)
        timepoints = self._lesionTimepoints(pairs, volumes)
        if tissue is None:
            tissue = study_nodes.tissue_volumes(self.scene)
        missing = [key for key in ("gm", "wm", "csf") if not (tissue or {}).get(key)]
        if 0 < len(missing) < 3:
            raise study_nodes.StudyInputError([
                f"no {', '.join(missing)} tissue map: the growth model needs gm, wm and csf probability volumes "
                f"together; pass tissue={{'gm': …, 'wm': …, 'csf': …}}, set their attribute "
                f"{study_nodes.TISSUE_ATTRIBUTE}, or give none to have them derived from the atlas"])
        deriveTissue = len(missing) == 3  # `hybridneuro fit` registers the SRI24 atlas to the first T1 (~1 min)
        patient = self.patientName([tp.reference for tp in timepoints] + [n for _, n in pairs], patient)
        run = self._newRun("fit")
        with _removedOnError(run):
            study = study_nodes.write_study_folder(run / "study", patient, timepoints,
                                                   segmentations=[node for _, node in pairs],
                                                   tissue=None if deriveTissue else tissue)
        arguments = ["fit", str(study)]
        if model != DEFAULT_MODEL:
            arguments += ["--model", model]  # `hybridneuro fit --model NAME` chooses a hybrid model
        for option, value in (("--voxel-mm", voxelMm), ("--starts", starts), ("--iterations", iterations),
                              ("--members", members), ("--seed", seed)):
            if value is not None:
                arguments += [option, str(value)]
        arguments += [str(argument) for argument in extraArguments]

        def finish():
            import json

            from HybridNeuroLib.mrml.scene import rollback_on_error
            from HybridNeuroLib.mrml.tables import add_parameter_table

            record = json.loads((run / "fit" / "params.json").read_text(encoding="utf-8"))
            with rollback_on_error(self.scene):
                table = add_parameter_table(self.scene, self.scene.GenerateUniqueName(
                    f"{patient} {model} fit parameters"), record)
                Results.markOutput(table, "fit", patient=patient)
                if deriveTissue:  # in the scene, so the next fit reuses them (and the user can check them)
                    self._addDerivedTissue(run / "fit" / "tissue", patient)
            self.lastFit = FittedModel(patient, model, run / "fit", record, table, timepoints,
                                       [node for _, node in pairs])
            return self.lastFit

        return self._start("fit", arguments, run, run / "fit", finish, forceCpu, device, onProgress, onLog, blocking)

    def predict(self, days: Sequence[float] = DEFAULT_PREDICT_DAYS, *, fitted: FittedModel | None = None,
                forceCpu: bool = False, device: str = "auto", onProgress: ProgressCallback | None = None,
                onLog: LogCallback | None = None, blocking: bool = True):
        """Forecast ``days`` (after the last observed day) from ``fitted`` (default: the last fit).

        Adds a segmentation per predicted day ("<patient> forecast day <d>"), density and lesion
        sequences over the observed and predicted days with one browser (the density shown as a
        heat map over the latest scan), and a chart of lesion volume vs day (observed points,
        forecast line with its ensemble band) shown in the plot view. Returns a :class:`Forecast`
        (a :class:`StepJob` if not ``blocking``).
        """
        import math

        from HybridNeuroLib.mrml.study_nodes import StudyInputError, day_text

        fitted = fitted or self.lastFit
        if fitted is None:
            raise StudyInputError(["no fitted model: run fitModel (Fit model) first"])
        self._requireDependencies("predict")
        days = sorted({float(day) for day in days})
        last = fitted.observedDays[-1]
        wrong = [day for day in days if not math.isfinite(day) or day <= last]
        if not days or wrong:
            raise StudyInputError([f"days to predict must be finite and after the last observed day "
                                   f"{day_text(last)}, got {[day_text(d) for d in days] or 'none'}"])
        run = self._newRun("predict")
        allDays = sorted(set(fitted.observedDays) | set(days))
        arguments = ["predict", str(fitted.folder), "--days", *[day_text(day) for day in allDays]]

        def finish():
            from HybridNeuroLib.mrml.scene import rollback_on_error

            with rollback_on_error(self.scene):
                nodes = Results.addForecast(
                    self.scene, fitted.patient, run / "forecast", reference=fitted.timepoints[0].reference,
                    background=fitted.timepoints[-1].reference, predictedDays=days,
                    observed=list(zip(fitted.observedDays, fitted.lesions)))
            self._showInSlicer(nodes)
            return Forecast(folder=run / "forecast", **nodes)

        return self._start("predict", arguments, run, run / "forecast", finish, forceCpu, device, onProgress, onLog,
                           blocking)

    def treatmentScenarios(self, days: Sequence[float] = DEFAULT_PREDICT_DAYS, *, fitted: FittedModel | None = None,
                           resectionDay: float | None = None, resectionFraction: float | None = None,
                           rtStartDay: float | None = None, rtDosePerFractionGy: float | None = None,
                           rtFractions: int | None = None, chemoStartDay: float | None = None,
                           chemoEndDay: float | None = None, chemoKillRatePerDay: float | None = None,
                           forceCpu: bool = False, device: str = "auto", onProgress: ProgressCallback | None = None,
                           onLog: LogCallback | None = None, blocking: bool = True):
        """Compare treatments on the fitted patient (``hybridneuro treat``; needs the physics model).

        Without treatment options: untreated, radiotherapy 30 × 2 Gy, and radiotherapy plus a
        TMZ-like chemotherapy; with options (study days, Gy, 1/day): untreated vs the treatment
        they describe. Adds a chart "<patient> treatment scenarios" (observed points, one line per
        scenario) and, per scenario and day of ``days``, a hidden segmentation
        "<patient> <scenario> day <d>". Returns a :class:`TreatmentScenarios` (a :class:`StepJob` if
        not ``blocking``).
        """
        import math

        from HybridNeuroLib.mrml.study_nodes import StudyInputError, day_text

        fitted = fitted or self.lastFit
        if fitted is None:
            raise StudyInputError(["no fitted model: run fitModel (Fit model) first"])
        self._requireDependencies("treat")
        days = sorted({float(day) for day in days})
        if not days or not all(math.isfinite(day) for day in days):
            raise StudyInputError([f"days for the scenarios' lesions must be finite numbers, got {days or 'none'}"])
        run = self._newRun("treat")
        arguments = ["treat", str(fitted.folder), "--days", *[day_text(day) for day in days]]
        for option, value in (("--resection-day", resectionDay), ("--resection-fraction", resectionFraction),
                              ("--rt-start-day", rtStartDay), ("--rt-dose-per-fraction-gy", rtDosePerFractionGy),
                              ("--rt-fractions", rtFractions), ("--chemo-start-day", chemoStartDay),
                              ("--chemo-end-day", chemoEndDay), ("--chemo-kill-rate-per-day", chemoKillRatePerDay)):
            if value is not None:
                arguments += [option, str(value)]

        def finish():
            from HybridNeuroLib.mrml.scene import rollback_on_error

            with rollback_on_error(self.scene):
                nodes = Results.addScenarios(self.scene, fitted.patient, run / "treat",
                                             reference=fitted.timepoints[0].reference,
                                             observed=list(zip(fitted.observedDays, fitted.lesions)))
            self._showInSlicer(nodes)
            return TreatmentScenarios(folder=run / "treat", **nodes)

        return self._start("treat", arguments, run, run / "treat", finish, forceCpu, device, onProgress, onLog,
                           blocking)

    # -- demo lesion (no engine computation) ------------------------------------------
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

    # -- internals ------------------------------------------------------------------
    def _newRun(self, step: str) -> Path:
        self._runs += 1
        run = self.workDirectory / f"{self._runs:03d}-{step}"
        run.mkdir()
        return run

    def _environment(self, forceCpu: bool = False, device: str = "auto") -> dict[str, str]:
        """The child's environment: this engine on its path, UTF-8 output, the device choice."""
        import HybridNeuroLib

        if device not in DEVICES:
            raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
        environment = dict(os.environ)
        # a source checkout's engine is on sys.path of this process only: hand it to the child
        engineRoot = str(Path(HybridNeuroLib.__file__).resolve().parent.parent)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [engineRoot, environment.get("PYTHONPATH")]))
        # the child prints ρ, ², … : in Windows' ANSI code page that is a UnicodeEncodeError; the job reads UTF-8
        environment["PYTHONUTF8"] = "1"
        environment["PYTHONIOENCODING"] = "utf-8"
        environment["HYBRIDNEURO_DEVICE"] = "cpu" if forceCpu else device  # HybridNeuroLib.device reads it
        if forceCpu or device == "cpu":
            environment["CUDA_VISIBLE_DEVICES"] = ""  # torch in the child sees no GPU
        return environment

    def _start(self, step: str, arguments: list[str], run: Path, out: Path | None, finish, forceCpu: bool,
               device: str, onProgress, onLog, blocking: bool, command: list[str] | None = None):
        """Run ``hybridneuro <arguments>`` into ``out``; ``finish`` adds the nodes; ``run`` is deleted on failure.

        ``command`` replaces the ``hybridneuro`` command line (the sample generator is not a CLI command).
        """
        from HybridNeuroLib.jobs import CliJob

        job = CliJob(arguments, out=out, python=self.python, environment=self._environment(forceCpu, device),
                     on_progress=(lambda record: onProgress(record["step"], float(record["fraction"])))
                     if onProgress else None, on_line=onLog)
        if command is not None:
            job.command = command

        def cleanup():
            shutil.rmtree(run, ignore_errors=True)

        stepJob = StepJob(step, job, finish, cleanup)
        try:
            job.start()
        except OSError as error:
            cleanup()
            raise HybridNeuroError(f"{step}: could not start {self.python}: {error}; check the Python "
                                   "executable (logic.python)") from None
        if not blocking:
            return stepJob
        try:
            return stepJob.wait()
        except KeyboardInterrupt:  # Ctrl-C in a console: stop the child too
            stepJob.cancel()
            job.wait()
            cleanup()
            raise

    def _lesionsWithDays(self, lesions) -> list[tuple[float, object]]:
        from HybridNeuroLib.mrml import study_nodes

        if lesions is None:
            lesions = self.lastLesions or self._sceneLesions()
        if isinstance(lesions, Mapping):
            pairs = sorted((float(day), node) for day, node in lesions.items())
        else:
            pairs, problems = [], []
            for node in lesions:
                text = node.GetAttribute(study_nodes.DAY_ATTRIBUTE) if node is not None else None
                if not text:
                    problems.append(f"segmentation '{node.GetName() if node else None}' has no day: pass "
                                    f"{{day: segmentation}} or set its attribute {study_nodes.DAY_ATTRIBUTE}")
                else:
                    pairs.append((float(text), node))
            if problems:
                raise study_nodes.StudyInputError(problems)
            order = [day for day, _ in pairs]
            if any(b <= a for a, b in zip(order, order[1:])):
                raise study_nodes.StudyInputError([f"segmentation days out of order or repeated: {order}; give one "
                                                   "segmentation per timepoint, in acquisition order"])
        if not pairs:
            raise study_nodes.StudyInputError(["no lesion segmentations: run Segment lesions first or pass the "
                                               "segmentation nodes with their days"])
        return pairs

    def _sceneLesions(self) -> list:
        """The scene's segmentations made by ``segmentLesions`` (e.g. of a reloaded scene), the newest per day."""
        from HybridNeuroLib.mrml import study_nodes

        byDay = {}
        for i in range(self.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")):
            node = self.scene.GetNthNodeByClass(i, "vtkMRMLSegmentationNode")
            if node.GetAttribute(study_nodes.OUTPUT_ATTRIBUTE) == "segment":
                byDay[float(node.GetAttribute(study_nodes.DAY_ATTRIBUTE))] = node  # later nodes replace earlier
        return [byDay[day] for day in sorted(byDay)]

    def _addDerivedTissue(self, folder: Path, patient: str) -> None:
        """The atlas-derived gm/wm/csf maps of ``folder`` as tissue volumes marked as fit outputs."""
        import SimpleITK as sitk

        from HybridNeuroLib.mrml import image_to_volume, study_nodes

        for key in study_nodes.TISSUE_KEYS:
            node = image_to_volume(sitk.ReadImage(str(folder / f"{key}.nii.gz")), self.scene,
                                   self.scene.GenerateUniqueName(f"{patient} {key} (atlas-derived)"))
            node.SetAttribute(study_nodes.TISSUE_ATTRIBUTE, key)
            Results.markOutput(node, "fit", patient=patient)

    def _lesionTimepoints(self, pairs, volumes) -> list:
        """One TimepointNodes per lesion: its scan(s) from ``volumes``, its reference volume, or the scene's scan."""
        from HybridNeuroLib.mrml import study_nodes

        byDay = {}
        if volumes is not None or not all(node.GetNodeReference("referenceImageGeometryRef") for _, node in pairs):
            try:
                byDay = {tp.day: tp for tp in self.timepoints(volumes)}
            except study_nodes.StudyInputError:
                if volumes is not None:
                    raise
        timepoints, problems = [], []
        for day, node in pairs:
            reference = node.GetNodeReference("referenceImageGeometryRef")
            if day in byDay:
                timepoints.append(byDay[day])
            elif reference is not None and reference.IsA("vtkMRMLScalarVolumeNode"):
                timepoints.append(study_nodes.TimepointNodes(day, {study_nodes.contrast_of(reference) or "t1n":
                                                                   reference}))
            else:
                problems.append(f"segmentation '{node.GetName()}' (day {study_nodes.day_text(day)}): no scan of that "
                                "day; pass volumes={day: volume}")
        if problems:
            raise study_nodes.StudyInputError(problems)
        return timepoints

    def _showInSlicer(self, nodes: dict) -> None:
        """In the Slicer application: the browser toolbar and a layout with the plot view."""
        if not hasattr(slicer, "app") or not hasattr(slicer, "modules"):
            return  # headless
        if "browser" in nodes:
            slicer.modules.sequences.showSequenceBrowser(nodes["browser"])
        slicer.modules.plots.logic().ShowChartInLayout(nodes["plot"].chart)


@contextlib.contextmanager
def _removedOnError(folder: Path):
    """Delete ``folder`` (a step's temporary run folder) if the block raises."""
    try:
        yield
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _slicerDicomValue():
    database = getattr(slicer, "dicomDatabase", None)
    if database is None:
        return None
    return lambda uid, tag: database.instanceValue(uid, tag)
