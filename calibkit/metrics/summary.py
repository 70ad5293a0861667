"""All headline metrics of a set of predictions from one pass over its chunks.

:func:`summarize` reads each chunk of scores once, turns it into per-example statistics
(:func:`~calibkit.metrics.examples.example_stats`) and folds those into float64 accumulators whose
size does not depend on ``N`` (for equal-width bins; equal-mass bins need the sorted confidences,
so that binning keeps two float64 numbers per example). The result does not depend on the chunk
size beyond float64 summation order.

Definitions (natural logarithms; ``p`` the softmax of the logits, ``y`` the label):

* accuracy   = share of rows whose ``argmax_k p_k`` (first index on ties) is ``y``
* NLL        = mean of ``-log p_y`` (cross-entropy ``-sum_k t_k log p_k`` for soft labels ``t``)
* Brier      = mean of ``sum_k (p_k - onehot(y)_k)^2``; for a binary model this counts both
  classes, so it is twice scikit-learn's ``brier_score_loss``
* ECE, MCE, RMSCE: see :mod:`calibkit.metrics.calibration`
* saturated_fraction = share of rows whose float64 confidence is exactly 1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.errors import InputError
from calibkit.metrics.binning import (
    Binning,
    assign_mass_bins,
    assign_width_bins,
    check_binning,
    check_n_bins,
    mass_bin_edges,
    width_bin_edges,
)
from calibkit.metrics.calibration import BinTable
from calibkit.metrics.examples import BinaryMode, ExampleStats, example_stats
from calibkit.predictions import PredictionSource

__all__ = ["CalibrationSummary", "MetricAccumulator", "summarize"]

BINARY_MODES: tuple[BinaryMode, ...] = ("top-label", "positive")


@dataclass(frozen=True, eq=False)
class CalibrationSummary:
    """The metrics of one set of predictions (see the module docstring for definitions)."""

    n: int
    n_classes: int
    n_bins: int
    binning: Binning
    binary_mode: BinaryMode | None
    accuracy: float
    ece: float
    mce: float
    rmsce: float
    nll: float
    brier: float
    mean_confidence: float
    saturated_fraction: float
    bins: BinTable
    missing_classes: tuple[int, ...] = ()
    kind: str = "logits"
    soft_labels: bool = False
    source: str = "<array>"


class MetricAccumulator:
    """Float64 running sums that :func:`summarize` folds chunks into.

    >>> acc = MetricAccumulator(n_classes=2, n_bins=2)
    >>> _ = acc.update(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1, 1]))
    >>> round(acc.result().accuracy, 2)
    0.5
    """

    def __init__(
        self,
        n_classes: int,
        *,
        n_bins: int = 15,
        binning: Binning = "width",
        kind: str = "logits",
        binary_mode: BinaryMode = "top-label",
    ) -> None:
        self.n_classes = n_classes
        self.n_bins = check_n_bins(n_bins)
        self.binning = check_binning(binning)
        self.kind = kind
        self.binary_mode = binary_mode
        self.n = 0
        self.n_correct = 0
        self.n_saturated = 0
        self.sum_log_prob = 0.0
        self.sum_brier = 0.0
        self.sum_confidence = 0.0
        self.class_mass = np.zeros(n_classes, dtype=np.float64)
        self.count = np.zeros(self.n_bins, dtype=np.int64)
        self.bin_confidence = np.zeros(self.n_bins, dtype=np.float64)
        self.bin_outcome = np.zeros(self.n_bins, dtype=np.float64)
        self._mass_parts: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []
        self.soft_labels = False

    def update(self, scores: NDArray[np.floating], labels: NDArray[Any]) -> ExampleStats:
        """Fold one validated chunk in; returns its per-example statistics."""
        stats = example_stats(scores, labels, self.kind, binary_mode=self.binary_mode)
        self.update_stats(stats, labels)
        return stats

    def update_stats(self, stats: ExampleStats, labels: NDArray[Any]) -> None:
        """Fold precomputed per-example statistics in."""
        self.n += stats.confidence.size
        self.n_correct += int(np.count_nonzero(stats.correct))
        self.n_saturated += int(np.count_nonzero(stats.saturated))
        self.sum_log_prob += float(stats.log_prob.sum())
        self.sum_brier += float(stats.brier.sum())
        self.sum_confidence += float(stats.confidence.sum())
        if labels.ndim == 1:
            self.class_mass += np.bincount(labels, minlength=self.n_classes)
        else:
            self.soft_labels = True
            self.class_mass += labels.sum(axis=0)
        if self.binning == "width":
            idx = assign_width_bins(stats.confidence, self.n_bins)
            self._add_to_bins(idx, stats.confidence, stats.outcome)
        else:
            self._mass_parts.append((stats.confidence, stats.outcome))

    def _add_to_bins(
        self, idx: NDArray[np.intp], conf: NDArray[np.float64], outcome: NDArray[np.float64]
    ) -> None:
        m = self.n_bins
        self.count += np.bincount(idx, minlength=m)
        self.bin_confidence += np.bincount(idx, weights=conf, minlength=m)
        self.bin_outcome += np.bincount(idx, weights=outcome, minlength=m)

    def bin_table(self) -> BinTable:
        if self.binning == "width":
            edges = width_bin_edges(self.n_bins)
            lower, upper = edges[:-1].copy(), edges[1:].copy()
        else:
            conf = np.concatenate([c for c, _ in self._mass_parts]) if self._mass_parts else None
            upper = mass_bin_edges(conf if conf is not None else [], self.n_bins)
            lower = np.concatenate(([0.0], upper[:-1]))
            if conf is not None:
                outcome = np.concatenate([o for _, o in self._mass_parts])
                self._add_to_bins(assign_mass_bins(conf, upper), conf, outcome)
                self._mass_parts = []
        return BinTable(
            lower,
            upper,
            self.count.copy(),
            self.bin_confidence.copy(),
            self.bin_outcome.copy(),
            self.binning,
        )

    def result(self, *, source: str = "<array>", binary: bool = False) -> CalibrationSummary:
        if self.n == 0:
            raise InputError(source, "no rows: the predictions are empty")
        table = self.bin_table()
        n = self.n
        missing = tuple(int(k) for k in np.flatnonzero(self.class_mass == 0))
        return CalibrationSummary(
            n=n,
            n_classes=self.n_classes,
            n_bins=self.n_bins,
            binning=self.binning,
            binary_mode=self.binary_mode if binary else None,
            accuracy=self.n_correct / n,
            ece=table.ece(),
            mce=table.mce(),
            rmsce=table.rmsce(),
            nll=-self.sum_log_prob / n,
            brier=self.sum_brier / n,
            mean_confidence=self.sum_confidence / n,
            saturated_fraction=self.n_saturated / n,
            bins=table,
            missing_classes=missing,
            kind=self.kind,
            soft_labels=self.soft_labels,
            source=source,
        )


def summarize(
    predictions: PredictionSource,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    binary_mode: BinaryMode = "top-label",
    chunk_rows: int | None = None,
) -> CalibrationSummary:
    """Every headline metric of ``predictions`` from one pass over its chunks.

    ``binary_mode`` matters only for binary models: ``"top-label"`` (default) bins the top-label
    confidence like any classifier, so one logit and the equivalent two-class softmax agree;
    ``"positive"`` bins ``p(y = 1)`` against the frequency of class 1, the view of
    scikit-learn's ``calibration_curve``.

    >>> from calibkit.predictions import Predictions
    >>> p = Predictions.from_arrays([[0.0, 0.0], [2.0, 0.0]], [1, 0])
    >>> s = summarize(p, n_bins=10)
    >>> s.n, s.accuracy, round(s.nll, 4)
    (2, 0.5, 0.4100)
    """
    if binary_mode not in BINARY_MODES:
        raise InputError(predictions.source, f"unknown binary mode {binary_mode!r}")
    acc = MetricAccumulator(
        predictions.n_classes,
        n_bins=n_bins,
        binning=binning,
        kind=predictions.kind,
        binary_mode=binary_mode if predictions.binary else "top-label",
    )
    for scores, labels in predictions.chunks(chunk_rows):
        acc.update(scores, labels)
    return acc.result(source=predictions.source, binary=predictions.binary)
