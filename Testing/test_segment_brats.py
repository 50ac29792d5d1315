"""train-seg reads BraTS-layout folders (2023 and 2021 naming) beside study folders, labels converted exactly."""

import numpy as np
import pytest
import SimpleITK as sitk

from HybridNeuroLib.cli import main
from HybridNeuroLib.segment import load_model_folder
from HybridNeuroLib.segment.training import collect_cases
from segment_cases import CONTRASTS, blob_case, one_thread, write_blob_studies  # noqa: F401 (autouse fixture)

NAMES_2021 = {"t1n": "t1", "t1c": "t1ce", "t2w": "t2", "t2f": "flair", "seg": "seg"}


def write_brats_case(root, name, seed, *, year=2023, skip=()):
    images, seg = blob_case(seed)
    folder = root / name
    folder.mkdir(parents=True)
    if year == 2021:
        seg = sitk.Cast(sitk.ChangeLabel(seg, {3: 4}), sitk.sitkUInt8)
    for key, image in {**images, "seg": seg}.items():
        if key not in skip:
            suffix = f"-{key}" if year == 2023 else f"_{NAMES_2021[key]}"
            sitk.WriteImage(image, str(folder / f"{name}{suffix}.nii.gz"))
    return folder


def test_brats_2023_and_2021_cases_are_read_with_subjects_and_exact_labels(tmp_path):
    data = tmp_path / "data"
    write_brats_case(data, "BraTS-GLI-00001-000", 1)
    write_brats_case(data, "BraTS-GLI-00001-001", 2)
    write_brats_case(data / "old", "BraTS2021_00007", 3, year=2021)
    write_blob_studies(data / "studies", 1, seed=4)
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}

    cases = {case.timepoint: case for case in collect_cases(data, CONTRASTS)}
    assert sorted(cases) == ["BraTS-GLI-00001-000", "BraTS-GLI-00001-001", "BraTS2021_00007", "tp0"]
    # one subject for both 2023 timepoints: they stay on one side of the validation split
    assert cases["BraTS-GLI-00001-000"].study == cases["BraTS-GLI-00001-001"].study == "BraTS-GLI-00001"
    _, truth = blob_case(3)
    converted = sitk.GetArrayFromImage(cases["BraTS2021_00007"].seg)
    np.testing.assert_array_equal(converted, sitk.GetArrayFromImage(truth))   # 4 → 3, nothing else changed
    assert set(cases["BraTS2021_00007"].images) == set(CONTRASTS)
    assert {p: p.read_bytes() for p in data.rglob("*") if p.is_file()} == before   # inputs untouched


def test_brats_folders_with_missing_files_or_foreign_labels_are_refused(tmp_path):
    write_brats_case(tmp_path / "a", "BraTS-GLI-00002-000", 1, skip=("t2w",))
    with pytest.raises(ValueError, match=r"BraTS-GLI-00002-000: no t2w file"):
        collect_cases(tmp_path / "a", CONTRASTS)
    folder = write_brats_case(tmp_path / "b", "BraTS-GLI-00003-000", 1)
    seg_path = folder / "BraTS-GLI-00003-000-seg.nii.gz"
    seg = sitk.ReadImage(str(seg_path))
    sitk.WriteImage(sitk.Cast(sitk.ChangeLabel(seg, {2: 7}), sitk.sitkUInt8), str(seg_path))
    with pytest.raises(ValueError, match=r"label values \[0, 1, 3, 7\]"):
        collect_cases(tmp_path / "b", CONTRASTS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no study folder .* and no BraTS case folder"):
        collect_cases(tmp_path / "empty", CONTRASTS)


def test_train_seg_command_trains_on_a_brats_folder(tmp_path):
    data = tmp_path / "brats"
    for n in range(3):
        write_brats_case(data, f"BraTS-GLI-0001{n}-000", 10 + n)
    assert main(["train-seg", str(data), "--out", str(tmp_path / "model"), "--epochs", "1", "--steps-per-epoch", "2",
                 "--roi", "16", "--channels", "4", "8", "--batch-size", "1"]) == 0
    model = load_model_folder(tmp_path / "model")
    assert model.contrasts == CONTRASTS and model.info["training"]["cases"] == 2   # one subject held out
