"""A Rich progress bar on a terminal for the tasks of :mod:`calibkit.progress`.

One line per open task: what is being done (``val.npz: temperature fit · pass 3``), a bar,
the count done of the count known (``120,000/200,000 rows``), the rate (``1.2M rows/s``) and
the time left. The tasks of a fit, which counts passes, show as the line of the pass under way.

When it shows (:func:`terminal_progress`, which the command line uses on its stderr console):
only on a terminal that can move its cursor (never in a pipe, a file or a CI log), and only once
the command has run for :data:`DEFAULT_DELAY` seconds (``CALIBKIT_PROGRESS_DELAY`` changes it;
``0`` shows at once): work that ends sooner never flashes a bar.

It is *transient*: the lines are erased as soon as no task is open, so the terminal keeps
calibkit's own lines (results, warnings, ``calibkit: wrote ...``), which say what a final
progress line would only repeat, and results written to stdout after the work never mix with
a bar drawn on stderr. It is drawn on the console that prints calibkit's warnings and errors,
so a line printed while the bar is up (a warning, ``calibkit: interrupted``) lands above it.
Nothing is ever written to stdout. Rich's live display is imported only when a bar is first
drawn, so a command that ends before the delay pays for neither the import nor the drawing
(only for one timer thread).

Threads and signals: the library only updates counters of this module's objects (no lock of
Rich's), and Rich's refresh thread reads them when it redraws. So a Ctrl-C, whose handler prints
through the same console, can never wait for a lock held by the code it interrupted.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console, RenderableType  # loaded by every command (its stderr)
from rich.text import Text

from calibkit import progress

if TYPE_CHECKING:
    from rich.live import Live

__all__ = [
    "DEFAULT_DELAY",
    "DELAY_ENV",
    "RichReporter",
    "facts",
    "format_rate",
    "layout",
    "shorten",
    "shows_on",
    "terminal_progress",
]

#: Seconds a command runs before a bar may show.
DEFAULT_DELAY = 1.0
#: Environment variable overriding :data:`DEFAULT_DELAY` (seconds, ``>= 0``).
DELAY_ENV = "CALIBKIT_PROGRESS_DELAY"
_BAR_WIDTH = 28
_REFRESH_PER_SECOND = 8.0
_RATE_AFTER = 0.5  # seconds into a task before its rate and time left are shown


class _Bar:
    """One open task: counters written by the library's thread, read by the refresh thread."""

    __slots__ = ("_lock", "_owner", "done", "label", "started", "total", "unit", "visible")

    def __init__(self, owner: RichReporter, label: str, total: int | None, unit: str) -> None:
        self._owner = owner
        self.label, self.total, self.unit = label, total, unit
        self.visible = unit != "passes"  # a fit's passes show as the line of the pass under way
        self.done = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()  # between advancing threads only; never taken to draw

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n

    def finish(self) -> None:
        self._owner._finish(self)


def format_rate(value: float) -> str:
    """A count or rate in three significant figures, with an SI prefix from a thousand on.

    >>> [format_rate(x) for x in (0.25, 5.0, 150.0, 999.6, 12_345.0, 2.5e6, 3.2e9)]
    ['0.25', '5', '150', '1k', '12.3k', '2.5M', '3.2G']
    """
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")):
        if value >= scale * 0.9995 or scale == 1.0:
            v = value / scale
            return (f"{v:.0f}" if v >= 100 else f"{v:.3g}") + prefix
    raise AssertionError("unreachable")  # pragma: no cover


