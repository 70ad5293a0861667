"""Selective prediction and HELM's calibration metrics of a prediction source (``calibkit
selective``).

:func:`selective_metrics` reads the source once for every row's top-label confidence and
correctness (:func:`calibkit.metrics.summary.collect_example_stats`: per-row arrays, ``O(N)``
memory, so a cluster's passes refuse it) and computes
:func:`calibkit.metrics.correctness.correctness_metrics` of them (every number is defined
there). For logits and probabilities ``ts_ece_10_bin_cv`` is cross-fitted with calibkit's own
temperature scaling: for each fold ``j`` of :class:`~calibkit.sources.folds.FoldView` (the same
folds as the cross-fitted Platt map), :func:`~calibkit.calibrators.temperature.fit_temperature`
on the other folds, and the held-out rows' confidences of ``softmax(z / T)`` (a streamed
:class:`~calibkit.calibrators.temperature.ScaledPredictions` of the held-out view); one fit of a
few passes per fold. Confidence-only rows use the binary temperature ``sigmoid(logit(c) / T)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.engine.executors import ThreadExecutor
from calibkit.engine.passes import Chunk, run_pass
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

__all__ = [
    "MACRO_KEYS",
    "GroupMetrics",
    "GroupedSelective",
    "grouped_selective_metrics",
    "selective_metrics",
]


def _top_logs(chunk: Chunk) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(log c, log(1 - c))`` of each row's top-label softmax confidence, from the logits:
    with ``S`` the sum of ``exp(z_k - z_top)`` over the other classes, ``log c = -log1p(S)``
    and ``log(1 - c) = log S - log1p(S)``, exact however confident the row (``-inf`` only
    when ``S`` underflows, a margin above ~745)."""
    from calibkit.metrics.examples import center_logits

    zc, pred = center_logits(chunk.scores, return_argmax=True)
    e = np.exp(zc)
    e[np.arange(e.shape[0]), pred] = 0.0
    others = e.sum(axis=1)
    with np.errstate(divide="ignore"):
        log_rest = np.log(others)
    log1p = np.log1p(others)
    return -log1p, log_rest - log1p


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
    logs: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
    if predictions.kind == "logits":
        parts: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []
        run_pass(
            predictions,
            _top_logs,
            parts.append,
            chunk_rows=chunk_rows,
            executor=executor,
            description=f"{predictions.source}: log-confidences",
        )
        logs = (
            np.concatenate([a for a, _ in parts]),
            np.concatenate([b for _, b in parts]),
        )
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
        log_confidence=None if logs is None else logs[0],
        log_complement=None if logs is None else logs[1],
        source=predictions.source,
    )


#: The numbers of :class:`~calibkit.metrics.correctness.CorrectnessMetrics` that
#: :func:`grouped_selective_metrics` averages over groups (the macro row), by JSON name.
MACRO_KEYS: tuple[tuple[str, str], ...] = (
    ("accuracy", "accuracy"),
    ("ece_10_bin", "ece_10_bin"),
    ("ece_1_bin", "ece_1_bin"),
    ("ece", "ece"),
    ("smooth_ece", "smooth_ece"),
    ("brier_correct", "brier"),
    ("nll_correct", "nll"),
    ("auroc_correct", "auroc"),
    ("aurc", "aurc"),
    ("e_aurc", "e_aurc"),
    ("selective_cov_acc_area", "selective_cov_acc_area"),
    ("selective_acc@10", "selective_acc_at_10"),
    ("platt_ece_10_bin_cv", "platt_ece_10_bin_cv"),
    ("platt_ece_1_bin_cv", "platt_ece_1_bin_cv"),
    ("ts_ece_10_bin_cv", "ts_ece_10_bin_cv"),
)


@dataclass(frozen=True, eq=False)
class GroupMetrics:
    """One group's metrics: its values (``{column: value}``), label and size flag."""

    group: dict[str, str]
    label: str
    metrics: CorrectnessMetrics
    small: bool


