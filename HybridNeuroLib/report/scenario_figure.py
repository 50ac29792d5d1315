"""The treatment-scenario comparison figure: volumes and cells over time, lesions side by side.

    >>> import numpy as np, SimpleITK as sitk, tempfile, os
    >>> from HybridNeuroLib.report.scenario_figure import scenario_figure
    >>> scan = sitk.GetImageFromArray(np.random.default_rng(0).random((12, 16, 16)).astype(np.float32))
    >>> big = np.zeros((12, 16, 16), np.uint8); big[4:9, 5:11, 5:11] = 2
    >>> small = np.zeros_like(big); small[5:8, 6:10, 6:10] = 2
    >>> last = {name: sitk.GetImageFromArray(a) for name, a in (("untreated", big), ("RT", small))}
    >>> rows = {"untreated": [{"day": 0, "whole_ml": 1.0, "cells_ml": 0.5}, {"day": 90, "whole_ml": 3.0,
    ...                                                                       "cells_ml": 2.0}],
    ...         "RT": [{"day": 0, "whole_ml": 1.0, "cells_ml": 0.5}, {"day": 90, "whole_ml": 1.2, "cells_ml": 0.6}]}
    >>> scenario_figure(scan, rows, last, os.path.join(tempfile.mkdtemp(), "s.png")).stat().st_size > 10_000
    True

Top: whole-lesion volume (mL) and total tumour cells (mL of tissue at carrying capacity)
against the study day, one line per scenario (``rows``: name → rows with ``day``,
``whole_ml``, ``cells_ml``, as :func:`HybridNeuroLib.fit.scenarios.compare_scenarios` returns).
Bottom: each scenario's lesion at the last day, outlined per BraTS label on the axial slice
through the first scenario's lesion (the same slice for all, so they compare at a glance).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from HybridNeuroLib.labels import BRATS_LABELS  # noqa: E402
from HybridNeuroLib.report.figures import _extents, _lps_array, lesion_centre_kji, save_figure  # noqa: E402


def scenario_figure(scan: sitk.Image, rows: Mapping[str, Sequence[dict]], last_labels: Mapping[str, sitk.Image],
                    path, *, title: str = "", dpi: int = 110) -> Path:
    """Write the comparison PNG (see the module docstring); ``last_labels``: name → labels at the last day."""
    if not rows or set(last_labels) - set(rows):
        raise ValueError(f"scenario figure: need rows for every scenario with a lesion image "
                         f"(rows: {list(rows)}, images: {list(last_labels)})")
    names = list(rows)
    columns = max(2, len(last_labels))
    figure = plt.figure(figsize=(3.0 * columns, 6.4))
    grid = figure.add_gridspec(2, columns * 2, height_ratios=(1.0, 1.1))
    colours = {name: plt.get_cmap("tab10")(n % 10) for n, name in enumerate(names)}
    for panel, (key, label) in enumerate((("whole_ml", "whole-lesion volume (mL)"),
                                          ("cells_ml", "tumour cells (mL at capacity)"))):
        axis = figure.add_subplot(grid[0, panel * columns:(panel + 1) * columns])
        for name in names:
            axis.plot([r["day"] for r in rows[name]], [r[key] for r in rows[name]], marker="o", markersize=3,
                      label=name, color=colours[name])
        axis.set_xlabel("study day")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        if panel == 0:
            axis.legend(fontsize=8)
    if last_labels:
        scan_array, spacing = _lps_array(scan)
        low, high = np.percentile(scan_array, [1, 99.5])
        k = lesion_centre_kji(next(iter(last_labels.values())))[0]
        aspect = _extents(spacing)["axial"]
        for n, (name, labels) in enumerate(last_labels.items()):
            axis = figure.add_subplot(grid[1, 2 * n:2 * n + 2])
            plane = _lps_array(labels)[0][k]
            axis.imshow(scan_array[k], cmap="gray", vmin=low, vmax=high, aspect=aspect, interpolation="nearest")
            for label in BRATS_LABELS:
                mask = plane == label.value
                if mask.any() and not mask.all():
                    axis.contour(mask, levels=[0.5], colors=[label.color_rgb], linewidths=1.0)
            last = rows[name][-1]
            axis.set_title(f"{name}\nday {last['day']:g}: {last['whole_ml']:.1f} mL", fontsize=8,
                           color=colours[name])
            axis.set_xticks([])
            axis.set_yticks([])
    if title:
        figure.suptitle(title)
    return save_figure(figure, path, dpi)
