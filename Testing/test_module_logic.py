"""The module's console API end to end on a real MRML scene (slicer-core): segment → fit → predict → treat.

    $ OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q Testing/test_module_logic.py

A small synthetic study (4 mm voxels, three visits) is loaded into the scene the way a user
would (one volume per file, a day per volume, tissue maps); ``HybridNeuroLogic`` then runs
the three steps in background CLI processes with fast settings. Checked: the nodes it adds
and their names, the sequence's days, the parameter table, the plot's series, that input
nodes are untouched, and that bad input, a failing worker and a cancelled job leave the
scene as it was with a message saying what to do.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import SimpleITK as sitk

from test_module_ui import MODULE_DIR, forget_module_code

DAYS = (0, 20, 40)
CONTRASTS = ("t1n", "t1c", "t2w", "t2f")
PATIENT = "sub-01"
FAST_FIT = dict(voxelMm=4, starts=1, iterations=5, members=1)


@pytest.fixture(scope="module")
def logic_module():
    import sys

    forget_module_code()  # a stubbed import left by another test module must not be reused
    sys.path.insert(0, str(MODULE_DIR))
    from HybridNeuroModule import Logic

    yield Logic
    sys.path.remove(str(MODULE_DIR))
    forget_module_code()


def headless_scene():
    """What the ``mrml`` fixture builds (a scene, its logics, three slice views), plus a plot view."""
    from HybridNeuroLib.mrml import create_headless_scene

    context = create_headless_scene()
    for view in ("Red", "Yellow", "Green"):
        context.scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode").SetLayoutName(view)
    context.scene.AddNewNodeByClass("vtkMRMLPlotViewNode")
    return context


def load_study_volumes(scene, study) -> dict:
    """Each file as its own volume named like a user's file, with its day; tissue maps tagged."""
    volumes = {}
    for n, day in enumerate(DAYS):
        for key in CONTRASTS:
            node = _add(scene, study / f"tp{n}" / f"{key}.nii.gz", f"{key} visit {n + 1}")
            node.SetAttribute("HybridNeuro.day", str(day))
            volumes[node.GetName()] = node
    for key in ("gm", "wm", "csf"):
        node = _add(scene, study / "tissue" / f"{key}.nii.gz", f"tissue {key}")
        node.SetAttribute("HybridNeuro.tissue", key)
        volumes[node.GetName()] = node
    return volumes


def _add(scene, path, name):
    from HybridNeuroLib.mrml import image_to_volume

    return image_to_volume(sitk.ReadImage(str(path)), scene, name)


def snapshot(node) -> dict:
    """Everything about an input node that a step must not change."""
    import vtk

    from HybridNeuroLib.mrml import volume_array

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return {"voxels": volume_array(node), "matrix": [matrix.GetElement(r, c) for r in range(4) for c in range(4)],
            "name": node.GetName(), "attributes": {a: node.GetAttribute(a) for a in node.GetAttributeNames() or ()},
            "mtime": (node.GetMTime(), node.GetImageData().GetMTime())}


def assert_unchanged(node, before: dict) -> None:
    after = snapshot(node)
    np.testing.assert_array_equal(after.pop("voxels"), before["voxels"])
    assert after == {key: value for key, value in before.items() if key != "voxels"}, node.GetName()


def node_ids(scene) -> set[str]:
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}


@pytest.fixture(scope="module")
def pipeline(logic_module, tmp_path_factory):
    """The three steps run once on the synthetic study; returns what the tests inspect."""
    from HybridNeuroLib.synth import generate_subject
    from HybridNeuroLib.synth.parameters import SubjectParameters

    fast = SubjectParameters(dw_mm2_per_day=0.3, rho_per_day=0.03, detection_radius_mm=8.0)
    subject = generate_subject(1, tmp_path_factory.mktemp("subject") / "s1", days=DAYS, predict_days=(60,),
                               voxel_mm=4, parameters=fast)
    context = headless_scene()
    scene = context.scene
    inputs = load_study_volumes(scene, subject.study_folder)
    before = {name: snapshot(node) for name, node in inputs.items()}
    logic = logic_module.HybridNeuroLogic(scene=scene, workDirectory=tmp_path_factory.mktemp("work"))
    progress = []
    lesions = logic.segmentLesions(patient=PATIENT, forceCpu=True, onProgress=lambda s, f: progress.append((s, f)))
    lesion_snapshots = [(node.GetMTime(), node.GetSegmentation().GetMTime()) for node in lesions]
    fitted = logic.fitModel(**FAST_FIT)
    forecast = logic.predict([60, 90])
    shown = {"predict": plot_view_charts(scene)}
    scenarios = logic.treatmentScenarios([60, 90], rtStartDay=40, rtFractions=10)  # untreated vs one RT plan
    shown["treat"] = plot_view_charts(scene)
    return dict(context=context, scene=scene, subject=subject, inputs=inputs, before=before, logic=logic,
                lesions=lesions, lesion_snapshots=lesion_snapshots, fitted=fitted, forecast=forecast,
                scenarios=scenarios, progress=progress, shown=shown)


