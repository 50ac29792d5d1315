"""The fitting objective: the model's visible lesion against the observed one, through the solver.

    >>> import torch
    >>> from HybridNeuroLib.fit.objective import margin_loss, soft_dice_loss
    >>> target = torch.tensor([1.0, 1.0, 0.0, 0.0])
    >>> round(float(soft_dice_loss(target, target)), 3), round(float(soft_dice_loss(1 - target, target)), 3)
    (0.0, 1.0)
    >>> float(margin_loss(torch.tensor([0.9, 0.3, 0.2, 0.0]), target, 0.25)), float(margin_loss(0 * target, target, 0.25))
    (0.0, 1.0)

For parameters (D_w, ρ, seed centre c, seed radius R) the model density u(t) starts from the
seed u₀ = 2^(−|x − c|²/R²) (the physics' seed family, here differentiable in R too) at the
first timepoint (or, with an onset T, from that seed grown for T days by the same model) and
is solved to every later observed day through the differentiable solver
(:class:`HybridNeuroLib.physics.GrowthProblem`). At each timepoint the soft whole tumour
s(u; θ_FLAIR) and soft core s(u; θ_T1Gd), s a sigmoid of width w
rescaled to be exactly 0 at u = 0 (:func:`soft_visible`), are compared with the observed masks:

    loss = Σ_t weight_t · [(1 − Dice_soft(whole_t)) + core_weight · (1 − Dice_soft(core_t))] / Σ_t weight_t

(core terms only where the observed core is at least one voxel; with ``settings.absent_core_evidence``
a scan without core adds core_weight · :func:`absent_core_term` instead — an edema-only scan then
says "no voxel above θ_T1Gd", which the default loss ignores). θ_FLAIR, θ_T1Gd are the
settings' thresholds, or per candidate (``settings.fit_thresholds``: estimated per patient). Weights default to 1 (the
ensemble draws them, a Bayesian bootstrap over timepoints).

That is ``loss="soft-dice"``. The default, ``loss="margin"``, replaces each 1 − Dice_soft by the
threshold hinge :func:`margin_loss`. Measured on a 2 mm phantom grown by the same model
(``Testing/fit_cases.py``, truth D_w 0.4, ρ 0.04): soft Dice is biased — at the *true*
parameters its loss is 0.18–0.26 per timepoint although the hard labels match exactly, and the
fit went to D_w 0.06, ρ 0.07 (steep fronts make sharper soft labels); the margin loss is 0 at
the truth and recovered D_w 0.41, ρ 0.041.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from HybridNeuroLib.fit.observations import FitData
from HybridNeuroLib.fit.settings import FitSettings
from HybridNeuroLib.physics import GrowthParameters, GrowthProblem, Seed


def soft_visible(density: torch.Tensor, threshold: float, width: float) -> torch.Tensor:
    """Soft step u ≥ θ: σ((u − θ)/w) shifted and rescaled to be exactly 0 at u = 0 and 1 at u = 1.

    The shift matters: a plain sigmoid leaves σ(−θ/w) > 0 in every empty voxel, and summed over
    a large background that floor dominates the Dice of a small lesion and biases the fit.
    """
    floor, top = torch.sigmoid(torch.tensor(-threshold / width)), torch.sigmoid(torch.tensor((1 - threshold) / width))
    return ((torch.sigmoid((density - threshold) / width) - floor) / (top - floor)).clamp(0.0, 1.0)


def soft_dice_loss(predicted: torch.Tensor, target: torch.Tensor, smooth: float = 1e-3) -> torch.Tensor:
    """1 − 2Σpt/(Σp + Σt): 0 for a perfect match, 1 for disjoint masks."""
    overlap = (predicted * target).sum()
    return 1.0 - (2.0 * overlap + smooth) / (predicted.sum() + target.sum() + smooth)


def margin_loss(density: torch.Tensor, target: torch.Tensor, threshold: float) -> torch.Tensor:
    """Σ t·max(θ − u, 0) + (1 − t)·max(u − θ, 0), over θ·Σt: 0 when the θ-contour matches, 1 when u ≡ 0.

    Unlike soft Dice it has no preference for steep fronts (which sharpen soft labels), so it does
    not bias D_w/ρ; partial-volume targets pull u towards θ on the boundary.
    """
    missed = target * torch.relu(threshold - density)
    extra = (1.0 - target) * torch.relu(density - threshold)
    return (missed.sum() + extra.sum()) / (threshold * target.sum().clamp(min=1e-6))


def absent_core_term(density: torch.Tensor, whole: torch.Tensor, threshold: float, width: float,
                     loss: str = "margin") -> torch.Tensor:
    """A core the model shows where the scan shows none: Σ max(u − θ_T1Gd, 0) / (θ_T1Gd·Σ whole) (margin loss;
    soft: Σ soft core / Σ whole). 0 while the model has no voxel above θ_T1Gd."""
    if loss == "soft-dice":
        extra = soft_visible(density, threshold, width).sum()
        return extra / whole.sum().clamp(min=1e-6)
    return torch.relu(density - threshold).sum() / (threshold * whole.sum().clamp(min=1e-6))


class Objective:
    """The loss as a function of (D_w, ρ, centre RAS mm, radius mm) tensors on the fitting grid."""

    def __init__(self, data: FitData, settings: FitSettings, device: torch.device | str | None = "cpu"):
        self.settings = settings
        self.problem = GrowthProblem(data.tissue, GrowthParameters(
            settings.prior_dw_mm2_per_day, settings.prior_rho_per_day, settings.wm_to_gm_ratio,
            settings.tissue_threshold), device=device)
        self.days = [obs.day for obs in data.observations]
        self.set_targets([obs.whole for obs in data.observations], [obs.core for obs in data.observations])
        geometry, crop = data.tissue.geometry, self.problem.crop
        ijk_to_ras = torch.as_tensor(geometry.ijk_to_ras(), dtype=torch.float64)
        self._ras_to_ijk_linear = torch.linalg.inv(ijk_to_ras[:3, :3])
        self._origin_ras = ijk_to_ras[:3, 3]
        self._axes = [(geometry.spacing_mm[ijk_axis],
                       (torch.arange(crop.cropped_shape[array_axis], dtype=torch.float64)
                        + crop.offset_kji[array_axis]).reshape([-1 if a == array_axis else 1 for a in range(3)]))
                      for array_axis, ijk_axis in enumerate((2, 1, 0))]

    def set_targets(self, whole: Sequence[np.ndarray], core: Sequence[np.ndarray]) -> None:
        """Observed masks (fractions, fitting grid) per timepoint; core terms only where a core is seen."""
        to_box = lambda array: torch.from_numpy(np.ascontiguousarray(self.problem.crop.crop(array), np.float32)  # noqa: E731
                                                ).to(self.problem.device)
        self.whole = [to_box(mask) for mask in whole]
        self.core = [to_box(mask) if mask.sum() >= 1.0 and self.settings.core_weight > 0 else None for mask in core]

    def check_seed(self, centre_ras_mm: Sequence[float]) -> None:
        self.problem.check_seed(Seed(tuple(float(c) for c in centre_ras_mm)))

    def initial_density(self, centre_ras_mm: torch.Tensor, radius_mm: torch.Tensor, peak=None) -> torch.Tensor:
        """peak·2^(−|x − c|²/R²) on the solver box (peak 1 unless given), zero outside the domain
        (differentiable in c and R)."""
        centre_ijk = self._ras_to_ijk_linear @ (centre_ras_mm.to(torch.float64) - self._origin_ras)
        squared = sum((spacing * (index - centre_ijk[axis])) ** 2
                      for axis, (spacing, index) in zip((0, 1, 2), self._axes[::-1]))
        density = torch.exp2(-squared / radius_mm.to(torch.float64) ** 2).to(torch.float32)
        if peak is not None:
            density = density * float(peak)
        return density.to(self.problem.device) * self.problem.domain

    def first_state(self, dw, rho, centre_ras_mm, radius_mm, onset_days=None, peak=None) -> torch.Tensor:
        """The density at the first timepoint: the seed, grown for ``onset_days`` by the same model.

        Solved as one "day" with D_w·T and ρ·T (the FK equation in time t/T — same steps, same
        result), which makes the state differentiable in the onset T too.
        """
        u = self.initial_density(centre_ras_mm, radius_mm, peak)
        if onset_days is None or float(torch.as_tensor(onset_days).detach()) <= 0:
            return u
        return self.problem.solve(u, dw * onset_days, rho * onset_days, [1.0])[0][0]

    def states(self, dw, rho, centre_ras_mm, radius_mm, onset_days=None, peak=None) -> list[torch.Tensor]:
        """Model densities on the box at every observed day."""
        u = self.first_state(dw, rho, centre_ras_mm, radius_mm, onset_days, peak)
        states, previous = [], 0.0
        for day in self.days:
            if day > previous:  # one solve per interval (days may repeat; day 0 is the seed itself)
                u = self.problem.solve(u, dw, rho, [day - previous])[0][0]
                previous = day
            states.append(u)
        return states

    def term(self, density: torch.Tensor, target: torch.Tensor, threshold: float, width: float) -> torch.Tensor:
        if self.settings.loss == "soft-dice":
            return soft_dice_loss(soft_visible(density, threshold, width), target)
        return margin_loss(density, target, threshold)

    def loss(self, dw, rho, centre_ras_mm, radius_mm, weights: Sequence[float] | None = None, *,
             onset_days=None, thresholds: tuple[float, float] | None = None, peak=None) -> torch.Tensor:
        """``thresholds``: (θ_FLAIR, θ_T1Gd) of this candidate (fitted per patient); default the settings'.
        ``peak``: the seed's peak density (fitted with ``settings.fit_seed_peak``); default 1."""
        width = self.settings.soft_label_width
        flair, t1gd = ((self.settings.thresholds.edema_flair, self.settings.thresholds.enhancing_t1gd)
                       if thresholds is None else (float(thresholds[0]), float(thresholds[1])))
        weights = [1.0] * len(self.days) if weights is None else list(weights)
        total = 0.0
        for u, whole, core, weight in zip(self.states(dw, rho, centre_ras_mm, radius_mm, onset_days, peak), self.whole,
                                          self.core, weights):
            term = self.term(u, whole, flair, width)
            if core is not None:
                term = term + self.settings.core_weight * self.term(u, core, t1gd, width)
            elif self.settings.absent_core_evidence and self.settings.core_weight > 0:
                term = term + self.settings.core_weight * absent_core_term(u, whole, t1gd, width, self.settings.loss)
            total = total + weight * term
        return total / sum(weights)
