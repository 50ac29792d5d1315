"""Fit a study folder's patient: its ``seg`` labels (aligned to the first timepoint) and tissue maps.

    >>> from HybridNeuroLib.fit.study_fit import fit_study, study_grid
    >>> callable(fit_study) and callable(study_grid)
    True

Every timepoint used must have a lesion segmentation (``seg``) and the study must have tissue
maps; otherwise a clear error names what is missing (automatic segmentation and tissue
derivation are separate steps, not done here). Labels of later timepoints are brought into the
first timepoint's space with the study's registration transforms when present (nearest
neighbour). Nothing is written.
"""

from __future__ import annotations

from typing import Callable, Sequence

import SimpleITK as sitk

from HybridNeuroLib.fit.fitting import fit_growth
from HybridNeuroLib.fit.result import FitResult
from HybridNeuroLib.fit.settings import FitSettings
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.physics import TissueMaps
from HybridNeuroLib.study import Study


def study_grid(study: Study) -> ImageGeometry:
    """The grid of the study's first timepoint (where forecasts are written)."""
    first = study.timepoints[0]
    return ImageGeometry.from_image(first.seg if first.seg is not None else first.reference_image)


def study_tissue(study: Study) -> TissueMaps:
    if not study.tissue:
        raise ValueError(f"study {study.subject!r}: no tissue maps (\"tissue\" in study.json); the growth model "
                         "needs gm/wm/csf probability maps — add them to the study first")
    return TissueMaps.from_images(study.tissue["gm"], study.tissue["wm"], study.tissue["csf"])


def study_labels(study: Study, timepoint_ids: Sequence[str] | None = None) -> list[tuple[float, sitk.Image]]:
    """(day, labels in the first timepoint's space) of the chosen timepoints (default: all)."""
    chosen = study.timepoints if timepoint_ids is None else [study.timepoint(i) for i in timepoint_ids]
    missing = [tp.id for tp in chosen if tp.seg is None]
    if missing:
        raise ValueError(f"study {study.subject!r}: timepoint(s) {', '.join(missing)} have no lesion segmentation "
                         "(seg.nii.gz); segment them first (automatic segmentation is a separate step) or choose "
                         "timepoints that have one")
    reference = study.timepoints[0].seg or study.timepoints[0].reference_image
    pairs = []
    for tp in chosen:
        seg = tp.seg
        if tp.id in study.transforms:
            seg = sitk.Resample(seg, reference, study.transforms[tp.id], sitk.sitkNearestNeighbor, 0, seg.GetPixelID())
        pairs.append((tp.day, seg))
    return pairs


def fit_study(study: Study, settings: FitSettings = FitSettings(), *, timepoint_ids: Sequence[str] | None = None,
              progress: bool = True, log: Callable[[str], None] = lambda message: None, **options) -> FitResult:
    """Fit the study's patient (see the module docstring); ``options`` go to :func:`fit_growth`."""
    return fit_growth(study_tissue(study), study_labels(study, timepoint_ids), settings, progress=progress,
                      log=log, **options)
