"""Metrics against soft labels: a distribution ``t`` over the classes per example (annotator
vote shares as in Peterson et al. 2019, distillation targets).

Definitions (natural logarithms, ``p`` the predicted distribution: the softmax of the logits, or
the stored probabilities with an exact 0 read as
:func:`~calibkit.metrics.examples.prob_floor` inside a log; ``0 log 0 = 0``); each is a mean over
the ``N`` examples:

* ``cross_entropy`` = ``-sum_k t_k log p_k``: the same number as calibkit's ``nll`` for soft
  labels (it is computed from the same per-example terms)
* ``kl_divergence`` = ``KL(t || p) = sum_{k: t_k > 0} t_k (log t_k - log p_k)``, each example's
  term floored at 0 (rounding can leave ``-1e-17`` where ``p = t``); equal to
  ``cross_entropy - entropy_labels`` up to rounding, and 0 exactly when ``p = t``
* ``entropy_predictions`` = ``H(p) = -sum_k p_k log p_k``; ``entropy_labels`` = ``H(t)``
* ``ece_label_argmax``: the usual top-label ECE (the summary's ``n_bins`` and ``binning``) with
  "correct" meaning ``argmax_k p_k == argmax_k t_k`` (first index on ties). In calibkit's
  default top-label mode this is exactly the ``ece`` that calibkit already reports for soft
  labels (the same bins of the same confidences and outcomes); it differs in the binary
  ``positive`` mode, where ``ece`` bins ``p_1`` against the label mass ``t_1``.
* ``ece_label_mass``: the same bins, with the outcome ``t`` at the predicted class
  (``t_{argmax p}``, the share of annotators who agree with the prediction) instead of 0/1:
  the calibration of the confidence against the label distribution itself, which no tie of
  the label's argmax can sway
* ``tied_label_argmax``: the number of examples whose label distribution has more than one
  class at its maximum (a 5-5 vote): for those ``argmax t`` is the first such class, an
  arbitrary choice that ``ece_label_argmax`` and the accuracy depend on

Everything is accumulated in float64 over the chunks of one pass (:func:`soft_label_metrics`);
equal-width bins keep ``O(M)`` sums (each chunk sums its rows into the bins), equal-mass bins
the confidences and two outcomes per example, as the summary does; on a cluster
(:func:`~calibkit.engine.executors.is_distributed`) equal-mass bins find their edges exactly
in a few extra passes (:func:`calibkit.metrics.selection.mass_edges`) and then sum chunks into
them. The result does not depend on the chunk size beyond float64 summation order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.engine.executors import is_distributed
from calibkit.engine.passes import Chunk, run_pass
from calibkit.errors import InputError
from calibkit.metrics.binning import (
    Binning,
    assign_mass_bins,
    assign_width_bins,
    check_binning,
    check_n_bins,
    mass_bin_edges,
)
from calibkit.metrics.examples import ExampleStats, example_stats, log_probs
from calibkit.metrics.selection import Confidence, mass_edges
from calibkit.metrics.softmax import log_softmax
from calibkit.sources.predictions import PredictionSource

__all__ = [
    "SoftLabelAccumulator",
    "SoftLabelMetrics",
    "SoftLabelSums",
    "soft_label_metrics",
    "soft_label_sums",
]


def _xlogx(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``x log x`` elementwise with ``0 log 0 = 0``."""
    out: NDArray[np.float64] = np.zeros_like(x)
    pos = x > 0
    out[pos] = x[pos] * np.log(x[pos])
    return out


@dataclass(frozen=True, kw_only=True, eq=False)
class SoftLabelSums:
    """Sums over the examples of one chunk (see :func:`soft_label_sums`): either the per-bin
    sums ``bins`` (``(3, M)``: confidence, argmax outcome, mass outcome) or the per-example
    confidences and outcomes (``None`` when binned)."""

    n: int
    cross_entropy: float
    kl: float
    entropy_predictions: float
    entropy_labels: float
    ties: int
    confidence: NDArray[np.float64] | None
    argmax_outcome: NDArray[np.float64] | None
    mass_outcome: NDArray[np.float64] | None
    bins: NDArray[np.float64] | None = None


def _bin_sums(
    idx: NDArray[np.intp], m: int, conf: NDArray[np.float64], *outcomes: NDArray[np.float64]
) -> NDArray[np.float64]:
    return np.stack([np.bincount(idx, weights=w, minlength=m) for w in (conf, *outcomes)])


