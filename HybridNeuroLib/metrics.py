"""Agreement between lesion masks: the evaluation measures of the field.

    >>> import numpy as np
    >>> from HybridNeuroLib.metrics import dice
    >>> a = np.zeros((4, 4, 4), bool); a[:2] = True
    >>> b = np.zeros((4, 4, 4), bool); b[1:3] = True
    >>> dice(a, b)
    0.5
"""

from __future__ import annotations

import warnings

import numpy as np


def dice(predicted: np.ndarray, observed: np.ndarray) -> float:
    """Dice overlap 2|A∩B|/(|A|+|B|) of two boolean masks; 1.0 when both are empty."""
    predicted, observed = np.asarray(predicted, bool), np.asarray(observed, bool)
    if predicted.shape != observed.shape:
        raise ValueError(f"masks differ in shape: {predicted.shape} vs {observed.shape}")
    total = np.count_nonzero(predicted) + np.count_nonzero(observed)
    return 1.0 if total == 0 else float(2.0 * np.count_nonzero(predicted & observed) / total)


def hd95_mm(predicted: np.ndarray, observed: np.ndarray, spacing_kji_mm) -> float:
    """95th-percentile symmetric Hausdorff distance between mask surfaces, in mm (MONAI's implementation).

        >>> a = np.zeros((9, 9, 9), bool); a[2:7, 2:7, 2:7] = True
        >>> b = np.zeros((9, 9, 9), bool); b[2:7, 2:7, 3:8] = True
        >>> hd95_mm(a, b, (1.0, 1.0, 2.0))
        2.0

    0 when both masks are empty, ``inf`` when exactly one is (nothing to match).
    """
    from monai.metrics import compute_hausdorff_distance

    predicted, observed = np.asarray(predicted, bool), np.asarray(observed, bool)
    if predicted.shape != observed.shape:
        raise ValueError(f"masks differ in shape: {predicted.shape} vs {observed.shape}")
    if not predicted.any() and not observed.any():
        return 0.0
    if not predicted.any() or not observed.any():
        return float("inf")
    as_batch = lambda mask: np.stack([~mask, mask])[None].astype(np.float32)  # noqa: E731  [B, C, k, j, i]
    with warnings.catch_warnings():  # MONAI 1.6 warns about its own internal use of a deprecated argument
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy", category=FutureWarning)
        distance = compute_hausdorff_distance(as_batch(predicted), as_batch(observed), percentile=95,
                                              spacing=[float(s) for s in spacing_kji_mm])
    return float(distance.item())
