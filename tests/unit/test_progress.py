"""Progress reporting (calibkit.progress, calibkit.report.progress_bar): what the library says,
and that saying it changes nothing.

* A recording reporter sees, for every pass, a task whose total is the rows the input declares
  (an array's shape, a parquet footer, the shards' footers summed) and whose advances sum to
  the rows read; the passes of a temperature fit; the replicates of a bootstrap.
* Advances come from the thread that opened the task, even when the pass runs on threads.
* Results are bit-for-bit the same with no reporter, a recording one, or the Rich bar.
* The Rich bar fits any terminal width, shows nothing before its delay, and erases itself.
"""

from __future__ import annotations

import dataclasses
import io
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from calibkit import progress
from calibkit.calibrators.sweep import sweep_temperatures
from calibkit.calibrators.temperature import fit_temperature
from calibkit.loaders import read_predictions
from calibkit.metrics.summary import collect_example_stats, summarize
from calibkit.report.progress_bar import RichReporter, layout, shows_on, terminal_progress
from calibkit.sources.predictions import Predictions
from calibkit.stats.bootstrap import bootstrap_metrics, paired_bootstrap

N, K = 3_000, 7
CHUNK = 250  # 12 chunks: the threaded path of map_chunks


@pytest.fixture
def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    z = rng.normal(0.0, 2.0, size=(N, K)).astype(np.float32)
    y = np.where(rng.random(N) < 0.6, z.argmax(axis=1), rng.integers(0, K, N))
    return z, y


def write_parquet(path: Path, z: np.ndarray, y: np.ndarray, row_group: int = 700) -> Path:
    pq.write_table(pa.table({"logits": list(z), "label": y}), path, row_group_size=row_group)
    return path


@pytest.fixture(params=["npz", "parquet", "shards"])
def source(request: pytest.FixtureRequest, tmp_path: Path, arrays: Any) -> Any:
    z, y = arrays
    if request.param == "npz":
        np.savez(tmp_path / "p.npz", logits=z, labels=y)
        return read_predictions(tmp_path / "p.npz")
    if request.param == "parquet":
        return read_predictions(write_parquet(tmp_path / "p.parquet", z, y))
    shards = tmp_path / "shards"
    shards.mkdir()
    for i, (lo, hi) in enumerate([(0, 1000), (1000, 1100), (1100, N)]):
        write_parquet(shards / f"part-{i}.parquet", z[lo:hi], y[lo:hi])
    return read_predictions(shards)


