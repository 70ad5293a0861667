"""Reproducing other tools' "ECE with M bins", so numbers from papers and libraries reconcile.

Public implementations disagree on inputs that sit on bin edges, on confidence 1.0, on the
precision of the softmax and of the sums, and (for binary models) on what is binned. Each
convention below reproduces one rule; ``calibkit`` is the default, documented in
:mod:`calibkit.metrics.binning`.

``calibkit``
    float64 softmax and sums; bin ``b`` holds ``(b-1)/M < conf <= b/M`` with correctly rounded
    edges; 0 in bin 1, 1.0 in bin M.
``guo``
    The reference code of Guo et al. (2017), ``temperature_scaling``'s ``_ECELoss``: float32
    softmax; edges ``torch.linspace(0, 1, M + 1)`` in float32; bin ``b`` holds
    ``edge[b-1] < conf <= edge[b]``, so a confidence of exactly 0 is in no bin (it still counts in
    N); float32 sums.
``torchmetrics``
    ``MulticlassCalibrationError`` / ``BinaryCalibrationError``: float32 softmax; float32
    ``linspace`` edges; ``torch.bucketize(conf, edges, right=True) - 1``, i.e. bins
    ``[edge[b-1], edge[b])``, and a confidence of exactly 1.0 lands in an extra bin ``M + 1`` of
    its own; float32 sums. For binary models torchmetrics bins ``p(y = 1)``, not the top label.
``sklearn``
    ``sklearn.calibration.calibration_curve(strategy="uniform")``: for two-class models (one
    score per row or ``(N, 2)``), bins ``p(y = 1)`` against the frequency of class 1 (calibkit's
    ``--binary positive``); with more classes, the top-label confidence against correctness
    (what ``calibration_curve(pred == y, p.max(axis=1))`` gives); float64 ``numpy.linspace``
    edges; ``searchsorted(edges[1:-1], p)``, i.e. bins ``(lo, hi]`` with 0 in the first bin;
    the ECE is then calibkit's weighted mean gap over those bins. The NLL becomes
    ``sklearn.metrics.log_loss``'s (:func:`sklearn_log_loss`): probabilities clipped to
    ``[eps, 1 - eps]`` of their dtype (float64 for integers and long double; logits: their
    float64 softmax), so a row's loss is capped (at 15.9 nats for float32, 36.0 for float64),
    whereas calibkit's own NLL uses the stored value (an exact 0 read as the dtype's smallest
    positive number). Any number of classes; hard labels only, as for every convention.

``netcal``
    ``netcal.metrics.ECE`` (1.4): takes probabilities (calibkit's float64 softmax for logits,
    probabilities in their own dtype), clips them to ``[eps, 1 - eps]`` of their dtype, and bins
    with ``numpy.histogramdd`` / ``scipy.stats.binned_statistic_dd`` on float64 ``linspace``
    edges: bins ``[lo, hi)``, the last one closed; for binary models it bins ``p(y = 1)``.

``sklearn`` and ``netcal`` sum each chunk into the bins (float64), so they also run on a
cluster; ``guo`` and ``torchmetrics`` add their float32 sums over the rows in row order, which
needs every row in one place: on a cluster
(:func:`~calibkit.engine.executors.is_distributed`) they are a one-line
:class:`~calibkit.errors.UsageError` that names the local engine.

Results match the originals to float32 rounding (about 1e-6) for the float32 conventions; the
bin counts match exactly except for confidences within a float32 ulp of an edge, where the
softmax implementations themselves may differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from calibkit.engine.passes import Chunk, run_pass
from calibkit.errors import UsageError
from calibkit.metrics.binning import check_n_bins
from calibkit.metrics.calibration import BinTable
from calibkit.metrics.selection import refuse_distributed
from calibkit.metrics.softmax import softmax
from calibkit.metrics.summary import CalibrationSummary
from calibkit.sources.predictions import PredictionSource

__all__ = [
    "CONVENTIONS",
    "Convention",
    "apply_convention",
    "convention_bins",
    "sklearn_log_loss",
]

Convention = Literal["calibkit", "guo", "torchmetrics", "sklearn", "netcal"]
CONVENTIONS: tuple[Convention, ...] = ("calibkit", "guo", "torchmetrics", "sklearn", "netcal")


def _softmax32(scores: NDArray[Any], kind: str) -> NDArray[np.float32]:
    if kind == "probs":
        return scores.astype(np.float32)
    out: NDArray[np.float32] = softmax(scores, dtype=np.float32)
    return out


def _top_label(
    source: PredictionSource, *, float32: bool, positive: bool
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """The binned confidence and outcome of every row, in row order: one pass
    (:func:`~calibkit.engine.passes.run_pass`) whose chunks are concatenated in chunk order."""
    confs: list[NDArray[np.floating]] = []
    outs: list[NDArray[np.floating]] = []

    def one(chunk: Chunk) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
        scores, labels = chunk.scores, chunk.labels
        if source.kind == "confidence":
            conf: NDArray[Any] = np.asarray(scores, dtype=np.float32 if float32 else np.float64)
            return conf, np.asarray(labels, dtype=np.float64)
        _hard_labels(source, labels)
        if float32:
            p: NDArray[Any] = _softmax32(scores, source.kind)
        elif source.kind == "logits":
            p = softmax(scores)
        else:
            p = scores.astype(np.float64)
        if positive:
            return p[:, 1], (labels == 1).astype(np.float64)
        pred = p.argmax(axis=1)
        return p[np.arange(len(pred)), pred], (pred == labels).astype(np.float64)

    def keep(part: tuple[NDArray[np.floating], NDArray[np.floating]]) -> None:
        confs.append(part[0])
        outs.append(part[1])

    run_pass(source, one, keep)
    return np.concatenate(confs), np.concatenate(outs)


def _hard_labels(source: PredictionSource | str, labels: NDArray[Any]) -> None:
    if labels.ndim != 1:
        name = source if isinstance(source, str) else source.source
        raise UsageError(f"{name}: conventions other than calibkit need hard labels")


@dataclass(frozen=True, eq=False)
class _Float64Bins:
    """One chunk's float64 bin sums ``(count, confidence, outcome)`` under the ``sklearn`` or
    ``netcal`` rule (small parameters only: it travels to a cluster's workers)."""

    name: str
    kind: str
    positive: bool
    n_bins: int
    netcal: bool

    def __call__(self, chunk: Chunk) -> NDArray[np.float64]:
        scores, labels = chunk.scores, chunk.labels
        m = self.n_bins
        if self.kind == "confidence":
            conf: NDArray[np.float64] = np.asarray(scores, dtype=np.float64)
            out = np.asarray(labels, dtype=np.float64)
        else:
            _hard_labels(self.name, labels)
            p = softmax(scores) if self.kind == "logits" else scores.astype(np.float64)
            if self.positive:
                conf, out = p[:, 1], (labels == 1).astype(np.float64)
            else:
                pred = p.argmax(axis=1)
                conf, out = p[np.arange(len(pred)), pred], (pred == labels).astype(np.float64)
        edges = np.linspace(0.0, 1.0, m + 1)
        if self.netcal:
            eps = np.finfo(conf.dtype).eps
            conf = np.clip(conf, eps, 1.0 - eps)
            idx = np.minimum(np.searchsorted(edges, conf, side="right") - 1, m - 1)
        else:
            idx = np.searchsorted(edges[1:-1], conf)
        return np.stack(
            [
                np.bincount(idx, minlength=m).astype(np.float64),
                np.bincount(idx, weights=conf, minlength=m),
                np.bincount(idx, weights=out, minlength=m),
            ]
        )


def _float64_bins(
    source: PredictionSource, convention: Convention, m: int, positive: bool
) -> BinTable:
    total = np.zeros((3, m))
    rows = 0

    def add(part: NDArray[np.float64]) -> None:  # in chunk order
        nonlocal total, rows
        total += part
        rows += round(float(part[0].sum()))

    job = _Float64Bins(source.source, source.kind, positive, m, convention == "netcal")
    run_pass(source, job, add)
    edges = np.linspace(0.0, 1.0, m + 1)
    return BinTable(
        lower=edges[:-1],
        upper=edges[1:],
        count=total[0].astype(np.int64),
        sum_confidence=total[1],
        sum_outcome=total[2],
        binning="width",
        total=rows,
    )


def convention_bins(
    source: PredictionSource, convention: Convention, *, n_bins: int = 15
) -> BinTable:
    """The bins (and so ECE, MCE, RMSCE) of ``source`` under another tool's rule.

    ``calibkit`` is not handled here (use :func:`calibkit.metrics.summarize`). The returned
    table may have ``M + 1`` bins (torchmetrics' bin for exactly 1.0) and, for ``guo``, fewer
    counted rows than N (confidence 0 falls in no bin); its ``ece()`` divides by N regardless.
    """
    m = check_n_bins(n_bins)
    if convention not in CONVENTIONS or convention == "calibkit":
        raise UsageError(f"unknown convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    positive = _positive(source, convention)
    if convention in ("sklearn", "netcal"):
        return _float64_bins(source, convention, m, positive)
    refuse_distributed(
        f"{source.source}: the {convention} convention adds float32 sums over every row in "
        "row order"
    )
    conf, out = _top_label(source, float32=True, positive=positive)
    n = conf.size
    edges32 = np.linspace(0, 1, m + 1, dtype=np.float32)  # as torch.linspace(0, 1, M+1)
    c32 = conf.astype(np.float32)
    if convention == "torchmetrics":
        idx = np.searchsorted(edges32, c32, side="right") - 1  # bucketize(right=True) - 1
        size = m + 1
        lower = np.append(edges32[:-1], 1.0).astype(np.float64)
        upper = np.append(edges32[1:], 1.0).astype(np.float64)
    else:  # guo: conf > lower and conf <= upper
        idx = np.searchsorted(edges32, c32, side="left") - 1
        keep = idx >= 0  # exactly 0: in no bin
        idx, c32, out = idx[keep], c32[keep], out[keep]
        size = m
        lower, upper = edges32[:-1].astype(np.float64), edges32[1:].astype(np.float64)
    count = np.bincount(idx, minlength=size).astype(np.int64)
    sum_conf = np.zeros(size, dtype=np.float32)
    sum_out = np.zeros(size, dtype=np.float32)
    np.add.at(sum_conf, idx, c32)
    np.add.at(sum_out, idx, out.astype(np.float32))
    return BinTable(
        lower=lower,
        upper=upper,
        count=count,
        sum_confidence=sum_conf.astype(np.float64),
        sum_outcome=sum_out.astype(np.float64),
        binning="width",
        total=n,  # Guo's code divides by N even when rows at confidence 0 fall in no bin
    )


def _positive(source: PredictionSource, convention: str) -> bool:
    """Whether ``convention`` bins ``p(y = 1)``: torchmetrics and netcal for one-score-per-row
    binary models (their binary classes), scikit-learn for any two-class model."""
    if convention == "sklearn":
        return source.n_classes == 2
    return source.binary and convention in ("torchmetrics", "netcal")


def _sklearn_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype ``sklearn.utils.check_array`` gives ``log_loss``: float16/32/64 kept, else
    float64 (integers, long double)."""
    keep = (np.float16, np.float32, np.float64)
    return dtype if dtype.kind == "f" and dtype.type in keep else np.dtype(np.float64)


def sklearn_log_loss(source: PredictionSource) -> float:
    """``sklearn.metrics.log_loss`` of ``source`` (scikit-learn 1.3 to 1.9): the mean of
    ``-log clip(p_y, eps, 1 - eps)`` with ``eps`` the machine epsilon of the probabilities'
    dtype (see the module docstring); logits are turned into probabilities by a float64
    softmax. The logs are taken in float64 (scikit-learn takes them in the dtype, so float32
    inputs agree to float32 rounding).

    >>> from calibkit.sources.predictions import Predictions
    >>> p = Predictions.from_arrays(np.array([[1.0, 0.0]], dtype=np.float32), [1])
    >>> round(sklearn_log_loss(p), 4)  # -log(eps32), not calibkit's -log(1.4e-45) = 103.28
    15.9424
    """
    total, n = 0.0, 0

    def one(chunk: Chunk) -> tuple[float, int]:
        scores, labels = chunk.scores, chunk.labels
        _hard_labels(source, labels)
        if source.kind == "probs":
            p: NDArray[Any] = scores.astype(_sklearn_dtype(scores.dtype), copy=False)
        else:
            p = softmax(scores)
        eps = np.finfo(p.dtype).eps
        p_y = np.clip(p[np.arange(len(labels)), labels], eps, 1 - eps)
        return float(np.log(p_y.astype(np.float64)).sum()), len(labels)

    def add(part: tuple[float, int]) -> None:  # in chunk order, as the loop it replaced
        nonlocal total, n
        total -= part[0]
        n += part[1]

    run_pass(source, one, add)
    return total / n if n else math.nan


def apply_convention(
    summary: CalibrationSummary, source: PredictionSource, convention: str, *, n_bins: int
) -> CalibrationSummary:
    """``summary`` with its bins, ECE, MCE and RMSCE recomputed under ``convention`` (and, for
    ``sklearn``, the NLL of ``log_loss``); ``binary_mode`` says what the convention binned."""
    if convention == "calibkit":
        return summary
    if convention not in CONVENTIONS:
        raise UsageError(f"unknown convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    table = convention_bins(source, convention, n_bins=n_bins)
    positive = _positive(source, convention)
    nll = summary.nll
    if convention == "sklearn" and source.kind in ("logits", "probs"):
        nll = sklearn_log_loss(source)
    two_class = summary.binary_mode is not None
    return replace(
        summary,
        bins=table,
        ece=table.ece(),
        mce=table.mce(),
        rmsce=table.rmsce(),
        nll=nll,
        binary_mode="positive" if positive else ("top-label" if two_class else None),
    )
