"""Ground-truth lesion growth: anisotropic Fisher–Kolmogorov with a necrotic second species.

    >>> import numpy as np
    >>> from HybridNeuroLib.geometry import ImageGeometry
    >>> from HybridNeuroLib.physics.tissue import TissueMaps
    >>> from HybridNeuroLib.synth.growth import grow_lesion
    >>> from HybridNeuroLib.synth.parameters import SubjectParameters
    >>> grid = ImageGeometry((24, 24, 24), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    >>> wm = np.ones(grid.shape_kji, np.float32)
    >>> tissue = TissueMaps(gm=0 * wm, wm=wm, csf=0 * wm, geometry=grid)
    >>> truth = grow_lesion(tissue, SubjectParameters(0.3, 0.1, detection_radius_mm=6.0), (12, 12, 12),
    ...                     output_days=(0.0, 20.0), rng=np.random.default_rng(0))
    >>> truth.lesion_volume_ml(0.0) < truth.lesion_volume_ml(20.0)
    True

Model (u proliferating, n necrotic cell density, both relative to carrying capacity)::

    ∂u/∂t = D_w ∇·(T(x)∇u) + ρ(x)·u·(1 − u − n) − δ(u + n)·u − k(t)·u
    ∂n/∂t = δ(u + n)·u,      δ(c) = γ·clip((c − c_h)/(1 − c_h), 0, 1)

T(x) = F(x)·(I − s(x)(1 − 1/a)·ν νᵀ): F = p_wm + p_gm/r (0 outside the tissue domain, a
no-flux wall), ν the unit normal of white-matter iso-surfaces (gradient of the smoothed WM
map), s ∈ [0, 1) how sharp that surface is, a the anisotropy: cells spread a times faster
*along* white-matter sheets than across their boundaries — a fibre-like field derived from
the anatomy itself. ρ(x) = ρ·exp(σz(x) − σ²/2) with z a smooth unit Gaussian field. Dead
cells do not move. Treatment: at its day u ← S·u, then k(t) = k for the chemo period.

Numerics: Strang splitting with steps ≤ 2 days — half a reaction step (explicit, sub-steps
≤ 0.25 day), the diffusion step by the physics package's RKL2 super-time-stepping
(``HybridNeuroLib.physics.solvers.rkl2_diffusion_step`` on its ``TensorDiffusion`` operator),
half a reaction step. Growth starts from a small seed and runs until the FLAIR-visible
lesion reaches ``detection_radius_mm`` (equivalent sphere); that moment is day 0. The
computation runs in a box of ±``box_half_width_mm`` around the seed (the density at its
faces is reported in ``box_face_max_density``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from scipy import ndimage

from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.physics.initial import Seed, seed_density
from HybridNeuroLib.physics.model import FisherKolmogorov
from HybridNeuroLib.physics.operators import TensorDiffusion
from HybridNeuroLib.physics.solvers import rkl2_diffusion_step, rkl2_stages
from HybridNeuroLib.physics.tissue import TissueMaps
from HybridNeuroLib.synth.fields import smooth_noise
from HybridNeuroLib.synth.parameters import SubjectParameters

MAX_STEP_DAYS = 2.0
REACTION_SUBSTEP_DAYS = 0.25
MAX_PRE_DETECTION_DAYS = 4000.0
SURFACE_SHARPNESS_PER_MM = 0.05
TINY_DENSITY = 1e-20  # |∇p_wm| at which a WM boundary counts as half sharp


@dataclass
class GrowthTruth:
    """Densities on the full grid at each output day, and what the run did."""

    geometry: ImageGeometry
    proliferating: dict[float, np.ndarray]
    necrotic: dict[float, np.ndarray]
    pre_detection_days: float
    box_face_max_density: float
    steps: int = 0
    info: dict = field(default_factory=dict)

    def total(self, day: float) -> np.ndarray:
        return self.proliferating[day] + self.necrotic[day]

    def lesion_volume_ml(self, day: float, threshold: float = 0.25) -> float:
        return float((self.total(day) >= threshold).sum()) * self.geometry.voxel_volume_mm3 / 1000.0


def fibre_tensor(factor: np.ndarray, wm: np.ndarray, spacing_kji_mm, anisotropy: float) -> np.ndarray:
    """T = F·(I − s(1 − 1/a)ννᵀ), shape ``[3, 3, k, j, i]`` (axes k, j, i)."""
    smooth = ndimage.gaussian_filter(wm.astype(np.float64), [2.0 / h for h in spacing_kji_mm])
    gradient = np.stack(np.gradient(smooth, *spacing_kji_mm))
    magnitude2 = (gradient ** 2).sum(axis=0)
    normal = gradient / np.sqrt(np.maximum(magnitude2, 1e-20))
    sharpness = magnitude2 / (magnitude2 + SURFACE_SHARPNESS_PER_MM ** 2)
    reduction = sharpness * (1.0 - 1.0 / anisotropy)
    tensor = np.empty((3, 3, *factor.shape), np.float32)
    for a in range(3):
        for b in range(3):
            tensor[a, b] = factor * ((a == b) - reduction * normal[a] * normal[b])
    return tensor


def _box(seed_kji, shape_kji, half_width_voxels) -> tuple[slice, slice, slice]:
    return tuple(slice(max(0, int(c) - w), min(n, int(c) + w + 1))
                 for c, n, w in zip(seed_kji, shape_kji, half_width_voxels))


def grow_lesion(*args, **kwargs) -> GrowthTruth:
    """Grow from a seed at voxel ``seed_kji`` and return the densities at ``output_days`` (≥ 0, after detection).

    Arguments: ``(tissue, parameters, seed_kji, output_days, rng, *, box_half_width_mm=50,
    on_progress=None)``. Runs torch on one thread: these small element-wise kernels were
    measured 10× slower multi-threaded once other libraries (ITK) or ``torch.manual_seed``
    had touched the thread pools on 2-core machines; the number of threads is restored after.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _grow_lesion(*args, **kwargs)
    finally:
        torch.set_num_threads(threads)


