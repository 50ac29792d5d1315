"""Outputs never lose data: staging, the manifest rule of ``--overwrite``, inputs apart, interrupts.

Each refused command is checked for: exit code 2, a one-line message naming the culprit, no
traceback, inputs byte-identical, and no output (nor staging folder) left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import SimpleITK as sitk

from fit_cases import grown_lesion, phantom_tissue
from HybridNeuroLib.cli import main
from HybridNeuroLib.outputs import MANIFEST_NAME, check_output_folder, staged_output, written_files
from HybridNeuroLib.progress import PROGRESS_PREFIX
from HybridNeuroLib.study import Study, Timepoint, write_study
from study_helpers import folder_digest

REPO = Path(__file__).resolve().parents[1]
TINY_FIT = ["--voxel-mm", "4", "--starts", "1", "--iterations", "4", "--members", "0"]


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_case(tmp_path_factory):
    """A 16³ phantom study (4 mm) and one tiny fit of it, shared read-only by the tests."""
    root = tmp_path_factory.mktemp("case")
    tissue = phantom_tissue(16, voxel_mm=4.0)
    labels, _ = grown_lesion(tissue, days=(0.0, 40.0, 80.0))
    study = _write_study(root / "study", tissue, labels, "phantom")
    other = _write_study(root / "other-patient", tissue, labels, "someone-else")
    assert main(["fit", str(study), "--out", str(root / "fit"), *TINY_FIT]) == 0
    return {"root": root, "study": study, "other": other, "fit": root / "fit", "tissue": tissue, "labels": labels}


def _write_study(folder: Path, tissue, labels, subject: str) -> Path:
    timepoints = tuple(Timepoint(f"tp{n}", day, {"t2f": sitk.Cast(seg, sitk.sitkFloat32)}, seg)
                       for n, (day, seg) in enumerate(labels))
    maps = {name: tissue.geometry.image_from_array(getattr(tissue, name)) for name in ("gm", "wm", "csf")}
    return write_study(Study(subject, "glioma", timepoints, (120.0,), maps), folder)


def refused(args: list[str], capsys, *, watched: list[Path], absent: Path | None = None) -> str:
    """Run the CLI; assert it refused cleanly without touching ``watched`` folders. Returns stderr."""
    before = {folder: folder_digest(folder) for folder in watched}
    capsys.readouterr()
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error and error.count("\n") == 1, error
    for folder, digest in before.items():
        assert folder_digest(folder) == digest, f"{folder} changed"
    if absent is not None:
        assert not absent.exists()
        assert not list(absent.parent.glob(f".{absent.name}.partial-*")), "a staging folder was left behind"
    return error


def earlier_output(folder: Path, files: dict[str, str]) -> Path:
    with staged_output(folder, command="test") as staging:
        for name, text in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_text(text)
    return folder


# -- the staging folder and the manifest --------------------------------------------------------------
def test_staged_output_appears_complete_with_a_manifest_of_every_file(tmp_path):
    out = tmp_path / "new" / "deeper" / "out"
    with staged_output(out, command="test") as staging:
        assert not out.exists() and staging.parent == out.parent and staging.name.startswith(".out.partial-")
        (staging / "a.txt").write_text("a")
        (staging / "sub").mkdir()
        (staging / "sub" / "b.bin").write_bytes(b"\0" * 10)
    assert written_files(out) == ["a.txt", "sub/b.bin"]
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["command"] == "test" and manifest["files"]["sub/b.bin"]["bytes"] == 10
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]  # no staging folder left


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failed_or_interrupted_block_leaves_nothing_not_even_the_parents_it_created(tmp_path, error):
    out = tmp_path / "made" / "for" / "out"
    with pytest.raises(type(error)):
        with staged_output(out) as staging:
            (staging / "half.txt").write_text("half")
            raise error
    assert list(tmp_path.iterdir()) == []


def test_a_failed_overwrite_keeps_the_earlier_output(tmp_path):
    out = earlier_output(tmp_path / "out", {"result.txt": "first"})
    with pytest.raises(RuntimeError):
        with staged_output(out, overwrite=True) as staging:
            (staging / "result.txt").write_text("second")
            raise RuntimeError("failed half-way")
    assert (out / "result.txt").read_text() == "first" and written_files(out) == ["result.txt"]


def test_overwrite_replaces_an_unchanged_earlier_output_as_a_whole(tmp_path):
    out = earlier_output(tmp_path / "out", {"old.txt": "old", "sub/x.txt": "x"})
    with staged_output(out, overwrite=True) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the old folder is gone too


def test_overwrite_never_deletes_a_file_this_program_did_not_write(tmp_path):
    out = earlier_output(tmp_path / "out", {"result.txt": "ours"})
    (out / "my-notes.txt").write_text("the user's")
    with pytest.raises(FileExistsError, match="did not write.*my-notes.txt"):
        check_output_folder(out, overwrite=True)
    (out / "my-notes.txt").unlink()
    (out / "result.txt").write_text("edited by the user")
    with pytest.raises(FileExistsError, match="result.txt was changed"):
        check_output_folder(out, overwrite=True)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "data.nii.gz").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="holds no .hybridneuro-outputs.json"):
        check_output_folder(plain, overwrite=True)
    (plain / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(FileExistsError, match="not a valid HybridNeuro output manifest"):
        check_output_folder(plain, overwrite=True)


def test_a_file_added_while_the_command_ran_is_not_replaced(tmp_path):
    out = earlier_output(tmp_path / "out", {"result.txt": "first"})
    with pytest.raises(FileExistsError, match="late.txt"):
        with staged_output(out, overwrite=True) as staging:
            (staging / "result.txt").write_text("second")
            (out / "late.txt").write_text("saved by the user meanwhile")
    assert (out / "late.txt").is_file() and (out / "result.txt").read_text() == "first"
    assert not list(tmp_path.glob(".out.partial-*"))


def test_links_are_not_followed_nor_replaced(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "scan.nii.gz").write_bytes(b"patient")
    out = earlier_output(tmp_path / "out", {"result.txt": "ours"})
    (out / "link").symlink_to(precious, target_is_directory=True)
    with pytest.raises(FileExistsError, match="link"):
        check_output_folder(out, overwrite=True)
    assert (precious / "scan.nii.gz").read_bytes() == b"patient"


@pytest.mark.parametrize("where", ["same", "inside", "contains"])
def test_outputs_never_share_a_folder_with_an_input(tmp_path, where):
    study = tmp_path / "runs" / "patient"
    study.mkdir(parents=True)
    out = {"same": study, "inside": study / "results", "contains": tmp_path / "runs"}[where]
    with pytest.raises(ValueError, match="input folder"):
        check_output_folder(out, inputs=[study], overwrite=True)


# -- the commands ---------------------------------------------------------------------------------
def test_the_study_inside_an_earlier_output_is_never_deleted(tiny_case, tmp_path, capsys):
    """The reported data loss: `run R/patient --out R --overwrite` with a study copied into an earlier output."""
    runs = earlier_output(tmp_path / "R", {"report.json": "{}"})
    patient = runs / "patient"
    write_study(__import__("HybridNeuroLib.study", fromlist=["read_study"]).read_study(tiny_case["study"]), patient)
    error = refused(["run", str(patient), "--out", str(runs), "--overwrite"], capsys, watched=[runs])
    assert "contains the input folder" in error and str(patient) in error
    error = refused(["fit", str(patient), "--out", str(runs), "--overwrite", *TINY_FIT], capsys, watched=[runs])
    assert "contains the input folder" in error


@pytest.mark.parametrize("command", ["predict", "treat"])
def test_predict_and_treat_never_write_into_the_fit_or_the_study(tiny_case, capsys, command):
    fit, study = tiny_case["fit"], tiny_case["study"]
    for out in (fit, fit / "forecast", study / "forecast", study.parent):
        error = refused([command, str(fit), "--out", str(out), "--overwrite"], capsys, watched=[fit, study])
        assert "input folder" in error and "read-only" in error


def test_predict_refuses_another_patients_study_unless_forced(tiny_case, tmp_path, capsys):
    fit, other = tiny_case["fit"], tiny_case["other"]
    error = refused(["predict", str(fit), "--study", str(other), "--out", str(tmp_path / "f")], capsys,
                    watched=[fit, other], absent=tmp_path / "f")
    assert "'someone-else'" in error and "'phantom'" in error and "--force" in error
    assert main(["predict", str(fit), "--study", str(other), "--out", str(tmp_path / "f"), "--force"]) == 0


def test_predict_refuses_a_study_on_another_grid(tiny_case, tmp_path, capsys):
    from HybridNeuroLib.study import read_study

    study = read_study(tiny_case["study"])
    shifted = []
    for tp in study.timepoints:
        images = {key: _shifted(image) for key, image in tp.images.items()}
        shifted.append(Timepoint(tp.id, tp.day, images, _shifted(tp.seg)))
    moved = write_study(Study("phantom", "glioma", tuple(shifted), (120.0,),
                              {k: _shifted(v) for k, v in study.tissue.items()}), tmp_path / "moved")
    error = refused(["predict", str(tiny_case["fit"]), "--study", str(moved), "--out", str(tmp_path / "f")], capsys,
                    watched=[moved], absent=tmp_path / "f")
    assert "grid" in error


def _shifted(image: sitk.Image) -> sitk.Image:
    copy = sitk.Image(image)
    copy.SetOrigin(tuple(o + 7.0 for o in image.GetOrigin()))
    return copy


@pytest.mark.parametrize("days, message", [(["1e308"], "5 years"), (["100000"], "--allow-long-horizon"),
                                           (["nan"], "not a number"), (["inf"], "not a number"),
                                           (["-50"], "before the study's first timepoint")])
def test_forecast_days_are_checked_before_any_work(tiny_case, tmp_path, capsys, days, message):
    for command in ("predict", "treat"):
        error = refused([command, str(tiny_case["fit"]), "--out", str(tmp_path / "f"), "--days", *days], capsys,
                        watched=[tiny_case["fit"]], absent=tmp_path / "f")
        assert message in error and "--days" in error
    error = refused(["run", str(tiny_case["study"]), "--out", str(tmp_path / "f"), "--days", *days, *TINY_FIT],
                    capsys, watched=[tiny_case["study"]], absent=tmp_path / "f")
    assert message in error


def test_simulate_days_are_checked(tiny_case, tmp_path, capsys):
    tissue = tiny_case["study"] / "tissue"
    base = ["simulate", "--tissue", str(tissue), "--seed-ras", "0", "0", "0", "--dw", "0.1", "--rho", "0.05",
            "--out", str(tmp_path / "g")]
    assert "5 years" in refused(base + ["--days", "1e308"], capsys, watched=[tissue], absent=tmp_path / "g")
    assert "finite days" in refused(base + ["--days", "nan"], capsys, watched=[tissue], absent=tmp_path / "g")


def test_an_output_under_a_file_is_refused_before_any_work(tiny_case, tmp_path, capsys):
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("not a folder")
    study = tiny_case["study"]
    for args in (["synth", "--out", str(a_file), "--voxel-mm", "4"],
                 ["fit", str(study), "--out", str(a_file / "sub"), *TINY_FIT],
                 ["run", str(study), "--out", str(a_file / "sub"), *TINY_FIT],
                 ["predict", str(tiny_case["fit"]), "--out", str(a_file)]):
        error = refused(args, capsys, watched=[study, tiny_case["fit"]])
        assert "is a file, not a folder" in error
        assert a_file.read_text() == "not a folder"


def test_a_non_empty_output_folder_is_refused_and_the_message_offers_only_real_options(tiny_case, tmp_path, capsys):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep me")
    for command in ("predict", "treat"):
        error = refused([command, str(tiny_case["fit"]), "--out", str(busy)], capsys, watched=[busy])
        assert "not empty" in error and "--overwrite" in error
        error = refused([command, str(tiny_case["fit"]), "--out", str(busy), "--overwrite"], capsys, watched=[busy])
        assert "may hold your own files" in error


def test_predict_overwrite_replaces_its_own_earlier_forecast(tiny_case, tmp_path):
    out = tmp_path / "forecast"
    assert main(["predict", str(tiny_case["fit"]), "--out", str(out), "--days", "100"]) == 0
    assert main(["predict", str(tiny_case["fit"]), "--out", str(out), "--days", "120", "--overwrite"]) == 0
    assert "seg_day120.nii.gz" in written_files(out) and not (out / "seg_day100.nii.gz").exists()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(written_files(out))


# -- interrupts -----------------------------------------------------------------------------------
def _interrupt(args: list[str], signum: int, after_progress_lines: int, tmp: Path) -> tuple[int, str]:
    """Run the CLI in a subprocess; send ``signum`` after that many progress lines. (exit code, stderr)."""
    environment = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "HybridNeuroLib.cli", "--progress-lines", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    seen = 0
    for line in process.stdout:
        seen += line.startswith(PROGRESS_PREFIX)
        if seen >= after_progress_lines:
            process.send_signal(signum)
            break
    process.stdout.read()
    return process.wait(timeout=600), process.stderr.read()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("command, lines", [("fit", 1), ("fit", 4), ("predict", 1), ("run", 1), ("run", 12)])
def test_an_interrupted_command_leaves_nothing_and_says_so(tiny_case, tmp_path, command, lines, signum):
    study, fit = tiny_case["study"], tiny_case["fit"]
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    slow_fit = ["--voxel-mm", "4", "--starts", "2", "--iterations", "400", "--members", "2"]
    args = {"fit": ["fit", str(study), "--out", str(out), *slow_fit],
            "predict": ["predict", str(fit), "--out", str(out), "--days", "1500", "1600", "1700", "1800"],
            "run": ["run", str(study), "--out", str(out), *slow_fit]}[command]
    before = {folder: folder_digest(folder) for folder in (study, fit)}
    code, error = _interrupt(args, signum, lines, tmp)
    assert code == 128 + signum, error
    assert error.strip().endswith(f"interrupted; nothing was written to {out}"), error
    assert "Traceback" not in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]   # no output, no staging folder
    assert list(tmp.iterdir()) == []                                   # temporary folders cleaned up
    assert {folder: folder_digest(folder) for folder in (study, fit)} == before
