"""Warnings of the temperature fit point at the caller's line, not into calibkit.

Regression: a progress decorator added a stack frame to the fit, and the warnings' stack levels
then stopped inside ``fit_temperature``, so ``python -W error`` tracebacks and warning filters by
module named calibkit's own file."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from calibkit.calibrators.temperature import fit_temperature, fit_temperature_with_metrics

LOGITS = (np.array([[30.0, 0.0], [30.0, 0.0]]), [0, 0])  # all right: T -> t_min, clamped
PROBS = (np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]), [1, 0, 0])  # zeros, saturation


@pytest.mark.parametrize("fit", [fit_temperature, fit_temperature_with_metrics])
@pytest.mark.parametrize("data", [LOGITS, PROBS], ids=["clamped-logits", "zero-probs"])
def test_fit_warnings_name_the_callers_line(fit: Callable[..., Any], data: Any) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        here = inspect.currentframe()
        assert here is not None
        fit(*data)
        fit_line = here.f_lineno - 1  # the line of the call above
    assert len(caught) >= 1
    assert [(w.filename, w.lineno) for w in caught] == [(__file__, fit_line)] * len(caught), [
        (w.filename, w.lineno, str(w.message)[:50]) for w in caught
    ]
