"""Lesion segmentation with MONAI: BraTS labels for each timepoint, on CPU or GPU.

    >>> from HybridNeuroLib.segment import segment_timepoint, default_model, load_bundle, channels_to_labels
    >>> callable(segment_timepoint) and callable(default_model) and callable(load_bundle)
    True

Modules, one job each: ``channels`` (Model Zoo TC/WT/ET channels ⇄ BraTS labels), ``model``
(:class:`SegmentationModel`, model folders, the shipped synthetic-data model), ``preprocess``
(MONAI transforms to the model grid), ``inference`` (:func:`segment_timepoint`), ``bundle``
(local MONAI Model Zoo bundles), ``training`` (``hybridneuro train-seg``), ``studies``
(segment every timepoint of a study into an output folder).
"""

from HybridNeuroLib.segment.bundle import load_bundle
from HybridNeuroLib.segment.channels import channels_to_labels, labels_to_channels
from HybridNeuroLib.segment.inference import segment_timepoint
from HybridNeuroLib.segment.model import (SegmentationModel, build_network, default_model, load_model_folder)

__all__ = ["SegmentationModel", "build_network", "channels_to_labels", "default_model", "labels_to_channels",
           "load_bundle", "load_model_folder", "segment_timepoint"]
