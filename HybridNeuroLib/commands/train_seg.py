"""``hybridneuro train-seg``: train or fine-tune a lesion segmentation network on study folders.

    $ hybridneuro synth --out cohort --n 16 --no-tissue
    $ hybridneuro train-seg cohort --out my-model --epochs 20
    $ hybridneuro train-seg cohort --out my-model --epochs 30 --resume      # continue after epoch 20

DATA is a folder holding study folders (any depth; every timepoint with a ``seg`` image is a
case) or BraTS case folders (``BraTS-GLI-00000-000/BraTS-GLI-00000-000-t1n.nii.gz`` … ``-seg``,
or the BraTS 2021 names; see ``HybridNeuroLib.segment.brats``), or both. OUT becomes a model
folder (``model.pt`` + ``model.json``, the best validation epoch) with ``checkpoint.pt`` for
``--resume``. Unlike the other commands it is written in place, epoch by epoch, each file replaced
atomically, so that an interrupted training can be resumed; OUT must be new or empty (or, with
``--resume``, a folder holding ``checkpoint.pt``) and apart from DATA. See ``HybridNeuroLib.segment.training``.
"""

from __future__ import annotations

import argparse

from HybridNeuroLib.progress import Progress


def register(subparsers) -> None:
    parser = subparsers.add_parser("train-seg", help="train a lesion segmentation network on study folders",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("data", help="folder of study folders and/or BraTS-layout case folders")
    parser.add_argument("--out", required=True, help="output model folder")
    parser.add_argument("--epochs", type=int, default=15, help="epochs (default 15)")
    parser.add_argument("--steps-per-epoch", type=int, default=80, help="training steps per epoch (default 80)")
    parser.add_argument("--batch-size", type=int, default=2, help="patches per step (default 2)")
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="Adam learning rate (default 3e-3)")
    parser.add_argument("--spacing-mm", type=float, default=2.0, help="model voxel size in mm (default 2)")
    parser.add_argument("--roi", type=int, default=48, help="patch / window edge in voxels (default 48)")
    parser.add_argument("--channels", type=int, nargs="+", default=[8, 16, 32, 64],
                        help="UNet feature channels per level (default 8 16 32 64)")
    parser.add_argument("--contrasts", nargs="+", default=["t1n", "t1c", "t2w", "t2f"],
                        help="input contrasts in order (default t1n t1c t2w t2f)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (split, initialisation, patches)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even when CUDA is available")
    parser.set_defaults(func=run)


def check_new_model_folder(out: str, data: str, resume: bool) -> None:
    """OUT apart from DATA, and new or empty — or, with ``resume``, a folder holding a checkpoint."""
    from HybridNeuroLib.outputs import check_apart_from_inputs, check_output_folder
    from HybridNeuroLib.segment.training import CHECKPOINT

    folder = check_apart_from_inputs(out, [data])
    if resume:
        return
    if (folder / CHECKPOINT).is_file():
        raise FileExistsError(f"{folder} holds a training checkpoint ({CHECKPOINT}): continue that training with "
                              "--resume, or choose a new output folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise FileExistsError(f"output folder {folder} exists and is not empty; choose a new output folder")
    check_output_folder(folder)  # not a file, nor under one


def run(args: argparse.Namespace) -> int:
    import torch

    from HybridNeuroLib.device import pick_device
    from HybridNeuroLib.segment.training import TrainConfig, collect_cases, train_segmentation

    check_new_model_folder(args.out, args.data, args.resume)  # before any work

    for name in ("epochs", "steps_per_epoch", "batch_size", "roi"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if not args.learning_rate > 0 or not args.spacing_mm > 0:
        raise ValueError("--learning-rate and --spacing-mm must be positive")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig(contrasts=tuple(args.contrasts), spacing_mm=(args.spacing_mm,) * 3, roi_size=(args.roi,) * 3,
                         channels=tuple(args.channels), epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                         batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed)
    cases = collect_cases(args.data, config.contrasts)
    device = pick_device(force_cpu=args.cpu)
    print(f"train-seg: {len(cases)} cases, device {device}")
    with Progress("train-seg", total=config.epochs * config.steps_per_epoch, unit="step") as progress:
        state = train_segmentation(cases, args.out, config, device=device, resume=args.resume,
                                   on_step=lambda done, total: progress.advance(done - progress.done))
    print(f"best validation whole-tumour Dice {state['best_whole_tumor_dice']:.4f}; model folder {args.out}")
    return 0
