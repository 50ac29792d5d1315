"""``hybridneuro demo``: the main job on the embedded sample anatomy (what ``make demo`` runs).

    $ hybridneuro demo --out hybridneuro-demo

See :mod:`HybridNeuroLib.demo` for what it computes and writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from HybridNeuroLib.demo import DemoSettings, run_demo

DEFAULTS = DemoSettings()


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="simulate glioma growth on a real brain atlas; write images, "
                                   "figures, a report and a Slicer scene",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("hybridneuro-demo"), help="output folder")
    parser.add_argument("--voxel-mm", type=int, default=DEFAULTS.voxel_mm, help="grid spacing in mm (1 = full atlas)")
    parser.add_argument("--days", type=float, nargs="+", default=list(DEFAULTS.days), help="days to predict")
    parser.add_argument("--dw", type=float, default=DEFAULTS.dw_mm2_per_day, metavar="MM2_PER_DAY",
                        help="white-matter diffusivity D_w in mm²/day")
    parser.add_argument("--rho", type=float, default=DEFAULTS.rho_per_day, metavar="PER_DAY",
                        help="proliferation rate ρ in 1/day")
    parser.add_argument("--overwrite", action="store_true", help="replace the results of an earlier demo run")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = DemoSettings(voxel_mm=args.voxel_mm, days=tuple(args.days), dw_mm2_per_day=args.dw,
                            rho_per_day=args.rho)
    result = run_demo(args.out, settings, overwrite=args.overwrite, log=print)
    print("\nLesion volume (mL) by day:")
    for day, volumes in result.volumes_ml.items():
        parts = ", ".join(f"{name} {volume:.1f}" for name, volume in volumes.items())
        print(f"  day {day:>5g}: {parts}")
    print(f"\nWrote {len(result.files)} files to {result.out}:")
    for path in result.files:
        print(f"  {path.name}")
    print(f"Open {result.out / 'hybridneuro-demo.mrb'} in 3D Slicer (File > Open) to browse the days; "
          f"done in {result.report['wall_time_s']:.0f} s.")
    return 0
