"""One interface for every forecasting model — physics, hybrids, data-driven — and their checkpoints.

    >>> from HybridNeuroLib.hybrid import make_model, model_names
    >>> "physics" in model_names()
    True
    >>> model = make_model("physics")          # then: model.fit(tissue, labels_by_day); model.predict([180])
    >>> model.name, model.minimum_timepoints
    ('physics', 1)

A model is created unfitted with its options, fitted on one patient —
``fit(tissue, labels_by_day)`` with ``(study day, BraTS label image)`` pairs, or
``fit_study(study)`` — then forecasts ``predict(days, grid=...)`` → :class:`~HybridNeuroLib.fit.Forecast`
(density, labels, probability maps and volumes per study day). ``save(folder)`` writes
``model.json`` (format, model name and version, software version, the model's JSON record) and,
when the model has tensors, ``tensors.pt``; :func:`load_model` reads any model back (weights
with ``torch.load(weights_only=True)``) and refuses a checkpoint of another model type or
format version with a message naming both.

Subclasses set ``name``, ``model_version``, ``minimum_timepoints`` and implement ``_fit``,
``predict``, ``to_record``/``from_record`` (and ``tensors`` when they hold network weights).
They register with :func:`register`; ``make_model(name)`` imports lazily, so listing models
costs nothing.
"""

from __future__ import annotations

import abc
import importlib
import json
from pathlib import Path
from typing import Callable, ClassVar, Sequence

import SimpleITK as sitk
import torch

from HybridNeuroLib import __version__
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.physics import TissueMaps

CHECKPOINT_FORMAT = "hybridneuro-model/1"
RECORD_NAME, TENSORS_NAME = "model.json", "tensors.pt"

# name → module defining it (imported on first use)
MODEL_MODULES: dict[str, str] = {
    "physics": "HybridNeuroLib.hybrid.physics_model",
    "parallel": "HybridNeuroLib.hybrid.parallel",
    "series": "HybridNeuroLib.hybrid.series",
    "parallel-series": "HybridNeuroLib.hybrid.parallel",
    "neural-ode": "HybridNeuroLib.hybrid.neural_ode",
    "neural-ode-physics": "HybridNeuroLib.hybrid.neural_ode",
    "solver-in-the-loop": "HybridNeuroLib.hybrid.solver_in_loop",
}
PRETRAINED_ROOT = Path(__file__).resolve().parent / "models"   # shipped population components, one folder each
_REGISTRY: dict[str, type[ForecastModel]] = {}

