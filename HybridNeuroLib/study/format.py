"""Constants of the ``hybridneuro-study/1`` folder format.

    >>> from HybridNeuroLib.study.format import image_key, IMAGE_KEYS
    >>> image_key("t2f.nii.gz"), image_key("seg.nrrd"), image_key("notes.txt")
    ('t2f', 'seg', None)
    >>> IMAGE_KEYS["glioma"]
    ('t1n', 't1c', 't2w', 't2f')

Layout (paths relative to the study folder)::

    study.json                    the manifest (FORMAT_ID, subject, disease, timepoints, …)
    <timepoint id>/<key>.nii.gz   one image per modality key (.nii, .nrrd, .nhdr, .mha too)
    <timepoint id>/seg.nii.gz     optional lesion labels (BraTS 2023 values)
    <tissue>/gm|wm|csf.nii.gz     optional tissue probabilities ("tissue" in study.json)
    transforms/<timepoint id>.tfm optional rigid transforms written after registration

Modality keys follow BraTS 2023 for glioma; other diseases add their own.
"""

from __future__ import annotations

FORMAT_ID = "hybridneuro-study/1"
MANIFEST_NAME = "study.json"
TRANSFORMS_FOLDER = "transforms"
SEG_KEY = "seg"
TISSUE_KEYS = ("gm", "wm", "csf")

IMAGE_KEYS: dict[str, tuple[str, ...]] = {
    "glioma": ("t1n", "t1c", "t2w", "t2f"),
    "stroke": ("t1n", "t2w", "t2f", "dwi", "adc", "tmax"),
    "alzheimers": ("t1n", "t2w", "t2f"),
}
"""Modality keys each disease may use; the first key a timepoint has is preferred for registration."""

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
WRITE_SUFFIX = ".nii.gz"

MANIFEST_KEYS = {"format": str, "subject": str, "disease": str, "timepoints": list,
                 "predict_days": list, "tissue": str}
REQUIRED_MANIFEST_KEYS = ("format", "subject", "disease", "timepoints")
TIMEPOINT_KEYS = {"id": str, "day": (int, float)}


def image_key(file_name: str) -> str | None:
    """The key of an image file name (``t1n.nii.gz`` → ``t1n``), or None if it is not an image."""
    for suffix in IMAGE_SUFFIXES:
        if file_name.lower().endswith(suffix) and len(file_name) > len(suffix):
            return file_name[: -len(suffix)]
    return None
