"""Exact order statistics of a per-row quantity, from passes that return small histograms.

Equal-mass bin edges and the median logit gap are order statistics: the values of given ranks
of the sorted values. Sorting needs every value in one place; on a cluster
(:func:`calibkit.engine.executors.is_distributed`) a pass may only send back small sums.
:func:`order_statistics` finds them exactly by **radix selection** on the IEEE-754 bit patterns,
every requested rank refined at once, in a few :func:`~calibkit.engine.passes.run_pass` passes:

* every value ``v`` (float64) becomes a 64-bit key that orders like ``v``: for ``v >= 0`` its
  bits with the sign bit set, for ``v < 0`` its bits inverted (so negative values, infinities
  included, are allowed and come first, as in :func:`numpy.sort`). ``-0.0`` is read as
  ``+0.0`` (they compare equal, so ``np.sort`` may give either; the key gives ``+0.0``), and
  every NaN as :data:`numpy.nan`, sorted last as ``np.sort`` does.
* pass 1 counts the keys by their top ``w`` bits (a histogram of int64 counts, merged by
  addition: exact, whatever the chunking, the partitioning or the merge order); the cumulative
  counts say in which bucket (prefix) each requested rank lies and how many values lie below
  it. Each later pass counts, for the keys within the ranks' buckets only, the next ``w`` bits.
  ``w`` is chosen so that a histogram has at most :data:`HISTOGRAM_MAX` entries (the number of
  distinct buckets holding a rank times ``2**w``): 20 bits for one bucket, 16 for up to 16,
  at least 4; a chunk sends back only its non-zero entries.
* once the ranks' buckets hold at most :data:`COLLECT_MAX` values in all, one last pass sends
  back those values themselves (at most that many, over all chunks), and they are sorted.
  After 64 bits a bucket is one value (so ties cost no extra pass).

The result equals ``np.sort(values)[ranks]`` bit for bit (with the two readings above).
Cost: each pass reads the source once and recomputes the quantity. For continuous data of
``N`` rows a bucket after ``b`` bits of a value in ``[0.5, 1)`` holds about ``N / 2**(b - 12)``
values, so with 15 ranks one histogram pass and the collecting pass suffice up to
``N ~ 10**6`` and two up to ``N ~ 10**10`` (measured: 2 passes for 200 000 uniform values);
heavy ties need up to 4 histogram passes (20 + 16 + 16 + 12 bits) and no collecting one, and
more than 16 distinct buckets narrower passes. Data known to hold at most
:data:`COLLECT_MAX` values (``size_hint``) take one pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibkit.engine.executors import Executor, is_distributed
from calibkit.engine.passes import Chunk, run_pass
from calibkit.errors import InputError, Param, UsageError
from calibkit.metrics.binning import check_n_bins, mass_ranks
from calibkit.metrics.examples import BinaryMode, example_stats
from calibkit.sources.predictions import PredictionSource

__all__ = [
    "COLLECT_MAX",
    "HISTOGRAM_MAX",
    "Confidence",
    "Selection",
    "from_keys",
    "mass_edges",
    "order_statistics",
    "refuse_distributed",
    "to_keys",
]

#: Most values the last pass collects (over all chunks together): 512 KiB of keys.
COLLECT_MAX = 1 << 16
#: Most entries of one pass's histogram (distinct buckets holding a rank x 2**bits): 8 MiB.
HISTOGRAM_MAX = 1 << 20
_MIN_BITS = 4
_FIRST_BITS = 20
_SIGN = np.uint64(1 << 63)
_U64 = np.uint64


def to_keys(values: ArrayLike) -> NDArray[np.uint64]:
    """uint64 keys that order like the float64 ``values`` (``-0.0`` as ``+0.0``, NaN last).

    >>> k = to_keys([-1.0, -0.0, 0.0, 5e-324, 1.0, np.inf])
    >>> bool((np.diff(k.astype(object)) >= 0).all()), int(k[1]) == int(k[2])
    (True, True)
    """
    v = np.asarray(values, dtype=np.float64).ravel() + 0.0  # -0.0 + 0.0 is +0.0
    if np.isnan(v).any():
        v = np.where(np.isnan(v), np.nan, v)
    bits = v.view(np.uint64)
    neg = bits >= _SIGN
    out: NDArray[np.uint64] = np.where(neg, ~bits, bits | _SIGN)
    return out


def from_keys(keys: ArrayLike) -> NDArray[np.float64]:
    """The float64 values of :func:`to_keys` keys.

    >>> from_keys(to_keys([-2.5, 0.0, 1.0])).tolist()
    [-2.5, 0.0, 1.0]
    """
    k = np.asarray(keys, dtype=np.uint64)
    bits = np.where(k >= _SIGN, k ^ _SIGN, ~k)
    out: NDArray[np.float64] = bits.view(np.float64)
    return out


def refuse_distributed(what: str, executor: Executor | str | None = None) -> None:
    """A one-line :class:`~calibkit.errors.UsageError` when the passes run on a cluster:
    ``what`` says what keeps per-row data (e.g. ``"isotonic fits keep every row's
    confidence"``); the message adds that the local engine runs it."""
    if is_distributed(executor):
        raise UsageError(
            what
            + ", which a cluster's passes cannot send back; run it with "
            + Param("engine", "local")
        )


@dataclass(frozen=True, eq=False)
class Selection:
    """What :func:`order_statistics` found: ``n`` values in all; ``values[i]`` is the value of
    rank ``ranks[i]``; ``passes`` reads of the source."""

    n: int
    ranks: NDArray[np.int64]
    values: NDArray[np.float64]
    passes: int


def _sparse_counts(
    ids: NDArray[np.int64], size: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The non-zero entries ``(index, count)`` of ``bincount(ids, minlength=size)``."""
    if ids.size * 16 < size:  # few ids: sorting them is cheaper than a dense histogram
        idx, counts = np.unique(ids, return_counts=True)
        return idx.astype(np.int64), counts.astype(np.int64)
    dense = np.bincount(ids, minlength=size)
    idx = np.flatnonzero(dense)
    return idx.astype(np.int64), dense[idx].astype(np.int64)


def _match(
    keys: NDArray[np.uint64], prefixes: NDArray[np.uint64], level: int
) -> tuple[NDArray[np.bool_], NDArray[np.intp]]:
    """Which keys start with one of the sorted ``prefixes`` (of ``level`` bits), and its index."""
    if level == 0:
        return np.ones(keys.size, dtype=bool), np.zeros(keys.size, dtype=np.intp)
    pre = keys >> _U64(64 - level)
    pos = np.searchsorted(prefixes, pre)
    np.minimum(pos, prefixes.size - 1, out=pos)
    return prefixes[pos] == pre, pos


@dataclass(frozen=True, eq=False)
class _Histogram:
    """One chunk's counts of the next ``width`` bits of the keys within ``prefixes``: small
    parameters only (the chunk function travels to a cluster's workers)."""

    quantity: Callable[[Chunk], NDArray[np.float64]]
    prefixes: NDArray[np.uint64]
    level: int
    width: int

    def __call__(self, chunk: Chunk) -> tuple[int, NDArray[np.int64], NDArray[np.int64]]:
        keys = to_keys(self.quantity(chunk))
        hit, pos = _match(keys, self.prefixes, self.level)
        shift = _U64(64 - self.level - self.width)
        digit = (keys[hit] >> shift) & _U64((1 << self.width) - 1)
        ids = (pos[hit].astype(np.int64) << self.width) | digit.astype(np.int64)
        idx, counts = _sparse_counts(ids, self.prefixes.size << self.width)
        return int(keys.size), idx, counts


@dataclass(frozen=True, eq=False)
class _Collect:
    """One chunk's keys within ``prefixes`` (bounded: the caller knows how many there are)."""

    quantity: Callable[[Chunk], NDArray[np.float64]]
    prefixes: NDArray[np.uint64]
    level: int

    def __call__(self, chunk: Chunk) -> tuple[int, NDArray[np.uint64]]:
        keys = to_keys(self.quantity(chunk))
        hit, _ = _match(keys, self.prefixes, self.level)
        return int(keys.size), keys[hit]


class _Counts:
    """A pass's merged histogram (int64 counts added: exact in any order) and values seen."""

    def __init__(self, size: int) -> None:
        self.n = 0
        self.hist = np.zeros(size, dtype=np.int64)

    def add(self, part: tuple[int, NDArray[np.int64], NDArray[np.int64]]) -> None:
        self.n += part[0]
        self.hist[part[1]] += part[2]  # a chunk's indices are distinct


class _Kept:
    """A collecting pass's keys, in chunk order, and the values seen."""

    def __init__(self) -> None:
        self.n = 0
        self.keys: list[NDArray[np.uint64]] = []

    def add(self, part: tuple[int, NDArray[np.uint64]]) -> None:
        self.n += part[0]
        self.keys.append(part[1])

    def sorted(self) -> NDArray[np.uint64]:
        return np.sort(np.concatenate(self.keys)) if self.keys else np.zeros(0, dtype=np.uint64)


def _changed(source: PredictionSource) -> InputError:
    return InputError(source.source, "the data changed between two reads (a selection pass)")


def order_statistics(
    source: PredictionSource,
    quantity: Callable[[Chunk], NDArray[np.float64]],
    ranks: Callable[[int], ArrayLike],
    *,
    chunk_rows: int | None = None,
    executor: Executor | str | None = None,
    description: str = "order statistics",
    size_hint: int | None = None,
) -> Selection:
    """The values of the 0-based ``ranks(n)`` of the sorted ``quantity`` values of every chunk
    of ``source`` (``n`` their number), exactly, from passes of small histograms (module
    docstring). ``quantity`` maps a :class:`~calibkit.engine.passes.Chunk` to a float64 array
    (any length) and must hold only small parameters (it is sent to a cluster's workers).
    ``size_hint``: an upper bound of ``n`` known beforehand (e.g. the rows), which lets data of
    at most :data:`COLLECT_MAX` values be collected in one pass.

    >>> from calibkit.sources.predictions import ConfidenceRows
    >>> p = ConfidenceRows.from_arrays([0.9, 0.2, 0.4, 0.6, 0.4], [1, 0, 1, 1, 0])
    >>> s = order_statistics(p, lambda c: c.scores, lambda n: [0, n // 2, n - 1])
    >>> s.n, s.values.tolist()
    (5, [0.2, 0.4, 0.9])
    """
    passes = 0
    label = f"{source.source}: {description}"

    def run(fn: Any, merge: Callable[[Any], None]) -> None:
        nonlocal passes
        passes += 1
        run_pass(source, fn, merge, chunk_rows=chunk_rows, executor=executor, description=label)

    def finish(n: int, keys: NDArray[np.uint64], wanted: NDArray[np.int64]) -> Selection:
        return Selection(n=n, ranks=wanted, values=from_keys(keys), passes=passes)

    def check_ranks(n: int) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.intp]]:
        wanted = np.asarray(ranks(n), dtype=np.int64).ravel()
        if wanted.size and (wanted.min() < 0 or wanted.max() >= n):
            raise ValueError(f"ranks must be from 0 to {n - 1}; got {wanted.tolist()[:5]}")
        uniq, inverse = np.unique(wanted, return_inverse=True)
        return wanted, uniq, inverse.ravel()

    if size_hint is not None and size_hint <= COLLECT_MAX:  # small: one pass collects all
        every = _Kept()
        run(_Collect(quantity, np.zeros(0, dtype=np.uint64), 0), every.add)
        keys = every.sorted()
        wanted, _, _ = check_ranks(keys.size)
        return finish(int(keys.size), keys[wanted], wanted)

    # pass 1: the top bits of every key
    level = 0
    prefixes = np.zeros(1, dtype=np.uint64)  # the distinct buckets holding a rank
    expect = np.full(1, -1, dtype=np.int64)  # their counts (-1: not known yet)
    n = -1
    below: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
    rank_bucket: NDArray[np.intp] = np.zeros(0, dtype=np.intp)
    uniq: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
    wanted = uniq
    inverse: NDArray[np.intp] = np.zeros(0, dtype=np.intp)
    while level < 64:
        p = prefixes.size
        room = max(_MIN_BITS, int(np.log2(max(1, HISTOGRAM_MAX // p))))
        width = min(64 - level, _FIRST_BITS if level == 0 else room, room)
        counts = _Counts(p << width)
        run(_Histogram(quantity, prefixes, level, width), counts.add)
        total, hist = counts.n, counts.hist
        if n < 0:  # the first pass: now the ranks are known
            n = total
            wanted, uniq, inverse = check_ranks(n)
            if uniq.size == 0:
                return finish(n, np.zeros(0, dtype=np.uint64), wanted)
            below = np.zeros(uniq.size, dtype=np.int64)
            rank_bucket = np.zeros(uniq.size, dtype=np.intp)
            expect = np.full(1, n, dtype=np.int64)
        elif total != n:
            raise _changed(source)
        per = hist.reshape(p, 1 << width)
        if not np.array_equal(per.sum(axis=1), expect):
            raise _changed(source)
        cum = np.cumsum(per, axis=1)
        digit = np.empty(uniq.size, dtype=np.int64)
        count = np.empty(uniq.size, dtype=np.int64)
        for b in range(p):
            mine = rank_bucket == b
            d = np.searchsorted(cum[b], uniq[mine] - below[mine], side="right")
            below[mine] += np.where(d > 0, cum[b][np.maximum(d - 1, 0)], 0)
            digit[mine] = d
            count[mine] = per[b][d]
        full = (prefixes[rank_bucket] << _U64(width)) if level else np.zeros(uniq.size, np.uint64)
        new = full | digit.astype(np.uint64)
        level += width
        prefixes, rank_bucket = np.unique(new, return_inverse=True)
        rank_bucket = rank_bucket.ravel()
        expect = np.zeros(prefixes.size, dtype=np.int64)
        expect[rank_bucket] = count
        if level < 64 and int(expect.sum()) <= COLLECT_MAX:
            kept = _Kept()
            run(_Collect(quantity, prefixes, level), kept.add)
            keys = kept.sorted()
            if kept.n != n or keys.size != int(expect.sum()):
                raise _changed(source)
            start = np.searchsorted(keys, prefixes << _U64(64 - level))
            values = keys[start[rank_bucket] + (uniq - below)]
            return finish(n, values[inverse], wanted)
    # 64 bits: each bucket is one value
    return finish(n, (prefixes[rank_bucket])[inverse], wanted)


@dataclass(frozen=True)
class Confidence:
    """The binned confidence of a chunk's rows (:func:`~calibkit.metrics.examples.example_stats`
    of ``kind`` in ``binary_mode``): a quantity for :func:`order_statistics`."""

    kind: str
    binary_mode: BinaryMode = "top-label"

    def __call__(self, chunk: Chunk) -> NDArray[np.float64]:
        stats = example_stats(chunk.scores, chunk.labels, self.kind, binary_mode=self.binary_mode)
        return stats.confidence


def mass_edges(
    source: PredictionSource,
    quantity: Callable[[Chunk], NDArray[np.float64]],
    n_bins: int,
    *,
    chunk_rows: int | None = None,
    executor: Executor | str | None = None,
) -> tuple[NDArray[np.float64], int]:
    """The upper edges of ``n_bins`` equal-mass bins of one ``quantity`` value per row (as
    :func:`~calibkit.metrics.binning.mass_bin_edges` of them all, bit for bit) and the number
    of values, by :func:`order_statistics`.

    >>> from calibkit.sources.predictions import Predictions
    >>> p = Predictions.from_arrays([[0.1, 0.9], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7]], [1, 0, 1, 1])
    >>> edges, n = mass_edges(p, Confidence(p.kind), 2)
    >>> edges.tolist(), n
    ([0.7, 0.9], 4)
    """
    m = check_n_bins(n_bins)
    try:
        hint: int | None = int(source.n_rows)
    except (TypeError, ValueError):  # pragma: no cover - every source says
        hint = None
    sel = order_statistics(
        source,
        quantity,
        lambda n: mass_ranks(n, m),
        chunk_rows=chunk_rows,
        executor=executor,
        description="equal-mass bin edges",
        size_hint=hint,
    )
    if sel.n == 0:
        return np.ones(m, dtype=np.float64), 0
    return sel.values, sel.n
