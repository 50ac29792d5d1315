"""Time series (observed and predicted days) as a sequence node plus a sequence browser.

    >>> import SimpleITK as sitk
    >>> from HybridNeuroLib.mrml import create_headless_scene, image_to_volume, add_time_series
    >>> scene = create_headless_scene().scene
    >>> days = [0, 60, 120]
    >>> nodes = [image_to_volume(sitk.Image(4, 4, 4, sitk.sitkFloat32), scene, f"day {d}") for d in days]
    >>> sequence, browser = add_time_series(scene, "density", list(zip(days, nodes)))
    >>> [sequence.GetNthIndexValue(i) for i in range(sequence.GetNumberOfDataNodes())]
    ['0', '60', '120']

The sequence's index is named "day" with unit "d", so Slicer's sequence browser toolbar
shows the day of each frame. The data nodes are copied into the sequence; the nodes
passed in are left as they are (remove them afterwards if only the series is wanted).
"""

from __future__ import annotations

from typing import Sequence

import slicer

from HybridNeuroLib.mrml.scene import module_logic
from HybridNeuroLib.mrml.volumes import BridgeError


def _day_text(day: float) -> str:
    return str(int(day)) if float(day).is_integer() else repr(float(day))


def add_time_series(scene: "slicer.vtkMRMLScene", name: str, items: Sequence[tuple[float, object]]):
    """Add a sequence of ``items`` (day, node) and a browser playing it; returns (sequence, browser).

    Days must be finite and strictly increasing; nodes must all be of one class.
    """
    if not items:
        raise BridgeError(f"time series '{name}' has no items; give at least one (day, node) pair")
    days = [float(day) for day, _ in items]
    if any(day != day or day in (float("inf"), float("-inf")) for day in days):
        raise BridgeError(f"time series '{name}': days must be finite numbers, got {days}")
    if any(b <= a for a, b in zip(days, days[1:])):
        raise BridgeError(f"time series '{name}': days must be strictly increasing, got {days}")
    classes = {node.GetClassName() for _, node in items}
    if len(classes) != 1:
        raise BridgeError(f"time series '{name}' mixes node classes {sorted(classes)}; use one class per series")

    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", f"{name} sequence")
    sequence.SetIndexName("day")
    sequence.SetIndexUnit("d")
    sequence.SetIndexType(slicer.vtkMRMLSequenceNode.NumericIndex)
    for day, node in zip(days, (node for _, node in items)):
        sequence.SetDataNodeAtValue(node, _day_text(day))

    browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", f"{name} browser")
    browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
    browser.SetSelectedItemNumber(0)
    module_logic(scene, "Sequences").UpdateProxyNodesFromSequences(browser)
    return sequence, browser
