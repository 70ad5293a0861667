"""Exact order statistics in passes of small histograms, and no per-row gathering on a cluster
(#17).

:func:`calibkit.metrics.selection.order_statistics` must equal ``np.sort(values)[ranks]`` bit
for bit (``-0.0`` read as ``+0.0``) for every chunking; equal-mass bins, the median logit gap
and the soft-label bins on a (fake, serial) distributed executor must equal the in-memory
numbers; every pass on it must send back small results; what still keeps per-row data must
be refused there with one line.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from calibkit.engine.executors import using_executor
from calibkit.errors import UsageError
from calibkit.metrics import selection
from calibkit.metrics.binning import assign_mass_bins, mass_bin_edges, mass_ranks
from calibkit.metrics.implied import implied_smoothing, median_ranks
from calibkit.metrics.selection import from_keys, order_statistics, to_keys
from calibkit.metrics.soft_labels import soft_label_metrics
from calibkit.metrics.summary import collect_example_stats, summarize
from calibkit.sources.predictions import ConfidenceRows, Predictions

T = TypeVar("T")
R = TypeVar("R")

#: what one chunk of a distributed pass may send back (a per-row array of the big chunks
#: below is 8 bytes x 20 000 rows at least)
SMALL = 40_000


class FakeCluster:
    """A distributed executor that runs serially, pickles every chunk function with the plain
    pickle (as a cluster would send it; ``pickle_fn=False`` for other modules' closures, which
    a cluster sends with cloudpickle) and records the size of every result."""

    distributed = True

    def __init__(self, *, pickle_fn: bool = True) -> None:
        self.largest = 0
        self.calls = 0
        self.pickle_fn = pickle_fn

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        if self.pickle_fn:
            fn = pickle.loads(pickle.dumps(fn))
        for item in items:
            out = fn(item)
            self.calls += 1
            self.largest = max(self.largest, len(pickle.dumps(out)))
            yield out


class Values:
    """A source of float64 values (any, unvalidated) read in uneven chunks of ``sizes``."""

    source = "<values>"
    kind = "confidence"
    n_classes = 0
    binary = False
    soft_labels = False

    def __init__(self, values: NDArray[np.float64], sizes: tuple[int, ...]) -> None:
        self.values, self.sizes = values, sizes

    @property
    def n_rows(self) -> int:
        return int(self.values.size)

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[Any, Any]]:
        start, i = 0, 0
        while start < self.values.size:
            stop = start + self.sizes[i % len(self.sizes)]
            part = self.values[start:stop]
            yield part, np.zeros(part.size)
            start, i = stop, i + 1


def _value(chunk: Any) -> NDArray[np.float64]:
    out: NDArray[np.float64] = chunk.scores
    return out


class Uneven:
    """``inner`` read in chunks of the odd ``sizes`` (cycled), whatever ``chunk_rows`` says."""

    def __init__(self, inner: Any, sizes: tuple[int, ...]) -> None:
        self.inner, self.sizes = inner, sizes

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[Any, Any]]:
        scores, labels = next(iter(self.inner.chunks(10**9)))
        start, i = 0, 0
        while start < len(labels):
            stop = start + self.sizes[i % len(self.sizes)]
            yield scores[start:stop], labels[start:stop]
            start, i = stop, i + 1


def _bits(x: NDArray[np.float64]) -> NDArray[np.uint64]:
    return np.ascontiguousarray(x, dtype=np.float64).view(np.uint64)


def _reference(values: NDArray[np.float64], ranks: NDArray[np.int64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = np.sort(values)[ranks] + 0.0  # -0.0 is read as +0.0
    return out


def _datasets() -> dict[str, NDArray[np.float64]]:
    rng = np.random.default_rng(17)
    tiny = np.finfo(np.float64).smallest_subnormal
    return {
        "one": np.array([0.25]),
        "constant": np.full(1000, 0.7),
        "ties": np.round(rng.random(3000), 2),
        "ones": np.where(rng.random(2000) < 0.8, 1.0, rng.random(2000)),
        "zeros": np.where(rng.random(2000) < 0.5, -0.0, np.where(rng.random(2000) < 0.5, 0.0, 1.0)),
        "subnormal": np.concatenate([rng.integers(0, 50, 500) * tiny, [0.0, -0.0, tiny]]),
        "negative": np.concatenate([rng.normal(size=1500), [-np.inf, np.inf, -0.0, 0.0]]),
        "spread": np.exp(rng.normal(scale=30, size=2000)),
    }


@pytest.mark.parametrize("name", list(_datasets()))
@pytest.mark.parametrize("sizes", [(1,), (7, 1, 300), (5000,)])
@pytest.mark.parametrize("limits", [None, (3, 1 << 8)])
def test_selection_equals_np_sort_bit_for_bit(
    name: str, sizes: tuple[int, ...], limits: tuple[int, int] | None, monkeypatch: Any
) -> None:
    if limits is not None:  # tiny buckets: every histogram pass, narrow ones
        monkeypatch.setattr(selection, "COLLECT_MAX", limits[0])
        monkeypatch.setattr(selection, "HISTOGRAM_MAX", limits[1])
    values = np.random.default_rng(1).permutation(_datasets()[name])
    if sizes == (1,):  # one row a chunk: a few hundred rows are enough
        values = values[:300]
    n = values.size
    want = np.array([0, n - 1, n // 2, 0, *np.random.default_rng(2).integers(0, n, 9)])
    got = order_statistics(Values(values, sizes), _value, lambda m: want)
    assert got.n == n
    np.testing.assert_array_equal(got.ranks, want)
    np.testing.assert_array_equal(_bits(got.values), _bits(_reference(values, want)))
    hinted = order_statistics(Values(values, sizes), _value, lambda m: want, size_hint=n)
    np.testing.assert_array_equal(_bits(hinted.values), _bits(got.values))


def test_heavy_ties_take_four_histogram_passes_and_no_more() -> None:
    values = np.concatenate([np.full(70_000, 1.0), np.full(70_000, 0.5), [0.1]])
    ranks = np.array([0, 1, 70_000, 140_000])
    got = order_statistics(Values(values, (40_000,)), _value, lambda n: ranks)
    assert got.passes == 4  # 20 + 16 + 16 + 12 bits: each bucket is then one value
    assert got.values.tolist() == [0.1, 0.5, 0.5, 1.0]


def test_continuous_data_need_one_histogram_pass_and_a_collecting_one() -> None:
    values = np.random.default_rng(3).random(200_000)
    got = order_statistics(
        Values(values, (30_000,)), _value, lambda n: mass_ranks(n, 15), size_hint=values.size
    )
    assert got.passes == 2  # 200 000 / 2**8 values a bucket after 20 bits: 15 buckets collected
    np.testing.assert_array_equal(got.values, mass_bin_edges(values, 15))


def test_keys_order_like_the_values_and_round_trip() -> None:
    tiny = np.finfo(np.float64).smallest_subnormal
    v = np.array([-np.inf, -1e308, -1.0, -tiny, 0.0, tiny, 1.0, 1e308, np.inf])
    keys = to_keys(v)
    assert (np.diff(keys.astype(object)) > 0).all()
    np.testing.assert_array_equal(_bits(from_keys(keys)), _bits(v))
    assert to_keys([-0.0])[0] == to_keys([0.0])[0]
    assert np.isnan(from_keys(to_keys([np.nan]))[0]) and to_keys([np.nan])[0] > keys[-1]


def test_nan_sorts_last_as_in_np_sort() -> None:
    values = np.array([0.5, np.nan, 0.1, np.nan, 0.9])
    got = order_statistics(Values(values, (2,)), _value, lambda n: [0, 2, 3, 4])
    np.testing.assert_array_equal(got.values, np.sort(values)[[0, 2, 3, 4]])


def test_bad_ranks_and_empty_data() -> None:
    with pytest.raises(ValueError, match="ranks must be from 0 to 2"):
        order_statistics(Values(np.ones(3), (2,)), _value, lambda n: [3])
    empty = order_statistics(Values(np.zeros(0), (2,)), _value, lambda n: [])
    assert empty.n == 0 and empty.values.size == 0


def test_data_that_change_between_passes_are_refused() -> None:
    class Changing(Values):
        reads = 0

        def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[Any, Any]]:
            self.reads += 1
            if self.reads > 1:
                self.values = self.values[1:]
            return super().chunks(chunk_rows)

    from calibkit.errors import InputError

    with pytest.raises(InputError, match="changed between two reads"):
        order_statistics(Changing(np.arange(100.0), (30,)), _value, lambda n: [50])


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.floats(allow_nan=False, allow_subnormal=True),
            st.sampled_from([0.0, -0.0, 1.0, 0.5, 5e-324]),
        ),
        min_size=1,
        max_size=60,
    ),
    sizes=st.lists(st.integers(1, 20), min_size=1, max_size=4),
    picks=st.lists(st.integers(0, 10**6), min_size=1, max_size=6),
    collect=st.integers(0, 8),
)
def test_property_selection_is_np_sort(
    values: list[float], sizes: list[int], picks: list[int], collect: int
) -> None:
    v = np.array(values, dtype=np.float64)
    ranks = np.array([p % v.size for p in picks])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(selection, "COLLECT_MAX", collect)
        mp.setattr(selection, "HISTOGRAM_MAX", 1 << 10)
        got = order_statistics(Values(v, tuple(sizes)), _value, lambda n: ranks)
    np.testing.assert_array_equal(_bits(got.values), _bits(_reference(v, ranks)))


# -- equal-mass bins on a cluster -----------------------------------------------------------------


def _assert_same_summary(local: Any, dist: Any) -> None:
    np.testing.assert_array_equal(_bits(dist.bins.upper), _bits(local.bins.upper))
    np.testing.assert_array_equal(_bits(dist.bins.lower), _bits(local.bins.lower))
    np.testing.assert_array_equal(dist.bins.count, local.bins.count)
    np.testing.assert_allclose(dist.bins.sum_confidence, local.bins.sum_confidence, rtol=1e-12)
    np.testing.assert_allclose(dist.bins.sum_outcome, local.bins.sum_outcome, rtol=1e-12)
    for key in ("ece", "mce", "rmsce", "nll", "brier", "accuracy", "mean_confidence"):
        a, b = getattr(local, key), getattr(dist, key)
        assert b == pytest.approx(a, rel=1e-12, abs=1e-15, nan_ok=True), key
    assert dist.n == local.n and dist.binning == "mass"


def _logits(n: int, k: int, seed: int, decimals: int = 1) -> Predictions:
    rng = np.random.default_rng(seed)
    z = np.round(rng.normal(scale=2.0, size=(n, k)), decimals)
    return Predictions.from_arrays(z, rng.integers(0, k, n), kind="logits")


@pytest.mark.parametrize("n_bins", [1, 7, 15, 300])
@pytest.mark.parametrize("chunk_rows", [1, 97, 5000])
def test_summarize_mass_on_a_cluster_equals_the_local_path(n_bins: int, chunk_rows: int) -> None:
    preds = _logits(3000 if chunk_rows > 1 else 400, 4, seed=n_bins)
    local = summarize(preds, binning="mass", n_bins=n_bins)
    cluster = FakeCluster()
    with using_executor(cluster):
        dist = summarize(preds, binning="mass", n_bins=n_bins, chunk_rows=chunk_rows)
    _assert_same_summary(local, dist)
    uneven = Uneven(preds, (1, 13, 400, 2))
    with using_executor(FakeCluster()):
        dist = summarize(uneven, binning="mass", n_bins=n_bins)  # type: ignore[arg-type]
    _assert_same_summary(local, dist)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ConfidenceRows.from_arrays(
            np.round(np.random.default_rng(4).random(900), 1),
            np.random.default_rng(5).random(900) < 0.7,
        ),
        lambda: Predictions.from_arrays(
            np.round(np.random.default_rng(6).dirichlet(np.ones(3), 800), 2).astype(np.float32),
            np.random.default_rng(7).integers(0, 3, 800),
            kind="probs",
            sum_atol=0.05,
        ),
    ],
)
@pytest.mark.filterwarnings("ignore:.*probability of exactly 0")
def test_summarize_mass_on_a_cluster_other_inputs(make: Callable[[], Any]) -> None:
    preds = make()
    local = summarize(preds, binning="mass", n_bins=10)
    with using_executor(FakeCluster()):
        _assert_same_summary(local, summarize(preds, binning="mass", n_bins=10, chunk_rows=37))


def test_summarize_mass_binary_positive_on_a_cluster() -> None:
    rng = np.random.default_rng(8)
    preds = Predictions.from_arrays(np.round(rng.normal(size=700), 1), rng.integers(0, 2, 700))
    local = summarize(preds, binning="mass", n_bins=9, binary_mode="positive")
    with using_executor(FakeCluster()):
        dist = summarize(preds, binning="mass", n_bins=9, binary_mode="positive", chunk_rows=50)
    _assert_same_summary(local, dist)


def test_a_cluster_pass_sends_back_small_results_only() -> None:
    """100 000 rows in chunks of 20 000: the selection passes and the metrics pass each send
    back histograms and sums, never a chunk's confidences (160 000 bytes)."""
    preds = _logits(100_000, 3, seed=9, decimals=3)
    local = summarize(preds, binning="mass", n_bins=15)
    cluster = FakeCluster()
    with using_executor(cluster):
        dist = summarize(preds, binning="mass", n_bins=15, chunk_rows=20_000)
        gaps = implied_smoothing(preds, chunk_rows=20_000)
    _assert_same_summary(local, dist)
    assert gaps == implied_smoothing(preds)
    assert cluster.calls >= 5 * 4 and cluster.largest < SMALL


