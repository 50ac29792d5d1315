"""The finite-volume diffusion operator: exactness on polynomials, conservation, walls, tensor form, stability bound."""

import numpy as np
import pytest
import torch

from HybridNeuroLib.physics import FisherKolmogorov, ScalarDiffusion, SolverSettings, TensorDiffusion, solve
from HybridNeuroLib.physics.operators import harmonic_face_mean

SPACING = (3.0, 1.0, 0.5)  # k, j, i — deliberately anisotropic


def coordinates(shape, spacing, dtype=torch.float64):
    return torch.meshgrid(*[torch.arange(n, dtype=dtype) * h for n, h in zip(shape, spacing)], indexing="ij")


def interior(tensor, width=1):
    return tensor[width:-width, width:-width, width:-width]


def test_laplacian_of_quadratic_is_exact_with_anisotropic_spacing():
    shape = (7, 9, 11)
    z, y, x = coordinates(shape, SPACING)
    u = 0.3 * z ** 2 - 1.5 * y ** 2 + 2.0 * x ** 2 + z * y - 4.0 * x
    operator = ScalarDiffusion(torch.full(shape, 2.0, dtype=torch.float64), SPACING)
    expected = 2.0 * 2.0 * (0.3 - 1.5 + 2.0)
    torch.testing.assert_close(interior(operator(u)), torch.full_like(interior(u), expected), rtol=0, atol=1e-9)


def test_face_diffusivity_is_harmonic_mean_and_zero_next_to_walls():
    field = torch.tensor([[[1.0, 3.0, 0.0, 2.0]]])
    faces = harmonic_face_mean(field, axis=-1)
    torch.testing.assert_close(faces, torch.tensor([[[1.5, 0.0, 0.0]]]))


def test_pure_diffusion_conserves_mass_and_never_enters_walls():
    rng = np.random.default_rng(1)
    shape = (12, 14, 16)
    field = rng.uniform(0.05, 1.0, shape).astype(np.float32)
    wall = np.zeros(shape, bool)
    wall[4:8, 3:10, 5:9] = True       # a CSF cavity inside the tissue
    wall[:, :, 0] = True              # and a slab along one face
    field[wall] = 0.0
    u0 = torch.zeros(shape)
    u0[2, 2, 12] = 50.0
    u0[10, 12, 3] = 20.0
    for method in ("euler", "rkl2"):
        model = FisherKolmogorov(ScalarDiffusion(torch.from_numpy(field), SPACING), 1.3, 0.0)
        (u,), _ = solve(model, u0, [40.0], SolverSettings(method))
        mass0, mass = float(u0.double().sum()), float(u.double().sum())
        assert abs(mass - mass0) / mass0 < 1e-5, method
        assert float(u[torch.from_numpy(wall)].abs().max()) == 0.0, method
        if method == "euler":   # maximum principle: it spread everywhere else and stayed positive
            assert float(u[~torch.from_numpy(wall)].min()) > 0.0


def test_tensor_operator_with_isotropic_tensor_reproduces_scalar_operator():
    rng = np.random.default_rng(2)
    shape = (6, 7, 8)
    field = torch.from_numpy(rng.uniform(0.0, 1.0, shape))
    field[2:4, 2:4, 2:4] = 0.0
    tensor = torch.eye(3, dtype=torch.float64)[:, :, None, None, None] * field
    u = torch.from_numpy(rng.uniform(0.0, 1.0, shape))
    scalar, full = ScalarDiffusion(field, SPACING), TensorDiffusion(tensor, SPACING)
    torch.testing.assert_close(full(u), scalar(u), rtol=1e-12, atol=1e-12)
    assert full.rate_bound_per_mm2() == pytest.approx(scalar.rate_bound_per_mm2(), rel=1e-12)


def test_tensor_cross_terms_give_exact_divergence_of_bilinear_field():
    shape = (8, 9, 10)
    z, y, x = coordinates(shape, SPACING)
    t = torch.tensor([[2.0, 0.3, -0.2], [0.3, 1.0, 0.4], [-0.2, 0.4, 1.5]], dtype=torch.float64)
    tensor = t[:, :, None, None, None].expand(3, 3, *shape).clone()
    operator = TensorDiffusion(tensor, SPACING)
    u = z * y + 2.0 * y * x + 0.5 * x ** 2   # ∇·(T∇u) = 2T_kj + 4T_ji + T_ii
    expected = 2 * t[0, 1] + 4 * t[1, 2] + 1.0 * t[2, 2]
    torch.testing.assert_close(interior(operator(u), 2), torch.full_like(interior(u, 2), float(expected)),
                               rtol=0, atol=1e-9)
    assert abs(float(operator(u).sum())) < 1e-9          # conservative in flux form


def test_gershgorin_bound_covers_spectral_radius_and_matches_textbook_limit():
    rng = np.random.default_rng(3)
    field = torch.from_numpy(rng.uniform(0.0, 1.0, (10, 10, 10)))
    operator = ScalarDiffusion(field, SPACING)
    u = torch.from_numpy(rng.normal(size=(10, 10, 10)))
    for _ in range(300):                                   # power iteration for the spectral radius
        u = operator(u)
        u = u / u.norm()
    spectral_radius = float(-(u * operator(u)).sum())
    assert spectral_radius <= 2.0 * operator.rate_bound_per_mm2()
    assert spectral_radius > 0.5 * operator.rate_bound_per_mm2()   # and the bound is not vacuous
    uniform = ScalarDiffusion(torch.ones(5, 5, 5), (1.0, 1.0, 1.0))
    assert 1.0 / uniform.rate_bound_per_mm2() == pytest.approx(1.0 / 6.0)   # h²/(2·d·D)


def test_euler_refuses_unstable_step_with_a_message():
    model = FisherKolmogorov(ScalarDiffusion(torch.ones(6, 6, 6), (1.0, 1.0, 1.0)), 1.0, 0.05)
    u0 = torch.zeros(6, 6, 6)
    u0[3, 3, 3] = 1.0
    with pytest.warns(UserWarning, match="exceeds the Euler stability limit"):
        _, stats = solve(model, u0, [3.0], SolverSettings("euler", max_step_days=1.0))
    assert max(stats.step_days) <= model.euler_step_limit_days()
