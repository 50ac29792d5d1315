"""Lesion volume over time as a plot chart: observed points, forecast line with its band, scenarios as lines.

    >>> from HybridNeuroLib.mrml import create_headless_scene
    >>> from HybridNeuroLib.mrml.plots import add_volume_plot
    >>> scene = create_headless_scene().scene
    >>> plot = add_volume_plot(scene, "sub-01", observed=[(0, 3.1), (60, 6.0)],
    ...                        forecast=[(0, 3.0, 2.9, 3.2), (60, 6.1, 5.8, 6.4), (120, 11.0, 10.1, 12.2)])
    >>> sorted(plot.series), plot.chart.GetNumberOfPlotSeriesNodes()
    (['forecast', 'forecast high', 'forecast low', 'observed'], 4)

Each series reads two columns (day, mL) of a table node; the chart has axis titles with
units and is shown in every plot view of the scene (Slicer's plot views; inside Slicer, the
module logic also switches to a layout that has one). Names start with ``name``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import vtk

FORECAST_COLOR = (0.85, 0.33, 0.1)
OBSERVED_COLOR = (0.0, 0.45, 0.74)
SCENARIO_COLORS = ((0.47, 0.67, 0.19), (0.49, 0.18, 0.56), (0.93, 0.69, 0.13), (0.3, 0.75, 0.93))


@dataclass
class VolumePlot:
    chart: object
    tables: dict[str, object] = field(default_factory=dict)   # "observed", "forecast", scenario names
    series: dict[str, object] = field(default_factory=dict)   # series key → plot series node


def _table(scene, name: str, columns: Sequence[str], rows: Sequence[Sequence[float]]):
    arrays = []
    for index, column in enumerate(columns):
        array = vtk.vtkDoubleArray()
        array.SetName(column)
        for row in rows:
            array.InsertNextValue(float(row[index]))
        arrays.append(array)
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    for array in arrays:
        table.AddColumn(array)
    table.SetLocked(True)
    return table


def _series(scene, name: str, table, y_column: str, color, *, points: bool, dashed: bool = False):
    series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", name)
    series.SetAndObserveTableNodeID(table.GetID())
    series.SetXColumnName("day")
    series.SetYColumnName(y_column)
    series.SetPlotType(series.PlotTypeScatter)
    series.SetColor(*color)
    if points:
        series.SetLineStyle(series.LineStyleNone)
        series.SetMarkerStyle(series.MarkerStyleCircle)
        series.SetMarkerSize(10)
    else:
        series.SetLineStyle(series.LineStyleDash if dashed else series.LineStyleSolid)
        series.SetMarkerStyle(series.MarkerStyleNone)
        series.SetLineWidth(2 if dashed else 3)
    return series


def _check(name: str, what: str, rows: Sequence[Sequence[float]], width: int) -> None:
    for row in rows:
        if len(row) != width or not all(math.isfinite(float(v)) for v in row):
            raise ValueError(f"volume plot '{name}': every {what} row must be {width} finite numbers, got {row}")
    days = [float(row[0]) for row in rows]
    if any(b <= a for a, b in zip(days, days[1:])):
        raise ValueError(f"volume plot '{name}': {what} days must be strictly increasing, got {days}")


def add_volume_plot(scene, name: str, *, observed: Sequence[tuple[float, float]],
                    forecast: Sequence[tuple[float, float, float, float]],
                    scenarios: Mapping[str, Sequence[tuple[float, float]]] | None = None) -> VolumePlot:
    """Add the chart of lesion volume (mL) vs day and show it in the scene's plot views.

    ``observed``: (day, mL) points; ``forecast``: (day, mL, low mL, high mL) — the band is drawn
    as two dashed lines; ``scenarios``: name → (day, mL) lines (e.g. treatment scenarios).
    Inputs are checked before anything is added.
    """
    scenarios = dict(scenarios or {})
    _check(name, "observed", observed, 2)
    _check(name, "forecast", forecast, 4)
    for scenario, rows in scenarios.items():
        _check(name, f"scenario {scenario!r}", rows, 2)
    if not observed and not forecast:
        raise ValueError(f"volume plot '{name}': nothing to plot; give observed or forecast volumes")
    plot = VolumePlot(chart=None)
    if observed:
        plot.tables["observed"] = _table(scene, f"{name} observed volumes", ("day", "volume_ml"), observed)
        plot.series["observed"] = _series(scene, f"{name} observed", plot.tables["observed"], "volume_ml",
                                          OBSERVED_COLOR, points=True)
    if forecast:
        table = plot.tables["forecast"] = _table(scene, f"{name} forecast volumes",
                                                 ("day", "volume_ml", "low_ml", "high_ml"), forecast)
        plot.series["forecast"] = _series(scene, f"{name} forecast", table, "volume_ml", FORECAST_COLOR, points=False)
        plot.series["forecast low"] = _series(scene, f"{name} forecast low", table, "low_ml", FORECAST_COLOR,
                                              points=False, dashed=True)
        plot.series["forecast high"] = _series(scene, f"{name} forecast high", table, "high_ml", FORECAST_COLOR,
                                               points=False, dashed=True)
    for index, (scenario, rows) in enumerate(scenarios.items()):
        table = plot.tables[scenario] = _table(scene, f"{name} {scenario} volumes", ("day", "volume_ml"), rows)
        plot.series[scenario] = _series(scene, f"{name} {scenario}", table, "volume_ml",
                                        SCENARIO_COLORS[index % len(SCENARIO_COLORS)], points=False)
    chart = plot.chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", f"{name} lesion volume")
    for series in plot.series.values():
        chart.AddAndObservePlotSeriesNodeID(series.GetID())
    chart.SetTitle(f"{name}: lesion volume")
    chart.SetXAxisTitle("day")
    chart.SetYAxisTitle("whole lesion volume (mL)")
    chart.SetLegendVisibility(True)
    show_chart(chart)
    return plot


def show_chart(chart) -> None:
    """Show ``chart`` in every plot view of its scene."""
    scene = chart.GetScene()
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLPlotViewNode")):
        scene.GetNthNodeByClass(i, "vtkMRMLPlotViewNode").SetPlotChartNodeID(chart.GetID())
