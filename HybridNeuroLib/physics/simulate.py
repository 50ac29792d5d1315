"""Glioma growth in one call: tissue + seed + parameters + days → density and label images per day.

    >>> import numpy as np
    >>> from HybridNeuroLib.geometry import ImageGeometry
    >>> from HybridNeuroLib.physics import GrowthParameters, Seed, TissueMaps, simulate
    >>> grid = ImageGeometry((24, 24, 24), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    >>> wm = np.zeros(grid.shape_kji, np.float32); wm[2:-2, 2:-2, 2:-2] = 1.0
    >>> tissue = TissueMaps(gm=np.zeros_like(wm), wm=wm, csf=1.0 - wm, geometry=grid)
    >>> result = simulate(tissue, Seed(centre_ras_mm=(-24.0, -24.0, 24.0), radius_mm=4.0),
    ...                   GrowthParameters(dw_mm2_per_day=0.5, rho_per_day=0.05), days=[30, 60], progress=False)
    >>> result.days, result.density[-1].GetSize(), result.stats.method
    ((30.0, 60.0), (24, 24, 24), 'rkl2')

Forward prediction runs under ``torch.inference_mode`` on the domain's bounding box (plus a
margin), in float32, on CUDA when available; images come back on the tissue grid.

The gradient path is the same solver with autograd on, through :class:`GrowthProblem`::

    problem = GrowthProblem(tissue, GrowthParameters(1.0, 0.05))
    dw = torch.tensor(1.0, requires_grad=True); rho = torch.tensor(0.05, requires_grad=True)
    centre = torch.tensor(seed.centre_ras_mm, requires_grad=True)
    states, stats = problem.solve(problem.initial_density(seed, centre_ras_mm=centre), dw, rho, [180, 365])
    loss(states).backward()            # gradients in dw.grad, rho.grad, centre.grad

Steps run in ``torch.utils.checkpoint`` chunks, so memory holds one state per chunk and
one chunk's graph (see ``bench/bench_physics.py`` for the measured peak).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import SimpleITK as sitk
import torch

from HybridNeuroLib.device import pick_device
from HybridNeuroLib.physics.imaging import ImagingThresholds, density_to_labels
from HybridNeuroLib.physics.initial import Seed, nearest_voxel_kji, seed_density
from HybridNeuroLib.physics.model import FisherKolmogorov, GrowthParameters
from HybridNeuroLib.physics.operators import ScalarDiffusion, TensorDiffusion
from HybridNeuroLib.physics.solvers import SolverSettings, SolveStats, solve
from HybridNeuroLib.physics.tissue import TissueMaps
from HybridNeuroLib.physics.treatment import TreatmentPlan
from HybridNeuroLib.progress import Progress


class GrowthProblem:
    """Tissue made ready to solve on: box, diffusion operator and domain on one device.

    ``tensor_field`` (optional, ``[3, 3, k, j, i]`` on the tissue grid, dimensionless,
    components along the array axes k, j, i) replaces the scalar factor p_wm + p_gm/r by a
    tensor (e.g. from DTI); the model still multiplies it by D_w.
    """

    def __init__(self, tissue: TissueMaps, parameters: GrowthParameters, *,
                 device: torch.device | str | None = None, margin_voxels: int = 1,
                 tensor_field: np.ndarray | None = None):
        self.tissue, self.parameters = tissue, parameters
        self.device = pick_device() if device is None else torch.device(device)
        self.crop = tissue.bounding_crop(parameters.tissue_threshold, margin_voxels)
        domain = self.crop.crop(tissue.domain_mask(parameters.tissue_threshold))
        self.domain = torch.from_numpy(np.ascontiguousarray(domain)).to(self.device, torch.float32)
        spacing_kji = tissue.geometry.spacing_mm[::-1]
        if tensor_field is None:
            factor = self.crop.crop(tissue.relative_diffusivity(parameters.wm_to_gm_ratio,
                                                                parameters.tissue_threshold))
            self.operator = ScalarDiffusion(torch.from_numpy(np.ascontiguousarray(factor)).to(self.device),
                                            spacing_kji)
        else:
            tensor_field = np.asarray(tensor_field, np.float32)
            if tensor_field.shape != (3, 3, *tissue.geometry.shape_kji):
                raise ValueError(f"tensor_field: shape {tensor_field.shape}, expected "
                                 f"(3, 3, {', '.join(map(str, tissue.geometry.shape_kji))})")
            cropped = torch.from_numpy(np.ascontiguousarray(tensor_field[(slice(None),) * 2 + self.crop.slices]))
            self.operator = TensorDiffusion(cropped.to(self.device) * self.domain, spacing_kji)

    def model(self, dw_mm2_per_day, rho_per_day, kill_rate_per_day: Callable[[float], float] | None = None
              ) -> FisherKolmogorov:
        return FisherKolmogorov(self.operator, dw_mm2_per_day, rho_per_day, kill_rate_per_day, self.domain)

    # -- initial density -------------------------------------------------------------
    def check_seed(self, seed: Seed) -> None:
        index = nearest_voxel_kji(self.tissue.geometry, seed.centre_ras_mm)
        threshold = self.parameters.tissue_threshold
        if index is None:
            raise ValueError(f"seed centre_ras_mm {seed.centre_ras_mm} lies outside the tissue image; "
                             "allowed: a point inside the brain (p_wm + p_gm ≥ tissue_threshold)")
        if self.tissue.wm[index] + self.tissue.gm[index] < threshold:
            raise ValueError(f"seed centre_ras_mm {seed.centre_ras_mm} lies outside the brain "
                             f"(p_wm + p_gm = {self.tissue.wm[index] + self.tissue.gm[index]:.3g} < "
                             f"tissue_threshold {threshold}); allowed: a point inside the tissue domain")

    def initial_density(self, initial: Seed | np.ndarray | sitk.Image, *,
                        centre_ras_mm: torch.Tensor | None = None) -> torch.Tensor:
        """Initial density on the box, zero outside the domain (differentiable in ``centre_ras_mm``)."""
        if isinstance(initial, Seed):
            self.check_seed(initial)
            density = seed_density(self.tissue.geometry, initial, centre_ras_mm=centre_ras_mm,
                                   offset_kji=self.crop.offset_kji, shape_kji=self.crop.cropped_shape,
                                   device=self.device)
            return density * self.domain
        if isinstance(initial, sitk.Image):
            other = type(self.tissue.geometry).from_image(initial)
            if other != self.tissue.geometry:
                raise ValueError(f"initial density: geometry {other} differs from the tissue geometry "
                                 f"{self.tissue.geometry}; resample it onto the tissue grid")
            initial = sitk.GetArrayFromImage(initial)
        array = np.asarray(initial, dtype=np.float32)
        if array.shape != self.tissue.geometry.shape_kji:
            raise ValueError(f"initial density: shape {array.shape} differs from the tissue grid "
                             f"{self.tissue.geometry.shape_kji} (k, j, i)")
        if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
            raise ValueError("initial density: values must be finite and lie in [0, 1]")
        if not (array * self.tissue.domain_mask(self.parameters.tissue_threshold)).any():
            raise ValueError("initial density: no tumour cells inside the brain domain "
                             "(p_wm + p_gm ≥ tissue_threshold); allowed: a map with density > 0 in tissue")
        density = torch.from_numpy(np.ascontiguousarray(self.crop.crop(array))).to(self.device)
        return density * self.domain

    # -- solving ---------------------------------------------------------------------
    def solve(self, u0: torch.Tensor, dw_mm2_per_day, rho_per_day, days: Sequence[float],
              solver: SolverSettings = SolverSettings(), treatment: TreatmentPlan | None = None,
              on_step: Callable[[float], None] | None = None) -> tuple[list[torch.Tensor], SolveStats]:
        """States on the box at ``days``; differentiable when autograd is on (checkpointed)."""
        for name, value in (("dw_mm2_per_day", dw_mm2_per_day), ("rho_per_day", rho_per_day)):
            number = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
            if not (np.isfinite(number) and number >= 0):
                raise ValueError(f"{name} must be a finite number ≥ 0, got {number!r}")
        treatment = treatment or TreatmentPlan()
        model = self.model(dw_mm2_per_day, rho_per_day,
                           treatment.kill_rate_per_day if treatment.chemotherapy else None)
        return solve(model, u0, days, solver, treatment.events(self.crop, self.device),
                     model.kill_rate_per_day, treatment.schedule_days(), on_step)

    def to_full_grid(self, state: torch.Tensor) -> np.ndarray:
        return self.crop.paste(state.detach().to("cpu", torch.float32).numpy())


@dataclass
class SimulationResult:
    """Per-day images on the tissue grid, the exact settings, and what the solver did."""

    days: tuple[float, ...]
    density: list[sitk.Image]
    labels: list[sitk.Image]
    settings: dict
    stats: SolveStats
    wall_time_s: float
    device: str
    box_kji: list[list[int]] = field(default_factory=list)

    def report(self) -> dict:
        """JSON-ready record: settings, solver statistics, time, device."""
        return {"settings": self.settings, "solver": self.stats.to_dict(),
                "wall_time_s": round(self.wall_time_s, 4), "device": self.device,
                "box_kji": self.box_kji}


def simulate(tissue: TissueMaps, initial: Seed | np.ndarray | sitk.Image, parameters: GrowthParameters,
             days: Sequence[float], *, solver: SolverSettings = SolverSettings(),
             thresholds: ImagingThresholds = ImagingThresholds(), treatment: TreatmentPlan | None = None,
             device: torch.device | str | None = None, tensor_field: np.ndarray | None = None,
             progress: bool = True, progress_callback: Callable[[str, float], None] | None = None
             ) -> SimulationResult:
    """Forward prediction (no gradients): density and BraTS label images at each of ``days``."""
    started = time.perf_counter()
    days = tuple(float(d) for d in days)
    problem = GrowthProblem(tissue, parameters, device=device, tensor_field=tensor_field)
    with torch.inference_mode(), Progress("simulate", total=max(days, default=0.0), enabled=progress,
                                          callback=progress_callback, unit="day") as bar:
        u0 = problem.initial_density(initial)
        states, stats = problem.solve(u0, parameters.dw_mm2_per_day, parameters.rho_per_day, days,
                                      solver, treatment, on_step=bar.advance)
        if problem.device.type == "cuda":
            torch.cuda.synchronize()
        arrays = [problem.to_full_grid(state) for state in states]
    geometry = tissue.geometry
    density = [geometry.image_from_array(array) for array in arrays]
    labels = [geometry.image_from_array(density_to_labels(array, thresholds)) for array in arrays]
    settings = {
        "model": "fisher-kolmogorov", "parameters": parameters.to_dict(),
        "initial": initial.to_dict() if isinstance(initial, Seed) else "density map",
        "days": list(days), "solver": solver.to_dict(), "thresholds": thresholds.to_dict(),
        "treatment": _describe(treatment), "diffusion": "scalar" if tensor_field is None else "tensor",
        "dtype": "float32", "units": {"length": "mm", "time": "day"},
    }
    return SimulationResult(days, density, labels, settings, stats, time.perf_counter() - started,
                            str(problem.device), [[s.start, s.stop] for s in problem.crop.slices])


def _describe(treatment: TreatmentPlan | None) -> dict | None:
    if treatment is None:
        return None
    return {
        "resections": [{"day": r.day, "removed_fraction": r.removed_fraction, "voxels": int(np.sum(r.mask))}
                       for r in treatment.resections],
        "radiotherapy": [{"days": list(c.days), "doses_gy": list(c.doses_gy), "alpha_per_gy": c.alpha_per_gy,
                          "alpha_beta_gy": c.alpha_beta_gy, "dose_map": c.dose_map_relative is not None}
                         for c in treatment.radiotherapy],
        "chemotherapy": [vars(c) for c in treatment.chemotherapy],
    }
