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
    """
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
