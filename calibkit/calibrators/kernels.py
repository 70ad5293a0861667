"""Chunk kernels shared by the temperature fit, its before/after metrics and the sweep.

Each evaluates ``softmax(beta * zc)`` on one chunk of centred float64 logits
``zc = z - max_k z`` (probabilities: ``log p``, centred). At one temperature the chunk costs one
multiply, one ``exp`` and two row reductions (``s = sum_k e`` and ``q = sum_k e^2``, with
``e = exp(beta * zc)``), plus the label's ``e_y``; everything else is per row and shared across
temperatures: the top-label confidence is ``1 / s`` (the row's maximum has ``e = 1``), the log
probability of the label ``beta * zc_y - log s``, the Brier score ``q / s^2 - 2 e_y / s + 1``.

The per-row arithmetic is that of :func:`calibkit.metrics.examples.logit_stats` and
:func:`calibkit.metrics.summary.chunk_sums`, operation for operation, so a temperature evaluated
here gives the same float64 numbers as :func:`~calibkit.metrics.summary.summarize` of
``softmax(beta * zc)`` (tested bit for bit). :class:`BatchSums` holds the sums of ``S``
temperatures as arrays, and :class:`BatchAccumulator` adds them up in chunk order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.engine.sums import ChunkSums, SumsAccumulator
from calibkit.metrics.binning import Binning, assign_width_bins
from calibkit.metrics.examples import center_logits
from calibkit.metrics.summary import MetricAccumulator

__all__ = [
    "BatchAccumulator",
    "BatchSums",
    "CentredChunk",
    "batch_sums",
    "centre_chunk",
    "exp_rows",
    "row_dot",
]


@dataclass(kw_only=True, frozen=True, eq=False)
class CentredChunk:
    """A chunk's centred logits and everything about it that no temperature changes.

    ``zc`` is usually a per-thread scratch array (:func:`calibkit.engine.executors.scratch`): valid
    only
    while this chunk is being computed.
    """

    zc: NDArray[np.float64]
    pred: NDArray[np.intp]
    labels: NDArray[Any]
    label_logit: NDArray[np.float64]  # zc_y, or sum_k t_k zc_k for soft labels
    flat_label: NDArray[np.intp] | None  # hard labels: row * K + y, the label's flat index
    soft: NDArray[np.float64] | None  # soft labels as float64
    mass: NDArray[np.float64] | None  # soft labels: sum_k t_k (~1, kept exact)
    label_sq: NDArray[np.float64] | None  # soft labels: sum_k t_k^2
    correct: NDArray[np.bool_]
    class_mass: NDArray[np.float64]

    @property
    def n(self) -> int:
        return int(self.zc.shape[0])

    def rows(self, start: int, stop: int) -> CentredChunk:
        """Rows ``start:stop`` (views), as far as :func:`exp_rows` needs them."""
        k = self.zc.shape[1]
        return CentredChunk(
            zc=self.zc[start:stop],
            pred=self.pred[start:stop],
            labels=self.labels[start:stop],
            label_logit=self.label_logit[start:stop],
            flat_label=None if self.flat_label is None else self.flat_label[start:stop] - start * k,
            soft=None if self.soft is None else self.soft[start:stop],
            mass=None if self.mass is None else self.mass[start:stop],
            label_sq=None if self.label_sq is None else self.label_sq[start:stop],
            correct=self.correct[start:stop],
            class_mass=self.class_mass,
        )


def centre_chunk(
    logits: NDArray[np.float64], labels: NDArray[Any], *, n_classes: int
) -> CentredChunk:
    """Centre a float64 chunk of logits in place and gather its temperature-free facts."""
    zc, pred = center_logits(logits, return_argmax=True, out=logits)
    n, k = zc.shape
    if labels.ndim == 1:
        y = labels.astype(np.intp, copy=False)
        flat: NDArray[np.intp] | None = np.arange(n, dtype=np.intp) * k + y
        label_logit: NDArray[np.float64] = zc[np.arange(n), y]
        soft = mass = label_sq = None
        truth = y
        class_mass = np.bincount(labels, minlength=n_classes).astype(np.float64)
    else:
        flat = None
        soft = labels.astype(np.float64, copy=False)
        label_logit = np.einsum("ij,ij->i", soft, zc)
        mass = soft.sum(axis=1)
        label_sq = np.einsum("ij,ij->i", soft, soft)
        truth = soft.argmax(axis=1)
        class_mass = labels.sum(axis=0).astype(np.float64)
    return CentredChunk(
        zc=zc,
        pred=pred,
        labels=labels,
        label_logit=label_logit,
        flat_label=flat,
        soft=soft,
        mass=mass,
        label_sq=label_sq,
        correct=pred == truth,
        class_mass=class_mass,
    )


def row_dot(a: NDArray[np.float64], b: NDArray[np.float64], out: NDArray[np.float64]) -> None:
    """``out[i] = sum_k a[i, k] * b[i, k]`` (``b`` may be one row, broadcast): the BLAS dot
    product of each row where numpy has ``vecdot`` (2.0+), else ``einsum``. Each row's sum is
    computed alone, so it does not depend on the other rows (nor on chunking)."""
    if _VECDOT is not None:
        _VECDOT(a, b, out=out)
    else:  # pragma: no cover - numpy < 2
        np.einsum("ij,ij->i" if b.ndim == 2 else "ij,j->i", a, b, out=out)


_VECDOT = getattr(np, "vecdot", None)


def exp_rows(
    c: CentredChunk,
    beta: float,
    e: NDArray[np.float64],
    s: NDArray[np.float64],
    q: NDArray[np.float64] | None = None,
    e_y: NDArray[np.float64] | None = None,
    *,
    dot_q: bool = False,
) -> NDArray[np.float64]:
    """``e = exp(beta * zc)`` into ``e``; its row sums into ``s``, and when given, the row sums
    of ``e^2`` into ``q`` and the label's ``e_y`` (soft labels: ``sum_k t_k e_k``) into ``e_y``.
    Returns ``e``.

    ``q`` is computed as :func:`~calibkit.metrics.examples.logit_stats` does (``einsum``), or
    with ``dot_q`` by :func:`row_dot`, about twice as fast and equal to ~1e-16 relative.
    """
    if beta == 1.0:
        np.exp(c.zc, out=e)
    else:
        with np.errstate(over="ignore"):  # beta * zc <= 0 overflows only to -inf: exp gives 0
            np.multiply(c.zc, beta, out=e)
        np.exp(e, out=e)
    np.sum(e, axis=1, out=s)
    if q is not None:
        if dot_q:
            row_dot(e, e, q)
        else:
            np.einsum("ij,ij->i", e, e, out=q)
    if e_y is not None:
        if c.flat_label is not None:
            np.take(e.reshape(-1), c.flat_label, out=e_y, mode="clip")  # (indices are valid)
        else:
            assert c.soft is not None
            np.einsum("ij,ij->i", c.soft, e, out=e_y)
    return e


#: Elements of the row blocks a chunk is computed in: every temperature's multiply, ``exp`` and
#: row sums run on a block while it is in the core's cache (measured fastest at 2**16).
BLOCK_ELEMENTS = 1 << 16


@dataclass(kw_only=True, frozen=True, eq=False)
class BatchSums:
    """What one chunk adds at each of ``S`` temperatures (a :class:`ChunkSums` per row)."""

    n: int
    n_correct: int
    n_saturated: NDArray[np.int64]  # (S,)
    sum_log_prob: NDArray[np.float64]  # (S,)
    sum_brier: NDArray[np.float64]  # (S,)
    sum_confidence: NDArray[np.float64]  # (S,)
    class_mass: NDArray[np.float64]  # (K,)
    soft_labels: bool
    count: NDArray[np.int64] | None  # (S, bins), width binning
    bin_confidence: NDArray[np.float64] | None
    bin_outcome: NDArray[np.float64] | None
    mass_part: tuple[NDArray[np.float64], NDArray[np.float64]] | None  # (S, n) and (n,)
    n_zero_prob: int = 0  # (logits: no stored probabilities)

    def chunk_sums(self, j: int) -> ChunkSums:
        """The sums at the ``j``-th temperature."""
        return ChunkSums(
            n=self.n,
            n_correct=self.n_correct,
            n_saturated=int(self.n_saturated[j]),
            sum_log_prob=float(self.sum_log_prob[j]),
            sum_brier=float(self.sum_brier[j]),
            sum_confidence=float(self.sum_confidence[j]),
            class_mass=self.class_mass,
            soft_labels=self.soft_labels,
            count=None if self.count is None else self.count[j],
            bin_confidence=None if self.bin_confidence is None else self.bin_confidence[j],
            bin_outcome=None if self.bin_outcome is None else self.bin_outcome[j],
            mass_part=(
                None if self.mass_part is None else (self.mass_part[0][j], self.mass_part[1])
            ),
            n_zero_prob=self.n_zero_prob,
        )


def batch_sums(
    c: CentredChunk,
    betas: NDArray[np.float64],
    s: NDArray[np.float64],
    q: NDArray[np.float64],
    e_y: NDArray[np.float64],
    *,
    n_bins: int,
    binning: Binning,
) -> BatchSums:
    """The metric sums of ``softmax(beta_j * zc)`` for every ``j``, from the row sums
    ``s``, ``q`` and ``e_y`` of shape ``(S, n)`` that :func:`exp_rows` wrote."""
    n_temps, n = s.shape
    betas = np.asarray(betas, dtype=np.float64).reshape(n_temps, 1)
    confidence = 1.0 / s
    log_s = np.log(s)
    with np.errstate(over="ignore"):  # an infinite NLL term is refused by the summary
        if c.soft is None:
            log_prob = betas * c.label_logit - log_s
            brier = q / (s * s) - 2.0 * e_y / s + 1.0
        else:
            assert c.mass is not None and c.label_sq is not None
            log_prob = betas * c.label_logit - log_s * c.mass
            brier = q / (s * s) - 2.0 * e_y / s + c.label_sq
    np.maximum(brier, 0.0, out=brier)  # rounding can leave -1e-17 where p equals the label
    outcome = c.correct.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf: refused later
        sum_log_prob = np.array([float(row.sum()) for row in log_prob])
    sum_brier = np.array([float(row.sum()) for row in brier])
    sum_confidence = np.array([float(row.sum()) for row in confidence])
    count: NDArray[np.int64] | None = None
    bin_conf: NDArray[np.float64] | None = None
    bin_out: NDArray[np.float64] | None = None
    mass_part = None
    if binning == "width":
        cells = n_temps * n_bins
        idx = assign_width_bins(confidence.reshape(-1), n_bins).reshape(n_temps, n)
        idx += (np.arange(n_temps, dtype=np.intp) * n_bins)[:, None]
        flat = idx.reshape(-1)
        count = np.bincount(flat, minlength=cells).astype(np.int64).reshape(n_temps, n_bins)
        weights = np.broadcast_to(outcome, (n_temps, n)).reshape(-1)
        bin_conf = np.bincount(flat, weights=confidence.reshape(-1), minlength=cells).astype(
            np.float64
        )
        bin_out = np.bincount(flat, weights=weights, minlength=cells).astype(np.float64)
        bin_conf, bin_out = bin_conf.reshape(n_temps, n_bins), bin_out.reshape(n_temps, n_bins)
    else:
        mass_part = (confidence, outcome)
    return BatchSums(
        n=n,
        n_correct=int(np.count_nonzero(c.correct)),
        n_saturated=np.count_nonzero(confidence == 1.0, axis=1).astype(np.int64),
        sum_log_prob=sum_log_prob,
        sum_brier=sum_brier,
        sum_confidence=sum_confidence,
        class_mass=c.class_mass,
        soft_labels=c.soft is not None,
        count=count,
        bin_confidence=bin_conf,
        bin_outcome=bin_out,
        mass_part=mass_part,
    )


class BatchAccumulator(SumsAccumulator):
    """Running sums at ``S`` temperatures, merged in chunk order by the same
    :meth:`~calibkit.engine.sums.SumsAccumulator.merge` as
    :class:`~calibkit.metrics.summary.MetricAccumulator` (here with ``(S,)`` arrays)."""

    def __init__(self, n_temps: int, n_classes: int, *, n_bins: int, binning: Binning) -> None:
        self.n_temps = n_temps
        self.n_classes = n_classes
        self.n_bins = n_bins
        self.binning = binning
        self.n = 0
        self.n_zero_prob = 0
        self.n_correct = 0
        self.n_saturated = np.zeros(n_temps, dtype=np.int64)
        self.sum_log_prob = np.zeros(n_temps)
        self.sum_brier = np.zeros(n_temps)
        self.sum_confidence = np.zeros(n_temps)
        self.class_mass = np.zeros(n_classes)
        self.soft_labels = False
        self.count = np.zeros((n_temps, n_bins), dtype=np.int64)
        self.bin_confidence = np.zeros((n_temps, n_bins))
        self.bin_outcome = np.zeros((n_temps, n_bins))
        self._mass_parts: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []

    def accumulator(self, j: int, *, kind: str = "logits") -> MetricAccumulator:
        """A :class:`MetricAccumulator` holding the sums of the ``j``-th temperature."""
        acc = MetricAccumulator(self.n_classes, n_bins=self.n_bins, binning=self.binning, kind=kind)
        width = self.binning == "width"
        totals = BatchSums(
            n=self.n,
            n_correct=self.n_correct,
            n_saturated=self.n_saturated,
            sum_log_prob=self.sum_log_prob,
            sum_brier=self.sum_brier,
            sum_confidence=self.sum_confidence,
            class_mass=self.class_mass,
            soft_labels=self.soft_labels,
            count=self.count if width else None,
            bin_confidence=self.bin_confidence if width else None,
            bin_outcome=self.bin_outcome if width else None,
            mass_part=None,  # (the j-th temperature's rows are gathered below, not all S)
        )
        acc.merge(totals.chunk_sums(j))
        for c, o in self._mass_parts:  # chunk by chunk, as summarize bins them
            acc.merge(
                ChunkSums(
                    n=0,
                    n_correct=0,
                    n_saturated=0,
                    sum_log_prob=0.0,
                    sum_brier=0.0,
                    sum_confidence=0.0,
                    class_mass=np.zeros_like(acc.class_mass),
                    soft_labels=self.soft_labels,
                    count=None,
                    bin_confidence=None,
                    bin_outcome=None,
                    mass_part=(c[j], o),
                )
            )
        return acc
