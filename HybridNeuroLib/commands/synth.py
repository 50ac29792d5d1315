"""``hybridneuro synth``: synthetic longitudinal glioma subjects (one, or a cohort) with ground truth.

    $ hybridneuro synth --out synthetic --seed 7                  # one subject: synthetic/{study,truth}
    $ hybridneuro synth --out cohort --n 20 --days 0 60 120 --predict-days 180 240

Refuses to overwrite existing outputs unless ``--overwrite``. See ``HybridNeuroLib.synth``.
"""

from __future__ import annotations

import argparse

from HybridNeuroLib.progress import Progress


def register(subparsers) -> None:
    parser = subparsers.add_parser("synth", help="generate synthetic longitudinal subjects with ground truth",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed → identical files)")
    parser.add_argument("--n", type=int, default=None,
                        help="cohort size: write N subjects to OUT/subject-<i> (default: one subject in OUT)")
    parser.add_argument("--days", type=float, nargs="+", default=[0, 60, 120],
                        help="observed days, starting at 0 (default: 0 60 120)")
    parser.add_argument("--predict-days", type=float, nargs="*", default=[180],
                        help="future days with truth only (default: 180)")
    parser.add_argument("--voxel-mm", type=int, default=2, help="grid spacing in whole mm (default 2)")
    parser.add_argument("--no-tissue", action="store_true", help="leave the tissue maps out of the study folder")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from HybridNeuroLib.synth import generate_cohort, generate_subject

    options = dict(days=args.days, predict_days=args.predict_days, voxel_mm=args.voxel_mm,
                   include_tissue=not args.no_tissue, overwrite=args.overwrite)
    if args.n is None:
        with Progress("synth", total=100, unit="%") as progress:
            def report(stage: str, fraction: float) -> None:
                progress.advance(max(0.0, 100.0 * fraction - progress.done))
            subject = generate_subject(args.seed, args.out, on_progress=report, **options)
        print(f"study: {subject.study_folder}\ntruth: {subject.truth_folder}")
        return 0
    with Progress("synth", total=args.n, unit="subject") as progress:
        subjects = generate_cohort(args.n, args.out, seed=args.seed,
                                   on_subject=lambda done, total: progress.advance(), **options)
    print(f"{len(subjects)} subjects in {args.out}")
    return 0
