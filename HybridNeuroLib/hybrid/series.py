"""The series hybrid: a network reads the observed lesions and outputs the physics parameters, the solver forecasts.

    >>> from HybridNeuroLib.hybrid import make_model
    >>> model = make_model("series")            # then: model.fit(tissue, labels_by_day); model.predict([180])
    >>> model.name, model.minimum_timepoints
    ('series', 2)
    >>> from HybridNeuroLib.hybrid.series import load_encoder
    >>> load_encoder().training_record["format"]
    'hybridneuro-encoder/1'

An amortised inverse problem (:mod:`HybridNeuroLib.hybrid.encoder`): the shipped encoder,
trained on simulations of the engine's own Fisher–Kolmogorov solver, maps the lesion masks of
2–3 timepoints and the tissue around the first lesion to D_w, ρ and the seed centre in
milliseconds. :func:`encoder_start` returns that estimate as a
:class:`~HybridNeuroLib.fit.optimize.GrowthFit` (seed radius: the fit's own visible-volume
match on the first lesion; loss NaN): used alone by :class:`SeriesModel` (``fit`` is
instant, ``predict`` is the forward solve, :func:`HybridNeuroLib.fit.predict`) and as an extra
start of the gradient fit (``PhysicsModel(start_from_encoder=True)``,
``fit_growth(..., extra_starts=[encoder_start(...)])``). No ensemble: ``predict``'s probability
maps are 0/1. The checkpoint holds the estimate (``params.json`` record), the tissue maps and
the SHA-256 of the encoder weights that made it.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable

import torch

from HybridNeuroLib import __version__

from HybridNeuroLib.fit import FitResult, FitSettings
from HybridNeuroLib.hybrid import encoder as enc
from HybridNeuroLib.hybrid.base import LabelsByDay, register
from HybridNeuroLib.hybrid.encoder_estimate import (COMPONENT_FOLDER, COMPONENT_RECORD,  # noqa: F401 (API)
                                                    ENCODER_FORMAT, _architecture, encoder_start, estimate,
                                                    load_encoder)
from HybridNeuroLib.hybrid.physics_model import PhysicsModel
from HybridNeuroLib.physics import TissueMaps

TRAINING_STEPS, TRAINING_BATCH = 1200, 16


@register
class SeriesModel(PhysicsModel):
    """Encoder estimate of D_w, ρ and the seed (instant), forecast by the Fisher–Kolmogorov solver.

    Only the fit differs from :class:`~HybridNeuroLib.hybrid.physics_model.PhysicsModel`: forecasts,
    checkpoints and tissue handling are the physics model's (plus the encoder's weight hash).
    """

    name = "series"
    minimum_timepoints = 2

    def __init__(self, settings: FitSettings = FitSettings(), *, device: torch.device | str | None = "cpu",
                 encoder_folder: str | Path = COMPONENT_FOLDER):
        super().__init__(settings, device=device)
        self.encoder_folder, self.encoder_sha256 = Path(encoder_folder), ""

    def _fit(self, tissue: TissueMaps, labels_by_day: LabelsByDay, *, progress: bool,
             log: Callable[[str], None]) -> None:
        started = time.perf_counter()
        net = load_encoder(self.encoder_folder)
        best = estimate(net, tissue, labels_by_day, self.settings)
        days = tuple(sorted(float(day) for day, _ in labels_by_day))
        message = (f"series encoder: D_w = {best.dw_mm2_per_day:.4g} mm²/day, ρ = {best.rho_per_day:.4g} /day, "
                   f"front speed {best.front_speed_mm_per_day:.4g} mm/day (no gradient fit)")
        log(message)
        self.tissue, self.encoder_sha256 = tissue, net.sha256
        self.result = FitResult(best, (), self.settings, days, days[0], messages=(message,),
                                wall_time_s=time.perf_counter() - started)

    def to_record(self) -> dict:
        return {**super().to_record(), "encoder_sha256": self.encoder_sha256}

    @classmethod
    def from_record(cls, record: dict, tensors: dict[str, torch.Tensor]) -> SeriesModel:
        model = super().from_record(record, tensors)
        model.encoder_sha256 = record.get("encoder_sha256", "")
        return model

    @classmethod
    def train_population(cls, folder: Path, *, subjects: int, seed: int = 0, progress: bool = True,
                         log: Callable[[str], None] = print) -> Path:
        """Simulate on ``subjects`` training anatomies, train the encoder, write it (+ model card) to ``folder``.

        The last ⌈subjects/8⌉ anatomies are held out for the validation numbers in the card.
        """
        from HybridNeuroLib.hybrid.cohort import training_seeds

        if subjects < 2:
            raise ValueError(f"series encoder: subjects must be ≥ 2 (training + validation anatomies), "
                             f"got {subjects}")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        data = enc.simulate_training_set(training_seeds(subjects), log=log)
        held_out = max(1, math.ceil(subjects / 8))
        is_train = data["subject"] < subjects - held_out
        split = lambda mask: {key: value[mask] for key, value in data.items()}  # noqa: E731
        net, report = enc.train_encoder(split(is_train), seed=seed, steps=TRAINING_STEPS, batch=TRAINING_BATCH,
                                        validation=split(~is_train), log=log)
        torch.save({key: value.detach().cpu().contiguous() for key, value in net.state_dict().items()},
                   folder / TENSORS_NAME)
        record = {"format": ENCODER_FORMAT, "model": cls.name, "architecture": _architecture(),
                  "software": {"name": "hybridneuro", "version": __version__},
                  "training": {"command": f"hybridneuro train-hybrid series --subjects {subjects} --seed {seed} "
                                          "--out FOLDER",
                               "subjects": subjects, "validation_subjects": held_out,
                               "simulations_per_subject": enc.SIMULATIONS_PER_SUBJECT, **report,
                               "total_s": round(time.perf_counter() - started, 1)}}
        path = folder / COMPONENT_RECORD
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        (folder / "MODEL_CARD.md").write_text(_model_card(record), encoding="utf-8")
        load_encoder.cache_clear()
        return path


def _model_card(record: dict) -> str:
    training = record["training"]
    validation = training.get("validation", {})
    percent = lambda key: f"{validation.get(key, math.nan):.0%}"  # noqa: E731
    return f"""# Series hybrid encoder (`series`)

