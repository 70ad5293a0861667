"""Bootstrap of calibration metrics from per-example statistics, paired or not.

Every metric calibkit gates on is a function of a few sums over examples: per bin the count,
the summed confidence and the summed outcome; overall the number correct, the summed NLL and the
summed Brier score. A bootstrap replicate draws ``N`` examples with replacement, i.e. gives
example ``i`` an integer weight ``w_i`` (its multiplicity), so a replicate's sums are weighted
sums of six per-example numbers. Replicates therefore cost a weighted bin count, not a new
softmax; a batch of replicates is a few small matrix products, and batches run on threads with
their own seeds (from ``numpy.random.SeedSequence(seed).spawn``), so results depend only on the
seed, never on the thread count.

Bins are those of the original sample (fixed edges for equal-width bins; the equal-mass edges of
the full sample), so a replicate's ECE uses the binning the point estimate used.

**Paired** bootstrap (candidate vs baseline on the same examples): one weight vector per
replicate is applied to both models, so the difference keeps the correlation between them —
much tighter than resampling each model on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.engine.passes import map_reduce
from calibkit.errors import UsageError
from calibkit.limits import MAX_REPLICATES, MAX_RESAMPLED_ROWS, MAX_SEED
from calibkit.metrics import table as metric_table
from calibkit.metrics.binning import Binning, assign_bins
from calibkit.metrics.examples import ExampleStats

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "BootstrapResult",
    "bootstrap_metrics",
    "paired_bootstrap",
    "point_metrics",
    "replicate_weights",
]

#: The built-in metrics that can be bootstrapped, in table order (:mod:`calibkit.metrics.table`;
#: the functions here read the table when they run, so a metric registered later is included).
METRICS = metric_table.names(metric_table.bootstrapped())
#: The built-in bootstrapped metrics where higher is better.
HIGHER_IS_BETTER = frozenset(m.name for m in metric_table.bootstrapped() if m.higher_is_better)

#: Upper bound on the float64 entries of one batch of replicate weights (64 MiB).
_BATCH_CELLS = 8_000_000


@dataclass(frozen=True, eq=False)
class _Design:
    """Examples sorted by bin, with their six per-example quantities.

    Columns of ``x``: 1, confidence, outcome, correct, NLL, Brier. With the rows sorted by bin,
    a batch of replicate weights ``w`` (in the original row order) gives each bin's six sums as
    ``w[:, perm][:, bin] @ x[bin]``: one gather and a small matrix product per bin.
    """

    perm: NDArray[np.intp]
    starts: NDArray[np.intp]  # bin b is rows starts[b]:starts[b+1] of the sorted order
    x: NDArray[np.float64]
    n_bins: int

    @property
    def n(self) -> int:
        return int(self.perm.size)

    @property
    def filled(self) -> NDArray[np.intp]:
        """The bins that hold at least one example."""
        return np.flatnonzero(np.diff(self.starts))

    def sums(self, w: NDArray[np.float64]) -> NDArray[np.float64]:
        """Per-replicate sums, shape ``(B, 3M + 3)`` (see :func:`_metrics_from_sums`)."""
        wp = np.take(w, self.perm, axis=1)
        m = self.n_bins
        per_bin = np.zeros((w.shape[0], m, 6))
        for b in self.filled:  # empty bins sum to 0: at most min(M, N) products
            lo, hi = self.starts[b], self.starts[b + 1]
            per_bin[:, b, :] = wp[:, lo:hi] @ self.x[lo:hi]
        totals = per_bin[:, :, 3:].sum(axis=1)
        return np.concatenate(
            [per_bin[:, :, 0], per_bin[:, :, 1], per_bin[:, :, 2], totals], axis=1
        )


def _design(stats: ExampleStats, n_bins: int, binning: Binning) -> _Design:
    idx, _, _ = assign_bins(stats.confidence, n_bins, binning)
    perm = np.argsort(idx, kind="stable")
    starts = np.searchsorted(idx[perm], np.arange(n_bins + 1))
    x = np.stack(
        [
            np.ones_like(stats.confidence),
            stats.confidence,
            stats.outcome,
            stats.correct.astype(np.float64),
            -stats.log_prob,
            stats.brier,
        ],
        axis=1,
    )[perm]
    return _Design(perm, starts, np.ascontiguousarray(x), n_bins)


class _Sums:
    """A view of per-replicate sums, shape ``(R, 3M + 3)``: bin counts, bin confidence sums,
    bin outcome sums, then the totals of correct, NLL and Brier (a
    :class:`~calibkit.metrics.table.ResampledSums`)."""

    def __init__(self, sums: NDArray[np.float64], m: int) -> None:
        self._sums, self._m = sums, m

    @cached_property
    def count(self) -> NDArray[np.float64]:
        return self._sums[:, : self._m]

    @cached_property
    def confidence(self) -> NDArray[np.float64]:
        return self._sums[:, self._m : 2 * self._m]

    @cached_property
    def outcome(self) -> NDArray[np.float64]:
        return self._sums[:, 2 * self._m : 3 * self._m]

    @cached_property
    def signed(self) -> NDArray[np.float64]:
        """Confidence - outcome per bin."""
        return self.confidence - self.outcome

    @cached_property
    def gap(self) -> NDArray[np.float64]:
        return np.abs(self.signed)

    @cached_property
    def total(self) -> NDArray[np.float64]:
        out: NDArray[np.float64] = self.count.sum(axis=1)
        return out

    @property
    def correct(self) -> NDArray[np.float64]:
        return self._sums[:, 3 * self._m]

    @property
    def nll(self) -> NDArray[np.float64]:
        return self._sums[:, 3 * self._m + 1]

    @property
    def brier(self) -> NDArray[np.float64]:
        return self._sums[:, 3 * self._m + 2]


def _metrics_from_sums(sums: NDArray[np.float64], m: int) -> dict[str, NDArray[np.float64]]:
    """Every bootstrapped metric of the table from per-replicate sums, shape ``(R, 3M + 3)``
    (see :class:`_Sums`), by its ``from_sums``."""
    view = _Sums(sums, m)
    return {
        metric.name: metric.from_sums(view)
        for metric in metric_table.bootstrapped()
        if metric.from_sums is not None
    }


def point_metrics(
    stats: ExampleStats, *, n_bins: int = 15, binning: Binning = "width"
) -> dict[str, float]:
    """The metrics of the sample itself (weights all 1), computed the way replicates are."""
    d = _design(stats, n_bins, binning)
    sums = d.sums(np.ones((1, d.n)))
    return {k: float(v[0]) for k, v in _metrics_from_sums(sums, n_bins).items()}


def _batches(
    n: int, replicates: int, seed: int, n_bins: int = 0
) -> list[tuple[int, np.random.SeedSequence]]:
    """Batch sizes and independent seeds: the same replicates whatever the thread count.

    A batch holds at most :data:`_BATCH_CELLS` weights (``size x n``) and as many per-bin sums
    (``size x 6M``), so memory stays bounded for any ``N`` and ``M``.
    """
    batch = max(1, min(replicates, _BATCH_CELLS // max(n, 6 * n_bins, 1)))
    sizes = [min(batch, replicates - start) for start in range(0, replicates, batch)]
    return list(zip(sizes, np.random.SeedSequence(seed).spawn(len(sizes)), strict=True))


def replicate_weights(n: int, size: int, seed: np.random.SeedSequence | int) -> NDArray[np.float64]:
    """``size`` bootstrap multiplicity vectors, shape ``(size, n)``; each row sums to ``n``.

    >>> w = replicate_weights(5, 3, 0)
    >>> w.shape, w.sum(axis=1).tolist()
    ((3, 5), [5.0, 5.0, 5.0])
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(size, n))
    draws += np.arange(size)[:, None] * n
    return np.bincount(draws.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def _check(replicates: int, seed: int, rows: int) -> None:
    """Refuse a replicate count or seed out of range, or a bootstrap that would resample more
    than :data:`~calibkit.limits.MAX_RESAMPLED_ROWS` rows (``replicates`` x ``rows``) in all."""
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)):
        raise UsageError(f"bootstrap replicates must be an integer; got {replicates!r}")
    if replicates < 1:
        raise UsageError(f"the number of bootstrap replicates must be >= 1; got {replicates}")
    if replicates > MAX_REPLICATES:
        raise UsageError(
            f"the number of bootstrap replicates must be <= {MAX_REPLICATES}; got {replicates}"
        )
    integer = isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
    if not integer or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"the bootstrap seed must be an integer from 0 to 2**63 - 1; got {seed!r}")
    resampled = int(replicates) * int(rows)
    if resampled > MAX_RESAMPLED_ROWS:
        most = max(1, MAX_RESAMPLED_ROWS // max(rows, 1))
        raise UsageError(
            f"{replicates} bootstrap replicates of {rows} rows would resample {resampled:.2g} "
            f"rows, above the limit of {MAX_RESAMPLED_ROWS:.0e}; use at most {most} replicates"
        )


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Point values and bootstrap replicates of each metric (or of a paired difference)."""

    point: dict[str, float]
    replicates: dict[str, NDArray[np.float64]]

    def interval(self, metric: str, level: float = 0.95) -> tuple[float, float]:
        """Percentile interval with coverage ``level`` (in ``(0, 1)``)."""
        if not 0 < level < 1:
            raise UsageError(f"an interval level must lie in (0, 1); got {level}")
        lo, hi = np.quantile(self.replicates[metric], [(1 - level) / 2, (1 + level) / 2])
        return float(lo), float(hi)


def bootstrap_metrics(
    stats: ExampleStats,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    replicates: int = 1000,
    seed: int = 0,
) -> BootstrapResult:
    """Bootstrap replicates of every bootstrapped metric of the table for one model."""
    d = _design(stats, n_bins, binning)
    _check(replicates, seed, d.n)

    def batch(job: tuple[int, np.random.SeedSequence]) -> dict[str, NDArray[np.float64]]:
        return _metrics_from_sums(d.sums(replicate_weights(d.n, job[0], job[1])), n_bins)

    parts: list[dict[str, NDArray[np.float64]]] = []
    map_reduce(
        _batches(d.n, replicates, seed, n_bins),
        batch,
        parts.append,
        description="bootstrap",
        total=replicates,
        unit="replicates",
        size=lambda job: job[0],
    )
    reps = {k: np.concatenate([p[k] for p in parts]) for k in _names()}
    return BootstrapResult(point_metrics(stats, n_bins=n_bins, binning=binning), reps)


def paired_bootstrap(
    candidate: ExampleStats,
    baseline: ExampleStats,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    replicates: int = 2000,
    seed: int = 0,
    paired: bool = True,
) -> BootstrapResult:
    """Bootstrap of the *worsening* ``candidate - baseline`` of every metric.

    The worsening is ``candidate - baseline`` for lower-is-better metrics and
    ``baseline - candidate`` for accuracy, so a positive value is always a regression. With
    ``paired=True`` (the same examples in the same order) each replicate resamples the examples
    of both models jointly; otherwise each model is resampled on its own.
    """
    if paired and candidate.confidence.size != baseline.confidence.size:
        raise UsageError("a paired bootstrap needs the same examples in both models")
    dc = _design(candidate, n_bins, binning)
    db = _design(baseline, n_bins, binning)
    _check(replicates, seed, dc.n + db.n)
    seq_c, seq_b = np.random.SeedSequence(seed).spawn(2)

    def batch(
        job: tuple[tuple[int, np.random.SeedSequence], tuple[int, np.random.SeedSequence]],
    ) -> dict[str, NDArray[np.float64]]:
        (size, s_c), (_, s_b) = job
        wc = replicate_weights(dc.n, size, s_c)
        wb = wc if paired else replicate_weights(db.n, size, s_b)
        mc = _metrics_from_sums(dc.sums(wc), n_bins)
        mb = _metrics_from_sums(db.sums(wb), n_bins)
        return {k: _worsening(k, mc[k], mb[k]) for k in _names()}

    n = max(dc.n, db.n)
    seed_c = int(seq_c.generate_state(1)[0])
    seed_b = int(seq_b.generate_state(1)[0])
    jobs = zip(
        _batches(n, replicates, seed_c, n_bins),
        _batches(n, replicates, seed_b, n_bins),
        strict=True,
    )
    parts: list[dict[str, NDArray[np.float64]]] = []
    map_reduce(
        jobs,
        batch,
        parts.append,
        description="bootstrap",
        total=replicates,
        unit="replicates",
        size=lambda job: job[0][0],
    )
    pc = point_metrics(candidate, n_bins=n_bins, binning=binning)
    pb = point_metrics(baseline, n_bins=n_bins, binning=binning)
    point = {k: float(_worsening(k, np.array(pc[k]), np.array(pb[k]))) for k in _names()}
    return BootstrapResult(point, {k: np.concatenate([p[k] for p in parts]) for k in _names()})


def _names() -> tuple[str, ...]:
    """The bootstrapped metrics now in the table."""
    return metric_table.names(metric_table.bootstrapped())


def _worsening(metric: str, cand: Any, base: Any) -> Any:
    return metric_table.get(metric).worsening(cand, base)