def soft_label_sums(
    scores: NDArray[Any],
    labels: NDArray[Any],
    kind: str,
    *,
    stats: ExampleStats | None = None,
    n_bins: int | None = None,
    upper_edges: NDArray[np.float64] | None = None,
) -> SoftLabelSums:
    """The per-example terms of one validated chunk with soft labels ``(n, K)``, summed; the
    confidences and both outcomes are kept per example (for the bins), unless ``n_bins`` is
    given: then they are summed into ``n_bins`` equal-width bins, or the equal-mass bins of
    ``upper_edges``. ``stats``: the chunk's top-label
    :func:`~calibkit.metrics.examples.example_stats`, when the caller has them."""
    if labels.ndim != 2:
        raise ValueError("soft-label metrics need (n, K) label distributions")
    t = labels.astype(np.float64, copy=False)
    if stats is None:  # top-label: calibkit's own confidence, correctness and NLL terms
        stats = example_stats(scores, labels, kind)
    if kind == "logits":
        logp = log_softmax(scores)
        p = np.exp(logp)
    else:
        logp = log_probs(scores)
        p = scores.astype(np.float64)
    pred = scores.argmax(axis=1)  # what example_stats takes as the prediction
    rows = np.arange(t.shape[0])
    pos = t > 0
    with np.errstate(invalid="ignore", over="ignore"):
        per_kl = np.where(pos, t * (np.log(np.where(pos, t, 1.0)) - logp), 0.0).sum(axis=1)
    np.maximum(per_kl, 0.0, out=per_kl)
    top = t.max(axis=1)
    ties = int(np.count_nonzero((t == top[:, None]).sum(axis=1) > 1))
    with np.errstate(over="ignore", invalid="ignore"):
        ce = float(-stats.log_prob.sum())
        kl = float(per_kl.sum())
    argmax_outcome = stats.correct.astype(np.float64)
    mass_outcome = t[rows, pred]
    bins = None
    if n_bins is not None:
        if upper_edges is None:
            idx = assign_width_bins(stats.confidence, n_bins)
        else:
            idx = assign_mass_bins(stats.confidence, upper_edges)
        bins = _bin_sums(idx, n_bins, stats.confidence, argmax_outcome, mass_outcome)
    keep = bins is None
    return SoftLabelSums(
        n=int(t.shape[0]),
        cross_entropy=ce,
        kl=kl,
        entropy_predictions=float(-_xlogx(p).sum()),
        entropy_labels=float(-_xlogx(t).sum()),
        ties=ties,
        confidence=stats.confidence if keep else None,
        argmax_outcome=argmax_outcome if keep else None,
        mass_outcome=mass_outcome if keep else None,
        bins=bins,
    )


@dataclass(frozen=True, kw_only=True)
class SoftLabelMetrics:
    """The soft-label metrics of one set of predictions (module docstring for definitions)."""

    n: int
    n_bins: int
    binning: Binning
    cross_entropy: float
    kl_divergence: float
    entropy_predictions: float
    entropy_labels: float
    ece_label_argmax: float
    ece_label_mass: float
    tied_label_argmax: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, in the field order (``n``, ``n_bins`` and ``binning`` first)."""
        return {
            "n": self.n,
            "n_bins": self.n_bins,
            "binning": self.binning,
            "cross_entropy": self.cross_entropy,
            "kl_divergence": self.kl_divergence,
            "entropy_predictions": self.entropy_predictions,
            "entropy_labels": self.entropy_labels,
            "ece_label_argmax": self.ece_label_argmax,
            "ece_label_mass": self.ece_label_mass,
            "tied_label_argmax": self.tied_label_argmax,
        }


def _binned_ece(
    confidence: NDArray[np.float64],
    outcomes: tuple[NDArray[np.float64], ...],
    n_bins: int,
    binning: Binning,
) -> tuple[NDArray[np.float64], ...]:
    """Per outcome: the bins' sums ``|sum confidence - sum outcome|`` (to be divided by N)."""
    if binning == "width":
        idx = assign_width_bins(confidence, n_bins)
    else:
        idx = assign_mass_bins(confidence, mass_bin_edges(confidence, n_bins))
    conf = np.bincount(idx, weights=confidence, minlength=n_bins)
    return tuple(np.abs(conf - np.bincount(idx, weights=o, minlength=n_bins)) for o in outcomes)


