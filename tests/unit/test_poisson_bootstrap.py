"""The streamed, counter-based Poisson bootstrap of :mod:`calibkit.stats.bootstrap`.

* the weights follow the documented formula (recomputed here with Python integers), have mean 1
  and variance 1, and depend only on (seed, stream, replicate, global row);
* the bootstrap standard error of the accuracy matches ``sqrt(p (1 - p) / N)``;
* a paired comparison gives the two models identical weights, even when they are streamed with
  different chunk sizes; an unpaired one does not;
* sums, p-values, intervals and verdicts are the same for every chunk size and every cut of the
  rows into odd ranges (a source whose chunks are uneven, with the global row numbers), and the
  in-memory entry point gives exactly what the source gives;
* a replicate whose total weight is 0 (N = 1, 2) is dropped and counted, never a NaN.
"""

from __future__ import annotations

import itertools
import math
import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from calibkit.gate.checks import GateConfig, run_gate
from calibkit.metrics.summary import collect_example_stats, summarize
from calibkit.sources.predictions import Predictions, SourceView
from calibkit.stats import bootstrap as bs
from calibkit.stats.bootstrap import (
    METRICS,
    POISSON_THRESHOLDS,
    bootstrap_metrics,
    model_sums,
    paired_bootstrap,
    point_metrics,
    poisson_weights,
)

MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def mix(x: int) -> int:
    """splitmix64 of one 64-bit word, in Python integers (independent of numpy)."""
    z = (x + GAMMA) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def thresholds() -> list[int]:
    """floor(2^64 P(Poisson(1) <= k)), k = 0..19, from float64 probabilities (differs from the
    50-digit table by a few units of 2^-53 at most)."""
    out, cdf = [], 0.0
    for k in range(20):
        cdf += math.exp(-1) / math.factorial(k)
        out.append(min(int(cdf * 2.0**64), MASK))
    return out


def weight(seed: int, stream: int, b: int, i: int) -> int:
    base = mix((mix(seed) + stream) & MASK)
    key = mix((base + b * GAMMA) & MASK)
    h = mix((key + i * GAMMA) & MASK)
    return sum(t <= h for t in thresholds())


class Uneven(SourceView):
    """``base`` streamed in chunks cut at ``cuts`` (global row numbers), whatever chunk_rows."""

    def __init__(self, base: Predictions, cuts: list[int]) -> None:
        self.base = base
        self.cuts = cuts

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[Any, Any]]:
        edges = [0, *self.cuts, self.base.n_rows]
        for lo, hi in itertools.pairwise(edges):
            yield self.base.scores[lo:hi], self.base.labels[lo:hi]


def logits(n: int, k: int, seed: int, scale: float = 2.0) -> tuple[NDArray[Any], NDArray[Any]]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(0.0, scale, (n, k))
    z[np.arange(n), y] += 1.5
    return z, y


@pytest.fixture(scope="module")
def pair() -> tuple[Predictions, Predictions]:
    z, y = logits(1500, 5, 0)
    noise = np.random.default_rng(1).normal(0.0, 0.3, z.shape)
    return Predictions.from_arrays(z * 1.6 + noise, y), Predictions.from_arrays(z, y)


# --------------------------------------------------------------------------------------------
# the weights


def test_the_threshold_table_is_the_poisson_cdf() -> None:
    ref = thresholds()
    assert len(POISSON_THRESHOLDS) == 20
    for got, want in zip(POISSON_THRESHOLDS.tolist(), ref, strict=True):
        assert abs(got - want) <= 2**13  # float64 cdf: a few ulps of 1 (2^-53 = 2^11 / 2^64)
    assert POISSON_THRESHOLDS.tolist() == sorted(POISSON_THRESHOLDS.tolist())
    assert MASK - int(POISSON_THRESHOLDS[-1]) < 8  # P(X >= 20) = 4e-20: 2.8 units of 2^-64


def test_a_tiny_case_by_hand() -> None:
    """N = 3 rows, B = 2 replicates: the weights of the documented formula, and the metrics
    they give, recomputed here."""
    seed = 12345
    w = np.array([[weight(seed, 0, b, i) for i in range(3)] for b in range(2)], dtype=float)
    np.testing.assert_array_equal(poisson_weights(range(3), range(2), seed=seed), w)
    assert weight(seed, 1, 0, 0) == poisson_weights([0], [0], seed=seed, stream=1)[0, 0]
    z = np.array([[2.0, 0.0], [0.0, 1.0], [0.5, 0.0]])
    y = np.array([0, 0, 0])
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    correct = np.array([1.0, 0.0, 1.0])
    nll = -np.log(p[:, 0])
    src = Predictions.from_arrays(z, y)
    res = bootstrap_metrics(src, replicates=2, seed=seed, n_bins=1)
    kept = [b for b in range(2) if w[b].sum() > 0]
    assert res.dropped == 2 - len(kept)
    for r, b in enumerate(kept):
        assert res.replicates["accuracy"][r] == pytest.approx((w[b] * correct).sum() / w[b].sum())
        assert res.replicates["nll"][r] == pytest.approx((w[b] * nll).sum() / w[b].sum())
        conf = p.max(axis=1)  # one bin: ECE = |sum w (conf - correct)| / sum w
        ece = abs((w[b] * (conf - correct)).sum()) / w[b].sum()
        assert res.replicates["ece"][r] == pytest.approx(ece)


