"""Solver-in-the-loop: 4 mm / 1 mm block alignment, zero corrector ≡ coarse solver, the shipped corrector is closer
to the 1 mm solver on an unseen anatomy, fit + predict, checkpoint round trip, input errors."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from HybridNeuroLib.fit.predict import tissue_on_grid
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.hybrid import load_model, make_model
from HybridNeuroLib.hybrid.corrector import (COARSE_VOXEL_MM, FINE_VOXEL_MM, RESTRICTION_FACTOR, CorrectedSolver,
                                             Corrector, _Prepared, coarse_geometry, coarse_problem, coarse_tissue,
                                             fine_to_rollout, restrict_to_coarse, rollout_steps_days, window_loss)
from HybridNeuroLib.hybrid.solver_in_loop import SolverInTheLoop, corrector_tissue
from HybridNeuroLib.physics import Seed, TissueMaps
from HybridNeuroLib.physics.solvers import denormals_flushed

EYE = tuple(map(tuple, np.eye(3)))


def phantom(size: int, spacing_mm: float, origin=(0.0, 0.0, 0.0)) -> TissueMaps:
    """A white-matter ball with a grey rim in CSF (deterministic, anisotropic enough to be non-trivial)."""
    grid = ImageGeometry((size,) * 3, (spacing_mm,) * 3, origin, EYE)
    k, j, i = np.indices(grid.shape_kji)
    radius = np.sqrt(((k + 0.5) - size / 2) ** 2 + ((j + 0.5) - size / 2) ** 2 + ((i + 0.5) - size / 2) ** 2)
    wm = np.clip(size * 0.35 - radius, 0, 1).astype(np.float32)
    gm = np.clip(size * 0.45 - radius, 0, 1).astype(np.float32) - wm
    return TissueMaps(gm=gm, wm=wm, csf=(1 - wm - gm).astype(np.float32), geometry=grid)


def test_coarse_grid_is_block_aligned_and_the_coarse_tissue_is_the_block_mean():
    assert RESTRICTION_FACTOR == round(COARSE_VOXEL_MM / FINE_VOXEL_MM) == 4
    fine = phantom(10, 1.0, origin=(3.0, -5.0, 7.0))
    coarse = coarse_tissue(fine)
    assert coarse.geometry == coarse_geometry(fine.geometry)
    assert coarse.geometry.size == (3, 3, 3) and coarse.geometry.spacing_mm == (4.0, 4.0, 4.0)
    # coarse voxel (i, j, k) is centred on the mean of fine voxels 4i..4i+3 (etc.)
    centre = coarse.geometry.ijk_to_lps() @ np.array([0.0, 1.0, 2.0, 1.0])
    fine_centres = [fine.geometry.ijk_to_lps() @ np.array([a, b, c, 1.0])
                    for a in range(0, 4) for b in range(4, 8) for c in range(8, 12)]
    np.testing.assert_allclose(centre, np.mean(fine_centres, axis=0), atol=1e-9)
    # 10 fine voxels: the third block holds 2 of them and 2 of background
    np.testing.assert_allclose(coarse.wm[1, 1, 1], fine.wm[4:8, 4:8, 4:8].mean(), atol=1e-6)
    np.testing.assert_allclose(coarse.csf[2, 2, 2], fine.csf[8:, 8:, 8:].sum() / 64, atol=1e-6)
    # from 2 mm, the fit's linear resampling onto the same grid is the 2×2×2 block mean (one restriction)
    fine_2mm = phantom(10, 2.0, origin=(3.0, -5.0, 7.0))
    np.testing.assert_allclose(tissue_on_grid(fine_2mm, coarse_geometry(fine_2mm.geometry)).wm,
                               coarse_tissue(fine_2mm).wm, atol=1e-6)
    np.testing.assert_array_equal(restrict_to_coarse(np.ones((3, 2, 2), np.float32), factor=2),
                                  np.array([[[1.0]], [[0.5]]], np.float32))   # odd size: padded with background
    with pytest.raises(ValueError, match="integer multiple"):
        coarse_geometry(phantom(4, 3.0).geometry)


def test_the_forecast_model_sees_the_tissue_the_corrector_was_trained_on():
    """From a 1 mm study the 4 mm tissue must be the 4³ block mean (training), not linear resampling."""
    fine = phantom(10, 1.0, origin=(3.0, -5.0, 7.0))
    np.testing.assert_array_equal(corrector_tissue(fine).wm, coarse_tissue(fine).wm)
    linear = tissue_on_grid(fine, coarse_geometry(fine.geometry))
    assert np.abs(linear.wm - coarse_tissue(fine).wm).max() > 0.05     # what the model used to see
    odd = phantom(6, 3.0)                                               # 3 mm: no whole 4 mm blocks
    assert corrector_tissue(odd).geometry.spacing_mm == (4.0, 4.0, 4.0)


def test_zero_corrector_reproduces_the_coarse_solver_exactly():
    tissue = phantom(16, 4.0)
    problem = coarse_problem(tissue)
    u0 = problem.initial_density(Seed((-32.0, -32.0, 32.0), 6.0))
    days = [30.0, 70.0]
    steps = np.cumsum([s for a, b in zip([0.0] + days, days) for s in rollout_steps_days(b - a)])
    assert np.allclose(steps, [30.0, 50.0, 70.0])
    with torch.inference_mode():
        raw = problem.solve(u0, 0.4, 0.06, list(steps))[0]
        plain = CorrectedSolver(problem, None).rollout(u0, 0.4, 0.06, days)
        zero = CorrectedSolver(problem, Corrector().zero_()).rollout(u0, 0.4, 0.06, days)
        trained = CorrectedSolver(problem, SolverInTheLoop().corrector).rollout(u0, 0.4, 0.06, days)
    for reference, a, b in zip([raw[0], raw[2]], plain, zero):
        assert torch.equal(reference, a) and torch.equal(a, b)
    assert not torch.equal(trained[-1], plain[-1])          # the shipped corrector does act
    assert float(trained[-1].min()) >= 0.0 and float(trained[-1].max()) <= 1.0
    assert float((trained[-1] * (1 - problem.domain)).abs().max()) == 0.0   # nothing outside the domain


def test_unrolled_loss_reaches_the_corrector_weights_through_the_solver():
    tissue = phantom(14, 4.0)
    problem = coarse_problem(tissue)
    u0 = problem.initial_density(Seed((-28.0, -28.0, 28.0), 6.0))
    corrector = Corrector()
    torch.nn.init.normal_(corrector.net[-1].weight, std=0.01)
    first = corrector.net[0].weight
    with denormals_flushed():   # the seed's far tail is denormal: ~100× slower unflushed
        u = CorrectedSolver(problem, corrector).rollout(u0, 0.3, 0.05, [10.0, 20.0])[-1]   # two steps
        (u ** 2).sum().backward()
    assert first.grad is not None and float(first.grad.abs().sum()) > 0


def test_shipped_corrector_is_closer_to_the_fine_solver_on_an_unseen_anatomy():
    # a 1 mm phantom (never seen in training; whole-brain 1 mm solves take ~10 s each) with two
    # literature-range parameter pairs; truth = its 1 mm solve restricted to 4 mm, as in training
    model = SolverInTheLoop()
    fine = phantom(48, FINE_VOXEL_MM)
    coarse_error, corrected_error = [], []
    for dw, rho, centre, radius_mm in ((0.1, 0.02, (-20.0, -28.0, 22.0), 5.0), (0.04, 0.04, (-26.0, -20.0, 24.0), 4.0)):
        rollout = fine_to_rollout(fine, Seed(centre, radius_mm), dw, rho, 120.0)
        prepared = _Prepared(rollout)
        with torch.inference_mode():
            for corrector, errors in ((None, coarse_error), (model.corrector, corrected_error)):
                solver = CorrectedSolver(prepared.problem, corrector)
                errors.append(float(window_loss(solver, prepared, 0, 3, 4)))   # four 30-day steps from the seed
    # measured with the shipped weights: 0.91× the coarse-only error on average, each rollout better (on brain
    # anatomies: bench/results/solver_in_loop_cpu.md)
    assert np.mean(corrected_error) < 0.95 * np.mean(coarse_error), (coarse_error, corrected_error)
    assert all(c < k for c, k in zip(corrected_error, coarse_error)), (coarse_error, corrected_error)


def lesion_case():
    tissue = phantom(16, 4.0)
    grid = tissue.geometry
    first = np.zeros(grid.shape_kji, np.uint8); first[6:10, 6:10, 6:10] = 2; first[7:9, 7:9, 7:9] = 3
    later = np.zeros(grid.shape_kji, np.uint8); later[5:11, 5:11, 5:11] = 2; later[7:9, 7:9, 7:9] = 3
    return tissue, [(10.0, grid.image_from_array(first)), (70.0, grid.image_from_array(later))]


@pytest.fixture(scope="module")
def fitted():
    tissue, labels = lesion_case()
    return make_model("solver-in-the-loop", settings=SolverInTheLoop.default_settings(starts=1, iterations=4)).fit(
        tissue, labels, progress=False)


def test_fit_and_predict_on_a_small_case(fitted):
    assert fitted.best is not None and np.isfinite(fitted.best.loss)
    assert fitted.best.loss <= fitted.starts[0].loss_history[0]
    fine_grid = ImageGeometry((32, 32, 32), (2.0, 2.0, 2.0), (-1.0, -1.0, -1.0), EYE)
    forecast = fitted.predict([10, 70, 130], grid=fine_grid)
    assert forecast.days == (10.0, 70.0, 130.0)
    assert forecast.density[0].GetSize() == (32, 32, 32) and forecast.labels[2].GetSpacing() == (2.0, 2.0, 2.0)
    volumes = [row["whole_ml"] for row in forecast.volumes]
    assert 0 < volumes[0] < volumes[1] < volumes[2]
    density = sitk.GetArrayFromImage(forecast.density[2])
    assert density.min() >= 0 and density.max() <= 1
    with pytest.raises(ValueError, match="before the first fitted timepoint"):
        fitted.predict([0])


def test_save_load_predicts_bit_for_bit(fitted, tmp_path):
    fitted.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model", expected="solver-in-the-loop")
    assert loaded.best == fitted.best and loaded.first_day == fitted.first_day
    a, b = fitted.predict([70, 100]), loaded.predict([70, 100])
    for x, y in zip(a.density + a.labels, b.density + b.labels):
        np.testing.assert_array_equal(sitk.GetArrayFromImage(x), sitk.GetArrayFromImage(y))
    assert a.volumes == b.volumes


def test_input_errors():
    tissue, labels = lesion_case()
    with pytest.raises(ValueError, match="at least 2 timepoints"):
        make_model("solver-in-the-loop").fit(tissue, labels[:1], progress=False)
    with pytest.raises(ValueError, match="voxel_mm must be 4"):
        SolverInTheLoop(SolverInTheLoop.default_settings(voxel_mm=2.0))
    with pytest.raises(ValueError, match="not fitted yet"):
        SolverInTheLoop().predict([10])
