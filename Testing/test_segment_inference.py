"""segment_timepoint: labels land on the input grid exactly, in the right place; clear errors."""

import math

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from HybridNeuroLib.segment import SegmentationModel, segment_timepoint
from HybridNeuroLib.segment import inference
from HybridNeuroLib.segment.preprocess import preprocess_transforms, to_meta_tensor
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
    dark = 1.0 - 0.5 * sitk.Cast(image > 2.0, sitk.sitkFloat32)  # the ball dim instead of bright
    dark.CopyInformation(image)
    model = oracle_model(("t1c", "t2f"))  # the oracle reads channel 0 = t1c
    assert sitk.GetArrayFromImage(segment_timepoint({"t2f": dark, "t1c": image}, model)).max() == 3
    assert sitk.GetArrayFromImage(segment_timepoint({"t2f": image, "t1c": dark}, model)).max() == 0


def test_missing_contrasts_are_named():
    image, _ = oblique_ball_image()
    with pytest.raises(ValueError, match=r"needs contrast\(s\) t1c, t2w.*has t2f"):
        segment_timepoint({"t2f": image}, oracle_model(("t1c", "t2w", "t2f")))


def test_a_contrast_without_contrast_is_refused_by_name():
    image, _ = oblique_ball_image()
    flat = sitk.Cast(image * 0 + 7.0, sitk.sitkFloat32)
    flat.CopyInformation(image)
    with pytest.raises(ValueError, match=r"t1c: the image has no contrast \(every nonzero voxel is 7\)"):
        segment_timepoint({"t2f": image, "t1c": flat}, oracle_model(("t2f", "t1c")))


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


@pytest.mark.parametrize("direction", [np.eye(3), np.diag([1.0, -1.0, 1.0]),
                                       np.array([[0.0, 0.0, 1.0], [0.8, 0.6, 0.0], [-0.6, 0.8, 0.0]])])
def test_labels_from_the_lesion_region_equal_resampling_the_whole_grid(direction):
    """The back-resampling shortcut (only the box that can hold a label) is exact, on axis-aligned and oblique grids."""
    rng = np.random.default_rng(3)
    reference = sitk.Image((41, 37, 29), sitk.sitkFloat32)
    reference.SetSpacing((1.0, 1.2, 1.5))
    reference.SetDirection(tuple(direction.ravel()))
    reference.SetOrigin((-20.0, 5.0, 3.0))
    source_direction = np.eye(3) if np.allclose(direction, np.eye(3)) else np.diag([-1.0, -1.0, 1.0])
    channels = []
    for channel in range(3):  # a smooth blob plus noise below the threshold everywhere else
        k, j, i = np.meshgrid(*(np.arange(n) for n in (22, 26, 24)), indexing="ij")
        blob = np.exp(-((i - 12) ** 2 + (j - 11) ** 2 + (k - 9) ** 2) / (8.0 + 4 * channel))
        image = sitk.GetImageFromArray((blob + 0.4 * rng.random(blob.shape)).astype(np.float32))
        image.SetSpacing((2.0, 2.0, 2.0))
        image.SetDirection(tuple(source_direction.ravel()))
        # source voxel (12, 11, 9) (i, j, k: the blob centre) lies at reference voxel (20, 18, 14)
        offset = source_direction @ (2.0 * np.array([12.0, 11.0, 9.0]))
        image.SetOrigin(tuple(np.asarray(reference.TransformContinuousIndexToPhysicalPoint((20.0, 18.0, 14.0)))
                              - offset))
        channels.append(image)
    whole = np.stack([sitk.GetArrayFromImage(sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear,
                                                            0.0, sitk.sitkFloat32)) for image in channels])
    expected = inference.channels_to_labels(whole)
    found = sitk.GetArrayFromImage(inference.probabilities_to_labels(channels, reference))
    assert expected.any() and (expected == 0).any()
    region = inference.label_region(channels, reference)
    assert np.prod(region[1]) < 0.5 * np.prod(reference.GetSize())   # the shortcut is a real saving here
    np.testing.assert_array_equal(found, expected)


def test_no_label_anywhere_gives_an_all_background_image_on_the_input_grid():
    reference = sitk.Image((10, 11, 12), sitk.sitkFloat32)
    low = sitk.Image((5, 6, 6), sitk.sitkFloat32) + 0.3
    low.SetSpacing((2.0, 2.0, 2.0))
    labels = inference.probabilities_to_labels([low, low, low], reference)
    assert labels.GetSize() == reference.GetSize() and not sitk.GetArrayViewFromImage(labels).any()


