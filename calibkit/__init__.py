"""calibkit: measure and fix the calibration of classifiers.

The public API is imported lazily, so ``import calibkit`` (and ``calibkit --help``) stays fast::

    >>> import calibkit
    >>> calibkit.ece([[0.1, 0.9], [0.1, 0.9]], [1, 0], kind="probs", n_bins=10)
    0.4
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from calibkit._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from calibkit.api import accuracy, brier, compare, ece, evaluate, nll, sweep_temperature
    from calibkit.calibrators import TemperatureScaler, fit_temperature
    from calibkit.errors import CalibkitError, InputError
    from calibkit.loaders import ReadOptions, load_predictions, read_predictions
    from calibkit.metrics import CalibrationSummary, summarize
    from calibkit.predictions import Predictions

_LAZY = {
    "accuracy": "calibkit.api",
    "brier": "calibkit.api",
    "compare": "calibkit.api",
    "ece": "calibkit.api",
    "evaluate": "calibkit.api",
    "nll": "calibkit.api",
    "sweep_temperature": "calibkit.api",
    "TemperatureScaler": "calibkit.calibrators",
    "fit_temperature": "calibkit.calibrators",
    "CalibkitError": "calibkit.errors",
    "InputError": "calibkit.errors",
    "ReadOptions": "calibkit.loaders",
    "load_predictions": "calibkit.loaders",
    "read_predictions": "calibkit.loaders",
    "CalibrationSummary": "calibkit.metrics",
    "summarize": "calibkit.metrics",
    "Predictions": "calibkit.predictions",
}

__all__ = [
    "CalibkitError",
    "CalibrationSummary",
    "InputError",
    "Predictions",
    "ReadOptions",
    "TemperatureScaler",
    "__version__",
    "accuracy",
    "brier",
    "compare",
    "ece",
    "evaluate",
    "fit_temperature",
    "load_predictions",
    "nll",
    "read_predictions",
    "summarize",
    "sweep_temperature",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'calibkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
