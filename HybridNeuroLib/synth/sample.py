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

The Slicer module generates it in a background process, reading progress lines::

    $ python -c "import sys; from HybridNeuroLib.synth.sample import main; sys.exit(main())" --progress-lines

(its last line is ``study: <folder>``; ``-c`` rather than ``-m``, which would import this module twice).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

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


def sample_case(*, regenerate: bool = False, on_progress: Callable[[str, float], None] | None = None) -> Path:
    """The sample case's study folder, generating it first if it is not cached.

    ``on_progress(stage, fraction)`` is called while generating (not when the cache is used).
    """
    from HybridNeuroLib.synth.generator import generate_subject

    folder = sample_case_folder()
    if regenerate and folder.exists():
        shutil.rmtree(folder)
    if not (folder / "study" / "study.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".sample-", dir=folder.parent))
        try:
            generate_subject(SAMPLE_SEED, staging, days=SAMPLE_DAYS, predict_days=SAMPLE_PREDICT_DAYS, voxel_mm=2,
                             parameters=SAMPLE_PARAMETERS, on_progress=on_progress)
            try:
                staging.rename(folder)
            except OSError:  # another process finished first: use its copy
                if not (folder / "study" / "study.json").is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder / "study"


def main(argv: list[str] | None = None) -> int:
    """Make sure the sample case exists (generating it with progress) and print ``study: <folder>`` last."""
    import argparse

    from HybridNeuroLib.progress import Progress

    parser = argparse.ArgumentParser(prog="sample_case", description=__doc__.splitlines()[0])
    parser.add_argument("--progress-lines", action="store_true", help="print machine-readable progress lines")
    parser.add_argument("--regenerate", action="store_true", help="generate it again even if it is cached")
    args = parser.parse_args(argv)
    with Progress("sample case", total=100, unit="%", machine_lines=args.progress_lines) as progress:
        def report(stage: str, fraction: float) -> None:
            progress.advance(max(0.0, 100.0 * fraction - progress.done))
        study = sample_case(regenerate=args.regenerate, on_progress=report)
        progress.advance(100.0 - progress.done)
    print(f"study: {study}", flush=True)
    return 0

