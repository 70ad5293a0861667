"""Poisson bootstrap of calibration metrics, streamed over a source, paired or not.

Every metric calibkit gates on is a function of a few sums over examples: per bin the count,
the summed confidence and the summed outcome; overall the number correct, the summed NLL and the
summed Brier score. A bootstrap replicate gives example ``i`` an integer weight ``w_i``, so a
replicate's sums are weighted sums of six per-example numbers: a weighted bin count, not a new
softmax.

**Weights (a counter-based Poisson bootstrap).** Replicate ``b`` (``0 .. B-1``) gives the row
whose *global* number in the source is ``i`` (counted from 0 over the whole source, whatever
its chunks, files or partitions) the weight ``w_{b,i} ~ Poisson(1)``, computed from a hash of
``(seed, stream, b, i)`` alone (:func:`poisson_weights`), with ``splitmix64`` the bijective
mixer of :mod:`calibkit.sources.folds` and ``g = 0x9E3779B97F4A7C15`` (all arithmetic mod 2^64)::

    base   = splitmix64(splitmix64(seed) + stream)
    key_b  = splitmix64(base  + b * g)
    h      = splitmix64(key_b + i * g)
    w      = #{k in 0..19 : T_k <= h},   T_k = floor(2^64 * P(Poisson(1) <= k))

The thresholds ``T_k`` are computed once, to 50 significant digits (:data:`POISSON_THRESHOLDS`),
so ``P(w = k)`` is ``P(Poisson(1) = k)`` to within ``2^-64`` for ``k < 20``, and the tail
``k >= 20`` (probability 4e-20) is lumped at 20. No generator state exists: the weight of a row
depends on nothing else, not on the chunk size, the shard layout, the engine, the thread or
worker count, so a worker that holds rows ``a:b`` of a data set computes their weights without
seeing the others. A replicate's size ``sum_i w_{b,i}`` is Poisson(N), not exactly ``N``; each
replicate's metrics are means over its own total weight.

**Streaming.** A bootstrap is one pass (:func:`calibkit.engine.passes.run_pass`) over the
source: each chunk computes its per-example statistics, assigns them to *fixed* bins
(equal-width edges, or the equal-mass upper edges of the full sample, given by the caller from
the point summary's :class:`~calibkit.metrics.calibration.BinTable` or computed in a first pass),
draws its weights in batches of at most :data:`_BATCH_CELLS` replicates x rows, and returns
per-replicate sums of shape ``(R, 3M + 3)`` (:class:`_Sums`): a small result that the merge
adds up in row order. Row 0 of a model's sums holds the sample itself (every weight 1), so the
point values come from the same pass. When ``B x (3M + 3)`` exceeds :data:`_RESULT_CELLS` the
replicates are split into groups, one pass each, so a chunk's result stays small for many bins.

**Paired** bootstrap (candidate vs baseline on the same examples): both models use stream 0, so
row ``i`` gets the same weights in both even when they are streamed in separate passes with
different shard layouts; the difference keeps the correlation between the models. Unpaired
(other examples): the baseline uses stream 1, independent weights.

**Empty replicates.** A replicate whose total weight is 0 (probability ``e^-N`` per replicate:
37% for one row, 0.7% for five) has no metrics; it is dropped (from both models of a
paired or unpaired comparison) and counted in :attr:`BootstrapResult.dropped`; p-values and
intervals use the replicates left.

The sums agree across chunk sizes and partitionings to float64 rounding (~1e-15 relative; the
bin counts exactly), so p-values, intervals and verdicts agree too.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from calibkit.engine.passes import Chunk, map_reduce, run_pass
from calibkit.errors import InputError, UsageError
from calibkit.limits import MAX_REPLICATES, MAX_RESAMPLED_ROWS, MAX_SEED
from calibkit.metrics import table as metric_table
from calibkit.metrics.binning import (
    Binning,
    assign_mass_bins,
    assign_width_bins,
    check_binning,
    check_n_bins,
    mass_bin_edges,
)
from calibkit.metrics.examples import BinaryMode, ExampleStats, example_stats
from calibkit.sources.folds import _GAMMA, _M1, _M2, splitmix64  # the one splitmix64

if TYPE_CHECKING:
    from calibkit.sources.predictions import PredictionSource

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "POISSON_THRESHOLDS",
    "BootstrapResult",
    "ModelSums",
    "bootstrap_metrics",
    "check_replicates",
    "model_sums",
    "paired_bootstrap",
    "point_metrics",
    "poisson_weights",
    "worsening_bootstrap",
]

#: The built-in metrics that can be bootstrapped, in table order (:mod:`calibkit.metrics.table`;
#: the functions here read the table when they run, so a metric registered later is included).
METRICS = metric_table.names(metric_table.bootstrapped())
#: The built-in bootstrapped metrics where higher is better.
HIGHER_IS_BETTER = frozenset(m.name for m in metric_table.bootstrapped() if m.higher_is_better)

#: Upper bound on the weights of one batch (replicates x rows) in a chunk (16 MiB of float64;
#: the hash needs a few uint64 temporaries of that size).
_BATCH_CELLS = 2_000_000
#: Upper bound on the float64 entries of one chunk's result, ``replicates x (3M + 3)`` (64 MiB):
#: more replicates are split into groups, one pass each.
_RESULT_CELLS = 8_000_000
#: Rows per piece when per-example statistics held in memory are bootstrapped.
_STATS_CHUNK = 1 << 16

#: Weights above this are lumped at it (``P(Poisson(1) >= 20) = 4e-20``).
_KMAX = 20


def _thresholds() -> NDArray[np.uint64]:
    """``T_k = floor(2^64 * P(Poisson(1) <= k))`` for ``k = 0 .. 19``, to 50 digits."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 50
        term = Decimal(-1).exp()  # P(X = 0)
        cdf = Decimal(0)
        out = []
        for k in range(_KMAX):
            cdf += term
            out.append(min(int(cdf * (1 << 64)), (1 << 64) - 1))
            term /= k + 1
    return np.array(out, dtype=np.uint64)


