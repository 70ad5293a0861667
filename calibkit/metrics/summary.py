"""All headline metrics of a set of predictions from one pass over its chunks.

:func:`summarize` reads each chunk of scores once, turns it into per-example statistics
(:func:`~calibkit.metrics.examples.example_stats`) and folds those into float64 accumulators whose
size does not depend on ``N`` (for equal-width bins; equal-mass bins need the sorted confidences,
so that binning keeps two float64 numbers per example). On a cluster
(:func:`~calibkit.engine.executors.is_distributed`) equal-mass bins instead find their edges
exactly in a few extra passes (:func:`calibkit.metrics.selection.mass_edges`) and then sum each
chunk into those fixed bins like equal-width ones: the same edges bit for bit, the same counts,
sums equal to float64 summation order. The result does not depend on the chunk size beyond
float64 summation order.

Definitions (natural logarithms; ``p`` the softmax of the logits, ``y`` the label):

* accuracy   = share of rows whose ``argmax_k p_k`` (first index on ties) is ``y``
* NLL        = mean of ``-log p_y`` (cross-entropy ``-sum_k t_k log p_k`` for soft labels ``t``);
  for probability inputs ``log p`` of the stored value, an exact 0 read as the smallest positive
  number of the stored dtype (:func:`~calibkit.metrics.examples.prob_floor`): such rows are
  counted (``zero_prob_rows``), a warning names them, and their terms are lower bounds
* Brier      = mean of ``sum_k (p_k - onehot(y)_k)^2``; for a binary model this counts both
  classes, so it is twice scikit-learn's ``brier_score_loss``
* ECE, MCE, RMSCE: see :mod:`calibkit.metrics.calibration`
* saturated_fraction = share of rows whose float64 confidence is exactly 1.0
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibkit.engine.executors import Executor, SerialExecutor, ThreadExecutor, is_distributed
from calibkit.engine.passes import Chunk, run_pass
from calibkit.engine.sums import ChunkSums, SumsAccumulator
from calibkit.errors import InputError, Param, UsageError
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
from calibkit.metrics.selection import Confidence, mass_edges, refuse_distributed
from calibkit.sources.predictions import PredictionSource, input_reason

__all__ = [
    "CalibrationSummary",
    "ChunkSums",
    "MetricAccumulator",
    "binary_mode_for",
    "chunk_sums",
    "collect_example_stats",
    "summarize",
    "zero_prob_message",
]

BINARY_MODES: tuple[BinaryMode, ...] = ("top-label", "positive")


@dataclass(kw_only=True, frozen=True, eq=False)
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
    #: Why the scores were read as ``kind`` (e.g. ``"detected: every row in [0, 1] sums to 1"``).
    input_reason: str = ""
    #: Probability inputs: rows whose label probability is exactly 0 (their NLL term uses
    #: :func:`~calibkit.metrics.examples.prob_floor` and is a lower bound).
    zero_prob_rows: int = 0


def _sum(x: NDArray[np.float64]) -> float:
    """``x.sum()`` as a float; an overflow to inf is silent (the summary refuses it)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(x.sum())


def chunk_sums(
    stats: ExampleStats,
    labels: NDArray[Any],
    *,
    n_classes: int,
    n_bins: int,
    binning: Binning,
    upper_edges: NDArray[np.float64] | None = None,
) -> ChunkSums:
    """Reduce a chunk's per-example statistics to the accumulator's sums. Equal-mass bins keep
    the chunk's confidences and outcomes, unless their ``upper_edges`` are given (fixed: then
    the chunk is summed into them)."""
    if n_classes == 0:  # confidence-only rows: there are no classes
        class_mass = np.zeros(0)
    elif labels.ndim == 1:
        class_mass = np.bincount(labels, minlength=n_classes).astype(np.float64)
    else:
        class_mass = labels.sum(axis=0).astype(np.float64)
    count: NDArray[np.int64] | None = None
    bin_conf: NDArray[np.float64] | None = None
    bin_out: NDArray[np.float64] | None = None
    mass_part = None
    if binning == "width" or upper_edges is not None:
        if upper_edges is None:
            idx = assign_width_bins(stats.confidence, n_bins)
        else:
            idx = assign_mass_bins(stats.confidence, upper_edges)
        count = np.bincount(idx, minlength=n_bins).astype(np.int64)
        bin_conf = np.bincount(idx, weights=stats.confidence, minlength=n_bins).astype(np.float64)
        bin_out = np.bincount(idx, weights=stats.outcome, minlength=n_bins).astype(np.float64)
    else:
        mass_part = (stats.confidence, stats.outcome)
    return ChunkSums(
        n=int(stats.confidence.size),
        n_correct=int(np.count_nonzero(stats.correct)),
        n_saturated=int(np.count_nonzero(stats.saturated)),
        sum_log_prob=_sum(stats.log_prob),
        sum_brier=float(stats.brier.sum()),
        sum_confidence=float(stats.confidence.sum()),
        class_mass=class_mass,
        soft_labels=labels.ndim == 2,
        count=count,
        bin_confidence=bin_conf,
        bin_outcome=bin_out,
        mass_part=mass_part,
        n_zero_prob=int(np.count_nonzero(stats.floored)) if stats.floored is not None else 0,
    )


