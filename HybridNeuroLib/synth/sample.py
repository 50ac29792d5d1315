"""The embedded sample case: one fixed synthetic subject, generated on first use and cached.

    >>> from HybridNeuroLib.synth.sample import sample_case_folder
    >>> sample_case_folder().name.startswith("sample-")
    True

``sample_case()`` returns the study folder (``…/sample-<version>/study``; the truth is in
``…/truth`` beside it). Cache root: ``$HYBRIDNEURO_CACHE`` or ``~/.cache/hybridneuro``. The
subject: seed 2024, SRI24 anatomy on a 2 mm grid (74×93×74 voxels, brain-cropped),
observed at days 0, 60, 120, predictions at 180 and 240, fixed parameters (D_w 0.2 mm²/day,
ρ 0.025 /day, anisotropy 3, treatment at day 90). Generation takes well under a minute on
2 cores; it is written to a temporary folder and renamed, so a half-written cache is never
used. Nothing large is committed to the repository.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from HybridNeuroLib import __version__
from HybridNeuroLib.synth.parameters import SubjectParameters, Treatment

SAMPLE_SEED = 2024
SAMPLE_DAYS = (0, 60, 120)
SAMPLE_PREDICT_DAYS = (180, 240)
SAMPLE_PARAMETERS = SubjectParameters(
    dw_mm2_per_day=0.2, rho_per_day=0.025, anisotropy=3.0, rho_log_sd=0.2, necrosis_rate_per_day=0.03,
    detection_radius_mm=10.0, treatment=Treatment(day=90.0, surviving_fraction=0.6, chemo_kill_rate_per_day=0.01),
    mass_effect_ratio=0.15, deformation_mm=4.0, noise_fraction=0.03, bias_amplitude=0.15)


def cache_root() -> Path:
    return Path(os.environ.get("HYBRIDNEURO_CACHE") or Path.home() / ".cache" / "hybridneuro")


def sample_case_folder() -> Path:
    return cache_root() / f"sample-{__version__}"


def sample_case(*, regenerate: bool = False) -> Path:
    """The sample case's study folder, generating it first if it is not cached."""
    from HybridNeuroLib.synth.generator import generate_subject

    folder = sample_case_folder()
    if regenerate and folder.exists():
        shutil.rmtree(folder)
    if not (folder / "study" / "study.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".sample-", dir=folder.parent))
        try:
            generate_subject(SAMPLE_SEED, staging, days=SAMPLE_DAYS, predict_days=SAMPLE_PREDICT_DAYS, voxel_mm=2,
                             parameters=SAMPLE_PARAMETERS)
            try:
                staging.rename(folder)
            except OSError:  # another process finished first: use its copy
                if not (folder / "study" / "study.json").is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder / "study"