#: The 20 thresholds of the inverse-CDF map from a 64-bit hash to a Poisson(1) weight.
POISSON_THRESHOLDS = _thresholds()


def _u64(values: Any) -> NDArray[np.uint64]:
    return np.asarray(values, dtype=np.uint64).reshape(-1)


def _replicate_keys(seed: int, stream: int, replicates: NDArray[np.uint64]) -> NDArray[np.uint64]:
    base = splitmix64(splitmix64(_u64([seed & 0xFFFFFFFFFFFFFFFF])) + _u64([stream]))
    return splitmix64(base + replicates * _GAMMA)


#: uint64 hashes computed at a time (256 KiB per work array: they stay in the core's cache).
_HASH_BLOCK = 1 << 15
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def _mix(z: NDArray[np.uint64], t: NDArray[np.uint64]) -> None:
    """splitmix64's output function of ``z`` (already advanced by the gamma), in place; ``t``
    a work array of the same shape (:func:`calibkit.sources.folds.splitmix64`, without the
    allocations of its 9 temporaries)."""
    np.right_shift(z, _S30, out=t)
    z ^= t
    z *= _M1
    np.right_shift(z, _S27, out=t)
    z ^= t
    z *= _M2
    np.right_shift(z, _S31, out=t)
    z ^= t


def _weights(keys: NDArray[np.uint64], rows: NDArray[np.uint64]) -> NDArray[np.float64]:
    """``w[b, i]``: the Poisson(1) weight of ``rows[i]`` in the replicate of ``keys[b]``,
    ``searchsorted(T, splitmix64(key_b + row_i * g), "right")``, hashed in cache-sized blocks
    (4-5x faster than whole-array temporaries; the same numbers)."""
    b, n = keys.size, rows.size
    out = np.empty((b, n))
    if b == 0 or n == 0:
        return out
    base = rows * _GAMMA + _GAMMA  # splitmix64 advances its state by the gamma first
    if n >= _HASH_BLOCK:  # long chunks: blocks of one replicate's row numbers
        z = np.empty(_HASH_BLOCK, dtype=np.uint64)
        t = np.empty_like(z)
        for r in range(b):
            for c in range(0, n, _HASH_BLOCK):
                d = min(n, c + _HASH_BLOCK)
                zz, tt = z[: d - c], t[: d - c]
                np.add(base[c:d], keys[r], out=zz)
                _mix(zz, tt)
                out[r, c:d] = np.searchsorted(POISSON_THRESHOLDS, zz, side="right")
        return out
    step = max(1, _HASH_BLOCK // n)  # short chunks: blocks of several replicates
    z2 = np.empty((min(b, step), n), dtype=np.uint64)
    t2 = np.empty_like(z2)
    for r in range(0, b, step):
        e = min(b, r + step)
        zz2, tt2 = z2[: e - r], t2[: e - r]
        np.add(keys[r:e, None], base[None, :], out=zz2)
        _mix(zz2, tt2)
        out[r:e] = np.searchsorted(POISSON_THRESHOLDS, zz2, side="right")
    return out


def poisson_weights(
    rows: Any, replicates: Any, *, seed: int = 0, stream: int = 0
) -> NDArray[np.float64]:
    """The weights ``w_{b,i}`` of the global row numbers ``rows`` in the replicates ``replicates``
    (numbers from 0), shape ``(len(replicates), len(rows))`` (see the module docstring).

    >>> w = poisson_weights(range(5), [0, 1], seed=0)
    >>> w.shape, bool((w == poisson_weights([3], [1])[0, 0])[1, 3])
    ((2, 5), True)
    """
    return _weights(_replicate_keys(int(seed), int(stream), _u64(replicates)), _u64(rows))


# ---------------------------------------------------------------------------------------------
# the sums of one chunk


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
    (see :class:`_Sums`), by its ``from_sums``; each replicate's total weight is its ``N``."""
    view = _Sums(sums, m)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            metric.name: metric.from_sums(view)
            for metric in metric_table.bootstrapped()
            if metric.from_sums is not None
        }