class MetricAccumulator(SumsAccumulator):
    """Float64 running sums that :func:`summarize` folds chunks into (the merge is
    :meth:`~calibkit.engine.sums.SumsAccumulator.merge`, shared with the temperature batches).

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
        upper_edges: ArrayLike | None = None,
    ) -> None:
        """``upper_edges``: fixed upper edges of the equal-mass bins (found beforehand, e.g. by
        :func:`~calibkit.metrics.selection.mass_edges`), so chunks are summed into them and no
        row is kept."""
        self.n_classes = n_classes
        self.n_bins = check_n_bins(n_bins)
        self.binning = check_binning(binning)
        self.kind = kind
        self.binary_mode = binary_mode
        self.n = 0
        self.n_zero_prob = 0
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
        self.upper_edges: NDArray[np.float64] | None = None
        if upper_edges is not None:
            edges = np.asarray(upper_edges, dtype=np.float64)
            if self.binning != "mass" or edges.shape != (self.n_bins,):
                raise ValueError(f"upper_edges must be {self.n_bins} edges of equal-mass bins")
            self.upper_edges = edges

    def update(self, scores: NDArray[np.floating], labels: NDArray[Any]) -> ExampleStats:
        """Fold one validated chunk in; returns its per-example statistics."""
        stats = example_stats(scores, labels, self.kind, binary_mode=self.binary_mode)
        self.update_stats(stats, labels)
        return stats

    def update_stats(self, stats: ExampleStats, labels: NDArray[Any]) -> None:
        """Fold precomputed per-example statistics in."""
        self.merge(self.sums(stats, labels))

    def sums(self, stats: ExampleStats, labels: NDArray[Any]) -> ChunkSums:
        """This accumulator's :func:`chunk_sums` of a chunk (thread-safe: reads no state)."""
        return chunk_sums(
            stats,
            labels,
            n_classes=self.n_classes,
            n_bins=self.n_bins,
            binning=self.binning,
            upper_edges=self.upper_edges,
        )

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
        elif self.upper_edges is not None:
            upper = self.upper_edges.copy()
            lower = np.concatenate(([0.0], upper[:-1]))
        else:
            conf = np.concatenate([c for c, _ in self._mass_parts]) if self._mass_parts else None
            upper = mass_bin_edges(conf if conf is not None else [], self.n_bins)
            lower = np.concatenate(([0.0], upper[:-1]))
            # chunk by chunk, in chunk order: the sums a cluster's chunks make with these
            # edges (calibkit.metrics.selection), the same floats
            for c, o in self._mass_parts:
                self._add_to_bins(assign_mass_bins(c, upper), c, o)
            self._mass_parts = []
        return BinTable(
            lower=lower,
            upper=upper,
            count=self.count.copy(),
            sum_confidence=self.bin_confidence.copy(),
            sum_outcome=self.bin_outcome.copy(),
            binning=self.binning,
        )

    def result(
        self, *, source: str = "<array>", binary: bool = False, input_reason: str = ""
    ) -> CalibrationSummary:
        """The summary; ``n`` is the number of rows folded in (never a file's metadata).

        ``binary`` marks a two-class model (so ``binary_mode`` is reported). A non-finite NLL or
        Brier score of logits or probabilities is refused: it can only come from float64
        overflow, and would otherwise be written as ``null``.
        """
        if self.n == 0:
            raise InputError(source, "no rows: the predictions are empty")
        if self.kind in ("logits", "probs"):
            for name, total in (("NLL", self.sum_log_prob), ("Brier score", self.sum_brier)):
                if not math.isfinite(total):
                    raise InputError(
                        source,
                        f"the {name} overflows float64 (label logits more than ~1e308 below "
                        "their row's maximum, after any temperature scaling)",
                    )
        table = self.bin_table()
        n = self.n
        accuracy = self.n_correct / n
        if self.kind == "confidence":
            # the mean of the (possibly fractional) correctness: for confidence rows the outcome
            # summed into the bins is the correctness itself; a sum of 0/1 values is exact, so
            # integer-valued inputs give the same float as the count
            accuracy = float(table.sum_outcome.sum()) / n
        missing = tuple(int(k) for k in np.flatnonzero(self.class_mass == 0))
        return CalibrationSummary(
            n=n,
            n_classes=self.n_classes,
            n_bins=self.n_bins,
            binning=self.binning,
            binary_mode=self.binary_mode if binary else None,
            accuracy=accuracy,
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
            input_reason=input_reason,
            zero_prob_rows=self.n_zero_prob,
        )


