"""Chunk-parallel map with bounded memory and a deterministic order.

numpy releases the GIL inside its array loops, so threads working on different chunks use
several cores. Results come back in chunk order and are reduced in that order by the caller, so
every number is identical whatever the thread count. At most ``2 * workers`` chunks are in
flight, so streaming sources stay bounded in memory.

The thread count is ``os.sched_getaffinity`` (the cores this process may use), capped at 8;
set ``CALIBKIT_THREADS=1`` to disable threading.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["default_workers", "map_chunks"]

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    env = os.environ.get("CALIBKIT_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def map_chunks(
    fn: Callable[[T], R], items: Iterable[T], *, workers: int | None = None
) -> Iterator[R]:
    """``map(fn, items)`` on a thread pool, in order, with a bounded number of items in flight.

    >>> list(map_chunks(lambda x: x * x, range(5), workers=2))
    [0, 1, 4, 9, 16]
    """
    n = workers or default_workers()
    if n <= 1:
        yield from map(fn, items)
        return
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="calibkit") as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * n:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()
