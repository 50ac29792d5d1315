"""Shared fixtures: a real MRML scene from ``slicer-core`` and oblique test images."""

from __future__ import annotations

import math
import os
import tempfile

import numpy as np
import pytest
import SimpleITK as sitk


# Generated data (the sample case) goes to a private cache, never the user's ~/.cache.
os.environ.setdefault("HYBRIDNEURO_CACHE", tempfile.mkdtemp(prefix="hybridneuro-test-cache-"))


@pytest.fixture
def mrml():
    """A fresh headless Slicer context (scene + logics) with the three slice views' composite nodes."""
    from HybridNeuroLib.mrml import create_headless_scene

    context = create_headless_scene()
    for view in ("Red", "Yellow", "Green"):  # what the Slicer application's layout creates
        composite = context.scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
        composite.SetLayoutName(view)
    return context


def rotation_matrix(degrees_about_z: float, degrees_about_x: float) -> np.ndarray:
    a, b = math.radians(degrees_about_z), math.radians(degrees_about_x)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    return rz @ rx


def make_oblique_image(shape_kji=(7, 9, 11), dtype=np.float32, seed: int = 0) -> sitk.Image:
    """Random voxels on an oblique, anisotropic grid with an off-centre origin."""
    values = np.random.default_rng(seed).random(shape_kji) * 100
    image = sitk.GetImageFromArray(values.astype(dtype))
    image.SetSpacing((0.9, 1.1, 3.0))
    image.SetOrigin((10.5, -20.25, 33.0))
    image.SetDirection(tuple(rotation_matrix(20.0, 10.0).ravel()))
    return image


@pytest.fixture
def oblique_image() -> sitk.Image:
    return make_oblique_image()


def assert_refused(scene, call, *words: str) -> None:
    """``call()`` raises BridgeError mentioning every word, and leaves the scene's node count as it was."""
    from HybridNeuroLib.mrml import BridgeError

    count = scene.GetNumberOfNodes()
    with pytest.raises(BridgeError) as error:
        call()
    for word in words:
        assert word in str(error.value)
    assert scene.GetNumberOfNodes() == count, "a refused call must leave the scene as it was"
