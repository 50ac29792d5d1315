"""Differentiable glioma growth physics: Fisher–Kolmogorov on patient tissue.

    >>> from HybridNeuroLib.physics import GrowthParameters, Seed, SolverSettings, TissueMaps, simulate
    >>> GrowthParameters(dw_mm2_per_day=1.0, rho_per_day=0.05).wm_to_gm_ratio
    10.0

One idea per module: ``tissue`` (maps, diffusivity factor, domain, box), ``operators``
(the finite-volume diffusion operator, scalar and tensor), ``model`` (parameters and the
right-hand side as a torch module), ``solvers`` (Euler; RKL2 super-time-stepping with
Strang splitting), ``initial`` (seeds), ``imaging`` (density → labels), ``treatment``
(resection, radiotherapy, chemotherapy) and ``simulate`` (the one-call API and the
gradient path).
"""

from HybridNeuroLib.physics.imaging import ImagingThresholds, density_to_labels, soft_labels
from HybridNeuroLib.physics.initial import Seed, seed_density
from HybridNeuroLib.physics.model import FisherKolmogorov, GrowthParameters
from HybridNeuroLib.physics.operators import ScalarDiffusion, TensorDiffusion
from HybridNeuroLib.physics.simulate import GrowthProblem, SimulationResult, simulate
from HybridNeuroLib.physics.solvers import SolverSettings, SolveStats, solve
from HybridNeuroLib.physics.tissue import Crop, TissueMaps
from HybridNeuroLib.physics.treatment import Chemotherapy, Radiotherapy, Resection, TreatmentPlan

__all__ = [
    "Chemotherapy", "Crop", "FisherKolmogorov", "GrowthParameters", "GrowthProblem", "ImagingThresholds",
    "Radiotherapy", "Resection", "ScalarDiffusion", "Seed", "SimulationResult", "SolveStats", "SolverSettings",
    "TensorDiffusion", "TissueMaps", "TreatmentPlan", "density_to_labels", "seed_density", "simulate",
    "soft_labels", "solve",
]
