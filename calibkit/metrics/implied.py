"""The label smoothing a model's logits imply (Müller, Kornblith & Hinton 2019).

Training with label smoothing at ``alpha`` over ``K`` classes has the target ``t_y = 1 - alpha +
alpha / K`` for the label and ``alpha / K`` for every other class. The cross-entropy to that
target is smallest when ``p = t``, i.e. when the logit of the label exceeds every other logit by
the same gap::

    g(alpha) = log((1 - alpha + alpha / K) / (alpha / K)) = log1p(K (1 - alpha) / alpha)
    alpha(g) = K / (exp(g) + K - 1)                    (the inverse; decreasing in g)

so a model's gap says which ``alpha`` it behaves like. The **gap of an example** is

    gap = log p_y - mean_{k != y} log p_k = z_y - mean_{k != y} z_k

(the two agree for logits: log-softmax subtracts the same number from every logit); for
probability inputs ``log p`` is that of the stored value, an exact 0 read as
:func:`~calibkit.metrics.examples.prob_floor` (so such a gap is a lower bound); for soft labels
``y`` is the argmax of the label distribution (first index on ties). Only **correctly
classified** examples count (``argmax_k p_k == y``, first index on ties): at the smoothed
optimum the label is the top class, and a misclassified example's gap (possibly negative) says
nothing about how far the model pushes its winners. The mean over the other classes, not the
gap to the runner-up, is used because it is what the optimum pins down (at the optimum every
other logit sits at the same gap, so both agree there), and because it uses every class, so one
near-tie does not decide it. The **median** gap of the correct examples (exact: one float64 is
kept per correct example, as equal-mass binning keeps two per example; on a cluster, where a
pass may not send rows back, the two middle gaps are found exactly by radix selection in a few
extra passes, :func:`calibkit.metrics.selection.order_statistics`, and their mean is the same
number bit for bit) gives
``implied_ls_alpha = alpha(median gap)`` — the median is unchanged by a few extreme examples,
and as ``alpha(g)`` is monotone it is also the median of the per-example implied alphas.

``alpha(g)`` is evaluated as ``K e^{-g} / (1 + (K - 1) e^{-g})`` for ``g >= 0``, which cannot
overflow (gaps of ``1e4`` give ``alpha = 0.0``: the true value, ``~K e^{-g}``, is below float64's
smallest number beyond ``g ~ 745``). A temperature ``T`` divides every gap by ``T``, so after
temperature scaling the implied alpha is that of ``median gap / T``.

No correct example (or confidence-only rows, which have no class scores) gives ``None`` with
a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibkit.engine.executors import is_distributed
from calibkit.engine.passes import Chunk, run_pass
from calibkit.metrics.examples import log_probs
from calibkit.metrics.selection import order_statistics
from calibkit.sources.predictions import PredictionSource, ragged_range

__all__ = [
    "ImpliedSmoothing",
    "correct_gaps",
    "from_gaps",
    "implied_alpha",
    "implied_smoothing",
    "median_ranks",
    "smoothing_gap",
]


def smoothing_gap(alpha: ArrayLike, n_classes: int) -> Any:
    """The optimal logit gap ``log((1 - alpha + alpha/K) / (alpha/K))`` of label smoothing at
    ``alpha`` in ``(0, 1]`` over ``K = n_classes`` classes (``inf`` at ``alpha = 0``).

    >>> round(float(smoothing_gap(0.1, 10)), 6)  # log(0.91 / 0.01)
    4.51086
    """
    a = np.asarray(alpha, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log1p(n_classes * (1.0 - a) / a)


def implied_alpha(gap: ArrayLike, n_classes: int) -> Any:
    """The smoothing ``alpha = K / (exp(gap) + K - 1)`` whose optimal gap is ``gap`` (inverse of
    :func:`smoothing_gap`), in a form that cannot overflow; in ``(0, 1]`` for ``gap >= 0``
    (0.0 once ``K e^{-gap}`` underflows).

    >>> round(float(implied_alpha(np.log(91.0), 10)), 12)
    0.1
    >>> float(implied_alpha(1e4, 10)), float(implied_alpha(0.0, 2))
    (0.0, 1.0)
    """
    if n_classes < 2:
        raise ValueError(f"implied alpha needs at least 2 classes; got {n_classes}")
    g = np.asarray(gap, dtype=np.float64)
    k = float(n_classes)
    out = np.empty(g.shape)
    pos = g >= 0
    with np.errstate(under="ignore"):  # K e^{-g} below float64's range: 0, as documented
        e = np.exp(-np.where(pos, g, 0.0))  # <= 1: no overflow
        out[pos] = (k * e / (1.0 + (k - 1.0) * e))[pos]
    with np.errstate(over="ignore"):  # exp(g) <= 1 for g < 0
        neg = np.exp(np.where(pos, 0.0, g))
    out[~pos] = (k / (neg + k - 1.0))[~pos]
    return out if out.ndim else out[()]


def correct_gaps(scores: NDArray[Any], labels: NDArray[Any], kind: str) -> NDArray[np.float64]:
    """The gaps ``log p_y - mean_{k != y} log p_k`` (float64) of the correctly classified rows
    of one validated chunk (``scores`` ``(n, K)`` logits or probabilities; ``labels`` ``(n,)``
    or soft ``(n, K)``, whose argmax is then ``y``), in row order.

    >>> correct_gaps(np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]]), np.array([0, 0]), "logits")
    array([2.5])
    """
    k = scores.shape[1]
    y = labels.argmax(axis=1) if labels.ndim == 2 else labels.astype(np.intp, copy=False)
    if kind == "logits":
        z = scores.astype(np.float64)
        pred = z.argmax(axis=1)
        keep = pred == y
        z = z[keep]
        top = z[np.arange(z.shape[0]), y[keep]]
        # differences to the row's top logit: finite whenever the row's spread is (validated)
        with np.errstate(over="ignore"):
            rest: NDArray[np.float64] = (top[:, None] - z).sum(axis=1) / (k - 1)
        return rest
    logp = log_probs(scores)
    pred = scores.astype(np.float64).argmax(axis=1)
    keep = pred == y
    logp = logp[keep]
    top = logp[np.arange(logp.shape[0]), y[keep]]
    out: NDArray[np.float64] = (top[:, None] - logp).sum(axis=1) / (k - 1)
    return out


@dataclass(frozen=True, kw_only=True)
class ImpliedSmoothing:
    """The implied label smoothing of one set of predictions (module docstring).

    ``median_gap`` and ``alpha`` are ``None`` when nothing could be measured; ``reason`` says
    why (else it is empty). ``n_correct`` counts the correctly classified rows measured."""

    n_classes: int
    n_correct: int
    median_gap: float | None
    alpha: float | None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON keys: ``median_logit_gap``, ``implied_ls_alpha``, ``implied_ls_correct`` (the
        rows measured) and ``implied_ls_reason`` (``null`` when measured)."""
        return {
            "median_logit_gap": self.median_gap,
            "implied_ls_alpha": self.alpha,
            "implied_ls_correct": self.n_correct,
            "implied_ls_reason": self.reason or None,
        }


