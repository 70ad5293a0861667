"""Selective prediction and HELM's calibration metrics of a prediction source (``calibkit
selective``).

:func:`selective_metrics` reads the source once for every row's top-label confidence and
correctness (:func:`calibkit.metrics.summary.collect_example_stats`: per-row arrays, ``O(N)``
memory, so a cluster's passes refuse it) and computes
:func:`calibkit.metrics.correctness.correctness_metrics` of them (every number is defined
there). For logits and probabilities ``ts_ece_10_bin`` is cross-fitted with calibkit's own
temperature scaling: for each fold ``j`` of :class:`~calibkit.sources.folds.FoldView` (the same
folds as the cross-fitted Platt map), :func:`~calibkit.calibrators.temperature.fit_temperature`
on the other folds, and the held-out rows' confidences of ``softmax(z / T)`` (a streamed
:class:`~calibkit.calibrators.temperature.ScaledPredictions` of the held-out view); one fit of a
few passes per fold. Confidence-only rows use the binary temperature ``sigmoid(logit(c) / T)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from calibkit.engine.executors import ThreadExecutor
from calibkit.metrics.correctness import (
    DEFAULT_COVERAGES,
    DEFAULT_FOLDS,
    CorrectnessMetrics,
    check_coverages,
    correctness_metrics,
    cross_fit,
)
from calibkit.metrics.selection import refuse_distributed
from calibkit.metrics.summary import collect_example_stats
from calibkit.sources.predictions import PredictionSource

__all__ = ["selective_metrics"]


def _kway_temperature(
    predictions: PredictionSource,
    outcome: NDArray[np.float64],
    *,
    folds: int,
    seed: int,
    chunk_rows: int | None,
    workers: int | None,
) -> tuple[NDArray[np.float64] | None, str | None]:
    """Every row's held-out confidence after temperature scaling fitted on the other folds, or
    ``(None, reason)``."""
    from calibkit.calibrators.temperature import ScaledPredictions, fit_temperature
    from calibkit.sources.folds import FoldView

    fold, reason = cross_fit(outcome.size, folds=folds, seed=seed)
    if fold is None:
        return None, reason
    out = np.empty(outcome.size, dtype=np.float64)
    for j in range(folds):
        train = outcome[fold != j]
        if (train >= 1).all() or (train <= 0).all():
            which = "correct" if (train >= 1).all() else "wrong"
            return None, f"fold {j}'s training rows are one class only (every row is {which})"
        scaler = fit_temperature(
            FoldView.training(predictions, j, folds=folds, seed=seed), chunk_rows=chunk_rows
        )
        held = ScaledPredictions(
            FoldView.held_out(predictions, j, folds=folds, seed=seed), 1.0 / scaler.temperature
        )
        stats = collect_example_stats(held, chunk_rows=chunk_rows, workers=workers, warn=False)
        mask = fold == j
        if stats.confidence.size != int(mask.sum()):  # pragma: no cover - a changing source
            from calibkit.errors import InputError

            raise InputError(predictions.source, "the data changed between two reads")
        out[mask] = stats.confidence
    return out, None


def selective_metrics(
    predictions: PredictionSource,
    *,
    n_bins: int = 15,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    coverages: Sequence[float] = DEFAULT_COVERAGES,
    chunk_rows: int | None = None,
    workers: int | None = None,
) -> CorrectnessMetrics:
    """Every metric of :mod:`calibkit.metrics.correctness` of ``predictions``' top-label
    confidences and correctness (see the module docstring).

    >>> from calibkit.sources.predictions import Predictions
    >>> p = Predictions.from_arrays([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0]], [0, 0, 1, 1])
    >>> m = selective_metrics(p, folds=2)
    >>> m.n, m.accuracy, m.auroc  # correct: conf .88, .95; wrong: .73, .73
    (4, 0.5, 1.0)
    """
    executor = None if workers is None else ThreadExecutor(workers)
    refuse_distributed(
        f"{predictions.source}: selective prediction and HELM's calibration metrics keep every "
        "row's confidence",
        executor,
    )
    check_coverages(coverages)
    stats = collect_example_stats(predictions, chunk_rows=chunk_rows, workers=workers)
    outcome = stats.outcome
    ts_conf: NDArray[np.float64] | None = None
    ts_reason: str | None = None
    ts_method = "binary"
    if predictions.kind in ("logits", "probs"):
        ts_method = "softmax"
        ts_conf, ts_reason = _kway_temperature(
            predictions, outcome, folds=folds, seed=seed, chunk_rows=chunk_rows, workers=workers
        )
    return correctness_metrics(
        stats.confidence,
        outcome,
        n_bins=n_bins,
        folds=folds,
        seed=seed,
        coverages=coverages,
        ts_confidence=ts_conf,
        ts_reason=ts_reason,
        ts_method=ts_method,
        source=predictions.source,
    )
