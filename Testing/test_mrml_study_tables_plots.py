"""Scene nodes → study folder (days, contrasts, problems), parameter tables and volume plots."""

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import make_oblique_image
from HybridNeuroLib.mrml import image_to_volume, labels_to_segmentation, volume_to_image
from HybridNeuroLib.mrml.plots import add_volume_plot
from HybridNeuroLib.mrml.study_nodes import (DAY_ATTRIBUTE, StudyInputError, collect_timepoints, scene_volumes,
                                             write_study_folder)
from HybridNeuroLib.mrml.tables import add_parameter_table, table_rows
from HybridNeuroLib.study import read_study


def _volume(scene, name, day=None, seed=0):
    node = image_to_volume(make_oblique_image(seed=seed), scene, name)
    if day is not None:
        node.SetAttribute(DAY_ATTRIBUTE, str(day))
    return node


def test_study_folder_holds_exact_copies_with_days_contrasts_and_labels(mrml, tmp_path):
    scene = mrml.scene
    flair0, t1c0 = _volume(scene, "FLAIR a", seed=1), _volume(scene, "T1ce a", seed=2)
    flair1 = _volume(scene, "FLAIR b", seed=3)
    timepoints = collect_timepoints({0: {"t2f": flair0, "t1c": t1c0}, 45.5: flair1})
    assert [(tp.day, list(tp.volumes)) for tp in timepoints] == [(0.0, ["t1c", "t2f"]), (45.5, ["t2f"])]
    labels = np.zeros((7, 9, 11), np.uint8)
    labels[2:4, 3:6, 4:8] = 2
    labels[3, 4, 5] = 3
    segmentations = [labels_to_segmentation(labels, scene, f"lesion {n}", reference=tp.reference)
                     for n, tp in enumerate(timepoints)]
    count = scene.GetNumberOfNodes()
    study = read_study(write_study_folder(tmp_path / "study", "sub-01", timepoints, segmentations=segmentations))
    assert study.subject == "sub-01" and study.days_observed == (0.0, 45.5)
    image = study.timepoints[0].images["t2f"]
    source = make_oblique_image(seed=1)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(source))
    np.testing.assert_allclose(image.GetDirection(), source.GetDirection(), atol=1e-6)  # NIfTI stores float32
    np.testing.assert_allclose(image.GetOrigin(), source.GetOrigin(), atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(study.timepoints[1].seg), labels)
    assert scene.GetNumberOfNodes() == count  # writing only reads the nodes


def test_a_volume_sequence_indexed_by_day_gives_the_timepoints(mrml):
    from HybridNeuroLib.mrml.study_nodes import sequence_volumes

    sequence = mrml.scene.AddNewNodeByClass("vtkMRMLSequenceNode", "FLAIR series")
    for day, seed in (("0", 1), ("45.5", 2)):
        sequence.SetDataNodeAtValue(_volume(mrml.scene, "FLAIR", seed=seed), day)
    timepoints = collect_timepoints(sequence_volumes(sequence))
    assert [(tp.day, list(tp.volumes)) for tp in timepoints] == [(0.0, ["t2f"]), (45.5, ["t2f"])]
    np.testing.assert_array_equal(sitk.GetArrayFromImage(volume_to_image(timepoints[1].reference)),
                                  sitk.GetArrayFromImage(make_oblique_image(seed=2)))
    named = mrml.scene.AddNewNodeByClass("vtkMRMLSequenceNode", "visits")
    named.SetIndexType(named.TextIndex)
    named.SetDataNodeAtValue(_volume(mrml.scene, "FLAIR", seed=3), "baseline")
    with pytest.raises(StudyInputError, match="index value 'baseline' is not a day"):
        sequence_volumes(named)


def test_every_problem_of_the_inputs_is_reported_at_once(mrml):
    scene = mrml.scene
    with pytest.raises(StudyInputError, match="no volumes"):
        collect_timepoints(scene_volumes(scene))
    a, b = _volume(scene, "FLAIR 1", day=0), _volume(scene, "flair 2", day=0)
    c = _volume(scene, "T2w 3")
    d = _volume(scene, "t1n 4", day="sixty")
    with pytest.raises(StudyInputError) as error:
        collect_timepoints([a, b, c, d])
    problems = error.value.problems
    assert any("two t2f volumes ('FLAIR 1', 'flair 2')" in p for p in problems)
    assert any("'T2w 3' has no day" in p for p in problems)
    assert any("'t1n 4': day nan is not a finite number" in p for p in problems)
    # label maps, tissue maps and HybridNeuro's own outputs are not scans
    tissue = _volume(scene, "gm")
    tissue.SetAttribute("HybridNeuro.tissue", "gm")
    _volume(scene, "density").SetAttribute("HybridNeuro.output", "predict")
    image_to_volume(sitk.Cast(make_oblique_image(), sitk.sitkUInt8), scene, "labels", labelmap=True)
    assert [node.GetName() for node in scene_volumes(scene)] == ["FLAIR 1", "flair 2", "T2w 3", "t1n 4"]


def test_parameter_table_rows_and_refusal(mrml):
    record = {"D_w_mm2_per_day": 0.3, "rho_per_day": 0.03, "front_speed_mm_per_day": 0.19,
              "seed": {"radius_mm": 4.0}, "intervals": {"D_w_mm2_per_day": [0.2, 0.4], "kind": "ensemble range"}}
    rows = table_rows(add_parameter_table(mrml.scene, "fit", record))
    assert [(r["parameter"], r["value"], r["low"], r["high"], r["unit"]) for r in rows] == [
        ("D_w", 0.3, 0.2, 0.4, "mm²/day"), ("ρ", 0.03, 0.03, 0.03, "1/day"),
        ("front speed", 0.19, 0.19, 0.19, "mm/day"), ("seed radius", 4.0, 4.0, 4.0, "mm")]
    count = mrml.scene.GetNumberOfNodes()
    with pytest.raises(ValueError, match="none of the parameters"):
        add_parameter_table(mrml.scene, "empty", {"model": "x"})
    assert mrml.scene.GetNumberOfNodes() == count


def test_volume_plot_series_styles_and_refusals(mrml):
    plot = add_volume_plot(mrml.scene, "s", observed=[(0, 1.0), (30, 2.0)], forecast=[(60, 3.0, 2.5, 3.5)],
                           scenarios={"RT": [(30, 2.0), (60, 2.2)]})
    assert list(plot.series) == ["observed", "forecast", "forecast low", "forecast high", "RT"]
    low = plot.series["forecast low"]
    assert low.GetLineStyle() == low.LineStyleDash and low.GetYColumnName() == "low_ml"
    assert plot.chart.GetYAxisTitle() == "whole lesion volume (mL)"
    count = mrml.scene.GetNumberOfNodes()
    for options in (dict(observed=[(30, 1.0), (0, 2.0)], forecast=[]),
                    dict(observed=[(0, float("nan"))], forecast=[]),
                    dict(observed=[], forecast=[(60, 3.0, 2.5)]),
                    dict(observed=[], forecast=[])):
        with pytest.raises(ValueError, match="volume plot 's'"):
            add_volume_plot(mrml.scene, "s", **options)
    assert mrml.scene.GetNumberOfNodes() == count
