"""Time series (observed and predicted days) as a sequence node plus a sequence browser.

    >>> import SimpleITK as sitk
    >>> from HybridNeuroLib.mrml import create_headless_scene, image_to_volume, add_time_series
    >>> scene = create_headless_scene().scene
    >>> days = [0, 60, 120]
    >>> nodes = [image_to_volume(sitk.Image(4, 4, 4, sitk.sitkFloat32), scene, f"day {d}") for d in days]
    >>> sequence, browser = add_time_series(scene, "density", list(zip(days, nodes)))
    >>> [sequence.GetNthIndexValue(i) for i in range(sequence.GetNumberOfDataNodes())]
    ['0', '60', '120']
    >>> sequences, browser = add_synchronized_time_series(scene, "sub-01", days, {"scan": nodes, "copy": nodes})
    >>> sorted(sequences), browser.GetNumberOfSynchronizedSequenceNodes()
    (['copy', 'scan'], 1)

:func:`add_synchronized_time_series` plays several series (e.g. density and lesion) with one
browser, one sequence per series, each named "<name> <series> sequence".

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


def _check_days(name: str, days: Sequence[float]) -> list[float]:
    days = [float(day) for day in days]
    if any(day != day or day in (float("inf"), float("-inf")) for day in days):
        raise BridgeError(f"time series '{name}': days must be finite numbers, got {days}")
    if any(b <= a for a, b in zip(days, days[1:])):
        raise BridgeError(f"time series '{name}': days must be strictly increasing, got {days}")
    return days


def _new_sequence(scene, name: str, days: Sequence[float], nodes: Sequence):
    classes = {node.GetClassName() for node in nodes}
    if len(classes) != 1:
        raise BridgeError(f"time series '{name}' mixes node classes {sorted(classes)}; use one class per series")
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", name)
    sequence.SetIndexName("day")
    sequence.SetIndexUnit("d")
    sequence.SetIndexType(slicer.vtkMRMLSequenceNode.NumericIndex)
    for day, node in zip(days, nodes):
        sequence.SetDataNodeAtValue(node, _day_text(day))
    return sequence


def add_synchronized_time_series(scene: "slicer.vtkMRMLScene", name: str, days: Sequence[float],
                                 series: dict[str, Sequence]) -> tuple[dict[str, object], object]:
    """One sequence per entry of ``series`` (series name → one node per day) and one browser playing them all.

    Returns ({series name: sequence}, browser); the browser starts at the last day. The nodes
    passed in are copied into the sequences and left as they are.
    """
    days = _check_days(name, days)
    if not days or not series:
        raise BridgeError(f"time series '{name}' has no days or no series; give at least one of each")
    wrong = {key: len(nodes) for key, nodes in series.items() if len(nodes) != len(days)}
    if wrong:
        raise BridgeError(f"time series '{name}': every series needs one node per day ({len(days)}), got {wrong}")
    for key, nodes in series.items():  # all checks before the first node is added
        if len({node.GetClassName() for node in nodes}) != 1:
            raise BridgeError(f"time series '{name} {key}' mixes node classes; use one class per series")
    sequences = {key: _new_sequence(scene, f"{name} {key} sequence", days, nodes) for key, nodes in series.items()}
    browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", f"{name} browser")
    first, *others = sequences.values()
    browser.SetAndObserveMasterSequenceNodeID(first.GetID())
    for sequence in others:
        browser.AddSynchronizedSequenceNodeID(sequence.GetID())
    browser.SetSelectedItemNumber(len(days) - 1)
    module_logic(scene, "Sequences").UpdateProxyNodesFromSequences(browser)
    return sequences, browser


def add_time_series(scene: "slicer.vtkMRMLScene", name: str, items: Sequence[tuple[float, object]]):
    """Add a sequence of ``items`` (day, node) and a browser playing it; returns (sequence, browser).

    Days must be finite and strictly increasing; nodes must all be of one class.
    """
    if not items:
        raise BridgeError(f"time series '{name}' has no items; give at least one (day, node) pair")
    days = _check_days(name, [day for day, _ in items])
    sequence = _new_sequence(scene, f"{name} sequence", days, [node for _, node in items])

    browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", f"{name} browser")
    browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
    browser.SetSelectedItemNumber(0)
    module_logic(scene, "Sequences").UpdateProxyNodesFromSequences(browser)
    return sequence, browser
