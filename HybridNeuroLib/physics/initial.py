"""Initial tumour-cell density: a smooth seed placed in world (RAS) coordinates.

    >>> import numpy as np, torch
    >>> from HybridNeuroLib.geometry import ImageGeometry
    >>> from HybridNeuroLib.physics.initial import Seed, seed_density
    >>> grid = ImageGeometry((21, 21, 21), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    >>> u0 = seed_density(grid, Seed(centre_ras_mm=(-10.0, -10.0, 10.0), radius_mm=3.0))
    >>> float(u0[10, 10, 10]), round(float(u0[10, 10, 13]), 3)   # peak at the centre, half at the radius
    (1.0, 0.5)

The seed is u₀(x) = peak·2^(−|x − c|²/R²): a Gaussian whose density is half the peak at
distance R (``radius_mm``) from the centre c. It is smooth, so the solvers see no
unresolved jump, and differentiable in c, R and the peak, so a fit can move the seed.
Distances are physical (spacing and axis directions honoured): with the grid's
orthonormal directions, |x − c|² = Σ_a h_a²(index_a − c_a)², computed separably.
A full density map (e.g. from a previous fit) can be used instead of a seed.
:func:`lesion_seed` places a seed on an observed lesion (the demo's population forecast and
the fit's starting point).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import SimpleITK as sitk
import torch

from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.labels import ImagingThresholds


@dataclass(frozen=True)
class Seed:
    """A smooth seed: centre in RAS mm (Slicer convention), half-maximum radius in mm, peak density."""

    centre_ras_mm: tuple[float, float, float]
    radius_mm: float = 5.0
    peak_density: float = 1.0

    def __post_init__(self) -> None:
        centre = tuple(float(c) for c in self.centre_ras_mm)
        if len(centre) != 3 or not all(math.isfinite(c) for c in centre):
            raise ValueError(f"seed centre_ras_mm must be three finite coordinates in mm, got {self.centre_ras_mm!r}")
        object.__setattr__(self, "centre_ras_mm", centre)
        if not (math.isfinite(self.radius_mm) and 0.0 < self.radius_mm <= 100.0):
            raise ValueError(f"seed radius_mm must lie in (0, 100] mm, got {self.radius_mm!r}")
        if not (math.isfinite(self.peak_density) and 0.0 < self.peak_density <= 1.0):
            raise ValueError(f"seed peak_density must lie in (0, 1], got {self.peak_density!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def seed_density(geometry: ImageGeometry, seed: Seed, *, centre_ras_mm: torch.Tensor | None = None,
                 offset_kji: tuple[int, int, int] = (0, 0, 0), shape_kji: tuple[int, int, int] | None = None,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The seed's density on ``geometry`` (or on a box of it at ``offset_kji`` of ``shape_kji``).

    Pass ``centre_ras_mm`` as a tensor (requires_grad) to differentiate with respect to the centre;
    it then replaces ``seed.centre_ras_mm``.
    """
    shape = geometry.shape_kji if shape_kji is None else tuple(shape_kji)
    ijk_to_ras = torch.as_tensor(geometry.ijk_to_ras(), dtype=torch.float64, device=device)
    centre = (torch.as_tensor(seed.centre_ras_mm, dtype=torch.float64, device=device)
              if centre_ras_mm is None else centre_ras_mm.to(device=device, dtype=torch.float64))
    centre_ijk = torch.linalg.solve(ijk_to_ras[:3, :3], centre - ijk_to_ras[:3, 3])
    squared = torch.zeros((), dtype=torch.float64, device=device)
    for array_axis, ijk_axis in enumerate((2, 1, 0)):  # arrays are [k, j, i]
        index = torch.arange(shape[array_axis], dtype=torch.float64, device=device) + offset_kji[array_axis]
        term = (geometry.spacing_mm[ijk_axis] * (index - centre_ijk[ijk_axis])) ** 2
        squared = squared + term.reshape([-1 if a == array_axis else 1 for a in range(3)])
    return (seed.peak_density * torch.exp2(-squared / seed.radius_mm ** 2)).to(dtype)


def nearest_voxel_kji(geometry: ImageGeometry, point_ras_mm) -> tuple[int, int, int] | None:
    """Array index (k, j, i) of the voxel containing a RAS point, or None outside the grid."""
    ijk = np.rint(geometry.ras_to_ijk(point_ras_mm)).astype(int)
    if np.any(ijk < 0) or np.any(ijk >= np.asarray(geometry.size)):
        return None
    return int(ijk[2]), int(ijk[1]), int(ijk[0])


def lesion_seed(labels: sitk.Image, visible_from: float = ImagingThresholds().edema_flair) -> Seed:
    """A seed at the lesion's centre (RAS mm) whose visible part (u ≥ ``visible_from``) is a sphere of the lesion's volume.

    The seed profile is u = 2^(−r²/R²), visible up to r = R·√log₂(1/θ).
    """
    geometry = ImageGeometry.from_image(labels)
    voxels_kji = np.argwhere(sitk.GetArrayViewFromImage(labels) > 0)
    if not len(voxels_kji):
        raise ValueError("the first timepoint has no lesion to seed the model from")
    centre_ijk = voxels_kji.mean(axis=0)[::-1]
    centre_ras = geometry.ijk_to_ras() @ np.append(centre_ijk, 1.0)
    visible_radius_mm = (3.0 * len(voxels_kji) * geometry.voxel_volume_mm3 / (4.0 * math.pi)) ** (1.0 / 3.0)
    return Seed(tuple(float(v) for v in centre_ras[:3]), visible_radius_mm / math.sqrt(math.log2(1.0 / visible_from)))
