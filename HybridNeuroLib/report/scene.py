"""The Slicer scene bundle (``.mrb``) of a forecast: what ``run`` and ``demo`` hand to 3D Slicer.

    >>> import os, tempfile, SimpleITK as sitk
    >>> from HybridNeuroLib.report.scene import write_forecast_scene
    >>> scan = sitk.Image(6, 6, 6, sitk.sitkFloat32)
    >>> density, labels = sitk.Image(6, 6, 6, sitk.sitkFloat32), sitk.Image(6, 6, 6, sitk.sitkUInt8)
    >>> path = write_forecast_scene(os.path.join(tempfile.mkdtemp(), "s.mrb"), "demo", scan, [60],
    ...                             [density], [labels])
    >>> path.suffix
    '.mrb'

The scene holds the scan, the forecast (a segmentation per day, the density as a colour-mapped
overlay, one sequence browser stepping through the days: :func:`HybridNeuroLib.mrml.forecast.add_forecast`),
the observed lesions (one segmentation per observed day) and any further named lesions (e.g.
treatment scenarios). Node names start with the subject. The MRML bridge is imported only when
a scene is written: the rest of the engine needs no Slicer libraries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import SimpleITK as sitk


def write_forecast_scene(path, subject: str, scan: sitk.Image, days: Sequence[float],
                         density: Sequence[sitk.Image], labels: Sequence[sitk.Image], *,
                         observed: Mapping[float, sitk.Image] | None = None,
                         lesions: Mapping[str, sitk.Image] | None = None, overwrite: bool = False) -> Path:
    """Write the bundle ``path``; ``observed``: study day → labels; ``lesions``: node name suffix → labels."""
    from HybridNeuroLib.mrml import create_headless_scene, labels_to_segmentation, save_scene_bundle
    from HybridNeuroLib.mrml.forecast import add_forecast

    context = create_headless_scene()
    nodes = add_forecast(context.scene, subject, scan, days, density, labels)
    for day, seg in sorted((observed or {}).items()):
        labels_to_segmentation(seg, context.scene, f"{subject} observed lesion day {day:g}", reference=nodes.scan)
    for name, seg in (lesions or {}).items():
        labels_to_segmentation(seg, context.scene, f"{subject} {name}", reference=nodes.scan)
    return save_scene_bundle(context.scene, Path(path), overwrite=overwrite)
