"""Calibrators: maps fitted on held-out predictions that make confidences honest."""

from calibkit.calibrators.sweep import TemperatureSweep, sweep_temperatures
from calibkit.calibrators.temperature import (
    ScaledPredictions,
    TemperatureFit,
    TemperatureScaler,
    fit_temperature,
    nll_gradient_hessian,
)

__all__ = [
    "ScaledPredictions",
    "TemperatureFit",
    "TemperatureScaler",
    "TemperatureSweep",
    "fit_temperature",
    "nll_gradient_hessian",
    "sweep_temperatures",
]
