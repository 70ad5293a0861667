"""Per-example statistics of one chunk of predictions: the single softmax pass.

Everything calibkit reports is a mean or a binned mean of these numbers, so a chunk of logits is
touched once (one max, one exp, one sum per row, in float64) and can then be dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

from calibkit.engine.executors import scratch
from calibkit.engine.sums import BinaryMode, prob_floor  # (defined below the metrics layer)

__all__ = [
    "BinaryMode",
    "ExampleStats",
    "center_logits",
    "confidence_stats",
    "example_stats",
    "log_probs",
    "logit_stats",
    "prob_floor",
    "prob_stats",
]


def log_probs(
    scores: NDArray[np.floating], *, out: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """Float64 ``log p`` of stored probabilities, exact zeros read as :func:`prob_floor`.

    The log is taken in float64, or in the stored dtype when that is wider (long double), so
    a stored value too small for float64 keeps its true log. Written to ``out`` when given (a
    float64 work array of the chunk's shape, e.g. a per-thread scratch array), else to a new
    array.
    """
    floor = prob_floor(scores.dtype)
    if scores.dtype.kind == "f" and scores.dtype.itemsize > 8:
        # only exact zeros are replaced: a positive value below float64's range keeps its log
        wide = np.log(np.where(scores == 0, scores.dtype.type(floor), scores))
        if out is None:
            return wide.astype(np.float64)
        np.copyto(out, wide)
        return out
    if out is None:
        p: NDArray[np.float64] = scores.astype(np.float64)
    else:
        np.copyto(out, scores)
        p = out
    np.maximum(p, floor, out=p)
    return np.log(p, out=p)


@dataclass(kw_only=True, frozen=True)
class ExampleStats:
    """Per-example numbers, each an array of shape ``(n,)``.

    Attributes
    ----------
    confidence
        Top-label confidence ``max_k p_k`` (or ``p_1`` in ``positive`` binary mode).
    outcome
        What the confidence predicts: 1.0 if the top label is right, else 0.0 (or the
        probability mass of class 1 in the label, in ``positive`` mode).
    correct
        Whether ``argmax_k p_k`` (first index on ties) equals the label (the soft label's argmax).
    log_prob
        ``log p_y`` from log-softmax; for soft labels ``sum_k t_k log p_k``.
    brier
        ``sum_k (p_k - t_k)^2`` with ``t`` the one-hot (or soft) label.
    saturated
        Whether the float64 top-label confidence is exactly 1.0.
    floored
        For probability inputs: whether the row's ``log_prob`` reads an exact 0 probability as
        :func:`prob_floor` (so its NLL term is a lower bound); ``None`` for other inputs.
    correctness
        For confidence rows: each row's correctness in [0, 1] (fractional, e.g. the share of
        annotators who agree), whose mean is the accuracy; ``correct`` is then ``correctness ==
        1``. ``None`` for other inputs (the correctness is ``correct`` as 0.0 / 1.0).
    """

    confidence: NDArray[np.float64]
    outcome: NDArray[np.float64]
    correct: NDArray[np.bool_]
    log_prob: NDArray[np.float64]
    brier: NDArray[np.float64]
    saturated: NDArray[np.bool_]
    floored: NDArray[np.bool_] | None = None
    correctness: NDArray[np.float64] | None = None

    def correct_values(self) -> NDArray[np.float64]:
        """Each row's correctness as a float64 (fractional for confidence rows): the values
        whose mean is the accuracy."""
        if self.correctness is not None:
            return self.correctness
        return self.correct.astype(np.float64)


@overload
def center_logits(
    scores: NDArray[np.floating],
    *,
    return_argmax: Literal[False] = ...,
    out: NDArray[np.float64] | None = ...,
) -> NDArray[np.float64]: ...
@overload
def center_logits(
    scores: NDArray[np.floating],
    *,
    return_argmax: Literal[True],
    out: NDArray[np.float64] | None = ...,
) -> tuple[NDArray[np.float64], NDArray[np.intp]]: ...
def center_logits(
    scores: NDArray[np.floating],
    *,
    return_argmax: bool = False,
    out: NDArray[np.float64] | None = None,
) -> Any:
    """Float64 copy of a logits chunk with each row's maximum subtracted (so every row's max is 0).

    Softmax, log-softmax and the argmax do not change; ``exp`` can no longer overflow. The
    maximum is read at the argmax (first index on ties), which the caller may want too. The copy
    goes to ``out`` when given (which may be ``scores`` itself, centred in place).
    """
    if out is None:
        z = scores.astype(np.float64)  # a copy: the chunk is ours to overwrite
    else:
        if out is not scores:
            np.copyto(out, scores)
        z = out
    pred = z.argmax(axis=1)
    top = z[np.arange(z.shape[0]), pred]
    with np.errstate(over="ignore", invalid="ignore"):  # |z| ~ 1e308: differences hit -inf
        z -= top[:, None]
    return (z, pred) if return_argmax else z


def logit_stats(
    zc: NDArray[np.float64],
    labels: NDArray[Any],
    *,
    beta: float = 1.0,
    pred: NDArray[np.intp] | None = None,
    buffer: NDArray[np.float64] | None = None,
    binary_mode: BinaryMode = "top-label",
) -> ExampleStats:
    """Per-example statistics of ``softmax(beta * zc)`` for centred logits ``zc``.

    One ``exp`` and two row reductions: with ``e = exp(beta * zc)`` and ``s = sum_k e_k``,
    ``confidence = 1 / s`` (the row maximum has ``e = 1``), ``log p_y = beta * zc_y - log s``
    and ``Brier = sum_k e_k^2 / s^2 - 2 e_y / s + 1``. ``pred`` (the argmax, which ``beta > 0``
    does not change) and ``buffer`` (scratch space of ``zc``'s shape) let a caller that evaluates
    many temperatures on one chunk skip that work and allocation.
    """
    n = zc.shape[0]
    rows = np.arange(n)
    if pred is None:
        pred = zc.argmax(axis=1)
    # everything that needs zc itself comes first: ``buffer`` may be zc's own memory
    if labels.ndim == 1:
        y = labels.astype(np.intp, copy=False)
        label_logit = zc[rows, y]
        truth = y
        positive = (y == 1).astype(np.float64)
    else:
        t = labels.astype(np.float64, copy=False)
        label_logit = np.einsum("ij,ij->i", t, zc)
        truth = t.argmax(axis=1)
        positive = t[:, 1] if t.shape[1] == 2 else np.zeros(n)
    if beta == 1.0:
        e = np.exp(zc, out=buffer)
    else:
        with np.errstate(over="ignore"):  # beta * zc <= 0 overflows only to -inf: exp gives 0
            e = np.multiply(zc, beta, out=buffer)
        np.exp(e, out=e)
    s = e.sum(axis=1)
    sum_sq = np.einsum("ij,ij->i", e, e)
    log_s = np.log(s)
    confidence = 1.0 / s
    with np.errstate(over="ignore"):  # an infinite NLL term is refused by the summary
        if labels.ndim == 1:
            log_prob = beta * label_logit - log_s
            brier = sum_sq / (s * s) - 2.0 * e[rows, y] / s + 1.0
        else:
            log_prob = beta * label_logit - log_s * t.sum(axis=1)
            brier = (
                sum_sq / (s * s)
                - 2.0 * np.einsum("ij,ij->i", t, e) / s
                + np.einsum("ij,ij->i", t, t)
            )
    return _assemble(confidence, e[:, 1] / s, pred, truth, positive, log_prob, brier, binary_mode)


def _assemble(
    confidence: NDArray[np.float64],
    p1: NDArray[np.float64],
    pred: NDArray[np.intp],
    truth: NDArray[np.intp],
    positive: NDArray[np.float64],
    log_prob: NDArray[np.float64],
    brier: NDArray[np.float64],
    binary_mode: BinaryMode,
) -> ExampleStats:
    """The shared last step of :func:`logit_stats` and :func:`prob_stats`."""
    np.maximum(brier, 0.0, out=brier)  # rounding can leave -1e-17 where p equals the label
    correct = pred == truth
    saturated = confidence == 1.0
    if binary_mode == "positive":
        return ExampleStats(
            confidence=p1.copy(),
            outcome=positive,
            correct=correct,
            log_prob=log_prob,
            brier=brier,
            saturated=saturated,
        )
    return ExampleStats(
        confidence=confidence,
        outcome=correct.astype(np.float64),
        correct=correct,
        log_prob=log_prob,
        brier=brier,
        saturated=saturated,
    )


def prob_stats(
    scores: NDArray[np.floating], labels: NDArray[Any], *, binary_mode: BinaryMode = "top-label"
) -> ExampleStats:
    """Per-example statistics of probabilities, used as given (rows already validated).

    A confidence saved as exactly 0.7 stays exactly 0.7 for binning; ``log p`` is the log of the
    stored value, an exact 0 read as :func:`prob_floor` (flagged in ``floored``).

    >>> s = prob_stats(np.array([[0.5, 0.5], [1.0, 0.0]], dtype=np.float32), np.array([0, 1]))
    >>> [round(float(-x), 4) for x in s.log_prob], s.floored.tolist()
    ([0.6931, 103.2789], [False, True])
    """
    p = scores.astype(np.float64)
    logp = log_probs(scores)
    n = p.shape[0]
    rows = np.arange(n)
    pred = p.argmax(axis=1)
    confidence = p[rows, pred]
    sum_sq = np.einsum("ij,ij->i", p, p)
    if labels.ndim == 1:
        y = labels.astype(np.intp, copy=False)
        log_prob = logp[rows, y]
        floored = scores[rows, y] == 0
        brier = sum_sq - 2.0 * p[rows, y] + 1.0
        truth = y
        positive = (y == 1).astype(np.float64)
    else:
        t = labels.astype(np.float64, copy=False)
        log_prob = np.einsum("ij,ij->i", t, logp)
        floored = ((t > 0) & (scores == 0)).any(axis=1)
        brier = sum_sq - 2.0 * np.einsum("ij,ij->i", t, p) + np.einsum("ij,ij->i", t, t)
        truth = t.argmax(axis=1)
        positive = t[:, 1] if t.shape[1] == 2 else np.zeros(n)
    stats = _assemble(confidence, p[:, 1], pred, truth, positive, log_prob, brier, binary_mode)
    return replace(stats, floored=floored)


def example_stats(
    scores: NDArray[np.floating],
    labels: NDArray[Any],
    kind: str = "logits",
    *,
    binary_mode: BinaryMode = "top-label",
) -> ExampleStats:
    """Per-example statistics of a validated chunk (``scores`` of shape ``(n, K)``).

    >>> s = example_stats(np.array([[0.0, np.log(3.0)]]), np.array([1]))
    >>> float(s.confidence[0]), bool(s.correct[0]), round(float(-s.log_prob[0]), 6)
    (0.75, True, 0.287682)
    >>> round(float(s.brier[0]), 6)  # (0.25 - 0)^2 + (0.75 - 1)^2
    0.125
    """
    if kind == "logits":
        # this thread's work array, reused from chunk to chunk; no returned array is a view of it
        work = scratch("logits", scores.shape)
        zc, pred = center_logits(scores, return_argmax=True, out=work)
        return logit_stats(zc, labels, pred=pred, buffer=zc, binary_mode=binary_mode)
    if kind == "confidence":
        return confidence_stats(scores, labels)
    return prob_stats(scores, labels, binary_mode=binary_mode)


def confidence_stats(confidence: NDArray[Any], correct: NDArray[Any]) -> ExampleStats:
    """Statistics of confidence-only rows: NLL and Brier are unknown (NaN). ``correct`` may be
    fractional (in [0, 1]): the accuracy is its mean (:attr:`ExampleStats.correctness`), never a
    count of rows above a threshold.

    >>> s = confidence_stats(np.array([0.5, 0.9, 0.7]), np.array([1.0, 0.5, 0.0]))
    >>> float(s.correct_values().mean()), s.correct.tolist()
    (0.5, [True, False, False])
    """
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    unknown = np.full(conf.shape, np.nan)
    return ExampleStats(
        confidence=conf,
        outcome=hit,
        correct=hit == 1.0,
        log_prob=unknown,
        brier=unknown.copy(),
        saturated=conf == 1.0,
        correctness=hit,
    )
