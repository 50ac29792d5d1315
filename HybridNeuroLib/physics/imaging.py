"""Imaging model: tumour-cell density → BraTS labels, hard (for display) and soft (for fitting).

    >>> import numpy as np, torch
    >>> from HybridNeuroLib.physics.imaging import ImagingThresholds, density_to_labels, soft_labels
    >>> density = np.array([0.1, 0.3, 0.8, 0.99], dtype=np.float32)
    >>> density_to_labels(density).tolist()             # background, edema, enhancing, necrotic
    [0, 2, 3, 1]
    >>> soft = soft_labels(torch.tensor(density))        # [label 0, 1, 2, 3] probabilities per voxel
    >>> soft.argmax(0).tolist(), bool(torch.allclose(soft.sum(0), torch.ones(4)))
    ([0, 2, 3, 1], True)

The hard version and the thresholds live in :mod:`HybridNeuroLib.labels` (torch-free, so the
Slicer module can label densities without torch); this module adds the soft version.

A voxel is visible on FLAIR/T2 (whole tumour) where u ≥ θ_FLAIR and enhances on T1Gd
where u ≥ θ_T1Gd (Konukoglu et al., IEEE TMI 2010; Lipková et al., IEEE TMI 2019: about
0.2–0.3 and 0.6–0.7). Defaults are 0.25 and 0.65. Necrosis has no consensus density
threshold in the literature; ``necrotic`` (default 0.95) marks the saturated core, a
modelling choice to be fitted or changed per study. Labels follow BraTS 2023:
1 necrotic core, 2 edema (FLAIR only), 3 enhancing tumour.

The soft version replaces each step u ≥ θ by a sigmoid σ((u − θ)/w); since thresholds are
nested and the sigmoids share w, the label probabilities (differences of nested
sigmoids) are non-negative and sum to one, and are differentiable in u and in θ.
"""

from __future__ import annotations

import torch

from HybridNeuroLib.labels import ImagingThresholds, density_to_labels

__all__ = ["ImagingThresholds", "density_to_labels", "soft_labels"]


def soft_labels(density: torch.Tensor, thresholds: ImagingThresholds = ImagingThresholds(),
                width: float = 0.02) -> torch.Tensor:
    """Label probabilities, shape ``[4, *density.shape]`` indexed by label value (0 = background)."""
    if not width > 0:
        raise ValueError(f"soft label width must be > 0, got {width}")
    whole = torch.sigmoid((density - thresholds.edema_flair) / width)
    enhancing_or_core = torch.sigmoid((density - thresholds.enhancing_t1gd) / width)
    necrotic = torch.sigmoid((density - thresholds.necrotic) / width)
    return torch.stack([1.0 - whole, necrotic, whole - enhancing_or_core, enhancing_or_core - necrotic])
