"""A fit's result, and its ``params.json`` (save/load round trip).

    >>> import tempfile, pathlib
    >>> from HybridNeuroLib.fit.optimize import GrowthFit
    >>> from HybridNeuroLib.fit.result import FitResult
    >>> from HybridNeuroLib.fit.settings import FitSettings
    >>> best = GrowthFit(0.3, 0.03, (1.0, 2.0, 3.0), 5.0, 0.1, (0.5, 0.1))
    >>> result = FitResult(best, (), FitSettings(), observed_days=(0.0, 60.0), first_day=0.0)
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> path = result.save(folder)
    >>> FitResult.load(folder).best == best, path.name
    (True, 'params.json')

``params.json`` holds: ``model``, ``software`` (name, version), ``D_w_mm2_per_day``,
``rho_per_day``, ``front_speed_mm_per_day``, ``seed`` (centre in RAS mm, radius mm, at study
``day`` = ``first_day`` − ``onset_days``; onset 0 unless fitted), ``thresholds``,
``intervals`` (ensemble range of each parameter), the ensemble ``members``, every start's
``loss_history``, ``settings``, observed days, ``identifiable`` and the
``warnings``/``messages`` a user must see.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from HybridNeuroLib import __version__
from HybridNeuroLib.fit.ensemble import interval
from HybridNeuroLib.fit.optimize import GrowthFit
from HybridNeuroLib.fit.settings import FitSettings

PARAMS_NAME = "params.json"
MODEL_NAME = "fisher-kolmogorov"
FORMAT_ID = "hybridneuro-fit/1"



def read_params(folder: str | Path) -> dict:
    """The JSON object of ``folder/params.json``; refuses a missing, invalid or non-object file by name.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp()); _ = (folder / "params.json").write_text("{")
    >>> read_params(folder)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: .../params.json: not valid JSON (line 1, column 2: Expecting property name ...); ...
    """
    path = Path(folder) / PARAMS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"fit folder {folder}: no {PARAMS_NAME} (run `hybridneuro fit` first)")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason}); the file is damaged") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
                         "the file is damaged or was edited: refit with `hybridneuro fit`") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}: must hold a JSON object {{...}}, got {type(record).__name__}")
    return record


@dataclass(frozen=True, eq=False)
class FitResult:
    """Best fit, ensemble members, settings and what a user must know (warnings, messages)."""

    best: GrowthFit
    members: tuple[GrowthFit, ...]
    settings: FitSettings
    observed_days: tuple[float, ...]
    first_day: float                      # study day of the seed (first timepoint)
    starts: tuple[GrowthFit, ...] = ()    # every start's result (loss histories)
    identifiable: bool = True             # False with one timepoint: D_w, ρ are the priors
    warnings: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    wall_time_s: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def ensemble(self) -> tuple[GrowthFit, ...]:
        return (self.best, *self.members)

    def intervals(self) -> dict:
        fits = self.ensemble
        return {"D_w_mm2_per_day": interval([f.dw_mm2_per_day for f in fits]),
                "rho_per_day": interval([f.rho_per_day for f in fits]),
                "front_speed_mm_per_day": interval([f.front_speed_mm_per_day for f in fits]),
                "seed_radius_mm": interval([f.radius_mm for f in fits]),
                "kind": "range over the best fit and the ensemble members" if self.members
                        else "none (no ensemble): the best fit only"}

    def to_dict(self) -> dict:
        return {
            "format": FORMAT_ID, "model": MODEL_NAME, "software": {"name": "hybridneuro", "version": __version__},
            "D_w_mm2_per_day": self.best.dw_mm2_per_day, "rho_per_day": self.best.rho_per_day,
            "front_speed_mm_per_day": self.best.front_speed_mm_per_day,
            "seed": {"centre_ras_mm": list(self.best.centre_ras_mm), "radius_mm": self.best.radius_mm,
                     "peak_density": 1.0, "day": self.first_day - self.best.onset_days,
                     "onset_days": self.best.onset_days},
            "thresholds": self.settings.thresholds.to_dict(), "intervals": self.intervals(),
            "identifiable": self.identifiable, "warnings": list(self.warnings), "messages": list(self.messages),
            "observed_days": list(self.observed_days), "first_day": self.first_day,
            "loss": self.best.loss, "best": self.best.to_dict(),
            "members": [m.to_dict() for m in self.members], "starts": [s.to_dict() for s in self.starts],
            "loss_history": [list(s.loss_history) for s in self.starts] or [list(self.best.loss_history)],
            "settings": self.settings.to_dict(), "wall_time_s": round(self.wall_time_s, 3), **self.extra,
        }

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / PARAMS_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> FitResult:
        return cls.from_dict(read_params(folder), source=str(Path(folder) / PARAMS_NAME))

    @classmethod
    def from_dict(cls, record: dict, source: str = "fit record") -> FitResult:
        """The inverse of :meth:`to_dict`; refuses a record of another format or model, or with bad fields."""
        if not isinstance(record, dict):
            raise ValueError(f"{source}: must hold a JSON object {{...}}, got {type(record).__name__}")
        try:
            return cls._from_dict(record, source)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            if isinstance(error, ValueError) and str(error).startswith(source):
                raise
            detail = f"missing field {error}" if isinstance(error, KeyError) else (str(error).splitlines() or ["?"])[0]
            raise ValueError(f"{source}: not a usable fit record ({detail[:300]}); the file is damaged or was "
                             "edited: refit with `hybridneuro fit`") from None

    @classmethod
    def _from_dict(cls, record: dict, source: str) -> FitResult:
        if record.get("format") != FORMAT_ID or record.get("model") != MODEL_NAME:
            raise ValueError(f"{source}: not a {FORMAT_ID} fit of the {MODEL_NAME} model "
                             f"(format {record.get('format')!r}, model {record.get('model')!r})")
        known = {"best", "members", "settings", "observed_days", "first_day", "starts", "identifiable",
                 "warnings", "messages", "wall_time_s"}
        extra = {key: value for key, value in record.items() if key not in known and key not in
                 cls(GrowthFit(1, 1, (0, 0, 0), 1, 0), (), FitSettings(), (), 0.0).to_dict()}
        return cls(GrowthFit.from_dict(record["best"]), tuple(GrowthFit.from_dict(m) for m in record["members"]),
                   FitSettings.from_dict(record["settings"]), tuple(record["observed_days"]),
                   float(record["first_day"]), tuple(GrowthFit.from_dict(s) for s in record["starts"]),
                   bool(record["identifiable"]), tuple(record["warnings"]), tuple(record["messages"]),
                   float(record["wall_time_s"]), extra)