class SoftLabelAccumulator:
    """Float64 running sums of :func:`soft_label_sums` parts, merged in chunk order; the bins
    are the summary's (``n_bins`` of ``binning``; for equal-mass bins fixed ``upper_edges``
    when they are known beforehand, else every part's confidences are kept)."""

    def __init__(
        self,
        *,
        n_bins: int = 15,
        binning: Binning = "width",
        upper_edges: NDArray[np.float64] | None = None,
    ) -> None:
        self.n_bins = check_n_bins(n_bins)
        self.binning: Binning = check_binning(binning)
        if upper_edges is not None and (binning != "mass" or len(upper_edges) != self.n_bins):
            raise ValueError(f"upper_edges must be {self.n_bins} edges of equal-mass bins")
        self.upper_edges = upper_edges
        self.n = 0
        self.ties = 0
        self.cross_entropy = 0.0
        self.kl = 0.0
        self.entropy_predictions = 0.0
        self.entropy_labels = 0.0
        self.bin_confidence = np.zeros(self.n_bins)
        self.bin_outcome = np.zeros((2, self.n_bins))
        self._kept: list[tuple[NDArray[np.float64], ...]] = []

    def merge(self, part: SoftLabelSums) -> None:
        self.n += part.n
        self.ties += part.ties
        self.cross_entropy += part.cross_entropy
        self.kl += part.kl
        self.entropy_predictions += part.entropy_predictions
        self.entropy_labels += part.entropy_labels
        if part.bins is not None:
            self.bin_confidence += part.bins[0]
            self.bin_outcome += part.bins[1:]
            return
        assert part.confidence is not None
        assert part.argmax_outcome is not None and part.mass_outcome is not None
        if self.binning == "width":
            m = self.n_bins
            idx = assign_width_bins(part.confidence, m)
            self.bin_confidence += np.bincount(idx, weights=part.confidence, minlength=m)
            self.bin_outcome[0] += np.bincount(idx, weights=part.argmax_outcome, minlength=m)
            self.bin_outcome[1] += np.bincount(idx, weights=part.mass_outcome, minlength=m)
        else:
            self._kept.append((part.confidence, part.argmax_outcome, part.mass_outcome))

    def result(self, source: str = "<array>") -> SoftLabelMetrics:
        n = self.n
        if n == 0:
            raise InputError(source, "no rows: the predictions are empty")
        gaps: tuple[NDArray[np.float64], ...]
        if self.binning == "width" or self.upper_edges is not None:
            gaps = tuple(np.abs(self.bin_confidence - o) for o in self.bin_outcome)
        else:
            conf = np.concatenate([k[0] for k in self._kept])
            outcomes = tuple(np.concatenate([k[i] for k in self._kept]) for i in (1, 2))
            gaps = _binned_ece(conf, outcomes, self.n_bins, self.binning)
        return SoftLabelMetrics(
            n=n,
            n_bins=self.n_bins,
            binning=self.binning,
            cross_entropy=self.cross_entropy / n,
            kl_divergence=self.kl / n,
            entropy_predictions=self.entropy_predictions / n,
            entropy_labels=self.entropy_labels / n,
            ece_label_argmax=float(gaps[0].sum() / n),
            ece_label_mass=float(gaps[1].sum() / n),
            tied_label_argmax=self.ties,
        )


def soft_label_metrics(
    source: PredictionSource,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    chunk_rows: int | None = None,
) -> SoftLabelMetrics:
    """The soft-label metrics of ``source`` (which must have soft labels), from one pass.

    >>> from calibkit.sources.predictions import Predictions
    >>> p = Predictions.from_arrays([[0.75, 0.25]], [[0.75, 0.25]])
    >>> m = soft_label_metrics(p, n_bins=10)
    >>> m.kl_divergence, round(m.cross_entropy - m.entropy_labels, 12), m.ece_label_mass
    (0.0, 0.0, 0.0)
    """
    m = check_n_bins(n_bins)
    if not source.soft_labels or source.kind not in ("logits", "probs"):
        raise InputError(source.source, "soft-label metrics need (N, K) label distributions")
    kind = source.kind
    upper = None
    selected = -1
    if check_binning(binning) == "mass" and is_distributed():
        upper, selected = mass_edges(source, Confidence(kind), m, chunk_rows=chunk_rows)
    acc = SoftLabelAccumulator(n_bins=m, binning=binning, upper_edges=upper)
    fn = _SoftSums(kind, m if binning == "width" or upper is not None else None, upper)
    run_pass(
        source, fn, acc.merge, chunk_rows=chunk_rows, description=f"{source.source}: soft labels"
    )
    if selected >= 0 and acc.n != selected:
        raise InputError(source.source, "the data changed between two reads (soft labels)")
    return acc.result(source.source)


@dataclass(frozen=True, eq=False)
class _SoftSums:
    """A chunk's :func:`soft_label_sums` (small parameters only: it travels to a cluster)."""

    kind: str
    n_bins: int | None
    upper_edges: NDArray[np.float64] | None

    def __call__(self, chunk: Chunk) -> SoftLabelSums:
        return soft_label_sums(
            chunk.scores,
            chunk.labels,
            self.kind,
            n_bins=self.n_bins,
            upper_edges=self.upper_edges,
        )
