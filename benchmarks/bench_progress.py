"""Benchmark: what the progress bar costs a pass.

Run:  python benchmarks/bench_progress.py             (200 000 x 1000 float32 logits)
      python benchmarks/bench_progress.py --quick     (50 000 x 1000)

Times (median of ``--repeats``, run round-robin so that a busy moment hits every variant alike)
``summarize`` (one metrics pass), ``fit_temperature`` (its passes) and a 10-temperature
``sweep_temperatures`` with
- no reporter (what the library and every non-terminal run do),
- the Rich bar drawing (``RichReporter``, delay 0, 8 redraws a second) on a console that
  renders like a terminal into memory,
and checks that the numbers are identical.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
from rich.console import Console

from calibkit import progress
from calibkit.calibrators.sweep import sweep_temperatures
from calibkit.calibrators.temperature import fit_temperature
from calibkit.metrics.summary import summarize
from calibkit.report.progress_bar import RichReporter
from calibkit.sources.predictions import Predictions


def data(n: int, k: int) -> Predictions:
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((n, k), dtype=np.float32) * 3).astype(np.float32)
    y = np.where(rng.random(n) < 0.7, z.argmax(axis=1), rng.integers(0, k, n))
    return Predictions.from_arrays(z, y, kind="logits")


class _Bar:
    def __init__(self) -> None:
        self.console = Console(file=io.StringIO(), force_terminal=True, width=100)

    def __enter__(self) -> None:
        self.reporter = RichReporter(self.console, delay=0)
        self.scope = progress.reporting(self.reporter)
        self.scope.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.scope.__exit__(*exc)
        self.reporter.close()


def unit_costs() -> None:
    """The cost of one advance and one redraw, timed on their own (steadier than whole passes on
    a busy machine): a pass pays one advance per chunk; the refresh thread redraws 8 times a
    second."""
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    reps = 200_000
    with progress.task("none", total=reps) as null:
        t0 = time.perf_counter()
        for _ in range(reps):
            null.advance(1)
        null_us = (time.perf_counter() - t0) / reps * 1e6
    reporter = RichReporter(console, delay=3600)  # opened, never drawn: the advance alone
    with progress.reporting(reporter), progress.task("x", total=reps) as bar:
        t0 = time.perf_counter()
        for _ in range(reps):
            bar.advance(1)
        advance_us = (time.perf_counter() - t0) / reps * 1e6
        draws = 300
        t0 = time.perf_counter()
        for _ in range(draws):
            console.print(reporter._render())
        draw_ms = (time.perf_counter() - t0) / draws * 1e3
    reporter.close()
    print(
        f"one advance: {null_us:.3f} us with no reporter, {advance_us:.3f} us with the Rich bar; "
        f"one redraw: {draw_ms:.3f} ms (x 8/s = {draw_ms * 8 / 10:.2f}% of one core)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n, k = (50_000, 1000) if args.quick else (200_000, 1000)
    preds = data(n, k)
    work: dict[str, Callable[[], Any]] = {
        "summarize": lambda: summarize(preds).ece,
        "fit_temperature": lambda: fit_temperature(preds).temperature,
        "sweep (10 T)": lambda: sweep_temperatures(preds, np.linspace(0.5, 3, 10)).nll.tolist(),
    }
    variants: dict[str, Callable[[], AbstractContextManager[Any]]] = {
        "no reporter": nullcontext,
        "Rich bar": _Bar,
    }
    unit_costs()
    print(f"{n} x {k} float32 logits, {args.repeats} repeats, median seconds")
    for name, fn in work.items():
        times: dict[str, list[float]] = {v: [] for v in variants}
        results: dict[str, Any] = {}
        fn()  # warm-up
        for _ in range(args.repeats):
            for v, make in variants.items():
                with make():
                    t0 = time.perf_counter()
                    results[v] = fn()
                    times[v].append(time.perf_counter() - t0)
        base = statistics.median(times["no reporter"])
        bar = statistics.median(times["Rich bar"])
        same = results["no reporter"] == results["Rich bar"]
        print(
            f"{name:16s} no reporter {base:7.3f}  Rich bar {bar:7.3f}  "
            f"ratio {bar / base:5.3f}  identical: {same}"
        )


if __name__ == "__main__":
    main()