def plot_view_charts(scene) -> list[str]:
    return [scene.GetNthNodeByClass(i, "vtkMRMLPlotViewNode").GetPlotChartNodeID()
            for i in range(scene.GetNumberOfNodesByClass("vtkMRMLPlotViewNode"))]


# -- end to end -------------------------------------------------------------------------
def test_segmentations_are_named_per_day_and_find_the_lesion(pipeline):
    from HybridNeuroLib.mrml import segmentation_to_labels

    lesions, inputs = pipeline["lesions"], pipeline["inputs"]
    assert [node.GetName() for node in lesions] == [f"{PATIENT} lesion day {day}" for day in DAYS]
    assert [node.GetAttribute("HybridNeuro.day") for node in lesions] == ["0", "20", "40"]
    for n, node in enumerate(lesions):
        reference = inputs[f"t1n visit {n + 1}"]  # the timepoint's first contrast gives the grid
        labels = sitk.GetArrayFromImage(segmentation_to_labels(node, reference)) > 0
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(pipeline["subject"].study_folder / f"tp{n}" / "seg.nii.gz")))
        dice = 2 * np.count_nonzero(labels & (truth > 0)) / (np.count_nonzero(labels) + np.count_nonzero(truth))
        assert dice > 0.7, (node.GetName(), dice)
    fractions = [fraction for step, fraction in pipeline["progress"] if step == "segment"]
    assert fractions and fractions == sorted(fractions) and fractions[-1] == 1.0  # progress reached the caller
    assert_terminology(lesions + list(pipeline["forecast"].segmentations.values()))


def assert_terminology(nodes) -> None:
    """Every segment of every node has the SNOMED CT code of its label (DICOM SEG export reads it)."""
    from HybridNeuroLib.labels import BRATS_LABELS
    from HybridNeuroLib.mrml.segmentations import segment_terminology

    for node in nodes:
        segmentation = node.GetSegmentation()
        for label in BRATS_LABELS:
            segment = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName(label.name))
            assert segment_terminology(segment).split("~")[2] == f"SCT^{label.snomed.value}^{label.snomed.meaning}"


def test_parameter_table_has_growth_parameters_with_intervals(pipeline):
    from HybridNeuroLib.mrml.tables import table_rows

    fitted = pipeline["fitted"]
    assert fitted.table.GetName() == f"{PATIENT} physics fit parameters"  # patient carried by the lesions
    assert (fitted.folder / "params.json").is_file() and fitted.observedDays == [0.0, 20.0, 40.0]
    rows = {row["parameter"]: row for row in table_rows(fitted.table)}
    assert {"D_w", "ρ"} <= set(rows)
    for name, unit, bounds in (("D_w", "mm²/day", (0.02, 1.5)), ("ρ", "1/day", (0.005, 0.2))):
        row = rows[name]
        assert row["unit"] == unit and bounds[0] <= row["low"] <= row["value"] <= row["high"] <= bounds[1], row
    assert rows["D_w"]["value"] == pytest.approx(fitted.parameters["D_w_mm2_per_day"])
    assert [rows["D_w"]["low"], rows["D_w"]["high"]] == pytest.approx(fitted.parameters["intervals"]["D_w_mm2_per_day"])


