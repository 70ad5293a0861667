"""Beta calibration (Kull, Silva Filho & Flach 2017):
``sigmoid(a log p - b log(1 - p) + c)`` with ``a, b >= 0``.

Three parameters; ``a = b = 1, c = 0`` is the identity. ``log p`` and ``log(1 - p)`` are
computed as in :mod:`calibkit.calibrators.reductions` (log-softmax for logits; exact zeros of
probabilities read as the dtype's smallest positive number). The mean NLL is convex in
``(a, b, c)``; the constraint ``a, b >= 0`` (which makes the map non-decreasing) is handled as in
the paper and its reference implementation ``betacal``: fit unconstrained and, when a
coefficient comes out negative, refit with it fixed at 0. Here that is made exact: the
unconstrained fit is kept when feasible; otherwise the three faces (``a = 0``, ``b = 0``,
``a = b = 0``) are fitted (in the same passes) and the feasible one with the lowest NLL is the
constrained optimum (the minimum of a convex function over a box lies on one of those faces
when the unconstrained minimum lies outside). ``betacal`` takes the face of the first negative
coefficient; the two agree whenever that face is the optimum, the usual case.

Each fit is damped Newton (Levenberg-Marquardt), one streaming pass per iteration; how it ended
is under ``"fit"`` (:class:`~calibkit.calibrators.outcome.FitOutcome`): the gradient there is
the projected one (for a parameter held at 0, ``max(0, -dNLL/dtheta)``: the KKT residual).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from calibkit.calibrators import registry
from calibkit.calibrators.base import Calibrator, Hyperparameter
from calibkit.calibrators.outcome import FitOutcome
from calibkit.calibrators.reductions import (
    Columns,
    LogisticCalibrator,
    Problem,
    Reduction,
    fit_logistic,
    outcome,
    reduction_hyperparameter,
)
from calibkit.sources.predictions import PredictionSource

__all__ = ["BetaCalibration"]

#: The faces tried when the unconstrained fit has a negative ``a`` or ``b``: (free, start).
FACES = (
    ((False, True, True), (0.0, 1.0, 0.0)),
    ((True, False, True), (1.0, 0.0, 0.0)),
    ((False, False, True), (0.0, 0.0, 0.0)),
)


@dataclass(frozen=True, eq=False)
class BetaCalibration(LogisticCalibrator):
    """Beta calibration (method ``"beta"``; see the module docstring): ``a``, ``b``, ``c``."""

    method: ClassVar[str] = "beta"
    title: ClassVar[str] = "beta calibration"
    abbreviation: ClassVar[str] = "Beta"
    calibrated_as: ClassVar[str] = "beta-calibrated"
    symbols: ClassVar[Mapping[str, str]] = {"a": "a", "b": "b", "c": "c"}
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = (reduction_hyperparameter(),)
    names: ClassVar[tuple[str, ...]] = ("a", "b", "c")
    start: ClassVar[tuple[float, ...]] = (1.0, 1.0, 0.0)

    @classmethod
    def design(cls, cols: Columns) -> NDArray[np.float64]:
        return np.stack([cols.log_p, -cols.log_1mp, np.ones_like(cols.log_p)], axis=2)

    @classmethod
    def solve(
        cls, source: PredictionSource, reduction: Reduction, m: int, chunk_rows: int | None
    ) -> tuple[NDArray[np.float64], FitOutcome]:
        first = [Problem(j, (True, True, True), cls.start) for j in range(m)]
        theta, f, g, it, passes, rows = fit_logistic(
            source, reduction, cls.design, first, chunk_rows=chunk_rows, description=cls.title
        )
        bad = np.flatnonzero((theta[:, 0] < 0) | (theta[:, 1] < 0))
        if bad.size:
            faces = [Problem(int(j), free, start) for j in bad for free, start in FACES]
            th2, f2, g2, it2, p2, _ = fit_logistic(
                source, reduction, cls.design, faces, chunk_rows=chunk_rows, description=cls.title
            )
            it, passes = it + it2, passes + p2
            for i, j in enumerate(bad):
                block = slice(3 * i, 3 * i + 3)
                cand_t, cand_f, cand_g = th2[block], f2[block], g2[block]
                feasible = (cand_t[:, 0] >= 0) & (cand_t[:, 1] >= 0)
                best = int(np.argmin(np.where(feasible, cand_f, np.inf)))
                theta[j], f[j], g[j] = cand_t[best], cand_f[best], cand_g[best]
        return theta, outcome(f, g, it, passes, rows)


registry.register(BetaCalibration.method, BetaCalibration)
_IS_A_CALIBRATOR: type[Calibrator] = BetaCalibration  # mypy checks the protocol here
