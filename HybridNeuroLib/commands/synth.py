"""``hybridneuro synth``: synthetic longitudinal glioma subjects (one, or a cohort) with ground truth.

    $ hybridneuro synth --out synthetic --seed 7                  # one subject: synthetic/{study,truth}
    $ hybridneuro synth --out cohort --n 20 --days 0 60 120 --predict-days 180 240

OUT must be new or empty (``--overwrite``: an earlier HybridNeuro output, replaced as a whole); it
appears only once every subject is written. See ``HybridNeuroLib.synth``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from HybridNeuroLib.progress import Progress


def register(subparsers) -> None:
    parser = subparsers.add_parser("synth", help="generate synthetic longitudinal subjects with ground truth",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder (new or empty)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed → identical files)")
    parser.add_argument("--n", type=int, default=None,
                        help="cohort size: write N subjects to OUT/subject-<i> (default: one subject in OUT)")
    parser.add_argument("--days", type=float, nargs="+", default=[0, 60, 120],
                        help="observed days, starting at 0 (default: 0 60 120)")
    parser.add_argument("--predict-days", type=float, nargs="*", default=[180],
                        help="future days with truth only (default: 180)")
    parser.add_argument("--voxel-mm", type=int, default=2, help="grid spacing in whole mm (default 2)")
    parser.add_argument("--no-tissue", action="store_true", help="leave the tissue maps out of the study folder")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier HybridNeuro output folder (only if it holds nothing else)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from HybridNeuroLib.outputs import staged_output
    from HybridNeuroLib.synth import generate_cohort, generate_subject

    if args.n is not None and not 1 <= args.n <= 10_000:
        raise ValueError(f"--n is the number of subjects, 1–10000; got {args.n}")
    if not 1 <= args.voxel_mm <= 8:
        raise ValueError(f"--voxel-mm must be a whole number of mm in 1–8 (the atlas is 1 mm), got {args.voxel_mm}")
    options = dict(days=args.days, predict_days=args.predict_days, voxel_mm=args.voxel_mm,
                   include_tissue=not args.no_tissue, overwrite=True)  # into the new, empty staging folder
    out = args.out.resolve()
    with staged_output(out, overwrite=args.overwrite, command="synth") as staging:
        if args.n is None:
            with Progress("synth", total=100, unit="%") as progress:
                def report(stage: str, fraction: float) -> None:
                    progress.advance(max(0.0, 100.0 * fraction - progress.done))
                subject = generate_subject(args.seed, staging, on_progress=report, **options)
            folders = [subject.study_folder.relative_to(staging), subject.truth_folder.relative_to(staging)]
        else:
            with Progress("synth", total=args.n, unit="subject") as progress:
                subjects = generate_cohort(args.n, staging, seed=args.seed,
                                           on_subject=lambda done, total: progress.advance(), **options)
    if args.n is None:
        print(f"study: {out / folders[0]}\ntruth: {out / folders[1]}")
    else:
        print(f"{len(subjects)} subjects in {out}")
    return 0