@dataclass(frozen=True)
class _Plan:
    """The small parameters of one bootstrap pass (what a worker receives): the bins, the
    replicates ``first .. stop - 1`` of ``stream``, and whether row 0 is the sample itself."""

    n_bins: int
    upper: tuple[float, ...] | None  # equal-mass upper edges; None: equal-width bins
    seed: int
    stream: int
    first: int
    stop: int
    point: bool

    @property
    def rows_out(self) -> int:
        return int(self.point) + self.stop - self.first


def _batch_size(n: int, replicates: int, n_bins: int) -> int:
    """Replicates per batch of a chunk of ``n`` rows: at most :data:`_BATCH_CELLS` weights
    (``size x n``) and as many per-bin sums (``size x 6M``), so memory stays bounded for any
    ``N`` and ``M``."""
    return max(1, min(replicates, _BATCH_CELLS // max(n, 6 * n_bins, 1)))


def _block_sums(plan: _Plan, stats: ExampleStats, start: int) -> NDArray[np.float64]:
    """Per-replicate sums ``(R, 3M + 3)`` of the rows ``start .. start + n - 1``."""
    m = plan.n_bins
    conf = stats.confidence
    n = int(conf.size)
    out = np.zeros((plan.rows_out, 3 * m + 3))
    if n == 0:
        return out
    if plan.upper is None:
        idx = assign_width_bins(conf, m)
    else:
        idx = assign_mass_bins(conf, np.asarray(plan.upper, dtype=np.float64))
    perm = np.argsort(idx, kind="stable")
    starts = np.searchsorted(idx[perm], np.arange(m + 1))
    filled = np.flatnonzero(np.diff(starts))
    x = np.stack(
        [
            np.ones(n),
            conf,
            stats.outcome,
            stats.correct_values(),
            -stats.log_prob,
            stats.brier,
        ],
        axis=1,
    )[perm]
    rows = np.uint64(start) + perm.astype(np.uint64)  # global row numbers, in bin order

    def put(at: int, per_bin: NDArray[np.float64]) -> None:
        size = per_bin.shape[0]
        out[at : at + size, :m] = per_bin[:, :, 0]
        out[at : at + size, m : 2 * m] = per_bin[:, :, 1]
        out[at : at + size, 2 * m : 3 * m] = per_bin[:, :, 2]
        out[at : at + size, 3 * m :] = per_bin[:, :, 3:].sum(axis=1)

    at = 0
    if plan.point:
        per_bin = np.zeros((1, m, 6))
        for b in filled:
            lo, hi = starts[b], starts[b + 1]
            per_bin[0, b, :] = x[lo:hi].sum(axis=0)
        put(0, per_bin)
        at = 1
    reps = plan.stop - plan.first
    if reps == 0:
        return out
    keys = _replicate_keys(
        plan.seed, plan.stream, np.arange(plan.first, plan.stop, dtype=np.uint64)
    )
    batch = _batch_size(n, reps, m)
    for lo_r in range(0, reps, batch):
        w = _weights(keys[lo_r : lo_r + batch], rows)
        per_bin = np.zeros((w.shape[0], m, 6))
        for b in filled:  # empty bins sum to 0: at most min(M, n) products
            lo, hi = starts[b], starts[b + 1]
            per_bin[:, b, :] = w[:, lo:hi] @ x[lo:hi]
        put(at + lo_r, per_bin)
    return out


def _floored(stats: ExampleStats) -> int:
    return int(np.count_nonzero(stats.floored)) if stats.floored is not None else 0


@dataclass(frozen=True)
class _ChunkFn:
    """The map of a bootstrap pass: a chunk's sums and its zero-probability rows (picklable:
    it holds only the plan and the input's kind)."""

    plan: _Plan
    kind: str
    binary_mode: BinaryMode

    def __call__(self, chunk: Chunk) -> tuple[NDArray[np.float64], int]:
        stats = example_stats(chunk.scores, chunk.labels, self.kind, binary_mode=self.binary_mode)
        return _block_sums(self.plan, stats, chunk.start), _floored(stats)


# ---------------------------------------------------------------------------------------------
# the sums of one model


@dataclass(frozen=True, eq=False)
class ModelSums:
    """The bootstrap sums of one model: ``sums[0]`` the sample itself (every weight 1),
    ``sums[1 + b]`` replicate ``b`` of ``stream`` with ``seed``; shape ``(1 + B, 3M + 3)``."""

    sums: NDArray[np.float64]
    n_bins: int
    seed: int
    stream: int
    zero_prob_rows: int = 0

    @property
    def n(self) -> int:
        """The number of examples."""
        return round(float(self.sums[0, : self.n_bins].sum()))

    @property
    def replicates(self) -> int:
        return int(self.sums.shape[0]) - 1

    def point(self) -> dict[str, float]:
        """The metrics of the sample, computed the way replicates are."""
        return {k: float(v[0]) for k, v in _metrics_from_sums(self.sums[:1], self.n_bins).items()}

    def replicate_metrics(self) -> dict[str, NDArray[np.float64]]:
        """Every bootstrapped metric of every replicate (NaN where the total weight is 0)."""
        return _metrics_from_sums(self.sums[1:], self.n_bins)

    @property
    def empty(self) -> NDArray[np.bool_]:
        """The replicates whose total weight is 0."""
        out: NDArray[np.bool_] = self.sums[1:, : self.n_bins].sum(axis=1) == 0
        return out


def check_replicates(replicates: int, seed: int, rows: int) -> None:
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


def _plans(
    n_bins: int, upper: tuple[float, ...] | None, replicates: int, seed: int, stream: int
) -> list[_Plan]:
    """One plan per pass: groups of replicates whose sums fit :data:`_RESULT_CELLS`."""
    group = max(1, _RESULT_CELLS // (3 * n_bins + 3) - 1)
    plans = [_Plan(n_bins, upper, seed, stream, 0, min(group, replicates), True)]
    for first in range(group, replicates, group):
        plans.append(
            _Plan(n_bins, upper, seed, stream, first, min(first + group, replicates), False)
        )
    return plans


def _upper(
    n_bins: int, binning: Binning, upper_edges: Any, fallback: Any
) -> tuple[float, ...] | None:
    if check_binning(binning) == "width":
        return None
    if upper_edges is None:
        upper_edges = fallback()
    upper = np.asarray(upper_edges, dtype=np.float64).reshape(-1)
    if upper.size != n_bins:
        raise UsageError(f"equal-mass bins need {n_bins} upper edges; got {upper.size}")
    return tuple(float(u) for u in upper)


def _stats_pieces(
    stats: ExampleStats, chunk_rows: int | None
) -> Iterator[tuple[int, ExampleStats]]:
    n = int(stats.confidence.size)
    step = chunk_rows or _STATS_CHUNK
    for lo in range(0, n, step):
        part: dict[str, Any] = {
            f: None if (v := getattr(stats, f)) is None else v[lo : lo + step]
            for f in ExampleStats.__dataclass_fields__
        }
        yield lo, ExampleStats(**part)


def _piece_rows(item: tuple[int, ExampleStats]) -> int:
    return int(item[1].confidence.size)


def _one_pass(
    data: PredictionSource | ExampleStats,
    plan: _Plan,
    binary_mode: BinaryMode,
    chunk_rows: int | None,
) -> tuple[NDArray[np.float64], int]:
    """The sums of one plan over ``data`` and its zero-probability rows, merged in row order."""
    acc = np.zeros((plan.rows_out, 3 * plan.n_bins + 3))
    floored = 0

    def merge(part: tuple[NDArray[np.float64], int]) -> None:
        nonlocal floored
        np.add(acc, part[0], out=acc)
        floored += part[1]

    if isinstance(data, ExampleStats):

        def piece(item: tuple[int, ExampleStats]) -> tuple[NDArray[np.float64], int]:
            return _block_sums(plan, item[1], item[0]), _floored(item[1])

        map_reduce(
            _stats_pieces(data, chunk_rows),
            piece,
            merge,
            description="bootstrap",
            total=int(data.confidence.size),
            size=_piece_rows,
        )
    else:
        from calibkit.metrics.summary import binary_mode_for

        mode = binary_mode_for(data, binary_mode)
        run_pass(
            data,
            _ChunkFn(plan, data.kind, mode),
            merge,
            chunk_rows=chunk_rows,
            description=f"{data.source}: bootstrap",
        )
    return acc, floored


def model_sums(
    data: PredictionSource | ExampleStats,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    upper_edges: Any = None,
    replicates: int = 1000,
    seed: int = 0,
    stream: int = 0,
    binary_mode: BinaryMode = "top-label",
    chunk_rows: int | None = None,
    warn: bool = False,
) -> ModelSums:
    """The point sums and ``replicates`` bootstrap replicates of one model (``0``: the point
    sums only), streamed over a source (one pass per replicate group, see the module
    docstring), or computed from per-example statistics held in memory (cut into pieces of
    ``chunk_rows`` rows; with the chunks of a source the result is the source's, bit for bit).

    ``upper_edges``: the equal-mass upper edges of the full sample (``summary.bins.upper``);
    without them a first pass computes them. ``warn``: warn about rows whose label probability
    is exactly 0 (counted in :attr:`ModelSums.zero_prob_rows` either way).
    """
    m = check_n_bins(n_bins)
    is_stats = isinstance(data, ExampleStats)
    rows = int(data.confidence.size) if isinstance(data, ExampleStats) else data.n_rows
    if replicates != 0:
        check_replicates(replicates, seed, rows)
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"the bootstrap seed must be an integer from 0 to 2**63 - 1; got {seed!r}")

    def edges() -> Any:
        if isinstance(data, ExampleStats):
            return mass_bin_edges(data.confidence, m)
        from calibkit.metrics.summary import summarize

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # this pass warns once, below
            return summarize(
                data, n_bins=m, binning="mass", binary_mode=binary_mode, chunk_rows=chunk_rows
            ).bins.upper

    upper = _upper(m, binning, upper_edges, edges)
    total = np.zeros((1 + int(replicates), 3 * m + 3))
    floored = 0
    for plan in _plans(m, upper, int(replicates), int(seed), int(stream)):
        acc, zeros = _one_pass(data, plan, binary_mode, chunk_rows)
        lo = 0 if plan.point else 1 + plan.first
        total[lo : 1 + plan.stop] = acc
        if plan.point:
            floored = zeros
    out = ModelSums(total, m, int(seed), int(stream), floored)
    if not is_stats and out.n == 0:
        raise InputError(data.source, "no rows: the predictions are empty")  # type: ignore[union-attr]
    if warn and floored and not is_stats:
        from calibkit.metrics.summary import zero_prob_message

        warnings.warn(zero_prob_message(data.source, floored), UserWarning, stacklevel=2)  # type: ignore[union-attr]
    return out


# ---------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Point values and bootstrap replicates of each metric (or of a paired difference).

    ``dropped``: replicates left out because a model's total weight in them was 0 (see the
    module docstring); ``replicates`` holds the others.
    """

    point: dict[str, float]
    replicates: dict[str, NDArray[np.float64]]
    dropped: int = 0

    def interval(self, metric: str, level: float = 0.95) -> tuple[float, float]:
        """Percentile interval with coverage ``level`` (in ``(0, 1)``); NaN without replicates."""
        if not 0 < level < 1:
            raise UsageError(f"an interval level must lie in (0, 1); got {level}")
        reps = self.replicates[metric]
        if reps.size == 0:
            return float("nan"), float("nan")
        lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
        return float(lo), float(hi)


def _names() -> tuple[str, ...]:
    """The bootstrapped metrics now in the table."""
    return metric_table.names(metric_table.bootstrapped())


def _worsening(metric: str, cand: Any, base: Any) -> Any:
    return metric_table.get(metric).worsening(cand, base)


def _result(sums: ModelSums) -> BootstrapResult:
    keep = ~sums.empty
    reps = sums.replicate_metrics()
    return BootstrapResult(
        sums.point(), {k: reps[k][keep] for k in _names()}, int(np.count_nonzero(~keep))
    )


def bootstrap_metrics(
    data: PredictionSource | ExampleStats | ModelSums,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    replicates: int = 1000,
    seed: int = 0,
    upper_edges: Any = None,
    binary_mode: BinaryMode = "top-label",
    chunk_rows: int | None = None,
) -> BootstrapResult:
    """Bootstrap replicates of every bootstrapped metric of the table for one model (a source
    streamed in one pass, per-example statistics, or sums already made by :func:`model_sums`)."""
    if not isinstance(data, ModelSums):
        rows = data.confidence.size if isinstance(data, ExampleStats) else data.n_rows
        check_replicates(replicates, seed, int(rows))
        data = model_sums(
            data,
            n_bins=n_bins,
            binning=binning,
            upper_edges=upper_edges,
            replicates=replicates,
            seed=seed,
            binary_mode=binary_mode,
            chunk_rows=chunk_rows,
        )
    return _result(data)


def worsening_bootstrap(candidate: ModelSums, baseline: ModelSums) -> BootstrapResult:
    """Bootstrap of the *worsening* ``candidate - baseline`` from the two models' sums (made
    with the same replicates, seed and bins; paired when both used the same stream)."""
    if (candidate.replicates, candidate.seed, candidate.n_bins) != (
        baseline.replicates,
        baseline.seed,
        baseline.n_bins,
    ):
        raise UsageError("the two models were bootstrapped with other replicates, seeds or bins")
    if candidate.stream == baseline.stream and candidate.n != baseline.n:
        raise UsageError("a paired bootstrap needs the same examples in both models")
    keep = ~(candidate.empty | baseline.empty)
    mc, mb = candidate.replicate_metrics(), baseline.replicate_metrics()
    pc, pb = candidate.point(), baseline.point()
    point = {k: float(_worsening(k, np.array(pc[k]), np.array(pb[k]))) for k in _names()}
    reps = {k: _worsening(k, mc[k][keep], mb[k][keep]) for k in _names()}
    return BootstrapResult(point, reps, int(np.count_nonzero(~keep)))


def paired_bootstrap(
    candidate: PredictionSource | ExampleStats,
    baseline: PredictionSource | ExampleStats,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    replicates: int = 2000,
    seed: int = 0,
    paired: bool = True,
    binary_mode: BinaryMode = "top-label",
    chunk_rows: int | None = None,
) -> BootstrapResult:
    """Bootstrap of the *worsening* ``candidate - baseline`` of every metric.

    The worsening is ``candidate - baseline`` for lower-is-better metrics and
    ``baseline - candidate`` for accuracy, so a positive value is always a regression. With
    ``paired=True`` (the same examples in the same order) row ``i`` gets the same weights in
    both models; otherwise the baseline's weights are independent (stream 1). Each model is
    streamed in its own pass (see the module docstring).
    """

    def rows(d: PredictionSource | ExampleStats) -> int:
        return int(d.confidence.size) if isinstance(d, ExampleStats) else d.n_rows

    if paired and rows(candidate) != rows(baseline):
        raise UsageError("a paired bootstrap needs the same examples in both models")
    check_replicates(replicates, seed, rows(candidate) + rows(baseline))
    kw: dict[str, Any] = {
        "n_bins": n_bins,
        "binning": binning,
        "replicates": replicates,
        "seed": seed,
        "binary_mode": binary_mode,
        "chunk_rows": chunk_rows,
    }
    return worsening_bootstrap(
        model_sums(candidate, stream=0, **kw), model_sums(baseline, stream=0 if paired else 1, **kw)
    )


def point_metrics(
    data: PredictionSource | ExampleStats,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    binary_mode: BinaryMode = "top-label",
    chunk_rows: int | None = None,
) -> dict[str, float]:
    """The metrics of the sample itself (weights all 1), computed the way replicates are."""
    return model_sums(
        data,
        n_bins=n_bins,
        binning=binning,
        replicates=0,
        binary_mode=binary_mode,
        chunk_rows=chunk_rows,
    ).point()