def _from_median(n_correct: int, median: float, n_classes: int) -> ImpliedSmoothing:
    if n_correct == 0:
        return ImpliedSmoothing(
            n_classes=n_classes,
            n_correct=0,
            median_gap=None,
            alpha=None,
            reason="no correctly classified example: no gap to measure",
        )
    return ImpliedSmoothing(
        n_classes=n_classes,
        n_correct=n_correct,
        median_gap=median,
        alpha=float(implied_alpha(median, n_classes)),
    )


def from_gaps(gaps: NDArray[np.float64], n_classes: int) -> ImpliedSmoothing:
    """:class:`ImpliedSmoothing` of the gaps of every correctly classified row."""
    median = float(np.median(gaps)) if gaps.size else math.nan
    return _from_median(int(gaps.size), median, n_classes)


def median_ranks(n: int) -> list[int]:
    """The ranks whose values' mean is the median of ``n`` sorted values (as ``np.median``).

    >>> median_ranks(5), median_ranks(4), median_ranks(0)
    ([2], [1, 2], [])
    """
    if n == 0:
        return []
    return [n // 2] if n % 2 else [n // 2 - 1, n // 2]


@dataclass(frozen=True)
class _Gaps:
    """A chunk's :func:`correct_gaps` (a quantity for the selection passes)."""

    kind: str

    def __call__(self, chunk: Chunk) -> NDArray[np.float64]:
        return correct_gaps(chunk.scores, chunk.labels, self.kind)


def implied_smoothing(
    source: PredictionSource, *, chunk_rows: int | None = None
) -> ImpliedSmoothing:
    """The implied label smoothing of ``source`` from one pass over its chunks (any chunk
    size gives the same numbers: the median of the same gaps). On a cluster
    (:func:`~calibkit.engine.executors.is_distributed`) the median is found by exact selection
    in a few passes instead (module docstring): the same number.

    >>> from calibkit.sources.predictions import Predictions
    >>> p = Predictions.from_arrays([[np.log(91.0), 0.0] + [0.0] * 8], [0])
    >>> round(implied_smoothing(p).alpha, 12)
    0.1
    """
    if source.kind not in ("logits", "probs"):
        return ImpliedSmoothing(
            n_classes=0,
            n_correct=0,
            median_gap=None,
            alpha=None,
            reason="confidence-only input: no class scores to measure a logit gap",
        )
    span = ragged_range(source) if getattr(source, "ragged", False) else None
    if span is not None:  # the gap to the mean of the other classes would count the pads
        return ImpliedSmoothing(
            n_classes=0,
            n_correct=0,
            median_gap=None,
            alpha=None,
            reason=f"questions with {span[0]} to {span[1]} choices: no one set of classes "
            "to smooth over",
        )
    kind = source.kind
    if is_distributed():
        sel = order_statistics(
            source,
            _Gaps(kind),
            median_ranks,
            chunk_rows=chunk_rows,
            description="logit gaps",
            size_hint=int(source.n_rows),
        )
        # np.median's own arithmetic: the mean of the middle value(s)
        median = float(np.mean(sel.values)) if sel.n else math.nan
        return _from_median(sel.n, median, source.n_classes)
    parts: list[NDArray[np.float64]] = []

    def gaps(chunk: Chunk) -> NDArray[np.float64]:
        return correct_gaps(chunk.scores, chunk.labels, kind)

    run_pass(
        source,
        gaps,
        parts.append,
        chunk_rows=chunk_rows,
        description=f"{source.source}: logit gaps",
    )
    all_gaps = np.concatenate(parts) if parts else np.zeros(0)
    return from_gaps(all_gaps, source.n_classes)
