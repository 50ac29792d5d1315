"""Constants of the ``hybridneuro-study/1`` folder format.

    >>> from HybridNeuroLib.study.format import image_key
    >>> image_key("t2f.nii.gz"), image_key("seg.nrrd"), image_key("notes.txt")
    ('t2f', 'seg', None)

Layout (paths relative to the study folder)::

    study.json                    the manifest (FORMAT_ID, subject, disease, timepoints, …)
    <timepoint id>/<key>.nii.gz   one image per modality key (.nii, .nrrd, .nhdr, .mha too)
    <timepoint id>/seg.nii.gz     optional lesion labels (BraTS 2023 values)
    <tissue>/gm|wm|csf.nii.gz     optional tissue probabilities ("tissue" in study.json)
    transforms/<timepoint id>.tfm optional rigid transforms written after registration

Each disease declares its modality keys, labels and time unit (:mod:`HybridNeuroLib.diseases`;
glioma: BraTS 2023 keys and labels, days). ``"time_unit"`` in ``study.json`` is optional and, when
given, must be the disease's; the timepoint times keep the key ``day`` in this format version.
"""

from __future__ import annotations

FORMAT_ID = "hybridneuro-study/1"
MANIFEST_NAME = "study.json"
TRANSFORMS_FOLDER = "transforms"
SEG_KEY = "seg"
TISSUE_KEYS = ("gm", "wm", "csf")

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
WRITE_SUFFIX = ".nii.gz"

MANIFEST_KEYS = {"format": str, "subject": str, "disease": str, "timepoints": list,
                 "predict_days": list, "tissue": str, "time_unit": str}
REQUIRED_MANIFEST_KEYS = ("format", "subject", "disease", "timepoints")
TIMEPOINT_KEYS = {"id": str, "day": (int, float)}


def image_key(file_name: str) -> str | None:
    """The key of an image file name (``t1n.nii.gz`` → ``t1n``), or None if it is not an image."""
    for suffix in IMAGE_SUFFIXES:
        if file_name.lower().endswith(suffix) and len(file_name) > len(suffix):
            return file_name[: -len(suffix)]
    return None
