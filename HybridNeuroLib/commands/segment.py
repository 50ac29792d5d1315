"""``hybridneuro segment``: BraTS lesion labels for every timepoint of a study.

    $ hybridneuro segment my-study --out my-study-seg                        # the shipped synthetic-data model
    $ hybridneuro segment my-study --out seg --bundle ~/bundles/brats_mri_segmentation --tta

Writes ``seg_<tpid>.nii.gz`` and per-label masks into OUT (never into the study folder; nothing
is written unless every timepoint succeeded). The default model was trained on SYNTHETIC data
only; for real scans use a MONAI bundle you downloaded (``--bundle``) or a model folder
trained with ``hybridneuro train-seg`` (``--model``). A bundle's configs can run code: give
only bundle folders you trust.
"""

from __future__ import annotations

import argparse

from HybridNeuroLib.progress import Progress


def register(subparsers) -> None:
    parser = subparsers.add_parser("segment", help="segment lesions in every timepoint of a study",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("study", help="study folder (hybridneuro-study/1)")
    parser.add_argument("--out", required=True, help="output folder (new or empty; outside the study and model)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="model folder from `hybridneuro train-seg` (default: the shipped model)")
    source.add_argument("--bundle", help="local MONAI Model Zoo bundle folder you trust (its configs run code)")
    parser.add_argument("--bundle-spacing-mm", type=float, default=1.0, help="voxel size the bundle expects (1)")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation by flips (4× slower)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even when CUDA is available")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier HybridNeuro output folder (only if it holds nothing else)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from HybridNeuroLib.segment.bundle import SECURITY_NOTE, load_bundle
    from HybridNeuroLib.segment.model import default_model, load_model_folder
    from HybridNeuroLib.outputs import check_output_folder
    from HybridNeuroLib.segment.studies import segment_study

    model_folder = args.bundle or args.model
    check_output_folder(args.out, inputs=[args.study, model_folder], overwrite=args.overwrite)  # before any work
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}")
        import torch
        torch.set_num_threads(args.threads)
    if args.bundle:
        print(f"note: {SECURITY_NOTE}")
        model = load_bundle(args.bundle, spacing_mm=(args.bundle_spacing_mm,) * 3)
    elif args.model:
        model = load_model_folder(args.model)
    else:
        print("note: the default model was trained on synthetic data only; it is not a clinical model")
        model = default_model()
    with Progress("segment", total=100, unit="%") as progress:
        def advance(done: int, total: int) -> None:
            progress.advance(100.0 * done / total - progress.done)
        written = segment_study(args.study, args.out, model, model_folder=model_folder, force_cpu=args.cpu,
                                tta=args.tta, overwrite=args.overwrite, on_timepoint=advance)
    print(f"{len(written)} files in {args.out}")
    return 0