@dataclass(frozen=True, eq=False)
class GroupedSelective:
    """:func:`grouped_selective_metrics`: the pooled (micro) metrics of every row, the groups
    (the worst ``ece_10_bin`` first) and the macro means over groups (``macro_counts``: how
    many groups each mean is over; a group where a number is ``None`` is left out of it)."""

    columns: tuple[str, ...]
    micro: CorrectnessMetrics
    groups: tuple[GroupMetrics, ...]
    macro: dict[str, float | None]
    macro_counts: dict[str, int]
    min_rows: int

    @property
    def small_groups(self) -> tuple[GroupMetrics, ...]:
        return tuple(g for g in self.groups if g.small)

    def to_dict(self) -> dict[str, Any]:
        # the layout of ``ece --group-by``'s ``group_by`` document (stats/groups.py)
        return {
            "columns": list(self.columns),
            "order_by": "ece_10_bin",
            "min_rows": self.min_rows,
            "n_groups": len(self.groups),
            "small_groups": len(self.small_groups),
            "micro": self.micro.to_dict(),
            "macro": dict(self.macro),
            "macro_groups": dict(self.macro_counts),
            "groups": [
                {"group": g.group, "label": g.label, "small": g.small, **g.metrics.to_dict()}
                for g in self.groups
            ],
        }


def grouped_selective_metrics(
    predictions: PredictionSource,
    columns: Sequence[str],
    *,
    n_bins: int = 15,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    coverages: Sequence[float] = DEFAULT_COVERAGES,
    chunk_rows: int | None = None,
    workers: int | None = None,
) -> GroupedSelective:
    """:func:`selective_metrics` of every row (micro) and of each group of ``columns``
    (:func:`calibkit.sources.groups.group_rows`; each group a
    :class:`~calibkit.sources.groups.RowSubset`, so its folds, fits and numbers are those of a
    file holding only its rows), with the macro means. Groups under
    :data:`~calibkit.sources.groups.MIN_GROUP_ROWS` rows are flagged ``small``, not dropped.

    >>> import dataclasses
    >>> from calibkit.sources.groups import MemoryColumns
    >>> from calibkit.sources.predictions import ConfidenceRows
    >>> rows = ConfidenceRows.from_arrays([0.9, 0.6, 0.7, 0.8], [1, 0, 1, 0])
    >>> rows = dataclasses.replace(rows, columns=MemoryColumns({"task": ["a", "b", "a", "b"]}))
    >>> r = grouped_selective_metrics(rows, ["task"], folds=2)
    >>> [(g.label, g.metrics.n, g.metrics.ece_1_bin) for g in r.groups]  # b: |.7 - 0|
    [('task=b', 2, 0.7), ('task=a', 2, 0.2)]
    >>> r.macro["ece_1_bin"], r.micro.ece_1_bin  # (.7 + .2) / 2; |.75 - .5|
    (0.45, 0.25)
    """
    from calibkit.sources.groups import MIN_GROUP_ROWS, group_rows, subset

    micro = selective_metrics(
        predictions,
        n_bins=n_bins,
        folds=folds,
        seed=seed,
        coverages=coverages,
        chunk_rows=chunk_rows,
        workers=workers,
    )
    grouping = group_rows(predictions, columns)
    groups = []
    for g in range(grouping.n_groups):
        m = selective_metrics(
            subset(predictions, grouping.rows(g)),
            n_bins=n_bins,
            folds=folds,
            seed=seed,
            coverages=coverages,
            chunk_rows=chunk_rows,
            workers=workers,
        )
        groups.append(GroupMetrics(grouping.as_dict(g), grouping.label(g), m, m.n < MIN_GROUP_ROWS))
    groups.sort(key=lambda x: (-x.metrics.ece_10_bin, x.label))
    macro: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    for key, attr in MACRO_KEYS:
        values = [getattr(x.metrics, attr) for x in groups]
        kept = [float(v) for v in values if v is not None and math.isfinite(v)]
        counts[key] = len(kept)
        macro[key] = math.fsum(kept) / len(kept) if kept else None
    return GroupedSelective(tuple(columns), micro, tuple(groups), macro, counts, MIN_GROUP_ROWS)
