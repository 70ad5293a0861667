"""One pass engine: chunk -> partial result -> merge in chunk order.

Every pass of calibkit over its data (the metrics, each pass of a temperature fit, a sweep, the
class-wise statistics, the per-example statistics, a count of stored zeros) is one call of
:func:`run_pass`, and the bootstrap's batches of replicates one call of :func:`map_reduce`,
which :func:`run_pass` is built on. The caller gives a *map* function, which turns one work
item into a partial result without touching shared state, and a *merge* function, which folds
one partial result into the caller's accumulator. The executor (:mod:`calibkit.engine.executors`)
decides where the map runs; the results are merged here, in item order, whatever order the
executor yields them in, so every number is the same for every executor, thread count and
completion order. This is the one place where a pass advances its progress
(:mod:`calibkit.progress`): by the rows (or replicates) of each item when its result is merged.

>>> from calibkit.sources.predictions import Predictions
>>> p = Predictions.from_arrays([[0.0, 1.0], [2.0, 0.0], [0.0, 3.0]], [1, 0, 0])
>>> seen = []
>>> run_pass(p, lambda c: (c.index, c.start, c.rows), seen.append, chunk_rows=2)
2
>>> seen
[(0, 0, 2), (1, 2, 1)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from calibkit import progress
from calibkit.engine.executors import Executor, get_executor
from calibkit.errors import InputError
from calibkit.sources.partitions import Part, Plan, plan_of, tap_results

if TYPE_CHECKING:
    from calibkit.sources.predictions import PredictionSource

__all__ = ["Chunk", "map_reduce", "run_pass"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, eq=False)
class Chunk:
    """One chunk of a pass: its position (``index``), the number of its first row (``start``)
    and its validated arrays."""

    index: int
    start: int
    scores: NDArray[np.floating]
    labels: NDArray[Any]

    @property
    def rows(self) -> int:
        return int(self.labels.shape[0])


class _Job(Generic[T, R]):
    """``fn`` of an item tagged with its index; returns ``(index, size, result)``."""

    __slots__ = ("fn", "size")

    def __init__(self, fn: Callable[[T], R], size: Callable[[T], int]) -> None:
        self.fn, self.size = fn, size

    def __call__(self, tagged: tuple[int, T]) -> tuple[int, int, R]:
        i, item = tagged
        return i, self.size(item), self.fn(item)


def _one(_: object) -> int:
    return 1


def map_reduce(
    items: Iterable[T],
    fn: Callable[[T], R],
    merge: Callable[[R], None],
    *,
    executor: Executor | str | None = None,
    description: str | None = None,
    total: int | None = None,
    unit: str = "rows",
    size: Callable[[T], int] = _one,
) -> int:
    """``merge(fn(item))`` for every item, in item order, with ``fn`` run by ``executor``.

    ``executor``: an :class:`~calibkit.engine.executors.Executor`, a registered name, or
    ``None`` for the current one (:func:`~calibkit.engine.executors.current_executor`). With a
    ``description`` the pass is a progress task (``total`` and ``unit`` as in
    :func:`calibkit.progress.task`) advanced by ``size(item)`` when the item's result is merged.
    Results that come early are held until their turn. Returns the number of items.
    """
    ex = get_executor(executor)
    submitted = 0

    def tagged() -> Iterator[tuple[int, T]]:
        nonlocal submitted
        for i, item in enumerate(items):
            submitted = i + 1
            yield i, item

    scope = (
        progress.task(description, total, unit)
        if description is not None
        else nullcontext(progress.NULL_TASK)
    )
    early: dict[int, tuple[int, R]] = {}  # results that came ahead of their turn
    nxt = 0
    with scope as bar:
        results = ex.map(_Job(fn, size), tagged())
        try:
            for i, n, result in results:
                if i != nxt:
                    early[i] = (n, result)
                    continue
                while True:
                    merge(result)
                    bar.advance(n)
                    nxt += 1
                    if nxt not in early:
                        break
                    n, result = early.pop(nxt)
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()  # stop a pool's work at once when the merge (or the user) gave up
        if early or nxt != submitted:
            raise RuntimeError(
                f"executor {ex!r} returned {nxt + len(early)} results for {submitted} items"
            )
    return nxt


def _chunks(source: PredictionSource, chunk_rows: int | None) -> Iterator[Chunk]:
    start = 0
    for i, (scores, labels) in enumerate(source.chunks(chunk_rows)):
        chunk = Chunk(i, start, scores, labels)
        start += chunk.rows
        yield chunk


def _rows(chunk: Chunk) -> int:
    return chunk.rows


class _PartJob(Generic[R]):
    """What a worker of a distributed executor runs for one part: ``fn`` of each chunk the part
    streams (``Chunk.start`` its row number in the whole source, ``Chunk.index`` its ordinal in
    the part), the results in chunk order, and the part's taps' results."""

    __slots__ = ("chunk_rows", "fn")

    def __init__(self, fn: Callable[[Chunk], R], chunk_rows: int | None) -> None:
        self.fn, self.chunk_rows = fn, chunk_rows

    def __call__(self, part: Part) -> tuple[list[R], dict[int, list[Any]]]:
        results: list[R] = []
        row = part.start
        for i, (scores, labels) in enumerate(part.source.chunks(self.chunk_rows)):
            chunk = Chunk(i, row, scores, labels)
            row += chunk.rows
            results.append(self.fn(chunk))
        if row - part.start != part.rows:
            raise InputError(
                part.source.source,
                f"rows {part.start} to {part.start + part.rows - 1} were expected, "
                f"but {row - part.start} rows were read (the data changed while it was read?)",
            )
        return results, tap_results(part.source)


def _part_rows(part: Part) -> int:
    return part.rows


class _OnWorkers:
    """The executor that sends items to a distributed executor's workers (its ``map_remote``)."""

    __slots__ = ("executor",)

    def __init__(self, executor: Any) -> None:
        self.executor = executor

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        out: Iterator[R] = self.executor.map_remote(fn, items)
        return out