def test_mass_ties_never_split_across_bins_on_a_cluster() -> None:
    conf = np.repeat([0.3, 0.6, 0.9], [5, 500, 95])
    rows = ConfidenceRows.from_arrays(conf, np.ones(conf.size))
    with using_executor(FakeCluster()):
        dist = summarize(rows, binning="mass", n_bins=10, chunk_rows=7)
    idx = assign_mass_bins(conf, dist.bins.upper)
    for value in (0.3, 0.6, 0.9):
        assert np.unique(idx[conf == value]).size == 1
    assert dist.bins.count.sum() == conf.size


def test_mass_edge_of_minus_zero_is_plus_zero() -> None:
    edges = mass_bin_edges(np.array([-0.0, -0.0, 0.5, 1.0]), 2)
    assert _bits(edges)[0] == _bits(np.array([0.0]))[0]


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 300),
    k=st.integers(2, 5),
    levels=st.integers(1, 6),
    n_bins=st.integers(1, 40),
    chunk=st.integers(1, 120),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_mass_cluster_equals_local_with_heavy_ties(
    n: int, k: int, levels: int, n_bins: int, chunk: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    z = rng.integers(0, levels, size=(n, k)).astype(np.float64)  # few distinct confidences
    preds = Predictions.from_arrays(z, rng.integers(0, k, n), kind="logits")
    local = summarize(preds, binning="mass", n_bins=n_bins)
    with using_executor(FakeCluster()):
        dist = summarize(preds, binning="mass", n_bins=n_bins, chunk_rows=chunk)
    _assert_same_summary(local, dist)


# -- the median logit gap and soft labels ----------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 1000, 1001])
def test_implied_median_on_a_cluster_is_np_median(n: int) -> None:
    preds = _logits(n, 5, seed=n)
    local = implied_smoothing(preds)
    with using_executor(FakeCluster()):
        dist = implied_smoothing(preds, chunk_rows=3)
    assert dist == local


def test_median_ranks_give_np_median() -> None:
    rng = np.random.default_rng(10)
    for n in range(1, 40):
        v = np.sort(rng.normal(size=n))
        assert float(np.mean(v[median_ranks(n)])) == float(np.median(v))


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_soft_labels_on_a_cluster_equal_the_local_path(binning: str) -> None:
    rng = np.random.default_rng(11)
    z = np.round(rng.normal(size=(1500, 4)), 1)
    t = rng.dirichlet(np.ones(4), 1500)
    preds = Predictions.from_arrays(z, t, kind="logits")
    local = soft_label_metrics(preds, binning=binning, n_bins=12)  # type: ignore[arg-type]
    cluster = FakeCluster()
    with using_executor(cluster):
        dist = soft_label_metrics(
            preds,
            binning=binning,  # type: ignore[arg-type]
            n_bins=12,
            chunk_rows=500,
        )
    a, b = local.to_dict(), dist.to_dict()
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert b[key] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value)
    assert cluster.largest < SMALL // 4