def test_forecast_nodes_days_and_display(pipeline):
    from HybridNeuroLib.mrml import volume_array

    scene, forecast = pipeline["scene"], pipeline["forecast"]
    assert forecast.days == [60.0, 90.0]
    assert {day: node.GetName() for day, node in forecast.segmentations.items()} == {
        60.0: f"{PATIENT} forecast day 60", 90.0: f"{PATIENT} forecast day 90"}
    for sequence in forecast.sequences.values():
        values = [sequence.GetNthIndexValue(i) for i in range(sequence.GetNumberOfDataNodes())]
        assert values == ["0", "20", "40", "60", "90"] and sequence.GetIndexName() == "day"
        assert sequence.GetIndexUnit() == "d"
    assert forecast.browser.GetName() == f"{PATIENT} forecast browser"
    assert forecast.browser.GetMasterSequenceNode() is forecast.sequences["density"]
    assert forecast.browser.IsSynchronizedSequenceNode(forecast.sequences["lesion"], True)
    assert forecast.browser.GetSelectedItemNumber() == 4  # starts at the last predicted day
    # the density is a heat map over the latest scan in every slice view
    latest = pipeline["inputs"]["t1n visit 3"]
    assert forecast.density.GetName() == f"{PATIENT} forecast density"
    assert forecast.density.GetDisplayNode().GetColorNodeID() == "vtkMRMLPETProceduralColorNodePET-Heat"
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
        composite = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        assert (composite.GetBackgroundVolumeID(), composite.GetForegroundVolumeID()) == (
            latest.GetID(), forecast.density.GetID())
    density = volume_array(forecast.density)
    assert density.min() >= 0.0 and density.max() <= 1.0 and np.count_nonzero(density > 0.25) > 0
    # forecast lesions grow and match forecast.json
    whole = [row["whole_ml"] for row in forecast.volumes]
    assert [row["day"] for row in forecast.volumes] == [0.0, 20.0, 40.0, 60.0, 90.0]
    assert whole == sorted(whole) and whole[-1] > whole[2]


def test_volume_plot_has_observed_points_and_forecast_band(pipeline):
    from HybridNeuroLib.mrml import segmentation_to_labels

    plot = pipeline["forecast"].plot
    assert plot.chart.GetName() == f"{PATIENT} lesion volume"
    names = [plot.chart.GetNthPlotSeriesNode(i).GetName() for i in range(plot.chart.GetNumberOfPlotSeriesNodes())]
    assert names == [f"{PATIENT} {s}" for s in ("observed", "forecast", "forecast low", "forecast high")]
    observed = plot.series["observed"]
    assert observed.GetLineStyle() == observed.LineStyleNone and observed.GetMarkerStyle() != observed.MarkerStyleNone
    assert plot.series["forecast"].GetLineStyle() == observed.LineStyleSolid
    # the observed points are the lesions' volumes; the band encloses the forecast
    table = plot.tables["observed"].GetTable()
    days = [table.GetValueByName(r, "day").ToDouble() for r in range(table.GetNumberOfRows())]
    assert days == [0.0, 20.0, 40.0]
    for r, (node, visit) in enumerate(zip(pipeline["lesions"], (1, 2, 3))):
        labels = segmentation_to_labels(node, pipeline["inputs"][f"t1n visit {visit}"])
        expected = np.count_nonzero(sitk.GetArrayViewFromImage(labels)) * np.prod(labels.GetSpacing()) / 1000
        assert table.GetValueByName(r, "volume_ml").ToDouble() == pytest.approx(expected)
    forecast = plot.tables["forecast"].GetTable()
    for r in range(forecast.GetNumberOfRows()):
        low, value, high = (forecast.GetValueByName(r, c).ToDouble() for c in ("low_ml", "volume_ml", "high_ml"))
        assert low <= value <= high
    assert pipeline["shown"]["predict"] == [plot.chart.GetID()]  # the plot view showed it


