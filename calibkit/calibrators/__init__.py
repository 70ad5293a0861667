"""Calibrators: maps fitted on held-out predictions that make confidences honest.

Every calibrator is a :class:`~calibkit.calibrators.base.Calibrator`, registered by name in
:mod:`calibkit.calibrators.registry`. The methods, in the order they are registered (the order
``registry.names()`` lists them): ``temperature``; the linear family ``vector``, ``matrix``,
``matrix-odir``, ``dirichlet-odir`` (:mod:`~calibkit.calibrators.linear`); ``ets``; the binary
maps with their multiclass reductions ``histogram``, ``isotonic``, ``platt``, ``beta``
(:mod:`~calibkit.calibrators.reductions`).

Adding a method inside calibkit: a module ``calibkit/calibrators/<method>.py`` that defines the
class and ends with its registration, as :mod:`~calibkit.calibrators.temperature` does::

    registry.register(MyScaler.method, MyScaler)

and one import of that module below, in its own ``# isort: split`` block where it should
appear in the list (and the name in ``__all__``): importing ``calibkit.calibrators`` (which
every use of the registry does first) then registers it. Outside calibkit the same module is a
plugin (:mod:`calibkit.plugins`: an entry point of the group ``calibkit.plugins``, or
``CALIBKIT_PLUGINS``), imported when a lookup misses.
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

# isort: split
# registered in this order (the blocks keep import sorting from reordering them)
from calibkit.calibrators.vector import VectorScaler

# isort: split
from calibkit.calibrators.matrix import MatrixScaler, OdirMatrixScaler

# isort: split
from calibkit.calibrators.dirichlet import DirichletCalibrator

# isort: split
from calibkit.calibrators.ets import EnsembleTemperatureScaler

# isort: split
from calibkit.calibrators.histogram import HistogramBinning

# isort: split
from calibkit.calibrators.isotonic import IsotonicRegression

# isort: split
from calibkit.calibrators.platt import PlattScaler

# isort: split
from calibkit.calibrators.beta import BetaCalibration

__all__ = [
    "CALIBRATOR_FORMAT",
    "BetaCalibration",
    "CalibratedPredictions",
    "Calibrator",
    "CalibratorBase",
    "DirichletCalibrator",
    "EnsembleTemperatureScaler",
    "GridTemperatureScaler",
    "HistogramBinning",
    "IsotonicRegression",
    "MatrixScaler",
    "OdirMatrixScaler",
    "PlattScaler",
    "ScaledPredictions",
    "TemperatureFit",
    "TemperatureScaler",
    "TemperatureSweep",
    "VectorScaler",
    "fit_temperature",
    "fit_temperature_grid",
    "nll_gradient_hessian",
    "parse_grid",
    "registry",
    "sweep_temperatures",
]
