"""Training cases from a folder in the BraTS layout (2023 and 2021 naming), next to study folders.

    >>> from HybridNeuroLib.segment.brats import parse_brats_name
    >>> parse_brats_name("BraTS-GLI-00012-001-t2f.nii.gz")
    ('BraTS-GLI-00012-001', 't2f')
    >>> parse_brats_name("BraTS2021_00012_flair.nii.gz")
    ('BraTS2021_00012', 't2f')
    >>> parse_brats_name("notes.txt") is None
    True

One folder per case holding ``<case>-t1n|t1c|t2w|t2f|seg.nii.gz`` (BraTS 2023) or
``<case>_t1|t1ce|t2|flair|seg.nii.gz`` (BraTS 2021). Contrast keys map onto the engine's
(t1n, t1c, t2w, t2f). BraTS 2021 labels enhancing tumour as 4; it becomes 3 (BraTS 2023,
the engine's convention); any other value outside 0–3 is refused, naming the file. The
subject of a 2023 case is its name without the timepoint suffix (``BraTS-GLI-00012``), so a
subject's timepoints stay on one side of the training/validation split. Files are only read, each
by the checked reader (:func:`HybridNeuroLib.study.images.read_image`: truncated, corrupt or
NaN-holding files are refused by name).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from HybridNeuroLib.segment.cases import Case
from HybridNeuroLib.study.images import read_image

CONTRAST_SUFFIXES = {"t1n": "t1n", "t1c": "t1c", "t2w": "t2w", "t2f": "t2f", "seg": "seg",   # 2023
                     "t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f"}                 # 2021
_NAME = re.compile(r"^(?P<case>.+?)[-_](?P<suffix>t1n|t1c|t2w|t2f|t1ce|t1|t2|flair|seg)\.nii(\.gz)?$")
_SUBJECT_2023 = re.compile(r"^(?P<subject>.+)-\d{3}$")


def parse_brats_name(file_name: str) -> tuple[str, str] | None:
    """(case name, engine key) of a BraTS file name, or None if it is not one."""
    match = _NAME.match(file_name)
    return None if match is None else (match["case"], CONTRAST_SUFFIXES[match["suffix"]])


def find_brats_cases(root: str | Path) -> list[Path]:
    """Case folders (holding a BraTS ``…seg.nii.gz``) at or below ``root``, sorted."""
    root = Path(root)
    return sorted({path.parent for path in root.rglob("*seg.nii*") if parse_brats_name(path.name)})


def _read_labels(path: Path) -> sitk.Image:
    seg = read_image(path, what="BraTS labels")
    array = sitk.GetArrayFromImage(seg)
    values = set(np.unique(array).tolist())
    if not values <= {0, 1, 2, 3, 4}:
        raise ValueError(f"{path}: label values {sorted(values)}; expected BraTS labels 0, 1, 2, 3 (or 4 for "
                         "enhancing tumour in BraTS 2021)")
    if 4 in values:
        if 3 in values:
            raise ValueError(f"{path}: holds both 3 and 4; BraTS files use one of them for enhancing tumour")
        array = np.where(array == 4, 3, array)
    converted = sitk.GetImageFromArray(array.astype(np.uint8))
    converted.CopyInformation(seg)
    return converted


def brats_cases(folders: Sequence[str | Path], contrasts: Sequence[str]) -> list[Case]:
    """One :class:`~HybridNeuroLib.segment.training.Case` per BraTS case folder with a seg and all ``contrasts``."""
    cases = []
    for folder in map(Path, folders):
        files: dict[str, Path] = {}
        name = folder.name
        for path in sorted(folder.iterdir()):
            parsed = parse_brats_name(path.name)
            if parsed is not None:
                name, key = parsed
                files[key] = path
        missing = [key for key in (*contrasts, "seg") if key not in files]
        if missing:
            raise ValueError(f"BraTS case folder {folder}: no {', '.join(missing)} file(s); expected "
                             f"<case>-<{'|'.join(contrasts)}|seg>.nii.gz (BraTS 2023) or the 2021 names")
        images = {key: read_image(files[key], what=f"BraTS {key} image", pixel_type=sitk.sitkFloat32)
                  for key in contrasts}
        match = _SUBJECT_2023.match(name)
        cases.append(Case(match["subject"] if match else name, name, images, _read_labels(files["seg"])))
    return cases
