"""Platt scaling (Platt 1999): ``sigmoid(a x + b)`` of the binary log-odds ``x`` of a score.

``x`` is the **logit of the confidence**, never the probability itself (fitting a sigmoid to
``p`` is a different, worse map: scikit-learn#34312): for logit inputs
``x = log p - log(1 - p)`` from log-softmax (for the top class ``z_top - logsumexp(z_others)``,
exact however confident the model is; ``|z| = 1e4`` is fine), for probability inputs
``log p - log(1 - p)`` with an exact 0 (of ``p`` or of ``1 - p``) read as the smallest positive
number of the stored dtype (:mod:`calibkit.calibrators.reductions`). ``a = 1, b = 0`` is the
identity.

``(a, b)`` minimise the mean NLL (binary cross-entropy against the targets: 0/1, or a soft
label's mass), a convex problem: fitted by damped Newton (Levenberg-Marquardt), one streaming
pass per iteration (memory O(one chunk)), to the convergence rule of
:class:`~calibkit.calibrators.outcome.FitOutcome` (reported under ``"fit"``). It is the
unregularised one-feature logistic regression on ``x`` (scikit-learn's
``LogisticRegression(penalty=None)``). Platt's target smoothing is not applied. On data the map
separates the NLL has no minimum: the fit stops at its iteration limit and says so.

The maps are combined by the reduction (:mod:`calibkit.calibrators.reductions`; default
``binary`` for K = 2, ``top`` for K > 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from calibkit.calibrators import registry
from calibkit.calibrators.base import Calibrator, Hyperparameter
from calibkit.calibrators.reductions import Columns, LogisticCalibrator, reduction_hyperparameter

__all__ = ["PlattScaler"]


@dataclass(frozen=True, eq=False)
class PlattScaler(LogisticCalibrator):
    """Platt scaling (method ``"platt"``; see the module docstring): parameters ``a``, ``b``."""

    method: ClassVar[str] = "platt"
    title: ClassVar[str] = "Platt scaling"
    abbreviation: ClassVar[str] = "Platt"
    calibrated_as: ClassVar[str] = "Platt-scaled"
    symbols: ClassVar[Mapping[str, str]] = {"a": "a", "b": "b"}
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = (reduction_hyperparameter(),)
    names: ClassVar[tuple[str, ...]] = ("a", "b")
    start: ClassVar[tuple[float, ...]] = (1.0, 0.0)

    @classmethod
    def design(cls, cols: Columns) -> NDArray[np.float64]:
        x = cols.logit
        return np.stack([x, np.ones_like(x)], axis=2)


registry.register(PlattScaler.method, PlattScaler)
_IS_A_CALIBRATOR: type[Calibrator] = PlattScaler  # mypy checks the protocol here
