"""``hybridneuro simulate``: glioma growth (Fisher–Kolmogorov) from a seed on patient tissue maps.

    $ hybridneuro simulate --tissue study/tissue --seed-ras -20 15 30 --seed-radius 5 \\
          --dw 0.5 --rho 0.05 --days 60 120 --out growth

writes ``growth/density_day60.nii.gz``, ``growth/seg_day60.nii.gz`` (BraTS labels), … and
``growth/simulation.json`` (exact settings, solver, steps, right-hand-side evaluations,
time). OUT must be new or empty (``--overwrite``: an earlier HybridNeuro output, replaced as a
whole) and appears only complete; nothing is ever written into the tissue folder. The same run in Python is
``HybridNeuroLib.physics.simulate(...)``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from HybridNeuroLib.device import pick_device
from HybridNeuroLib.outputs import day_image_paths, staged_output, write_image
from HybridNeuroLib.physics import (GrowthParameters, ImagingThresholds, Seed, SolverSettings, TissueMaps,
                                    simulate)
from HybridNeuroLib.physics.solvers import METHODS

REPORT_NAME = "simulation.json"
MAX_SIMULATION_DAYS = 1826  # 5 years, without --allow-long-horizon


def output_paths(out: Path, days: list[float]) -> list[Path]:
    """The report, then (density, labels) of each day."""
    return [out / REPORT_NAME] + [path for day in days for path in day_image_paths(out, day)]


def register(subparsers) -> None:
    parser = subparsers.add_parser("simulate", help="simulate glioma growth from a seed on tissue maps",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--tissue", required=True, type=Path, help="folder with gm, wm, csf probability maps")
    parser.add_argument("--seed-ras", required=True, type=float, nargs=3, metavar=("X", "Y", "Z"),
                        help="seed centre in RAS millimetres (Slicer coordinates)")
    parser.add_argument("--seed-radius", type=float, default=5.0, metavar="MM",
                        help="seed half-maximum radius in mm")
    parser.add_argument("--dw", required=True, type=float, metavar="MM2_PER_DAY",
                        help="white-matter diffusivity in mm²/day (literature 0.02–1.5)")
    parser.add_argument("--rho", required=True, type=float, metavar="PER_DAY",
                        help="proliferation rate in 1/day (literature 0.005–0.2)")
    parser.add_argument("--days", required=True, type=float, nargs="+", metavar="D", help="output days")
    parser.add_argument("--allow-long-horizon", action="store_true",
                        help=f"allow output days beyond {MAX_SIMULATION_DAYS} (5 years)")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder (new or empty; never inside or around the tissue folder)")
    parser.add_argument("--wm-to-gm-ratio", type=float, default=10.0, help="r in D = D_w·(p_wm + p_gm/r)")
    parser.add_argument("--tissue-threshold", type=float, default=0.1,
                        help="minimum p_wm + p_gm of a voxel tumour cells can occupy")
    parser.add_argument("--solver", choices=METHODS, default="rkl2", help="time integrator")
    parser.add_argument("--max-step", type=float, default=None, metavar="DAYS",
                        help="Euler step cap / RKL2 splitting step (default: the stability limit / ρ·Δt ≤ 0.5, ≤ 50 days)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even when CUDA is available")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier HybridNeuro output folder (only if it holds nothing else)")
    parser.set_defaults(func=run)


def check_days(days: list[float], allow_long_horizon: bool) -> list[float]:
    """Output days, sorted and unique: finite, ≥ 0, and ≤ 5 years unless allowed."""
    bad = next((d for d in days if not math.isfinite(d) or d < 0), None)
    if bad is not None:
        raise ValueError(f"--days: {bad} is not a day since the seed; give finite days ≥ 0, e.g. --days 60 120")
    days = sorted(set(days))
    if days[-1] > MAX_SIMULATION_DAYS and not allow_long_horizon:
        raise ValueError(f"--days: day {days[-1]:g} is more than {MAX_SIMULATION_DAYS} days (5 years) ahead; "
                         "pass --allow-long-horizon to simulate that far anyway")
    return days


def run(args: argparse.Namespace) -> int:
    days = check_days(args.days, args.allow_long_horizon)
    tissue_dir = args.tissue.resolve()
    parameters = GrowthParameters(args.dw, args.rho, args.wm_to_gm_ratio, args.tissue_threshold)
    seed = Seed(tuple(args.seed_ras), args.seed_radius)
    solver = SolverSettings(args.solver, args.max_step)
    with staged_output(args.out, inputs=[tissue_dir], overwrite=args.overwrite, command="simulate") as staging:
        tissue = TissueMaps.read(tissue_dir)
        result = simulate(tissue, seed, parameters, days, solver=solver, thresholds=ImagingThresholds(),
                          device=pick_device(args.cpu))
        paths = output_paths(staging, days)
        for day, density, labels in zip(days, result.density, result.labels):
            density_path, seg_path = day_image_paths(staging, day)
            write_image(density, density_path)
            write_image(labels, seg_path)
        report = {"command": "simulate", "tissue": str(tissue_dir), **result.report(),
                  "outputs": [path.name for path in paths[1:]]}
        paths[0].write_text(json.dumps(report, indent=2) + "\n")
    out = args.out.resolve()
    print(f"wrote {len(days)} day(s) to {out} ({result.stats.method}, {result.stats.steps} steps, "
          f"{result.stats.rhs_evaluations} right-hand-side evaluations, {result.wall_time_s:.1f} s)")
    return 0