def _clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on (rounded up: never "0:00" with work left).

    >>> _clock(0.2), _clock(75), _clock(3600 * 2 + 61)
    ('0:01', '1:15', '2:01:01')
    """
    s = math.ceil(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


class RichReporter:
    """A :class:`calibkit.progress.Reporter` drawing on ``console`` with Rich (see the module
    docstring). Use it as a context manager, or call :meth:`close` when the work is over."""

    def __init__(
        self,
        console: Console,
        *,
        delay: float = DEFAULT_DELAY,
        refresh_per_second: float = _REFRESH_PER_SECOND,
    ) -> None:
        self._console = console
        self._refresh = refresh_per_second
        self._bars: list[_Bar] = []  # open tasks, in the order they were opened
        self._lock = threading.RLock()  # opening, closing, showing; never taken to draw
        self._live: Live | None = None
        self._closed = False
        self._due = delay <= 0
        self._timer: threading.Timer | None = None
        if not self._due:
            self._timer = threading.Timer(delay, self._on_due)
            self._timer.daemon = True
            self._timer.start()

    # -- the Reporter protocol -----------------------------------------------------------

    def open(
        self, description: str, total: int | None, unit: str, parent: progress.Handle | None
    ) -> _Bar:
        label = description
        if isinstance(parent, _Bar) and parent.unit == "passes":
            label = f"{description} · pass {parent.done + 1}"
        bar = _Bar(self, label, total, unit)
        with self._lock:
            self._bars.append(bar)
            self._show()
        return bar

    # -- showing and hiding ----------------------------------------------------------------

    def _finish(self, bar: _Bar) -> None:
        with self._lock:
            if bar in self._bars:
                self._bars.remove(bar)
            if not self._bars:
                self._hide()

    def _on_due(self) -> None:
        with self._lock:
            self._due = True
            self._show()

    def _show(self) -> None:
        if self._closed or not self._due or self._live is not None:
            return
        if not any(b.visible for b in self._bars):
            return
        from rich.live import Live  # here: a command that ends before the delay never pays

        # a new Live each time: one that was stopped keeps the height of its last drawing
        live = Live(
            console=self._console,
            transient=True,
            auto_refresh=True,
            refresh_per_second=self._refresh,
            redirect_stdout=False,
            redirect_stderr=False,
            get_renderable=self._render,
        )
        self._live = live
        live.start(refresh=True)

    def _hide(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    def close(self) -> None:
        """Erase the display and stop drawing (idempotent)."""
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._closed = True
            self._hide()

    def __enter__(self) -> RichReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- drawing (Rich's refresh thread) -----------------------------------------------------

    def _render(self) -> RenderableType:
        """The open tasks' lines, each within the console's width (:func:`layout`)."""
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        now = time.monotonic()
        rows = [
            (b.label, b.total, b.done, facts(b.done, b.total, b.unit, now - b.started))
            for b in list(self._bars)
            if b.visible
        ]
        label_width, bar_width, facts_width = layout(
            self._console.width,
            max((cell_len(r[0]) for r in rows), default=0),
            max((len(r[3]) for r in rows), default=0),
        )
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True, overflow="ellipsis", max_width=label_width)
        if bar_width:
            grid.add_column(width=bar_width, no_wrap=True)
        grid.add_column(no_wrap=True, overflow="ellipsis", min_width=facts_width)
        for label, total, done, text in rows:
            cells: list[RenderableType] = [Text(shorten(label, label_width), no_wrap=True)]
            if bar_width:
                bar_total = None if total is None else max(total, done, 1)
                cells.append(
                    ProgressBar(
                        bar_total, done, bar_width, complete_style="green", finished_style="green"
                    )
                )
            cells.append(Text(text, no_wrap=True, overflow="ellipsis"))
            grid.add_row(*cells)
        return grid


def layout(width: int, label: int, facts: int) -> tuple[int, int, int]:
    """Widths of the description, the bar (``0``: none) and the facts on a line of ``width``
    cells, one cell between them: the facts stay whole, the bar is 10 to 30 cells, and the
    description gives way (to 16 cells) before the bar goes.

    >>> layout(120, 26, 42), layout(80, 26, 42), layout(60, 26, 42), layout(20, 26, 42)
    ((26, 30, 42), (26, 10, 42), (17, 0, 42), (4, 0, 15))
    """
    facts = min(facts, max(width - 5, 1))
    room = width - facts - 2  # for the description and the bar
    if room - label >= 10:
        return label, min(30, room - label), facts
    if room - 10 >= 16:
        return room - 10, 10, facts
    return max(4, width - facts - 1), 0, facts


def shorten(label: str, width: int) -> str:
    """``label`` in at most ``width`` cells: a description ``"SOURCE: what"`` loses the start
    of its source first (``"…al.npz: metrics"``), so the work and the file's name stay.

    >>> shorten("/data/run7/val.npz: metrics", 16), shorten("bootstrap", 6)
    ('…al.npz: metrics', '…strap')
    """
    if cell_len(label) <= width:
        return label
    head, sep, tail = label.rpartition(": ")
    if sep and cell_len(tail) + len(sep) + 4 <= width:
        keep = width - cell_len(tail) - len(sep) - 1
        return "…" + _tail_cells(head, keep) + sep + tail
    return "…" + _tail_cells(label, width - 1)


def _tail_cells(text: str, cells: int) -> str:
    """The longest end of ``text`` that fits in ``cells`` cells."""
    out = ""
    for ch in reversed(text):
        if cell_len(ch + out) > cells:
            break
        out = ch + out
    return out


def facts(done: int, total: int | None, unit: str, elapsed: float) -> str:
    """What is known so far: count done of count known, rate, time left.

    >>> facts(120_000, 200_000, "rows", 1.0), facts(120_000, 200_000, "rows", 0.1)
    ('120,000/200,000 rows 120k rows/s 0:01 left', '120,000/200,000 rows')
    >>> facts(2_500_000, 12_000_000, "rows", 1.0), facts(3, None, "passes", 1.0)
    ('2.5M/12M rows 2.5M rows/s 0:04 left', '3 passes 3 passes/s')
    """
    big = max(done, total or 0) >= 1_000_000
    count = format_rate if big else "{:,}".format
    text = f"{count(done)}/{count(total)} {unit}" if total is not None else f"{count(done)} {unit}"
    if done > 0 and elapsed >= _RATE_AFTER:  # a rate from the first moments means nothing
        rate = done / elapsed
        text += f" {format_rate(rate)} {unit}/s"
        if total is not None:
            text += f" {_clock(max(total - done, 0) / rate)} left"
    return text


def _delay() -> float:
    """:data:`DELAY_ENV` in seconds when it is a number ``>= 0``, else :data:`DEFAULT_DELAY`."""
    try:
        value = float(os.environ.get(DELAY_ENV, ""))
    except ValueError:
        return DEFAULT_DELAY
    return value if math.isfinite(value) and value >= 0 else DEFAULT_DELAY


def _is_terminal(stream: IO[Any] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):  # closed, or not a real file
        return False


def shows_on(console: Console) -> bool:
    """Whether a bar may be drawn on ``console``: its file is a terminal (``isatty``, whatever
    ``FORCE_COLOR`` or ``TTY_INTERACTIVE`` say) that can move its cursor (not ``TERM=dumb``)."""
    return _is_terminal(console.file) and console.is_terminal and not console.is_dumb_terminal


@contextlib.contextmanager
def terminal_progress(console: Console) -> Iterator[RichReporter | None]:
    """Report the progress of the work inside the ``with`` block on ``console`` when it is a
    terminal (:func:`shows_on`); yield the reporter, or ``None`` when nothing is drawn."""
    if not shows_on(console):
        yield None
        return
    with RichReporter(console, delay=_delay()) as reporter, progress.reporting(reporter):
        yield reporter
