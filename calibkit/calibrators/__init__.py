"""Calibrators: maps fitted on held-out predictions that make confidences honest.

Every calibrator is a :class:`~calibkit.calibrators.base.Calibrator`, registered by name in
:mod:`calibkit.calibrators.registry`; temperature scaling (``"temperature"``) is the first.

Adding a method inside calibkit: a module ``calibkit/calibrators/<method>.py`` that defines the
class and ends with its registration, as :mod:`~calibkit.calibrators.temperature` does::

    registry.register(PlattScaler.method, PlattScaler)

and one import of that module below, next to the temperature one (``from
calibkit.calibrators.platt import PlattScaler``, and the name in ``__all__``): importing
``calibkit.calibrators`` (which every use of the registry does first) then registers it.
Outside calibkit the same module is a plugin (:mod:`calibkit.plugins`: an entry point of the
group ``calibkit.plugins``, or ``CALIBKIT_PLUGINS``), imported when a lookup misses.
"""

from calibkit.calibrators import registry
from calibkit.calibrators.base import (
    CALIBRATOR_FORMAT,
    CalibratedPredictions,
    Calibrator,
    CalibratorBase,
)
from calibkit.calibrators.ets import EnsembleTemperatureScaler
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
    "EnsembleTemperatureScaler",
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
