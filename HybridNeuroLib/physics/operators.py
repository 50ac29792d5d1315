"""The conservative finite-volume diffusion operator ∇·(F∇u) on a voxel grid.

    >>> import torch
    >>> from HybridNeuroLib.physics.operators import ScalarDiffusion
    >>> field = torch.ones(4, 5, 6)                       # dimensionless; a model multiplies by D_w
    >>> operator = ScalarDiffusion(field, spacing_kji_mm=(3.0, 1.0, 1.0))
    >>> u = torch.zeros(4, 5, 6); u[2, 2, 3] = 1.0
    >>> float(operator(u).sum())                          # conservative: no mass created
    0.0
    >>> operator.rate_bound_per_mm2()                     # Euler limit is 1 / (D_w · this) days
    4.222222328186035

Method. Each voxel is a finite volume; the flux through the face between voxels p and
p + e_a (axis a, spacing h_a) is F_face·(u_{p+e_a} − u_p)/h_a, and du/dt of a voxel is the
sum of its face fluxes divided by h_a. Every face flux is added to one voxel and taken
from the other, so the total Σu·volume changes only through reaction (to round-off),
and array edges have no faces, i.e. zero flux. The face value F_face is the *harmonic*
mean 2F₁F₂/(F₁+F₂): it is the exact conductance of two half-cells in series (flux
continuity for piecewise-constant tissue), and it is 0 when either side is 0, so voxels
outside the domain (F = 0: CSF, background) neither receive nor give cells. An arithmetic
mean would give a CSF voxel half the neighbour's diffusivity and let cells leak into it.

Stencils are array slices along each axis (one loop over axes, not six hand-written
copies), which on CPU is several times faster than ``conv3d``; the same code runs on CUDA
and under autograd. Arrays are indexed ``[..., k, j, i]``; leading batch dimensions are
allowed. Spacing is given in the same (k, j, i) order — anisotropic voxels are exact.

:class:`TensorDiffusion` is the same interface for a 3×3 diffusion tensor field (e.g.
from DTI), with components along the array axes. Its diagonal face terms are the scalar
operator's (harmonic means), so F·I reproduces :class:`ScalarDiffusion` exactly; the
off-diagonal terms use face-averaged central differences and arithmetic-mean tensors,
zeroed on faces that touch a voxel outside the domain.

Both expose :meth:`rate_bound_per_mm2`: half the largest Gershgorin row sum of the
operator matrix divided by D_w, so the spectral radius of D_w·operator is at most
2·D_w·bound and explicit Euler is stable (and monotone) for Δt ≤ 1/(D_w·bound).
For isotropic spacing h and F ≤ 1 this is the textbook Δt ≤ h²/(2·3·D_w).
"""

from __future__ import annotations

import torch

AXES = (-3, -2, -1)  # k, j, i


def _lower(tensor: torch.Tensor, axis: int) -> torch.Tensor:
    return tensor.narrow(axis, 0, tensor.shape[axis] - 1)


def _upper(tensor: torch.Tensor, axis: int) -> torch.Tensor:
    return tensor.narrow(axis, 1, tensor.shape[axis] - 1)


def harmonic_face_mean(field: torch.Tensor, axis: int) -> torch.Tensor:
    """2ab/(a+b) between neighbours along ``axis``; 0 where either side is 0."""
    low, high = _lower(field, axis), _upper(field, axis)
    total = low + high
    return torch.where(total > 0, 2.0 * low * high / torch.where(total > 0, total, 1.0), 0.0)


def _check_spacing(spacing_kji_mm) -> tuple[float, float, float]:
    spacing = tuple(float(h) for h in spacing_kji_mm)
    if len(spacing) != 3 or not all(h > 0 and h < float("inf") for h in spacing):
        raise ValueError(f"spacing_kji_mm must be three positive finite voxel sizes in mm, got {spacing_kji_mm}")
    return spacing


