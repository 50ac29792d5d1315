"""Fitted model parameters, with their intervals and units, as a table node.

    >>> from HybridNeuroLib.mrml import create_headless_scene
    >>> from HybridNeuroLib.mrml.tables import add_parameter_table, table_rows
    >>> scene = create_headless_scene().scene
    >>> record = {"D_w_mm2_per_day": 0.3, "rho_per_day": 0.03,
    ...           "intervals": {"D_w_mm2_per_day": [0.25, 0.35], "rho_per_day": [0.02, 0.04]}}
    >>> table = add_parameter_table(scene, "sub-01 fit parameters", record)
    >>> hybrid = add_parameter_table(scene, "sub-01 parallel fit", {"model": "parallel", "summary": {"fit": record}})
    >>> [row["parameter"] for row in table_rows(hybrid)]
    ['D_w', 'ρ']
    >>> table_rows(table)[0]
    {'parameter': 'D_w', 'value': 0.3, 'low': 0.25, 'high': 0.35, 'unit': 'mm²/day', 'description': 'white-matter diffusivity'}

``record`` is a fit's ``params.json`` content; every known parameter it holds becomes a row
(value, interval low/high — the value itself when the fit has no interval — unit and what it
means); unknown keys are left out. A hybrid model's summary is searched for its mechanistic
fit record; without one, its top-level numbers become rows (no interval). The table is a new
node; nothing else changes.
"""

from __future__ import annotations

import math

import vtk

# params.json key → (row name, unit, description); the order of the rows
PARAMETERS = (
    ("D_w_mm2_per_day", "D_w", "mm²/day", "white-matter diffusivity"),
    ("rho_per_day", "ρ", "1/day", "proliferation rate"),
    ("front_speed_mm_per_day", "front speed", "mm/day", "2·sqrt(D_w·ρ), the visible edge's speed"),
    ("seed_radius_mm", "seed radius", "mm", "half-maximum radius of the initial lesion"),
)
COLUMNS = ("parameter", "value", "low", "high", "unit", "description")


def _value(record: dict, key: str) -> float | None:
    if key == "seed_radius_mm":
        value = (record.get("seed") or {}).get("radius_mm")
    else:
        value = record.get(key)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _mechanistic_record(record: dict) -> dict | None:
    """The first dict (breadth first) holding a known parameter: the physics fit inside a hybrid's summary."""
    pending = [record]
    while pending:
        candidate = pending.pop(0)
        if any(_value(candidate, key) is not None for key, *_ in PARAMETERS):
            return candidate
        pending += [value for value in candidate.values() if isinstance(value, dict)]
    return None


def _summary_rows(record: dict) -> list[tuple]:
    summary = record.get("summary") if isinstance(record.get("summary"), dict) else {}
    return [(key, float(value), float(value), float(value), "", "model summary") for key, value in summary.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)]


def add_parameter_table(scene, name: str, record: dict):
    """Add a table node named ``name`` with one row per fitted parameter of ``record`` (see the module docstring)."""
    mechanistic = _mechanistic_record(record)
    intervals = (mechanistic or {}).get("intervals") or {}
    rows = []
    for key, label, unit, description in PARAMETERS if mechanistic else ():
        value = _value(mechanistic, key)
        if value is None:
            continue
        low, high = (intervals.get(key) or [value, value])[:2]
        rows.append((label, value, float(low), float(high), unit, description))
    rows = rows or _summary_rows(record)
    if not rows:
        raise ValueError(f"table '{name}': the fit record has none of the parameters "
                         f"{', '.join(key for key, *_ in PARAMETERS)} and no numeric summary; is it a params.json "
                         "of `hybridneuro fit`?")
    arrays = []
    for column, kind in zip(COLUMNS, ("s", "d", "d", "d", "s", "s")):
        array = vtk.vtkStringArray() if kind == "s" else vtk.vtkDoubleArray()
        array.SetName(column)
        for row in rows:
            array.InsertNextValue(row[COLUMNS.index(column)])
        arrays.append(array)
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    for array in arrays:
        table.AddColumn(array)
    table.SetLocked(True)  # a result: editing it would not change the fit
    table.SetColumnDescription("low", str(intervals.get("kind", "interval low end")))
    table.SetColumnDescription("high", str(intervals.get("kind", "interval high end")))
    return table


def table_rows(table) -> list[dict]:
    """The rows of a table node as dicts (numbers as floats), for tests and console users."""
    data = table.GetTable()
    columns = [data.GetColumn(c) for c in range(data.GetNumberOfColumns())]
    rows = []
    for r in range(data.GetNumberOfRows()):
        rows.append({column.GetName(): (column.GetValue(r) if isinstance(column, vtk.vtkStringArray)
                                        else float(column.GetValue(r))) for column in columns})
    return rows