def test_treatment_scenarios_are_lines_of_a_chart_with_lesions_per_day(pipeline):
    scenarios = pipeline["scenarios"]
    names = [scenario["name"] for scenario in scenarios.scenarios]
    assert len(names) == 2 and names[0] == "untreated"
    chart = scenarios.plot.chart
    series = [chart.GetNthPlotSeriesNode(i).GetName() for i in range(chart.GetNumberOfPlotSeriesNodes())]
    assert series == [f"{PATIENT} treatment scenarios {s}" for s in ("observed", *names)]
    assert {name: sorted(days) for name, days in scenarios.segmentations.items()} == {name: [60.0, 90.0]
                                                                                     for name in names}
    assert scenarios.segmentations["untreated"][90.0].GetName() == f"{PATIENT} untreated day 90"
    assert pipeline["shown"]["treat"] == [chart.GetID()]
    final = {s["name"]: s["outcomes"][-1] for s in scenarios.scenarios}
    assert final[names[1]]["day"] == final["untreated"]["day"] == 90.0
    assert final[names[1]]["cells_ml"] < final["untreated"]["cells_ml"]  # radiotherapy kills cells
    table = scenarios.plot.tables["untreated"].GetTable()
    assert table.GetValueByName(table.GetNumberOfRows() - 1, "volume_ml").ToDouble() == pytest.approx(
        final["untreated"]["whole_ml"])


def test_inputs_are_untouched_and_every_new_node_is_marked(pipeline):
    for name, node in pipeline["inputs"].items():
        assert_unchanged(node, pipeline["before"][name])
    # fitting and predicting only read the segmentations
    assert [(n.GetMTime(), n.GetSegmentation().GetMTime()) for n in pipeline["lesions"]] == pipeline["lesion_snapshots"]
    scene = pipeline["scene"]
    data = ("vtkMRMLScalarVolumeNode", "vtkMRMLSegmentationNode", "vtkMRMLTableNode", "vtkMRMLPlotChartNode",
            "vtkMRMLPlotSeriesNode", "vtkMRMLSequenceNode", "vtkMRMLSequenceBrowserNode")
    inputs = {node.GetID() for node in pipeline["inputs"].values()}
    for i in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(i)
        if node.GetClassName() in data and node.GetID() not in inputs:
            assert node.GetAttribute("HybridNeuro.output") in ("segment", "fit", "predict", "treat"), node.GetName()


# -- failures: the scene as before, a message saying what to do ------------------------------
def test_bad_inputs_are_refused_before_any_work(logic_module, mrml, tmp_path):
    from conftest import make_oblique_image
    from HybridNeuroLib.mrml import image_to_volume
    from HybridNeuroLib.mrml.study_nodes import StudyInputError

    assert logic_module.HybridNeuroLogic().scene is mrml.scene  # console use: the scene is slicer.mrmlScene
    logic = logic_module.HybridNeuroLogic(workDirectory=tmp_path)

    def refused(*words, **options):
        count = mrml.scene.GetNumberOfNodes()
        with pytest.raises(StudyInputError) as error:
            logic.segmentLesions(**options)
        for word in words:
            assert word in str(error.value)
        assert mrml.scene.GetNumberOfNodes() == count
        assert not any(logic.workDirectory.iterdir()), "a refused step must not leave files behind"

    refused("no volumes", "load")
    first = image_to_volume(make_oblique_image(), mrml.scene, "FLAIR visit 1")
    second = image_to_volume(make_oblique_image(seed=1), mrml.scene, "FLAIR visit 2")
    refused("'FLAIR visit 1' has no day", "'FLAIR visit 2' has no day", "HybridNeuro.day")  # all at once
    first.SetAttribute("HybridNeuro.day", "60")
    second.SetAttribute("HybridNeuro.day", "0")
    refused("days out of order", "'FLAIR visit 2' (day 0)", volumes=[first, second])
    # in the scene the order comes from the days; the shipped model then needs four contrasts, but
    # the volumes' contrasts are known (from their names), so the CLI is what would refuse them
    assert [(tp.day, list(tp.volumes)) for tp in logic.timepoints()] == [(0.0, ["t2f"]), (60.0, ["t2f"])]
    third = image_to_volume(make_oblique_image(seed=2), mrml.scene, "scan")
    third.SetAttribute("HybridNeuro.day", "90")
    refused("'scan' (day 90): its contrast is unknown")
    with pytest.raises(StudyInputError, match="no fitted model"):
        logic.predict([120])
    with pytest.raises(StudyInputError, match="no lesion segmentations"):
        logic.fitModel()


