"""``hybridneuro predict``: forecast from a fit — per-day lesion labels, density and probability maps.

    $ hybridneuro predict fit --out forecast --days 180 240

writes ``seg_day<d>.nii.gz`` (BraTS labels of the best fit), ``density_day<d>.nii.gz`` and
``probability_day<d>.nii.gz`` (fraction of the uncertainty ensemble showing lesion) on the grid
of the study's first timepoint, and ``forecast.json`` (volumes with ensemble ranges). Days
default to the study's ``predict_days``; tissue and grid come from the study recorded in the
fit (or ``--study``). Existing outputs are kept unless ``--overwrite``; the study is never
written to. Python: ``HybridNeuroLib.fit.predict``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from HybridNeuroLib.fit import FitResult, predict
from HybridNeuroLib.fit.study_fit import study_grid, study_tissue
from HybridNeuroLib.outputs import day_image_paths, prepare_output_folder, probability_path, write_image
from HybridNeuroLib.study import read_study

REPORT_NAME = "forecast.json"


def output_paths(out: Path, days) -> list[Path]:
    paths = [out / REPORT_NAME]
    for day in days:
        paths += [*day_image_paths(out, day), probability_path(out, day)]
    return paths


def register(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="forecast lesion growth from a fit",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("fit", type=Path, help="fit folder written by `hybridneuro fit` (params.json)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--days", type=float, nargs="+", metavar="D",
                        help="study days to forecast (default: the study's predict_days)")
    parser.add_argument("--study", type=Path, help="study folder (default: the one recorded in the fit)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    fit = FitResult.load(args.fit)
    recorded = fit.extra.get("study", {})
    study_folder = args.study or (Path(recorded["folder"]) if "folder" in recorded else None)
    if study_folder is None:
        raise ValueError(f"fit folder {args.fit}: no study recorded; pass --study STUDY")
    study = read_study(study_folder)
    days = sorted(set(args.days if args.days else study.predict_days))
    if not days:
        raise ValueError(f"study {study_folder}: no predict_days; pass --days D …")
    out = prepare_output_folder(args.out, output_paths(args.out.resolve(), days), inputs=[Path(study_folder)],
                                overwrite=args.overwrite, create=False)
    forecast = predict(fit, study_tissue(study), days, grid=study_grid(study), progress=True)
    out.mkdir(parents=True, exist_ok=True)
    paths = output_paths(out, days)
    for n, day in enumerate(days):
        density_path, seg_path = day_image_paths(out, day)
        write_image(forecast.density[n], density_path)
        write_image(forecast.labels[n], seg_path)
        write_image(forecast.probability[n], probability_path(out, day))
    report = {"command": "predict", "fit": str(Path(args.fit).resolve()), "study": str(Path(study_folder).resolve()),
              "members": len(fit.ensemble), "identifiable": fit.identifiable, "warnings": list(fit.warnings),
              "volumes": forecast.volumes, "outputs": [p.name for p in paths[1:]]}
    paths[0].write_text(json.dumps(report, indent=2) + "\n")
    for row in forecast.volumes:
        print(f"day {row['day']:g}: whole lesion {row['whole_ml']:.2f} mL (ensemble {row['whole_ml_range']})")
    return 0
