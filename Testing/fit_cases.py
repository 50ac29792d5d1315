"""Small synthetic patients for the fit tests: a phantom brain and a lesion grown by the same FK model."""

from __future__ import annotations

import numpy as np

from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.physics import GrowthParameters, Seed, TissueMaps, simulate

TRUE_DW_MM2_PER_DAY = 0.4
TRUE_RHO_PER_DAY = 0.04


def phantom_tissue(size: int = 32, voxel_mm: float = 2.0) -> TissueMaps:
    """A white-matter block with a grey-matter slab, CSF around it, on an oblique-free grid."""
    grid = ImageGeometry((size,) * 3, (voxel_mm,) * 3, (10.0, -20.0, 5.0), tuple(map(tuple, np.eye(3))))
    wm = np.zeros(grid.shape_kji, np.float32)
    wm[2:-2, 2:-2, 2:-2] = 1.0
    gm = np.zeros_like(wm)
    gm[2:-2, 2:-2, 2:6] = 1.0
    wm[gm > 0] = 0.0
    return TissueMaps(gm=gm, wm=wm, csf=1.0 - wm - gm, geometry=grid)


def centre_ras(tissue: TissueMaps) -> tuple[float, float, float]:
    ijk = (np.asarray(tissue.geometry.size) - 1) / 2.0
    return tuple(float(v) for v in (tissue.geometry.ijk_to_ras() @ np.append(ijk, 1.0))[:3])


def grown_lesion(tissue: TissueMaps, days=(0.0, 40.0, 80.0), dw: float = TRUE_DW_MM2_PER_DAY,
                 rho: float = TRUE_RHO_PER_DAY, onset_days: float = 0.0, seed_radius_mm: float = 5.0):
    """(day, labels) pairs of a lesion grown by the FK model from a seed ``onset_days`` before day 0."""
    result = simulate(tissue, Seed(centre_ras(tissue), seed_radius_mm), GrowthParameters(dw, rho),
                      [d + onset_days for d in days], progress=False)
    return list(zip(days, result.labels)), result
