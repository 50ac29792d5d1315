"""``hybridneuro run``: the whole pipeline of the study's disease — for glioma: segment, fit, predict, treat, report.

    $ hybridneuro run study --out results                     # physics model, the study's predict_days
    $ hybridneuro run --sample --out results                  # the embedded sample case
    $ hybridneuro --progress-lines run study --out results --model physics --days 180 240

validates the study (every problem at once), segments timepoints without ``seg`` (the shipped
default model — trained on synthetic data only — unless ``--segmentation-model``), derives tissue
maps from the SRI24 atlas when the study has none, fits the model, forecasts the observed and
predict days, compares treatment scenarios and writes into OUT: ``report.json`` (parameters,
intervals, volumes per day with ranges, model, settings, inputs, warnings, software version),
``seg_day<d>`` / ``density_day<d>`` / ``probability_day<d>.nii.gz`` (first-timepoint grid),
``model/`` (the fit: ``predict``/``treat`` read it), ``scenarios/``, ``forecast_overlay.png``,
``lesion_volume.png``, ``scenarios/scenarios.png`` and ``scene.mrb`` (open it in 3D Slicer).
OUT appears only when everything succeeded (written into a hidden staging folder beside it,
renamed at the end); it must be new or empty, or with ``--overwrite`` an earlier HybridNeuro output
holding nothing else (:mod:`HybridNeuroLib.outputs`). The pipeline is the one the study's disease
declares (``HybridNeuroLib.diseases``). Python: ``HybridNeuroLib.runner.run_study`` (any disease) or
``HybridNeuroLib.pipeline.run_pipeline`` (glioma).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from HybridNeuroLib.commands import add_forecast_days_options
from HybridNeuroLib.commands.fit import add_fit_options, fit_settings
from HybridNeuroLib.commands.treat import add_scenario_options, scenario_options
from HybridNeuroLib.diseases import disease
from HybridNeuroLib.outputs import check_output_folder
from HybridNeuroLib.pipeline import PipelineSettings
from HybridNeuroLib.runner import run_study


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="the whole pipeline on a study: segment, fit, predict, treatment "
                                   "scenarios, figures, report and a Slicer scene",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("study", type=Path, nargs="?", help="study folder (hybridneuro-study/1)")
    parser.add_argument("--sample", action="store_true",
                        help="use the embedded sample case (a synthetic patient; generated once, then cached)")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder (new or empty; never inside or around the study)")
    add_forecast_days_options(parser)
    add_fit_options(parser)
    parser.add_argument("--segmentation-model", metavar="DIR",
                        help="model folder from `hybridneuro train-seg` for timepoints without seg "
                             "(default: the shipped synthetic-data model)")
    parser.add_argument("--no-scenarios", action="store_true", help="skip the treatment scenarios")
    add_scenario_options(parser)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier HybridNeuro output folder (only if it holds nothing else)")
    parser.set_defaults(func=run)


def study_folder(args: argparse.Namespace) -> Path:
    """STUDY, or the embedded sample case with ``--sample``."""
    if (args.study is None) == (not args.sample):
        raise ValueError("give either a study folder or --sample (the embedded sample case), not both or neither")
    if args.sample:
        print("preparing the embedded sample case (generated once, then cached)")
        return disease("glioma").sample_case()
    return args.study


def run(args: argparse.Namespace) -> int:
    settings = PipelineSettings(model=args.model, fit=fit_settings(args),
                                days=tuple(args.days) if args.days else None, scenarios=not args.no_scenarios,
                                scenario_options=scenario_options(args), segmentation_model=args.segmentation_model,
                                allow_long_horizon=args.allow_long_horizon)
    check_output_folder(args.out, inputs=[args.study], overwrite=args.overwrite)  # before the sample case is made
    result = run_study(study_folder(args), args.out, settings, overwrite=args.overwrite, log=print)
    report = result.report
    for message in report["warnings"]:
        print(f"warning: {message}")
    parameters, intervals = report.get("parameters", {}), report.get("intervals", {})
    if "D_w_mm2_per_day" in parameters:
        print(f"fitted D_w = {parameters['D_w_mm2_per_day']:.3g} mm²/day {intervals['D_w_mm2_per_day']}, "
              f"ρ = {parameters['rho_per_day']:.3g}/day {intervals['rho_per_day']}")
    for row in report["volumes"]:
        extra = (f", observed {row['observed_ml']:.2f} mL, Dice {row['dice_vs_observed']:.2f}"
                 if "observed_ml" in row else "")
        print(f"day {row['day']:g} ({row['kind']}): whole lesion {row['whole_ml']:.2f} mL "
              f"(range {row['whole_ml_range'][0]:.2f}–{row['whole_ml_range'][1]:.2f}){extra}")
    scene = result.out / "scene.mrb"
    print(f"wrote {len(report['files'])} files to {result.out} in {report.get('wall_time_s', 0):.0f} s"
          + (f"; open {scene} in 3D Slicer" if scene.is_file() else ""))
    return 0
