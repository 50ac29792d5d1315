"""Segment every timepoint of a study into an output folder (``hybridneuro segment``).

    >>> from HybridNeuroLib.segment.studies import planned_files
    >>> [p.name for p in planned_files(__import__("pathlib").Path("out"), "tp0")]
    ['seg_tp0.nii.gz', 'seg_tp0_netc.nii.gz', 'seg_tp0_snfh.nii.gz', 'seg_tp0_et.nii.gz']

Per timepoint: ``seg_<id>.nii.gz`` (BraTS labels on the timepoint's grid) and one binary mask
per label, ``seg_<id>_<key>.nii.gz`` (keys from :data:`HybridNeuroLib.labels.BRATS_LABELS`).
The output folder must be new or empty (``overwrite``: an earlier HybridNeuro output) and lie
outside the study and the model folder. All timepoints are segmented in memory first; files are
written into a staging folder renamed into place only when every one succeeded
(:func:`HybridNeuroLib.outputs.staged_output`), so a failed run leaves no partial result behind.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

import numpy as np
import SimpleITK as sitk

from HybridNeuroLib.labels import BRATS_LABELS
from HybridNeuroLib.outputs import check_output_folder, staged_output, write_image
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
                  model_folder: str | Path | None = None, force_cpu: bool = False, tta: bool = False,
                  overwrite: bool = False, on_timepoint: Callable[[int, int], None] | None = None) -> list[Path]:
    """Segment each timepoint of the study at ``study_folder`` into ``out``; returns the written files.

    ``model_folder``: where ``model`` was read from (a bundle or ``train-seg`` folder), an input
    the output may not share a folder with.
    """
    from HybridNeuroLib.study import read_study

    inputs = [study_folder, model_folder]
    out = check_output_folder(out, inputs=inputs, overwrite=overwrite)
    study = read_study(study_folder)
    for tp in study.timepoints:
        with _naming(tp.id):
            model.check_contrasts(tp.images.keys())  # all timepoints usable before any work
    with staged_output(out, inputs=inputs, overwrite=overwrite, command="segment") as staging:
        for index, tp in enumerate(study.timepoints):
            with _naming(tp.id):
                labels = segment_timepoint(tp.images, model, force_cpu=force_cpu, tta=tta)
            for image, path in zip([labels, *label_masks(labels)], planned_files(staging, tp.id)):
                write_image(image, path)
            if on_timepoint is not None:
                on_timepoint(index + 1, len(study.timepoints))
    return [path for tp in study.timepoints for path in planned_files(out, tp.id)]


def lesion_volumes_ml(labels: sitk.Image) -> dict[str, float]:
    """Volume in mL of each BraTS label of a label image."""
    array = sitk.GetArrayViewFromImage(labels)
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    return {label.name: round(float((array == label.value).sum()) * voxel_ml, 3) for label in BRATS_LABELS}
