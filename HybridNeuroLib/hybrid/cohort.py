"""Synthetic patients for training and evaluating forecasting models: tissue + lesion labels per day.

    >>> from HybridNeuroLib.hybrid.cohort import synthetic_case
    >>> case = synthetic_case(7, voxel_mm=4, observed_days=(0, 30), future_days=(60,))
    >>> [day for day, _ in case.observed], [day for day, _ in case.future]
    ([0.0, 30.0], [60.0])
    >>> case.observed[0][1].GetSize() == case.tissue.geometry.size
    True

The truth is the generator's (:mod:`HybridNeuroLib.synth.growth`): anisotropic spread along
white-matter sheets, spatially varying proliferation and a necrotic second species — richer
than the Fisher–Kolmogorov model every hybrid starts from, which is what makes "physics
incomplete" measurable. No MRI is rendered (models see labels and tissue, as after
segmentation), so a case takes ~5 s. Parameters come from
:func:`HybridNeuroLib.synth.parameters.sample_parameters` (literature ranges) *without* its
random treatment: an unrecorded one-off cell kill of 30–70 % makes the visible lesion vanish
and regrow (measured: 666 → 12 → 0 → 53 → 855 voxels over days 0–240), which no untreated
forecast can or should predict; treatment enters as known scenarios
(:mod:`HybridNeuroLib.fit.scenarios`) instead. Pass ``parameters`` to study a treated truth.

Cases are cached as ``.npz`` under ``$HYBRIDNEURO_CACHE/hybrid-cases-<version>/`` (same seed
and arguments → the same file; regenerated if missing or unreadable). Training cohorts use
seeds from :func:`training_seeds`, evaluation cohorts from :func:`evaluation_seeds` — disjoint
by construction, so held-out subjects are never seen in training.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from HybridNeuroLib import __version__
from HybridNeuroLib.physics import TissueMaps
from HybridNeuroLib.synth.generator import _seed_voxel, cohort_seeds, subject_anatomy
from HybridNeuroLib.synth.growth import grow_lesion
from HybridNeuroLib.synth.parameters import SubjectParameters, sample_parameters
from HybridNeuroLib.synth.sample import cache_root
from HybridNeuroLib.synth.truth import truth_labels

TRAINING_COHORT_SEED, EVALUATION_COHORT_SEED = 11, 29


@dataclass(frozen=True, eq=False)
class SyntheticCase:
    """One synthetic patient: tissue maps, observed and future ``(day, BraTS labels)`` on the tissue grid."""

    seed: int
    tissue: TissueMaps
    observed: list[tuple[float, sitk.Image]]
    future: list[tuple[float, sitk.Image]]
    parameters: SubjectParameters

    @property
    def all_days(self) -> list[tuple[float, sitk.Image]]:
        return self.observed + self.future


def training_seeds(n: int) -> list[int]:
    return cohort_seeds(n, TRAINING_COHORT_SEED)


def evaluation_seeds(n: int) -> list[int]:
    seeds = cohort_seeds(n, EVALUATION_COHORT_SEED)
    overlap = set(seeds) & set(training_seeds(max(n, 64)))
    if overlap:  # practically impossible with 32-bit draws, but the guarantee matters
        raise RuntimeError(f"evaluation seeds {sorted(overlap)} are also training seeds")
    return seeds


def _cache_path(seed: int, voxel_mm: int, observed_days, future_days, parameters):
    key = json.dumps([seed, voxel_mm, list(observed_days), list(future_days),
                      parameters.to_dict() if parameters else None], sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return cache_root() / f"hybrid-cases-{__version__}" / f"case-{seed}-{digest}.npz"


def synthetic_case(seed: int, *, voxel_mm: int = 2, observed_days: Sequence[float] = (0, 60, 120),
                   future_days: Sequence[float] = (180, 240), parameters: SubjectParameters | None = None,
                   cache: bool = True) -> SyntheticCase:
    """One case from ``seed`` (see the module docstring); ``parameters`` fixes the truth instead of drawing it."""
    observed_days, future_days = [float(d) for d in observed_days], [float(d) for d in future_days]
    days = observed_days + future_days
    if not observed_days or observed_days[0] != 0.0 or any(b <= a for a, b in zip(days, days[1:])):
        raise ValueError(f"days must start at 0 and increase strictly, got observed {observed_days}, "
                         f"future {future_days}")
    path = _cache_path(seed, voxel_mm, observed_days, future_days, parameters)
    arrays = None
    if cache and path.is_file():
        try:
            with np.load(path) as stored:
                arrays = {key: stored[key] for key in stored.files}
        except (OSError, ValueError):
            arrays = None
    rng = np.random.default_rng(seed)
    p = parameters if parameters is not None else sample_parameters(rng, follow_up_days=days[-1])
    if parameters is None:
        p = replace(p, treatment=None)
    geometry, maps = subject_anatomy(voxel_mm, p.deformation_mm, np.random.default_rng([seed, 1]))
    if arrays is None:
        seed_kji = _seed_voxel(maps, tuple(reversed(geometry.spacing_mm)), rng)
        growth = grow_lesion(TissueMaps(geometry=geometry, **maps), p, seed_kji, days, rng)
        arrays = {f"day{d:g}": truth_labels(growth.proliferating[d], growth.necrotic[d],
                                            edema_threshold=p.edema_threshold,
                                            enhancing_threshold=p.enhancing_threshold) for d in days}
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = path.with_suffix(".tmp.npz")
            np.savez_compressed(staging, **arrays)
            staging.replace(path)
    labels = [(d, geometry.image_from_array(arrays[f"day{d:g}"])) for d in days]
    return SyntheticCase(seed, TissueMaps(geometry=geometry, **maps), labels[:len(observed_days)],
                         labels[len(observed_days):], p)
