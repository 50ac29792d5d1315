"""The diseases the engine models, in one registry: what a disease's studies hold and how its pipeline runs.

    >>> from HybridNeuroLib.diseases import disease, disease_names
    >>> glioma = disease("glioma")
    >>> glioma.image_keys, glioma.time_unit, glioma.state_kind, glioma.default_model
    (('t1n', 't1c', 't2w', 't2f'), 'days', 'voxel field', 'physics')
    >>> [label.name for label in glioma.labels]
    ['necrotic core', 'edema', 'enhancing tumor']
    >>> "glioma" in disease_names()
    True

A disease package (``HybridNeuroLib.glioma``, or a third party's own) declares one
:class:`Disease` and calls :func:`register_disease`. The built-in packages are listed by name in
:data:`BUILT_IN` and imported only when their disease is first asked for, so this module — and
every shared layer that uses it (study validation, :func:`HybridNeuroLib.runner.run_study`
behind ``hybridneuro run``, the Slicer module) —
imports no disease package. Adding a disease is a new package plus one line in :data:`BUILT_IN`
(or one :func:`register_disease` call from the user's own code).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from HybridNeuroLib.labels import Label

TIME_UNITS_IN_DAYS: dict[str, float] = {"hours": 1.0 / 24.0, "days": 1.0, "years": 365.25}
"""The time units a disease may state for its study times, and their length in days."""
STATE_KINDS = ("voxel field", "regional")
"""A voxel field on an image grid (glioma, stroke), or one value per region of a parcellation (Alzheimer's)."""

BUILT_IN: dict[str, str] = {
    "glioma": "HybridNeuroLib.glioma",
}
"""Disease name → the package that declares it (imported on first use)."""


@dataclass(frozen=True)
class Disease:
    """One disease: the keys and labels of its studies, its time unit and state, and its pipeline.

    ``run(study_folder, out, settings, *, overwrite, progress, log)`` is what ``hybridneuro run``
    calls for a study of this disease; it returns an object with ``out`` (the output folder) and
    ``report`` (the ``report.json`` content, with at least ``warnings``, ``volumes`` and ``files``).
    """

    name: str
    title: str
    image_keys: tuple[str, ...]            # modality keys a timepoint may hold (file stems)
    labels: tuple[Label, ...]              # lesion labels of its label images (0 = background)
    run: Callable
    default_model: str                     # a name of HybridNeuroLib.hybrid.model_names()
    time_unit: str = "days"                # of the study's timepoint and prediction times
    state_kind: str = "voxel field"
    sample_case: Callable[[], Path] | None = None  # the embedded sample study folder, if the disease has one

    def __post_init__(self) -> None:
        if self.time_unit not in TIME_UNITS_IN_DAYS:
            raise ValueError(f"disease {self.name!r}: time_unit must be one of {list(TIME_UNITS_IN_DAYS)}, "
                             f"got {self.time_unit!r}")
        if self.state_kind not in STATE_KINDS:
            raise ValueError(f"disease {self.name!r}: state_kind must be one of {list(STATE_KINDS)}, "
                             f"got {self.state_kind!r}")
        values = [label.value for label in self.labels]
        if 0 in values or len(set(values)) != len(values):
            raise ValueError(f"disease {self.name!r}: label values must be distinct and non-zero (0 is background), "
                             f"got {values}")

    @property
    def label_values(self) -> frozenset[int]:
        """Every value its label images may hold, background included."""
        return frozenset({0, *(label.value for label in self.labels)})


_REGISTERED: dict[str, Disease] = {}


def register_disease(declared: Disease) -> Disease:
    """Make ``declared`` known by its name (replacing an earlier declaration of that name)."""
    _REGISTERED[declared.name] = declared
    return declared


def unregister_disease(name: str) -> None:
    """Forget a disease registered at run time (built-in ones come back on their next use)."""
    _REGISTERED.pop(name, None)


def disease_names() -> tuple[str, ...]:
    """Built-in and registered disease names."""
    return tuple(dict.fromkeys([*BUILT_IN, *_REGISTERED]))


def disease(name: str) -> Disease:
    """The disease called ``name``; ``ValueError`` naming the known ones otherwise."""
    if name not in _REGISTERED and isinstance(name, str) and name in BUILT_IN:
        importlib.import_module(BUILT_IN[name])  # its package registers it
    if name not in _REGISTERED:
        raise ValueError(f"unknown disease {name!r}; this version models: {', '.join(disease_names())}")
    return _REGISTERED[name]
