"""Typed, in-memory studies: timepoints with their images, optional labels and tissue.

    >>> import SimpleITK as sitk
    >>> from HybridNeuroLib.study.data import Study, Timepoint
    >>> image = sitk.Image(8, 8, 8, sitk.sitkFloat32)
    >>> study = Study(subject="demo", disease="glioma",
    ...               timepoints=(Timepoint("tp0", 0.0, {"t1n": image}),
    ...                           Timepoint("tp1", 60.0, {"t1n": image})),
    ...               predict_days=(120.0,))
    >>> [tp.id for tp in study.timepoints], study.days_observed
    (['tp0', 'tp1'], (0.0, 60.0))

Images are SimpleITK images (LPS world, mm). ``transforms`` maps a timepoint id to the
rigid transform that takes points of the first timepoint's space to that timepoint's
original space (the ITK resampling convention); it is filled by
:func:`HybridNeuroLib.study.register_study` and written as ``transforms/<id>.tfm``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import SimpleITK as sitk


@dataclass(frozen=True, eq=False)
class Timepoint:
    """One acquisition: ``id`` (folder name), ``day`` (days since the first scan), images by modality key."""

    id: str
    day: float
    images: dict[str, sitk.Image]
    seg: sitk.Image | None = None

    @property
    def reference_image(self) -> sitk.Image:
        """The first image (in modality-key order of the dict): the timepoint's grid."""
        return next(iter(self.images.values()))


@dataclass(frozen=True, eq=False)
class Study:
    """A longitudinal study of one subject (see ``HybridNeuroLib.study.format`` for the folder)."""

    subject: str
    disease: str
    timepoints: tuple[Timepoint, ...]
    predict_days: tuple[float, ...] = ()
    tissue: dict[str, sitk.Image] | None = None  # "gm", "wm", "csf" probabilities
    transforms: dict[str, sitk.Transform] = field(default_factory=dict)
    source_folder: Path | None = None  # where it was read from (never written to)

    @property
    def days_observed(self) -> tuple[float, ...]:
        return tuple(tp.day for tp in self.timepoints)

    def timepoint(self, timepoint_id: str) -> Timepoint:
        for tp in self.timepoints:
            if tp.id == timepoint_id:
                return tp
        raise KeyError(f"study {self.subject!r} has no timepoint {timepoint_id!r}; "
                       f"it has {[tp.id for tp in self.timepoints]}")

    def with_changes(self, **changes) -> Study:
        """A copy with some fields replaced (studies are immutable)."""
        return replace(self, **changes)
