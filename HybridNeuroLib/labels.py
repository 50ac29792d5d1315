"""Lesion label maps: the BraTS 2023 glioma labels, one definition used everywhere.

    >>> from HybridNeuroLib.labels import BRATS_LABELS
    >>> [(label.value, label.name) for label in BRATS_LABELS]
    [(1, 'necrotic core'), (2, 'edema'), (3, 'enhancing tumor')]

Whole tumor = labels > 0; tumor core = labels 1 or 3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Label:
    """One lesion label: integer value in label images, display name, RGB colour in [0, 1]."""

    value: int
    name: str
    color_rgb: tuple[float, float, float]
    key: str  # short machine name, e.g. for file names ("netc")


BRATS_LABELS: tuple[Label, ...] = (
    Label(1, "necrotic core", (0.80, 0.20, 0.20), "netc"),
    Label(2, "edema", (0.30, 0.75, 0.35), "snfh"),
    Label(3, "enhancing tumor", (0.95, 0.85, 0.25), "et"),
)


def whole_tumor(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of the whole tumor (any label > 0)."""
    return np.asarray(labels) > 0


def tumor_core(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of the tumor core (necrotic core or enhancing tumor)."""
    labels = np.asarray(labels)
    return (labels == 1) | (labels == 3)
