"""Splitting a prediction source into partitions that another process can read on its own.

A distributed engine (:mod:`calibkit.engine.dask_executor`) runs a pass by sending each
*partition* of the source to a worker, which reads it, runs the pass's function on each of its
chunks and sends back the small partial results; the client merges them in row order. A
partition is a :class:`Part`: its first row in the whole source (``start``), its number of rows
and a picklable source (``source``) that streams exactly those rows, opened by the worker (a
parquet shard's path, a row range of an in-memory array, a view of either). Nothing here reads
data.

A source says how it splits with a method ``partitions(chunk_rows, hint)`` returning a
:class:`Plan` (or ``None`` when it cannot be split): ``hint`` is the number of parts the engine
would like (a few per worker), which sources whose pieces are fixed (parquet shards) may ignore;
``chunk_rows`` is the pass's chunk size, so that in-memory sources cut at chunk boundaries and
every part streams the chunks the local engine would stream (the same numbers, bit for bit).
A view of another source (:class:`~calibkit.sources.predictions.SourceView`) splits its base
and re-wraps each part (:meth:`~calibkit.sources.predictions.SourceView.rebase`).

A view that *observes* the rows it streams (the label digest,
:class:`~calibkit.sources.digest.LabelDigest`) cannot keep its state on a worker: it adds a
*tap* to every part, a picklable function ``tap(start, scores, labels)`` run by the worker on
each chunk of the part, whose small results come back with the part's results; once every
part has been merged, the plan's ``finish`` functions receive, tap by tap, those results of
every chunk in row order (:meth:`Plan.finished`).

>>> import numpy as np
>>> from calibkit.sources.predictions import Predictions
>>> p = Predictions.from_arrays(np.zeros((10, 2)), np.zeros(10, dtype=int))
>>> plan = p.partitions(3, 2)
>>> [(part.start, part.rows) for part in plan.parts]
[(0, 6), (6, 4)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from numpy.typing import NDArray

__all__ = ["Part", "Plan", "Tap", "aligned_ranges", "plan_of"]

#: A function a worker runs on each chunk of a part: ``tap(start, scores, labels)`` (``start``
#: the chunk's first row in the whole source) returning a small, picklable result.
Tap = Callable[[int, NDArray[Any], NDArray[Any]], Any]


@dataclass(frozen=True, eq=False)
class Part:
    """Rows ``start : start + rows`` of a source, as a source of their own (``source``)."""

    start: int
    rows: int
    source: Any  # a PredictionSource; Any: this module sits below the protocol's users
    taps: tuple[Tap, ...] = ()


@dataclass(frozen=True, eq=False)
class Plan:
    """The parts of a source, in row order, and what to do with the taps' results."""

    parts: tuple[Part, ...]
    #: ``finish[j](results)``: the results of ``taps[j]`` of every chunk, in row order
    finish: tuple[Callable[[list[Any]], None], ...] = field(default=())

    @property
    def n_rows(self) -> int:
        return sum(p.rows for p in self.parts)

    def with_tap(self, tap: Tap, finish: Callable[[list[Any]], None]) -> Plan:
        """This plan with one more tap on every part."""
        parts = tuple(replace(p, taps=(*p.taps, tap)) for p in self.parts)
        return Plan(parts, (*self.finish, finish))

    def rebased(self, wrap: Callable[[Part], Part]) -> Plan:
        """This plan with every part re-wrapped (a view over each part of its base)."""
        return Plan(tuple(wrap(p) for p in self.parts), self.finish)

    def finished(self, tap_results: Sequence[list[Any]]) -> None:
        """Hand each tap's results (of every chunk, in row order) to its ``finish``."""
        for done, results in zip(self.finish, tap_results, strict=True):
            done(results)


def aligned_ranges(n_rows: int, chunk_rows: int, hint: int) -> list[tuple[int, int]]:
    """About ``hint`` row ranges ``(start, stop)`` covering ``0 .. n_rows``, each a whole
    number of ``chunk_rows`` chunks (the last may be short), none empty.

    >>> aligned_ranges(10, 3, 2)
    [(0, 6), (6, 10)]
    >>> aligned_ranges(0, 3, 4)
    []
    """
    chunks = -(-n_rows // max(1, chunk_rows))
    per = max(1, -(-chunks // max(1, hint)))
    step = per * max(1, chunk_rows)
    return [(a, min(n_rows, a + step)) for a in range(0, n_rows, step)]


def plan_of(source: Any, chunk_rows: int | None, hint: int) -> Plan | None:
    """``source.partitions(chunk_rows, hint)``, or ``None`` when the source has no such method
    (it cannot be split and is read by the client)."""
    method = getattr(source, "partitions", None)
    if method is None:
        return None
    plan: Plan | None = method(chunk_rows, hint)
    return plan