class ThreadRecorder(progress.Recorder):
    """A recorder that also notes the thread of every advance."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def open(self, *args: Any) -> progress.RecordedTask:
        task = super().open(*args)
        advance = task.advance

        def noted(n: int = 1) -> None:
            self.threads.add(threading.get_ident())
            advance(n)

        task.advance = noted  # type: ignore[method-assign]
        return task


def rows_tasks(rec: progress.Recorder) -> list[progress.RecordedTask]:
    return rec.find("rows")


# ---------------------------------------------------------------------------------------------
# what the library reports


def test_a_metrics_pass_reports_every_row_it_reads(source: Any) -> None:
    rec = ThreadRecorder()
    with progress.reporting(rec):
        summary = summarize(source, chunk_rows=CHUNK)
    (task,) = rec.tasks
    assert task.unit == "rows" and task.total == N == summary.n
    assert task.done == N and task.finished
    assert len(task.advances) == len(list(source.chunks(CHUNK)))  # one advance a chunk
    assert rec.threads == {threading.get_ident()}  # the reducing thread, never a worker
    assert str(source.source) in task.description


def test_a_temperature_fit_reports_its_passes(source: Any) -> None:
    rec = ThreadRecorder()
    with progress.reporting(rec):
        scaler = fit_temperature(source, chunk_rows=CHUNK)
    assert scaler.fit is not None
    (fit,) = rec.find("passes")
    passes = rows_tasks(rec)
    assert fit.parent is None and fit.total is None and fit.finished
    assert fit.done == scaler.fit.passes == len(passes) >= 2
    for p in passes:
        assert p.parent is fit and p.finished
        assert (p.total, p.done) == (N, N)
    assert rec.threads == {threading.get_ident()}


def test_a_sweep_reports_its_rows(source: Any) -> None:
    rec = progress.Recorder()
    with progress.reporting(rec):
        sweep_temperatures(source, [0.5, 1.0, 2.0], chunk_rows=CHUNK)
    (task,) = rec.tasks
    assert (task.total, task.done, task.unit) == (N, N, "rows")
    assert "3 T" in task.description


def test_bootstraps_report_their_rows(arrays: Any) -> None:
    """A bootstrap is a pass over the rows (one per model; the replicates are drawn per row)."""
    z, y = arrays
    source = Predictions.from_arrays(z, y)
    stats = collect_example_stats(source, chunk_rows=CHUNK)
    other = collect_example_stats(Predictions.from_arrays(z * 0.5, y), chunk_rows=CHUNK)
    rec = ThreadRecorder()
    with progress.reporting(rec):
        bootstrap_metrics(stats, replicates=6000, seed=1, chunk_rows=CHUNK)
        paired_bootstrap(stats, other, replicates=300, seed=2)
        paired_bootstrap(stats, other, replicates=300, seed=2, paired=False)
        bootstrap_metrics(source, replicates=300, seed=1, chunk_rows=CHUNK)
    assert [t.unit for t in rec.tasks] == ["rows"] * 6
    assert [(t.total, t.done) for t in rec.tasks] == [(N, N)] * 6
    assert len(rec.tasks[0].advances) == -(-N // CHUNK)
    assert "bootstrap" in rec.tasks[-1].description
    assert rec.threads == {threading.get_ident()}


def test_per_example_statistics_report_their_rows(source: Any) -> None:
    rec = progress.Recorder()
    with progress.reporting(rec):
        stats = collect_example_stats(source, chunk_rows=CHUNK)
    (task,) = rec.tasks
    assert (task.total, task.done) == (N, N) == (N, stats.confidence.size)


# ---------------------------------------------------------------------------------------------
# nothing changes


def _everything(source: Any) -> dict[str, Any]:
    scaler = fit_temperature(source, chunk_rows=CHUNK)
    stats = collect_example_stats(source, chunk_rows=CHUNK)
    boot = bootstrap_metrics(stats, replicates=200, seed=3)
    sweep = sweep_temperatures(source, [0.7, 1.3], chunk_rows=CHUNK)
    return {
        "summary": dataclasses.asdict(summarize(source, chunk_rows=CHUNK)),
        "fit": dataclasses.asdict(scaler.fit) if scaler.fit else None,
        "stats": {k: v for k, v in dataclasses.asdict(stats).items() if v is not None},
        "boot": boot.replicates,
        "sweep": (sweep.ece, sweep.nll, sweep.brier, sweep.mce),
    }


def _same(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)  # bit for bit (NaN equal to NaN)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def test_reporting_changes_no_number(source: Any) -> None:
    plain = _everything(source)
    with progress.reporting(progress.Recorder()):
        recorded = _everything(source)
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with RichReporter(console, delay=0) as rich_bar, progress.reporting(rich_bar):
        drawn = _everything(source)
    assert console.file.getvalue()  # type: ignore[attr-defined]  # it did draw
    _same(plain, recorded)
    _same(plain, drawn)


# ---------------------------------------------------------------------------------------------
# the seam itself


def test_with_no_reporter_a_task_is_the_null_task() -> None:
    assert progress.current() is None
    with progress.task("nothing", total=3) as bar:
        assert bar is progress.NULL_TASK
        bar.advance(3)


def test_worker_threads_do_not_see_the_reporter_of_their_caller() -> None:
    seen: list[Any] = []
    with progress.reporting(progress.Recorder()):
        worker = threading.Thread(target=lambda: seen.append(progress.current()))
        worker.start()
        worker.join()
        assert progress.current() is not None
    assert seen == [None]
    assert progress.current() is None


def test_a_failed_pass_is_not_counted_and_every_task_is_finished() -> None:
    rec = progress.Recorder()

    @progress.counts_passes("fit")
    def fit() -> None:
        with progress.task("pass", total=2) as bar:
            bar.advance(2)
        with progress.task("pass", total=2):
            raise KeyboardInterrupt

    with progress.reporting(rec), pytest.raises(KeyboardInterrupt):
        fit()
    outer, first, second = rec.tasks
    assert (outer.unit, outer.done) == ("passes", 1)
    assert first.parent is outer and second.parent is outer
    assert all(t.finished for t in rec.tasks)


def test_an_inner_reporter_does_not_adopt_the_tasks_of_an_outer_one() -> None:
    outer, inner = progress.Recorder(), progress.Recorder()
    with progress.reporting(outer), progress.task("a", unit="passes"):
        with progress.reporting(inner), progress.task("b"):
            pass
        with progress.task("c"):
            pass
    assert inner.tasks[0].parent is None
    assert outer.tasks[0].done == 1  # "c" only


# ---------------------------------------------------------------------------------------------
# the Rich bar


def _console(width: int = 100) -> Console:
    return Console(
        file=io.StringIO(), force_terminal=True, width=width, soft_wrap=True, color_system=None
    )


@pytest.mark.parametrize("width", [1, 5, 12, 20, 33, 45, 60, 79, 80, 81, 120, 300])
def test_every_line_of_the_bar_fits_the_terminal(width: int) -> None:
    console = _console(width)
    reporter = RichReporter(console, delay=3600)  # never shows by itself
    path = "/data/a/very/long/path/to/the/validation-logits.parquet"
    with (
        progress.reporting(reporter),
        progress.task(f"{path}: metrics", total=12_345_678) as a,
        progress.task("bootstrap", total=2000, unit="replicates") as b,
    ):
        a.advance(1_234_567)
        b.advance(40)
        console.print(reporter._render())
    reporter.close()
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 2
    assert all(len(line) <= max(width, 4 + 1 + 1) for line in lines), lines
    if 20 <= width < 65 + 16 + 12:  # description, facts (no rate yet), a bar of 10, spaces
        assert lines[0].startswith("…")  # the start of the path gave way
    if width >= 80:
        assert "1.23M/12.3M rows" in lines[0] and ": metrics " in lines[0]
        assert any(c in lines[0] for c in "━╸╺")  # the bar itself, from 80 columns on


def test_layout_gives_the_description_way_before_the_bar() -> None:
    assert layout(120, 26, 42) == (26, 30, 42)
    assert layout(80, 26, 42) == (26, 10, 42)
    assert layout(70, 30, 42) == (16, 10, 42)
    assert layout(69, 30, 42) == (26, 0, 42)
    for width in range(1, 200):
        label, bar, facts = layout(width, 50, 42)
        assert bar == 0 or label + bar + facts + 2 <= width


def test_nothing_is_drawn_before_the_delay_and_the_bar_is_erased_after() -> None:
    quiet = _console()
    with (
        RichReporter(quiet, delay=3600) as r,
        progress.reporting(r),
        progress.task("x", total=10) as bar,
    ):
        bar.advance(10)
    assert quiet.file.getvalue() == ""  # type: ignore[attr-defined]

    shown = _console()
    with RichReporter(shown, delay=0) as r, progress.reporting(r):
        with progress.task("x.npz: metrics", total=10) as bar:
            bar.advance(4)
        assert r._live is None  # the last task ended: the display is gone
    text = shown.file.getvalue()  # type: ignore[attr-defined]
    assert "x.npz: metrics" in text
    assert text.rindex("\x1b[?25h") > text.rindex("\x1b[?25l")  # the cursor is back


def test_the_bar_is_only_for_real_terminals() -> None:
    forced = Console(file=io.StringIO(), force_terminal=True)  # as FORCE_COLOR makes it
    assert not shows_on(forced)
    with terminal_progress(forced) as reporter:
        assert reporter is None and progress.current() is None