def test_days_come_from_dicom_acquisition_dates(logic_module, mrml):
    from conftest import make_oblique_image
    from HybridNeuroLib.mrml import image_to_volume

    dates = {"1.2.3": "20240105", "4.5.6": "20240305"}
    logic = logic_module.HybridNeuroLogic(scene=mrml.scene)
    logic.dicomValue = lambda uid, tag: {"0008,0022": dates.get(uid, ""), "0010,0010": "Doe^Jane"}.get(tag, "")
    nodes = []
    for uids in ("1.2.3 1.2.4", "4.5.6"):
        node = image_to_volume(make_oblique_image(), mrml.scene, "T1ce")
        node.SetAttribute("DICOM.instanceUIDs", uids)
        nodes.append(node)
    assert list(logic.volumeDays(nodes).values()) == [0.0, 60.0]
    nodes[1].SetAttribute("HybridNeuro.day", "59")  # the user's correction wins over the date
    assert [tp.day for tp in logic.timepoints(nodes)] == [0.0, 59.0]
    assert logic.patientName(nodes) == "Doe Jane"


def test_failing_worker_leaves_the_scene_unchanged(pipeline, logic_module):
    scene, logic = pipeline["scene"], pipeline["logic"]
    ids, runs = node_ids(scene), sorted(logic.workDirectory.iterdir())
    with pytest.raises(logic_module.HybridNeuroError) as error:
        logic.fitModel(pipeline["lesions"], voxelMm=4, iterations=0)  # refused by the worker
    message = str(error.value)
    assert "hybridneuro fit failed" in message and "iterations must be ≥ 1" in message
    assert "scene is unchanged" in message and "run the step again" in message
    assert node_ids(scene) == ids and sorted(logic.workDirectory.iterdir()) == runs
    assert logic.lastFit is pipeline["fitted"]


def test_cancel_keeps_no_partial_output_and_adds_no_node(pipeline, logic_module):
    scene, logic = pipeline["scene"], pipeline["logic"]
    ids, runs = node_ids(scene), sorted(logic.workDirectory.iterdir())
    step = logic.segmentLesions(patient=PATIENT, forceCpu=True, blocking=False)
    assert isinstance(step, logic_module.StepJob) and step.poll() is None
    deadline = time.monotonic() + 120
    while step.job.progress is None and step.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # until it is really segmenting
    step.cancel()
    with pytest.raises(logic_module.HybridNeuroError, match="cancelled; the scene is unchanged"):
        step.wait()
    assert step.done and step.job._process.poll() is not None
    assert node_ids(scene) == ids
    assert sorted(logic.workDirectory.iterdir()) == runs  # the run's study copy and staging folder are gone


