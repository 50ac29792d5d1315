"""Glioma (brain tumours): the first disease package — Fisher–Kolmogorov growth on the patient's tissue.

    >>> from HybridNeuroLib.diseases import disease
    >>> disease("glioma").title
    'Glioma (brain tumour)'

The declaration below is all the shared layers know of glioma: BraTS 2023 modality keys and
labels, study times in days, a tumour-cell density on the image grid, the physics model by
default, the embedded sample case, and :func:`HybridNeuroLib.pipeline.run_pipeline` as its
pipeline. Its engine still lives in the glioma-specific packages ``physics``, ``fit``,
``synth``, ``hybrid`` and ``pipeline`` beside the shared layers; they move under this package
in a later step (see the README's architecture section).
"""

from __future__ import annotations

from pathlib import Path

from HybridNeuroLib.diseases import Disease, register_disease
from HybridNeuroLib.labels import BRATS_LABELS


def _run(study_folder, out, settings=None, **options):
    from HybridNeuroLib.pipeline import PipelineSettings, run_pipeline

    return run_pipeline(study_folder, out, settings or PipelineSettings(), **options)


def _sample_case() -> Path:
    from HybridNeuroLib.synth.sample import sample_case

    return sample_case()


GLIOMA = register_disease(Disease(
    name="glioma", title="Glioma (brain tumour)", image_keys=("t1n", "t1c", "t2w", "t2f"), labels=BRATS_LABELS,
    run=_run, default_model="physics", time_unit="days", state_kind="voxel field", sample_case=_sample_case))
