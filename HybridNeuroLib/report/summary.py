"""``report.json`` of a pipeline run: what was fitted, forecast and written, and what a user must know.

    >>> from HybridNeuroLib.report.summary import REPORT_FORMAT, check_finite
    >>> REPORT_FORMAT
    'hybridneuro-report/1'
    >>> check_finite({"volumes": [{"whole_ml": float("nan")}]})
    Traceback (most recent call last):
    ...
    ValueError: report: volumes[0].whole_ml is nan; a non-finite value is never presented as a result

Keys: ``format``, ``software`` (name, version), ``command``, ``model`` (name, version,
checkpoint), ``inputs`` (study folder, subject, disease, each timepoint's day, images and
where its lesion labels came from, tissue source), ``settings`` (every option of the run),
``parameters`` and ``intervals`` (physics fits: D_w, ρ, front speed, seed, thresholds and their
ensemble ranges; other models: their summary), ``identifiable``, ``volumes`` (one row per day:
kind observed/predicted, whole-lesion volume with its ensemble range, core volume, and at
observed days the observed volume and the Dice of the model's labels against it),
``scenarios`` (per scenario and day: volumes and cells), ``warnings``, ``timings_s``,
``files`` and ``wall_time_s``. Every number is finite (checked before writing).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

from HybridNeuroLib import __version__

REPORT_FORMAT = "hybridneuro-report/1"
PARAMETER_KEYS = ("D_w_mm2_per_day", "rho_per_day", "front_speed_mm_per_day", "seed", "thresholds", "loss")


def check_finite(record, where: str = "") -> None:
    """Raise ``ValueError`` naming the first NaN or infinite number in a JSON-ready record."""
    if isinstance(record, float) and not math.isfinite(record):
        raise ValueError(f"report: {where} is {record}; a non-finite value is never presented as a result")
    if isinstance(record, Mapping):
        for key, value in record.items():
            check_finite(value, f"{where}.{key}" if where else str(key))
    elif isinstance(record, (list, tuple)):
        for n, value in enumerate(record):
            check_finite(value, f"{where}[{n}]")


def _inputs(original, study_folder: Path, study) -> dict:
    return {"study_folder": str(study_folder), "subject": study.subject, "disease": study.disease,
            "timepoints": [{"id": tp.id, "day": tp.day, "images": sorted(tp.images),
                            "lesion_labels": "study (seg)" if before.seg is not None
                            else f"segmented automatically (segmentation/seg_{tp.id}.nii.gz)"}
                           for tp, before in zip(study.timepoints, original.timepoints)],
            "predict_days": list(study.predict_days),
            "tissue": "study" if original.tissue else "derived from the SRI24 atlas (tissue/)"}


def build_report(original, study, study_folder: Path, settings, model, forecast, *, days: Sequence[float],
                 observed_ml: Mapping[float, float], fit_dice: Mapping[float, float], scenarios: dict | None,
                 warnings: Sequence[str], timings_s: Mapping[str, float], files: Sequence[str],
                 wall_time_s: float, model_folder: str = "model") -> dict:
    """The report record (see the module docstring); ``original`` is the study as read, ``study`` as fitted."""
    from HybridNeuroLib.hybrid.summaries import model_summary, physics_result

    summary = model_summary(model)
    result = physics_result(model)
    if result is not None:
        parameters = {key: summary[key] for key in PARAMETER_KEYS}
        intervals, identifiable = result.intervals(), result.identifiable
    else:
        parameters, intervals = summary.get("summary", {}), {}
        identifiable = bool(getattr(model, "identifiable", True))
    volumes = []
    for row in forecast.volumes:
        day = row["day"]
        entry = {"day": day, "kind": "predicted" if day in days else "observed", **row}
        if day in observed_ml:
            entry["kind"] = "observed" if day not in days else "observed and predicted"
            entry["observed_ml"] = round(observed_ml[day], 4)
            entry["dice_vs_observed"] = round(float(fit_dice[day]), 4)
        volumes.append(entry)
    report = {
        "format": REPORT_FORMAT, "software": {"name": "hybridneuro", "version": __version__}, "command": "run",
        "model": {"name": model.name, "version": model.model_version, "checkpoint": f"{model_folder}/model.json"},
        "inputs": _inputs(original, study_folder, study), "settings": settings.to_dict(),
        "parameters": parameters, "intervals": intervals, "identifiable": identifiable, "volumes": volumes,
        "scenarios": None if scenarios is None else {
            s["name"]: {"treatments": s["treatments"], "outcomes": s["outcomes"]} for s in scenarios["scenarios"]},
        "warnings": list(dict.fromkeys(warnings)), "timings_s": dict(timings_s), "files": list(files),
        "wall_time_s": round(wall_time_s, 2),
    }
    check_finite(report)
    return report
