"""BraTS labels ⇄ the MONAI Model Zoo channel convention (tumor core, whole tumor, enhancing tumor).

    >>> import numpy as np
    >>> from HybridNeuroLib.segment.channels import labels_to_channels, channels_to_labels
    >>> labels = np.array([0, 1, 2, 3], dtype=np.uint8)       # background, necrotic core, edema, enhancing
    >>> labels_to_channels(labels).astype(int).tolist()        # rows: TC, WT, ET
    [[0, 1, 0, 1], [0, 1, 1, 1], [0, 0, 0, 1]]
    >>> channels_to_labels(labels_to_channels(labels)).tolist()
    [0, 1, 2, 3]

Zoo BraTS bundles output three sigmoid channels in the order TC (labels 1 or 3), WT (labels
> 0), ET (label 3). Back to labels: WT → 2 (edema), TC → 1 (necrotic core), ET → 3; a voxel
marked ET or TC but not WT is still tumour (the inner regions win), so the conversion is exact
on consistent channels and total on any channels.
"""

from __future__ import annotations

import numpy as np

CHANNEL_NAMES: tuple[str, ...] = ("tumor core", "whole tumor", "enhancing tumor")
TC, WT, ET = 0, 1, 2


def labels_to_channels(labels: np.ndarray) -> np.ndarray:
    """Boolean array (3, *labels.shape): TC, WT, ET masks of a BraTS label array."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() > 3):
        raise ValueError(f"BraTS labels must be 0..3, got values in [{labels.min()}, {labels.max()}]")
    return np.stack([(labels == 1) | (labels == 3), labels > 0, labels == 3])


def channels_to_labels(channels: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """BraTS labels (uint8) of a (3, ...) TC/WT/ET array of probabilities or masks (≥ ``threshold`` is in)."""
    channels = np.asarray(channels)
    if channels.ndim < 1 or channels.shape[0] != 3:
        raise ValueError(f"expected 3 channels (tumor core, whole tumor, enhancing tumor), got shape {channels.shape}")
    tc, wt, et = (channels[i] >= threshold for i in (TC, WT, ET))
    labels = np.zeros(channels.shape[1:], dtype=np.uint8)
    labels[wt] = 2
    labels[tc] = 1
    labels[et] = 3
    return labels
