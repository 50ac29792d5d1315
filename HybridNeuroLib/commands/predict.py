"""``hybridneuro predict``: forecast from a saved fit — per-day lesion labels, density and probability maps.

    $ hybridneuro predict fit --out forecast --days 180 240

loads the fit folder written by ``hybridneuro fit`` (any model's checkpoint, ``model.json``;
older ``params.json``-only folders too) and writes ``seg_day<d>.nii.gz`` (BraTS labels),
``density_day<d>.nii.gz`` and ``probability_day<d>.nii.gz`` (fraction of the uncertainty
ensemble showing lesion) on the grid of the study's first timepoint, and ``forecast.json``
(volumes with ensemble ranges). Days default to the study's ``predict_days``; the grid comes from
the study recorded in the fit (or ``--study``: refused when its subject or grid differ from the
fitted study's, unless ``--force``). OUT must be new or empty (``--overwrite``: an earlier
HybridNeuro output, replaced as a whole), outside the fit and the study; it appears only complete. Python: ``HybridNeuroLib.pipeline.load_fit`` then ``model.predict``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from HybridNeuroLib.fit.study_fit import study_grid
from HybridNeuroLib.commands import add_forecast_days_options
from HybridNeuroLib.outputs import staged_output
from HybridNeuroLib.pipeline import forecast_days, load_fit, physics_result, write_forecast

REPORT_NAME = "forecast.json"


def add_fit_input_options(parser: argparse.ArgumentParser) -> None:
    """FIT, --study, --force, --days, --allow-long-horizon, --out, --overwrite (shared with ``treat``)."""
    parser.add_argument("fit", type=Path, help="fit folder written by `hybridneuro fit` (model.json, params.json)")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder (new or empty; outside the fit and the study)")
    add_forecast_days_options(parser)
    parser.add_argument("--study", type=Path, help="study folder (default: the one recorded in the fit)")
    parser.add_argument("--force", action="store_true",
                        help="use --study even when its subject or grid differ from the fitted study's")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier HybridNeuro output folder (only if it holds nothing else)")


def register(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="forecast lesion growth from a fit",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_fit_input_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model, study, study_folder = load_fit(args.fit, args.study, force=args.force)
    days = forecast_days(study, study_folder, args.days, allow_long_horizon=args.allow_long_horizon)
    with staged_output(args.out, inputs=[args.fit, study_folder], overwrite=args.overwrite,
                       command="predict") as staging:
        forecast = model.predict(days, grid=study_grid(study), progress=True)
        files = write_forecast(forecast, staging)
        result = physics_result(model)
        report = {"command": "predict", "model": model.name, "fit": str(Path(args.fit).resolve()),
                  "study": str(Path(study_folder).resolve()),
                  "members": len(result.ensemble) if result is not None else None,
                  "identifiable": result.identifiable if result is not None else getattr(model, "identifiable", True),
                  "warnings": list(result.warnings if result is not None else getattr(model, "warnings", ())),
                  "volumes": forecast.volumes, "outputs": [p.name for p in files]}
        (staging / REPORT_NAME).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    for row in forecast.volumes:
        print(f"day {row['day']:g}: whole lesion {row['whole_ml']:.2f} mL (ensemble {row['whole_ml_range']})")
    return 0
