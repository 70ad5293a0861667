"""Progress of long work, through one seam and without I/O.

The library says what it is doing, and how far it has got, with :func:`task`; whether and how
that is shown is the business of the *reporter* installed with :func:`reporting` for the
current context (the command line installs a Rich progress bar on a terminal,
:mod:`calibkit.report.progress_bar`; :class:`Recorder` keeps what it is told, for tests and
notebooks). With no reporter installed (the default, and always in a thread that did not
install one, such as the workers of an executor, :mod:`calibkit.engine.executors`), :func:`task`
yields :data:`NULL_TASK`, whose ``advance`` does nothing: a pass then costs one context-variable
read and one empty call per chunk.

    >>> rec = Recorder()
    >>> with reporting(rec):
    ...     with task("demo.npz: metrics", total=5) as bar:
    ...         bar.advance(2)
    ...         bar.advance(3)
    >>> rec.tasks[0].description, rec.tasks[0].total, rec.tasks[0].done, rec.tasks[0].finished
    ('demo.npz: metrics', 5, 5, True)

Rules:

* Progress never changes a number: a task only receives counts, and nothing reads them back.
* ``total`` is what is known beforehand (rows, from a parquet footer or an array's shape; the
  replicates of a bootstrap), or ``None`` (the passes of a fit). ``unit`` names what is counted
  (``"rows"``, ``"replicates"``, ``"passes"``). Counts may end above or below the total (a
  footer that disagrees with its data is refused later, by the reader); reporters cope.
* Advance from the thread that opened the task: every pass of the library is one call of
  :func:`calibkit.engine.passes.run_pass` (or :func:`~calibkit.engine.passes.map_reduce`), which
  opens the pass's task and advances it in the calling thread, in chunk order, when a chunk's
  result is merged (rows *done*, not rows handed to a worker). The reporters here are
  thread-safe all the same.
* Tasks nest: a task opened while another is open (in the same context) is its child. A task
  in unit ``"passes"`` counts its children: each child that ends advances it by one. Decorate
  a function whose work is a series of passes with :func:`counts_passes`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import ParamSpec, Protocol, TypeVar

__all__ = [
    "NULL_TASK",
    "Handle",
    "RecordedTask",
    "Recorder",
    "Reporter",
    "Task",
    "advancing",
    "counts_passes",
    "current",
    "reporting",
    "task",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class Task(Protocol):
    """What the library holds while it works: it says how much more is done."""

    def advance(self, n: int = 1) -> None: ...


class Handle(Task, Protocol):
    """A reporter's side of an open task: :meth:`finish` is called once, when it ends."""

    def finish(self) -> None: ...


class Reporter(Protocol):
    """Receives the tasks opened while it is installed (see the module docstring).

    ``parent`` is the handle of the enclosing task, or ``None``. Handles may be advanced from
    any thread; a reporter must be thread-safe and must never raise into the library's work.
    """

    def open(
        self, description: str, total: int | None, unit: str, parent: Handle | None
    ) -> Handle: ...


class _NullTask:
    __slots__ = ()

    def advance(self, n: int = 1) -> None:
        return None

    def finish(self) -> None:
        return None

    def __repr__(self) -> str:
        return "NULL_TASK"


#: The task given when no reporter is installed: it ignores every count.
NULL_TASK = _NullTask()

_reporter: ContextVar[Reporter | None] = ContextVar("calibkit_progress_reporter", default=None)
_open: ContextVar[_Scope | None] = ContextVar("calibkit_progress_task", default=None)


class _NullScope:
    """The context manager :func:`task` returns when no reporter is installed."""

    __slots__ = ()

    def __enter__(self) -> Task:
        return NULL_TASK

    def __exit__(self, *exc: object) -> None:
        return None


_NULL_SCOPE = _NullScope()