@dataclass(frozen=True, eq=False)
class _Sums:
    """A chunk's :func:`chunk_sums` (small parameters only: it travels to a cluster's workers)."""

    kind: str
    binary_mode: BinaryMode
    n_classes: int
    n_bins: int
    binning: Binning
    upper_edges: NDArray[np.float64] | None

    def __call__(self, chunk: Chunk) -> ChunkSums:
        stats = example_stats(chunk.scores, chunk.labels, self.kind, binary_mode=self.binary_mode)
        return chunk_sums(
            stats,
            chunk.labels,
            n_classes=self.n_classes,
            n_bins=self.n_bins,
            binning=self.binning,
            upper_edges=self.upper_edges,
        )


def binary_mode_for(predictions: PredictionSource, binary_mode: str) -> BinaryMode:
    """The binary mode to use for ``predictions``: ``"positive"`` needs exactly two classes.

    Any two-class input, one score per row or ``(N, 2)``, can bin ``p(y = 1)``; with more
    classes (or confidence-only rows) ``"positive"`` is a usage error rather than ignored.
    """
    if binary_mode not in BINARY_MODES:
        raise UsageError(f"unknown binary mode {binary_mode!r}; known: {', '.join(BINARY_MODES)}")
    if binary_mode == "positive" and predictions.n_classes != 2:
        what = (
            "confidence-only rows"
            if predictions.kind == "confidence"
            else f"{predictions.n_classes} classes"
        )
        raise UsageError(
            f"{predictions.source}: "
            + Param("binary_mode", "positive")
            + f" (p(y = 1)) needs a binary model with 2 classes; this one has {what}"
        )
    return "positive" if binary_mode == "positive" else "top-label"


def zero_prob_message(source: str, rows: int) -> str:
    """The warning for ``rows`` rows whose label probability is an exact 0."""
    return (
        f"{source}: {rows} row{'s give' if rows != 1 else ' gives'} the label a probability "
        "of exactly 0; -log 0 is taken at the smallest positive number of the stored dtype, "
        "so the NLL is a lower bound (save logits when you can)"
    )


