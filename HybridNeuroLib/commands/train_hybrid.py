"""``hybridneuro train-hybrid``: train a model's population component on a synthetic training cohort.

    $ hybridneuro train-hybrid parallel --subjects 24 --out trained/parallel

Cases come from :func:`HybridNeuroLib.hybrid.cohort.training_seeds` (never the evaluation
seeds). The folder receives the component (``model.json`` + ``tensors.pt``) and its
``MODEL_CARD.md``; the shipped components in ``HybridNeuroLib/hybrid/models/<name>/`` were
made by this command with the arguments recorded in their model cards.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from HybridNeuroLib.hybrid import model_class, model_names
from HybridNeuroLib.outputs import staged_output


def register(subparsers) -> None:
    parser = subparsers.add_parser("train-hybrid", help="train a hybrid model's population component",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("model", choices=model_names(), help="model whose population component to train")
    parser.add_argument("--out", required=True, type=Path, help="output folder (new or empty)")
    parser.add_argument("--subjects", type=int, default=24, help="synthetic training subjects")
    parser.add_argument("--seed", type=int, default=0, help="random seed (training is reproducible on CPU)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier HybridNeuro output folder (only if it holds nothing else)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.subjects < 1:
        raise ValueError(f"--subjects must be ≥ 1, got {args.subjects}")
    with staged_output(args.out, overwrite=args.overwrite, command="train-hybrid") as staging:
        path = model_class(args.model).train_population(staging, subjects=args.subjects, seed=args.seed)
    print(f"wrote {args.out.resolve() / path.relative_to(staging)}")
    return 0