# -- what keeps rows is refused on a cluster -----------------------------------------------------


def _one_line(err: pytest.ExceptionInfo[UsageError]) -> str:
    text = str(err.value)
    assert "\n" not in text and "engine='local'" in text and "--" not in text
    return text


def test_per_example_statistics_are_refused_on_a_cluster() -> None:
    with using_executor(FakeCluster()), pytest.raises(UsageError) as err:
        collect_example_stats(_logits(10, 3, seed=1))
    assert "per-example" in _one_line(err)


@pytest.mark.parametrize("convention", ["guo", "torchmetrics"])
def test_float32_conventions_are_refused_on_a_cluster(convention: str) -> None:
    from calibkit.metrics.conventions import convention_bins

    with using_executor(FakeCluster()), pytest.raises(UsageError) as err:
        convention_bins(_logits(10, 3, seed=1), convention)  # type: ignore[arg-type]
    assert "float32" in _one_line(err)


@pytest.mark.parametrize("convention", ["sklearn", "netcal"])
def test_float64_conventions_run_on_a_cluster(convention: str) -> None:
    from calibkit.metrics.conventions import convention_bins

    preds = _logits(2000, 2, seed=12, decimals=2)
    local = convention_bins(preds, convention)  # type: ignore[arg-type]
    cluster = FakeCluster()
    with using_executor(cluster):
        dist = convention_bins(Uneven(preds, (3, 501)), convention)  # type: ignore[arg-type]
    np.testing.assert_array_equal(dist.count, local.count)
    np.testing.assert_allclose(dist.sum_confidence, local.sum_confidence, rtol=1e-12)
    np.testing.assert_allclose(dist.sum_outcome, local.sum_outcome, rtol=1e-12)
    assert dist.total == local.total == 2000 and cluster.largest < SMALL // 4


