"""Segment one timepoint: preprocessing, Gaussian-blended sliding windows, BraTS labels on the input grid.

    >>> import SimpleITK as sitk, numpy as np, torch
    >>> from HybridNeuroLib.segment import SegmentationModel, build_network, segment_timepoint
    >>> spec = {"architecture": "UNet", "network": {"spatial_dims": 3, "in_channels": 1, "out_channels": 3,
    ...         "channels": [4, 8], "strides": [2], "num_res_units": 0}}
    >>> model = SegmentationModel(build_network(spec).eval(), ("t2f",), (2.0, 2.0, 2.0), (16, 16, 16))
    >>> image = sitk.GetImageFromArray(np.random.default_rng(0).random((12, 20, 18)).astype(np.float32))
    >>> image.SetSpacing((1.5, 1.5, 3.0))
    >>> labels = segment_timepoint({"t2f": image}, model, force_cpu=True)
    >>> labels.GetSize() == image.GetSize() and labels.GetSpacing() == image.GetSpacing()
    True

``segment_timepoint`` checks the model's contrasts, builds the channel stack in the model's
order, preprocesses it (:mod:`HybridNeuroLib.segment.preprocess`), runs
``monai.inferers.sliding_window_inference`` (Gaussian blending, optional flip test-time
augmentation, float16 autocast on CUDA), turns the three sigmoid channels into probabilities,
resamples them (linear) onto the input grid and thresholds them into BraTS labels. The result
has exactly the input image's size, spacing, origin and direction. On CUDA out-of-memory it
says so and reruns on the CPU.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Callable

import numpy as np
import SimpleITK as sitk
import torch
from monai.inferers import sliding_window_inference

from HybridNeuroLib.device import pick_device
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.segment.channels import channels_to_labels
from HybridNeuroLib.segment.model import SegmentationModel
from HybridNeuroLib.segment.preprocess import (foreground_box, mask_bounds_kji, meta_tensor_to_images, preprocess,
                                               to_meta_tensor)

WINDOW_OVERLAP = 0.5
FLIP_AXES = ((2,), (3,), (4,))  # spatial axes of a (batch, channel, i, j, k) tensor


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def model_input(images: dict[str, sitk.Image], model: SegmentationModel,
                box: tuple[tuple[int, int, int], tuple[int, int, int]] | None = None):
    """The preprocessed channel-first MetaTensor of ``images`` (cropped to ``box``: index, size in i, j, k) on the
    model's grid, its axes in RAS order."""
    model.check_contrasts(images.keys())
    stack = to_meta_tensor([images[key] for key in model.contrasts], what=", ".join(model.contrasts), box=box)
    return preprocess({"image": stack}, model.spacing_mm, model.contrasts)["image"]


def sliding_window_probabilities(network: torch.nn.Module, image: torch.Tensor, roi_size, *,
                                 device: torch.device, tta: bool = False) -> torch.Tensor:
    """Sigmoid probabilities (3, i, j, k) on ``image``'s grid; ``image`` is (C, i, j, k)."""
    inputs = image.as_tensor() if hasattr(image, "as_tensor") else image
    inputs = inputs.unsqueeze(0).to(device)
    network = network.to(device).eval()
    autocast = (torch.autocast(device_type="cuda", dtype=torch.float16) if device.type == "cuda"
                else contextlib.nullcontext())

    def run(x: torch.Tensor) -> torch.Tensor:
        logits = sliding_window_inference(x, roi_size=tuple(roi_size), sw_batch_size=1, predictor=network,
                                          overlap=WINDOW_OVERLAP, mode="gaussian")
        return torch.sigmoid(logits.float())

    with torch.inference_mode(), autocast:
        probabilities = run(inputs)
        if tta:
            for axes in FLIP_AXES:
                probabilities += torch.flip(run(torch.flip(inputs, axes)), axes)
            probabilities /= 1 + len(FLIP_AXES)
    if probabilities.shape[1] != 3:
        raise ValueError(f"the network outputs {probabilities.shape[1]} channels; expected 3 "
                         "(tumor core, whole tumor, enhancing tumor)")
    return probabilities[0].cpu()


