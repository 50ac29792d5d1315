"""Figures of a forecast: the lesion over the scan, day by day, in three planes.

    >>> import numpy as np, SimpleITK as sitk, tempfile, os
    >>> from HybridNeuroLib.report.figures import forecast_overlay_figure
    >>> scan = sitk.GetImageFromArray(np.random.default_rng(0).random((20, 24, 24)).astype(np.float32))
    >>> blob = np.zeros((20, 24, 24), np.float32); blob[8:12, 10:14, 10:14] = 0.8
    >>> density = sitk.GetImageFromArray(blob); density.CopyInformation(scan)
    >>> labels = sitk.GetImageFromArray((blob > 0.25).astype(np.uint8) * 2); labels.CopyInformation(scan)
    >>> path = forecast_overlay_figure(scan, [60], [density], [labels], os.path.join(tempfile.mkdtemp(), "f.png"))
    >>> path.stat().st_size > 10_000
    True

Slices are shown in the radiological convention (patient's left on the image's right,
anterior up in axial views, superior up in coronal and sagittal views) after reorienting
the grid to its closest axis-aligned orientation, with true voxel aspect ratios. The
density is a heat map (transparent below 1%), the lesion outlines are drawn per BraTS
label in the label's colour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only, never a window (headless machines, background processes)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from HybridNeuroLib.labels import BRATS_LABELS, Label  # noqa: E402

DENSITY_CMAP = "hot"


def _lps_array(image: sitk.Image) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Voxels reoriented so that i → left, j → posterior, k → superior; spacing (i, j, k)."""
    oriented = sitk.DICOMOrient(image, "LPS")
    return sitk.GetArrayFromImage(oriented), oriented.GetSpacing()


def lesion_centre_kji(labels: sitk.Image) -> tuple[int, int, int]:
    """Centre of the whole lesion in the reoriented array (the grid centre when there is no lesion)."""
    array, _ = _lps_array(labels)
    voxels = np.argwhere(array > 0)
    centre = voxels.mean(axis=0) if len(voxels) else np.array(array.shape) / 2
    return tuple(int(round(c)) for c in centre)


def _planes(array: np.ndarray, centre: tuple[int, int, int]):
    k, j, i = centre
    return {"axial": array[k], "coronal": array[:, j, :][::-1], "sagittal": array[:, :, i][::-1]}


def _extents(spacing):
    si, sj, sk = spacing
    return {"axial": sj / si, "coronal": sk / si, "sagittal": sk / sj}


def forecast_overlay_figure(scan: sitk.Image, days: Sequence[float], density: Sequence[sitk.Image],
                            labels: Sequence[sitk.Image], path, *, title: str = "",
                            reference: Sequence[sitk.Image | None] | None = None,
                            label_table: Sequence[Label] = BRATS_LABELS, dpi: int = 110) -> Path:
    """Write a PNG with one row per day (axial, coronal, sagittal through the last day's lesion).

    ``reference`` (optional, one per day, None where absent): an observed lesion drawn as a
    dashed cyan outline, to compare with the predicted labels' outlines.
    """
    if not (len(days) == len(density) == len(labels)) or not days:
        raise ValueError(f"need as many density and label images as days (got {len(days)} days, "
                         f"{len(density)} densities, {len(labels)} label images)")
    scan_array, spacing = _lps_array(scan)
    low, high = np.percentile(scan_array, [1, 99.5])
    centre = lesion_centre_kji(labels[-1])
    aspects = _extents(spacing)
    figure, axes = plt.subplots(len(days), 3, figsize=(9, 3.1 * len(days)), squeeze=False,
                                facecolor="black")
    reference = list(reference) if reference is not None else [None] * len(days)
    for row, (day, day_density, day_labels) in enumerate(zip(days, density, labels)):
        density_planes = _planes(_lps_array(day_density)[0], centre)
        label_planes = _planes(_lps_array(day_labels)[0], centre)
        reference_planes = _planes(_lps_array(reference[row])[0] > 0, centre) if reference[row] else None
        for column, (plane, scan_plane) in enumerate(_planes(scan_array, centre).items()):
            axis = axes[row][column]
            axis.imshow(scan_plane, cmap="gray", vmin=low, vmax=high, aspect=aspects[plane],
                        interpolation="nearest")
            axis.imshow(np.ma.masked_less(density_planes[plane], 0.01), cmap=DENSITY_CMAP, vmin=0.0, vmax=1.0,
                        alpha=0.55, aspect=aspects[plane], interpolation="nearest")
            for label in label_table:
                mask = label_planes[plane] == label.value
                if mask.any() and not mask.all():
                    axis.contour(mask, levels=[0.5], colors=[label.color_rgb], linewidths=0.9)
            if reference_planes is not None and reference_planes[plane].any():
                axis.contour(reference_planes[plane], levels=[0.5], colors=["cyan"], linewidths=1.2,
                             linestyles="dashed")
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(f"day {day:g} · {plane}", color="white", fontsize=9)
    if title:
        figure.suptitle(title, color="white")
    return save_figure(figure, path, dpi, facecolor="black")


def save_figure(figure, path, dpi: int, **options) -> Path:
    """Lay out, write (creating the folder) and close ``figure``; returns the path."""
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, **options)
    plt.close(figure)
    return path


def lesion_volumes_ml(labels: sitk.Image, label_table: Sequence[Label] = BRATS_LABELS) -> dict[str, float]:
    """Volume in mL (cm³) of the whole lesion and of each label."""
    array = sitk.GetArrayViewFromImage(labels)
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    volumes = {"whole lesion": float(np.count_nonzero(array)) * voxel_ml}
    volumes.update({label.name: float(np.count_nonzero(array == label.value)) * voxel_ml for label in label_table})
    return volumes


def volume_curve_figure(days: Sequence[float], volumes_ml: dict[str, Sequence[float]], path, *,
                        observed: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None,
                        bands: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None,
                        title: str = "Lesion volume", dpi: int = 110) -> Path:
    """Write a PNG plotting each named volume series (mL) against day.

    ``observed``: name → (days, mL) drawn as points; ``bands``: series name → (low, high) per
    day, shaded around that series (e.g. an ensemble's range).
    """
    colors = {label.name: label.color_rgb for label in BRATS_LABELS} | {"whole lesion": (0.1, 0.1, 0.1)}
    figure, axis = plt.subplots(figsize=(6, 3.6))
    for name, series in volumes_ml.items():
        line, = axis.plot(days, series, marker="o", label=name, color=colors.get(name))
        if bands and name in bands:
            axis.fill_between(days, *bands[name], color=line.get_color(), alpha=0.2, linewidth=0)
    for (name, (observed_days, values)), marker in zip((observed or {}).items(), "sD^v"):
        axis.scatter(observed_days, values, marker=marker, s=60, zorder=3, label=name, edgecolors="black")
    axis.set_xlabel("day")
    axis.set_ylabel("volume (mL)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    return save_figure(figure, path, dpi)