LabelsByDay = Sequence[tuple[float, sitk.Image]]


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be loaded as the requested model."""


def register(cls: type[ForecastModel]) -> type[ForecastModel]:
    """Class decorator: make ``cls`` available to :func:`make_model` and :func:`load_model` by ``cls.name``.

    A model defined outside this package (another disease's, a user's) is listed by its own
    module, so registering it is all it takes.
    """
    _REGISTRY[cls.name] = cls
    MODEL_MODULES.setdefault(cls.name, cls.__module__)
    return cls


def unregister(name: str) -> None:
    """Forget a model registered at run time (its module is imported again on its next use)."""
    _REGISTRY.pop(name, None)
    if not MODEL_MODULES.get(name, "").startswith("HybridNeuroLib."):
        MODEL_MODULES.pop(name, None)


def model_names() -> tuple[str, ...]:
    return tuple(MODEL_MODULES)


def model_class(name: str) -> type[ForecastModel]:
    if name not in MODEL_MODULES:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_MODULES)}")
    if name not in _REGISTRY:
        importlib.import_module(MODEL_MODULES[name])
    return _REGISTRY[name]


def make_model(name: str, **options) -> ForecastModel:
    """An unfitted model by name; ``options`` go to its constructor."""
    return model_class(name)(**options)


class ForecastModel(abc.ABC):
    """Fit to one patient's observed lesions, forecast any later days, save and load."""

    name: ClassVar[str]
    model_version: ClassVar[int] = 1
    minimum_timepoints: ClassVar[int] = 2

    def fit(self, tissue: TissueMaps, labels_by_day: LabelsByDay, *, progress: bool = True,
            log: Callable[[str], None] = lambda message: None) -> ForecastModel:
        """Fit to ``(study day, BraTS labels)`` pairs on ``tissue``; returns ``self``."""
        days = sorted({float(day) for day, _ in labels_by_day})
        if len(days) < self.minimum_timepoints:
            raise ValueError(f"model {self.name!r} needs at least {self.minimum_timepoints} timepoints with a lesion "
                             f"segmentation, got {len(days)} (days {', '.join(f'{d:g}' for d in days) or 'none'}); "
                             "add timepoints or choose the 'physics' model")
        self._fit(tissue, list(labels_by_day), progress=progress, log=log)
        return self

    def fit_study(self, study, *, timepoint_ids: Sequence[str] | None = None, **options) -> ForecastModel:
        """Fit a :class:`~HybridNeuroLib.study.Study`'s patient (its ``seg`` labels and tissue maps)."""
        from HybridNeuroLib.fit.study_fit import grid_warnings, study_labels, study_tissue

        for warning in grid_warnings(study, timepoint_ids):
            options.get("log", lambda message: None)(f"warning: {warning}")
        return self.fit(study_tissue(study), study_labels(study, timepoint_ids), **options)

    @abc.abstractmethod
    def _fit(self, tissue: TissueMaps, labels_by_day: LabelsByDay, *, progress: bool,
             log: Callable[[str], None]) -> None:
        ...

    @abc.abstractmethod
    def predict(self, days: Sequence[float], *, grid=None, progress: bool = False):
        """Forecast study ``days`` (≥ the first fitted day) → :class:`HybridNeuroLib.fit.Forecast` on ``grid``."""

    @abc.abstractmethod
    def to_record(self) -> dict:
        """Everything but tensors, as JSON-ready values."""

    @classmethod
    @abc.abstractmethod
    def from_record(cls, record: dict, tensors: dict[str, torch.Tensor]) -> ForecastModel:
        ...

    def tensors(self) -> dict[str, torch.Tensor]:
        """Network weights and other arrays to save in ``tensors.pt`` (none by default)."""
        return {}

    @classmethod
    def train_population(cls, folder: Path, *, subjects: int, seed: int = 0, progress: bool = True,
                         log: Callable[[str], None] = print) -> Path:
        """Train the model's population component on a synthetic training cohort into ``folder``
        (``hybridneuro train-hybrid NAME``); models without one refuse."""
        raise ValueError(f"model {cls.name!r} has no population component to train")

    def save(self, folder: str | Path) -> Path:
        """Write ``model.json`` (+ ``tensors.pt``) into ``folder`` (created); returns the record's path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {key: value.detach().cpu().contiguous() for key, value in self.tensors().items()}
        if tensors:
            torch.save(tensors, folder / TENSORS_NAME)
        record = {"format": CHECKPOINT_FORMAT, "model": self.name, "model_version": self.model_version,
                  "software": {"name": "hybridneuro", "version": __version__}, "tensors": bool(tensors),
                  "record": self.to_record()}
        path = folder / RECORD_NAME
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        return path


def load_model(folder: str | Path, expected: str | None = None) -> ForecastModel:
    """Load a saved model (any registered type, or only ``expected``) from ``folder``."""
    folder = Path(folder)
    path = folder / RECORD_NAME
    if not path.is_file():
        raise FileNotFoundError(f"model folder {folder}: no {RECORD_NAME} (save a fitted model there first)")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({error}); the checkpoint is damaged") from None
    if not isinstance(record, dict):
        raise CheckpointError(f"{path}: must hold a JSON object {{...}}, got {type(record).__name__}; "
                              "the checkpoint is damaged")
    if record.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: format {record.get('format')!r} is not {CHECKPOINT_FORMAT!r}")
    name = record.get("model")
    if not isinstance(name, str) or name not in MODEL_MODULES:
        raise CheckpointError(f"{path}: 'model' is {name!r}, not a model this software knows "
                              f"({', '.join(MODEL_MODULES)}); the checkpoint is damaged or from another program")
    if expected is not None and name != expected:
        raise CheckpointError(f"{path}: holds a {name!r} model, not the requested {expected!r} model")
    cls = model_class(name)
    if record.get("model_version") != cls.model_version:
        raise CheckpointError(f"{path}: {name!r} model version {record.get('model_version')!r}, this software "
                              f"(hybridneuro {__version__}) reads version {cls.model_version}; refit the model")
    if not isinstance(record.get("record"), dict):
        raise CheckpointError(f"{path}: no 'record' object (the {name!r} model's settings and fitted values); "
                              "the checkpoint is damaged or was edited: refit the model")
    tensors = _read_tensors(folder) if record.get("tensors") else {}
    try:
        return cls.from_record(record["record"], tensors)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as error:
        detail = f"missing entry {error}" if isinstance(error, KeyError) else (str(error).splitlines() or ["?"])[0]
        raise CheckpointError(f"{path}: cannot rebuild the {name!r} model from {RECORD_NAME} and {TENSORS_NAME} "
                              f"({type(error).__name__}: {detail[:300]}); the checkpoint is damaged or was edited: "
                              "refit the model") from None


def _read_tensors(folder: Path) -> dict[str, torch.Tensor]:
    """``tensors.pt`` of a checkpoint folder: a dict of named tensors, read without running code."""
    stored = folder / TENSORS_NAME
    if not stored.is_file():
        raise CheckpointError(f"model folder {folder}: {TENSORS_NAME} is missing")
    try:
        tensors = torch.load(stored, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle/zip errors vary by damage
        detail = (str(error).strip().splitlines() or ["empty or unreadable"])[0][:200]
        raise CheckpointError(f"{stored}: cannot be read as tensors ({type(error).__name__}: {detail}); "
                              "the file is damaged") from None
    if not (isinstance(tensors, dict) and all(isinstance(key, str) and isinstance(value, torch.Tensor)
                                              for key, value in tensors.items())):
        raise CheckpointError(f"{stored}: holds a {type(tensors).__name__}, not named tensors; the file is "
                              "damaged or from another program")
    return tensors


def tissue_tensors(tissue: TissueMaps) -> dict[str, torch.Tensor]:
    """Tissue maps as tensors for ``tensors.pt`` (the grid goes in the record: :func:`tissue_record`)."""
    return {f"tissue.{name}": torch.from_numpy(getattr(tissue, name).copy()) for name in ("gm", "wm", "csf")}


def geometry_record(geometry: ImageGeometry) -> dict:
    """A grid as JSON-ready values (the inverse of :func:`geometry_from_record`)."""
    return {"size": list(geometry.size), "spacing_mm": list(geometry.spacing_mm),
            "origin_lps_mm": list(geometry.origin_lps_mm), "direction_lps": [list(row) for row in geometry.direction_lps]}


def geometry_from_record(record: dict) -> ImageGeometry:
    return ImageGeometry(tuple(record["size"]), tuple(record["spacing_mm"]), tuple(record["origin_lps_mm"]),
                         tuple(tuple(row) for row in record["direction_lps"]))


def tissue_record(tissue: TissueMaps) -> dict:
    return geometry_record(tissue.geometry)


def tissue_from_saved(record: dict, tensors: dict[str, torch.Tensor]) -> TissueMaps:
    return TissueMaps(geometry=geometry_from_record(record),
                      **{name: tensors[f"tissue.{name}"].numpy() for name in ("gm", "wm", "csf")})
