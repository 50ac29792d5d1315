"""Personalised forecasting with the mechanistic (Fisher–Kolmogorov) model: fit, predict, uncertainty, treat.

    >>> from HybridNeuroLib.fit import FitSettings, fit_growth, fit_study, predict, FitResult
    >>> FitSettings().voxel_mm
    2.0

One job per module: ``settings`` (bounds, optimiser, ensemble), ``observations`` (checks and
the fitting grid), ``initialise`` (starts from radial speed and front width, onset dating),
``objective`` (margin or soft-Dice loss through the differentiable solver), ``optimize`` (Adam
on bounded log-parameters), ``cmaes_fit`` (derivative-free CMA-ES on the same parameters),
``refine`` (the chosen optimiser behind one call), ``ensemble`` (uncertainty), ``fitting``
(the one-call fit), ``result`` (``params.json``), ``predict`` (density, labels and probability
maps on any grid), ``scenarios`` (treatment what-ifs on a fitted patient), ``target``
(PREDICT-GBM radiotherapy targets and their coverage), ``study_fit`` (study folders).
"""

from HybridNeuroLib.fit.fitting import fit_growth
from HybridNeuroLib.fit.observations import ShrinkingLesionError
from HybridNeuroLib.fit.optimize import GrowthFit
from HybridNeuroLib.fit.predict import Forecast, predict
from HybridNeuroLib.fit.result import FitResult
from HybridNeuroLib.fit.settings import FitSettings
from HybridNeuroLib.fit.study_fit import fit_study

__all__ = ["FitResult", "FitSettings", "Forecast", "GrowthFit", "ShrinkingLesionError", "fit_growth",
           "fit_study", "predict"]
