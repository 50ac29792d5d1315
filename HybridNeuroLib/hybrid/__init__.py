"""Forecasting models behind one interface: physics, hybrid physics–neural, and data-driven.

    >>> from HybridNeuroLib.hybrid import make_model, model_names, load_model
    >>> model_names()[0]
    'physics'

``base`` (the interface, registry and checkpoints), ``cohort`` (synthetic training/evaluation
cases whose truth is richer than the Fisher–Kolmogorov model), ``physics_model`` (the
mechanistic fit alone); each hybrid lives in its own module, registered by name.
"""

from HybridNeuroLib.hybrid.base import (CheckpointError, ForecastModel, load_model, make_model, model_class,
                                        model_names, register)

__all__ = ["CheckpointError", "ForecastModel", "load_model", "make_model", "model_class", "model_names", "register"]
