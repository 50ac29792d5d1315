"""Every validation error path: one StudyError, naming file and field, input folder untouched."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from HybridNeuroLib.study import StudyError, read_study, validate_study
from study_helpers import folder_digest, like, make_study_folder, tiny_image


def edit_manifest(**changes):
    def apply(folder):
        manifest = json.loads((folder / "study.json").read_text())
        for key, value in changes.items():
            if value is ...:
                del manifest[key]
            else:
                manifest[key] = value
        (folder / "study.json").write_text(json.dumps(manifest))
    return apply


def write(relative, array=None, **image_options):
    def apply(folder):
        image = tiny_image(**image_options) if array is None else like(tiny_image(), array)
        sitk.WriteImage(image, str(folder / relative))
    return apply


def truncate(relative, keep_fraction=0.5):
    def apply(folder):
        data = (folder / relative).read_bytes()
        (folder / relative).write_bytes(data[: int(len(data) * keep_fraction)])
    return apply


def uncompressed_truncated(folder):
    (folder / "tp1" / "t2f.nii.gz").unlink()
    sitk.WriteImage(tiny_image(), str(folder / "tp1" / "t2f.nii"))
    truncate("tp1/t2f.nii", 0.7)(folder)


def image_2d(folder):
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((7, 8), np.float32)), str(folder / "tp1" / "t1n.nii.gz"))


def only_seg(folder):
    for name in ("t1n.nii.gz", "t2f.nii.gz"):
        (folder / "tp0" / name).unlink()


def nan_image(folder):
    # NRRD keeps NaN (ITK's NIfTI I/O turns NaN into 0 on reading)
    array = np.ones((6, 7, 8), np.float32)
    array[1, 2, 3] = np.nan
    (folder / "tp0" / "t2f.nii.gz").unlink()
    write("tp0/t2f.nrrd", array)(folder)


CASES = {
    # name: (mutation, expected file, expected field or None, text in the message)
    "missing manifest": (lambda f: (f / "study.json").unlink(), "study.json", None, "missing"),
    "invalid json": (lambda f: (f / "study.json").write_text('{"format": '), "study.json", None, "invalid JSON at line 1"),
    "not an object": (lambda f: (f / "study.json").write_text("[1, 2]"), "study.json", None, "JSON object"),
    "wrong format": (edit_manifest(format="hybridneuro-study/9"), "study.json", "format", "hybridneuro-study/1"),
    "subject type": (edit_manifest(subject=12), "study.json", "subject", "got int 12"),
    "disease": (edit_manifest(disease="flu"), "study.json", "disease", "'glioma'"),
    "missing key": (edit_manifest(disease=...), "study.json", "disease", "required key is missing"),
    "unknown key": (edit_manifest(notes="x"), "study.json", "notes", "unknown key"),
    "timepoints type": (edit_manifest(timepoints={"id": "tp0"}), "study.json", "timepoints", "non-empty list"),
    "timepoint entry type": (edit_manifest(timepoints=[{"id": "tp0", "day": 0}, "tp1"]), "study.json",
                             "timepoints[1]", "got str 'tp1'"),
    "day type": (edit_manifest(timepoints=[{"id": "tp0", "day": 0}, {"id": "tp1", "day": "45"}]), "study.json",
                 "timepoints[1].day", "must be a number"),
    "day bool": (edit_manifest(timepoints=[{"id": "tp0", "day": True}, {"id": "tp1", "day": 5}]), "study.json",
                 "timepoints[0].day", "got bool True"),
    "unknown timepoint key": (edit_manifest(timepoints=[{"id": "tp0", "day": 0, "date": "x"}, {"id": "tp1", "day": 5}]),
                              "study.json", "timepoints[0].date", "unknown key"),
    "non-increasing days": (edit_manifest(timepoints=[{"id": "tp0", "day": 50}, {"id": "tp1", "day": 50}]),
                            "study.json", "timepoints", "strictly increasing"),
    "duplicate id": (edit_manifest(timepoints=[{"id": "tp0", "day": 0}, {"id": "tp0", "day": 5}]), "study.json",
                     "timepoints[1].id", "duplicate"),
    "unsafe id": (edit_manifest(timepoints=[{"id": "../tp0", "day": 0}, {"id": "tp1", "day": 5}]), "study.json",
                  "timepoints[0].id", "folder name"),
    "predict days type": (edit_manifest(predict_days=[90, "180"]), "study.json", "predict_days[1]", "must be a number"),
    "predict days order": (edit_manifest(predict_days=[180, 90]), "study.json", "predict_days", "strictly increasing"),
    "tissue type": (edit_manifest(tissue=3), "study.json", "tissue", "relative"),
    "missing timepoint folder": (lambda f: shutil.rmtree(f / "tp1"), "tp1/", None, "folder is missing"),
    "timepoint without image": (only_seg, "tp0/", None, "no image"),
    "unknown image key": (write("tp1/flair.nii.gz"), "tp1/flair.nii.gz", None, "unknown image key 'flair'"),
    "two files one key": (lambda f: sitk.WriteImage(tiny_image(), str(f / "tp0" / "t1n.nrrd")), "tp0/", None,
                          "several files for key 't1n'"),
    "corrupt file": (lambda f: (f / "tp1" / "t1n.nii.gz").write_bytes(b"not an image" * 20), "tp1/t1n.nii.gz", None,
                     "unreadable or corrupt"),
    "truncated gz": (truncate("tp1/t1n.nii.gz"), "tp1/t1n.nii.gz", None, "truncated"),
    "truncated nii": (uncompressed_truncated, "tp1/t2f.nii", None, "truncated"),
    "2D image": (image_2d, "tp1/t1n.nii.gz", None, "is 2D"),
    "single slice": (write("tp1/t1n.nii.gz", shape_kji=(1, 7, 8)), "tp1/t1n.nii.gz", None, "3D volume"),
    "NaN voxels": (nan_image, "tp0/t2f.nrrd", None, "NaN"),
    "mismatched size": (write("tp1/t2f.nii.gz", shape_kji=(6, 7, 9)), "tp1/t2f.nii.gz", None,
                        "size (9, 7, 6) differs from tp1/t1n.nii.gz's (8, 7, 6)"),
    "mismatched origin": (write("tp1/t2f.nii.gz", origin=(0.0, 0.0, 0.0)), "tp1/t2f.nii.gz", None,
                          "spacing/origin/direction differ"),
    "bad labels": (write("tp0/seg.nii.gz", np.full((6, 7, 8), 4, np.uint8)), "tp0/seg.nii.gz", None,
                   "unknown label values [4]"),
    "fractional labels": (write("tp0/seg.nii.gz", np.full((6, 7, 8), 0.5, np.float32)), "tp0/seg.nii.gz", None,
                          "integers"),
    "missing tissue map": (lambda f: (f / "tissue" / "csf.nii.gz").unlink(), "tissue/", None, "no 'csf' tissue map"),
    "tissue out of range": (write("tissue/wm.nii.gz", np.full((6, 7, 8), 255.0, np.float32)), "tissue/wm.nii.gz",
                            None, "[0, 1]"),
    "missing tissue folder": (lambda f: shutil.rmtree(f / "tissue"), "tissue/", None, "missing"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_problem_is_reported_with_file_and_field(tmp_path, name):
    mutate, where, field, text = CASES[name]
    folder = make_study_folder(tmp_path / "study")
    mutate(folder)
    before = folder_digest(folder)
    with pytest.raises(StudyError) as caught:
        read_study(folder)
    matching = [p for p in caught.value.problems if p.where == where and p.field == field]
    assert matching, f"no problem for {where} {field}: {caught.value.problems}"
    assert any(text in p.message for p in matching), caught.value.problems
    message = str(caught.value)
    assert where in message and (field is None or field in message) and str(folder) in message
    assert folder_digest(folder) == before  # nothing written into the input


def test_all_problems_are_reported_at_once(tmp_path):
    folder = make_study_folder(tmp_path / "study")
    edit_manifest(subject=7, notes="x")(folder)
    truncate("tp1/t1n.nii.gz")(folder)
    write("tp0/t2f.nii.gz", shape_kji=(5, 7, 8))(folder)
    write("tp1/dwi.nii.gz")(folder)
    with pytest.raises(StudyError) as caught:
        validate_study(folder)
    found = {(p.where, p.field) for p in caught.value.problems}
    assert {("study.json", "subject"), ("study.json", "notes"), ("tp1/t1n.nii.gz", None),
            ("tp0/t2f.nii.gz", None), ("tp1/dwi.nii.gz", None)} <= found
    assert str(caught.value).count("\n  - ") == len(caught.value.problems) >= 5


def test_valid_folder_passes(tmp_path):
    assert validate_study(make_study_folder(tmp_path / "study")) is None


def test_missing_folder(tmp_path):
    with pytest.raises(StudyError, match="does not exist"):
        read_study(tmp_path / "nowhere")


def test_study_error_is_a_value_error_for_the_cli():
    assert issubclass(StudyError, ValueError)
