"""Study folders: round trip, NRRD input, read-only inputs, overwrite rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from HybridNeuroLib.study import Study, Timepoint, read_study, write_study
from study_helpers import folder_digest, make_study_folder, tiny_image


def arrays_equal(a: sitk.Image, b: sitk.Image) -> bool:
    return (np.array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b))
            and a.GetSpacing() == b.GetSpacing() and a.GetOrigin() == b.GetOrigin()
            and a.GetDirection() == b.GetDirection())


def test_read_gives_typed_study(tmp_path):
    study = read_study(make_study_folder(tmp_path / "in"))
    assert (study.subject, study.disease) == ("s01", "glioma")
    assert [tp.id for tp in study.timepoints] == ["tp0", "tp1"]
    assert study.days_observed == (0.0, 45.5) and study.predict_days == (90.0, 180.0)
    assert list(study.timepoints[0].images) == ["t1n", "t2f"]          # modality order of the disease
    assert study.timepoints[0].seg is not None and study.timepoints[1].seg is None
    assert sorted(study.tissue) == ["csf", "gm", "wm"]
    expected = sitk.GetArrayFromImage(tiny_image(seed=11))
    assert np.array_equal(sitk.GetArrayFromImage(study.timepoint("tp1").images["t2f"]), expected)


def test_round_trip_preserves_everything(tmp_path):
    source = make_study_folder(tmp_path / "in")
    study = read_study(source)
    transform = sitk.Euler3DTransform((1.0, 2.0, 3.0), 0.1, -0.05, 0.02, (1.5, -2.0, 0.5))
    out = write_study(study.with_changes(transforms={"tp1": transform}), tmp_path / "out")
    again = read_study(out)
    assert again.days_observed == study.days_observed and again.predict_days == study.predict_days
    assert (again.subject, again.disease) == (study.subject, study.disease)
    for tp, tp2 in zip(study.timepoints, again.timepoints):
        assert list(tp.images) == list(tp2.images)
        assert all(arrays_equal(tp.images[k], tp2.images[k]) for k in tp.images)
        assert (tp.seg is None) == (tp2.seg is None)
    assert arrays_equal(study.timepoints[0].seg, again.timepoints[0].seg)
    assert all(arrays_equal(study.tissue[k], again.tissue[k]) for k in study.tissue)
    assert np.allclose(again.transforms["tp1"].GetParameters(), transform.GetParameters())
    manifest = json.loads((out / "study.json").read_text())
    assert manifest["timepoints"] == [{"id": "tp0", "day": 0}, {"id": "tp1", "day": 45.5}]
    # writing the same study twice gives the same bytes (deterministic files)
    out2 = write_study(again, tmp_path / "out2")
    assert folder_digest(out) == folder_digest(out2)


def test_reads_nrrd_and_nifti_mixed(tmp_path):
    folder = make_study_folder(tmp_path / "in", with_tissue=False)
    image = sitk.ReadImage(str(folder / "tp1" / "t2f.nii.gz"))
    (folder / "tp1" / "t2f.nii.gz").unlink()
    sitk.WriteImage(image, str(folder / "tp1" / "t2f.nrrd"))
    study = read_study(folder)
    assert arrays_equal(study.timepoint("tp1").images["t2f"], image)
    assert study.tissue is None


def test_reading_and_failed_writing_never_touch_the_input(tmp_path):
    source = make_study_folder(tmp_path / "in")
    before = folder_digest(source)
    study = read_study(source)
    with pytest.raises(ValueError, match="read-only"):
        write_study(study, source, overwrite=True)
    with pytest.raises(ValueError, match="read-only"):
        write_study(study, tmp_path / "in" / "." , overwrite=True)
    assert folder_digest(source) == before


def test_refuses_non_empty_output_unless_overwrite(tmp_path):
    study = read_study(make_study_folder(tmp_path / "in"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    with pytest.raises(FileExistsError, match="overwrite"):
        write_study(study, out)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    write_study(study, out, overwrite=True)
    assert read_study(out).days_observed == (0.0, 45.5)


def test_write_rejects_an_invalid_study(tmp_path):
    image = tiny_image()
    study = Study("s", "glioma", (Timepoint("tp0", 10, {"t1n": image}), Timepoint("tp1", 5, {"t1n": image})))
    with pytest.raises(ValueError, match=r"timepoints.*strictly increasing"):
        write_study(study, tmp_path / "out")
    assert not (tmp_path / "out").exists()
