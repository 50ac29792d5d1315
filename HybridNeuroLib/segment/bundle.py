"""MONAI Model Zoo bundles from a local folder, e.g. the Zoo's ``brats_mri_segmentation``.

    >>> from HybridNeuroLib.segment.bundle import load_bundle
    >>> load_bundle("/no/such/bundle")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: bundle folder /no/such/bundle is missing configs/inference.json, configs/metadata.json, models/model.pt; ...

Layout: ``configs/inference.json`` (its ``network_def`` builds the network; ``inferer#roi_size``
gives the window), ``configs/metadata.json`` (input ``channel_def`` names → our contrast keys;
output channels must be tumor core, whole tumor, enhancing tumor, the Zoo BraTS convention),
``models/model.pt`` (weights, read with ``torch.load(weights_only=True)``).

**Security**: a bundle config can name any Python callable, so loading one runs code. Bundles
are only read from a folder the user chose explicitly; nothing is fetched or loaded implicitly.
Offline, download the bundle elsewhere (``python -m monai.bundle download
brats_mri_segmentation --bundle_dir DIR``) and point the engine at ``DIR/brats_mri_segmentation``.
"""

from __future__ import annotations

import json
from pathlib import Path

from HybridNeuroLib.segment.model import SegmentationModel, load_weights

REQUIRED_FILES = ("configs/inference.json", "configs/metadata.json", "models/model.pt")
SECURITY_NOTE = ("loading a MONAI bundle runs the code its configs name: only use bundle folders you trust "
                 "(they are read only from the folder you chose)")
CONTRAST_SYNONYMS = {
    "t1c": {"t1c", "t1gd", "t1ce", "t1-gd", "t1 gd", "t1 contrast", "t1 post-contrast", "t1wgd"},
    "t1n": {"t1", "t1n", "t1w", "t1 native", "t1-native"},
    "t2w": {"t2", "t2w"},
    "t2f": {"flair", "t2f", "t2-flair", "t2 flair"},
}
ZOO_BRATS_CONTRASTS = ("t1c", "t1n", "t2w", "t2f")  # brats_mri_segmentation: T1c, T1, T2, FLAIR
OUTPUT_NAMES = ("tumor core", "whole tumor", "enhancing tumor")
DEFAULT_ROI = (96, 96, 96)


def contrast_key(name: str) -> str:
    """Our key (t1n, t1c, t2w, t2f) of a bundle's channel name, e.g. ``"FLAIR"`` → ``"t2f"``."""
    cleaned = str(name).strip().lower().replace("_", " ")
    for key, synonyms in CONTRAST_SYNONYMS.items():
        if cleaned in synonyms:
            return key
    raise ValueError(f"bundle input channel {name!r} is not a known MRI contrast "
                     f"(known: {', '.join(sorted(set().union(*CONTRAST_SYNONYMS.values())))})")


def _channel_names(metadata: dict, direction: str, key: str) -> list[str] | None:
    entry = metadata
    for name in ("network_data_format", direction, key, "channel_def"):
        entry = entry.get(name) if isinstance(entry, dict) else None
    if not isinstance(entry, dict) or not entry:
        return None
    if not all(str(k).isdigit() for k in entry):
        raise ValueError(f"network_data_format.{direction}.{key}.channel_def keys must be channel numbers "
                         f"\"0\", \"1\", …, got {list(entry)}")
    return [str(entry[k]) for k in sorted(entry, key=lambda k: int(k))]


def bundle_contrasts(metadata: dict, in_channels: int | None) -> tuple[str, ...]:
    names = _channel_names(metadata, "inputs", "image")
    contrasts = tuple(contrast_key(n) for n in names) if names else ZOO_BRATS_CONTRASTS
    if in_channels is not None and len(contrasts) != in_channels:
        raise ValueError(f"bundle metadata lists {len(contrasts)} input channels ({', '.join(contrasts)}) but the "
                         f"network takes {in_channels}")
    return contrasts


def check_outputs(metadata: dict) -> None:
    names = _channel_names(metadata, "outputs", "pred")
    if names is not None and [n.strip().lower() for n in names] != list(OUTPUT_NAMES):
        raise ValueError(f"bundle outputs {names}; only the Zoo BraTS convention {list(OUTPUT_NAMES)} is supported")


