"""Segmentation models: a network plus what it needs (contrasts, spacing, window) and outputs.

    >>> from HybridNeuroLib.segment.model import build_network, SegmentationModel
    >>> spec = {"architecture": "UNet", "network": {"spatial_dims": 3, "in_channels": 2, "out_channels": 3,
    ...         "channels": [4, 8], "strides": [2], "num_res_units": 0}}
    >>> model = SegmentationModel(build_network(spec), contrasts=("t1c", "t2f"), spacing_mm=(2.0, 2.0, 2.0),
    ...                           roi_size=(16, 16, 16))
    >>> model.check_contrasts({"t1c", "t2f", "t1n"})        # extra contrasts are ignored
    >>> model.check_contrasts({"t1c"})
    Traceback (most recent call last):
    ...
    ValueError: the segmentation model needs contrast(s) t2f, missing from the timepoint (it has t1c)

Every model outputs three logit channels in the MONAI Model Zoo BraTS convention (tumor core,
whole tumor, enhancing tumor; see :mod:`HybridNeuroLib.segment.channels`). Our own trained
models live in a *model folder*: ``model.json`` (architecture, contrasts, spacing, window,
validation) and ``model.pt`` (a ``state_dict``, loaded with ``torch.load(weights_only=True)``,
so a weights file cannot run code). Only the architectures in ``ARCHITECTURES`` are built.
"""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch

MODEL_FORMAT = "hybridneuro-segmodel/1"
DEFAULT_MODEL_FOLDER = Path(__file__).resolve().parent / "models" / "synth-unet"


def _architectures() -> dict:
    from monai.networks.nets import SegResNet, UNet
    return {"UNet": UNet, "SegResNet": SegResNet}


ARCHITECTURES = ("UNet", "SegResNet")


@dataclass
class SegmentationModel:
    """A network whose input channels are ``contrasts`` (in order) at ``spacing_mm``, windowed by ``roi_size``."""

    network: torch.nn.Module
    contrasts: tuple[str, ...]
    spacing_mm: tuple[float, float, float]
    roi_size: tuple[int, int, int]
    name: str = "model"
    info: dict = field(default_factory=dict)  # model.json / metadata, for reports

    def check_contrasts(self, available: set[str] | list[str]) -> None:
        """Raise ``ValueError`` naming the required contrasts missing from ``available``."""
        missing = [c for c in self.contrasts if c not in set(available)]
        if missing:
            raise ValueError(f"the segmentation model needs contrast(s) {', '.join(missing)}, missing from the "
                             f"timepoint (it has {', '.join(sorted(available)) or 'none'})")


def build_network(spec: dict) -> torch.nn.Module:
    """The network of a ``model.json``-style spec ``{"architecture": ..., "network": {...}}``."""
    name = spec.get("architecture")
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown network architecture {name!r}; supported: {', '.join(ARCHITECTURES)}")
    parameters = spec.get("network", {})
    if not isinstance(parameters, dict):
        raise ValueError(f"{name} parameters must be a JSON object of keyword arguments, got {parameters!r}")
    try:
        return _architectures()[name](**parameters)
    except Exception as error:  # MONAI signals bad arguments with TypeError, ValueError, AssertionError …
        raise ValueError(f"bad {name} parameters {parameters}: {type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else 'invalid'}") from None


def load_weights(network: torch.nn.Module, path: Path) -> None:
    """Load a state_dict (or a checkpoint dict holding ``state_dict``/``model``) safely into ``network``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt, truncated, or pickled code (refused by weights_only)
        if isinstance(error, pickle.UnpicklingError):
            detail = "not a torch weights file, or one holding pickled code (refused: only tensors are read)"
        else:
            detail = f"{type(error).__name__}: {(str(error).strip().splitlines() or ['empty'])[0][:200]}"
        raise ValueError(f"cannot read weights {path}: the file is damaged, truncated or not weights ({detail})"
                         ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict", state.get("model")), dict):
        state = state.get("state_dict", state.get("model"))
    if not isinstance(state, dict):
        raise ValueError(f"weights {path} hold a {type(state).__name__}, not a state_dict")
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        detail = " ".join(line.strip() for line in str(error).splitlines()[:2])
        raise ValueError(f"weights {path} do not fit the network: {detail}") from None


def model_spec(model: SegmentationModel, spec: dict, **extra) -> dict:
    """The ``model.json`` content of ``model`` built from ``spec``."""
    return {"format": MODEL_FORMAT, "architecture": spec["architecture"], "network": spec["network"],
            "contrasts": list(model.contrasts), "spacing_mm": list(model.spacing_mm),
            "roi_size": list(model.roi_size), "outputs": "tumor core, whole tumor, enhancing tumor (sigmoid)",
            **extra}


def load_model_folder(folder: str | Path) -> SegmentationModel:
    """A model folder written by ``hybridneuro train-seg`` (``model.json`` + ``model.pt``)."""
    folder = Path(folder)
    missing = [name for name in ("model.json", "model.pt") if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"model folder {folder} is missing {', '.join(missing)}")
    try:
        spec = json.loads((folder / "model.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{folder / 'model.json'} is not valid JSON: {error}") from None
    if not isinstance(spec, dict) or spec.get("format") != MODEL_FORMAT:
        raise ValueError(f"{folder / 'model.json'} is not a {MODEL_FORMAT} file")
    problem = _spec_problem(spec)
    if problem:
        raise ValueError(f"{folder / 'model.json'}: {problem}; the model folder is damaged or was edited "
                         "(retrain with `hybridneuro train-seg`)")
    try:
        network = build_network(spec)
    except ValueError as error:
        raise ValueError(f"{folder / 'model.json'}: {error}") from None
    load_weights(network, folder / "model.pt")
    return SegmentationModel(network.eval(), tuple(spec["contrasts"]), tuple(float(s) for s in spec["spacing_mm"]),
                             tuple(int(r) for r in spec["roi_size"]), name=folder.name, info=spec)


def _spec_problem(spec: dict) -> str | None:
    """Why a ``model.json`` spec cannot describe a model (missing or mistyped fields), or None."""
    def numbers(value, kind) -> bool:
        return (isinstance(value, list) and len(value) == 3 and all(
            isinstance(v, kind) and not isinstance(v, bool) and v > 0 and math.isfinite(v) for v in value))

    if not isinstance(spec.get("network"), dict):
        return "'network' must be an object of network arguments"
    contrasts = spec.get("contrasts")
    if not (isinstance(contrasts, list) and contrasts and all(isinstance(c, str) for c in contrasts)):
        return f"'contrasts' must be a non-empty list of contrast keys, got {contrasts!r}"
    if spec["network"].get("in_channels") != len(contrasts):
        return (f"the network has {spec['network'].get('in_channels')} input channels but {len(contrasts)} "
                "contrasts are listed")
    if not numbers(spec.get("spacing_mm"), (int, float)):
        return f"'spacing_mm' must be three positive numbers, got {spec.get('spacing_mm')!r}"
    if not numbers(spec.get("roi_size"), int):
        return f"'roi_size' must be three positive integers, got {spec.get('roi_size')!r}"
    return None


def default_model() -> SegmentationModel:
    """The small UNet shipped with the engine, trained on SYNTHETIC subjects only (see its MODEL_CARD.md)."""
    return load_model_folder(DEFAULT_MODEL_FOLDER)
