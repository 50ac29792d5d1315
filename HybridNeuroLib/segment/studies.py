"""Segment every timepoint of a study into an output folder (``hybridneuro segment``).

    >>> from HybridNeuroLib.segment.studies import planned_files
    >>> [p.name for p in planned_files(__import__("pathlib").Path("out"), "tp0")]
    ['seg_tp0.nii.gz', 'seg_tp0_netc.nii.gz', 'seg_tp0_snfh.nii.gz', 'seg_tp0_et.nii.gz']

Per timepoint: ``seg_<id>.nii.gz`` (BraTS labels on the timepoint's grid) and one binary mask
per label, ``seg_<id>_<key>.nii.gz`` (keys from :data:`HybridNeuroLib.labels.BRATS_LABELS`).
The output folder must lie outside the study folder. All timepoints are segmented in memory
first; files are written only when every one succeeded, into a temporary folder that is then
renamed into place, so a failed run leaves no partial result behind.
"""

from __future__ import annotations

import contextlib

import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import SimpleITK as sitk

from HybridNeuroLib.labels import BRATS_LABELS
from HybridNeuroLib.outputs import prepare_output_folder, write_image
from HybridNeuroLib.segment.inference import segment_timepoint
from HybridNeuroLib.segment.model import SegmentationModel


def planned_files(out: Path, timepoint_id: str) -> list[Path]:
    """Label image then per-label masks of one timepoint."""
    return [out / f"seg_{timepoint_id}.nii.gz", *(out / f"seg_{timepoint_id}_{label.key}.nii.gz"
                                                  for label in BRATS_LABELS)]


def label_masks(labels: sitk.Image) -> list[sitk.Image]:
    """One uint8 0/1 mask per BraTS label, on the grid of ``labels``."""
    masks = []
    for label in BRATS_LABELS:
        mask = sitk.Cast(sitk.BinaryThreshold(labels, label.value, label.value, 1, 0), sitk.sitkUInt8)
        mask.CopyInformation(labels)
        masks.append(mask)
    return masks


@contextlib.contextmanager
def _naming(timepoint_id: str):
    """Prefix an input error with the timepoint it comes from (the images' own messages name only the contrast)."""
    try:
        yield
    except ValueError as error:
        raise ValueError(f"timepoint {timepoint_id!r}: {error}") from None


def segment_study(study_folder: str | Path, out: str | Path, model: SegmentationModel, *,
                  force_cpu: bool = False, tta: bool = False, overwrite: bool = False,
                  on_timepoint: Callable[[int, int], None] | None = None) -> list[Path]:
    """Segment each timepoint of the study at ``study_folder`` into ``out``; returns the written files."""
    from HybridNeuroLib.study import read_study

    study_folder, out = Path(study_folder), Path(out)
    study = read_study(study_folder)
    plans = {tp.id: planned_files(out, tp.id) for tp in study.timepoints}
    prepare_output_folder(out, [p for paths in plans.values() for p in paths], inputs=[study_folder],
                          overwrite=overwrite, create=False)
    for tp in study.timepoints:
        with _naming(tp.id):
            model.check_contrasts(tp.images.keys())  # all timepoints usable before any work
    results = {}
    for index, tp in enumerate(study.timepoints):
        with _naming(tp.id):
            results[tp.id] = segment_timepoint(tp.images, model, force_cpu=force_cpu, tta=tta)
        if on_timepoint is not None:
            on_timepoint(index + 1, len(study.timepoints))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-partial-", dir=out.parent))
    try:
        for tp_id, labels in results.items():
            for image, path in zip([labels, *label_masks(labels)], plans[tp_id]):
                write_image(image, staging / path.name)
        out.mkdir(exist_ok=True)
        written = []
        for paths in plans.values():
            for path in paths:
                (staging / path.name).replace(path)
                written.append(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def lesion_volumes_ml(labels: sitk.Image) -> dict[str, float]:
    """Volume in mL of each BraTS label of a label image."""
    array = sitk.GetArrayViewFromImage(labels)
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    return {label.name: round(float((array == label.value).sum()) * voxel_ml, 3) for label in BRATS_LABELS}
