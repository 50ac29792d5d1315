"""The series encoder's estimate of D_w, ρ and the seed: loaded once, used by the series hybrid and as a fit start.

    >>> from HybridNeuroLib.hybrid.encoder_estimate import load_encoder
    >>> load_encoder().training_record["format"]
    'hybridneuro-encoder/1'

Its own module so that both :mod:`HybridNeuroLib.hybrid.series` (the model) and
:mod:`HybridNeuroLib.hybrid.physics_model` (``start_from_encoder=True``) use it without importing
each other.
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import SimpleITK as sitk
import torch

from HybridNeuroLib.fit import FitSettings, GrowthFit
from HybridNeuroLib.fit.observations import prepare_observations
from HybridNeuroLib.hybrid import encoder as enc
from HybridNeuroLib.hybrid.base import PRETRAINED_ROOT, TENSORS_NAME, CheckpointError, LabelsByDay
from HybridNeuroLib.physics import TissueMaps
from HybridNeuroLib.physics.initial import nearest_voxel_kji

ENCODER_FORMAT = "hybridneuro-encoder/1"
COMPONENT_FOLDER = PRETRAINED_ROOT / "series"
COMPONENT_RECORD = "model.json"


def _architecture() -> dict:
    return {"channels": list(enc.CHANNELS), "scalars": list(enc.SCALARS), "crop_voxels": enc.CROP_VOXELS,
            "crop_spacing_mm": enc.CROP_SPACING_MM, "offset_scale_mm": enc.OFFSET_SCALE_MM,
            "dw_bounds_mm2_per_day": list(FitSettings().dw_bounds_mm2_per_day),
            "rho_bounds_per_day": list(FitSettings().rho_bounds_per_day)}


@lru_cache(maxsize=4)
def load_encoder(folder: str | Path = COMPONENT_FOLDER) -> enc.SeriesEncoder:
    """The encoder saved in ``folder`` (default: the shipped one), loaded once per process."""
    folder = Path(folder)
    path = folder / COMPONENT_RECORD
    if not path.is_file():
        raise FileNotFoundError(f"series encoder folder {folder}: no {COMPONENT_RECORD}; train one with "
                                "`hybridneuro train-hybrid series --out FOLDER`")
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("format") != ENCODER_FORMAT:
        raise CheckpointError(f"{path}: format {record.get('format')!r} is not {ENCODER_FORMAT!r}")
    if record.get("architecture") != _architecture():
        raise CheckpointError(f"{path}: encoder inputs/outputs {record.get('architecture')} differ from this "
                              f"software's {_architecture()}; retrain with `hybridneuro train-hybrid series`")
    weights = folder / TENSORS_NAME
    net = enc.SeriesEncoder()
    try:
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except Exception as error:  # missing, damaged or mismatched tensors
        raise CheckpointError(f"{weights}: cannot be loaded as the series encoder ({error})") from None
    net.eval()
    net.training_record = record
    net.sha256 = hashlib.sha256(weights.read_bytes()).hexdigest()
    return net


def estimate(net: enc.SeriesEncoder, tissue: TissueMaps, labels_by_day: LabelsByDay,
             settings: FitSettings = FitSettings()) -> GrowthFit:
    """``net``'s (D_w, ρ, seed) for one patient; the seed falls back to the lesion centroid outside the brain.

    The labels get the physics fit's checks first (empty or shrinking lesion, non-label values, a
    lesion outside the tissue grid), each named by its day.
    """
    prepare_observations(tissue, labels_by_day, voxel_mm=enc.CROP_SPACING_MM, shrink_tolerance=settings.shrink_tolerance)
    case = enc.encode(tissue, labels_by_day, settings.thresholds.edema_flair)
    with torch.no_grad():
        out = net(torch.from_numpy(case.volume)[None], torch.from_numpy(case.scalars)[None])[0].double()
    dw = enc.denormalise_log(float(out[0]), settings.dw_bounds_mm2_per_day)
    rho = enc.denormalise_log(float(out[1]), settings.rho_bounds_per_day)
    centre = enc.offset_to_ras(case.crop, (out[2:] * enc.OFFSET_SCALE_MM).tolist())
    index = nearest_voxel_kji(tissue.geometry, centre)
    if index is None or tissue.wm[index] + tissue.gm[index] < settings.tissue_threshold:
        centre = case.first_seed.centre_ras_mm
    return GrowthFit(dw, rho, tuple(centre), case.first_seed.radius_mm, math.nan,
                     stopped_reason="series encoder estimate (no descent)")


def encoder_start(tissue: TissueMaps, labels_by_day: Sequence[tuple[float, sitk.Image]]) -> GrowthFit:
    """The shipped encoder's estimate: D_w, ρ, seed centre and radius at the first day; ``loss`` is NaN."""
    return estimate(load_encoder(), tissue, labels_by_day)