**Trained on synthetic data only. Not a clinical model**: not validated on patients, not for
diagnosis or treatment decisions.

What it does: reads the whole-tumour and core masks of 2–3 timepoints (first, middle, last) and
the wm/gm/csf maps in a {enc.CROP_VOXELS}³ crop at {enc.CROP_SPACING_MM:g} mm around the first lesion, plus
the day gaps, and outputs Fisher–Kolmogorov D_w, ρ and the tumour seed centre
(`HybridNeuroLib/hybrid/encoder.py`). Used alone (`make_model("series")`) or as an extra start
of the gradient fit (`PhysicsModel(start_from_encoder=True)`).

Training command: `{training['command']}` (CPU, one thread;
{training['total_s']:.0f} s, of which training {training['train_s']:.0f} s; simulations are cached
under the cache root and reused by a repeated call).

Data: {training['subjects']} training anatomies (SRI24 at 2 mm, randomly deformed; seeds from
`hybrid.cohort.training_seeds`), {training['simulations_per_subject']} FK simulations on each by the
engine's own solver: a 3 mm seed in deep white matter, D_w and ρ log-uniform in the literature
ranges with front speed 0.02–0.12 mm/day (`synth.parameters.sample_parameters`), first scan when
the visible lesion has about the drawn detection radius (7–14 mm), scans every 15 days to day
240, labels at the default thresholds. Schedules of 2–3 scans with gaps of 30–120 days are drawn
during training (visible, non-shrinking lesions only); axis flips and permutations augment.
The truth is the plain FK model with the fit's own tissue model (r = 10): on lesions from
richer growth (anisotropy, necrosis, heterogeneous ρ, real scans) expect larger errors.

Training: {training['steps']} Adam steps, batch {training['batch']}, learning rate
{training['learning_rate']} (cosine), seed {training['seed']}, {training['simulations']} usable simulations;
final training loss {training['final_training_loss']}.

Validation ({training['validation_subjects']} held-out training-cohort anatomies,
{validation.get('cases', 0)} simulations, one random schedule each): median relative error
D_w {percent('dw_median_relative_error')}, ρ {percent('rho_median_relative_error')}, front speed
{percent('speed_median_relative_error')}; median seed error {validation.get('seed_median_error_mm', math.nan):.1f} mm
(the seed of these simulations lies within ~1 mm of the first lesion's centroid, so this number
says little).
"""
