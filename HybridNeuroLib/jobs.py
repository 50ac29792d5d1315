"""Long computations in a child process running the ``hybridneuro`` CLI: progress, log, cancel.

    >>> import sys, tempfile, time
    >>> from HybridNeuroLib.jobs import CliJob
    >>> job = CliJob(["--version"])
    >>> job.start()
    >>> job.wait(timeout_s=120)
    0
    >>> job.lines[-1].startswith("hybridneuro ")
    True

This is how the Slicer module keeps its GUI responsive: it starts a job with Slicer's own
Python (``PythonSlicer``) and calls :meth:`CliJob.poll` from a timer; ``poll`` never blocks,
hands each progress record (see :mod:`HybridNeuroLib.progress`) to ``on_progress`` and each
other line to ``on_line``, in the caller's thread. :meth:`CliJob.cancel` ends the whole
process tree.

Results appear atomically: given ``out``, the command writes into a hidden staging folder
beside it, which becomes ``out`` only when the command succeeds; on failure or cancel the
staging folder is deleted, so a half-written folder is never presented as a result. The
arguments are passed as a list (never a shell string), so user-supplied paths cannot
inject commands.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

from HybridNeuroLib.progress import parse_progress_line

CANCEL_GRACE_S = 10.0  # Windows: seconds between CTRL+BREAK and a forced kill of the process tree


class CliJob:
    """One ``hybridneuro`` command in a child process.

    ``arguments`` are the CLI arguments after ``hybridneuro`` (``--progress-lines`` is added);
    ``out``, if given, is appended as ``--out <staging folder>`` and published on success.
    """

    def __init__(self, arguments: Sequence[str], *, out: str | os.PathLike | None = None,
                 python: str = sys.executable,
                 on_progress: Callable[[dict], None] | None = None,
                 on_line: Callable[[str], None] | None = None,
                 environment: dict[str, str] | None = None):
        self.out = Path(out).resolve() if out is not None else None
        if self.out is not None and self.out.exists():
            raise FileExistsError(f"{self.out} exists; choose a new output folder for this job")
        self.staging = (self.out.with_name(f".{self.out.name}.partial-{os.getpid()}-{id(self)}")
                        if self.out is not None else None)
        self.arguments = [str(argument) for argument in arguments]
        self.command = [python, "-m", "HybridNeuroLib.cli", "--progress-lines", *self.arguments]
        if self.staging is not None:
            self.command += ["--out", str(self.staging)]
        self.on_progress, self.on_line = on_progress, on_line
        self.environment = environment
        self.lines: list[str] = []
        self.progress: dict | None = None
        self.returncode: int | None = None
        self.cancelled = False
        self._process: subprocess.Popen | None = None
        self._queue: queue.Queue[str | None] = queue.Queue()

    # -- running ----------------------------------------------------------------
    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("the job was already started")
        environment = dict(os.environ if self.environment is None else self.environment)
        environment["PYTHONUNBUFFERED"] = "1"  # lines arrive as they are printed
        # own process group, so that a cancel reaches its children; on Windows no console window either
        group = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW}
                 if os.name == "nt" else {"start_new_session": True})
        self._process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, text=True, encoding="utf-8",
                                         errors="replace", env=environment, **group)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._process.stdout:  # one reader thread; the caller's thread handles the lines
            self._queue.put(line.rstrip("\r\n"))
        self._queue.put(None)

    def poll(self) -> int | None:
        """Handle the lines printed so far; the exit code once the job has ended and all output is read."""
        if self._process is None:
            raise RuntimeError("start the job first")
        if self.returncode is not None:
            return self.returncode
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return None
            if line is None:
                return self._finish(self._process.wait())
            self._handle(line)

    def wait(self, timeout_s: float | None = None, poll_interval_s: float = 0.1) -> int:
        """Block until the job ends (cancelling it after ``timeout_s``); returns the exit code."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
            time.sleep(poll_interval_s)
        return code

    def cancel(self) -> None:
        """Stop the command and everything it started; the staging folder is removed when it has exited."""
        if self._process is None or self._process.poll() is not None:
            return
        self.cancelled = True
        if os.name != "nt":
            os.killpg(self._process.pid, signal.SIGTERM)  # the CLI cleans up its staging folder and exits
            return
        # Windows: CTRL+BREAK lets the CLI clean up as on SIGTERM; whatever still runs after a grace period is killed
        with contextlib.suppress(OSError):
            self._process.send_signal(signal.CTRL_BREAK_EVENT)
        try:
            self._process.wait(timeout=CANCEL_GRACE_S)
        except subprocess.TimeoutExpired:
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(self._process.pid)], capture_output=True)

    # -- results ----------------------------------------------------------------
    def _handle(self, line: str) -> None:
        record = parse_progress_line(line)
        if record is not None:
            self.progress = record
            if self.on_progress is not None:
                self.on_progress(record)
            return
        self.lines.append(line)
        if self.on_line is not None:
            self.on_line(line)

    def _finish(self, code: int) -> int:
        if self.returncode is None:
            self.returncode = code
            if self.staging is not None:
                if code == 0 and not self.cancelled and self.staging.is_dir():
                    self.staging.rename(self.out)
                else:
                    shutil.rmtree(self.staging, ignore_errors=True)
        return self.returncode

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and not self.cancelled

    def error_message(self) -> str:
        """What went wrong, for the user: the command's last lines (its error message comes last)."""
        if self.cancelled:
            return "cancelled; no result was kept"
        tail = "\n".join(line for line in self.lines[-5:] if line.strip())
        name = " ".join(["hybridneuro", *self.arguments[:1]])
        return f"{name} failed (exit code {self.returncode}):\n{tail}"
