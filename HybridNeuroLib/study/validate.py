"""Read a study folder while checking it, and report every problem at once.

    >>> import json, tempfile, pathlib
    >>> from HybridNeuroLib.study.validate import StudyError, load_checked
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "study.json").write_text(json.dumps(
    ...     {"format": "hybridneuro-study/1", "subject": 7, "disease": "glioma",
    ...      "timepoints": [{"id": "tp0", "day": 30}, {"id": "tp1", "day": "60"}]}))
    >>> try:
    ...     load_checked(folder)
    ... except StudyError as error:
    ...     print(*error.problems, sep="\\n")
    study.json subject: must be a non-empty text string, got int 7 (the subject names output files and Slicer nodes)
    study.json timepoints[1].day: must be a number (days), got str '60'
    tp0/: timepoint folder is missing
    tp1/: timepoint folder is missing

What is checked: ``study.json`` (JSON syntax, format id, known keys, value types,
unique safe timepoint ids, strictly increasing days); per timepoint: the folder exists,
every image file has a known modality key (one file per key), at least one image,
every file is readable, complete (truncated NIfTI is detected; ITK would zero-fill
it), 3D, finite, and all images of a timepoint (and its ``seg``) share one grid;
``seg`` holds only BraTS labels for glioma; tissue maps exist, share a grid and lie in
[0, 1]. Each problem names the file (relative to the study folder) and the field.
Nothing is ever written into the folder.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from HybridNeuroLib.diseases import Disease, disease, disease_names
from HybridNeuroLib.study.data import Study, Timepoint
from HybridNeuroLib.study.format import (FORMAT_ID, IMAGE_SUFFIXES, MANIFEST_KEYS, MANIFEST_NAME,
                                         REQUIRED_MANIFEST_KEYS, SEG_KEY, TIMEPOINT_KEYS, TISSUE_KEYS,
                                         TRANSFORMS_FOLDER, image_key)
from HybridNeuroLib.study.images import ImageReadError, probability_problem, read_image

GRID_TOLERANCE_MM = 1e-3
MAX_NAME_BYTES = 100                       # subject and timepoint ids become file, folder and node names
UNSAFE_NAME_CHARACTERS = ('<', '>', ':', '"', '|', '?', '*')  # not allowed in Windows file names


@dataclass(frozen=True)
class Problem:
    """One problem: ``where`` is a path relative to the study folder, ``field`` a JSON field or None."""

    where: str
    message: str
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.where}{' ' + self.field if self.field else ''}: {self.message}"


class StudyError(ValueError):
    """A study folder (or study) with problems; ``problems`` lists all of them."""

    def __init__(self, folder: Path | str, problems: list[Problem]):
        self.folder, self.problems = Path(folder), list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"study folder {self.folder}: {len(self.problems)} problem(s):\n{lines}")


def _type_name(value) -> str:
    return f"{type(value).__name__} {value!r}"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def name_problem(value) -> str | None:
    """Why ``value`` cannot be a file/folder/node name (subject, timepoint id), or None.

    >>> name_problem("BraTS-GLI-00012"), name_problem("../x")
    (None, "must not contain '/'")
    """
    if not isinstance(value, str) or not value:
        return f"must be a non-empty text string, got {_type_name(value)}"
    for character in ("/", "\\", *UNSAFE_NAME_CHARACTERS):
        if character in value:
            return f"must not contain {character!r}"
    if any(unicodedata.category(c).startswith("C") for c in value):
        return f"must not contain control or invisible characters, got {value!r}"
    if value.startswith(".") or value != value.strip():
        return f"must not start with '.' or start/end with white space, got {value!r}"
    if len(value.encode("utf-8")) > MAX_NAME_BYTES:
        return f"must be at most {MAX_NAME_BYTES} bytes as UTF-8, got {len(value.encode('utf-8'))}"
    return None


def disease_of(manifest: dict) -> Disease | None:
    """The registered disease a manifest names, or None when it names none."""
    name = manifest.get("disease")
    return disease(name) if isinstance(name, str) and name in disease_names() else None


# -- study.json ------------------------------------------------------------------------
def check_manifest(manifest) -> list[Problem]:
    """Problems of a parsed ``study.json`` (types, known keys, ids, increasing days)."""
    where = MANIFEST_NAME
    if not isinstance(manifest, dict):
        return [Problem(where, f"must hold a JSON object {{...}}, got {type(manifest).__name__}")]
    problems = [Problem(where, f"unknown key (known: {', '.join(MANIFEST_KEYS)})", key)
                for key in manifest if key not in MANIFEST_KEYS]
    problems += [Problem(where, "required key is missing", key) for key in REQUIRED_MANIFEST_KEYS
                 if key not in manifest]
    if "format" in manifest and manifest["format"] != FORMAT_ID:
        problems.append(Problem(where, f"must be {FORMAT_ID!r}, got {manifest['format']!r}", "format"))
    if "subject" in manifest and name_problem(manifest["subject"]):
        problems.append(Problem(where, f"{name_problem(manifest['subject'])} (the subject names output files "
                                       "and Slicer nodes)", "subject"))
    disease = manifest.get("disease")
    if "disease" in manifest and disease not in disease_names():
        problems.append(Problem(where, f"must be one of {list(disease_names())}, got {_type_name(disease)}",
                                "disease"))
    elif "time_unit" in manifest and manifest["time_unit"] != disease_of(manifest).time_unit:
        problems.append(Problem(where, f"{disease!r} studies give times in {disease_of(manifest).time_unit!r}, got "
                                       f"{_type_name(manifest['time_unit'])}; convert the times, or leave the key out",
                                "time_unit"))
    if "tissue" in manifest:
        problem = _tissue_problem(manifest["tissue"], manifest.get("timepoints"))
        if problem:
            problems.append(Problem(where, problem, "tissue"))
    if "predict_days" in manifest:
        days = manifest["predict_days"]
        if not isinstance(days, list):
            problems.append(Problem(where, f"must be a list of numbers (days), got {_type_name(days)}",
                                    "predict_days"))
        else:
            problems += [Problem(where, f"must be a number (days), got {_type_name(d)}", f"predict_days[{i}]")
                         for i, d in enumerate(days) if not _is_number(d)]
            numbers = [d for d in days if _is_number(d)]
            if any(b <= a for a, b in zip(numbers, numbers[1:])):
                problems.append(Problem(where, f"days must be strictly increasing, got {numbers}", "predict_days"))
    if "timepoints" in manifest:
        problems += _check_timepoint_entries(manifest["timepoints"], manifest.get("tissue"))
    return problems


def _tissue_problem(tissue, timepoints) -> str | None:
    if (not isinstance(tissue, str) or not tissue or Path(tissue).is_absolute() or ".." in Path(tissue).parts
            or "\\" in tissue or any(unicodedata.category(c).startswith("C") for c in tissue)):
        return f"must be a folder path relative to the study folder (no '..', no '\\\\'), got {_type_name(tissue)}"
    parts = Path(tissue).parts
    if not parts:
        return f"{tissue!r} is the study folder itself; tissue maps need their own folder (e.g. \"tissue\")"
    entries = timepoints if isinstance(timepoints, list) else []
    ids = {entry.get("id") for entry in entries if isinstance(entry, dict)}
    if parts[0] in ids or parts[0] == TRANSFORMS_FOLDER:
        owner = f"timepoint {parts[0]!r}" if parts[0] in ids else "the registration transforms"
        return (f"{tissue!r} is (or lies in) the folder of {owner}; tissue maps (gm, wm, csf) need a folder of "
                "their own, e.g. \"tissue\": move them there and name that folder in study.json")
    return None


def _check_timepoint_entries(timepoints, tissue) -> list[Problem]:
    where = MANIFEST_NAME
    if not isinstance(timepoints, list) or not timepoints:
        return [Problem(where, f"must be a non-empty list of {{'id': ..., 'day': ...}} objects, "
                               f"got {_type_name(timepoints)}", "timepoints")]
    problems, ids, days = [], [], []
    for n, entry in enumerate(timepoints):
        name = f"timepoints[{n}]"
        if not isinstance(entry, dict):
            problems.append(Problem(where, f"must be an object {{'id': ..., 'day': ...}}, got {_type_name(entry)}",
                                    name))
            continue
        problems += [Problem(where, f"unknown key (known: {', '.join(TIMEPOINT_KEYS)})", f"{name}.{key}")
                     for key in entry if key not in TIMEPOINT_KEYS]
        problems += [Problem(where, "required key is missing", f"{name}.{key}") for key in TIMEPOINT_KEYS
                     if key not in entry]
        if "id" in entry:
            tp_id = entry["id"]
            if name_problem(tp_id) or tp_id == TRANSFORMS_FOLDER:
                reason = name_problem(tp_id) or f"{TRANSFORMS_FOLDER!r} is reserved for registration transforms"
                problems.append(Problem(where, f"must be a plain folder name: {reason}", f"{name}.id"))
            elif tp_id in ids:
                problems.append(Problem(where, f"duplicate timepoint id {tp_id!r}", f"{name}.id"))
            else:
                ids.append(tp_id)
        if "day" in entry:
            if _is_number(entry["day"]):
                days.append(entry["day"])
            else:
                problems.append(Problem(where, f"must be a number (days), got {_type_name(entry['day'])}",
                                        f"{name}.day"))
    if any(b <= a for a, b in zip(days, days[1:])):
        problems.append(Problem(where, f"timepoint days must be strictly increasing, got {days}", "timepoints"))
    return problems


def read_manifest(folder: Path) -> tuple[dict | None, list[Problem]]:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return None, [Problem(MANIFEST_NAME, f"missing: a study folder needs {MANIFEST_NAME} "
                                             f"(format {FORMAT_ID!r}); is {folder} a study folder?")]
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:  # permission denied, I/O error
        return None, [Problem(MANIFEST_NAME, f"cannot be read ({error.strerror or error})")]
    except UnicodeDecodeError as error:
        return None, [Problem(MANIFEST_NAME, f"not UTF-8 text ({error.reason})")]
    except json.JSONDecodeError as error:
        return None, [Problem(MANIFEST_NAME, f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}")]
    problems = check_manifest(manifest)
    return (manifest if isinstance(manifest, dict) else None), problems


# -- images ----------------------------------------------------------------------------
def read_image_checked(path: Path, where: str, problems: list[Problem]) -> sitk.Image | None:
    """The image at ``path`` (read by :func:`~HybridNeuroLib.study.images.read_image`), or None after
    appending why it is unusable to ``problems``."""
    try:
        return read_image(path)
    except (ImageReadError, FileNotFoundError) as error:
        problems.append(Problem(where, error.reason if isinstance(error, ImageReadError) else str(error)))
        return None


def same_grid(a: sitk.Image, b: sitk.Image, tolerance_mm: float = GRID_TOLERANCE_MM) -> bool:
    """True when two images have the same size, spacing, origin and direction."""
    return (a.GetSize() == b.GetSize()
            and np.allclose(a.GetSpacing(), b.GetSpacing(), rtol=0, atol=tolerance_mm)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), rtol=0, atol=tolerance_mm)
            and np.allclose(a.GetDirection(), b.GetDirection(), rtol=0, atol=1e-5))


def _check_one_grid(images: dict[str, sitk.Image], what: str, problems: list[Problem]) -> None:
    items = list(images.items())
    if not items:
        return
    first_where, first = items[0]
    for where, image in items[1:]:
        if image.GetSize() != first.GetSize():
            problems.append(Problem(where, f"size {image.GetSize()} differs from {first_where}'s {first.GetSize()}; "
                                           f"all {what} must share one grid (resample them first)"))
        elif not same_grid(image, first):
            problems.append(Problem(where, f"spacing/origin/direction differ from {first_where}'s; "
                                           f"all {what} must share one grid (resample them first)"))


def _find_images(folder: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        key = image_key(path.name) if path.is_file() else None
        if key is not None:
            found.setdefault(key, []).append(path)
    return found


def _read_timepoint(folder: Path, tp_id: str, day: float, keys: tuple[str, ...],
                    problems: list[Problem], labels: Disease | None) -> Timepoint | None:
    tp_folder = folder / tp_id
    if not tp_folder.is_dir():
        problems.append(Problem(f"{tp_id}/", "timepoint folder is missing"))
        return None
    images, seg, grid = {}, None, {}
    for key, paths in _find_images(tp_folder).items():
        where = f"{tp_id}/{paths[0].name}"
        if key not in (*keys, SEG_KEY):
            problems.append(Problem(where, f"unknown image key {key!r} (known: {', '.join(keys)}, {SEG_KEY})"))
            continue
        if len(paths) > 1:
            problems.append(Problem(f"{tp_id}/", f"several files for key {key!r}: "
                                                 f"{', '.join(p.name for p in paths)}; keep one"))
            continue
        image = read_image_checked(paths[0], where, problems)
        if image is None:
            continue
        grid[where] = image
        if key == SEG_KEY:
            seg = image
            if labels is not None:
                _check_labels(image, where, problems, labels)
        else:
            images[key] = image
    if not images and not any(p.where.startswith(f"{tp_id}/") for p in problems):
        problems.append(Problem(f"{tp_id}/", "no image in the timepoint folder (expected one of "
                                             f"{', '.join(k + '.nii.gz' for k in keys)})"))
    _check_one_grid(grid, f"images of timepoint {tp_id!r}", problems)
    ordered = {key: images[key] for key in keys if key in images}
    return Timepoint(tp_id, float(day), ordered, seg) if ordered else None


def _check_labels(image: sitk.Image, where: str, problems: list[Problem], labels: Disease) -> None:
    values = sitk.GetArrayViewFromImage(image)
    known = ", ".join(["0 background", *(f"{label.value} {label.name}" for label in labels.labels)])
    if not np.array_equal(values, np.round(values)):
        problems.append(Problem(where, f"lesion labels must be integers ({labels.name} labels: {known})"))
        return
    unknown = sorted(set(np.unique(values).astype(int).tolist()) - labels.label_values)
    if unknown:
        problems.append(Problem(where, f"unknown label values {unknown[:8]} ({labels.name} labels: {known})"))


def _read_tissue(folder: Path, relative: str, problems: list[Problem]) -> dict[str, sitk.Image] | None:
    tissue_folder = folder / relative
    if not tissue_folder.is_dir():
        problems.append(Problem(f"{relative}/", "tissue folder named in study.json is missing"))
        return None
    found = _find_images(tissue_folder)
    maps, grid = {}, {}
    for key in TISSUE_KEYS:
        if key not in found:
            problems.append(Problem(f"{relative}/", f"no {key!r} tissue map (expected {key}.nii.gz)"))
            continue
        if len(found[key]) > 1:
            problems.append(Problem(f"{relative}/", f"several files for tissue map {key!r}: "
                                                    f"{', '.join(p.name for p in found[key])}; keep one"))
            continue
        where = f"{relative}/{found[key][0].name}"
        image = read_image_checked(found[key][0], where, problems)
        if image is None:
            continue
        problem = probability_problem(sitk.GetArrayViewFromImage(image))
        if problem:
            problems.append(Problem(where, problem))
            continue
        maps[key] = sitk.Cast(image, sitk.sitkFloat32)
        grid[where] = image
    _check_one_grid(grid, "tissue maps", problems)
    return maps if len(maps) == len(TISSUE_KEYS) else None


# -- the whole folder ------------------------------------------------------------------
def load_checked(folder: str | Path) -> Study:
    """Read a study folder; raise one :class:`StudyError` listing every problem found."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StudyError(folder, [Problem(str(folder), "study folder does not exist")])
    manifest, problems = read_manifest(folder)
    if manifest is None:
        raise StudyError(folder, problems)
    disease = manifest.get("disease")
    declared = disease_of(manifest)  # None for an unknown disease (already a problem): read images by any key
    keys = declared.image_keys if declared else tuple(dict.fromkeys(
        key for name in disease_names() for key in disease_of({"disease": name}).image_keys))
    timepoints = []
    entries = manifest.get("timepoints") if isinstance(manifest.get("timepoints"), list) else []
    for entry in entries:
        if isinstance(entry, dict) and name_problem(entry.get("id")) is None and entry["id"] != TRANSFORMS_FOLDER:
            day = entry.get("day") if _is_number(entry.get("day")) else math.nan
            timepoints.append(_read_timepoint(folder, entry["id"], day, keys, problems, labels=declared))
    tissue = None
    if isinstance(manifest.get("tissue"), str) and not any(p.field == "tissue" for p in problems):
        tissue = _read_tissue(folder, manifest["tissue"], problems)
    if problems:
        raise StudyError(folder, problems)
    return Study(subject=manifest["subject"], disease=disease, timepoints=tuple(timepoints),
                 predict_days=tuple(float(d) for d in manifest.get("predict_days", [])),
                 tissue=tissue, source_folder=folder)


def validate_study(folder: str | Path) -> None:
    """Raise :class:`StudyError` listing every problem of the folder; return None if it is valid."""
    load_checked(folder)


__all__ = ["Problem", "StudyError", "check_manifest", "load_checked", "read_image_checked", "same_grid",
           "validate_study", "IMAGE_SUFFIXES"]
