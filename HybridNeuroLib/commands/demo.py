"""``hybridneuro demo``: the main job on the embedded sample case (what ``make demo`` runs).

Population forecast vs personalised fit, scored against observed and (synthetic) true lesions.

    $ hybridneuro demo --out hybridneuro-demo

See :mod:`HybridNeuroLib.demo` for what it computes and writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from HybridNeuroLib.demo import DemoSettings, run_demo

DEFAULTS = DemoSettings()


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="forecast glioma growth on the embedded sample case; write "
                                   "images, figures, a report and a Slicer scene",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("hybridneuro-demo"), help="output folder")
    parser.add_argument("--sample-voxel-mm", type=int, choices=(2, 4), default=DEFAULTS.sample_voxel_mm,
                        help="grid of the sample case (4 = coarse quick check)")
    parser.add_argument("--dw", type=float, default=DEFAULTS.dw_mm2_per_day, metavar="MM2_PER_DAY",
                        help="white-matter diffusivity D_w in mm²/day")
    parser.add_argument("--rho", type=float, default=DEFAULTS.rho_per_day, metavar="PER_DAY",
                        help="proliferation rate ρ in 1/day")
    parser.add_argument("--overwrite", action="store_true", help="replace the results of an earlier demo run")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = DemoSettings(dw_mm2_per_day=args.dw, rho_per_day=args.rho, sample_voxel_mm=args.sample_voxel_mm)
    result = run_demo(args.out, settings, overwrite=args.overwrite, log=print)
    print("\nWhole lesion: volume (mL) and Dice against the observed lesion (days the study has) or the\n"
          "synthetic ground truth (future days) — population forecast vs personalised fit:")
    print(f"  {'day':>5}  {'':9}  {'reference':>9}  {'population':>17}  {'personalised':>17}")
    for row in result.rows:
        if "reference" not in row:
            continue
        print(f"  {row['day']:>5g}  {row['kind']:9}  {row['reference_ml']:6.1f} mL  "
              f"{row['population_ml']:6.1f} mL  {row['dice_population']:.2f}  "
              f"{row['fitted_ml']:6.1f} mL  {row['dice_fitted']:.2f}")
    print(f"\nWrote {len(result.files)} files to {result.out}:")
    for path in result.files:
        print(f"  {path.relative_to(result.out)}")
    print(f"Open {result.out / 'hybridneuro-demo.mrb'} in 3D Slicer (File > Open) to browse the days; "
          f"done in {result.report['wall_time_s']:.0f} s.")
    return 0