def _run_plan(
    plan: Plan,
    fn: Callable[[Chunk], R],
    merge: Callable[[R], None],
    *,
    chunk_rows: int | None,
    executor: Any,
    description: str | None,
) -> int:
    chunks = 0
    taps: dict[int, list[Any]] = {}

    def merge_part(out: tuple[list[R], dict[int, list[Any]]]) -> None:
        nonlocal chunks
        results, tapped = out
        for result in results:
            merge(result)
        chunks += len(results)
        for key, found in tapped.items():
            taps.setdefault(key, []).extend(found)

    map_reduce(
        plan.parts,
        _PartJob(fn, chunk_rows),
        merge_part,
        executor=_OnWorkers(executor),
        description=description,
        total=plan.n_rows if description is not None else None,
        size=_part_rows,
    )
    plan.finished(taps)
    return chunks


def run_pass(
    source: PredictionSource,
    fn: Callable[[Chunk], R],
    merge: Callable[[R], None],
    *,
    chunk_rows: int | None = None,
    executor: Executor | str | None = None,
    description: str | None = None,
) -> int:
    """One read of ``source``: ``merge(fn(chunk))`` for each :class:`Chunk`, in chunk order.

    ``fn`` runs on ``executor`` (see :func:`map_reduce`); with a ``description`` the pass is a
    progress task over ``source.n_rows`` rows, advanced by each chunk's rows as it is merged.
    Returns the number of chunks.

    On a *distributed* executor (one with ``distributed = True`` and a ``map_remote``, such as
    :class:`~calibkit.engine.dask_executor.DaskExecutor`) the source is split into parts
    (:mod:`calibkit.sources.partitions`), each part is streamed by a worker, which runs ``fn``
    on each of its chunks and sends the results back, and they are merged here in row order,
    so the merge sees the same sequence of results as on one machine (the same chunks, when
    the parts are the local engine's shards or chunk-aligned row ranges). ``fn`` is pickled
    for the workers: it must capture small parameters only, and return small sums. A source
    that cannot be split is read here, on the executor's local threads.
    """
    ex = get_executor(executor)
    hint = getattr(ex, "partition_hint", None)  # an executor that maps chunks only has none
    if getattr(ex, "distributed", False) and hint is not None:
        plan = plan_of(source, chunk_rows, hint())
        if plan is not None:
            return _run_plan(
                plan, fn, merge, chunk_rows=chunk_rows, executor=ex, description=description
            )
    total = source.n_rows if description is not None else None
    return map_reduce(
        _chunks(source, chunk_rows),
        fn,
        merge,
        executor=executor,
        description=description,
        total=total,
        size=_rows,
    )
