"""The mechanistic model alone behind the common interface: the personalised Fisher–Kolmogorov fit.

    >>> import numpy as np
    >>> from HybridNeuroLib.geometry import ImageGeometry
    >>> from HybridNeuroLib.physics import TissueMaps
    >>> from HybridNeuroLib.fit import FitSettings
    >>> from HybridNeuroLib.hybrid import make_model
    >>> grid = ImageGeometry((12, 12, 12), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    >>> wm = np.ones(grid.shape_kji, np.float32)
    >>> tissue = TissueMaps(gm=0 * wm, wm=wm, csf=0 * wm, geometry=grid)
    >>> seg = np.zeros(grid.shape_kji, np.uint8); seg[5:8, 5:8, 5:8] = 2
    >>> later = np.zeros(grid.shape_kji, np.uint8); later[4:9, 4:9, 4:9] = 2
    >>> model = make_model("physics", settings=FitSettings(voxel_mm=4.0, starts=1, iterations=3, members=0))
    >>> model = model.fit(tissue, [(0.0, grid.image_from_array(seg)), (30.0, grid.image_from_array(later))],
    ...                   progress=False)
    >>> model.predict([60]).volumes[0]["whole_ml"] > 0
    True

Fitting is :func:`HybridNeuroLib.fit.fit_growth` (see there); forecasting is
:func:`HybridNeuroLib.fit.predict`. One timepoint is accepted (growth speed then comes from the
population priors, with a warning). ``start_from_encoder=True`` adds the series hybrid's
encoder estimate (:func:`HybridNeuroLib.hybrid.encoder_estimate.encoder_start`, ≥ 2 timepoints) to the
fit's starts; the lowest final loss still wins. The checkpoint holds the fit record (as
``params.json``) and the tissue maps it forecasts on.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from HybridNeuroLib.fit import FitResult, FitSettings, fit_growth, predict
from HybridNeuroLib.hybrid.base import (ForecastModel, LabelsByDay, register, tissue_from_saved, tissue_record,
                                        tissue_tensors)
from HybridNeuroLib.physics import TissueMaps


@register
class PhysicsModel(ForecastModel):
    """Fisher–Kolmogorov fitted per patient (D_w, ρ, seed), with its uncertainty ensemble."""

    name = "physics"
    minimum_timepoints = 1

    def __init__(self, settings: FitSettings = FitSettings(), *, device: torch.device | str | None = "cpu",
                 start_from_encoder: bool = False):
        self.settings, self.device, self.start_from_encoder = settings, device, start_from_encoder
        self.result: FitResult | None = None
        self.tissue: TissueMaps | None = None

    def _fit(self, tissue: TissueMaps, labels_by_day: LabelsByDay, *, progress: bool,
             log: Callable[[str], None]) -> None:
        self.tissue = tissue
        extra = []
        if self.start_from_encoder and len({float(day) for day, _ in labels_by_day}) >= 2:
            from HybridNeuroLib.hybrid.encoder_estimate import encoder_start  # the network is loaded only when asked for

            extra.append(encoder_start(tissue, labels_by_day))
        self.result = fit_growth(tissue, labels_by_day, self.settings, device=self.device, progress=progress, log=log,
                                 extra_starts=extra)

    def predict(self, days: Sequence[float], *, grid=None, progress: bool = False):
        if self.result is None:
            raise ValueError(f"model {self.name!r}: not fitted yet; call fit(...) or load a saved model first")
        return predict(self.result, self.tissue, days, grid=grid, device=self.device, progress=progress)

    def to_record(self) -> dict:
        return {"fit": self.result.to_dict(), "tissue_grid": tissue_record(self.tissue)}

    def tensors(self) -> dict[str, torch.Tensor]:
        return tissue_tensors(self.tissue)

    @classmethod
    def from_record(cls, record: dict, tensors: dict[str, torch.Tensor]) -> PhysicsModel:
        result = FitResult.from_dict(record["fit"])
        model = cls(result.settings)
        model.result, model.tissue = result, tissue_from_saved(record["tissue_grid"], tensors)
        return model