def test_a_fit_without_tissue_maps_derives_them_from_the_atlas_into_the_scene(logic_module, tmp_path):
    """A user's own scans rarely come with tissue maps: the fit derives them and keeps them in the scene."""
    from HybridNeuroLib.mrml import labels_to_segmentation
    from HybridNeuroLib.mrml.study_nodes import DAY_ATTRIBUTE, OUTPUT_ATTRIBUTE, TISSUE_ATTRIBUTE, tissue_volumes
    from HybridNeuroLib.synth import generate_subject
    from HybridNeuroLib.synth.parameters import SubjectParameters

    fast = SubjectParameters(dw_mm2_per_day=0.3, rho_per_day=0.03, detection_radius_mm=8.0)
    subject = generate_subject(2, tmp_path / "s2", days=DAYS, predict_days=(), voxel_mm=4, parameters=fast)
    scene = headless_scene().scene
    lesions = {}
    for n, day in enumerate(DAYS):
        scans = {key: _add(scene, subject.study_folder / f"tp{n}" / f"{key}.nii.gz", f"{key} visit {n + 1}")
                 for key in CONTRASTS}
        for node in scans.values():
            node.SetAttribute(DAY_ATTRIBUTE, str(day))
        seg = sitk.ReadImage(str(subject.study_folder / f"tp{n}" / "seg.nii.gz"))
        lesions[float(day)] = labels_to_segmentation(seg, scene, f"lesion {n + 1}", reference=scans["t1n"])
    before = {node.GetID(): snapshot(node) for node in
              (scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
               for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")))}
    assert tissue_volumes(scene) == {}
    logic = logic_module.HybridNeuroLogic(scene=scene, workDirectory=tmp_path / "work")
    lines = []
    fitted = logic.fitModel(lesions, patient=PATIENT, onLog=lines.append, **FAST_FIT)
    assert any("deriving gm/wm/csf tissue maps" in line for line in lines)
    assert (fitted.folder / "tissue" / "gm.nii.gz").is_file()
    assert abs(fitted.parameters["D_w_mm2_per_day"] / 0.3 - 1) < 0.5   # usable maps: measured 0.28 vs truth 0.3
    derived = tissue_volumes(scene)
    assert sorted(derived) == ["csf", "gm", "wm"]
    for key, node in derived.items():
        assert node.GetName() == f"{PATIENT} {key} (atlas-derived)"
        assert node.GetAttribute(TISSUE_ATTRIBUTE) == key and node.GetAttribute(OUTPUT_ATTRIBUTE) == "fit"
    from HybridNeuroLib.mrml import volume_array
    brain = sum(volume_array(node) for node in derived.values())
    assert 0.8 < float(brain.max()) < 1.2 and (brain > 0.5).mean() > 0.1     # probabilities of a brain
    forecast = logic.predict([60])          # the forecast reads the derived maps from the fit, too
    assert (volume_array(forecast.density) > 0.25).sum() > 0
    for node_id, state in before.items():
        assert_unchanged(scene.GetNodeByID(node_id), state)


# -- first use: packages, Windows code pages, the sample case, the model choice ----------------------
def test_a_step_whose_packages_are_missing_is_refused_before_any_work(pipeline, logic_module, monkeypatch):
    from HybridNeuroModule import Dependencies

    scene, logic = pipeline["scene"], pipeline["logic"]
    ids, runs = node_ids(scene), sorted(logic.workDirectory.iterdir())
    installed = Dependencies.installedVersion
    monkeypatch.setattr(Dependencies, "installedVersion", lambda name: None if name == "monai" else installed(name))
    assert logic.missingDependencies() == ["monai>=1.4"]
    steps = {"segment": lambda: logic.segmentLesions(patient=PATIENT),
             "fit": lambda: logic.fitModel(pipeline["lesions"], **FAST_FIT),
             "predict": lambda: logic.predict([60]), "treat": lambda: logic.treatmentScenarios([60]),
             "sample case": lambda: logic.loadSampleCase()}
    for step, call in steps.items():
        with pytest.raises(logic_module.HybridNeuroError) as error:
            call()
        message = str(error.value)
        assert message.startswith(f"{step} needs Python packages") and "monai>=1.4" in message, message
        assert "Install dependencies" in message and "ensureDependencies" in message
    assert node_ids(scene) == ids and sorted(logic.workDirectory.iterdir()) == runs  # nothing started


def test_the_child_writes_utf8_whatever_the_code_page(logic_module, monkeypatch, tmp_path):
    """A Windows ANSI code page cannot encode ρ: the child is told to write UTF-8 and is read as UTF-8."""
    import subprocess
    import sys

    text = "D_w 0.2 mm²/day, ρ 0.025 /day, Δt ≤ h²/(2·d·D), 95 % ≥ 0.8"
    printer = [sys.executable, "-c", f"print({text!r})"]
    monkeypatch.setenv("PYTHONIOENCODING", "cp1252")  # what Python uses for a pipe on Windows
    monkeypatch.delenv("PYTHONUTF8", raising=False)
    plain = subprocess.run(printer, capture_output=True, env=dict(__import__("os").environ))
    assert plain.returncode != 0 and b"UnicodeEncodeError" in plain.stderr  # the failure this guards against

    logic = logic_module.HybridNeuroLogic(scene=headless_scene().scene, workDirectory=tmp_path)
    lines = []
    step = logic._start("print", [], logic._newRun("print"), None, lambda: "done", False, "auto", None,
                        lines.append, False, command=printer)
    assert step.wait() == "done" and lines == [text]
    environment = logic._environment(device="mps")
    assert (environment["PYTHONUTF8"], environment["PYTHONIOENCODING"]) == ("1", "utf-8")
    assert environment["HYBRIDNEURO_DEVICE"] == "mps" and "CUDA_VISIBLE_DEVICES" not in environment
    assert logic._environment(forceCpu=True)["CUDA_VISIBLE_DEVICES"] == ""
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        logic._environment(device="gpu")


def test_the_sample_case_loads_in_the_background(logic_module, tmp_path):
    scene = headless_scene().scene
    logic = logic_module.HybridNeuroLogic(scene=scene, workDirectory=tmp_path)
    progress, lines = [], []
    step = logic.loadSampleCase(blocking=False, onProgress=lambda s, f: progress.append((s, f)), onLog=lines.append)
    assert isinstance(step, logic_module.StepJob) and not step.done  # returned at once, the child works
    volumes = step.wait()
    assert sorted(volumes) == [0.0, 60.0, 120.0] and sorted(volumes[60.0]) == list(sorted(CONTRASTS))
    nodes = [node for contrasts in volumes.values() for node in contrasts.values()]
    assert all(node.GetAttribute("HybridNeuro.synthetic") == "1" for node in nodes)
    assert nodes[0].GetName() == "synth-2024 t1n day 0" or nodes[0].GetName().startswith("synth-2024 ")
    assert sorted(study_tissue(scene)) == ["csf", "gm", "wm"]
    assert progress and progress[-1] == ("sample case", 1.0)
    assert any(line.startswith("study: ") for line in lines)


def study_tissue(scene) -> dict:
    from HybridNeuroLib.mrml.study_nodes import tissue_volumes

    return tissue_volumes(scene)


def test_a_bundle_chosen_in_the_model_selector_segments_and_shows_its_card(pipeline, logic_module, tmp_path):
    from test_segment_bundle import make_bundle

    from HybridNeuroModule.Models import ModelChoice, modelCard, syntheticModelWarning

    make_bundle(tmp_path / "bundle")
    choice = ModelChoice("bundle", str(tmp_path / "bundle"))
    assert choice.problems() == [] and not choice.syntheticOnly
    assert "tiny BraTS test bundle" in modelCard(choice)
    scans = [node for name, node in pipeline["inputs"].items() if "visit" in name]
    assert syntheticModelWarning(choice, scans) is None
    assert "trained on synthetic subjects only" in syntheticModelWarning(ModelChoice(), scans)  # unmarked scans

    scene, logic = pipeline["scene"], pipeline["logic"]
    lines = []
    # the bundle at the subject's 4 mm (a Zoo BraTS bundle expects the CLI's default 1 mm)
    lesions = logic.segmentLesions(patient="bundle-run", device="cpu", onLog=lines.append, bundleSpacingMm=4,
                                   **choice.segmentArguments())
    assert [node.GetName() for node in lesions] == [f"bundle-run lesion day {day}" for day in DAYS]
    assert not any(line.startswith("WARNING") for line in lines)  # no synthetic-model warning for a bundle
    assert_terminology(lesions)
    for node in lesions:
        scene.RemoveNode(node)
    logic.lastLesions = pipeline["lesions"]

    # a folder that is not a bundle is refused before any work, naming what it lacks
    (tmp_path / "half" / "configs").mkdir(parents=True)
    ids, runs = node_ids(scene), sorted(logic.workDirectory.iterdir())
    from HybridNeuroLib.mrml.study_nodes import StudyInputError
    with pytest.raises(StudyInputError, match="lacks configs/inference.json, configs/metadata.json, models/model.pt"):
        logic.segmentLesions(bundleFolder=str(tmp_path / "half"))
    assert node_ids(scene) == ids and sorted(logic.workDirectory.iterdir()) == runs


def test_the_shipped_model_warns_on_scans_not_marked_synthetic(pipeline, logic_module):
    # the pipeline's scans were loaded like a user's files: the shipped model segmented them with a warning
    from HybridNeuroModule.Models import SYNTHETIC_WARNING

    step_lines = []
    logic = pipeline["logic"]
    step = logic.segmentLesions(patient=PATIENT, device="cpu", blocking=False, onLog=step_lines.append)
    step.cancel()
    with pytest.raises(logic_module.HybridNeuroError):
        step.wait()
    warnings = [line for line in step_lines if line.startswith("WARNING: ")]
    assert len(warnings) == 1 and SYNTHETIC_WARNING.split("{")[0] in warnings[0] and "'t1n visit 1'" in warnings[0]