class ScalarDiffusion(torch.nn.Module):
    """u ↦ ∇·(F∇u) for a scalar field F ≥ 0 (shape ``[k, j, i]``), in 1/mm² × F."""

    def __init__(self, field: torch.Tensor, spacing_kji_mm):
        super().__init__()
        spacing = _check_spacing(spacing_kji_mm)
        if field.dim() != 3 or not torch.isfinite(field).all() or (field < 0).any():
            raise ValueError("diffusivity field must be a finite, non-negative 3D tensor")
        for axis, h in zip(AXES, spacing):
            self.register_buffer(f"face_{axis + 3}", harmonic_face_mean(field, axis) / (h * h))

    def face_coefficients(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.face_0, self.face_1, self.face_2

    def rate_bound_per_mm2(self) -> float:
        diagonal = self.face_0.new_zeros(self.shape)
        for axis, face in zip(AXES, self.face_coefficients()):
            _lower(diagonal, axis).add_(face)
            _upper(diagonal, axis).add_(face)
        return float(diagonal.max())

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.face_1.shape[0], self.face_0.shape[1], self.face_0.shape[2])

    def forward(self, u: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """∇·(F∇u); ``out`` (same shape as u) is overwritten and returned when given (no-grad use)."""
        out = torch.zeros_like(u) if out is None else out.zero_()
        for axis, face in zip(AXES, self.face_coefficients()):
            difference = _upper(u, axis) - _lower(u, axis)
            _lower(out, axis).addcmul_(face, difference)
            _upper(out, axis).addcmul_(face, difference, value=-1.0)
        return out


class TensorDiffusion(torch.nn.Module):
    """u ↦ ∇·(T∇u) for a symmetric tensor field ``T`` of shape ``[3, 3, k, j, i]`` (axes k, j, i)."""

    def __init__(self, tensor_field: torch.Tensor, spacing_kji_mm):
        super().__init__()
        spacing = _check_spacing(spacing_kji_mm)
        if tensor_field.dim() != 5 or tuple(tensor_field.shape[:2]) != (3, 3):
            raise ValueError(f"tensor_field must have shape [3, 3, k, j, i], got {tuple(tensor_field.shape)}")
        if not torch.isfinite(tensor_field).all() or not torch.allclose(tensor_field, tensor_field.transpose(0, 1)):
            raise ValueError("tensor_field must be finite and symmetric (T[a, b] == T[b, a])")
        diagonal = torch.stack([tensor_field[a, a] for a in range(3)])
        if (diagonal < 0).any():
            raise ValueError("tensor_field diagonal components must be ≥ 0")
        inside = (diagonal.sum(0) > 0).to(tensor_field.dtype)
        self.spacing = spacing
        for a, (axis, h) in enumerate(zip(AXES, spacing)):
            self.register_buffer(f"face_{a}{a}", harmonic_face_mean(diagonal[a], axis) / (h * h))
            both_inside = _lower(inside, axis) * _upper(inside, axis)
            for b in range(3):
                if b != a:
                    mean = 0.5 * (_lower(tensor_field[a, b], axis) + _upper(tensor_field[a, b], axis))
                    self.register_buffer(f"face_{a}{b}", mean * both_inside / h)

    def rate_bound_per_mm2(self) -> float:
        bound = torch.zeros(self.face_00.shape[0] + 1, *self.face_00.shape[1:], dtype=self.face_00.dtype,
                            device=self.face_00.device)
        for a, axis in enumerate(AXES):
            per_face = getattr(self, f"face_{a}{a}").clone()
            for b in range(3):
                if b != a:  # four neighbours, each weighted |T_ab|/(h_a·2h_b)·½
                    per_face += 0.5 * getattr(self, f"face_{a}{b}").abs() / self.spacing[b]
            _lower(bound, axis).add_(per_face)
            _upper(bound, axis).add_(per_face)
        return float(bound.max())

    def forward(self, u: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        out = torch.zeros_like(u) if out is None else out.zero_()
        gradients = []
        for b, axis in enumerate(AXES):  # cell-centred central differences, zero at array edges
            gradient = torch.zeros_like(u)
            n = u.shape[axis]
            gradient.narrow(axis, 1, n - 2).copy_(
                (u.narrow(axis, 2, n - 2) - u.narrow(axis, 0, n - 2)) / (2.0 * self.spacing[b]))
            gradients.append(gradient)
        for a, axis in enumerate(AXES):
            flux = getattr(self, f"face_{a}{a}") * (_upper(u, axis) - _lower(u, axis))
            for b in range(3):
                if b != a:
                    face_gradient = 0.5 * (_lower(gradients[b], axis) + _upper(gradients[b], axis))
                    flux = flux + getattr(self, f"face_{a}{b}") * face_gradient
            _lower(out, axis).add_(flux)
            _upper(out, axis).sub_(flux)
        return out
