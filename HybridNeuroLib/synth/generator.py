"""Synthetic longitudinal glioma subjects on real (randomly deformed) atlas anatomy.

    >>> import tempfile, pathlib
    >>> from HybridNeuroLib.synth import generate_subject
    >>> from HybridNeuroLib.synth.parameters import SubjectParameters
    >>> fast = SubjectParameters(dw_mm2_per_day=0.3, rho_per_day=0.03, detection_radius_mm=8.0)
    >>> subject = generate_subject(1, pathlib.Path(tempfile.mkdtemp()) / "s1", days=(0, 20, 40),
    ...                            predict_days=(60,), voxel_mm=4, parameters=fast)
    >>> sorted(p.name for p in subject.study_folder.iterdir())
    ['study.json', 'tissue', 'tp0', 'tp1', 'tp2']
    >>> sorted(p.name for p in subject.truth_folder.iterdir())
    ['day-0', 'day-20', 'day-40', 'day-60', 'parameters.json', 'tissue']

Per subject (all randomness from ``numpy.random.default_rng(seed)``; the torch computation is
deterministic and draws no random numbers — and calling ``torch.manual_seed`` was measured to
slow the CPU growth ~10× on these machines, so it is not called):
the SRI24 atlas at ``voxel_mm`` is deformed by a smooth random displacement; a seed voxel is
drawn in deep white matter (≥ 15 mm from the brain surface); the lesion grows by the
ground-truth model of ``growth`` until it is visible (day 0) and on to every observed and
prediction day; each observed day is rendered in t1n, t1c, t2w, t2f (``render``) on the
anatomy pushed aside by the lesion's mass effect, with its own bias field and noise, and
labelled (``truth``). Output: ``<out>/study`` (a ``hybridneuro-study/1`` folder, with the
subject's tissue maps unless ``include_tissue=False``) and ``<out>/truth``. Same seed and
arguments → byte-identical files. The anatomy derives from SRI24 (CC BY-SA 3.0): shared
outputs must credit Rohlfing et al. 2010 and keep that licence (recorded in parameters.json).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from HybridNeuroLib import __version__
from HybridNeuroLib.anatomy.atlas import load_atlas
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.physics.tissue import TissueMaps
from HybridNeuroLib.study import Study, Timepoint, write_study
from HybridNeuroLib.synth.fields import random_displacement, warp
from HybridNeuroLib.synth.growth import grow_lesion
from HybridNeuroLib.synth.parameters import SubjectParameters, sample_parameters
from HybridNeuroLib.synth.render import MODALITIES, SIGNAL, acquire, render_modality
from HybridNeuroLib.synth.truth import mass_effect_displacement, truth_labels, write_truth

ATTRIBUTION = {
    "atlas": "SRI24, the compact copy shipped in HybridNeuroLib/anatomy/sri24 (CC BY-SA 3.0)",
    "licence": "CC BY-SA 3.0",
    "citation": "T. Rohlfing, N. M. Zahr, E. V. Sullivan, A. Pfefferbaum, The SRI24 multichannel atlas of normal "
                "adult human brain structure, Human Brain Mapping 31(5):798-819, 2010, doi:10.1002/hbm.20906",
}
MIN_SEED_DEPTH_MM = 15.0


@dataclass(frozen=True)
class SyntheticSubject:
    study_folder: Path
    truth_folder: Path
    parameters: SubjectParameters


def _check_days(days: Sequence[float], predict_days: Sequence[float]) -> tuple[list[float], list[float]]:
    days, predict_days = [float(d) for d in days], [float(d) for d in predict_days]
    if len(days) < 1 or days[0] != 0.0 or any(b <= a for a, b in zip(days, days[1:])):
        raise ValueError(f"days must start at 0 (the first scan) and increase strictly, got {days}")
    if any(not math.isfinite(d) for d in days + predict_days) or any(
            b <= a for a, b in zip([days[-1], *predict_days], predict_days)):
        raise ValueError(f"predict_days must be finite, increasing and after the last observed day {days[-1]:g}, "
                         f"got {predict_days}")
    return days, predict_days


def _prepare_output(out_dir: Path, overwrite: bool) -> None:
    for part in ("study", "truth"):
        target = out_dir / part
        if target.exists():
            if not overwrite:
                raise FileExistsError(f"{target} already exists; choose another output folder or pass "
                                      "overwrite=True (--overwrite)")
            shutil.rmtree(target)


def subject_anatomy(voxel_mm: int, deformation_mm: float, rng: np.random.Generator):
    """(geometry, {gm, wm, csf} arrays) of the atlas deformed by a smooth random displacement."""
    atlas = load_atlas(voxel_mm=voxel_mm)
    geometry = ImageGeometry.from_image(atlas.t1)
    spacing = tuple(reversed(geometry.spacing_mm))
    displacement = random_displacement(geometry.shape_kji, spacing, deformation_mm, rng)
    tissue = {key: np.clip(warp(array, displacement, spacing), 0.0, 1.0) for key, array in atlas.arrays().items()}
    return geometry, tissue


def _seed_voxel(tissue: dict[str, np.ndarray], spacing_kji_mm, rng: np.random.Generator) -> tuple[int, int, int]:
    brain = (tissue["gm"] + tissue["wm"] + tissue["csf"]) > 0.5
    depth_mm = ndimage.distance_transform_edt(brain, sampling=spacing_kji_mm)
    candidates = np.argwhere((tissue["wm"] >= 0.8) & (depth_mm >= MIN_SEED_DEPTH_MM))
    if len(candidates) == 0:
        raise ValueError("no deep white-matter voxel to seed a lesion (is the anatomy empty?)")
    return tuple(int(v) for v in candidates[rng.integers(len(candidates))])


def generate_subject(seed: int, out_dir: str | Path, *, days: Sequence[float] = (0, 60, 120),
                     predict_days: Sequence[float] = (180,), voxel_mm: int = 2,
                     parameters: SubjectParameters | None = None, include_tissue: bool = True,
                     overwrite: bool = False, on_progress: Callable[[str, float], None] | None = None
                     ) -> SyntheticSubject:
    """Generate one subject into ``out_dir/study`` and ``out_dir/truth`` (see the module docstring)."""
    days, predict_days = _check_days(days, predict_days)
    out_dir = Path(out_dir)
    _prepare_output(out_dir, overwrite)
    report = on_progress or (lambda stage, fraction: None)
    rng = np.random.default_rng(seed)  # the only source of randomness (torch draws nothing here)
    p = parameters if parameters is not None else sample_parameters(rng, follow_up_days=days[-1] or 180.0)
    geometry, tissue = subject_anatomy(voxel_mm, p.deformation_mm, rng)
    spacing = tuple(reversed(geometry.spacing_mm))
    seed_kji = _seed_voxel(tissue, spacing, rng)
    report("anatomy", 0.1)
    all_days = days + predict_days
    growth = grow_lesion(TissueMaps(geometry=geometry, **tissue), p, seed_kji, all_days, rng,
                         on_progress=lambda day: report("growth", 0.1 + 0.6 * day / all_days[-1]))
    thresholds = {"edema_threshold": p.edema_threshold, "enhancing_threshold": p.enhancing_threshold}
    labels = {d: truth_labels(growth.proliferating[d], growth.necrotic[d], **thresholds) for d in all_days}
    timepoints, mass_effect = [], {}
    for index, day in enumerate(days):
        u, n = growth.proliferating[day], growth.necrotic[day]
        radius_mm = (growth.lesion_volume_ml(day, p.edema_threshold) * 3000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
        mass_effect[day] = p.mass_effect_ratio * radius_mm
        pull = mass_effect_displacement(u + n, spacing, mass_effect[day])
        pushed = {key: np.clip(warp(array, pull, spacing), 0.0, 1.0) for key, array in tissue.items()}
        images = {}
        for modality in MODALITIES:
            clean = render_modality(modality, pushed, u, n, **thresholds)
            sigma = p.noise_fraction * SIGNAL["t1n"]["wm"]
            images[modality] = geometry.image_from_array(
                acquire(clean, noise_sigma=sigma, bias_amplitude=p.bias_amplitude, rng=rng))
        timepoints.append(Timepoint(f"tp{index}", day, images, geometry.image_from_array(labels[day])))
        report("render", 0.7 + 0.25 * (index + 1) / len(days))
    subject = f"synth-{seed}"
    study_tissue = ({key: geometry.image_from_array(a.astype(np.float32)) for key, a in tissue.items()}
                    if include_tissue else None)
    study_folder = write_study(Study(subject, "glioma", tuple(timepoints), tuple(predict_days), study_tissue),
                               out_dir / "study")
    seed_ras = geometry.ijk_to_ras() @ np.array([*reversed(seed_kji), 1.0])
    record = {
        "subject": subject, "seed": int(seed), "generator_version": __version__, "parameters": p.to_dict(),
        "days": days, "predict_days": predict_days, "voxel_mm": voxel_mm,
        "grid": {"size": list(geometry.size), "spacing_mm": list(geometry.spacing_mm),
                 "origin_lps_mm": list(geometry.origin_lps_mm)},
        "seed_voxel_kji": list(seed_kji), "seed_ras_mm": [round(float(v), 4) for v in seed_ras[:3]],
        "pre_detection_days": growth.pre_detection_days, "box_face_max_density": growth.box_face_max_density,
        "lesion_volume_ml": {f"{d:g}": round(growth.lesion_volume_ml(d, p.edema_threshold), 4) for d in all_days},
        "mass_effect_max_mm": {f"{d:g}": round(v, 4) for d, v in mass_effect.items()},
        "labels": "2 edema: u+n >= edema_threshold; 1 core: u+n >= enhancing_threshold; 3 enhancing: u >= "
                  "enhancing_threshold (u proliferating, n necrotic density)",
        "anatomy": ATTRIBUTION,
    }
    truth_folder = write_truth(out_dir / "truth", geometry, tissue,
                               {d: (growth.proliferating[d], growth.necrotic[d]) for d in all_days}, labels, record)
    report("done", 1.0)
    return SyntheticSubject(study_folder, truth_folder, p)


def cohort_seeds(n: int, seed: int) -> list[int]:
    """Independent per-subject seeds derived from one cohort seed."""
    return [int(child.generate_state(1)[0]) for child in np.random.SeedSequence(seed).spawn(n)]


def generate_cohort(n: int, out_dir: str | Path, *, seed: int = 0, days: Sequence[float] = (0, 60, 120),
                    predict_days: Sequence[float] = (180,), voxel_mm: int = 2, include_tissue: bool = True,
                    overwrite: bool = False, on_subject: Callable[[int, int], None] | None = None
                    ) -> list[SyntheticSubject]:
    """``n`` subjects with parameters drawn from the literature ranges, in ``out_dir/subject-<i>``."""
    if int(n) < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    subjects = []
    for index, subject_seed in enumerate(cohort_seeds(int(n), seed)):
        subjects.append(generate_subject(subject_seed, Path(out_dir) / f"subject-{index:03d}", days=days,
                                         predict_days=predict_days, voxel_mm=voxel_mm,
                                         include_tissue=include_tissue, overwrite=overwrite))
        if on_subject is not None:
            on_subject(index + 1, int(n))
    return subjects
