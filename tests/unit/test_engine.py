"""The one pass engine: every pass goes through run_pass/map_reduce, behind the Executor interface.

A test executor computes the chunks on another thread in a shuffled order and yields the
results in that order; every pass must still give the same numbers, bit for bit, because the
engine merges in chunk order. It counts its calls, so a pass that bypassed the engine (or its
executor) would be caught.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import numpy as np
import pytest
from _executors import Shuffled

from calibkit import progress
from calibkit.calibrators import fit_temperature_grid, sweep_temperatures
from calibkit.calibrators.temperature import fit_temperature, fit_temperature_with_metrics
from calibkit.engine import executors
from calibkit.engine.executors import (
    SerialExecutor,
    ThreadExecutor,
    current_executor,
    executor_names,
    get_executor,
    register_executor,
    using_executor,
)
from calibkit.engine.passes import Chunk, map_reduce, run_pass
from calibkit.metrics.classwise import class_statistics
from calibkit.metrics.summary import CalibrationSummary, collect_example_stats, summarize
from calibkit.sources.predictions import Predictions
from calibkit.stats.bootstrap import bootstrap_metrics, paired_bootstrap

T = TypeVar("T")
R = TypeVar("R")
CHUNK = 128


@pytest.fixture(scope="module")
def preds() -> Predictions:
    rng = np.random.default_rng(5)
    z = (rng.normal(size=(3000, 20)) * 3).astype(np.float32)
    y = (z + rng.gumbel(size=z.shape) * 4).argmax(axis=1)
    z[::89] *= 50  # a few very confident rows in some chunks
    return Predictions.from_arrays(z, y)


@pytest.fixture(scope="module")
def probs(preds: Predictions) -> Predictions:
    z = preds.scores.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return Predictions.from_arrays(p, preds.labels, kind="probs")


def _same_summary(a: CalibrationSummary, b: CalibrationSummary) -> None:
    for name in ("n", "accuracy", "ece", "mce", "rmsce", "nll", "brier", "mean_confidence",
                 "saturated_fraction", "zero_prob_rows", "soft_labels"):  # fmt: skip
        assert getattr(a, name) == getattr(b, name), name
    for name in ("lower", "upper", "count", "sum_confidence", "sum_outcome"):
        if hasattr(a.bins, name):
            np.testing.assert_array_equal(getattr(a.bins, name), getattr(b.bins, name))


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_summary_is_bit_identical_on_a_shuffling_executor(preds: Predictions, binning: Any) -> None:
    ref = summarize(preds, binning=binning, chunk_rows=CHUNK)
    ex = Shuffled()
    with using_executor(ex):
        got = summarize(preds, binning=binning, chunk_rows=CHUNK)
        stats = collect_example_stats(preds, chunk_rows=CHUNK)
    assert ex.calls == 2 and ex.items == 2 * -(-3000 // CHUNK)
    assert ex.threads and all(t.startswith("shuffled") for t in ex.threads)
    _same_summary(got, ref)
    again = collect_example_stats(preds, chunk_rows=CHUNK)
    for name in ("confidence", "outcome", "correct", "log_prob", "brier", "saturated"):
        np.testing.assert_array_equal(getattr(stats, name), getattr(again, name))


@pytest.mark.parametrize("which", ["preds", "probs"])
def test_temperature_fit_is_bit_identical_on_a_shuffling_executor(
    which: str, request: pytest.FixtureRequest
) -> None:
    source = request.getfixturevalue(which)
    ref, ref_before, ref_after = fit_temperature_with_metrics(source, chunk_rows=CHUNK)
    ex = Shuffled(1)
    with using_executor(ex):
        got, before, after = fit_temperature_with_metrics(source, chunk_rows=CHUNK)
    assert ex.calls == got.fit.passes == ref.fit.passes
    assert got.temperature == ref.temperature
    assert got.fit == ref.fit
    _same_summary(before, ref_before)
    _same_summary(after, ref_after)


@pytest.mark.filterwarnings("ignore:.*(probabilities are exactly 0|beyond it)")
def test_sweep_and_grid_fit_are_bit_identical_on_a_shuffling_executor(
    preds: Predictions, probs: Predictions
) -> None:
    temps = [0.5, 1.0, 1.7, 3.0]
    ref = sweep_temperatures(preds, temps, chunk_rows=CHUNK, binning="mass")
    ref_grid = fit_temperature_grid(probs, grid="0.5:3:0.5", chunk_rows=CHUNK)
    ex = Shuffled(2)
    with using_executor(ex):
        got = sweep_temperatures(preds, temps, chunk_rows=CHUNK, binning="mass")
        grid = fit_temperature_grid(probs, grid="0.5:3:0.5", chunk_rows=CHUNK)
    assert ex.calls == 3  # the sweep, then the grid's zero count and its sweep
    for name in ("ece", "mce", "nll", "brier"):
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name))
    assert (got.accuracy, got.n) == (ref.accuracy, ref.n)
    assert grid.temperature == ref_grid.temperature and grid.values == ref_grid.values
    assert grid.fit == ref_grid.fit


def test_classwise_statistics_are_bit_identical_on_a_shuffling_executor(
    preds: Predictions,
) -> None:
    ref = class_statistics(preds, chunk_rows=CHUNK, top_k=(1, 3))
    ex = Shuffled(3)
    with using_executor(ex):
        got = class_statistics(preds, chunk_rows=CHUNK, top_k=(1, 3))
    assert ex.calls == 1
    np.testing.assert_array_equal(got.class_ece, ref.class_ece)
    assert got.top_k == ref.top_k and got.brier == ref.brier


def test_bootstrap_is_bit_identical_on_a_shuffling_executor(preds: Predictions) -> None:
    stats = collect_example_stats(preds)
    other = collect_example_stats(Predictions.from_arrays(preds.scores * 0.5, preds.labels))
    # replicates large enough for several batches
    ref = bootstrap_metrics(stats, replicates=3000, seed=4)
    ref_paired = paired_bootstrap(stats, other, replicates=3000, seed=4)
    ex = Shuffled(4)
    with using_executor(ex):
        got = bootstrap_metrics(stats, replicates=3000, seed=4)
        paired = paired_bootstrap(stats, other, replicates=3000, seed=4)
    assert ex.calls == 3 and ex.items > 2  # one pass per model
    for a, b in ((got, ref), (paired, ref_paired)):
        assert a.point == b.point
        for name, values in b.replicates.items():
            np.testing.assert_array_equal(a.replicates[name], values)


def test_serial_executor_equals_the_thread_pool(preds: Predictions) -> None:
    ref = summarize(preds, chunk_rows=CHUNK, workers=3)
    ref_fit = fit_temperature(preds, chunk_rows=CHUNK)
    with using_executor("serial"):
        assert isinstance(current_executor(), SerialExecutor)
        _same_summary(summarize(preds, chunk_rows=CHUNK), ref)
        assert fit_temperature(preds, chunk_rows=CHUNK).fit == ref_fit.fit
    assert isinstance(current_executor(), ThreadExecutor)  # restored


@pytest.mark.parametrize("executor", ["serial", "threads", Shuffled(5)])
def test_results_do_not_depend_on_the_chunk_size(preds: Predictions, executor: Any) -> None:
    ref = summarize(preds, chunk_rows=3000)
    ref_cls = class_statistics(preds, chunk_rows=3000)
    with using_executor(executor):
        for rows in (1, 7, 1000):
            s = summarize(preds, chunk_rows=rows)
            np.testing.assert_array_equal(s.bins.count, ref.bins.count)
            for name in ("ece", "nll", "brier", "accuracy"):
                assert getattr(s, name) == pytest.approx(getattr(ref, name), rel=1e-12, abs=1e-15)
            c = class_statistics(preds, chunk_rows=rows)
            np.testing.assert_allclose(c.class_ece, ref_cls.class_ece, rtol=1e-12, atol=1e-15)


def test_progress_advances_in_chunk_order_whatever_the_executor(preds: Predictions) -> None:
    rec = progress.Recorder()
    with progress.reporting(rec), using_executor(Shuffled(6)):
        summarize(preds, chunk_rows=1000)
        fit_temperature(preds, chunk_rows=1000)
    metrics = rec.tasks[0]
    assert metrics.description.endswith(": metrics") and metrics.total == 3000
    assert metrics.advances == [1000, 1000, 1000] and metrics.finished
    fit = rec.find("passes")
    assert len(fit) == 1 and fit[0].done == len(fit[0].advances) >= 1
    assert all(t.advances == [1000, 1000, 1000] for t in rec.tasks if t.parent is fit[0])


def test_a_pass_is_one_progress_task_and_run_pass_numbers_the_chunks(preds: Predictions) -> None:
    rec = progress.Recorder()
    seen: list[tuple[int, int, int]] = []
    with progress.reporting(rec):
        n = run_pass(
            preds,
            lambda c: (c.index, c.start, c.rows),
            seen.append,
            chunk_rows=1100,
            executor=Shuffled(7),
            description="demo",
        )
    assert n == 3 and seen == [(0, 0, 1100), (1, 1100, 1100), (2, 2200, 800)]
    assert [(t.description, t.total, t.advances) for t in rec.tasks] == [
        ("demo", 3000, [1100, 1100, 800])
    ]


def test_torch_passes_run_serially_whatever_executor_is_installed(preds: Predictions) -> None:
    pytest.importorskip("torch")
    ex = Shuffled(8)
    with using_executor(ex):
        s = summarize(preds, chunk_rows=CHUNK, device="cpu")
    assert ex.calls == 0 and s.n == 3000


class Lossy:
    """An executor that loses (or repeats) one result: the engine must refuse it."""

    def __init__(self, repeat: bool) -> None:
        self.repeat = repeat

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        out = [fn(x) for x in items]
        yield from [*out, out[0]] if self.repeat else out[1:]


@pytest.mark.parametrize("repeat", [False, True])
def test_an_executor_that_loses_or_repeats_a_result_is_refused(repeat: bool) -> None:
    merged: list[int] = []
    with pytest.raises(RuntimeError, match="results for 5 items"):
        map_reduce(range(5), lambda x: x, merged.append, executor=Lossy(repeat))


def test_map_reduce_merges_in_item_order_and_stops_the_executor_on_error() -> None:
    merged: list[int] = []
    assert map_reduce(range(20), lambda x: x * x, merged.append, executor=Shuffled(9)) == 20
    assert merged == [i * i for i in range(20)]

    def boom(x: int) -> None:
        if x == 3:
            raise KeyError(x)

    with pytest.raises(KeyError):
        map_reduce(range(10), lambda x: x, boom, executor="threads")


def test_executors_are_registered_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executors, "_EXECUTORS", dict(executors._EXECUTORS))  # undone after
    assert {"threads", "serial"} <= set(executor_names())
    made: list[Shuffled] = []

    def factory() -> Shuffled:
        made.append(Shuffled())
        return made[-1]

    register_executor("test-shuffled", factory)
    assert "test-shuffled" in executor_names()
    assert get_executor("test-shuffled") is made[-1]
    merged: list[int] = []
    map_reduce(range(4), lambda x: -x, merged.append, executor="test-shuffled")
    assert merged == [0, -1, -2, -3] and made[-1].calls == 1
    with pytest.raises(ValueError, match="unknown executor 'nope'"):
        get_executor("nope")
    with using_executor("test-shuffled"):
        assert isinstance(current_executor(), Shuffled)


def test_chunk_knows_its_rows() -> None:
    c = Chunk(2, 10, np.zeros((3, 2)), np.zeros(3, dtype=int))
    assert (c.index, c.start, c.rows) == (2, 10, 3)
