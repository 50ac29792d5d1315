"""Training cases: the labelled timepoints of study folders and BraTS-layout case folders under a root.

    >>> from HybridNeuroLib.segment.cases import Case
    >>> Case("s01", "tp0", {}, None).name
    's01/tp0'

Cases of one study keep its subject as ``study``, so the training/validation split never divides a
patient. BraTS-layout case folders are :mod:`HybridNeuroLib.segment.brats`'s;
:func:`HybridNeuroLib.segment.training.collect_cases` finds both kinds under one folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


@dataclass
class Case:
    study: str  # cases of one study stay on one side of the training/validation split
    timepoint: str
    images: dict  # modality key → sitk.Image
    seg: object  # sitk.Image

    @property
    def name(self) -> str:
        return f"{self.study}/{self.timepoint}"


def study_cases(folders: Sequence[str | Path], contrasts: Sequence[str]) -> list[Case]:
    """Labelled timepoints of the study folders that have all ``contrasts`` (others are skipped, said why)."""
    from HybridNeuroLib.study import read_study

    cases = []
    for folder in folders:
        study = read_study(folder)
        for tp in study.timepoints:
            if tp.seg is not None and all(key in tp.images for key in contrasts):
                cases.append(Case(study.subject, tp.id, tp.images, tp.seg))
    if not cases:
        raise ValueError(f"no timepoint with a seg image and contrasts {', '.join(contrasts)} in "
                         f"{len(folders)} study folder(s)")
    return cases


def find_study_folders(root: str | Path) -> list[Path]:
    """Study folders (containing ``study.json``) at or below ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"training data folder {root} does not exist")
    folders = sorted(path.parent for path in root.rglob("study.json"))
    if not folders:
        raise ValueError(f"no study folder (study.json) under {root}")
    return folders
