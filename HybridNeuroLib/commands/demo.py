"""``hybridneuro demo``: the main job on the embedded sample case (what ``make demo`` runs).

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
    print("\nWhole-lesion volume (mL) and Dice of the forecast against the reference:")
    for row in result.rows:
        reference = (f"{row['reference']} {row['reference_ml']:6.1f} mL, Dice {row['dice_whole_lesion']:.2f}"
                     if "reference" in row else "no reference")
        print(f"  day {row['day']:>5g} ({row['kind']:>9}): forecast {row['predicted_ml']:6.1f} mL | {reference}")
    print(f"\nWrote {len(result.files)} files to {result.out}:")
    for path in result.files:
        print(f"  {path.name}")
    print(f"Open {result.out / 'hybridneuro-demo.mrb'} in 3D Slicer (File > Open) to browse the days; "
          f"done in {result.report['wall_time_s']:.0f} s.")
    return 0
