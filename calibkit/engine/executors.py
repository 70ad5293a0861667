"""Executors: who computes the chunks of a pass, behind one interface.

An :class:`Executor` maps a function over work items (the chunks of a pass, or batches of
bootstrap replicates) and yields the results. It may compute them anywhere (threads here; other
processes or machines in another executor) and yield them in any order:
:func:`calibkit.engine.passes.map_reduce` tags every item with its index and merges the
results in item order, so no number depends on the executor. Two are built in and registered:
``"threads"`` (:class:`ThreadExecutor`, the default) and ``"serial"`` (:class:`SerialExecutor`).
Adding one is a module with a class that has ``map`` and one :func:`register_executor` call
(a name is registered once: a taken one is refused unless ``replace=True``). Inside calibkit,
the module is ``calibkit/engine/<name>.py`` and the call goes at the end of this module, with a
factory that imports that module when it is called (so that no start-up pays for it)::

    def _dask() -> Executor:
        from calibkit.engine.dask_executor import DaskExecutor

        return DaskExecutor()

    register_executor("dask", _dask)

Outside calibkit, the call goes in a plugin (:mod:`calibkit.plugins`), which
:func:`get_executor` imports when a name is not registered.
:class:`using_executor` installs one for the passes run inside a ``with`` block (or pass it as
``executor=`` to :func:`~calibkit.engine.passes.run_pass`).

The thread pool: numpy releases the GIL inside its array loops, so threads working on different
chunks use several cores. Results come back in chunk order, and are reduced in that order, so
every number is identical whatever the thread count. At most ``2 * workers`` chunks are in
flight, so streaming sources stay bounded in memory.

The thread count is ``os.sched_getaffinity`` (the cores this process may use), capped at 8;
set ``CALIBKIT_THREADS=1`` to disable threading.

:func:`scratch` gives each thread float64 work arrays that it reuses from chunk to chunk.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from itertools import chain, islice
from math import prod
from typing import Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "SCRATCH_MAX_BYTES",
    "Executor",
    "SerialExecutor",
    "ThreadExecutor",
    "current_executor",
    "default_workers",
    "executor_names",
    "get_executor",
    "is_distributed",
    "map_chunks",
    "register_executor",
    "scratch",
    "unregister_executor",
    "using_executor",
]

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
    it = iter(items)
    head = list(islice(it, 2))
    if len(head) < 2:  # one chunk (a small input): a thread pool would only add its start-up
        yield from map(fn, head)
        return
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="calibkit") as pool:
        try:
            for item in chain(head, it):
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * n:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()


class Executor(Protocol):
    """Computes ``fn(item)`` for every item and yields the results.

    The results may come in any order (the caller tags each item with its index and merges in
    item order) but every item's result must come exactly once. ``fn`` reads nothing but its
    item and returns a new object (it may use :func:`scratch` arrays of the thread it runs in
    while it runs). An executor that keeps items in flight should bound how many, so that a
    streaming source stays bounded in memory.
    """

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]: ...


class SerialExecutor:
    """Every item in the calling thread, in order (``CALIBKIT_THREADS=1`` does the same)."""

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        return map(fn, items)

    def __repr__(self) -> str:
        return "SerialExecutor()"


class ThreadExecutor:
    """:func:`map_chunks` on ``workers`` threads (default :func:`default_workers`)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        return map_chunks(fn, items, workers=self.workers)

    def __repr__(self) -> str:
        return f"ThreadExecutor(workers={self.workers})"


_EXECUTORS: dict[str, Callable[[], Executor]] = {
    "threads": ThreadExecutor,
    "serial": SerialExecutor,
}


def register_executor(name: str, factory: Callable[[], Executor], *, replace: bool = False) -> None:
    """Make ``factory()`` the executor called ``name`` (for :func:`get_executor`). A name is
    registered once, as in the other registries: a name already taken (``"threads"``,
    ``"serial"`` included) is refused with a :class:`ValueError` unless ``replace`` (which
    keeps its place)."""
    if not name or not isinstance(name, str):
        raise ValueError(f"an executor needs a name; got {name!r}")
    if name in _EXECUTORS and not replace:
        raise ValueError(
            f"executor {name!r} is already registered; give replace=True to replace it"
        )
    _EXECUTORS[name] = factory


