"""``hybridneuro fit``: personalise the Fisher–Kolmogorov model to a study's observed lesions.

    $ hybridneuro fit study --out fit            # then: hybridneuro predict fit --out forecast

reads the study's ``seg`` labels (every timepoint needs one; segmentation is a separate step)
and tissue maps, fits D_w, ρ and the seed at a 2 mm grid (``--voxel-mm``), runs the uncertainty
ensemble, and writes ``fit/params.json`` (parameters, intervals, seed in RAS mm, thresholds,
loss history, settings, software version, the study folder) and ``fit/initial_density.nii.gz``
(the fitted seed on the first timepoint's grid). Nothing is written into the study folder;
existing outputs are kept unless ``--overwrite``. Python: ``HybridNeuroLib.fit.fit_study``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from HybridNeuroLib.fit import FitSettings, fit_study
from HybridNeuroLib.fit.predict import tissue_on_grid
from HybridNeuroLib.fit.result import PARAMS_NAME
from HybridNeuroLib.fit.study_fit import study_grid, study_tissue
from HybridNeuroLib.outputs import prepare_output_folder, write_image
from HybridNeuroLib.physics import seed_density
from HybridNeuroLib.study import read_study

INITIAL_NAME = "initial_density.nii.gz"


def register(subparsers) -> None:
    parser = subparsers.add_parser("fit", help="fit the glioma growth model to a study's lesions",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    defaults = FitSettings()
    parser.add_argument("study", type=Path, help="study folder (hybridneuro-study/1) with seg and tissue")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--timepoints", nargs="+", metavar="ID", help="timepoint ids to fit (default: all)")
    parser.add_argument("--voxel-mm", type=float, default=defaults.voxel_mm, help="fitting grid spacing in mm")
    parser.add_argument("--starts", type=int, default=defaults.starts, help="multi-start count")
    parser.add_argument("--iterations", type=int, default=defaults.iterations, help="Adam iterations per start")
    parser.add_argument("--members", type=int, default=defaults.members, help="uncertainty ensemble size (0 = none)")
    parser.add_argument("--loss", choices=("margin", "soft-dice"), default=defaults.loss, help="fitting loss")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (fits are reproducible)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    study_folder = args.study.resolve()
    out = prepare_output_folder(args.out, [args.out / PARAMS_NAME, args.out / INITIAL_NAME], inputs=[study_folder],
                                overwrite=args.overwrite, create=False)
    study = read_study(study_folder)
    settings = FitSettings(voxel_mm=args.voxel_mm, starts=args.starts, iterations=args.iterations,
                           members=args.members, loss=args.loss, seed=args.seed)
    result = fit_study(study, settings, timepoint_ids=args.timepoints, log=print)
    for message in result.warnings:
        print(f"warning: {message}")
    result.extra["study"] = {"folder": str(study_folder), "subject": study.subject,
                             "predict_days": list(study.predict_days)}
    out.mkdir(parents=True, exist_ok=True)
    result.save(out)
    grid = study_grid(study)
    tissue = tissue_on_grid(study_tissue(study), grid)
    initial = seed_density(grid, result.best.seed).numpy() * tissue.domain_mask(settings.tissue_threshold)
    write_image(grid.image_from_array(initial.astype(np.float32)), out / INITIAL_NAME)
    intervals = result.intervals()
    print(result.messages[0])
    print(f"intervals: D_w {intervals['D_w_mm2_per_day']} mm²/day, ρ {intervals['rho_per_day']} /day "
          f"({intervals['kind']}); wrote {out / PARAMS_NAME} ({result.wall_time_s:.1f} s)")
    return 0
