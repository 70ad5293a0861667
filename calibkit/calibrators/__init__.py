"""Calibrators: maps fitted on held-out predictions that make confidences honest.

Every calibrator is a :class:`~calibkit.calibrators.base.Calibrator`, registered by name in
:mod:`calibkit.calibrators.registry`; temperature scaling (``"temperature"``) is the first.
"""

from calibkit.calibrators import registry
from calibkit.calibrators.base import (
    CALIBRATOR_FORMAT,
    CalibratedPredictions,
    Calibrator,
    CalibratorBase,
)
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
    "CALIBRATOR_FORMAT",
    "CalibratedPredictions",
    "Calibrator",
    "CalibratorBase",
    "GridTemperatureScaler",
    "ScaledPredictions",
    "TemperatureFit",
    "TemperatureScaler",
    "TemperatureSweep",
    "fit_temperature",
    "fit_temperature_grid",
    "nll_gradient_hessian",
    "parse_grid",
    "registry",
    "sweep_temperatures",
]
