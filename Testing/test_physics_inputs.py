"""Bad input stops with an error that names the parameter or input and the allowed range."""

import math

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from HybridNeuroLib.physics import (Chemotherapy, GrowthParameters, GrowthProblem, Radiotherapy, Seed,
                                    SolverSettings, TissueMaps, simulate)
from physics_cases import grid, white_box


@pytest.mark.parametrize("field, value, allowed", [
    ("dw_mm2_per_day", -0.1, r"\[0, 100\]"), ("dw_mm2_per_day", math.nan, r"\[0, 100\]"),
    ("rho_per_day", -1.0, r"\[0, 10\]"), ("rho_per_day", math.inf, r"\[0, 10\]"),
    ("wm_to_gm_ratio", 0.5, r"\[1, 1000\]"), ("tissue_threshold", 0.0, r"\[1e-06, 1\]")])
def test_growth_parameters_out_of_range(field, value, allowed):
    values = {"dw_mm2_per_day": 1.0, "rho_per_day": 0.05, field: value}
    with pytest.raises(ValueError, match=f"{field} must be .*{allowed}"):
        GrowthParameters(**values)


def test_tissue_maps_outside_unit_interval_or_nan():
    tissue = white_box((6, 6, 6))
    with pytest.raises(ValueError, match=r"tissue map 'wm'.*\[0, 1\]"):
        TissueMaps(gm=tissue.gm, wm=tissue.wm * 255, csf=tissue.csf, geometry=tissue.geometry)
    bad = tissue.gm.copy()
    bad[2, 2, 2] = np.nan
    with pytest.raises(ValueError, match=r"tissue map 'gm'.*NaN.*\[0, 1\]"):
        TissueMaps(gm=bad, wm=tissue.wm, csf=tissue.csf, geometry=tissue.geometry)


def test_tissue_maps_of_another_shape_or_geometry():
    tissue = white_box((6, 6, 6))
    with pytest.raises(ValueError, match="tissue map 'csf'.*shape"):
        TissueMaps(gm=tissue.gm, wm=tissue.wm, csf=tissue.csf[:-1], geometry=tissue.geometry)
    images = {name: tissue.geometry.image_from_array(getattr(tissue, name)) for name in ("gm", "wm", "csf")}
    images["wm"].SetOrigin((0.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="tissue map 'wm'.*geometry"):
        TissueMaps.from_images(**images)


def test_seed_outside_the_brain_or_the_image():
    tissue = white_box((8, 8, 8), border=2)
    problem = GrowthProblem(tissue, GrowthParameters(1.0, 0.05))
    with pytest.raises(ValueError, match="seed centre_ras_mm .* outside the brain .*tissue_threshold"):
        problem.initial_density(Seed(centre_ras_mm=(0.0, 0.0, 0.0)))          # voxel (0,0,0) is CSF
    with pytest.raises(ValueError, match="seed centre_ras_mm .* outside the tissue image"):
        problem.initial_density(Seed(centre_ras_mm=(500.0, 0.0, 0.0)))
    with pytest.raises(ValueError, match=r"seed radius_mm must lie in \(0, 100\]"):
        Seed(centre_ras_mm=(-4.0, -4.0, 4.0), radius_mm=-1.0)


def test_empty_or_inconsistent_schedules():
    with pytest.raises(ValueError, match="radiotherapy.days: the schedule is empty"):
        Radiotherapy(days=(), doses_gy=(), alpha_per_gy=0.05)
    with pytest.raises(ValueError, match=r"radiotherapy.alpha_per_gy must lie in \(0, 2\]"):
        Radiotherapy(days=(1.0,), doses_gy=(2.0,), alpha_per_gy=-0.05)
    with pytest.raises(ValueError, match="chemotherapy: end_day .* after start_day"):
        Chemotherapy(start_day=10.0, end_day=10.0, kill_rate_per_day=0.1)
    with pytest.raises(ValueError, match="days: give at least one output day"):
        simulate(white_box((6, 6, 6)), Seed((-3.0, -3.0, 3.0)), GrowthParameters(1.0, 0.05), [], progress=False)


def test_initial_density_map_out_of_range():
    tissue = white_box((6, 6, 6))
    problem = GrowthProblem(tissue, GrowthParameters(1.0, 0.05))
    with pytest.raises(ValueError, match=r"initial density: values must be finite and lie in \[0, 1\]"):
        problem.initial_density(np.full(tissue.geometry.shape_kji, 2.0, np.float32))
    other = sitk.Image(6, 6, 6, sitk.sitkFloat32)
    other.SetSpacing((2.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="initial density: geometry"):
        problem.initial_density(other)


def test_nan_appearing_mid_run_stops_with_the_day():
    tissue = white_box((8, 8, 8))
    problem = GrowthProblem(tissue, GrowthParameters(1.0, 0.05))
    from HybridNeuroLib.physics import FisherKolmogorov, solve
    model = problem.model(1.0, 0.05)
    u0 = problem.initial_density(Seed((-4.0, -4.0, 4.0), 2.0))
    poison = (7.0, lambda u: u * torch.nan)
    with pytest.raises(FloatingPointError, match=r"density: became NaN .* day 7 .*\[0, 1\]"):
        solve(model, u0, [10.0], SolverSettings("rkl2"), events=[poison])
    assert isinstance(model, FisherKolmogorov)


def test_solver_settings_and_unknown_method():
    with pytest.raises(ValueError, match="solver method must be one of"):
        SolverSettings("rk45")
    with pytest.raises(ValueError, match="max_step_days must be a finite number > 0"):
        SolverSettings("euler", max_step_days=-1.0)