@pytest.mark.parametrize("method", ["isotonic", "histogram"])
def test_binning_calibrators_are_refused_on_a_cluster(method: str) -> None:
    from calibkit.calibrators import registry

    with using_executor(FakeCluster()), pytest.raises(UsageError) as err:
        registry.get(method).fit_source(_logits(50, 3, seed=1))  # refused before any pass
    assert method in _one_line(err)


def test_mass_sweep_and_mass_fit_metrics_are_refused_on_a_cluster() -> None:
    from calibkit.calibrators.sweep import sweep_temperatures
    from calibkit.calibrators.temperature import fit_temperature_with_metrics

    preds = _logits(50, 3, seed=1)
    with using_executor(FakeCluster(pickle_fn=False)):
        with pytest.raises(UsageError) as err:
            sweep_temperatures(preds, [1.0, 2.0], binning="mass")
        assert "sweep" in _one_line(err)
        with pytest.raises(UsageError) as err:
            fit_temperature_with_metrics(preds, binning="mass")
        assert "temperature fit" in _one_line(err)
        sweep_temperatures(preds, [1.0, 2.0], binning="width")  # width bins are sums: fine


def test_platt_streams_on_a_cluster_and_agrees_with_the_in_memory_fit() -> None:
    from calibkit.calibrators import registry

    rng = np.random.default_rng(13)
    z = np.round(rng.normal(scale=2.0, size=(400, 2)), 3)
    y = (rng.random(400) < 1 / (1 + np.exp(-(z[:, 1] - z[:, 0]) / 3))).astype(int)
    preds = Predictions.from_arrays(z, y, kind="logits")
    local = registry.get("platt").fit_source(preds).fit_details()
    cluster = FakeCluster(pickle_fn=False)
    with using_executor(cluster):
        dist = registry.get("platt").fit_source(preds, chunk_rows=64).fit_details()
    assert local["fit"]["passes"] == 1 and dist["fit"]["passes"] > 1  # in memory vs streamed
    assert cluster.largest < SMALL // 4
    assert abs(local["a"]) > 0.1
    for key in ("a", "b"):
        assert dist[key] == pytest.approx(local[key], rel=1e-9)
