"""``hybridneuro run`` for any disease: the pipeline the study's disease declares.

    >>> from HybridNeuroLib.runner import run_study
    >>> callable(run_study)              # run_study("subject-3/study", "results") runs glioma's pipeline
    True

The study folder's ``study.json`` names its disease; :func:`HybridNeuroLib.diseases.disease`
gives the declaration, whose ``run`` does the work (for glioma:
:func:`HybridNeuroLib.pipeline.run_pipeline`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from HybridNeuroLib.diseases import disease


def run_study(study_folder: str | Path, out: str | Path, settings=None, *, overwrite: bool = False,
              progress: bool = True, log: Callable[[str], None] = lambda message: None):
    """``hybridneuro run``: the pipeline of the study's disease (named in its ``study.json``) into ``out``."""
    from HybridNeuroLib.study.validate import Problem, StudyError, read_manifest

    folder = Path(study_folder)
    if not folder.is_dir():
        raise StudyError(folder, [Problem(str(folder), "study folder does not exist")])
    manifest, problems = read_manifest(folder)
    if manifest is None or not isinstance(manifest.get("disease"), str):
        raise StudyError(folder, problems or [])
    chosen = disease(manifest["disease"])
    return chosen.run(folder, out, settings, overwrite=overwrite, progress=progress, log=log)
