"""calibkit: measure and fix the calibration of classifiers.

The public API is imported lazily, so ``import calibkit`` (and ``calibkit --help``) stays fast::

    >>> import calibkit
    >>> calibkit.ece([[0.1, 0.9], [0.1, 0.9]], [1, 0], kind="probs", n_bins=10)
    0.4
"""

# No import runs here, not even ``__future__`` or ``typing``: the console script imports this
# package before calibkit/_entry.py can install its signal handlers, so every statement here
# lies in the window where a Ctrl-C would end in Python's own KeyboardInterrupt traceback.
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from calibkit._version import __version__
    from calibkit.api import accuracy, brier, compare, ece, evaluate, nll, sweep_temperature
    from calibkit.calibrators import TemperatureScaler, fit_temperature
    from calibkit.errors import CalibkitError, InputError
    from calibkit.loaders import ReadOptions, load_predictions, read_predictions
    from calibkit.metrics import CalibrationSummary, summarize
    from calibkit.sources.predictions import Predictions

_LAZY = {
    "__version__": "calibkit._version",
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
    "Predictions": "calibkit.sources.predictions",
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


def __getattr__(name: str) -> "Any":
    import importlib

    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'calibkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> "list[str]":
    return sorted(__all__)