@pytest.mark.parametrize("flip_axes", [(), (0,), (1, 2), (0, 1, 2)])
def test_preprocessed_voxels_are_ras_ordered_and_hold_the_input_at_their_world_position(flip_axes):
    """Crop + resampling + reorientation against world coordinates, on oblique grids with axis flips.

    The input is a linear function of the world position, which linear interpolation reproduces
    exactly: every model-grid voxel inside the input must hold that function at its own centre.
    """
    image, _ = oblique_ball_image()
    image = sitk.Flip(image, [axis in flip_axes for axis in range(3)])
    gradient = np.array([0.7, -0.4, 1.1])
    index_kji = np.indices(image.GetSize()[::-1]).reshape(3, -1).T
    world = np.array([image.TransformIndexToPhysicalPoint(tuple(int(v) for v in idx[::-1])) for idx in index_kji])
    ramp = sitk.GetImageFromArray((world @ gradient + 100.0).reshape(image.GetSize()[::-1]).astype(np.float32))
    ramp.CopyInformation(image)
    box = ((3, 5, 2), (17, 21, 13))
    transforms = preprocess_transforms((1.5, 1.5, 1.5)).transforms[:2]       # Spacingd, Orientationd
    out = to_meta_tensor([ramp], box=box)
    for transform in transforms:
        out = transform({"image": out})["image"]
    affine = np.asarray(out.affine, float)
    for axis in range(3):       # RAS ordered: array axis a runs mostly along +R, +A, +S respectively
        assert np.argmax(np.abs(affine[:3, axis])) == axis and affine[axis, axis] > 0
    index = np.indices(out.shape[1:]).reshape(3, -1)
    world_ras = (affine[:3, :3] @ index + affine[:3, 3:]).T
    world_lps = world_ras * np.array([-1.0, -1.0, 1.0])
    inside = np.array([all(-0.01 <= c - lo <= n - 1 + 0.01 for c, lo, n in zip(
        image.TransformPhysicalPointToContinuousIndex(tuple(p)), box[0], box[1])) for p in world_lps])
    assert inside.sum() > 1000
    values = out[0].numpy().reshape(-1)
    np.testing.assert_allclose(values[inside], (world_lps @ gradient + 100.0)[inside], atol=2e-3)


@pytest.mark.parametrize("odd_voxels_only", [False, True])
def test_foreground_box_holds_every_nonzero_voxel_plus_the_margin(odd_voxels_only):
    """The strided scan must never lose a voxel: a solid ellipsoid, and single voxels at odd indices only."""
    from HybridNeuroLib.segment.preprocess import foreground_box
    array = np.zeros((31, 40, 37), np.float32)                              # k, j, i
    if odd_voxels_only:
        array[5, 11, 33] = array[27, 3, 1] = 1.0
    else:
        k, j, i = np.indices(array.shape)
        array[((k - 14) / 9.0) ** 2 + ((j - 21) / 13.0) ** 2 + ((i - 17) / 11.0) ** 2 < 1] = 2.0
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.0, 1.0, 2.0))
    index, size = foreground_box([image, image], margin_mm=4.0)
    present = np.argwhere(array != 0)                                       # k, j, i
    exact_low = np.maximum(present.min(0)[::-1] - (4, 4, 2), 0)
    exact_high = np.minimum(present.max(0)[::-1] + 1 + (4, 4, 2), array.shape[::-1])
    low, high = np.asarray(index), np.asarray(index) + size
    assert np.all(low <= exact_low) and np.all(high >= exact_high)         # nothing lost
    assert np.all(exact_low - low <= 2) and np.all(high - exact_high <= 2)  # and barely more


def test_nonzero_z_score_equals_monai_normalize_intensity():
    """Our vectorised normalisation against MONAI's NormalizeIntensityd(nonzero, channel_wise) as the oracle."""
    from monai.data import MetaTensor
    from monai.transforms import NormalizeIntensityd

    from HybridNeuroLib.segment.preprocess import NonzeroZScored

    rng = np.random.default_rng(5)
    data = (rng.gamma(2.0, 300.0, (4, 9, 10, 11)) + 500.0).astype(np.float32)
    data[:, :3] = 0.0                         # background
    data[2] = 0.0                             # an empty channel stays zero
    data[3, 3:] = 7.0                         # a constant channel: std 0 → divided by 1
    image = MetaTensor(torch.from_numpy(data), affine=torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0])))
    expected = NormalizeIntensityd(keys="image", nonzero=True, channel_wise=True)({"image": image.clone()})["image"]
    found = NonzeroZScored(keys="image")({"image": image})["image"]
    np.testing.assert_allclose(found.numpy(), expected.numpy(), atol=1e-5)
    assert isinstance(found, MetaTensor) and torch.equal(found.affine, image.affine)
    assert np.array_equal(found.numpy()[:, :3], data[:, :3])        # zeros kept
