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
import contextlib
import signal
import sys
import threading
from typing import Iterator

from HybridNeuroLib import __version__
from HybridNeuroLib.progress import Progress

COMMAND_MODULES = ("demo", "simulate", "synth", "fit", "predict", "treat", "run", "segment", "train_seg",
                   "train_hybrid")
#: errors that are the user's to fix: one line naming the file, field or option, exit code 2, no traceback
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
               PermissionError)
INSTALL_HINT = ("install it from the HybridNeuro module panel in 3D Slicer (Dependencies), or in a checkout "
                "run `make setup` (pinned versions in pyproject.toml)")


class Terminated(KeyboardInterrupt):
    """SIGTERM (a cancel from the Slicer module; CTRL+BREAK on Windows), raised like Ctrl-C so every clean-up runs."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM (and Windows' SIGBREAK) into :class:`Terminated` for the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated(signum)

    signals = [signal.SIGTERM] + ([signal.SIGBREAK] if hasattr(signal, "SIGBREAK") else [])
    previous = {signum: signal.signal(signum, stop) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def missing_package(error: ImportError) -> str | None:
    """The third-party package an ImportError says is missing; None for a broken import of this engine (a bug)."""
    name = (getattr(error, "name", None) or "").split(".")[0]
    return None if not name or name == "HybridNeuroLib" else name


def missing_package_message(error: ImportError) -> str:
    return f"missing package {missing_package(error)!r} ({error}); {INSTALL_HINT}"


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
    """Run one command; user errors, missing packages and interrupts end in one line on stderr, never a traceback."""
    try:
        parser = build_parser()
    except ImportError as error:
        if missing_package(error) is None:
            raise  # the engine itself is broken: a traceback is what a developer needs
        print(f"hybridneuro: error: {missing_package_message(error)}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    Progress.machine_lines_default = args.progress_lines
    with sigterm_as_interrupt():
        try:
            return int(args.func(args) or 0)
        except KeyboardInterrupt as stop:
            out = getattr(args, "out", None)
            print(f"hybridneuro {args.command}: interrupted; nothing was written to {out}" if out is not None else
                  f"hybridneuro {args.command}: interrupted", file=sys.stderr)
            return 128 + (int(stop.args[0]) if isinstance(stop, Terminated) else signal.SIGINT)
        except ImportError as error:
            if missing_package(error) is None:
                raise
            print(f"hybridneuro {args.command}: error: {missing_package_message(error)}", file=sys.stderr)
            return 2
        except USER_ERRORS as error:
            print(f"hybridneuro {args.command}: error: {error}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
