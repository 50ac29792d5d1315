"""Agreement between lesion masks: the evaluation measures of the field.

    >>> import numpy as np
    >>> from HybridNeuroLib.metrics import dice
    >>> a = np.zeros((4, 4, 4), bool); a[:2] = True
    >>> b = np.zeros((4, 4, 4), bool); b[1:3] = True
    >>> dice(a, b)
    0.5
"""

from __future__ import annotations

import numpy as np


def dice(predicted: np.ndarray, observed: np.ndarray) -> float:
    """Dice overlap 2|A∩B|/(|A|+|B|) of two boolean masks; 1.0 when both are empty."""
    predicted, observed = np.asarray(predicted, bool), np.asarray(observed, bool)
    if predicted.shape != observed.shape:
        raise ValueError(f"masks differ in shape: {predicted.shape} vs {observed.shape}")
    total = np.count_nonzero(predicted) + np.count_nonzero(observed)
    return 1.0 if total == 0 else float(2.0 * np.count_nonzero(predicted & observed) / total)