def test_weights_have_mean_1_and_variance_1() -> None:
    n = 1_000_000
    w = poisson_weights(np.arange(n), [0], seed=7)[0]
    assert abs(w.mean() - 1) < 5 * math.sqrt(1 / n)
    assert abs(w.var() - 1) < 5 * math.sqrt(3 / n)  # Var of the sample variance: (mu4 - 1)/n
    for k in range(5):
        pk = math.exp(-1) / math.factorial(k)
        assert abs(np.mean(w == k) - pk) < 5 * math.sqrt(pk * (1 - pk) / n), k
    # replicates are independent of each other: weights of two replicates are uncorrelated
    two = poisson_weights(np.arange(200_000), [3, 4], seed=7)
    assert abs(np.corrcoef(two)[0, 1]) < 5 / math.sqrt(200_000)


def test_the_bootstrap_standard_error_of_the_accuracy_is_analytic() -> None:
    n = 2000
    rng = np.random.default_rng(3)
    correct = rng.random(n) < 0.8
    y = np.zeros(n, dtype=int)
    z = np.where(correct[:, None], [[1.0, 0.0]], [[0.0, 1.0]])
    res = bootstrap_metrics(Predictions.from_arrays(z, y), replicates=2000, seed=1)
    p = correct.mean()
    se = float(res.replicates["accuracy"].std(ddof=1))
    assert se == pytest.approx(math.sqrt(p * (1 - p) / n), rel=0.1)
    assert res.replicates["accuracy"].mean() == pytest.approx(
        p, abs=3 * se / math.sqrt(2000) + 1e-3
    )


# --------------------------------------------------------------------------------------------
# paired weights


def test_paired_models_get_identical_weights_on_any_layout(
    pair: tuple[Predictions, Predictions],
) -> None:
    cand, base = pair
    kw: dict[str, Any] = {"replicates": 300, "seed": 5}
    c = model_sums(cand, chunk_rows=128, **kw)
    b = model_sums(Uneven(base, [1, 2, 400, 401, 999]), chunk_rows=700, **kw)
    m = c.n_bins
    # each replicate's total weight is an exact integer sum of the same weights
    np.testing.assert_array_equal(c.sums[:, :m].sum(axis=1), b.sums[:, :m].sum(axis=1))
    other = model_sums(base, stream=1, **kw)
    assert not np.array_equal(c.sums[1:, :m].sum(axis=1), other.sums[1:, :m].sum(axis=1))
    # the weights themselves: the same for the same row numbers, another stream differs
    rows = np.arange(1500)
    np.testing.assert_array_equal(
        poisson_weights(rows, range(5), seed=5), poisson_weights(rows, range(5), seed=5, stream=0)
    )
    assert not np.array_equal(
        poisson_weights(rows, range(5), seed=5), poisson_weights(rows, range(5), seed=5, stream=1)
    )


def test_a_model_against_itself_in_another_layout_never_worsens_beyond_rounding(
    pair: tuple[Predictions, Predictions],
) -> None:
    _, base = pair
    res = paired_bootstrap(base, Uneven(base, [7, 8, 333, 1001]), replicates=200, seed=2)
    for metric in METRICS:
        assert np.abs(res.replicates[metric]).max() < 1e-13, metric


# --------------------------------------------------------------------------------------------
# the same numbers for every layout


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_sums_and_verdicts_do_not_depend_on_the_layout(
    pair: tuple[Predictions, Predictions], binning: str
) -> None:
    cand, base = pair
    config = GateConfig(
        max_increase={"ece": 0.0, "nll": 0.05, "accuracy": 0.0, "brier": 10.0},
        max_values={"ece": 0.5},
        bootstrap=400,
        seed=11,
        binning=binning,  # type: ignore[arg-type]
        n_bins=10,
    )
    kw: dict[str, Any] = {
        "n_bins": 10,
        "binning": binning,
        "replicates": 400,
        "seed": 11,
    }
    layouts = [
        (cand, base, None),
        (cand, base, 1),
        (cand, base, 37),
        (Uneven(cand, [1, 2, 3, 500, 1499]), Uneven(base, [750]), 100),
        (Uneven(cand, [1100]), base, 64),
    ]
    verdicts = []
    sums = []
    for c, b, rows in layouts:
        cs = model_sums(c, chunk_rows=rows, **kw)
        bs_ = model_sums(b, chunk_rows=rows, **kw)
        sums.append((cs.sums, bs_.sums))
        verdicts.append(run_gate(cs, config, baseline=bs_).to_dict())
    ref_c, ref_b = sums[0]
    m = 10
    for c_sums, b_sums in sums[1:]:
        np.testing.assert_array_equal(c_sums[:, :m], ref_c[:, :m])  # weighted counts: exact
        np.testing.assert_allclose(c_sums, ref_c, rtol=1e-13, atol=0)
        np.testing.assert_allclose(b_sums, ref_b, rtol=1e-13, atol=0)
    ref = verdicts[0]
    assert ref["checks"][1]["p_value"] is not None
    for v in verdicts[1:]:
        assert v["passed"] == ref["passed"]
        for got, want in zip(v["checks"], ref["checks"], strict=True):
            assert got["passed"] == want["passed"]
            assert got["p_value"] == want["p_value"]
            for key in ("value", "delta", "ci_low", "ci_high"):
                if want[key] is not None:
                    assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-15)


