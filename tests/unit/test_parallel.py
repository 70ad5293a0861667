"""The thread pool and the per-thread work arrays: order, bounded memory, no shared state."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from calibkit.calibrators import fit_temperature, sweep_temperatures
from calibkit.engine.executors import SCRATCH_MAX_BYTES, map_chunks, scratch
from calibkit.metrics import summarize
from calibkit.metrics.examples import example_stats
from calibkit.metrics.summary import collect_example_stats
from calibkit.sources.predictions import Predictions


def test_map_chunks_keeps_order_and_bounds_items_in_flight() -> None:
    pulled = 0
    consumed = 0
    most_ahead = 0

    def items() -> Iterator[int]:
        nonlocal pulled, most_ahead
        for i in range(200):
            pulled += 1
            most_ahead = max(most_ahead, pulled - consumed)
            yield i

    out = []
    for value in map_chunks(lambda x: x * x, items(), workers=3):
        out.append(value)
        consumed += 1
    assert out == [i * i for i in range(200)]
    assert most_ahead <= 2 * 3 + 1


def test_one_chunk_runs_in_the_calling_thread_and_more_on_the_pool() -> None:
    def where(_: int) -> str:
        return threading.current_thread().name

    assert list(map_chunks(where, [0], workers=4)) == [threading.current_thread().name]
    assert list(map_chunks(where, [], workers=4)) == []
    names = list(map_chunks(where, range(8), workers=2))
    assert all(name.startswith("calibkit") for name in names)


@pytest.fixture(scope="module")
def preds() -> Predictions:
    rng = np.random.default_rng(11)
    z = (rng.normal(size=(3000, 50)) * 4).astype(np.float32)
    y = (z + rng.gumbel(size=z.shape) * 6).argmax(axis=1)  # labels that follow the logits
    z[::97] *= 200  # some very large logits mixed into the chunks
    return Predictions.from_arrays(z, y)


def test_results_do_not_depend_on_the_thread_count(preds: Predictions) -> None:
    ref = summarize(preds, chunk_rows=128, workers=1)
    for workers in (2, 3):
        s = summarize(preds, chunk_rows=128, workers=workers)
        assert (s.ece, s.nll, s.brier, s.accuracy, s.mce) == (
            ref.ece,
            ref.nll,
            ref.brier,
            ref.accuracy,
            ref.mce,
        )


def test_results_do_not_depend_on_the_chunk_size(preds: Predictions) -> None:
    ref = summarize(preds, chunk_rows=3000)
    t_ref = fit_temperature(preds, chunk_rows=3000).temperature
    sweep_ref = sweep_temperatures(preds, [0.5, 2.0], chunk_rows=3000)
    for rows in (1, 7, 128, 1000):
        s = summarize(preds, chunk_rows=rows)
        np.testing.assert_array_equal(s.bins.count, ref.bins.count)
        for name in ("ece", "mce", "rmsce", "nll", "brier", "accuracy"):
            assert getattr(s, name) == pytest.approx(getattr(ref, name), rel=1e-12, abs=1e-15)
        assert fit_temperature(preds, chunk_rows=rows).temperature == pytest.approx(
            t_ref, rel=1e-10
        )
        sweep = sweep_temperatures(preds, [0.5, 2.0], chunk_rows=rows)
        np.testing.assert_allclose(sweep.nll, sweep_ref.nll, rtol=1e-12)
        np.testing.assert_allclose(sweep.ece, sweep_ref.ece, rtol=1e-12, atol=1e-15)


def test_scratch_is_reused_within_a_thread_and_private_to_it() -> None:
    a = scratch("test", (10, 4))
    b = scratch("test", (4, 10))
    assert np.shares_memory(a, b)
    other: list[np.ndarray] = []
    t = threading.Thread(target=lambda: other.append(scratch("test", (10, 4))))
    t.start()
    t.join()
    assert not np.shares_memory(a, other[0])
    big = (SCRATCH_MAX_BYTES // 8 + 1,)
    assert not np.shares_memory(scratch("test-big", big), scratch("test-big", big))


def test_per_example_statistics_never_alias_the_work_array(preds: Predictions) -> None:
    z, y = preds.scores[:100], preds.labels[:100]
    first = example_stats(z, y)
    kept = first.confidence.copy()
    example_stats(preds.scores[100:200], preds.labels[100:200])  # reuses the thread's array
    np.testing.assert_array_equal(first.confidence, kept)
    work = scratch("logits", z.shape)
    for name in first.__dataclass_fields__:
        assert not np.shares_memory(getattr(first, name), work), name
    stats = collect_example_stats(preds, chunk_rows=64)
    again = collect_example_stats(preds, chunk_rows=3000)
    np.testing.assert_array_equal(stats.correct, again.correct)
    np.testing.assert_allclose(stats.confidence, again.confidence, rtol=0, atol=0)