def unregister_executor(name: str) -> None:
    """Remove the executor called ``name`` (for tests and plugins that registered one); an
    unknown name is a :class:`KeyError`."""
    del _EXECUTORS[name]


def executor_names() -> tuple[str, ...]:
    """The registered executors, in registration order."""
    return tuple(_EXECUTORS)


_current: ContextVar[Executor | None] = ContextVar("calibkit_executor", default=None)


def get_executor(spec: Executor | str | None = None) -> Executor:
    """An executor: ``spec`` itself, the registered one of that name, or (``None``) the one
    installed with :class:`using_executor`, else a :class:`ThreadExecutor`.

    >>> get_executor("serial")
    SerialExecutor()
    """
    if spec is None:
        return current_executor()
    if isinstance(spec, str):
        if spec not in _EXECUTORS:
            from calibkit.plugins import load_plugins

            load_plugins()  # a plugin may register it
        try:
            factory = _EXECUTORS[spec]
        except KeyError:
            known = ", ".join(_EXECUTORS)
            raise ValueError(f"unknown executor {spec!r}; known: {known}") from None
        return factory()
    return spec


def current_executor() -> Executor:
    """The executor installed for this context, else a default :class:`ThreadExecutor`."""
    ex = _current.get()
    return ThreadExecutor() if ex is None else ex


def is_distributed(executor: Executor | str | None = None) -> bool:
    """Whether passes run by ``executor`` (default: the current one) run on other processes or
    machines (its ``distributed`` attribute): their chunk functions are pickled and their
    results sent back, so a pass there must return small sums, never per-row arrays."""
    return bool(getattr(get_executor(executor), "distributed", False))


class using_executor:  # used like a function: ``with using_executor("serial"): ...``
    """Run the passes inside ``with using_executor(executor):`` on ``executor`` (an
    :class:`Executor` or a registered name; ``None`` restores the default) in this thread or
    task, as a :class:`~contextvars.ContextVar`. Passes given an explicit executor (such as
    the torch device, which runs serially) keep theirs."""

    __slots__ = ("_new", "_token")

    def __init__(self, executor: Executor | str | None) -> None:
        self._new = None if executor is None else get_executor(executor)
        self._token: object = None

    def __enter__(self) -> Executor | None:
        self._token = _current.set(self._new)
        return self._new

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)  # type: ignore[arg-type]


#: Largest work array a thread keeps for reuse; larger ones are allocated afresh each time.
SCRATCH_MAX_BYTES = 32 << 20

_scratch = threading.local()


def scratch(name: str, shape: tuple[int, ...]) -> NDArray[np.float64]:
    """A float64 array of ``shape`` that this thread reuses for every call with this ``name``.

    The contents are undefined, and valid only until this thread next asks for ``name``: callers
    must not let it escape a chunk's computation. Allocating a fresh multi-MiB array for every
    chunk makes the C allocator map and fault in new pages each time (it measured 1.7x slower
    temperature fits with 4 MiB chunks). Worker threads end with their pass and free theirs;
    the main thread keeps at most one array of :data:`SCRATCH_MAX_BYTES` per name.

    >>> a = scratch("doc", (2, 3)); b = scratch("doc", (3, 2))
    >>> a.base is b.base, b.shape
    (True, (3, 2))
    """
    size = prod(shape)
    if size * 8 > SCRATCH_MAX_BYTES:
        return np.empty(shape)
    buffers: dict[str, NDArray[np.float64]] = _scratch.__dict__.setdefault("buffers", {})
    buf = buffers.get(name)
    if buf is None or buf.size < size:
        buf = buffers[name] = np.empty(size)
    return buf[:size].reshape(shape)