def _grow_lesion(tissue: TissueMaps, parameters: SubjectParameters, seed_kji: tuple[int, int, int],
                 output_days, rng: np.random.Generator, *, box_half_width_mm: float = 50.0,
                 on_progress: Callable[[float], None] | None = None) -> GrowthTruth:
    p = parameters
    geometry = tissue.geometry
    spacing = tuple(reversed(geometry.spacing_mm))  # (k, j, i)
    box = _box(seed_kji, geometry.shape_kji, [int(math.ceil(box_half_width_mm / h)) for h in spacing])
    factor = tissue.relative_diffusivity(p.wm_to_gm_ratio)[box]
    domain = torch.from_numpy((factor > 0).astype(np.float32))
    tensor = torch.from_numpy(fibre_tensor(factor, tissue.wm[box], spacing, p.anisotropy))
    model = FisherKolmogorov(TensorDiffusion(tensor, spacing), p.dw_mm2_per_day, 0.0)
    log_rho = p.rho_log_sd * smooth_noise(factor.shape, spacing, p.rho_correlation_mm, rng) - 0.5 * p.rho_log_sd ** 2
    rho = torch.from_numpy((p.rho_per_day * np.exp(log_rho)).astype(np.float32)) * domain

    centre_ras = geometry.ijk_to_ras() @ np.array([*reversed(seed_kji), 1.0])
    u = seed_density(geometry, Seed(tuple(centre_ras[:3]), radius_mm=p.seed_radius_mm, peak_density=0.5),
                     offset_kji=tuple(s.start for s in box), shape_kji=factor.shape) * domain
    n = torch.zeros_like(u)
    voxel_ml = geometry.voxel_volume_mm3 / 1000.0
    target_ml = 4.0 / 3.0 * math.pi * p.detection_radius_mm ** 3 / 1000.0
    steps = 0

    def react(u, n, days, kill):
        count = max(1, math.ceil(days / REACTION_SUBSTEP_DAYS - 1e-9))
        h = days / count
        for _ in range(count):
            crowd = u + n
            death = p.necrosis_rate_per_day * ((crowd - p.crowding_threshold) / (1.0 - p.crowding_threshold)).clamp(0, 1)
            dead = h * death * u
            u = (u + h * (rho * u * (1.0 - crowd) - kill * u) - dead).clamp(0.0, 1.0)
            n = (n + dead).clamp(max=1.0)
        return u, n

    def step(u, n, days, kill):
        nonlocal steps
        u, n = react(u, n, 0.5 * days, kill)
        rate = model.diffusion_rate_per_day()
        if rate > 0:
            u = rkl2_diffusion_step(model, u, days, rkl2_stages(days, 1.0 / rate), inplace=True)
        u = torch.minimum(u.clamp_(min=0.0), 1.0 - n)  # RKL2 is not monotone: keep 0 ≤ u ≤ 1 − n
        # far from the lesion u decays into float32 subnormals, ~100× slower on CPUs: zero them
        u.masked_fill_(u < TINY_DENSITY, 0.0)
        steps += 1
        return react(u, n, 0.5 * days, kill)

    with torch.no_grad():
        pre_days = 0.0
        while float(((u + n) >= p.edema_threshold).sum()) * voxel_ml < target_ml:
            if pre_days >= MAX_PRE_DETECTION_DAYS:
                raise ValueError(f"the lesion did not reach detection_radius_mm = {p.detection_radius_mm} within "
                                 f"{MAX_PRE_DETECTION_DAYS:g} days (dw_mm2_per_day = {p.dw_mm2_per_day:g}, "
                                 f"rho_per_day = {p.rho_per_day:g}); choose faster growth or a smaller radius")
            u, n = step(u, n, MAX_STEP_DAYS, 0.0)
            pre_days += MAX_STEP_DAYS

        days = sorted(float(d) for d in output_days)
        treatment = p.treatment
        breakpoints = {0.0, *days}
        if treatment is not None:
            breakpoints |= {treatment.day, treatment.day + treatment.chemo_days}
        breakpoints = sorted(b for b in breakpoints if 0.0 <= b <= days[-1])
        outputs_u, outputs_n = {}, {}
        for start, stop in zip([None, *breakpoints], breakpoints):
            if start is not None and stop > start:
                count = max(1, math.ceil((stop - start) / MAX_STEP_DAYS - 1e-9))
                kill = 0.0
                if treatment is not None and treatment.day <= start < treatment.day + treatment.chemo_days:
                    kill = treatment.chemo_kill_rate_per_day
                for _ in range(count):
                    u, n = step(u, n, (stop - start) / count, kill)
                if on_progress is not None:
                    on_progress(stop)
            if treatment is not None and stop == treatment.day:
                u = u * treatment.surviving_fraction
            if stop in days:
                outputs_u[stop], outputs_n[stop] = u.numpy().copy(), n.numpy().copy()

    faces = max(float(np.abs(np.take(outputs_u[days[-1]] + outputs_n[days[-1]], [0, -1], axis=a)).max())
                for a in range(3))
    full = lambda array: _paste(array, box, geometry.shape_kji)  # noqa: E731
    return GrowthTruth(geometry, {d: full(a) for d, a in outputs_u.items()}, {d: full(a) for d, a in outputs_n.items()},
                       pre_detection_days=pre_days, box_face_max_density=faces, steps=steps)


def _paste(array: np.ndarray, box, shape) -> np.ndarray:
    full = np.zeros(shape, np.float32)
    full[box] = array
    return full
