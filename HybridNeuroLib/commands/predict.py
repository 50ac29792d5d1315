"""``hybridneuro predict``: forecast from a saved fit — per-day lesion labels, density and probability maps.

    $ hybridneuro predict fit --out forecast --days 180 240

loads the fit folder written by ``hybridneuro fit`` (any model's checkpoint, ``model.json``;
older ``params.json``-only folders too) and writes ``seg_day<d>.nii.gz`` (BraTS labels),
``density_day<d>.nii.gz`` and ``probability_day<d>.nii.gz`` (fraction of the uncertainty
ensemble showing lesion) on the grid of the study's first timepoint, and ``forecast.json``
(volumes with ensemble ranges). Days default to the study's ``predict_days``; the grid comes from
the study recorded in the fit (or ``--study``). Existing outputs are kept unless ``--overwrite``;
the study is never written to. Python: ``HybridNeuroLib.pipeline.load_fit`` then ``model.predict``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from HybridNeuroLib.fit.study_fit import study_grid
from HybridNeuroLib.outputs import prepare_output_folder
from HybridNeuroLib.pipeline import forecast_days, forecast_files, load_fit, physics_result, write_forecast

REPORT_NAME = "forecast.json"


def output_paths(out: Path, days) -> list[Path]:
    return [out / REPORT_NAME, *forecast_files(out, days)]


def register(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="forecast lesion growth from a fit",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("fit", type=Path, help="fit folder written by `hybridneuro fit` (model.json, params.json)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--days", type=float, nargs="+", metavar="D",
                        help="study days to forecast (default: the study's predict_days)")
    parser.add_argument("--study", type=Path, help="study folder (default: the one recorded in the fit)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model, study, study_folder = load_fit(args.fit, args.study)
    days = forecast_days(study, study_folder, args.days)
    out = prepare_output_folder(args.out, output_paths(args.out.resolve(), days), inputs=[study_folder],
                                overwrite=args.overwrite, create=False)
    forecast = model.predict(days, grid=study_grid(study), progress=True)
    out.mkdir(parents=True, exist_ok=True)
    files = write_forecast(forecast, out)
    result = physics_result(model)
    report = {"command": "predict", "model": model.name, "fit": str(Path(args.fit).resolve()),
              "study": str(Path(study_folder).resolve()),
              "members": len(result.ensemble) if result is not None else None,
              "identifiable": result.identifiable if result is not None else getattr(model, "identifiable", True),
              "warnings": list(result.warnings if result is not None else getattr(model, "warnings", ())),
              "volumes": forecast.volumes, "outputs": [p.name for p in files]}
    (out / REPORT_NAME).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    for row in forecast.volumes:
        print(f"day {row['day']:g}: whole lesion {row['whole_ml']:.2f} mL (ensemble {row['whole_ml_range']})")
    return 0
