"""Progress reporting for long computations: a bar for people, lines for programs.

    >>> from HybridNeuroLib.progress import Progress
    >>> with Progress("simulate", total=3, enabled=False) as progress:
    ...     for _ in range(3):
    ...         progress.advance()

With ``machine_lines=True`` every update also prints one line to stdout::

    HYBRIDNEURO-PROGRESS {"step": "simulate", "done": 2, "total": 3, "fraction": 0.6667}

The Slicer module runs the CLI in a background process and parses these lines
(:func:`parse_progress_line`) to drive its progress bar.
"""

from __future__ import annotations

import json
import sys
from typing import Callable

from tqdm import tqdm

PROGRESS_PREFIX = "HYBRIDNEURO-PROGRESS "


def format_progress_line(step: str, done: float, total: float) -> str:
    fraction = 0.0 if total <= 0 else min(1.0, done / total)
    return PROGRESS_PREFIX + json.dumps(
        {"step": step, "done": round(done, 4), "total": total, "fraction": round(fraction, 4)})


def parse_progress_line(line: str) -> dict | None:
    """The progress record of a machine progress line, or None for any other line."""
    if not line.startswith(PROGRESS_PREFIX):
        return None
    try:
        record = json.loads(line[len(PROGRESS_PREFIX):])
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and "step" in record else None


class Progress:
    """Progress of one step: tqdm bar on stderr, optional machine lines, optional callback.

    ``callback(step, fraction)`` lets console users and the Slicer logic observe progress.
    """

    machine_lines_default = False  # set by the CLI's --progress-lines

    def __init__(self, step: str, total: float, *, enabled: bool = True,
                 machine_lines: bool | None = None,
                 callback: Callable[[str, float], None] | None = None, unit: str = "it"):
        self.step, self.total, self.done = step, float(total), 0.0
        self.machine_lines = self.machine_lines_default if machine_lines is None else machine_lines
        self.callback = callback
        # a program reading machine lines draws its own bar: no terminal bar to garble its log
        self._bar = tqdm(total=total, desc=step, unit=unit, file=sys.stderr,
                         disable=not enabled or self.machine_lines, leave=False, dynamic_ncols=True)
        self._last_line_fraction = -1.0

    def advance(self, amount: float = 1.0) -> None:
        self.done += amount
        # float day sums can overshoot the total by an ulp; the bar must not (tqdm warns)
        self._bar.update(max(0.0, min(self.done, self.total) - self._bar.n))
        fraction = 1.0 if self.total <= 0 else min(1.0, self.done / self.total)
        if self.callback is not None:
            self.callback(self.step, fraction)
        # at most ~100 machine lines per step
        if self.machine_lines and (fraction - self._last_line_fraction >= 0.01 or fraction >= 1.0):
            self._last_line_fraction = fraction
            print(format_progress_line(self.step, self.done, self.total), flush=True)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
