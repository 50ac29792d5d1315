"""Fit a study folder's patient: its ``seg`` labels (aligned to the first timepoint) and tissue maps.

    >>> from HybridNeuroLib.fit.study_fit import fit_study, study_grid
    >>> callable(fit_study) and callable(study_grid)
    True

Unknown ``timepoint_ids`` are refused, listing the study's ids; a timepoint on another grid than
the first one with no registration transform gets a warning (:func:`grid_warnings`). Every timepoint
used must have a lesion segmentation (``seg``) and the study must have tissue maps; otherwise a
clear error names what is missing (automatic segmentation and tissue derivation are separate steps,
not done here). Labels of later timepoints are brought into the
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
from HybridNeuroLib.study import Study, Timepoint
from HybridNeuroLib.study.validate import same_grid


def study_grid(study: Study) -> ImageGeometry:
    """The grid of the study's first timepoint (where forecasts are written)."""
    first = study.timepoints[0]
    return ImageGeometry.from_image(first.seg if first.seg is not None else first.reference_image)


def study_tissue(study: Study) -> TissueMaps:
    if not study.tissue:
        raise ValueError(f"study {study.subject!r}: no tissue maps (\"tissue\" in study.json); the growth model "
                         "needs gm/wm/csf probability maps — add them to the study first")
    return TissueMaps.from_images(study.tissue["gm"], study.tissue["wm"], study.tissue["csf"])


def chosen_timepoints(study: Study, timepoint_ids: Sequence[str] | None = None) -> list[Timepoint]:
    """The study's timepoints named by ``timepoint_ids`` (default: all); unknown ids are refused by name."""
    if timepoint_ids is None:
        return list(study.timepoints)
    known = [tp.id for tp in study.timepoints]
    unknown = [tp_id for tp_id in timepoint_ids if tp_id not in known]
    if unknown:
        raise ValueError(f"--timepoints: study {study.subject!r} has no timepoint {', '.join(map(repr, unknown))}; "
                         f"its timepoints are {', '.join(known)}")
    if not timepoint_ids:
        raise ValueError(f"--timepoints: no timepoint chosen; study {study.subject!r} has {', '.join(known)}")
    return [study.timepoint(tp_id) for tp_id in dict.fromkeys(timepoint_ids)]


def grid_warnings(study: Study, timepoint_ids: Sequence[str] | None = None) -> list[str]:
    """Warnings for chosen timepoints whose grid differs from the first timepoint's while the study has no
    transform for them: their labels are then used where they lie in scanner (world) coordinates."""
    first = study.timepoints[0]
    reference = first.seg if first.seg is not None else first.reference_image
    warnings = []
    for tp in chosen_timepoints(study, timepoint_ids):
        image = tp.seg if tp.seg is not None else tp.reference_image
        if tp.id not in study.transforms and not same_grid(image, reference):
            warnings.append(f"timepoint {tp.id!r} lies on another grid than timepoint {study.timepoints[0].id!r} and "
                            f"the study has no transforms/{tp.id}.tfm: its labels are used where they lie in scanner "
                            "coordinates; if the head moved between scans, register the study first")
    return warnings


def study_labels(study: Study, timepoint_ids: Sequence[str] | None = None) -> list[tuple[float, sitk.Image]]:
    """(day, labels in the first timepoint's space) of the chosen timepoints (default: all)."""
    chosen = chosen_timepoints(study, timepoint_ids)
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
    for warning in grid_warnings(study, timepoint_ids):
        log(f"warning: {warning}")
    return fit_growth(study_tissue(study), study_labels(study, timepoint_ids), settings, progress=progress,
                      log=log, **options)
