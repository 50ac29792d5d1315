"""Read and write study folders.

    >>> import tempfile, pathlib, numpy as np, SimpleITK as sitk
    >>> from HybridNeuroLib.study import Study, Timepoint, read_study, write_study
    >>> image = sitk.GetImageFromArray(np.ones((6, 7, 8), np.float32))
    >>> study = Study("s01", "glioma", (Timepoint("tp0", 0, {"t1n": image}),
    ...                                 Timepoint("tp1", 30, {"t1n": image})), predict_days=(90,))
    >>> folder = write_study(study, pathlib.Path(tempfile.mkdtemp()) / "s01")
    >>> sorted(p.name for p in folder.iterdir())
    ['study.json', 'tp0', 'tp1']
    >>> again = read_study(folder)
    >>> again.days_observed, again.predict_days, again.timepoints[1].images["t1n"].GetSize()
    ((0.0, 30.0), (90.0,), (8, 7, 6))

:func:`read_study` checks everything (see ``validate``) and raises one ``StudyError``
listing all problems. :func:`write_study` never writes into the folder a study was read
from, and refuses a non-empty folder unless ``overwrite=True``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import SimpleITK as sitk

from HybridNeuroLib.study.data import Study
from HybridNeuroLib.study.format import (FORMAT_ID, MANIFEST_NAME, SEG_KEY, TRANSFORMS_FOLDER, WRITE_SUFFIX,
                                         image_key)
from HybridNeuroLib.study.validate import Problem, StudyError, check_manifest, load_checked


def read_study(folder: str | Path) -> Study:
    """The study in ``folder`` (images in memory), with transforms from ``transforms/`` if present."""
    study = load_checked(folder)
    transforms_folder = Path(folder) / TRANSFORMS_FOLDER
    transforms, problems = {}, []
    for tp in study.timepoints:
        path = transforms_folder / f"{tp.id}.tfm"
        if path.is_file():
            transform, problem = _read_transform(path)
            if problem:
                problems.append(Problem(f"{TRANSFORMS_FOLDER}/{path.name}", problem))
            else:
                transforms[tp.id] = transform
    if problems:
        raise StudyError(folder, problems)
    return study.with_changes(transforms=transforms)


# parameters of the 3D linear transform types a registration may write (ITK text .tfm names)
TRANSFORM_PARAMETERS = {"Euler3DTransform": 6, "VersorRigid3DTransform": 6, "Similarity3DTransform": 7,
                        "QuaternionRigidTransform": 7, "ScaleVersor3DTransform": 9, "ScaleSkewVersor3DTransform": 15,
                        "AffineTransform": 12, "TranslationTransform": 3, "VersorTransform": 3,
                        "IdentityTransform": 0, "CompositeTransform": 0}


def _tfm_text_problem(data: bytes) -> str | None:
    """Why the bytes of a ``.tfm`` are not a 3D linear ITK transform, checked before ITK parses them
    (ITK's reader corrupts memory and aborts the process on an unparseable or short parameter list)."""
    try:
        lines = [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        return "not an ITK text transform file (not UTF-8 text)"
    if not lines or not lines[0].startswith("#Insight Transform File"):
        return "not an ITK text transform file (it must start with '#Insight Transform File V1.0')"
    name, kinds = None, []
    for line in lines:
        key, _, value = line.partition(":")
        if key == "Transform":
            name = value.strip()
            kind, _, suffix = name.partition("_")
            if kind not in TRANSFORM_PARAMETERS or not suffix.endswith("_3_3"):
                return (f"transform type {name!r} is not supported; a 3D rigid or affine transform is expected "
                        f"({', '.join(TRANSFORM_PARAMETERS)})")
            kinds.append(kind)
        elif key in ("Parameters", "FixedParameters"):
            try:
                values = [float(token) for token in value.split()]
            except ValueError:
                return f"{key} of {name!r} are not all numbers"
            if not all(math.isfinite(v) for v in values):
                return f"{key} of {name!r} hold NaN or infinite values"
            if key == "Parameters" and name and len(values) != TRANSFORM_PARAMETERS[name.partition("_")[0]]:
                return (f"{name!r} needs {TRANSFORM_PARAMETERS[name.partition('_')[0]]} parameters, the file has "
                        f"{len(values)}")
    return None if kinds else "the file names no transform ('Transform: ...' line)"


def _read_transform(path: Path) -> tuple[sitk.Transform | None, str | None]:
    """(transform, None) of an ITK ``.tfm`` file, or (None, why it is unusable)."""
    data = path.read_bytes()
    if not data:
        return None, "the transform file is empty (0 bytes); re-run the registration or delete it"
    problem = _tfm_text_problem(data)
    if problem:
        return None, f"{problem}; re-run the registration or delete the file"
    try:
        transform = sitk.ReadTransform(str(path))
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = (lines[-1] if lines else "ITK error")[:200]
        return None, f"unreadable transform file ({detail}); re-run the registration or delete it"
    if transform.GetDimension() != 3:
        return None, f"a {transform.GetDimension()}D transform; a 3D transform is needed"
    return transform, None


def _number(value: float) -> int | float:
    """Days as JSON: integral values without a trailing '.0'."""
    return int(value) if float(value).is_integer() else float(value)


def manifest_of(study: Study, tissue_folder: str = "tissue") -> dict:
    """The ``study.json`` content describing ``study``."""
    manifest = {"format": FORMAT_ID, "subject": study.subject, "disease": study.disease,
                "timepoints": [{"id": tp.id, "day": _number(tp.day)} for tp in study.timepoints],
                "predict_days": [_number(d) for d in study.predict_days]}
    if study.tissue is not None:
        manifest["tissue"] = tissue_folder
    return manifest


def _write_image(image: sitk.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), useCompression=True)


def write_study(study: Study, folder: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``study`` as a ``hybridneuro-study/1`` folder and return its path."""
    folder = Path(folder)
    if study.source_folder is not None and folder.resolve() == Path(study.source_folder).resolve():
        raise ValueError(f"refusing to write study {study.subject!r} into {folder}, the folder it was read "
                         "from: input studies are read-only; choose another output folder")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())) and not overwrite:
        raise FileExistsError(f"output folder {folder} exists and is not empty; choose another folder "
                              "or pass overwrite=True (--overwrite)")
    manifest = manifest_of(study)
    problems = check_manifest(manifest)
    problems += [Problem(f"{tp.id}/", "timepoint has no image") for tp in study.timepoints if not tp.images]
    if problems:
        raise StudyError(folder, problems)
    folder.mkdir(parents=True, exist_ok=True)
    for tp in study.timepoints:
        for path in (folder / tp.id).glob("*") if (folder / tp.id).is_dir() else ():
            if image_key(path.name) is not None:  # stale images of an overwritten study
                path.unlink()
        for key, image in tp.images.items():
            _write_image(image, folder / tp.id / f"{key}{WRITE_SUFFIX}")
        if tp.seg is not None:
            _write_image(tp.seg, folder / tp.id / f"{SEG_KEY}{WRITE_SUFFIX}")
    if study.tissue is not None:
        for key, image in study.tissue.items():
            _write_image(image, folder / manifest["tissue"] / f"{key}{WRITE_SUFFIX}")
    for tp_id, transform in study.transforms.items():
        (folder / TRANSFORMS_FOLDER).mkdir(exist_ok=True)
        sitk.WriteTransform(transform, str(folder / TRANSFORMS_FOLDER / f"{tp_id}.tfm"))
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return folder
