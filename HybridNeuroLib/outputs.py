"""Output files: one naming scheme for per-day images, and the no-overwrite rule.

    >>> from pathlib import Path
    >>> from HybridNeuroLib.outputs import day_image_paths
    >>> [p.name for p in day_image_paths(Path("out"), 120)]
    ['density_day120.nii.gz', 'seg_day120.nii.gz']
    >>> day_image_paths(Path("out"), 7.5)[0].name
    'density_day7p5.nii.gz'
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import SimpleITK as sitk


def day_tag(day: float) -> str:
    """``120`` → ``"120"``, ``7.5`` → ``"7p5"`` (no dots in file stems)."""
    return f"{float(day):g}".replace(".", "p")


def day_image_paths(out: Path, day: float) -> tuple[Path, Path]:
    """(density, labels) file paths of one day."""
    return out / f"density_day{day_tag(day)}.nii.gz", out / f"seg_day{day_tag(day)}.nii.gz"


def probability_path(out: Path, day: float) -> Path:
    """File path of one day's probability map (of lesion presence)."""
    return out / f"probability_day{day_tag(day)}.nii.gz"


def prepare_output_folder(out: Path, planned: Iterable[Path], *, inputs: Iterable[Path] = (),
                          overwrite: bool = False, create: bool = True) -> Path:
    """Check ``out`` is outside every input folder and that nothing ``planned`` exists (unless ``overwrite``).

    Returns the resolved folder, created unless ``create`` is False (create it once the
    computation has succeeded, so that a failed run leaves no empty result folder behind).
    """
    out = Path(out).resolve()
    for folder in inputs:
        folder = Path(folder).resolve()
        if out == folder or folder in out.parents:
            raise ValueError(f"output folder {out} lies inside the input folder {folder}; "
                             "inputs are read-only, choose another output folder")
    existing = [path for path in planned if Path(path).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists ({len(existing)} output file(s) would be replaced); "
                              "choose another output folder or allow overwriting (--overwrite)")
    if create:
        out.mkdir(parents=True, exist_ok=True)
    return out


def write_image(image: sitk.Image, path: Path) -> Path:
    sitk.WriteImage(image, str(path), useCompression=True)
    return path