def summarize(
    predictions: PredictionSource,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    binary_mode: BinaryMode = "top-label",
    chunk_rows: int | None = None,
    workers: int | None = None,
    device: str | None = None,
) -> CalibrationSummary:
    """Every headline metric of ``predictions`` from one pass over its chunks.

    Chunks are processed on ``workers`` threads (default: the executor of the pass, see
    :mod:`calibkit.engine.executors`; a thread per available core unless another is installed)
    and reduced in order (:func:`calibkit.engine.passes.run_pass`), so the result does not
    depend on it. With ``device`` (``"cuda"``, ``"cuda:1"``, ``"cpu"``) the pass runs in torch
    on that device instead (:mod:`calibkit.engine.torch_backend`), one chunk at a time.

    ``binary_mode`` matters only for two-class models (one score per row or ``(N, 2)``):
    ``"top-label"`` (default) bins the top-label confidence like any classifier, so one logit
    and the equivalent two-class softmax agree; ``"positive"`` bins ``p(y = 1)`` against the
    frequency of class 1, the view of scikit-learn's ``calibration_curve``; with more than two
    classes it is a :class:`~calibkit.errors.UsageError`.

    The summary's ``n`` counts the rows actually read. Probability rows whose label has
    probability exactly 0 are counted in ``zero_prob_rows`` and named in a warning.

    Equal-mass bins on a cluster (:func:`~calibkit.engine.executors.is_distributed`) take a
    few extra passes that find the edges exactly (:func:`calibkit.metrics.selection.mass_edges`)
    before the metrics pass sums every chunk into them: the same numbers as in memory.

    >>> from calibkit.sources.predictions import Predictions
    >>> p = Predictions.from_arrays([[0.0, 0.0], [2.0, 0.0]], [1, 0])
    >>> s = summarize(p, n_bins=10)
    >>> s.n, s.accuracy, round(s.nll, 4)
    (2, 0.5, 0.4100)
    """
    kind = predictions.kind
    mode = binary_mode_for(predictions, binary_mode)
    executor: Executor | None = None if workers is None else ThreadExecutor(workers)
    on_device = device is not None and kind in ("logits", "probs")
    upper: NDArray[np.float64] | None = None
    selected = -1
    if check_binning(binning) == "mass" and not on_device and is_distributed(executor):
        upper, selected = mass_edges(
            predictions,
            Confidence(kind, mode),
            n_bins,
            chunk_rows=chunk_rows,
            executor=executor,
        )
    acc = MetricAccumulator(
        predictions.n_classes,
        n_bins=n_bins,
        binning=binning,
        kind=kind,
        binary_mode=mode,
        upper_edges=upper,
    )
    sums: Callable[[Chunk], ChunkSums] = _Sums(
        kind, mode, acc.n_classes, acc.n_bins, acc.binning, upper
    )
    if on_device:
        assert device is not None
        from calibkit.engine.torch_backend import check_device, torch_chunk_sums

        dev = check_device(device)

        def on_device_sums(chunk: Chunk) -> ChunkSums:
            return torch_chunk_sums(
                chunk.scores,
                chunk.labels,
                kind=kind,
                n_classes=acc.n_classes,
                n_bins=acc.n_bins,
                binning=acc.binning,
                binary_mode=mode,
                device=dev,
            )

        sums = on_device_sums
        executor = SerialExecutor()  # torch parallelises within a chunk

    run_pass(
        predictions,
        sums,
        acc.merge,
        chunk_rows=chunk_rows,
        executor=executor,
        description=f"{predictions.source}: metrics",
    )
    if selected >= 0 and acc.n != selected:
        raise InputError(predictions.source, "the data changed between two reads (metrics pass)")
    summary = acc.result(
        source=predictions.source,
        binary=predictions.n_classes == 2,
        input_reason=input_reason(predictions),
    )
    if summary.zero_prob_rows:
        warnings.warn(
            zero_prob_message(predictions.source, summary.zero_prob_rows), UserWarning, stacklevel=2
        )
    return summary


def collect_example_stats(
    predictions: PredictionSource,
    *,
    binary_mode: BinaryMode = "top-label",
    chunk_rows: int | None = None,
    workers: int | None = None,
    warn: bool = True,
) -> ExampleStats:
    """Per-example statistics of every row, concatenated (``O(N)`` memory, no ``K``).

    The input for resampling methods (bootstrap intervals, paired tests): replicates reuse
    these numbers instead of recomputing a softmax. ``binary_mode`` as in :func:`summarize`;
    ``warn=False`` leaves the zero-probability warning to a :func:`summarize` of the same data.
    On a cluster (:func:`~calibkit.engine.executors.is_distributed`) it is a
    :class:`~calibkit.errors.UsageError`: these are per-row arrays.
    """
    executor = None if workers is None else ThreadExecutor(workers)
    refuse_distributed(
        f"{predictions.source}: the per-example statistics (bootstrap, paired tests, "
        "per-example outputs) keep every row's numbers",
        executor,
    )
    kind = predictions.kind
    mode = binary_mode_for(predictions, binary_mode)

    def stats(chunk: Chunk) -> ExampleStats:
        return example_stats(chunk.scores, chunk.labels, kind, binary_mode=mode)

    parts: list[ExampleStats] = []
    run_pass(
        predictions,
        stats,
        parts.append,
        chunk_rows=chunk_rows,
        executor=executor,
        description=f"{predictions.source}: per-example",
    )
    if not parts:
        raise InputError(predictions.source, "no rows: the predictions are empty")
    fields = {
        f: np.concatenate([getattr(p, f) for p in parts])
        for f in ExampleStats.__dataclass_fields__
        if f not in ("floored", "correctness")
    }
    correctness = None
    if all(p.correctness is not None for p in parts):
        correctness = np.concatenate([p.correctness for p in parts if p.correctness is not None])
    floored = None
    if all(p.floored is not None for p in parts):
        floored = np.concatenate([p.floored for p in parts if p.floored is not None])
        if warn and floored.any():
            warnings.warn(
                zero_prob_message(predictions.source, int(floored.sum())),
                UserWarning,
                stacklevel=2,
            )
    return ExampleStats(**fields, floored=floored, correctness=correctness)
