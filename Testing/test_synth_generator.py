"""Synthetic subjects: determinism, realistic contrasts, truth consistent with densities, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from HybridNeuroLib.cli import main
from HybridNeuroLib.study import read_study
from HybridNeuroLib.synth import generate_subject
from HybridNeuroLib.synth.parameters import SubjectParameters, Treatment
from HybridNeuroLib.synth.truth import truth_labels
from study_helpers import folder_digest

# steep front (ρ large vs D) and fast necrosis: all three labels appear on a 3 mm grid within 40 days
FAST = SubjectParameters(dw_mm2_per_day=0.1, rho_per_day=0.15, detection_radius_mm=10.0,
                         necrosis_rate_per_day=0.1, crowding_threshold=0.8)
OPTIONS = dict(days=(0, 20, 40), predict_days=(60,), voxel_mm=3, parameters=FAST)


def array(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.fixture(scope="module")
def subjects(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return {name: generate_subject(seed, root / name, **OPTIONS) for name, seed in (("a", 5), ("b", 5), ("c", 6))}


def test_same_seed_gives_identical_files_and_another_seed_differs(subjects):
    a, b, c = (folder_digest(subjects[k].study_folder.parent) for k in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert sum(a[k] != c[k] for k in a) >= len(a) - 2  # everything but (maybe) the tissue-free files differs


def test_study_folder_is_a_valid_study_with_three_timepoints(subjects):
    study = read_study(subjects["a"].study_folder)
    assert study.days_observed == (0.0, 20.0, 40.0) and study.predict_days == (60.0,)
    assert all(list(tp.images) == ["t1n", "t1c", "t2w", "t2f"] and tp.seg is not None for tp in study.timepoints)
    assert study.tissue is not None
    record = json.loads((subjects["a"].truth_folder / "parameters.json").read_text())
    assert record["parameters"]["dw_mm2_per_day"] == FAST.dw_mm2_per_day and record["seed"] == 5
    assert "CC BY-SA" in record["anatomy"]["licence"]
    assert record["box_face_max_density"] < 1e-2
    volumes = [record["lesion_volume_ml"][d] for d in ("0", "20", "40", "60")]
    assert volumes == sorted(volumes) and volumes[0] > 1.0  # untreated lesion visible at day 0 and growing


def test_truth_labels_follow_densities_and_thresholds(subjects):
    truth = subjects["a"].truth_folder
    p = json.loads((truth / "parameters.json").read_text())["parameters"]
    for day in ("0", "20", "40", "60"):
        u, n = array(truth / f"day-{day}" / "proliferating.nii.gz"), array(truth / f"day-{day}" / "necrotic.nii.gz")
        labels = array(truth / f"day-{day}" / "labels.nii.gz")
        assert u.min() >= 0 and n.min() >= 0 and (u + n).max() <= 1.0 + 1e-6
        assert np.array_equal(labels > 0, u + n >= p["edema_threshold"])          # whole tumour = FLAIR-visible
        assert np.array_equal(labels == 3, u >= p["enhancing_threshold"])         # enhancing = viable and dense
        assert np.array_equal(labels == 1, (u + n >= p["enhancing_threshold"]) & (u < p["enhancing_threshold"]))
        assert np.array_equal(labels, truth_labels(u, n, edema_threshold=p["edema_threshold"],
                                                   enhancing_threshold=p["enhancing_threshold"]))
    for tp, day in (("tp0", "0"), ("tp2", "40")):  # the study's seg is the truth at observed days
        assert np.array_equal(array(subjects["a"].study_folder / tp / "seg.nii.gz"),
                              array(truth / f"day-{day}" / "labels.nii.gz"))
    assert set(np.unique(array(truth / "day-60" / "labels.nii.gz"))) == {0, 1, 2, 3}


def test_rendered_contrasts_are_ordered_as_in_real_mri(subjects):
    study, truth = subjects["a"].study_folder, subjects["a"].truth_folder
    tissue = {k: array(truth / "tissue" / f"{k}.nii.gz") for k in ("gm", "wm", "csf")}
    seg = array(study / "tp2" / "seg.nii.gz")
    far = ~ndimage.binary_dilation(seg > 0, iterations=6)  # away from the lesion and its mass effect
    masks = {k: (tissue[k] > 0.9) & far for k in tissue}
    masks.update(edema=seg == 2, enhancing=seg == 3, core=seg == 1)
    assert all(m.sum() >= 3 for m in masks.values()), {k: int(m.sum()) for k, m in masks.items()}
    mean = {m: {k: float(array(study / "tp2" / f"{m}.nii.gz")[mask].mean()) for k, mask in masks.items()}
            for m in ("t1n", "t1c", "t2w", "t2f")}
    assert mean["t1n"]["wm"] > mean["t1n"]["gm"] > mean["t1n"]["csf"]          # T1: WM brighter than GM, CSF dark
    assert mean["t2w"]["csf"] > mean["t2w"]["gm"] > mean["t2w"]["wm"]          # T2: CSF bright
    assert mean["t2f"]["edema"] > max(mean["t2f"][k] for k in ("gm", "wm", "csf"))  # FLAIR: edema bright
    assert mean["t2f"]["csf"] < mean["t2f"]["wm"]                              # FLAIR: CSF suppressed
    assert mean["t1c"]["enhancing"] > mean["t1c"]["wm"]                        # T1Gd: enhancing rim bright
    assert mean["t1c"]["enhancing"] > 1.5 * mean["t1n"]["enhancing"]           # ...because of contrast
    assert mean["t1c"]["core"] < mean["t1c"]["gm"]                             # necrotic core dark on T1Gd


def test_noise_and_bias_make_images_realistic_not_piecewise_constant(subjects):
    t1 = array(subjects["a"].study_folder / "tp0" / "t1n.nii.gz").astype(float)
    wm = array(subjects["a"].truth_folder / "tissue" / "wm.nii.gz") > 0.95
    spread = t1[wm].std() / t1[wm].mean()
    assert 0.01 < spread < 0.3
    background = t1[:3].ravel()
    assert background.min() >= 0 and background.mean() > 0  # Rician: magnitude noise is positive


def test_treatment_shrinks_the_proliferating_population(tmp_path):
    treated = SubjectParameters(**{**FAST.to_dict(), "treatment": Treatment(day=20.0, surviving_fraction=0.3)})
    untreated = generate_subject(3, tmp_path / "u", days=(0, 20), predict_days=(), voxel_mm=4,
                                 parameters=FAST)
    after = generate_subject(3, tmp_path / "t", days=(0, 20), predict_days=(), voxel_mm=4, parameters=treated)
    u0 = array(untreated.truth_folder / "day-20" / "proliferating.nii.gz").sum()
    u1 = array(after.truth_folder / "day-20" / "proliferating.nii.gz").sum()
    assert u1 == pytest.approx(0.3 * u0, rel=1e-4)


def test_refuses_to_overwrite_and_writes_nothing_into_existing_outputs(tmp_path, subjects):
    out = subjects["a"].study_folder.parent
    before = folder_digest(out)
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_subject(5, out, **OPTIONS)
    assert folder_digest(out) == before


def test_bad_days_are_refused(tmp_path):
    with pytest.raises(ValueError, match="start at 0"):
        generate_subject(1, tmp_path / "x", days=(10, 20), voxel_mm=4, parameters=FAST)
    with pytest.raises(ValueError, match="after the last observed day"):
        generate_subject(1, tmp_path / "x", days=(0, 20), predict_days=(10,), voxel_mm=4, parameters=FAST)


def test_cli_cohort_and_overwrite_rule(tmp_path, capsys):
    out = tmp_path / "cohort"
    args = ["synth", "--out", str(out), "--n", "2", "--seed", "3", "--days", "0", "30", "60",
            "--predict-days", "90", "--voxel-mm", "4"]
    assert main(args) == 0
    subjects = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert subjects == ["subject-000", "subject-001"]
    assert sorted(p.name for p in out.iterdir() if not p.is_dir()) == [".hybridneuro-outputs.json"]
    assert [read_study(out / s / "study").days_observed for s in subjects] == [(0.0, 30.0, 60.0)] * 2
    p0, p1 = (json.loads((out / s / "truth" / "parameters.json").read_text())["parameters"] for s in subjects)
    assert p0 != p1
    for p in (p0, p1):
        assert 0.02 <= p["dw_mm2_per_day"] <= 1.5 and 0.005 <= p["rho_per_day"] <= 0.2
    before = folder_digest(out)
    assert main(args) == 2                                             # refused, one clear line
    assert "overwrite" in capsys.readouterr().err
    assert folder_digest(out) == before
