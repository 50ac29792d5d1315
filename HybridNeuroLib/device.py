"""Choice of the torch device: CUDA, Apple MPS or CPU, falling back to the CPU with a message.

    >>> from HybridNeuroLib.device import pick_device, device_status
    >>> pick_device(force_cpu=True).type
    'cpu'
    >>> device_status()["cpu"]
    'available'

``pick_device`` honours, in this order: ``force_cpu``; the ``preferred`` argument; the
environment variable ``HYBRIDNEURO_DEVICE`` (``auto``, ``cuda``, ``mps`` or ``cpu``; the
Slicer module sets it for its background process); else ``auto``, which is CUDA when torch
can use it and the CPU otherwise (MPS only when asked for: the engine is tested on CPU and
CUDA). A GPU that is asked for but unusable — no GPU, or a torch build without kernels for
the GPU's compute capability (e.g. a GPU newer than the torch build) — is replaced by the
CPU, and the reason is printed once on stderr, so it appears in the Slicer module's log.

    $ python -m HybridNeuroLib.device        # one JSON line: {"cuda": "...", "mps": "...", "cpu": "available"}
"""

from __future__ import annotations

import json
import os
import sys
from functools import lru_cache

import torch

DEVICE_ENVIRONMENT = "HYBRIDNEURO_DEVICE"
DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def _cuda_problem() -> str | None:
    """Why torch cannot compute on the first CUDA device, or None when it can."""
    if not torch.cuda.is_available():
        return "no CUDA GPU visible to this torch build" + ("" if torch.version.cuda else " (a CPU-only build)")
    major, minor = torch.cuda.get_device_capability(0)
    name = torch.cuda.get_device_name(0)
    if not capability_supported((major, minor), torch.cuda.get_arch_list()):
        return (f"{name} has compute capability {major}.{minor}, which this torch build ({torch.__version__}, "
                f"kernels for {' '.join(torch.cuda.get_arch_list()) or 'none'}) does not support; install a newer "
                "torch (in Slicer: from the PyTorch Utils module)")
    return _probe_cuda(name)


def _probe_cuda(name: str) -> str | None:
    """The final word: whether a kernel runs on the GPU (None) or why not."""
    try:
        (torch.ones(2, device="cuda") * 2).sum().item()
    except Exception as error:  # RuntimeError "no kernel image…", AssertionError on CPU-only builds
        return f"{name}: a test computation failed ({(str(error).splitlines() or [type(error).__name__])[0]})"
    return None


def capability_supported(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """Whether kernels compiled for ``arch_list`` (e.g. ``['sm_80', 'sm_90', 'compute_90']``) run on ``capability``.

    A binary for sm_XY runs on devices of the same major version X and minor ≥ Y; PTX for
    compute_XY is compiled on the fly for any device of capability ≥ X.Y.

    >>> capability_supported((8, 6), ["sm_80", "sm_90"]), capability_supported((12, 0), ["sm_80", "sm_90"])
    (True, False)
    >>> capability_supported((12, 0), ["sm_90", "compute_90"])
    True
    """
    if not arch_list:  # a build that does not say (e.g. ROCm): let the test computation decide
        return True
    for arch in arch_list:
        kind, _, digits = arch.partition("_")
        if not digits.isdigit() or len(digits) < 2:
            continue
        major, minor = int(digits[:-1]), int(digits[-1])
        if kind == "sm" and major == capability[0] and minor <= capability[1]:
            return True
        if kind == "compute" and (major, minor) <= tuple(capability):
            return True
    return False


def _mps_problem() -> str | None:
    backend = getattr(torch.backends, "mps", None)
    if backend is None or not backend.is_built():
        return "this torch build has no MPS (Apple GPU) support"
    if not backend.is_available():
        return "no Apple GPU available (MPS needs macOS 12.3+ on Apple silicon)"
    return None


def device_status() -> dict[str, str]:
    """Each device choice: ``"available"`` or why it cannot be used."""
    status = {}
    for name, problem in (("cuda", _cuda_problem), ("mps", _mps_problem)):
        reason = problem()
        status[name] = "available" if reason is None else reason
    status["cpu"] = "available"
    return status


@lru_cache(maxsize=None)
def _resolved(choice: str) -> str:
    """The device type a choice resolves to on this machine; prints the reason for any fallback once."""
    if choice == "cpu":
        return "cpu"
    if choice == "mps":
        problem = _mps_problem()
        if problem is None:
            return "mps"
    else:
        problem = _cuda_problem()
        if problem is None:
            return "cuda"
        if choice == "auto" and not torch.cuda.is_available():
            return "cpu"  # no GPU and none asked for: nothing to report
    print(f"HybridNeuro: computing on the CPU instead of {choice.upper() if choice != 'auto' else 'the GPU'}: "
          f"{problem}", file=sys.stderr, flush=True)
    return "cpu"


def requested_device(preferred: str | None = None) -> str:
    """The device choice in force: ``preferred``, else ``$HYBRIDNEURO_DEVICE``, else ``auto``."""
    choice = (preferred or os.environ.get(DEVICE_ENVIRONMENT) or "auto").strip().lower()
    if choice not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {choice!r} (from {'the argument' if preferred else DEVICE_ENVIRONMENT}); "
                         f"choose one of {', '.join(DEVICE_CHOICES)}")
    return choice


def pick_device(force_cpu: bool = False, preferred: str | None = None) -> torch.device:
    """The torch device to compute on (see the module docstring)."""
    return torch.device("cpu" if force_cpu else _resolved(requested_device(preferred)))


if __name__ == "__main__":
    print(json.dumps(device_status()))
