"""segment_timepoint: labels land on the input grid exactly, in the right place; clear errors."""

import math

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from HybridNeuroLib.segment import SegmentationModel, segment_timepoint
from HybridNeuroLib.segment import inference
from segment_cases import IntensityOracle, tiny_unet_model, one_thread  # noqa: F401 (autouse fixture)


def oblique_ball_image():
    """An oblique, anisotropic, off-origin image with a bright ball (value 3) in a dim brain (value 1)."""
    shape_kji = (20, 30, 26)
    grid = np.indices(shape_kji).astype(float)
    centre = (9.0, 17.0, 11.0)
    ball = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, (2.5, 1.2, 1.3))) < 7.0 ** 2
    array = np.ones(shape_kji, np.float32)
    array[ball] = 3.0
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.3, 1.2, 2.5))
    image.SetOrigin((-12.5, 40.25, 7.0))
    a, b = math.radians(20), math.radians(-35)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    image.SetDirection(tuple((rz @ rx @ np.diag([-1.0, 1.0, 1.0])).ravel()))  # includes an axis flip
    return image, ball


def oracle_model(contrasts=("t2f",)):
    return SegmentationModel(IntensityOracle(len(contrasts)), tuple(contrasts), (1.5, 1.5, 1.5), (16, 16, 16))


def test_output_is_exactly_on_the_input_grid_and_finds_the_lesion_where_it_is():
    image, ball = oblique_ball_image()
    labels = segment_timepoint({"t2f": image}, oracle_model(), force_cpu=True)
    assert labels.GetSize() == image.GetSize()
    assert labels.GetSpacing() == image.GetSpacing()
    assert labels.GetOrigin() == image.GetOrigin()
    assert labels.GetDirection() == image.GetDirection()
    assert labels.GetPixelID() == sitk.sitkUInt8
    found = sitk.GetArrayFromImage(labels)
    assert set(np.unique(found)) == {0, 3}  # the oracle marks all three channels → enhancing
    dice = 2 * ((found == 3) & ball).sum() / ((found == 3).sum() + ball.sum())
    assert dice > 0.9, dice


def test_flip_tta_keeps_a_symmetric_oracle_result():
    image, ball = oblique_ball_image()
    plain = sitk.GetArrayFromImage(segment_timepoint({"t2f": image}, oracle_model(), force_cpu=True))
    tta = sitk.GetArrayFromImage(segment_timepoint({"t2f": image}, oracle_model(), force_cpu=True, tta=True))
    assert (plain != tta).mean() < 0.01


def test_channels_follow_the_model_contrast_order():
    image, ball = oblique_ball_image()
    dark = sitk.Image(image)
    dark = sitk.Cast(dark * 0 + 1.0, sitk.sitkFloat32)
    dark.CopyInformation(image)
    model = oracle_model(("t1c", "t2f"))  # the oracle reads channel 0 = t1c
    assert sitk.GetArrayFromImage(segment_timepoint({"t2f": dark, "t1c": image}, model)).max() == 3
    assert sitk.GetArrayFromImage(segment_timepoint({"t2f": image, "t1c": dark}, model)).max() == 0


def test_missing_contrasts_are_named():
    image, _ = oblique_ball_image()
    with pytest.raises(ValueError, match=r"needs contrast\(s\) t1c, t2w.*has t2f"):
        segment_timepoint({"t2f": image}, oracle_model(("t1c", "t2w", "t2f")))


def test_empty_image_and_mismatched_grids_are_refused():
    image, _ = oblique_ball_image()
    empty = sitk.Image(image.GetSize(), sitk.sitkFloat32)
    empty.CopyInformation(image)
    with pytest.raises(ValueError, match="empty"):
        segment_timepoint({"t2f": empty}, oracle_model())
    shifted = sitk.Image(image)
    shifted.SetOrigin((0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="not on one voxel grid"):
        segment_timepoint({"t1c": image, "t2f": shifted}, oracle_model(("t1c", "t2f")))


def test_a_network_with_the_wrong_channel_count_gives_a_clear_error():
    image, _ = oblique_ball_image()
    model = tiny_unet_model(("t2f",))
    model.network = torch.nn.Conv3d(1, 2, 1)  # two outputs instead of three
    with pytest.raises(ValueError, match="outputs 2 channels; expected 3"):
        segment_timepoint({"t2f": image}, model)


def test_cuda_out_of_memory_falls_back_to_the_cpu_with_a_message(monkeypatch):
    image, ball = oblique_ball_image()
    real = inference.sliding_window_probabilities
    devices = []

    def flaky(network, prepared, roi_size, *, device, tta=False):
        devices.append(device.type)
        if len(devices) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(network, prepared, roi_size, device=device, tta=tta)

    monkeypatch.setattr(inference, "sliding_window_probabilities", flaky)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    messages = []
    labels = segment_timepoint({"t2f": image}, oracle_model(), device="cuda", say=messages.append)
    assert devices == ["cuda", "cpu"]
    assert "out of GPU memory" in messages[0] and "CPU" in messages[0]
    assert (sitk.GetArrayFromImage(labels) == 3).sum() > 0.9 * ball.sum()
