"""The ground-truth growth model's ingredients behave as documented."""

from __future__ import annotations

import numpy as np
import pytest

from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.physics.tissue import TissueMaps
from HybridNeuroLib.synth.growth import fibre_tensor, grow_lesion
from HybridNeuroLib.synth.parameters import SubjectParameters, sample_parameters


def test_fibre_tensor_slows_crossing_white_matter_boundaries():
    wm = np.zeros((20, 20, 20), np.float32)
    wm[:, :, :10] = 1.0                                # a WM sheet: boundary normal along i
    tensor = fibre_tensor(np.ones_like(wm), wm, (1.0, 1.0, 1.0), anisotropy=4.0)
    at_boundary, deep = (10, 10, 9), (10, 10, 2)
    assert tensor[2, 2][at_boundary] == pytest.approx(0.25, abs=0.05)   # across: ÷ anisotropy
    assert tensor[0, 0][at_boundary] == pytest.approx(1.0) and tensor[1, 1][at_boundary] == pytest.approx(1.0)
    assert np.allclose([tensor[a, a][deep] for a in range(3)], 1.0, atol=1e-3)  # isotropic away from boundaries
    assert np.allclose(tensor, tensor.transpose(1, 0, 2, 3, 4))


def grow(**changes):
    grid = ImageGeometry((30, 30, 30), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    wm = np.ones(grid.shape_kji, np.float32)
    tissue = TissueMaps(gm=0 * wm, wm=wm, csf=0 * wm, geometry=grid)
    parameters = SubjectParameters(**{**dict(dw_mm2_per_day=0.1, rho_per_day=0.15, detection_radius_mm=8.0,
                                             rho_log_sd=0.0, anisotropy=1.0), **changes})
    return grow_lesion(tissue, parameters, (15, 15, 15), (0.0, 30.0), np.random.default_rng(0))


def test_necrosis_forms_only_where_cells_are_crowded():
    alive = grow(necrosis_rate_per_day=0.0)
    assert alive.necrotic[30.0].max() == 0.0
    dying = grow(necrosis_rate_per_day=0.1, crowding_threshold=0.8)
    n, total = dying.necrotic[30.0], dying.total(30.0)
    assert n.max() > 0.2
    assert (total[n > 1e-3] > 0.8 - 1e-3).mean() > 0.9    # necrosis sits in the crowded core
    assert n[15, 15, 15] == n.max() or n[15, 15, 15] > 0.5 * n.max()


def test_lesion_reaches_detection_size_at_day_zero_and_grows():
    truth = grow(necrosis_rate_per_day=0.0)
    radius = (truth.lesion_volume_ml(0.0) * 3000 / (4 * np.pi)) ** (1 / 3)
    assert 8.0 <= radius <= 11.0
    assert truth.lesion_volume_ml(30.0) > 1.5 * truth.lesion_volume_ml(0.0)
    assert truth.pre_detection_days > 0


def test_cohort_parameters_stay_in_literature_ranges():
    rng = np.random.default_rng(0)
    draws = [sample_parameters(rng) for _ in range(200)]
    assert all(0.02 <= p.dw_mm2_per_day <= 1.5 and 0.005 <= p.rho_per_day <= 0.2 for p in draws)
    assert all(0.2 <= p.edema_threshold <= 0.3 and 0.6 <= p.enhancing_threshold <= 0.7 for p in draws)
    assert all(0.02 <= p.front_speed_mm_per_day <= 0.12 for p in draws)
    assert 0.3 < np.mean([p.treatment is not None for p in draws]) < 0.7
    assert len({round(p.dw_mm2_per_day, 6) for p in draws}) == 200