def segment_timepoint(images: dict[str, sitk.Image], model: SegmentationModel, *,
                      device: torch.device | str | None = None, force_cpu: bool = False, tta: bool = False,
                      say: Callable[[str], None] = _say) -> sitk.Image:
    """BraTS labels (uint8: 1 necrotic core, 2 edema, 3 enhancing) on the grid of ``images``."""
    if not images:
        raise ValueError("no images given to segment")
    reference = images[model.contrasts[0]] if model.contrasts[0] in images else next(iter(images.values()))
    model.check_contrasts(images.keys())
    box = foreground_box([images[key] for key in model.contrasts], what=", ".join(model.contrasts))
    prepared = model_input(images, model, box)
    device = torch.device(device) if device is not None else pick_device(force_cpu)
    if force_cpu:
        device = torch.device("cpu")
    try:
        probabilities = sliding_window_probabilities(model.network, prepared, model.roi_size, device=device, tta=tta)
    except torch.cuda.OutOfMemoryError:
        say(f"segmentation: out of GPU memory on {device}; running on the CPU instead (slower)")
        torch.cuda.empty_cache()
        probabilities = sliding_window_probabilities(model.network, prepared, model.roi_size,
                                                     device=torch.device("cpu"), tta=tta)
    prepared_probabilities = type(prepared)(probabilities, affine=prepared.affine)
    return probabilities_to_labels(meta_tensor_to_images(prepared_probabilities), reference, box)


def probabilities_to_labels(channel_images: list[sitk.Image], reference: sitk.Image,
                            box: tuple[tuple[int, int, int], tuple[int, int, int]] | None = None,
                            threshold: float = 0.5) -> sitk.Image:
    """Resample TC/WT/ET probability images onto ``reference`` (linear, 0 outside) and threshold into labels.

    Only the part of the reference that can hold a label is resampled (:func:`label_region`);
    the result equals resampling the whole grid, voxel for voxel. With ``box`` (index, size in
    i, j, k) voxels outside it, background the network never saw, are label 0.
    """
    geometry = ImageGeometry.from_image(reference)
    labels = np.zeros(geometry.shape_kji, np.uint8)
    region = label_region(channel_images, reference, box, threshold)
    if region is not None:
        index, size = region
        origin = reference.TransformIndexToPhysicalPoint(index)
        resampled = [sitk.GetArrayFromImage(sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, origin,
                                                          reference.GetSpacing(), reference.GetDirection(), 0.0,
                                                          sitk.sitkFloat32)) for image in channel_images]
        labels[tuple(slice(start, start + n) for start, n in zip(index[::-1], size[::-1]))] = \
            channels_to_labels(np.stack(resampled), threshold)
    return geometry.image_from_array(labels)


def label_region(channel_images: list[sitk.Image], reference: sitk.Image,
                 box: tuple[tuple[int, int, int], tuple[int, int, int]] | None = None,
                 threshold: float = 0.5) -> tuple[tuple[int, int, int], tuple[int, int, int]] | None:
    """(index, size) in i, j, k of the ``reference`` voxels that can get a label; None when none can.

    A linearly interpolated value is a weighted mean of the 8 source voxels around the point, so
    it reaches ``threshold`` only next to a source voxel that does: the box of those voxels grown
    by one voxel, mapped onto the reference, holds every labelled voxel. Resampling just that box
    instead of the whole brain removed most of the cost of returning to the input grid.
    """
    above = np.zeros(channel_images[0].GetSize()[::-1], bool)
    for image in channel_images:
        above |= sitk.GetArrayViewFromImage(image) >= threshold
    bounds = mask_bounds_kji(above)
    if bounds is None:
        return None
    low, high = (bounds[0] - 1.0)[::-1], (bounds[1] + 1.0)[::-1]  # i, j, k, grown by one source voxel
    source = channel_images[0]
    corners = [reference.TransformPhysicalPointToContinuousIndex(source.TransformContinuousIndexToPhysicalPoint(
        [high[a] if (corner >> a) & 1 else low[a] for a in range(3)])) for corner in range(8)]
    clip_low, clip_size = box if box is not None else ((0, 0, 0), reference.GetSize())
    start = np.maximum(np.floor(np.min(corners, axis=0)).astype(int) - 1, clip_low)
    stop = np.minimum(np.ceil(np.max(corners, axis=0)).astype(int) + 2, np.add(clip_low, clip_size))
    if np.any(stop <= start):
        return None
    return tuple(int(v) for v in start), tuple(int(v) for v in stop - start)