def load_bundle(folder: str | Path, *, spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
                ) -> SegmentationModel:
    """The model of a local bundle folder (chosen by the user: see the security note). Offline, no downloads."""
    from monai.bundle import ConfigParser

    folder = Path(folder)
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"bundle folder {folder} is missing {', '.join(missing)}; a MONAI Model Zoo bundle "
                                "has configs/inference.json, configs/metadata.json and models/model.pt (download "
                                "one with `python -m monai.bundle download NAME --bundle_dir DIR` where a network "
                                "is available and copy DIR/NAME here)")
    metadata, config = (_json_object(folder, name) for name in ("configs/metadata.json", "configs/inference.json"))
    if config.get("network_def") is None:
        raise ValueError(f"bundle {folder}: configs/inference.json has no network_def")
    parser = ConfigParser()
    parser.read_config(str(folder / "configs/inference.json"))
    network = _build_network(parser, folder)
    try:
        in_channels = parser.get("network_def#in_channels") if isinstance(config["network_def"], dict) else None
        contrasts = bundle_contrasts(metadata, in_channels if isinstance(in_channels, int) else None)
        check_outputs(metadata)
    except ValueError as error:
        raise ValueError(f"bundle {folder}: configs/metadata.json: {error}") from None
    roi = config.get("inferer", {}).get("roi_size") if isinstance(config.get("inferer"), dict) else None
    roi = roi or DEFAULT_ROI
    if not (isinstance(roi, list | tuple) and len(roi) == 3 and all(isinstance(r, int) and r > 0 for r in roi)):
        raise ValueError(f"bundle {folder}: configs/inference.json inferer.roi_size must be three positive "
                         f"integers, got {roi!r}")
    load_weights(network, folder / "models/model.pt")
    return SegmentationModel(network.eval(), contrasts, tuple(float(s) for s in spacing_mm),
                             tuple(int(r) for r in roi), name=folder.name,
                             info={"bundle": str(folder), "metadata": metadata})


def _json_object(folder: Path, name: str) -> dict:
    try:
        content = json.loads((folder / name).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"bundle {folder}: {name} is not valid JSON ({error})") from None
    if not isinstance(content, dict):
        raise ValueError(f"bundle {folder}: {name} must hold a JSON object {{...}}, got {type(content).__name__}")
    return content


def _build_network(parser, folder: Path):
    """The bundle's ``network_def`` instantiated, or a ValueError saying why it cannot be."""
    import torch

    try:
        network = parser.get_parsed_content("network_def", instantiate=True)
    except Exception as error:  # MONAI: ModuleNotFoundError (unknown class), RuntimeError (bad arguments) …
        causes = [error]
        while causes[-1].__cause__ is not None and len(causes) < 5:
            causes.append(causes[-1].__cause__)
        detail = "; ".join(f"{type(e).__name__}: {(str(e).strip().splitlines() or ['?'])[0][:200]}"
                           for e in causes)
        raise ValueError(f"bundle {folder}: configs/inference.json network_def cannot be built ({detail}); "
                         "check its _target_ class name and arguments against the MONAI version installed") from None
    if not isinstance(network, torch.nn.Module):
        raise ValueError(f"bundle {folder}: configs/inference.json network_def builds a value of type "
                         f"{type(network).__name__}, not a torch network")
    return network


def download_bundle(name: str, bundle_dir: str | Path) -> Path:
    """Download a Model Zoo bundle by name into ``bundle_dir`` (needs network) and return its folder.

    Only called on explicit request (never at import or inference time). Offline, the error says
    how to place the bundle by hand; load it afterwards with :func:`load_bundle` (see the security note).
    """
    from monai.bundle import download

    bundle_dir = Path(bundle_dir)
    try:
        download(name=name, bundle_dir=str(bundle_dir))
    except Exception as error:  # network errors come in many types
        raise RuntimeError(f"could not download bundle {name!r} ({type(error).__name__}: {error}); without network, "
                           f"download it elsewhere with `python -m monai.bundle download {name} --bundle_dir DIR` "
                           f"and copy DIR/{name} to {bundle_dir / name}") from None
    return bundle_dir / name
