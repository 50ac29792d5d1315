"""Output folders: staged writing, the manifest of what this program wrote, and the per-day file names.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from HybridNeuroLib.outputs import staged_output, written_files
    >>> out = Path(tempfile.mkdtemp()) / "forecast"
    >>> with staged_output(out, command="example") as staging:   # compute, then write into staging
    ...     _ = (staging / "forecast.json").write_text("{}")
    >>> written_files(out)
    ['forecast.json']
    >>> [p.name for p in day_image_paths(Path("out"), 7.5)]
    ['density_day7p5.nii.gz', 'seg_day7p5.nii.gz']

The rules every command follows (the README's "Your data is safe" states them to users):

- **Inputs are read-only.** An output folder may not be an input folder, lie inside one, or
  contain one (a study, fit folder, tissue folder, model or bundle): :func:`check_output_folder`.
- **Staging.** Everything is written into a hidden folder beside ``out``
  (``.<name>.partial-…``), which is renamed to ``out`` only when the command succeeded; on an
  error, Ctrl-C or SIGTERM it is deleted. An interrupted command leaves nothing, or a complete
  result. The rename runs with SIGINT/SIGTERM held back, so it is never cut in half.
- **Overwrite replaces only what this program wrote.** Each output folder holds a manifest
  (:data:`MANIFEST_NAME`) listing every file written, with its size and SHA-256. ``--overwrite``
  replaces a folder only when every file in it is listed and unchanged; a file the user added or
  edited there makes the command refuse, naming the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

import SimpleITK as sitk

MANIFEST_NAME = ".hybridneuro-outputs.json"
MANIFEST_FORMAT = "hybridneuro-outputs/1"
STAGING_MARK = ".partial-"


# -- per-day file names ----------------------------------------------------------------------
def day_tag(day: float) -> str:
    """``120`` → ``"120"``, ``7.5`` → ``"7p5"`` (no dots in file stems)."""
    return f"{float(day):g}".replace(".", "p")


def day_image_paths(out: Path, day: float) -> tuple[Path, Path]:
    """(density, labels) file paths of one day."""
    return out / f"density_day{day_tag(day)}.nii.gz", out / f"seg_day{day_tag(day)}.nii.gz"


def probability_path(out: Path, day: float) -> Path:
    """File path of one day's probability map (of lesion presence)."""
    return out / f"probability_day{day_tag(day)}.nii.gz"


def write_image(image: sitk.Image, path: Path) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), useCompression=True)
    return Path(path)


# -- the manifest ----------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files_below(folder: Path) -> list[str]:
    """Every non-folder entry below ``folder`` (links included, never followed), as sorted POSIX paths."""
    found = []
    for root, folders, files in os.walk(folder, followlinks=False):
        root_path = Path(root)
        found += [(root_path / name).relative_to(folder).as_posix() for name in files]
        found += [(root_path / name).relative_to(folder).as_posix() for name in folders
                  if (root_path / name).is_symlink()]
    return sorted(found)


def _write_manifest(folder: Path, command: str) -> None:
    from HybridNeuroLib import __version__

    files = {name: {"bytes": (folder / name).stat().st_size, "sha256": _sha256(folder / name)}
             for name in _files_below(folder) if name != MANIFEST_NAME}
    manifest = {"format": MANIFEST_FORMAT, "command": command,
                "software": {"name": "hybridneuro", "version": __version__},
                "written": datetime.now(timezone.utc).isoformat(timespec="seconds"), "files": files}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def written_files(folder: Path) -> list[str]:
    """The files the manifest of ``folder`` says this program wrote (relative POSIX paths)."""
    return sorted(_read_manifest(Path(folder))["files"])


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise FileExistsError(f"output folder {folder} is not empty and holds no {MANIFEST_NAME} (the list of files "
                              "HybridNeuro wrote there), so it may hold your own files; overwriting replaces only "
                              "HybridNeuro's own output folders: choose a new output folder")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise FileExistsError(f"{path} is not a valid HybridNeuro output manifest, so nothing in {folder} is "
                              "replaced; choose a new output folder") from None
    return manifest


