"""The chosen optimiser behind one call: Adam through the solver or derivative-free CMA-ES.

    >>> from HybridNeuroLib.fit.refine import steps
    >>> from HybridNeuroLib.fit.settings import FitSettings
    >>> steps(FitSettings(iterations=60)), steps(FitSettings(optimizer="cmaes", evaluations=600), member=True)
    (60, 150)

A start runs ``settings.iterations`` Adam steps or ``settings.evaluations`` CMA-ES losses; an
ensemble member (warm start from the best fit) runs ``settings.member_iterations`` Adam steps at
half the learning rate, or a quarter of the CMA-ES budget at half the step size. ``steps`` is
the matching progress count.
"""

from __future__ import annotations

from typing import Callable, Sequence

from HybridNeuroLib.fit.cmaes_fit import search
from HybridNeuroLib.fit.objective import Objective
from HybridNeuroLib.fit.optimize import GrowthFit, descend
from HybridNeuroLib.fit.settings import FitSettings


def steps(settings: FitSettings, member: bool = False) -> int:
    """Progress steps of one start (or one ensemble member) under ``settings``."""
    if settings.optimizer == "cmaes":
        return max(settings.evaluations // 4, 1) if member else settings.evaluations
    return settings.member_iterations if member else settings.iterations


def refine(objective: Objective, start: GrowthFit, settings: FitSettings, *, random_seed: int,
           member: bool = False, fit_growth: bool = True, weights: Sequence[float] | None = None,
           on_step: Callable[[], None] = lambda: None) -> GrowthFit:
    """Optimise from ``start`` with ``settings.optimizer``; ``random_seed`` drives CMA-ES's sampling."""
    if settings.optimizer == "cmaes":
        return search(objective, start, settings, evaluations=steps(settings, member), seed=random_seed,
                      sigma=settings.cmaes_sigma / (2.0 if member else 1.0), fit_growth=fit_growth,
                      weights=weights, on_evaluation=on_step)
    return descend(objective, start, settings, iterations=steps(settings, member),
                   learning_rate=settings.learning_rate / (2.0 if member else 1.0), fit_growth=fit_growth,
                   weights=weights, on_iteration=on_step)
