"""Choice of the torch device: CUDA when present, CPU otherwise.

    >>> from HybridNeuroLib.device import pick_device
    >>> pick_device(force_cpu=True).type
    'cpu'
"""

import torch


def pick_device(force_cpu: bool = False) -> torch.device:
    """Return ``cuda`` when a CUDA device is usable and ``force_cpu`` is False, else ``cpu``."""
    if not force_cpu and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")
