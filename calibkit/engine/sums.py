"""The partial sums a chunk of the metrics pass yields, and their merge in chunk order.

A pass is "chunk -> partial sums -> merge in order" (:func:`calibkit.engine.passes.run_pass`).
For the headline metrics the partial sums are a :class:`ChunkSums`: they are computed by the
numpy kernels (:func:`calibkit.metrics.summary.chunk_sums`,
:func:`calibkit.calibrators.kernels.batch_sums`) or by the torch backend
(:mod:`calibkit.engine.torch_backend`), and folded by :class:`SumsAccumulator.merge`, the one
merge that :class:`~calibkit.metrics.summary.MetricAccumulator` (one set of sums) and
:class:`~calibkit.calibrators.kernels.BatchAccumulator` (one per temperature) share. This module
is the layer below the metrics, so every backend can build these records without importing them.

It also holds the two conventions every backend needs: :data:`BinaryMode` and
:func:`prob_floor` (re-exported by :mod:`calibkit.metrics.examples`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = ["BinaryMode", "ChunkSums", "PartialSums", "SumsAccumulator", "prob_floor"]

BinaryMode = Literal["top-label", "positive"]


def prob_floor(dtype: np.dtype) -> float:
    """The number an exact zero probability stands for when its log is needed.

    Probabilities are used as stored: ``log p`` of the stored value, in float64. Only an exact 0
    needs a rule (its log is ``-inf``): it is read as the smallest positive (subnormal) number of
    the stored dtype (``np.finfo(dtype).smallest_subnormal``: 1.4e-45 for float32, 4.9e-324 for
    float64; float64's for integer and long-double inputs), so a row whose label has
    probability 0 adds ``-log`` of that (103.3 nats for float32, 744.4 for float64) to the NLL:
    a lower bound of its true, infinite, loss. Only exact zeros are replaced (a positive
    stored probability is at least this number, except long-double values below float64's
    range, which keep their own log). Logit inputs need no rule: their log-probabilities come
    from log-softmax.

    >>> prob_floor(np.dtype(np.float32)), prob_floor(np.dtype(np.int64))
    (1e-45, 5e-324)
    """
    if dtype.kind != "f" or dtype.itemsize > 8:  # long double's would round to 0.0 here
        return float(np.finfo(np.float64).smallest_subnormal)
    return float(np.finfo(dtype).smallest_subnormal)


@dataclass(kw_only=True, frozen=True, eq=False)
class ChunkSums:
    """What one chunk adds to a :class:`~calibkit.metrics.summary.MetricAccumulator`; computed
    without shared state, so workers can build them while the accumulator folds them in, in
    order."""

    n: int
    n_correct: int
    n_saturated: int
    sum_log_prob: float
    sum_brier: float
    sum_confidence: float
    class_mass: NDArray[np.float64]
    soft_labels: bool
    count: NDArray[np.int64] | None  # width binning: per-bin sums
    bin_confidence: NDArray[np.float64] | None
    bin_outcome: NDArray[np.float64] | None
    mass_part: tuple[NDArray[np.float64], NDArray[np.float64]] | None  # mass binning
    n_zero_prob: int = 0  # rows whose label probability is an exact 0 (probability inputs)


class PartialSums(Protocol):
    """The fields :meth:`SumsAccumulator.merge` reads: those of a :class:`ChunkSums`, with the
    per-temperature ones (``n_saturated``, the three sums, the bin arrays) either scalars and
    ``(bins,)`` arrays or, for ``S`` temperatures at once, ``(S,)`` and ``(S, bins)`` arrays."""

    @property
    def n(self) -> int: ...
    @property
    def n_correct(self) -> int: ...
    @property
    def n_saturated(self) -> Any: ...
    @property
    def sum_log_prob(self) -> Any: ...
    @property
    def sum_brier(self) -> Any: ...
    @property
    def sum_confidence(self) -> Any: ...
    @property
    def class_mass(self) -> NDArray[np.float64]: ...
    @property
    def soft_labels(self) -> bool: ...
    @property
    def count(self) -> NDArray[np.int64] | None: ...
    @property
    def bin_confidence(self) -> NDArray[np.float64] | None: ...
    @property
    def bin_outcome(self) -> NDArray[np.float64] | None: ...
    @property
    def mass_part(self) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None: ...
    @property
    def n_zero_prob(self) -> int: ...


class SumsAccumulator:
    """Running float64 sums of :class:`PartialSums`, added in the order :meth:`merge` is called
    (the chunk order, so results are reproducible). Subclasses set the fields up: Python scalars
    for one set of sums, arrays for a batch."""

    n: int
    n_zero_prob: int
    n_correct: int
    n_saturated: Any
    sum_log_prob: Any
    sum_brier: Any
    sum_confidence: Any
    class_mass: NDArray[np.float64]
    soft_labels: bool
    count: NDArray[np.int64]
    bin_confidence: NDArray[np.float64]
    bin_outcome: NDArray[np.float64]
    _mass_parts: list[tuple[NDArray[np.float64], NDArray[np.float64]]]

    def merge(self, part: PartialSums) -> None:
        """Add one chunk's sums (callers merge in chunk order, so results are reproducible)."""
        self.n += part.n
        self.n_zero_prob += part.n_zero_prob
        self.n_correct += part.n_correct
        self.n_saturated += part.n_saturated
        with np.errstate(over="ignore", invalid="ignore"):  # inf is refused by the summary
            self.sum_log_prob += part.sum_log_prob
            self.sum_brier += part.sum_brier
        self.sum_confidence += part.sum_confidence
        self.class_mass += part.class_mass
        self.soft_labels = self.soft_labels or part.soft_labels
        if part.count is not None:
            self.count += part.count
            self.bin_confidence += part.bin_confidence  # type: ignore[arg-type]
            self.bin_outcome += part.bin_outcome  # type: ignore[arg-type]
        if part.mass_part is not None:
            self._mass_parts.append(part.mass_part)
