"""Per-example statistics of one chunk of predictions: the single softmax pass.

Everything calibkit reports is a mean or a binned mean of these numbers, so a chunk of logits is
touched once (one max, one exp, one sum per row, in float64) and can then be dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

__all__ = ["BinaryMode", "ExampleStats", "example_stats", "prob_floor"]

BinaryMode = Literal["top-label", "positive"]


def prob_floor(dtype: np.dtype) -> float:
    """Smallest probability whose log enters the NLL for probability inputs.

    A probability below the machine epsilon of the format it was saved in is treated as that
    epsilon (as scikit-learn's ``log_loss`` does), so one exact zero does not make the NLL
    infinite. Logit inputs need no floor: their log-probabilities come from log-softmax.
    """
    if dtype.kind != "f" or dtype.itemsize >= 8:
        return float(np.finfo(np.float64).eps)
    return float(np.finfo(dtype).eps)


@dataclass(frozen=True)
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
    """

    confidence: NDArray[np.float64]
    outcome: NDArray[np.float64]
    correct: NDArray[np.bool_]
    log_prob: NDArray[np.float64]
    brier: NDArray[np.float64]
    saturated: NDArray[np.bool_]


def _probs_and_logs(
    scores: NDArray[np.floating], kind: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Probabilities and their logs, in float64.

    Probability inputs are used as given (validation has checked that rows sum to 1), so a
    confidence the user saved as exactly 0.7 stays exactly 0.7 for binning.
    """
    if kind == "logits":
        z = scores.astype(np.float64)  # a copy: the chunk is ours to overwrite
        with np.errstate(over="ignore"):  # |z| near 1e308: differences overflow to -inf, p -> 0
            z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        z -= np.log(s)  # log-softmax
        e /= s
        return e, z
    p = scores.astype(np.float64)
    with np.errstate(divide="ignore"):
        logp = np.log(np.maximum(p, prob_floor(scores.dtype)))
    return p, logp


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
    p, logp = _probs_and_logs(scores, kind)
    n = p.shape[0]
    rows = np.arange(n)
    pred = p.argmax(axis=1)
    confidence = p[rows, pred]
    sum_sq = np.einsum("ij,ij->i", p, p)
    if labels.ndim == 1:
        y = labels.astype(np.intp, copy=False)
        p_y = p[rows, y]
        log_prob = logp[rows, y]
        brier = sum_sq - 2.0 * p_y + 1.0
        truth = y
        positive_outcome = (y == 1).astype(np.float64)
    else:
        t = labels.astype(np.float64, copy=False)
        log_prob = np.einsum("ij,ij->i", t, logp)
        brier = sum_sq - 2.0 * np.einsum("ij,ij->i", t, p) + np.einsum("ij,ij->i", t, t)
        truth = t.argmax(axis=1)
        positive_outcome = t[:, 1] if t.shape[1] == 2 else np.zeros(n)
    np.maximum(brier, 0.0, out=brier)  # rounding can leave -1e-17 where p equals the label
    correct = pred == truth
    saturated = confidence == 1.0
    if binary_mode == "positive":
        return ExampleStats(p[:, 1].copy(), positive_outcome, correct, log_prob, brier, saturated)
    return ExampleStats(confidence, correct.astype(np.float64), correct, log_prob, brier, saturated)
