"""Population training of the neural ODE's vector-field networks (``hybridneuro train-hybrid neural-ode``).

    >>> from HybridNeuroLib.hybrid.neural_ode_training import train_network, model_card
    >>> callable(train_network) and callable(model_card)
    True

:func:`train_network` fits one population network (auto-decoder: each training subject has its
own code, and with the physics term its own log D_w, log ρ) by Adam on random batches of
trajectories (subject, start day) scored by soft Dice at later days; unstable batches (non-finite
loss or gradients) are skipped instead of poisoning the weights. :func:`model_card` writes the
shipped folder's card. The model itself is :mod:`HybridNeuroLib.hybrid.neural_ode`.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

from HybridNeuroLib.hybrid.neural_ode_core import (DW_BOUNDS_MM2_PER_DAY, RHO_BOUNDS_PER_DAY, VARIANTS, BoxData,
                                                   Trajectories, bounded, initial_code, label_loss, pad_to)
from HybridNeuroLib.hybrid.ode_field import FieldNetwork
from HybridNeuroLib.progress import Progress


def train_network(boxes: Sequence[BoxData], physics_term: bool, *, steps: int, batch: int, seed: int,
                  max_step_days: float, progress: bool, log: Callable[[str], None]
                  ) -> tuple[FieldNetwork, dict, dict]:
    """One population network with per-subject codes (and log D_w, log ρ): Adam on random trajectory batches."""
    days = boxes[0].days
    gaps = np.diff(days)
    if any(box.days != days for box in boxes) or len(days) < 3 or not np.allclose(gaps, gaps[0]):
        raise ValueError(f"training cases must share equally spaced days (≥ 3), got {[b.days for b in boxes]}")
    offsets = [float(gaps[0]), float(2 * gaps[0])]
    spacing = tuple(float(h) for h in reversed(boxes[0].geometry.spacing_mm))
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    network = FieldNetwork()
    observed = len(days) - 2    # the speed feature sees the days a forecast would see (0–120 of 0–240)
    codes = torch.cat([initial_code(box, observed, network.code_size) for box in boxes]).requires_grad_(True)
    groups = [{"params": network.parameters(), "lr": 3e-3}, {"params": [codes], "lr": 0.1}]
    log_physics = None
    if physics_term:
        log_physics = torch.tensor([[math.log(0.1), math.log(0.02)]] * len(boxes), requires_grad=True)
        groups.append({"params": [log_physics], "lr": 0.1})
    optimizer = torch.optim.Adam(groups)
    samples = [(s, i) for s in range(len(boxes)) for i in range(len(days) - 2)]
    order: list[int] = []
    losses, skipped = [], 0
    with Progress(f"train neural-ode ({VARIANTS[physics_term]})", total=steps, enabled=progress) as bar:
        for step in range(steps):
            if len(order) < batch:
                order += torch.randperm(len(samples), generator=generator).tolist()
            chosen, order = [samples[n] for n in order[:batch]], order[batch:]
            subject = torch.tensor([s for s, _ in chosen])
            shape = [max(boxes[s].states.shape[-3 + a] for s, _ in chosen) for a in range(3)]  # pad to the batch's box
            static = torch.stack([pad_to(boxes[s].static, shape) for s, _ in chosen])
            u0 = torch.stack([pad_to(boxes[s].states[i], shape) for s, i in chosen])
            trajectories = Trajectories(static, torch.stack([pad_to(boxes[s].diffusivity, shape) for s, _ in chosen]),
                                        spacing, network, codes[subject],
                                        None if log_physics is None else log_physics[subject], max_step_days)
            bar.advance()
            predicted = trajectories.run(u0, offsets)
            targets = {name: [torch.stack([pad_to(getattr(boxes[s], name)[i + n + 1], shape) for s, i in chosen])
                              for n in range(len(offsets))] for name in ("whole", "core")}
            fit = torch.stack([label_loss(predicted[n], targets["whole"][n], targets["core"][n])
                               for n in range(len(offsets))]).mean()
            loss = fit + 1e-3 * codes[subject].pow(2).sum(1).mean()
            if physics_term:  # APHYNITY-style: keep the network's share small so D_w, ρ stay meaningful
                rate = network(u0, static, codes[subject]) * network.time_scale_days
                loss = loss + 0.1 * rate.pow(2).mean()
                # densities outside [0, 1] are unphysical and make the logistic term stiff
                loss = loss + (torch.relu(predicted - 1.0).pow(2) + torch.relu(-predicted).pow(2)).mean()
            optimizer.zero_grad()
            loss.backward()
            gradients = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            if not all(torch.isfinite(g).all() for g in gradients) or not torch.isfinite(loss):
                skipped += 1   # an unstable batch must not poison the weights: drop its update
                continue
            torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
            optimizer.step()
            losses.append(fit.item())
            if (step + 1) % 25 == 0:
                log(f"{VARIANTS[physics_term]} step {step + 1}/{steps}: label loss {np.mean(losses[-25:]):.4f}")
    summary = {"final_label_loss_last25": round(float(np.mean(losses[-25:])), 4),
               "first_label_loss_first25": round(float(np.mean(losses[:25])), 4), "skipped_steps": skipped}
    physics = {}
    if log_physics is not None:
        dw = bounded(log_physics[:, 0].detach(), DW_BOUNDS_MM2_PER_DAY)
        rho = bounded(log_physics[:, 1].detach(), RHO_BOUNDS_PER_DAY)
        physics = {"dw_mm2_per_day": round(float(dw.median()), 5), "rho_per_day": round(float(rho.median()), 5)}
        summary["population_physics_median"] = physics
    network.requires_grad_(False)
    return network, summary, physics


def model_card(training: dict, population: dict) -> str:
    """MODEL_CARD.md of a population folder (what it is, how it was made, what it was trained on)."""
    return f"""# neural-ode population networks

**Trained on synthetic data only. Not a clinical model**: never use it for patient care.

- What: two vector-field networks of the neural ODE (HybridNeuroLib/hybrid/neural_ode.py): ``data-only``
  (du/dt = network) and ``physics`` (du/dt = Fisher–Kolmogorov + network), each
  {sum(p.numel() for p in FieldNetwork().parameters())} parameters; physics-term population values
  D_w = {population.get('dw_mm2_per_day')} mm²/day, ρ = {population.get('rho_per_day')} /day
  (medians of the per-subject fits).
- Command: `hybridneuro train-hybrid neural-ode --subjects {training['subjects']} --seed {training['seed']} --out <folder>`
  (steps {training['steps']}, batch {training['batch']} per network; one CPU thread:
  `OMP_NUM_THREADS=1`); wall time {training['wall_time_s']} s.
- Data: synthetic training cohort (hybrid.cohort.synthetic_case, seeds from training_seeds({training['subjects']}),
  2 mm, days {training['case_days']}; truth = anisotropic FK + necrosis + heterogeneous ρ), never the
  evaluation seeds. Trajectories start at days 0, 60, 120 from the observed labels and are scored at +60
  and +120 days (soft whole-tumour Dice + ¼ core Dice) on a 4 mm box.
- Training loss (1 − soft Dice, mean of the first / last 25 steps):
  data-only {training['data-only']['first_label_loss_first25']} → {training['data-only']['final_label_loss_last25']},
  physics {training['physics']['first_label_loss_first25']} → {training['physics']['final_label_loss_last25']}.
"""