class _Scope:
    """One open task of a reporter: opens it on entry, finishes it (and counts it as a pass of
    its parent, when the parent counts passes) on exit, whatever the exit."""

    __slots__ = ("_parent", "_reporter", "_token", "description", "handle", "total", "unit")

    def __init__(self, reporter: Reporter, description: str, total: int | None, unit: str):
        self._reporter = reporter
        self.description, self.total, self.unit = description, total, unit
        self.handle: Handle = NULL_TASK
        self._parent: _Scope | None = None
        self._token: object = None

    def __enter__(self) -> Task:
        self._parent = _open.get()
        parent = self._parent.handle if self._parent is not None else None
        self.handle = self._reporter.open(self.description, self.total, self.unit, parent)
        self._token = _open.set(self)
        return self.handle

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _open.reset(self._token)  # type: ignore[arg-type]
        self.handle.finish()
        if self._parent is not None and self._parent.unit == "passes" and exc_type is None:
            self._parent.handle.advance(1)


def task(description: str, total: int | None = None, unit: str = "rows") -> _Scope | _NullScope:
    """A context manager that opens a task of the current reporter and yields it (a
    :class:`Task`: call ``advance(n)`` as work is done); :data:`NULL_TASK` with no reporter.

    ``description`` names the work, e.g. ``"val.npz: metrics"``; ``total`` and ``unit`` as in
    the module docstring.
    """
    reporter = _reporter.get()
    if reporter is None:
        return _NULL_SCOPE
    return _Scope(reporter, description, None if total is None else int(total), unit)


def current() -> Reporter | None:
    """The reporter installed in this context, if any."""
    return _reporter.get()


class reporting:  # used like a function: ``with reporting(r): ...``
    """Install ``reporter`` for the work done inside ``with reporting(reporter):`` (in this
    thread or task, as a :class:`~contextvars.ContextVar`); ``None`` installs none."""

    __slots__ = ("_new", "_open_token", "_token")

    def __init__(self, reporter: Reporter | None) -> None:
        self._new = reporter
        self._token: object = None
        self._open_token: object = None

    def __enter__(self) -> Reporter | None:
        self._token = _reporter.set(self._new)
        self._open_token = _open.set(None)  # tasks of an outer reporter are not our parents
        return self._new

    def __exit__(self, *exc: object) -> None:
        _open.reset(self._open_token)  # type: ignore[arg-type]
        _reporter.reset(self._token)  # type: ignore[arg-type]


def counts_passes(description: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run each call of the decorated function inside ``task(description, unit="passes")``,
    so that every task it opens (each a pass over the data) counts as one pass."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if _reporter.get() is None:
                return fn(*args, **kwargs)
            with task(description, unit="passes"):
                return fn(*args, **kwargs)

        return wrapper

    return decorate


def advancing(items: Iterable[T], bar: Task, size: Callable[[T], int]) -> Iterator[T]:
    """``items``, advancing ``bar`` by ``size(item)`` as each one is taken (for results that
    are collected with ``list(...)`` rather than looped over).

    >>> rec = Recorder()
    >>> with reporting(rec), task("squares", total=6) as bar:
    ...     out = list(advancing([[1, 4], [9, 16, 25, 36]], bar, size=len))
    >>> rec.tasks[0].advances
    [2, 4]
    """
    for item in items:
        bar.advance(size(item))
        yield item


@dataclass(kw_only=True)
class RecordedTask:
    """What a :class:`Recorder` saw of one task."""

    description: str
    total: int | None
    unit: str
    parent: RecordedTask | None
    advances: list[int] = field(default_factory=list)
    finished: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def done(self) -> int:
        return sum(self.advances)

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.advances.append(int(n))

    def finish(self) -> None:
        with self._lock:
            self.finished = True


class Recorder:
    """A reporter that keeps every task it is given, in the order they were opened
    (thread-safe; no output)."""

    def __init__(self) -> None:
        self.tasks: list[RecordedTask] = []
        self._lock = threading.Lock()

    def open(
        self, description: str, total: int | None, unit: str, parent: Handle | None
    ) -> RecordedTask:
        t = RecordedTask(
            description=description,
            total=total,
            unit=unit,
            parent=parent if isinstance(parent, RecordedTask) else None,
        )
        with self._lock:
            self.tasks.append(t)
        return t

    def find(self, unit: str) -> list[RecordedTask]:
        """The tasks counting ``unit``, in the order they were opened."""
        return [t for t in self.tasks if t.unit == unit]
