"""Forecast from a fit: density, labels and lesion-presence probability on any grid, any days.

    >>> import numpy as np
    >>> from HybridNeuroLib.geometry import ImageGeometry
    >>> from HybridNeuroLib.physics import TissueMaps
    >>> from HybridNeuroLib.fit import FitResult, FitSettings, GrowthFit, predict
    >>> grid = ImageGeometry((12, 12, 12), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    >>> wm = np.ones(grid.shape_kji, np.float32)
    >>> tissue = TissueMaps(gm=0 * wm, wm=wm, csf=0 * wm, geometry=grid)
    >>> best = GrowthFit(0.3, 0.03, (-24.0, -24.0, 24.0), 6.0, 0.1)
    >>> fit = FitResult(best, (), FitSettings(), observed_days=(10.0, 40.0), first_day=10.0)
    >>> forecast = predict(fit, tissue, [40, 100])
    >>> forecast.days, [row["whole_ml"] > 0 for row in forecast.volumes]
    ((40.0, 100.0), [True, True])

Days are study days; the model starts at the fit's ``first_day`` (from the seed, or from the
seed grown for the fitted onset: :func:`initial_state`). The best fit gives the
density and labels; every ensemble member (best included) is solved too, and the
probability of lesion presence in a voxel is the fraction of them whose whole tumour
(u ≥ θ_FLAIR) covers it. Volumes come with the ensemble's range. Pass ``grid`` to predict on
another grid (e.g. the study's first timepoint): the tissue maps are resampled onto it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import SimpleITK as sitk
import torch

from HybridNeuroLib.fit.observations import resample_array
from HybridNeuroLib.fit.optimize import GrowthFit
from HybridNeuroLib.fit.result import FitResult
from HybridNeuroLib.fit.settings import FitSettings
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.labels import ImagingThresholds, density_to_labels
from HybridNeuroLib.physics import Seed, TissueMaps, TreatmentPlan, simulate


@dataclass(frozen=True, eq=False)
class Forecast:
    """Per study day: density (best fit), BraTS labels, probability of lesion presence, volumes (mL)."""

    days: tuple[float, ...]
    density: list[sitk.Image]
    labels: list[sitk.Image]
    probability: list[sitk.Image]
    volumes: list[dict]   # day, whole_ml, whole_ml_range, core_ml


def tissue_on_grid(tissue: TissueMaps, grid: ImageGeometry | None) -> TissueMaps:
    """``tissue`` resampled (linearly, world space) onto ``grid`` (itself when already there)."""
    if grid is None or grid == tissue.geometry:
        return tissue
    maps = {name: np.clip(resample_array(tissue.geometry.image_from_array(getattr(tissue, name)), grid), 0, 1)
            for name in ("gm", "wm", "csf")}
    return TissueMaps(geometry=grid, **maps)


def initial_state(member: GrowthFit, settings: FitSettings, tissue: TissueMaps,
                  device: torch.device | str | None = "cpu") -> Seed | np.ndarray:
    """The density at the fit's first timepoint on ``tissue``'s grid: the seed, or (onset > 0) the
    seed grown for ``onset_days`` by the fitted model (an array ``[k, j, i]``)."""
    if member.onset_days <= 0:
        return member.seed
    run = simulate(tissue, member.seed, member.parameters(settings), [member.onset_days], device=device,
                   progress=False)
    return sitk.GetArrayFromImage(run.density[0])


def forecast_from_members(days: Sequence[float], member_densities: Sequence[Sequence[np.ndarray]],
                          geometry: ImageGeometry, thresholds: ImagingThresholds) -> Forecast:
    """The :class:`Forecast` of an ensemble's densities on ``geometry``: ``member_densities[m][n]`` is
    member m's density ``[k, j, i]`` at ``days[n]``, member 0 the best fit (density, labels, core).

    Probability = fraction of members whose visible lesion covers a voxel (0/1 with one member);
    the whole-lesion volume range spans the members. Every forecasting model builds its result here.
    """
    voxel_ml = geometry.voxel_volume_mm3 / 1000.0
    labels = [[density_to_labels(array, thresholds) for array in run] for run in member_densities]
    forecast = Forecast(tuple(days), [], [], [], [])
    for n, day in enumerate(days):
        visible = [run[n] > 0 for run in labels]
        whole = [float(v.sum()) * voxel_ml for v in visible]
        best = labels[0][n]
        forecast.density.append(geometry.image_from_array(member_densities[0][n]))
        forecast.labels.append(geometry.image_from_array(best))
        forecast.probability.append(geometry.image_from_array(np.mean(visible, axis=0).astype(np.float32)))
        forecast.volumes.append({"day": day, "whole_ml": round(whole[0], 4),
                                 "whole_ml_range": [round(min(whole), 4), round(max(whole), 4)],
                                 "core_ml": round(float(((best == 1) | (best == 3)).sum()) * voxel_ml, 4)})
    return forecast


def predict(fit: FitResult, tissue: TissueMaps, days: Sequence[float], *, grid: ImageGeometry | None = None,
            treatment: TreatmentPlan | None = None, device: torch.device | str | None = "cpu",
            progress: bool = False, progress_callback: Callable[[str, float], None] | None = None) -> Forecast:
    """Forecast ``days`` (study days ≥ the fit's first day) on ``grid`` (default: the tissue grid)."""
    days = tuple(sorted({float(d) for d in days}))
    if not days:
        raise ValueError("predict: no days given; list the study days to forecast")
    if days[0] < fit.first_day:
        raise ValueError(f"predict: day {days[0]:g} lies before the fit's first timepoint (day {fit.first_day:g}); "
                         "the model forecasts forward only")
    tissue = tissue_on_grid(tissue, grid)
    thresholds = fit.settings.thresholds
    relative = [day - fit.first_day for day in days]
    runs = [simulate(tissue, initial_state(member, fit.settings, tissue, device), member.parameters(fit.settings),
                     relative, thresholds=thresholds,
                     treatment=treatment, device=device, progress=progress, progress_callback=progress_callback)
            for member in fit.ensemble]
    return forecast_from_members(days, [[sitk.GetArrayFromImage(image) for image in run.density] for run in runs],
                                 tissue.geometry, thresholds)
