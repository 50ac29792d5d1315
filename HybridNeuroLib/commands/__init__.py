"""The ``hybridneuro`` sub-commands, one module each (see :mod:`HybridNeuroLib.cli`), and the options they share.

    >>> import argparse
    >>> from HybridNeuroLib.commands import add_forecast_days_options
    >>> parser = argparse.ArgumentParser(); add_forecast_days_options(parser)
    >>> parser.parse_args(["--days", "180", "240"]).days
    [180.0, 240.0]
"""

from __future__ import annotations

import argparse


def add_forecast_days_options(parser: argparse.ArgumentParser) -> None:
    """``--days`` and ``--allow-long-horizon`` (checked by :func:`HybridNeuroLib.pipeline.forecast_days`)."""
    parser.add_argument("--days", type=float, nargs="+", metavar="D",
                        help="study days to forecast (default: the study's predict_days)")
    parser.add_argument("--allow-long-horizon", action="store_true",
                        help="allow days more than 5 years after the last scan")
