"""Lesion label maps: the BraTS 2023 glioma labels, one definition used everywhere.

    >>> from HybridNeuroLib.labels import BRATS_LABELS
    >>> [(label.value, label.name) for label in BRATS_LABELS]
    [(1, 'necrotic core'), (2, 'edema'), (3, 'enhancing tumor')]

Whole tumor = labels > 0; tumor core = labels 1 or 3. Each label also carries its SNOMED CT
code (the segment's standard terminology in Slicer and DICOM SEG):

    >>> [(label.snomed.value, label.snomed.meaning) for label in BRATS_LABELS]
    [('6574001', 'Necrosis'), ('79654002', 'Edema'), ('108369006', 'Neoplasm')]

The imaging model that turns a tumor-cell density into these labels (visibility
thresholds) is here too, as the one definition shared by the engine and the Slicer module:

    >>> density_to_labels(np.array([0.1, 0.3, 0.8, 0.99])).tolist()   # background, edema, enhancing, necrotic
    [0, 2, 3, 1]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Code:
    """One concept of a coding scheme, as DICOM writes it: scheme designator, code value, code meaning."""

    value: str
    meaning: str
    scheme: str = "SCT"  # SNOMED CT


# SNOMED CT concepts (morphologic abnormalities) for the lesion regions. SNOMED CT has no concept
# for "contrast-enhancing" tumor: that region is coded as Neoplasm, its name says "enhancing".
MORPHOLOGICALLY_ALTERED_STRUCTURE = Code("49755003", "Morphologically Altered Structure")
BRAIN = Code("12738006", "Brain")


@dataclass(frozen=True)
class Label:
    """One lesion label: integer value in label images, display name, RGB colour in [0, 1], SNOMED CT type."""

    value: int
    name: str
    color_rgb: tuple[float, float, float]
    key: str  # short machine name, e.g. for file names ("netc")
    snomed: Code  # what the region is (segmented property type); category: morphologically altered structure


BRATS_LABELS: tuple[Label, ...] = (
    Label(1, "necrotic core", (0.80, 0.20, 0.20), "netc", Code("6574001", "Necrosis")),
    Label(2, "edema", (0.30, 0.75, 0.35), "snfh", Code("79654002", "Edema")),
    Label(3, "enhancing tumor", (0.95, 0.85, 0.25), "et", Code("108369006", "Neoplasm")),
)


def whole_tumor(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of the whole tumor (any label > 0)."""
    return np.asarray(labels) > 0


def tumor_core(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of the tumor core (necrotic core or enhancing tumor)."""
    labels = np.asarray(labels)
    return (labels == 1) | (labels == 3)


@dataclass(frozen=True)
class ImagingThresholds:
    """Density thresholds 0 < FLAIR < T1Gd < necrotic ≤ 1 (dimensionless)."""

    edema_flair: float = 0.25
    enhancing_t1gd: float = 0.65
    necrotic: float = 0.95

    def __post_init__(self) -> None:
        values = (self.edema_flair, self.enhancing_t1gd, self.necrotic)
        if not all(np.isfinite(values)) or not 0.0 < self.edema_flair < self.enhancing_t1gd < self.necrotic <= 1.0:
            raise ValueError("imaging thresholds must satisfy 0 < edema_flair < enhancing_t1gd < necrotic ≤ 1, "
                             f"got {values}")

    def to_dict(self) -> dict:
        return asdict(self)


def density_to_labels(density: np.ndarray, thresholds: ImagingThresholds = ImagingThresholds()) -> np.ndarray:
    """BraTS labels (uint8) of a density array."""
    density = np.asarray(density)
    labels = np.zeros(density.shape, dtype=np.uint8)
    labels[density >= thresholds.edema_flair] = 2
    labels[density >= thresholds.enhancing_t1gd] = 3
    labels[density >= thresholds.necrotic] = 1
    return labels
