"""Engine results into the Slicer scene (study volumes, lesions, forecast), and a demo lesion.

    >>> from HybridNeuroModule import Results
    >>> density, lesion = Results.createDemoOverlay(slicer.util.getNode("MRHead"), lesionRadiusMm=20.0)
    >>> [lesion.GetSegmentation().GetNthSegment(i).GetName() for i in range(3)]
    ['necrotic core', 'edema', 'enhancing tumor']

``addStudyVolumes`` puts a study folder's scans (and tissue maps) into the scene with their
days; ``addForecast`` turns the output of ``hybridneuro predict`` into per-day segmentations,
a density sequence shown as a heat map over the latest scan, a lesion sequence, one browser
and a volume-vs-time chart. Every node they add carries the attribute ``HybridNeuro.output``.

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


def markOutput(node, step: str, day: float | None = None, patient: str | None = None):
    """Tag a node HybridNeuro created: the step that made it, its day and patient (the scene scan skips outputs)."""
    from HybridNeuroLib.mrml import study_nodes

    node.SetAttribute(study_nodes.OUTPUT_ATTRIBUTE, step)
    if day is not None:
        node.SetAttribute(study_nodes.DAY_ATTRIBUTE, study_nodes.day_text(day))
    if patient:
        node.SetAttribute(study_nodes.PATIENT_ATTRIBUTE, patient)
    return node


def addStudyVolumes(studyFolder, scene: slicer.vtkMRMLScene, *, withTissue: bool = True
                    ) -> tuple[str, dict[float, dict[str, slicer.vtkMRMLScalarVolumeNode]]]:
    """Add a study folder's scans as volumes named "<subject> <contrast> day <d>", with day, contrast and patient
    attributes (and its tissue maps, "<subject> tissue <key>"); returns (subject, {day: {contrast: node}}).

    Scans of a timepoint that has registration transforms are added as stored (the study's
    original scanner space). Nothing is added if the folder cannot be read.
    """
    from HybridNeuroLib import mrml
    from HybridNeuroLib.mrml import study_nodes
    from HybridNeuroLib.mrml.scene import rollback_on_error
    from HybridNeuroLib.study import read_study

    study = read_study(studyFolder)  # raises one StudyError listing every problem before anything is added
    volumes: dict[float, dict[str, slicer.vtkMRMLScalarVolumeNode]] = {}
    with rollback_on_error(scene):
        for tp in study.timepoints:
            for key, image in tp.images.items():
                node = mrml.image_to_volume(image, scene, f"{study.subject} {key} day {study_nodes.day_text(tp.day)}")
                node.SetAttribute(study_nodes.DAY_ATTRIBUTE, study_nodes.day_text(tp.day))
                node.SetAttribute(study_nodes.CONTRAST_ATTRIBUTE, key)
                node.SetAttribute(study_nodes.PATIENT_ATTRIBUTE, study.subject)
                volumes.setdefault(tp.day, {})[key] = node
        if withTissue and study.tissue:
            for key, image in study.tissue.items():
                node = mrml.image_to_volume(image, scene, f"{study.subject} tissue {key}")
                node.SetAttribute(study_nodes.TISSUE_ATTRIBUTE, key)
                node.SetAttribute(study_nodes.PATIENT_ATTRIBUTE, study.subject)
    return study.subject, volumes


def lesionVolumeMl(segmentation: slicer.vtkMRMLSegmentationNode, reference: slicer.vtkMRMLVolumeNode) -> float:
    """Whole-lesion volume (all labels) of a segmentation, in mL, counted on the grid of ``reference``."""
    import SimpleITK as sitk

    from HybridNeuroLib import mrml

    labels = mrml.segmentation_to_labels(segmentation, reference)
    return float(np.count_nonzero(sitk.GetArrayViewFromImage(labels))) * float(np.prod(labels.GetSpacing())) / 1000.0


def addForecast(scene: slicer.vtkMRMLScene, patient: str, forecastFolder, *, reference: slicer.vtkMRMLVolumeNode,
                background: slicer.vtkMRMLVolumeNode, observed: list, predictedDays: list[float]) -> dict:
    """Add the output of ``hybridneuro predict`` (``forecastFolder``) to the scene; returns the new nodes by role.

    ``observed`` is [(day, segmentation node)] of the fitted lesions (copied into the lesion
    sequence, never modified); the forecast covers the observed and the predicted days, on the
    grid of ``reference`` (the first timepoint's scan); the density is shown over ``background``.
    Call inside ``rollback_on_error`` so that a failure leaves the scene as it was.
    """
    import json
    from pathlib import Path

    import SimpleITK as sitk

    from HybridNeuroLib import mrml
    from HybridNeuroLib.mrml.plots import add_volume_plot
    from HybridNeuroLib.mrml.sequences import add_synchronized_time_series
    from HybridNeuroLib.outputs import day_image_paths

    folder = Path(forecastFolder)
    report = json.loads((folder / "forecast.json").read_text(encoding="utf-8"))
    rows = {float(row["day"]): row for row in report["volumes"]}
    observedByDay = {float(day): node for day, node in observed}
    days = sorted(set(observedByDay) | {float(day) for day in predictedDays})
    missing = [day for day in days if day not in rows]
    if missing:
        raise ValueError(f"forecast folder {folder} has no result for day(s) {missing}; run the prediction again")
    base = _uniqueBase(scene, f"{patient} forecast")

    segmentations, densities, lesions = {}, [], []
    for day in days:
        densityPath, labelsPath = day_image_paths(folder, day)
        density = markOutput(mrml.image_to_volume(onGridOf(sitk.ReadImage(str(densityPath), sitk.sitkFloat32),
                                                           reference, labels=False), scene,
                                                  f"{base} density day {_dayText(day)}"), "predict", day, patient)
        densities.append(density)
        if day in observedByDay:
            lesions.append(observedByDay[day])
            continue
        labels = onGridOf(sitk.ReadImage(str(labelsPath)), reference, labels=True)
        segmentation = markOutput(mrml.labels_to_segmentation(labels, scene, f"{base} day {_dayText(day)}",
                                                              reference=reference), "predict", day, patient)
        segmentation.GetDisplayNode().SetVisibility(False)  # the browser's lesion shows the selected day
        segmentations[day] = segmentation
        lesions.append(segmentation)
    sequences, browser = add_synchronized_time_series(scene, base, days, {"density": densities, "lesion": lesions})
    for node in densities:  # their copies live in the density sequence
        scene.RemoveNode(node)
    markOutput(browser, "predict", patient=patient)
    proxies = {}
    for role, sequence in sequences.items():
        markOutput(sequence, "predict", patient=patient)
        proxies[role] = markOutput(browser.GetProxyNode(sequence), "predict", patient=patient)
        proxies[role].SetName(f"{base} {role}")
    mrml.show_density_overlay(proxies["density"], background)

    observedMl = [(day, lesionVolumeMl(observedByDay[day], reference)) for day in sorted(observedByDay)]
    forecastMl = [(day, rows[day]["whole_ml"], *rows[day]["whole_ml_range"]) for day in days]
    plot = add_volume_plot(scene, patient if base == f"{patient} forecast" else base, observed=observedMl,
                           forecast=forecastMl)
    for node in [plot.chart, *plot.tables.values(), *plot.series.values()]:
        markOutput(node, "predict", patient=patient)
    return {"days": [day for day in days if day not in observedByDay], "segmentations": segmentations,
            "density": proxies["density"], "lesion": proxies["lesion"], "sequences": sequences, "browser": browser,
            "plot": plot, "volumes": report["volumes"], "observedVolumesMl": observedMl}


def addScenarios(scene: slicer.vtkMRMLScene, patient: str, scenariosFolder, *, reference: slicer.vtkMRMLVolumeNode,
                 observed: list) -> dict:
    """Add the output of ``hybridneuro treat``: a chart with one line per scenario, hidden per-day segmentations.

    Call inside ``rollback_on_error`` so that a failure leaves the scene as it was.
    """
    import json
    from pathlib import Path

    import SimpleITK as sitk

    from HybridNeuroLib import mrml
    from HybridNeuroLib.mrml.plots import add_volume_plot

    folder = Path(scenariosFolder)
    record = json.loads((folder / "scenarios.json").read_text(encoding="utf-8"))
    segmentations = {}
    for scenario in record["scenarios"]:
        name = scenario["name"]
        for day, fileName in sorted((float(day), fileName) for day, fileName in scenario["label_images"].items()):
            labels = onGridOf(sitk.ReadImage(str(folder / scenario["folder"] / fileName)), reference, labels=True)
            node = markOutput(mrml.labels_to_segmentation(labels, scene, scene.GenerateUniqueName(
                f"{patient} {name} day {_dayText(day)}"), reference=reference), "treat", day, patient)
            node.GetDisplayNode().SetVisibility(False)
            segmentations.setdefault(name, {})[day] = node
    observedMl = [(float(day), lesionVolumeMl(node, reference)) for day, node in sorted(observed, key=lambda p: p[0])]
    curves = {scenario["name"]: [(float(row["day"]), float(row["whole_ml"])) for row in scenario["outcomes"]]
              for scenario in record["scenarios"]}
    name = scene.GenerateUniqueName(f"{patient} treatment scenarios")
    plot = add_volume_plot(scene, name, observed=observedMl, forecast=[], scenarios=curves)
    for node in [plot.chart, *plot.tables.values(), *plot.series.values()]:
        markOutput(node, "treat", patient=patient)
    return {"plot": plot, "segmentations": segmentations, "scenarios": record["scenarios"]}


def onGridOf(image: sitk.Image, reference: slicer.vtkMRMLVolumeNode, *, labels: bool) -> sitk.Image:
    """``image`` on the exact grid of ``reference``: header rounding (NIfTI stores float32) snapped away,
    a different grid resampled (nearest neighbour for ``labels``, linear otherwise)."""
    import SimpleITK as sitk

    from HybridNeuroLib import mrml
    from HybridNeuroLib.study.validate import same_grid

    geometry = mrml.volume_geometry(reference)
    target = geometry.image_from_array(np.zeros(geometry.shape_kji, np.uint8))
    if same_grid(image, target):
        return geometry.apply_to(image)
    return sitk.Resample(image, target, sitk.Transform(), sitk.sitkNearestNeighbor if labels else sitk.sitkLinear,
                         0.0, image.GetPixelID())


def _dayText(day: float) -> str:
    return f"{float(day):g}"


def _uniqueBase(scene: slicer.vtkMRMLScene, base: str) -> str:
    """``base``, or "``base`` 2", 3, … when a previous run already used it (its browser exists)."""
    candidate, number = base, 1
    while scene.GetFirstNodeByName(f"{candidate} browser") is not None:
        number += 1
        candidate = f"{base} {number}"
    return candidate


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