def test_in_memory_statistics_give_exactly_what_the_source_gives(
    pair: tuple[Predictions, Predictions],
) -> None:
    cand, _ = pair
    for binning in ("width", "mass"):
        for rows in (100, 1500):
            kw: dict[str, Any] = {"binning": binning, "replicates": 150, "seed": 4}
            a = model_sums(cand, chunk_rows=rows, **kw)
            stats = collect_example_stats(cand, chunk_rows=rows)
            b = model_sums(stats, chunk_rows=rows, **kw)
            np.testing.assert_array_equal(a.sums, b.sums)


def test_point_values_are_the_summary(pair: tuple[Predictions, Predictions]) -> None:
    cand, _ = pair
    for binning in ("width", "mass"):
        s = summarize(cand, binning=binning)  # type: ignore[arg-type]
        got = point_metrics(cand, binning=binning, chunk_rows=333)  # type: ignore[arg-type]
        for metric in ("accuracy", "ece", "mce", "rmsce", "nll", "brier"):
            assert got[metric] == pytest.approx(getattr(s, metric), rel=1e-12), metric
        # the summary's edges given, no edge pass: the same sums
        a = model_sums(cand, binning=binning, replicates=20, upper_edges=s.bins.upper)  # type: ignore[arg-type]
        b = model_sums(cand, binning=binning, replicates=20)  # type: ignore[arg-type]
        np.testing.assert_array_equal(a.sums, b.sums)


def test_many_replicate_groups_give_the_replicates_of_one(
    monkeypatch: pytest.MonkeyPatch, pair: tuple[Predictions, Predictions]
) -> None:
    """More replicates than one chunk's result may hold: groups, one pass each, same numbers."""
    cand, _ = pair
    ref = model_sums(cand, replicates=250, seed=3)
    monkeypatch.setattr(bs, "_RESULT_CELLS", 48 * 40)  # 39 replicates a pass with 15 bins
    assert len(bs._plans(15, None, 250, 3, 0)) == 7
    got = model_sums(cand, replicates=250, seed=3)
    np.testing.assert_array_equal(got.sums[:, :15], ref.sums[:, :15])  # weighted counts: exact
    np.testing.assert_allclose(got.sums, ref.sums, rtol=1e-14, atol=0)  # BLAS blocking aside


def test_a_pass_sends_only_small_parameters_to_a_worker() -> None:
    plan = bs._plans(15, None, 100, 0, 0)[0]
    fn = bs._ChunkFn(plan, "logits", "top-label")
    assert len(pickle.dumps(fn)) < 1000
    assert pickle.loads(pickle.dumps(fn)) == fn


# --------------------------------------------------------------------------------------------
# empty replicates


@pytest.mark.parametrize("n", [1, 2])
def test_replicates_of_total_weight_0_are_dropped_and_counted(n: int) -> None:
    z, y = logits(n, 3, 9)
    src = Predictions.from_arrays(z, y)
    b = 400
    w = poisson_weights(range(n), range(b), seed=0)
    empty = int(np.count_nonzero(w.sum(axis=1) == 0))
    assert empty > 0  # e^-n of 400
    res = bootstrap_metrics(src, replicates=b, seed=0)
    assert res.dropped == empty
    for metric in METRICS:
        assert res.replicates[metric].shape == (b - empty,)
        assert not np.isnan(res.replicates[metric]).any(), metric
    # a paired check drops the same replicates and says so
    config = GateConfig(max_increase={"nll": 0.0}, bootstrap=b)
    verdict = run_gate(src, config, baseline=collect_example_stats(src))
    assert verdict.passed
    assert any(f"{empty} of {b} bootstrap replicates dropped" in note for note in verdict.notes)
    (check,) = verdict.checks
    assert check.p_value == 1.0  # every kept replicate is 0 <= 0


def test_an_interval_without_replicates_is_nan() -> None:
    res = bs.BootstrapResult({"ece": 0.0}, {"ece": np.zeros(0)}, dropped=3)
    lo, hi = res.interval("ece")
    assert math.isnan(lo) and math.isnan(hi)
