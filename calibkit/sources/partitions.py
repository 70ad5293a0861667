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
:class:`~calibkit.sources.digest.LabelDigest`) cannot keep its state on a worker. It wraps each
part's source in a *tap* (:class:`TapView`): a view that the worker's copy fills with small,
picklable results of each chunk it streams (:meth:`TapView.observe`), which come back with the
part's results (:func:`tap_results`). Once every part has been merged, the plan's ``finish``
functions receive, tap by tap, those results of every chunk in row order
(:meth:`Plan.finished`).

>>> import numpy as np
>>> from calibkit.sources.predictions import Predictions
>>> p = Predictions.from_arrays(np.zeros((10, 2)), np.zeros(10, dtype=int))
>>> plan = p.partitions(3, 2)
>>> [(part.start, part.rows) for part in plan.parts]
[(0, 6), (6, 4)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from numpy.typing import NDArray

__all__ = ["Part", "Plan", "TapView", "aligned_ranges", "plan_of", "tap_results"]


@dataclass(frozen=True, eq=False)
class Part:
    """Rows ``start : start + rows`` of a source, as a source of their own (``source``)."""

    start: int
    rows: int
    source: Any  # a PredictionSource; Any: this module sits below the protocol's users


@dataclass(frozen=True, eq=False)
class Plan:
    """The parts of a source, in row order, and what to do with their taps' results."""

    parts: tuple[Part, ...]
    #: ``finish[key](results)``: the results of the taps with this key, every chunk, row order
    finish: tuple[Callable[[list[Any]], None], ...] = field(default=())

    @property
    def n_rows(self) -> int:
        return sum(p.rows for p in self.parts)

    def rebased(self, wrap: Callable[[Part], Part]) -> Plan:
        """This plan with every part re-wrapped (a view over each part of its base)."""
        return Plan(tuple(wrap(p) for p in self.parts), self.finish)

    def tapped(
        self,
        tap: Callable[[int, Any], TapView],
        finish: Callable[[list[Any]], None],
    ) -> Plan:
        """This plan with every part's source wrapped in ``tap(key, part)`` (a :class:`TapView`
        with that ``key``), whose results go to ``finish``."""
        key = len(self.finish)
        parts = tuple(Part(p.start, p.rows, tap(key, p)) for p in self.parts)
        return Plan(parts, (*self.finish, finish))

    def finished(self, results: dict[int, list[Any]]) -> None:
        """Hand each tap's results (of every chunk, in row order) to its ``finish``."""
        for key, done in enumerate(self.finish):
            done(results.get(key, []))


class TapView:
    """A view that streams ``base`` unchanged and keeps :meth:`observe`'s result of each chunk
    in :attr:`results` (on the worker that streams it). Subclasses give ``base``, ``key`` and
    ``start`` (the part's first row) and :meth:`observe`."""

    base: Any
    key: int
    start: int

    @property
    def results(self) -> list[Any]:
        found: list[Any] | None = self.__dict__.get("_results")
        if found is None:
            found = []
            object.__setattr__(self, "_results", found)
        return found

    def observe(self, start: int, scores: NDArray[Any], labels: NDArray[Any]) -> Any:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:  # shape facts of the base (source, kind, ...)
        if name.startswith("_") or name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[NDArray[Any], NDArray[Any]]]:
        self.results.clear()
        row = self.start
        for scores, labels in self.base.chunks(chunk_rows):
            self.results.append(self.observe(row, scores, labels))
            row += int(labels.shape[0])
            yield scores, labels


def tap_results(source: Any) -> dict[int, list[Any]]:
    """The results of every :class:`TapView` in ``source``'s chain of views (by key)."""
    out: dict[int, list[Any]] = {}
    node = source
    while node is not None:
        if isinstance(node, TapView):
            out[node.key] = list(node.results)
        node = getattr(node, "base", None)
    return out


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