def _check_replaceable(folder: Path) -> None:
    """Raise unless every file in ``folder`` is one this program wrote there, unchanged since."""
    listed = _read_manifest(folder)["files"]
    present = [name for name in _files_below(folder) if name != MANIFEST_NAME]
    foreign = [name for name in present if name not in listed]
    if foreign:
        raise FileExistsError(f"output folder {folder} holds {len(foreign)} file(s) HybridNeuro did not write "
                              f"(e.g. {foreign[0]}); overwriting never deletes those: move them out or choose a "
                              "new output folder")
    for name in present:
        entry, path = listed[name], folder / name
        if path.is_symlink() or path.stat().st_size != entry.get("bytes") or _sha256(path) != entry.get("sha256"):
            raise FileExistsError(f"{path} was changed after HybridNeuro wrote it; overwriting never replaces "
                                  "edited files: move it out or choose a new output folder")


# -- checks ----------------------------------------------------------------------------------
def _relation(out: Path, folder: Path) -> str | None:
    if out == folder:
        return "is"
    if folder in out.parents:
        return "lies inside"
    if out in folder.parents:
        return "contains"
    return None


def check_apart_from_inputs(out: str | Path, inputs: Iterable[str | Path | None]) -> Path:
    """``out`` resolved; ``ValueError`` when it is, lies inside, or contains one of ``inputs`` (None skipped)."""
    out = Path(out).expanduser().resolve()
    for folder in inputs:
        if folder is None:
            continue
        folder = Path(folder).expanduser().resolve()
        relation = _relation(out, folder)
        if relation:
            raise ValueError(f"output folder {out} {relation} the input folder {folder}; inputs are read-only and "
                             "outputs never share a folder with them: choose an output folder outside it")
    return out


def check_output_folder(out: str | Path, *, inputs: Iterable[str | Path | None] = (), overwrite: bool = False) -> Path:
    """``out`` resolved, after refusing anything that could lose or corrupt data (writes nothing).

    Refused: ``out`` is, lies inside, or contains an input; ``out`` or one of its parents is a
    file; ``out`` is a non-empty folder, unless ``overwrite`` and it is an earlier output of this
    program, unchanged (see the module docstring).
    """
    out = check_apart_from_inputs(out, inputs)
    blocking = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise FileExistsError(f"output folder {out}: {blocking} is a file, not a folder; choose another output folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"output folder {out} exists and is not empty; choose a new output folder, or "
                                  "pass --overwrite to replace an earlier HybridNeuro output there")
        _check_replaceable(out)
    return out


# -- staging ---------------------------------------------------------------------------------
@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back for a few file-system calls (main thread, POSIX), delivering them after."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _publish(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``, replacing an earlier output (re-checked: it may have changed meanwhile)."""
    if out.is_dir() and any(out.iterdir()):
        _check_replaceable(out)
    with _signals_held():
        if out.exists():
            old = out.with_name(f".{out.name}.old-{staging.name.rsplit('-', 1)[-1]}")
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(out)


@contextlib.contextmanager
def staged_output(out: str | Path, *, inputs: Iterable[str | Path | None] = (), overwrite: bool = False,
                  command: str = "hybridneuro") -> Iterator[Path]:
    """A new hidden folder beside ``out`` to write into; it becomes ``out`` when the block succeeds.

    Checks ``out`` first (:func:`check_output_folder`), so call it before any long computation.
    On any exception (including ``KeyboardInterrupt``) the staging folder, and any parent
    folders this call created, are removed and ``out`` is left as it was.
    """
    out = check_output_folder(out, inputs=inputs, overwrite=overwrite)
    created = [p for p in reversed(out.parents) if not p.exists()]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}{STAGING_MARK}", dir=out.parent))
    except OSError as error:
        _remove_empty(created)
        raise FileExistsError(f"output folder {out}: cannot write in {out.parent} ({error.strerror or error}); "
                              "choose a folder you can write to") from None
    try:
        yield staging
        _write_manifest(staging, command)
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        raise


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()
