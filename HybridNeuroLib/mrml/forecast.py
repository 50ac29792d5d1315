"""A forecast as Slicer shows it: scan, per-day density and lesion, a browser through the days.

    >>> import numpy as np, SimpleITK as sitk
    >>> from HybridNeuroLib.mrml import create_headless_scene
    >>> from HybridNeuroLib.mrml.forecast import add_forecast
    >>> scene = create_headless_scene().scene
    >>> scan = sitk.Image(6, 6, 6, sitk.sitkFloat32)
    >>> density = [sitk.Image(6, 6, 6, sitk.sitkFloat32) for _ in range(2)]
    >>> labels = [sitk.Image(6, 6, 6, sitk.sitkUInt8) for _ in range(2)]
    >>> nodes = add_forecast(scene, "demo", scan, [60, 120], density, labels)
    >>> nodes.density_sequence.GetNthIndexValue(1), nodes.overlay.GetName()
    ('120', 'demo density day 120')

Node names start with the subject's name and say what they hold and for which day. The
density and lesion of every day go into two sequences played by one browser (the
toolbar shows the day); the last day's density is also a standalone colour-mapped
overlay over the scan, and each day's lesion a standalone segmentation, so they can
be used without the browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import SimpleITK as sitk

from HybridNeuroLib.mrml.scene import module_logic, rollback_on_error
from HybridNeuroLib.mrml.display import add_density_overlay, show_density_overlay
from HybridNeuroLib.mrml.segmentations import labels_to_segmentation
from HybridNeuroLib.mrml.sequences import _day_text, add_time_series
from HybridNeuroLib.mrml.volumes import BridgeError, image_to_volume


@dataclass
class ForecastNodes:
    scan: object
    segmentations: list
    overlay: object
    density_sequence: object
    lesion_sequence: object
    browser: object


def add_forecast(scene, name: str, scan: sitk.Image, days: Sequence[float], density: Sequence[sitk.Image],
                 labels: Sequence[sitk.Image]) -> ForecastNodes:
    """Add the scan, one density and one lesion per day, their sequences and one browser."""
    if not (len(days) == len(density) == len(labels)) or not days:
        raise BridgeError(f"forecast '{name}': need as many density and label images as days "
                          f"(got {len(days)} days, {len(density)} densities, {len(labels)} label images)")
    with rollback_on_error(scene):
        return _add_forecast(scene, name, scan, days, density, labels)


def _add_forecast(scene, name, scan, days, density, labels) -> ForecastNodes:
    scan_node = image_to_volume(scan, scene, f"{name} scan")
    segmentations, densities = [], []
    for day, day_density, day_labels in zip(days, density, labels):
        suffix = f"day {_day_text(day)}"
        segmentations.append(labels_to_segmentation(day_labels, scene, f"{name} lesion {suffix}", reference=scan_node))
        densities.append(add_density_overlay(day_density, scene, f"{name} density {suffix}", background=scan_node))
    density_sequence, browser = add_time_series(scene, f"{name} density", list(zip(days, densities)))
    lesion_sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", f"{name} lesion sequence")
    lesion_sequence.CopySequenceIndex(density_sequence)
    for day, node in zip(days, segmentations):
        lesion_sequence.SetDataNodeAtValue(node, _day_text(day))
    browser.AddSynchronizedSequenceNodeID(lesion_sequence.GetID())
    browser.SetSelectedItemNumber(len(days) - 1)
    module_logic(scene, "Sequences").UpdateProxyNodesFromSequences(browser)
    # the browser's proxy shows the selected day; style it like the standalone overlays
    show_density_overlay(browser.GetProxyNode(density_sequence), scan_node)
    for node in densities[:-1]:  # the per-day copies live in the sequence; keep the last as the overlay
        scene.RemoveNode(node)
    return ForecastNodes(scan_node, segmentations, densities[-1], density_sequence, lesion_sequence, browser)
