"""What a fitted model reports: its mechanistic fit when it has one, and the ``params.json`` summary.

    >>> from HybridNeuroLib.hybrid import make_model
    >>> from HybridNeuroLib.hybrid.summaries import physics_result
    >>> physics_result(make_model("physics")) is None     # not fitted yet
    True

Shared by the pipeline (``params.json``) and the report (``report.json``), which would otherwise
import each other.
"""

from __future__ import annotations

from HybridNeuroLib.fit import FitResult
from HybridNeuroLib.hybrid.base import ForecastModel

SUMMARY_FORMAT = "hybridneuro-model-summary/1"


def physics_result(model: ForecastModel) -> FitResult | None:
    """The model's mechanistic fit (parameters, ensemble), when it has one."""
    result = getattr(model, "result", None)
    return result if isinstance(result, FitResult) else None


def model_summary(model: ForecastModel) -> dict:
    """What ``params.json`` holds: a physics fit's :class:`FitResult` record, else the model's own summary."""
    result = physics_result(model)
    if result is not None:  # hybrids with a mechanistic part: its fit, and which model it belongs to
        return result.to_dict() | ({} if model.name == "physics" else {"forecast_model": model.name})
    from HybridNeuroLib import __version__

    summary = model.summary() if callable(getattr(model, "summary", None)) else model.to_record()
    return {"format": SUMMARY_FORMAT, "model": model.name, "model_version": model.model_version,
            "software": {"name": "hybridneuro", "version": __version__}, "summary": summary}
