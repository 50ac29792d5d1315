"""The shipped synthetic-data model on a held-out synthetic subject, and ``hybridneuro segment``."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from HybridNeuroLib.cli import main
from HybridNeuroLib.segment import default_model, segment_timepoint
from HybridNeuroLib.segment.model import DEFAULT_MODEL_FOLDER
from HybridNeuroLib.study import Study, read_study, write_study
from HybridNeuroLib.synth import generate_subject
from segment_cases import one_thread  # noqa: F401 (autouse fixture)

HELD_OUT_SEED = 2026  # not among the training cohort's seeds (generate_cohort(16, seed=1))


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("held-out")
    subject = generate_subject(HELD_OUT_SEED, folder / "subject", days=(0, 120), predict_days=(), voxel_mm=2,
                               include_tissue=False)
    return subject.study_folder


def test_shipped_model_is_small_and_documented():
    assert (DEFAULT_MODEL_FOLDER / "model.pt").stat().st_size < 5 * 2**20
    card = (DEFAULT_MODEL_FOLDER / "MODEL_CARD.md").read_text()
    assert "not a clinical model" in card and "hybridneuro train-seg" in card
    spec = json.loads((DEFAULT_MODEL_FOLDER / "model.json").read_text())
    assert spec["validation"]["whole_tumor"] >= 0.8


def test_shipped_model_segments_a_held_out_subject(held_out):
    seed_cohort = [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(1).spawn(16)]
    assert HELD_OUT_SEED not in seed_cohort
    model = default_model()
    tp = read_study(held_out).timepoints[-1]
    labels = segment_timepoint(tp.images, model, force_cpu=True)
    found, truth = sitk.GetArrayFromImage(labels), sitk.GetArrayFromImage(tp.seg)
    assert labels.GetSize() == tp.seg.GetSize() and labels.GetOrigin() == tp.seg.GetOrigin()
    whole_tumor_dice = 2 * ((found > 0) & (truth > 0)).sum() / ((found > 0).sum() + (truth > 0).sum())
    assert whole_tumor_dice >= 0.8, whole_tumor_dice


def test_segment_command_writes_labels_and_masks_outside_the_study(held_out, tmp_path, capsys):
    before = sorted(p.relative_to(held_out) for p in held_out.rglob("*"))
    out = tmp_path / "seg"
    assert main(["segment", str(held_out), "--out", str(out), "--cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".hybridneuro-outputs.json"] + [f"seg_{tp}{suffix}.nii.gz" for tp in ("tp0", "tp1")
                                         for suffix in ("", "_netc", "_snfh", "_et")])
    study = read_study(held_out)
    for tp in study.timepoints:
        labels = sitk.ReadImage(str(out / f"seg_{tp.id}.nii.gz"))
        reference = tp.reference_image
        assert (labels.GetSize(), labels.GetSpacing(), labels.GetOrigin(), labels.GetDirection()) == (
            reference.GetSize(), reference.GetSpacing(), reference.GetOrigin(), reference.GetDirection())
        array = sitk.GetArrayFromImage(labels)
        for value, key in ((1, "netc"), (2, "snfh"), (3, "et")):
            mask = sitk.GetArrayFromImage(sitk.ReadImage(str(out / f"seg_{tp.id}_{key}.nii.gz")))
            np.testing.assert_array_equal(mask, (array == value).astype(np.uint8))
    assert sorted(p.relative_to(held_out) for p in held_out.rglob("*")) == before  # inputs untouched

    assert main(["segment", str(held_out), "--out", str(out)]) == 2  # no silent overwrite
    assert "exists" in capsys.readouterr().err
    assert main(["segment", str(held_out), "--out", str(held_out / "seg")]) == 2
    assert "inside the input folder" in capsys.readouterr().err
    assert not (held_out / "seg").exists()


def test_missing_contrasts_stop_before_anything_is_written(held_out, tmp_path, capsys):
    study = read_study(held_out)
    only_flair = Study(study.subject, study.disease, tuple(
        type(tp)(tp.id, tp.day, {"t2f": tp.images["t2f"]}, tp.seg) for tp in study.timepoints))
    folder = write_study(only_flair, tmp_path / "flair-only")
    assert main(["segment", str(folder), "--out", str(tmp_path / "out")]) == 2
    assert "timepoint 'tp0': the segmentation model needs contrast(s) t1n, t1c, t2w" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main(["segment", str(folder), "--out", str(tmp_path / "out"), "--bundle", str(tmp_path / "none")]) == 2
    assert "missing configs/inference.json" in capsys.readouterr().err


def test_a_scan_without_contrast_is_named_by_timepoint_and_nothing_is_written(held_out, tmp_path, capsys):
    study = read_study(held_out)
    last = study.timepoints[-1]
    flat = sitk.Cast(last.images["t1c"] * 0 + 5.0, sitk.sitkFloat32)
    flat.CopyInformation(last.images["t1c"])
    broken = Study(study.subject, study.disease, study.timepoints[:-1] + (
        type(last)(last.id, last.day, {**last.images, "t1c": flat}, last.seg),))
    folder = write_study(broken, tmp_path / "flat")
    assert main(["segment", str(folder), "--out", str(tmp_path / "out"), "--cpu"]) == 2
    assert "timepoint 'tp1': t1c: the image has no contrast" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
