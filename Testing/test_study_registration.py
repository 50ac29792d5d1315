"""Rigid registration of later timepoints recovers a known head movement (≤ 1 mm, ≤ 1°)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from HybridNeuroLib.anatomy import load_atlas
from HybridNeuroLib.study import Study, Timepoint, read_study, register_study, write_study
from HybridNeuroLib.study.registration import register_rigid, rigid_error


@pytest.fixture(scope="module")
def brain():
    """Atlas T1 at 2 mm and a 'lesion' label map on its grid."""
    t1 = load_atlas(voxel_mm=2).t1
    labels = np.zeros(sitk.GetArrayViewFromImage(t1).shape, np.uint8)
    labels[30:36, 40:50, 30:38] = 2
    labels[32:34, 44:47, 33:35] = 3
    seg = sitk.GetImageFromArray(labels)
    seg.CopyInformation(t1)
    return t1, seg


def moved_scan(image: sitk.Image, truth: sitk.Transform, spacing_mm: float, interpolator=sitk.sitkLinear):
    """``image`` seen after the head moved by ``truth``, on a different (coarser, shifted) grid."""
    size = [int(math.ceil(n * s / spacing_mm)) for n, s in zip(image.GetSize(), image.GetSpacing())]
    grid = sitk.Image(size, image.GetPixelID())
    grid.SetSpacing([spacing_mm] * 3)
    grid.SetDirection(image.GetDirection())
    grid.SetOrigin(np.add(image.GetOrigin(), (3.0, -2.0, 1.0)).tolist())
    return sitk.Resample(image, grid, truth.GetInverse(), interpolator, 0)


def head_movement(image: sitk.Image) -> sitk.Euler3DTransform:
    centre = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()])
    return sitk.Euler3DTransform(centre, math.radians(4.0), math.radians(-3.0), math.radians(5.0), (5.0, -3.0, 4.0))


def test_register_rigid_recovers_a_known_transform(brain):
    t1, _ = brain
    truth = head_movement(t1)
    found = register_rigid(t1, moved_scan(t1, truth, spacing_mm=2.5))
    mm, degrees = rigid_error(found, truth, t1)
    assert mm <= 1.0 and degrees <= 1.0, (mm, degrees)
    assert rigid_error(sitk.Euler3DTransform(), truth, t1)[0] > 10.0  # the movement was real


def test_register_study_resamples_to_the_first_grid_and_keeps_transforms(brain, tmp_path):
    t1, seg = brain
    truth = head_movement(t1)
    moved = Timepoint("tp1", 60.0, {"t1n": moved_scan(t1, truth, 2.5)},
                      moved_scan(seg, truth, 2.5, sitk.sitkNearestNeighbor))
    study = Study("s", "glioma", (Timepoint("tp0", 0.0, {"t1n": t1}, seg), moved))
    registered = register_study(study)
    tp1 = registered.timepoints[1]
    assert tp1.images["t1n"].GetSize() == t1.GetSize() and tp1.images["t1n"].GetOrigin() == t1.GetOrigin()
    assert tp1.seg.GetPixelID() == seg.GetPixelID()
    labels, back = sitk.GetArrayFromImage(seg), sitk.GetArrayFromImage(tp1.seg)
    assert set(np.unique(back)) <= {0, 2, 3}                      # nearest neighbour: no blended labels
    overlap = 2 * np.sum((labels > 0) & (back > 0)) / (np.sum(labels > 0) + np.sum(back > 0))
    assert overlap > 0.8, overlap
    intensity = sitk.GetArrayFromImage(tp1.images["t1n"])
    reference = sitk.GetArrayFromImage(t1)
    assert np.corrcoef(intensity.ravel(), reference.ravel())[0, 1] > 0.95
    mm, degrees = rigid_error(registered.transforms["tp1"], truth, t1)
    assert mm <= 1.0 and degrees <= 1.0
    # the transform travels with the written study
    out = write_study(registered, tmp_path / "registered")
    assert (out / "transforms" / "tp1.tfm").is_file()
    again = read_study(out)
    assert np.allclose(again.transforms["tp1"].GetParameters(), registered.transforms["tp1"].GetParameters())


def test_same_grid_timepoints_are_left_alone_unless_asked(brain):
    t1, _ = brain
    study = Study("s", "glioma", (Timepoint("tp0", 0.0, {"t1n": t1}), Timepoint("tp1", 9.0, {"t1n": t1})))
    registered = register_study(study)
    assert registered.timepoints[1] is study.timepoints[1]
    assert registered.transforms["tp1"].GetParameters() == (0.0,) * 6


def test_timepoints_without_a_shared_modality_are_an_error(brain):
    t1, _ = brain
    other = moved_scan(t1, sitk.Euler3DTransform(), 3.0)
    study = Study("s", "glioma", (Timepoint("tp0", 0.0, {"t1n": t1}), Timepoint("tp1", 9.0, {"t2w": other})))
    with pytest.raises(ValueError, match="share no modality"):
        register_study(study)
