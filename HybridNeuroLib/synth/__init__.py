"""Synthetic longitudinal subjects: atlas anatomy, ground-truth growth, rendered MRI, the sample case.

    >>> from HybridNeuroLib.synth import generate_subject, generate_cohort, sample_case
    >>> callable(generate_subject) and callable(generate_cohort) and callable(sample_case)
    True

Modules: ``parameters`` (truth parameters and cohort distributions), ``fields`` (random
smooth fields, warps), ``growth`` (the truth PDE), ``render`` (MRI contrasts, bias, noise),
``truth`` (labels, mass effect, truth folder), ``generator`` (one subject, a cohort),
``sample`` (the cached sample case).
"""

from HybridNeuroLib.synth.generator import SyntheticSubject, generate_cohort, generate_subject
from HybridNeuroLib.synth.sample import sample_case

__all__ = ["SyntheticSubject", "generate_cohort", "generate_subject", "sample_case"]
