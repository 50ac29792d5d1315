"""``hybridneuro fit``: personalise a forecasting model to a study's observed lesions.

    $ hybridneuro fit study --out fit                   # then: hybridneuro predict fit --out forecast
    $ hybridneuro fit study --out fit --model physics   # any name of HybridNeuroLib.hybrid.model_names()

reads the study's ``seg`` labels — timepoints without one are segmented with the shipped default
model (or ``--segmentation-model DIR``) into ``fit/segmentation/`` — and tissue maps (derived from
the SRI24 atlas into ``fit/tissue/`` when the study has none, with a warning), fits the model (``--model``, default ``physics``: D_w, ρ and the
seed at a 2 mm grid, ``--voxel-mm``, with the uncertainty ensemble) and writes into ``fit/`` the
checkpoint (``model.json`` + ``tensors.pt``, read back by ``predict``/``treat`` and
``HybridNeuroLib.hybrid.load_model``), ``params.json`` (physics: parameters, intervals, seed in
RAS mm, thresholds, loss history, settings, software version; other models: their summary; both
with the study folder) and ``initial_density.nii.gz`` (the fitted state at the first timepoint,
on its grid). The fit options (``--voxel-mm`` … ``--seed``) apply to models fitted with
:class:`~HybridNeuroLib.fit.FitSettings`. Nothing is written into the study folder; OUT must be
new or empty (``--overwrite``: an earlier HybridNeuro output, replaced as a whole) and appears
only when the fit succeeded (:mod:`HybridNeuroLib.outputs`). Python: ``HybridNeuroLib.pipeline.fit_model``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from HybridNeuroLib.fit import FitSettings
from HybridNeuroLib.outputs import staged_output
from HybridNeuroLib.pipeline import (SEGMENTATION_FOLDER, TISSUE_FOLDER, available_models, check_model_folder,
                                     check_model_name, derive_tissue, fit_model, model_options, physics_result,
                                     save_fit, segment_missing)
from HybridNeuroLib.fit.study_fit import chosen_timepoints
from HybridNeuroLib.study import read_study


def add_fit_options(parser: argparse.ArgumentParser) -> None:
    """The model choice and fit settings (shared with ``run``)."""
    defaults = FitSettings()
    parser.add_argument("--model", default="physics", metavar="NAME",
                        help=f"forecasting model, one of: {', '.join(available_models())}")
    parser.add_argument("--voxel-mm", type=float, default=defaults.voxel_mm, help="fitting grid spacing in mm")
    parser.add_argument("--starts", type=int, default=defaults.starts, help="multi-start count")
    parser.add_argument("--iterations", type=int, default=defaults.iterations, help="Adam iterations per start")
    parser.add_argument("--members", type=int, default=defaults.members, help="uncertainty ensemble size (0 = none)")
    parser.add_argument("--member-iterations", type=int, default=defaults.member_iterations,
                        help="Adam iterations per ensemble member")
    parser.add_argument("--loss", choices=("margin", "soft-dice"), default=defaults.loss, help="fitting loss")
    parser.add_argument("--optimizer", choices=("adam", "cmaes"), default=defaults.optimizer,
                        help="gradient descent through the solver, or derivative-free CMA-ES")
    parser.add_argument("--evaluations", type=int, default=defaults.evaluations,
                        help="CMA-ES loss evaluations per start")
    parser.add_argument("--fit-onset", action="store_true",
                        help="also fit the tumour's age (a small seed grown before the first scan); with "
                             "--optimizer cmaes --starts 1 this recovered D_w/ρ within 9 %%/5 %% (median) on the "
                             "plain-FK bench")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (fits are reproducible)")


def fit_settings(args: argparse.Namespace) -> FitSettings:
    return FitSettings(voxel_mm=args.voxel_mm, starts=args.starts, iterations=args.iterations, members=args.members,
                       member_iterations=args.member_iterations, loss=args.loss, seed=args.seed,
                       optimizer=args.optimizer, evaluations=args.evaluations, fit_onset=args.fit_onset)


def register(subparsers) -> None:
    parser = subparsers.add_parser("fit", help="fit a lesion growth model to a study's lesions",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("study", type=Path, help="study folder (hybridneuro-study/1) with seg and tissue")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder (new or empty; never inside or around the study)")
    parser.add_argument("--timepoints", nargs="+", metavar="ID", help="timepoint ids to fit (default: all)")
    add_fit_options(parser)
    parser.add_argument("--segmentation-model", metavar="DIR",
                        help="model folder for timepoints without seg (default: the shipped synthetic-data model)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier HybridNeuro output folder (only if it holds nothing else)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    name = check_model_name(args.model)
    study_folder = args.study.resolve()
    inputs = [study_folder, check_model_folder(args.segmentation_model) if args.segmentation_model else None]
    settings = fit_settings(args)
    with staged_output(args.out, inputs=inputs, overwrite=args.overwrite, command="fit") as staging:
        study = read_study(study_folder)
        chosen_timepoints(study, args.timepoints)  # unknown ids refused before segmentation and tissue
        if not model_options(name, settings):
            print(f"note: model {name!r} is not fitted with FitSettings; --voxel-mm, --starts, … are ignored")
        study, derived = segment_missing(study, staging / SEGMENTATION_FOLDER, args.segmentation_model,
                                         progress=True, log=print)
        study, tissue_warnings = derive_tissue(study, staging / TISSUE_FOLDER, print)
        model = fit_model(study, name, settings, timepoint_ids=args.timepoints, log=print)
        result = physics_result(model)
        for message in [*derived, *tissue_warnings,
                        *(result.warnings if result is not None else getattr(model, "warnings", ()))]:
            print(f"warning: {message}")
        save_fit(model, study, study_folder, staging)
    out = args.out.resolve()
    if result is not None:
        intervals = result.intervals()
        print(result.messages[0])
        print(f"intervals: D_w {intervals['D_w_mm2_per_day']} mm²/day, ρ {intervals['rho_per_day']} /day "
              f"({intervals['kind']}); wrote {out / 'params.json'} ({result.wall_time_s:.1f} s)")
    else:
        print(f"model {name!r} fitted; wrote {out / 'model.json'} and {out / 'params.json'}")
    return 0
