"""The ``hybridneuro`` command line: one sub-command per module in ``HybridNeuroLib.commands``.

    $ hybridneuro --help
    $ hybridneuro demo --out hybridneuro-demo

Each command module defines ``register(subparsers)``, which adds its parser and sets
``func`` to a function taking the parsed arguments and returning an exit code.
The same functions are plain Python calls for console users; the Slicer module runs
this CLI in a background process with ``--progress-lines``.
"""

from __future__ import annotations

import argparse
import sys

from HybridNeuroLib import __version__
from HybridNeuroLib.progress import Progress

COMMAND_MODULES = ("demo", "simulate", "synth", "fit", "predict", "treat", "run", "segment", "train_seg",
                   "train_hybrid")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="hybridneuro",
                                     description="Hybrid physics–neural models of brain lesion progression.")
    parser.add_argument("--version", action="version", version=f"hybridneuro {__version__}")
    parser.add_argument("--progress-lines", action="store_true",
                        help="also print machine-readable progress lines on stdout (used by the Slicer module)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"HybridNeuroLib.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    Progress.machine_lines_default = args.progress_lines
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        # user errors: one clear line, no traceback
        print(f"hybridneuro {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
