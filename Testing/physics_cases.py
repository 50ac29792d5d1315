"""Small tissue grids shared by the physics tests (not a test module)."""

from __future__ import annotations

import numpy as np
import torch

from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.physics import TissueMaps


def grid(size_ijk, spacing_ijk=(1.0, 1.0, 1.0), origin_lps=(0.0, 0.0, 0.0), direction=np.eye(3)) -> ImageGeometry:
    return ImageGeometry(tuple(size_ijk), tuple(map(float, spacing_ijk)), tuple(map(float, origin_lps)),
                         tuple(map(tuple, np.asarray(direction, float))))


def white_box(size_ijk, spacing_ijk=(1.0, 1.0, 1.0), border: int = 1, **kwargs) -> TissueMaps:
    """Pure white matter inside, CSF in a ``border``-voxel shell."""
    geometry = grid(size_ijk, spacing_ijk, **kwargs)
    wm = np.zeros(geometry.shape_kji, np.float32)
    inner = tuple(slice(border, n - border) for n in geometry.shape_kji)
    wm[inner] = 1.0
    return TissueMaps(gm=np.zeros_like(wm), wm=wm, csf=1.0 - wm, geometry=geometry)


def phantom_brain(size_ijk=(48, 56, 44), spacing_mm: float = 2.0, seed: int = 0) -> TissueMaps:
    """An ellipsoidal 'brain': WM core, GM cortex, CSF ventricles and outside, noisy partial volumes."""
    geometry = grid(size_ijk, (spacing_mm,) * 3, origin_lps=(-spacing_mm * size_ijk[0] / 2,
                                                             -spacing_mm * size_ijk[1] / 2,
                                                             -spacing_mm * size_ijk[2] / 2))
    k, j, i = np.meshgrid(*[(np.arange(n) + 0.5) / n * 2 - 1 for n in geometry.shape_kji], indexing="ij")
    radius = np.sqrt(i ** 2 + j ** 2 + k ** 2)
    rng = np.random.default_rng(seed)
    smooth = lambda a, b: np.clip((b - radius) / (b - a), 0, 1)  # noqa: E731 - 1 inside a, 0 outside b
    brain = smooth(0.82, 0.9)
    wm = smooth(0.55, 0.7) * brain
    ventricles = np.clip(1 - np.sqrt((i / 0.12) ** 2 + (j / 0.3) ** 2 + (k / 0.15) ** 2), 0, 1) ** 0.5
    wm = wm * (1 - ventricles)
    gm = (brain - wm) * (1 - ventricles) * rng.uniform(0.9, 1.0, radius.shape)
    csf = np.clip(1 - wm - gm, 0, 1)
    return TissueMaps(gm=gm.astype(np.float32), wm=wm.astype(np.float32), csf=csf.astype(np.float32),
                      geometry=geometry)


def dice(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())
