"""Calibrators: maps fitted on held-out predictions that make confidences honest."""

from calibkit.calibrators.grid import GridTemperatureScaler, fit_temperature_grid, parse_grid
from calibkit.calibrators.sweep import TemperatureSweep, sweep_temperatures
from calibkit.calibrators.temperature import (
    ScaledPredictions,
    TemperatureFit,
    TemperatureScaler,
    fit_temperature,
    nll_gradient_hessian,
)

__all__ = [
    "GridTemperatureScaler",
    "ScaledPredictions",
    "TemperatureFit",
    "TemperatureScaler",
    "TemperatureSweep",
    "fit_temperature",
    "fit_temperature_grid",
    "nll_gradient_hessian",
    "parse_grid",
    "sweep_temperatures",
]
