"""Hostile and careless inputs through the CLI: each is refused with exit code 2 and a message naming
the culprit (file, field or option), no traceback, the inputs byte-identical and no output written.

Every bad input is built from one tiny valid study (16³ voxels of 4 mm, two timepoints with a
FLAIR and a lesion segmentation, tissue maps) or from one tiny fit of it; most cases stop in
validation, before any computation.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from fit_cases import grown_lesion, phantom_tissue
from HybridNeuroLib.cli import main
from HybridNeuroLib.fit.study_fit import grid_warnings
from HybridNeuroLib.segment.model import DEFAULT_MODEL_FOLDER
from HybridNeuroLib.study import Study, Timepoint, read_study, write_study
from HybridNeuroLib.study.images import ImageReadError, blank_image_warning, read_image
from study_helpers import folder_digest

SCAN, SEG, TISSUE = "tp1/t2f.nii.gz", "tp0/seg.nii.gz", "tissue/wm.nii.gz"
ROLES = {"scan": SCAN, "seg": SEG, "tissue": TISSUE}


# -- the tiny valid inputs -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def source_study(tmp_path_factory) -> Path:
    tissue = phantom_tissue(16, voxel_mm=4.0)
    labels, _ = grown_lesion(tissue, days=(0.0, 40.0))
    timepoints = tuple(Timepoint(f"tp{n}", day, {"t2f": sitk.Cast(seg, sitk.sitkFloat32) * 100.0}, seg)
                       for n, (day, seg) in enumerate(labels))
    maps = {name: tissue.geometry.image_from_array(getattr(tissue, name)) for name in ("gm", "wm", "csf")}
    return write_study(Study("phantom", "glioma", timepoints, (80.0,), maps), tmp_path_factory.mktemp("src") / "study")


@pytest.fixture(scope="module")
def source_fit(source_study, tmp_path_factory) -> Path:
    """ONE tiny fit of the source study (a few seconds), copied by the tests that damage it."""
    fit = tmp_path_factory.mktemp("fit") / "fit"
    args = ["fit", str(source_study), "--out", str(fit), "--voxel-mm", "4", "--starts", "1", "--iterations", "2",
            "--members", "0"]
    assert main(args) == 0
    return fit


@pytest.fixture
def study(source_study, tmp_path) -> Path:
    return Path(shutil.copytree(source_study, tmp_path / "study"))


def refused(args: list[str], culprits: list[str], inputs: list[Path], out: Path, capsys, mutate=None) -> str:
    """Run the CLI on damaged inputs; check exit 2, culprits named, no traceback, inputs intact, no output."""
    before = {folder: folder_digest(folder) for folder in inputs}
    siblings = sorted(out.parent.iterdir())
    capsys.readouterr()
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert f"hybridneuro {args[0]}: error: " in captured.err
    assert "Traceback" not in captured.err + captured.out
    for culprit in culprits:
        assert culprit in captured.err, (culprit, captured.err)
    for folder in inputs:
        assert folder_digest(folder) == before[folder], f"{folder} changed"
    assert not out.exists(), "a refused command created its output folder"
    assert sorted(out.parent.iterdir()) == siblings, "a refused command left something beside its output"
    return captured.err


def fit_refused(study: Path, tmp_path: Path, culprits: list[str], capsys, *options: str) -> str:
    out = tmp_path / "out"
    return refused(["fit", study, "--out", out, "--voxel-mm", "4", "--starts", "1", "--iterations", "2",
                    "--members", "0", *options], culprits, [study], out, capsys)


# -- damaged image files in each role ----------------------------------------------------------------
def _gz_text(path: Path) -> None:
    path.write_bytes(gzip.compress(b"this is a text file, not an image\n" * 20))


def _flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(255 - b for b in data[middle:middle + 16])
    path.write_bytes(bytes(data))


DAMAGE = {
    "zero-byte": lambda path: path.write_bytes(b""),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: len(path.read_bytes()) * 6 // 10]),
    "corrupt stream": _flip_middle,
    "random bytes": lambda path: path.write_bytes(np.random.default_rng(0).bytes(3000)),
    "text file": lambda path: path.write_text("patient notes, not an image\n"),
    "gzip of text": _gz_text,
}
DAMAGE_TEXT = {"zero-byte": "empty (0 bytes)", "truncated": "truncated", "corrupt stream": "corrupt compressed stream",
               "random bytes": "not gzip-compressed", "text file": "not gzip-compressed",
               "gzip of text": "no NIfTI-1/NIfTI-2 header"}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("role", list(ROLES))
def test_damaged_image_in_each_role_is_refused_by_name(study, tmp_path, capsys, role, damage):
    DAMAGE[damage](study / ROLES[role])
    message = fit_refused(study, tmp_path, [ROLES[role], DAMAGE_TEXT[damage]], capsys)
    assert message.count(" - ") == 1  # exactly the damaged file, nothing else


# -- non-finite voxels in each role and format ------------------------------------------------------
FORMATS = (".nii.gz", ".nii", ".nrrd", ".mha", ".nhdr", ".mhd")   # the last two: header + separate data file


def _replace_with(study: Path, relative: str, suffix: str, edit=None, pixel_type=None, compress=False) -> str:
    """Rewrite ``relative`` (a .nii.gz) in format ``suffix`` after ``edit(array)``; returns the new name."""
    image = sitk.ReadImage(str(study / relative))
    array = sitk.GetArrayFromImage(image)
    if edit is not None:
        array = array.astype(np.float32)
        edit(array)
    replaced = sitk.GetImageFromArray(array)
    replaced.CopyInformation(image)
    (study / relative).unlink()
    new = relative.removesuffix(".nii.gz") + suffix
    sitk.WriteImage(replaced if pixel_type is None else sitk.Cast(replaced, pixel_type), str(study / new),
                    useCompression=compress)
    return new


def _nan(array):
    array[3, 4, 5] = np.nan


def _inf(array):
    array[5, 4, 3] = -np.inf


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("value", ["NaN", "Inf"])
@pytest.mark.parametrize("role", list(ROLES))
def test_non_finite_voxels_are_refused_in_every_role_and_format(study, tmp_path, capsys, role, value, suffix):
    name = _replace_with(study, ROLES[role], suffix, _nan if value == "NaN" else _inf)
    if suffix in (".nii.gz", ".nii"):  # the reason for the raw check: ITK reads them as 0
        assert np.isfinite(sitk.GetArrayFromImage(sitk.ReadImage(str(study / name)))).all()
    expected = "1 NaN and 0 infinite" if value == "NaN" else "0 NaN and 1 infinite"
    fit_refused(study, tmp_path, [name, expected], capsys)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("suffix", FORMATS)
def test_truncated_file_in_every_format_is_refused(study, tmp_path, capsys, suffix, compress):
    name = _replace_with(study, SCAN, suffix, compress=compress)
    stem = name.split(".")[0]
    data_files = [p for p in study.glob(f"{stem}.*") if p != study / name] or [study / name]  # .nhdr/.mhd: data
    assert len(data_files) == 1
    DAMAGE["truncated"](data_files[0])
    fit_refused(study, tmp_path, [name], capsys)


def test_nifti_voxel_of_the_first_non_finite_value_is_named(tmp_path):
    array = np.zeros((5, 6, 7), np.float32)   # k, j, i
    array[4, 1, 6] = np.nan
    array[4, 5, 6] = np.inf
    sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / "x.nii"))
    with pytest.raises(ImageReadError) as caught:
        read_image(tmp_path / "x.nii", what="scan")
    assert "holds 1 NaN and 1 infinite voxel value(s) (first at voxel i, j, k = 6, 1, 4)" in str(caught.value)
    assert str(caught.value).startswith(f"scan {tmp_path / 'x.nii'}: ")


@pytest.mark.parametrize("role", ["study.json", SCAN])
def test_a_file_that_cannot_be_read_is_named(study, tmp_path, capsys, monkeypatch, role):
    """Permission denied (simulated: the tests may run as root, who may read anything)."""
    real_read_bytes, real_read_text = Path.read_bytes, Path.read_text

    def denied(method):
        def read(self, *args, **kwargs):
            if self == study / role:
                raise PermissionError(13, "Permission denied", str(self))
            return method(self, *args, **kwargs)
        return read
    monkeypatch.setattr(Path, "read_bytes", denied(real_read_bytes))
    monkeypatch.setattr(Path, "read_text", denied(real_read_text))
    out = tmp_path / "out"
    code = main(["fit", str(study), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and role in err and "cannot be read (Permission denied)" in err and "Traceback" not in err
    assert not out.exists()


def test_integer_nifti_and_clean_float_nifti_read_unchanged(tmp_path):
    """The raw check never alters what ITK reads (exact oracle: the written arrays)."""
    rng = np.random.default_rng(3)
    for dtype in (np.uint8, np.int16, np.float32, np.float64):
        array = (rng.random((4, 5, 6)) * 100).astype(dtype)
        for suffix in (".nii", ".nii.gz"):
            path = tmp_path / f"x{np.dtype(dtype).name}{suffix}"
            sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
            np.testing.assert_array_equal(sitk.GetArrayFromImage(read_image(path)), array)


# -- geometry and labels -----------------------------------------------------------------------------
def _shift_origin(study: Path, relative: str) -> None:
    image = sitk.ReadImage(str(study / relative))
    image.SetOrigin(tuple(v + 3.0 for v in image.GetOrigin()))
    sitk.WriteImage(image, str(study / relative))


def _resize(study: Path, relative: str) -> None:
    image = sitk.ReadImage(str(study / relative))
    sitk.WriteImage(image[:-1, :, :], str(study / relative))


GEOMETRY = {
    "scan origin vs its seg": (lambda s: _shift_origin(s, "tp0/t2f.nii.gz"), "tp0/", "spacing/origin/direction"),
    "scan size vs its seg": (lambda s: _resize(s, "tp0/t2f.nii.gz"), "tp0/", "differs from"),
    "tissue map size": (lambda s: _resize(s, TISSUE), "tissue/wm.nii.gz", "size (15, 16, 16) differs"),
    "tissue map origin": (lambda s: _shift_origin(s, "tissue/csf.nii.gz"), "tissue/csf.nii.gz", "origin"),
}


@pytest.mark.parametrize("case", list(GEOMETRY))
def test_geometry_mismatches_are_refused(study, tmp_path, capsys, case):
    mutate, culprit, text = GEOMETRY[case]
    mutate(study)
    fit_refused(study, tmp_path, [culprit, text], capsys)


LABELS = {"4 (BraTS 2021 ET)": (4, sitk.sitkUInt8, "unknown label values [4]"),
          "-1": (-1, sitk.sitkInt16, "unknown label values [-1]"),
          "2.5": (2.5, sitk.sitkFloat32, "must be integers"),
          "255": (255, sitk.sitkUInt8, "unknown label values [255]")}


@pytest.mark.parametrize("case", list(LABELS))
def test_labels_outside_the_glioma_label_set_are_refused(study, tmp_path, capsys, case):
    value, pixel_type, text = LABELS[case]

    def put(array):
        array[8, 8, 8] = value
    _replace_with(study, SEG, ".nii.gz", put, pixel_type)
    fit_refused(study, tmp_path, [SEG, text], capsys)


def test_two_files_for_one_tissue_map_are_refused(study, tmp_path, capsys):
    sitk.WriteImage(sitk.ReadImage(str(study / TISSUE)), str(study / "tissue/wm.nrrd"))
    fit_refused(study, tmp_path, ["tissue/", "several files for tissue map 'wm'"], capsys)
    simulate_refused(study / "tissue", tmp_path, [str(study / "tissue"), "several 'wm' images"], capsys, [study])


def test_tissue_probabilities_out_of_range_are_refused(study, tmp_path, capsys):
    _replace_with(study, TISSUE, ".nii.gz", lambda array: array.__imul__(255.0))
    fit_refused(study, tmp_path, [TISSUE, "[0, 1]"], capsys)


# -- transforms --------------------------------------------------------------------------------------
def _tfm(name: str, parameters: str, fixed: str = "0 0 0 0") -> bytes:
    return (f"#Insight Transform File V1.0\n#Transform 0\nTransform: {name}\nParameters: {parameters}\n"
            f"FixedParameters: {fixed}\n").encode()


# ITK's own reader aborts the whole process (heap corruption) on the short/unparseable lists below
TRANSFORMS = {
    "zero-byte": (b"", "empty"),
    "text": (b"not a transform\n", "not an ITK text transform"),
    "binary": (bytes(range(256)), "not an ITK text transform"),
    "NaN parameter": (_tfm("Euler3DTransform_double_3_3", "0 0 0 nan 0 0"), "NaN or infinite"),
    "overflowing parameter": (_tfm("Euler3DTransform_double_3_3", "0 0 0 0 0 1e400"), "NaN or infinite"),
    "word as parameter": (_tfm("Euler3DTransform_double_3_3", "0 0 0 0 0 x"), "not all numbers"),
    "too few parameters": (_tfm("Euler3DTransform_double_3_3", "0 0 0"), "needs 6 parameters, the file has 3"),
    "2D transform": (_tfm("Euler2DTransform_double_2_2", "0 0 0", "0 0"), "not supported"),
    "deformable transform": (_tfm("BSplineTransform_double_3_3", "1 2", "1"), "not supported"),
    "too few fixed parameters": (_tfm("AffineTransform_double_3_3", "1 0 0 0 1 0 0 0 1 0 0 0", "1"),
                                 "unreadable transform"),
}


@pytest.mark.parametrize("case", list(TRANSFORMS))
def test_bad_transform_files_are_refused(study, tmp_path, capsys, case):
    content, text = TRANSFORMS[case]
    (study / "transforms").mkdir()
    (study / "transforms" / "tp1.tfm").write_bytes(content)
    fit_refused(study, tmp_path, ["transforms/tp1.tfm", text], capsys)


# -- study.json ---------------------------------------------------------------------------------------
def _edit(**changes):
    def apply(study: Path) -> None:
        manifest = json.loads((study / "study.json").read_text())
        for key, value in changes.items():
            if value is ...:
                del manifest[key]
            else:
                manifest[key] = value
        (study / "study.json").write_text(json.dumps(manifest))
    return apply


def _write(content: bytes):
    return lambda study: (study / "study.json").write_bytes(content)


def _tp(*entries):
    return [{"id": i, "day": d} for i, d in entries]


MANIFESTS = {
    "invalid JSON": (_write(b'{"format": '), ["study.json", "invalid JSON"]),
    "empty file": (_write(b""), ["study.json", "invalid JSON"]),
    "not UTF-8": (_write(b'{"subject": "\xff\xfe"}'), ["study.json", "UTF-8"]),
    "a list": (_write(b"[1, 2]"), ["study.json", "JSON object"]),
    "missing format": (_edit(format=...), ["study.json format", "required key is missing"]),
    "missing subject": (_edit(subject=...), ["study.json subject", "required key is missing"]),
    "missing timepoints": (_edit(timepoints=...), ["study.json timepoints", "required key is missing"]),
    "subject int": (_edit(subject=12), ["study.json subject", "got int 12"]),
    "subject null": (_edit(subject=None), ["study.json subject", "got NoneType None"]),
    "subject traversal": (_edit(subject="../../etc/evil"), ["study.json subject", "'/'"]),
    "subject slash": (_edit(subject="a/b"), ["study.json subject", "'/'"]),
    "subject backslash": (_edit(subject="..\\evil"), ["study.json subject", "'\\\\'"]),
    "subject control character": (_edit(subject="ab\x07c"), ["study.json subject", "control"]),
    "subject newline": (_edit(subject="a\nb"), ["study.json subject", "control"]),
    "subject very long": (_edit(subject="x" * 300), ["study.json subject", "at most 100 bytes"]),
    "subject dot-dot": (_edit(subject=".."), ["study.json subject", "start with '.'"]),
    "subject colon": (_edit(subject="C:evil"), ["study.json subject", "':'"]),
    "disease unknown": (_edit(disease="flu"), ["study.json disease", "'glioma'"]),
    "timepoints object": (_edit(timepoints={"id": "tp0"}), ["study.json timepoints", "non-empty list"]),
    "timepoints empty": (_edit(timepoints=[]), ["study.json timepoints", "non-empty list"]),
    "day string": (_edit(timepoints=_tp(("tp0", 0), ("tp1", "40"))), ["timepoints[1].day", "must be a number"]),
    "day NaN": (_edit(timepoints=_tp(("tp0", 0), ("tp1", float("nan")))), ["timepoints[1].day", "number"]),
    "days decreasing": (_edit(timepoints=_tp(("tp0", 40), ("tp1", 0))), ["timepoints", "strictly increasing"]),
    "id traversal": (_edit(timepoints=_tp(("../tp0", 0), ("tp1", 40))), ["timepoints[0].id", "folder name"]),
    "id absolute": (_edit(timepoints=_tp(("/tmp", 0), ("tp1", 40))), ["timepoints[0].id", "'/'"]),
    "id nested": (_edit(timepoints=_tp(("tp0/../tp1", 0), ("tp1", 40))), ["timepoints[0].id", "'/'"]),
    "id transforms": (_edit(timepoints=_tp(("transforms", 0), ("tp1", 40))), ["timepoints[0].id", "reserved"]),
    "id hidden": (_edit(timepoints=_tp((".tp0", 0), ("tp1", 40))), ["timepoints[0].id", "start with '.'"]),
    "id duplicate": (_edit(timepoints=_tp(("tp0", 0), ("tp0", 40))), ["timepoints[1].id", "duplicate"]),
    "predict_days string": (_edit(predict_days="80"), ["study.json predict_days", "list of numbers"]),
    "tissue traversal": (_edit(tissue="../tissue"), ["study.json tissue", "no '..'"]),
    "tissue absolute": (_edit(tissue="/etc"), ["study.json tissue", "relative"]),
    "tissue is a timepoint": (_edit(tissue="tp0"), ["study.json tissue", "folder of timepoint 'tp0'"]),
    "tissue is the study": (_edit(tissue="."), ["study.json tissue", "the study folder itself"]),
    "tissue missing": (_edit(tissue="elsewhere"), ["elsewhere/", "missing"]),
    "unknown key": (_edit(notes="x"), ["study.json notes", "unknown key"]),
}


@pytest.mark.parametrize("case", list(MANIFESTS))
def test_malformed_study_json_is_refused(study, tmp_path, capsys, case):
    mutate, culprits = MANIFESTS[case]
    mutate(study)
    fit_refused(study, tmp_path, culprits, capsys)


def test_study_folder_that_does_not_exist(tmp_path, capsys):
    out = tmp_path / "out"
    refused(["fit", tmp_path / "nowhere", "--out", out], [str(tmp_path / "nowhere"), "does not exist"], [], out,
            capsys)


# -- options ------------------------------------------------------------------------------------------
def test_unknown_timepoint_id_lists_the_study_ids(study, tmp_path, capsys):
    fit_refused(study, tmp_path, ["--timepoints", "'nope'", "tp0, tp1"], capsys, "--timepoints", "tp0", "nope")


def test_voxel_mm_beyond_the_valid_range_states_it(study, tmp_path, capsys):
    out = tmp_path / "out"
    refused(["fit", study, "--out", out, "--voxel-mm", "1000"], ["--voxel-mm", "(0, 10] mm", "got 1000"], [study],
            out, capsys)


# -- tissue folders (simulate --tissue) ------------------------------------------------------------------
def simulate_refused(tissue: Path, tmp_path: Path, culprits: list[str], capsys, inputs: list[Path]) -> str:
    out = tmp_path / "out"
    return refused(["simulate", "--tissue", tissue, "--seed-ras", "-40", "50", "35", "--dw", "0.3", "--rho", "0.03",
                    "--days", "10", "--out", out], culprits, inputs, out, capsys)


@pytest.mark.parametrize("damage", ["zero-byte", "truncated", "corrupt stream", "text file"])
def test_simulate_refuses_a_damaged_tissue_map(study, tmp_path, capsys, damage):
    DAMAGE[damage](study / TISSUE)
    simulate_refused(study / "tissue", tmp_path, [str(study / TISSUE), DAMAGE_TEXT[damage]], capsys, [study])


@pytest.mark.parametrize("suffix", FORMATS)
def test_simulate_refuses_nan_in_a_tissue_map(study, tmp_path, capsys, suffix):
    name = _replace_with(study, TISSUE, suffix, _nan)
    simulate_refused(study / "tissue", tmp_path, [str(study / name), "1 NaN"], capsys, [study])


def test_simulate_refuses_tissue_maps_on_different_grids(study, tmp_path, capsys):
    _shift_origin(study, "tissue/csf.nii.gz")
    simulate_refused(study / "tissue", tmp_path, [str(study / "tissue/csf.nii.gz"), "geometry"], capsys, [study])


def test_simulate_refuses_a_tissue_map_in_other_units(study, tmp_path, capsys):
    _replace_with(study, TISSUE, ".nii.gz", lambda array: array.__imul__(100.0))
    simulate_refused(study / "tissue", tmp_path, [str(study / TISSUE), "[0, 1]"], capsys, [study])


def test_simulate_refuses_a_timepoint_folder_as_tissue(study, tmp_path, capsys):
    simulate_refused(study / "tp0", tmp_path, [str(study / "tp0"), "no 'gm' image"], capsys, [study])


# -- fit folders (predict FIT) -------------------------------------------------------------------------
@pytest.fixture
def fit(source_fit, tmp_path) -> Path:
    return Path(shutil.copytree(source_fit, tmp_path / "fit"))


def _json_edit(name: str, change):
    def apply(fit: Path) -> None:
        record = json.loads((fit / name).read_text())
        change(record)
        (fit / name).write_text(json.dumps(record))
    return apply


def _tensors(content):
    def apply(fit: Path) -> None:
        if isinstance(content, bytes):
            (fit / "tensors.pt").write_bytes(content)
        else:
            torch.save(content, fit / "tensors.pt")
    return apply


FIT_DAMAGE = {
    "model.json invalid JSON": (lambda f: (f / "model.json").write_text("{"), ["model.json", "not valid JSON"]),
    "model.json a list": (lambda f: (f / "model.json").write_text("[]"), ["model.json", "JSON object"]),
    "model of another type": (_json_edit("model.json", lambda r: r.update(model="neural-ode")),
                              ["model.json", "cannot rebuild the 'neural-ode' model"]),
    "model of a parallel type": (_json_edit("model.json", lambda r: r.update(model="parallel")),
                                 ["model.json", "cannot rebuild the 'parallel' model"]),
    "model unknown": (_json_edit("model.json", lambda r: r.update(model="magic")), ["model.json", "'magic'"]),
    "model missing": (_json_edit("model.json", lambda r: r.pop("model")), ["model.json", "'model' is None"]),
    "record missing": (_json_edit("model.json", lambda r: r.pop("record")), ["model.json", "no 'record'"]),
    "record emptied": (_json_edit("model.json", lambda r: r.update(record={})), ["model.json", "missing entry"]),
    "record fit damaged": (_json_edit("model.json", lambda r: r["record"]["fit"].pop("best")),
                           ["model.json", "'best'"]),
    "wrong format": (_json_edit("model.json", lambda r: r.update(format="x/1")), ["model.json", "'x/1'"]),
    "tensors.pt zero-byte": (_tensors(b""), ["tensors.pt", "cannot be read"]),
    "tensors.pt corrupt": (_tensors(b"PK\x03\x04 not a zip"), ["tensors.pt", "cannot be read"]),
    "tensors.pt wrong keys": (_tensors({"weights": torch.zeros(3)}), ["model.json", "tissue.gm"]),
    "tensors.pt wrong shapes": (_tensors({f"tissue.{k}": torch.zeros(2, 2, 2) for k in ("gm", "wm", "csf")}),
                                ["model.json", "shape"]),
    "tensors.pt a list": (_tensors([torch.zeros(2)]), ["tensors.pt", "not named tensors"]),
    "tensors.pt missing": (lambda f: (f / "tensors.pt").unlink(), ["tensors.pt", "missing"]),
    "params.json invalid JSON": (lambda f: (f / "params.json").write_text("{"), ["params.json"]),
    "params.json a list": (lambda f: (f / "params.json").write_text("[1]"), ["params.json"]),
}


@pytest.mark.parametrize("case", list(FIT_DAMAGE))
def test_predict_refuses_a_damaged_fit_folder(fit, source_study, tmp_path, capsys, case):
    mutate, culprits = FIT_DAMAGE[case]
    mutate(fit)
    out = tmp_path / "out"
    refused(["predict", fit, "--out", out, "--days", "60"], culprits, [fit, source_study], out, capsys)


@pytest.mark.parametrize("case", ["record missing", "tensors.pt wrong keys", "params.json invalid JSON"])
def test_treat_refuses_a_damaged_fit_folder(fit, source_study, tmp_path, capsys, case):
    mutate, culprits = FIT_DAMAGE[case]
    mutate(fit)
    out = tmp_path / "out"
    refused(["treat", fit, "--out", out, "--days", "60"], culprits, [fit, source_study], out, capsys)


def test_params_json_with_wrong_fields_names_the_file(fit):
    from HybridNeuroLib.fit.result import FitResult

    original = (fit / "params.json").read_text()
    assert FitResult.load(fit).settings.voxel_mm == 4.0
    for change in (lambda r: r.pop("best"), lambda r: r.update(settings={"voxel_mm": "big"}),
                   lambda r: r["settings"].update(no_such_setting=1), lambda r: r.update(members=3),
                   lambda r: r["settings"].update(voxel_mm=1000)):
        _json_edit("params.json", change)(fit)
        with pytest.raises(ValueError, match=r"params\.json: "):
            FitResult.load(fit)
        (fit / "params.json").write_text(original)


# -- segmentation models and MONAI bundles (segment STUDY) -------------------------------------------------
NETWORK = {"spatial_dims": 3, "in_channels": 1, "out_channels": 3, "channels": [4, 8], "strides": [2],
           "num_res_units": 0}


def make_bundle(folder: Path) -> Path:
    from monai.networks.nets import UNet

    (folder / "configs").mkdir(parents=True)
    (folder / "models").mkdir()
    (folder / "configs/inference.json").write_text(json.dumps(
        {"network_def": {"_target_": "UNet", **NETWORK}, "inferer": {"roi_size": [16, 16, 16]}}))
    (folder / "configs/metadata.json").write_text(json.dumps({"network_data_format": {
        "inputs": {"image": {"channel_def": {"0": "FLAIR"}}},
        "outputs": {"pred": {"channel_def": {"0": "Tumor core", "1": "Whole tumor", "2": "Enhancing tumor"}}}}}))
    torch.manual_seed(0)
    torch.save(UNet(**NETWORK).state_dict(), folder / "models/model.pt")
    return folder


def _inference(change):
    def apply(bundle: Path) -> None:
        config = json.loads((bundle / "configs/inference.json").read_text())
        change(config["network_def"])
        (bundle / "configs/inference.json").write_text(json.dumps(config))
    return apply


BUNDLE_DAMAGE = {
    "unknown network class": (_inference(lambda n: n.update(_target_="NoSuchNet")), ["network_def", "NoSuchNet"]),
    "unknown module": (_inference(lambda n: n.update(_target_="nosuch.module.Net")), ["network_def", "nosuch"]),
    "bad network argument": (_inference(lambda n: n.update(bogus=3)), ["network_def", "bogus"]),
    "bad argument value": (_inference(lambda n: n.update(channels="many")), ["network_def", "cannot be built"]),
    "inference.json invalid": (lambda b: (b / "configs/inference.json").write_text("{"),
                               ["configs/inference.json", "not valid JSON"]),
    "metadata.json a list": (lambda b: (b / "configs/metadata.json").write_text("[]"),
                             ["configs/metadata.json", "JSON object"]),
    "weights missing": (lambda b: (b / "models/model.pt").unlink(), ["models/model.pt", "missing"]),
    "weights zero-byte": (lambda b: (b / "models/model.pt").write_bytes(b""), ["models/model.pt", "cannot read"]),
    "weights corrupt": (lambda b: (b / "models/model.pt").write_bytes(b"garbage" * 50),
                        ["models/model.pt", "cannot read"]),
    "weights of another network": (lambda b: torch.save({"x": torch.zeros(1)}, b / "models/model.pt"),
                                   ["models/model.pt", "do not fit"]),
}


@pytest.mark.parametrize("case", list(BUNDLE_DAMAGE))
def test_segment_refuses_a_broken_bundle(study, tmp_path, capsys, case):
    bundle = make_bundle(tmp_path / "bundle")
    mutate, culprits = BUNDLE_DAMAGE[case]
    mutate(bundle)
    out = tmp_path / "out"
    refused(["segment", study, "--bundle", bundle, "--out", out], [str(bundle), *culprits], [study, bundle], out,
            capsys)


def _model_json(change):
    def apply(folder: Path) -> None:
        spec = json.loads((folder / "model.json").read_text())
        change(spec)
        (folder / "model.json").write_text(json.dumps(spec))
    return apply


MODEL_DAMAGE = {
    "model.json invalid": (lambda f: (f / "model.json").write_text("{"), ["model.json", "not valid JSON"]),
    "model.json other format": (_model_json(lambda s: s.update(format="x")), ["model.json", "hybridneuro-segmodel/1"]),
    "contrasts missing": (_model_json(lambda s: s.pop("contrasts")), ["model.json", "'contrasts'"]),
    "network not an object": (_model_json(lambda s: s.update(network=[1])), ["model.json", "'network'"]),
    "unknown architecture": (_model_json(lambda s: s.update(architecture="Transformer9")),
                             ["model.json", "Transformer9"]),
    "bad network arguments": (_model_json(lambda s: s["network"].update(bogus=1)), ["model.json", "bogus"]),
    "spacing not numbers": (_model_json(lambda s: s.update(spacing_mm="2mm")), ["model.json", "'spacing_mm'"]),
    "model.pt zero-byte": (lambda f: (f / "model.pt").write_bytes(b""), ["model.pt", "cannot read weights"]),
    "model.pt truncated": (lambda f: (f / "model.pt").write_bytes((f / "model.pt").read_bytes()[:5000]),
                           ["model.pt", "cannot read weights"]),
}


@pytest.mark.parametrize("case", list(MODEL_DAMAGE))
def test_segment_refuses_a_broken_model_folder(study, tmp_path, capsys, case):
    model = Path(shutil.copytree(DEFAULT_MODEL_FOLDER, tmp_path / "model"))
    mutate, culprits = MODEL_DAMAGE[case]
    mutate(model)
    out = tmp_path / "out"
    refused(["segment", study, "--model", model, "--out", out], culprits, [study, model], out, capsys)


# -- BraTS case folders (train-seg DATA) -------------------------------------------------------------------
def make_brats_case(root: Path, name: str = "BraTS-GLI-00001-000") -> Path:
    case = root / name
    case.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for key in ("t1n", "t1c", "t2w", "t2f"):
        sitk.WriteImage(sitk.GetImageFromArray(rng.random((16, 16, 16)).astype(np.float32)),
                        str(case / f"{name}-{key}.nii.gz"))
    seg = np.zeros((16, 16, 16), np.uint8)
    seg[6:10, 6:10, 6:10] = 2
    sitk.WriteImage(sitk.GetImageFromArray(seg), str(case / f"{name}-seg.nii.gz"))
    return case


BRATS_DAMAGE = {
    "truncated t1n": ("t1n", lambda p: DAMAGE["truncated"](p), "truncated"),
    "zero-byte t2f": ("t2f", lambda p: DAMAGE["zero-byte"](p), "empty"),
    "NaN in t1c": ("t1c", lambda p: _rewrite_nifti(p, _nan), "1 NaN"),
    "NaN in seg": ("seg", lambda p: _rewrite_nifti(p, _nan), "1 NaN"),
    "label 5 in seg": ("seg", lambda p: _rewrite_nifti(p, lambda a: a.__setitem__((1, 1, 1), 5)), "label values"),
}


def _rewrite_nifti(path: Path, edit) -> None:
    image = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    edit(array)
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))


@pytest.mark.parametrize("case", list(BRATS_DAMAGE))
def test_train_seg_refuses_a_damaged_brats_case(tmp_path, capsys, case):
    key, damage, text = BRATS_DAMAGE[case]
    data = tmp_path / "data"
    folder = make_brats_case(data)
    culprit = folder / f"{folder.name}-{key}.nii.gz"
    damage(culprit)
    out = tmp_path / "out"
    refused(["train-seg", data, "--out", out, "--epochs", "1", "--steps-per-epoch", "1"], [str(culprit), text],
            [data], out, capsys)


# -- warnings (not refusals) ----------------------------------------------------------------------------------
def test_a_timepoint_on_another_grid_without_transform_is_warned_about(study, tmp_path, capsys):
    for name in ("t2f.nii.gz", "seg.nii.gz"):
        _shift_origin(study, f"tp1/{name}")
    warnings = grid_warnings(read_study(study))
    assert len(warnings) == 1 and "timepoint 'tp1' lies on another grid" in warnings[0]
    assert "transforms/tp1.tfm" in warnings[0]
    assert grid_warnings(read_study(study), ["tp0"]) == []
    out = tmp_path / "out"
    assert main(["fit", str(study), "--out", str(out), "--voxel-mm", "4", "--starts", "1", "--iterations", "1",
                 "--members", "0"]) == 0
    assert "warning: timepoint 'tp1' lies on another grid" in capsys.readouterr().out


def test_no_grid_warning_for_a_study_on_one_grid(study):
    assert grid_warnings(read_study(study)) == []


def test_blank_image_warning_flags_constant_images_only():
    blank = sitk.GetImageFromArray(np.full((4, 4, 4), 7.0, np.float32))
    assert "tp0/t1n.nii.gz is blank (every voxel is 7)" in blank_image_warning(blank, "tp0/t1n.nii.gz")
    assert blank_image_warning(sitk.GetImageFromArray(np.zeros((4, 4, 4), np.uint8)), "t1") is not None
    varied = np.zeros((4, 4, 4), np.float32)
    varied[1, 1, 1] = 1.0
    assert blank_image_warning(sitk.GetImageFromArray(varied), "t1") is None


# -- lesions the growth model cannot explain ---------------------------------------------------------
def _set_seg(study: Path, tp_id: str, array_of) -> None:
    """Rewrite ``tp_id``'s seg with ``array_of(tp0 array, own array)``."""
    first = sitk.ReadImage(str(study / "tp0" / "seg.nii.gz"))
    own = sitk.ReadImage(str(study / tp_id / "seg.nii.gz"))
    array = array_of(sitk.GetArrayFromImage(first), sitk.GetArrayFromImage(own)).astype(np.uint8)
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(own)
    sitk.WriteImage(image, str(study / tp_id / "seg.nii.gz"))


