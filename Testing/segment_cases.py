"""Tiny synthetic segmentation cases for the segment tests: a brain box with a layered lesion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from HybridNeuroLib.segment import SegmentationModel, build_network
from HybridNeuroLib.study import Study, Timepoint, write_study

CONTRASTS = ("t1n", "t1c", "t2w", "t2f")


def blob_case(seed: int, shape_kji=(24, 24, 24), spacing_mm=(2.0, 2.0, 2.0)) -> tuple[dict, sitk.Image]:
    """Four contrasts and BraTS labels: a brain box, a lesion (edema shell, enhancing rim, necrotic centre)."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape_kji).astype(float)
    centre = [rng.uniform(0.35, 0.65) * n for n in shape_kji]
    radius = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre))) / rng.uniform(0.8, 1.2)
    labels = np.zeros(shape_kji, np.uint8)
    labels[radius < 6] = 2
    labels[radius < 4] = 3
    labels[radius < 2] = 1
    brain = np.zeros(shape_kji, bool)
    brain[2:-2, 2:-2, 2:-2] = True
    signal = {"t1n": (1.0, 0.7, 0.6, 0.5), "t1c": (1.0, 0.8, 0.3, 2.0), "t2w": (1.0, 1.8, 1.5, 1.3),
              "t2f": (1.0, 2.0, 0.8, 1.2)}  # background brain, edema, necrotic, enhancing
    images = {}
    for key in CONTRASTS:
        values = np.choose(labels, [signal[key][0], signal[key][2], signal[key][1], signal[key][3]])  # by label 0..3
        array = (values + rng.normal(0, 0.05, shape_kji)) * brain
        image = sitk.GetImageFromArray(array.astype(np.float32))
        image.SetSpacing(spacing_mm)
        images[key] = image
    seg = sitk.GetImageFromArray(labels * brain.astype(np.uint8))
    seg.SetSpacing(spacing_mm)
    return images, seg


def write_blob_studies(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` one-timepoint study folders ``folder/s<i>`` with blob cases."""
    folders = []
    for index in range(n):
        images, seg = blob_case(seed + index)
        study = Study(f"blob-{index}", "glioma", (Timepoint("tp0", 0.0, images, seg),))
        folders.append(write_study(study, folder / f"s{index}"))
    return folders


class IntensityOracle(torch.nn.Module):
    """A 'network' that marks bright voxels of channel 0 as tumour (all three channels): tests geometry."""

    def __init__(self, in_channels: int = 1):
        super().__init__()
        self.in_channels = in_channels
        self.scale = torch.nn.Parameter(torch.tensor(10.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            raise RuntimeError(f"expected {self.in_channels} channels, got {x.shape[1]}")
        return (self.scale * (x[:, :1] - 1.0)).repeat(1, 3, 1, 1, 1)


def tiny_unet_model(contrasts=("t2f",), roi=16) -> SegmentationModel:
    spec = {"architecture": "UNet", "network": {"spatial_dims": 3, "in_channels": len(contrasts), "out_channels": 3,
            "channels": [4, 8], "strides": [2], "num_res_units": 0}}
    return SegmentationModel(build_network(spec).eval(), tuple(contrasts), (2.0, 2.0, 2.0), (roi,) * 3)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on small shared CPUs two threads were measured 3-8x slower (spin-waiting)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