LESIONS = {
    # the later lesion smaller than the first: treatment or a segmentation error, not untreated growth
    "shrinking": (lambda first, own: first * (np.arange(first.shape[0])[:, None, None] % 2 == 0), ["day 40", "shrinks"]),
    "empty": (lambda first, own: np.zeros_like(own), ["day 40", "empty"]),
}


@pytest.mark.parametrize("case", sorted(LESIONS))
def test_lesions_the_model_cannot_explain_are_refused_by_timepoint(study, tmp_path, capsys, case):
    shrink, culprits = LESIONS[case]
    _set_seg(study, "tp1", lambda first, own: shrink(first, own) if case == "empty" else shrink(first, own))
    if case == "shrinking":  # make tp0 the larger one: tp1 keeps every other slice of it
        _set_seg(study, "tp0", lambda first, own: np.maximum(first, sitk.GetArrayFromImage(
            sitk.ReadImage(str(tmp_path / "study" / "tp1" / "seg.nii.gz")))))
    fit_refused(study, tmp_path, culprits, capsys)


def test_identical_lesions_are_valid_data_and_fit(study, tmp_path, capsys):
    """Two identical lesions are valid data (a stable tumour): the fit runs to finite parameters."""
    _set_seg(study, "tp1", lambda first, own: first)
    out = tmp_path / "fit"
    before = folder_digest(study)
    assert main(["fit", str(study), "--out", str(out), "--voxel-mm", "4", "--starts", "1", "--iterations", "2",
                 "--members", "0"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and folder_digest(study) == before
    record = json.loads((out / "params.json").read_text())
    assert np.isfinite(record["D_w_mm2_per_day"]) and np.isfinite(record["rho_per_day"])


# -- a missing Python package ------------------------------------------------------------------------
@pytest.mark.parametrize("package, model", [("torch", "physics"), ("torchdiffeq", "neural-ode")])
def test_a_missing_package_is_named_with_the_install_hint(source_study, tmp_path, package, model):
    """Inside Slicer a package may be missing (not installed yet): one line naming it, exit 2, no traceback."""
    import subprocess
    import sys

    args = ["fit", str(source_study), "--out", str(tmp_path / "out"), "--model", model]
    code = (f"import sys; sys.modules[{package!r}] = None\n"  # makes `import {package}` raise ImportError
            f"from HybridNeuroLib.cli import main\nsys.exit(main({args!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr, result.stderr
    assert f"missing package '{package}'" in last and "module panel" in last, last
    assert not (tmp_path / "out").exists()
