"""Statistical properties of :mod:`calibkit.stats.bootstrap`.

Coverage is checked on synthetic data whose answer is known (a fixed list of seeds, so the
counts are the same on every run); determinism, thread independence and the shape of the
replicate weights are checked directly and with hypothesis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calibkit.metrics.examples import ExampleStats
from calibkit.metrics.summary import collect_example_stats
from calibkit.sources.predictions import Predictions
from calibkit.stats import bootstrap as bs
from calibkit.stats.bootstrap import (
    METRICS,
    bootstrap_metrics,
    paired_bootstrap,
    point_metrics,
    poisson_weights,
)

HARD = Path(__file__).resolve().parents[2] / "sample_data" / "digits_hard_test.npz"
SEEDS = range(100)
N, B, LEVEL = 500, 400, 0.90


def synthetic(
    correct: np.ndarray, confidence: np.ndarray, nll: np.ndarray, brier: np.ndarray | None = None
) -> ExampleStats:
    """Per-example statistics built directly (the bootstrap needs nothing else)."""
    return ExampleStats(
        confidence=confidence.astype(np.float64),
        outcome=correct.astype(np.float64),
        correct=correct.astype(bool),
        log_prob=-nll.astype(np.float64),
        brier=(1 - confidence) ** 2 if brier is None else brier,
        saturated=np.zeros(correct.size, dtype=bool),
    )


def model(seed: int, n: int = N, p: float = 0.8) -> ExampleStats:
    rng = np.random.default_rng(seed)
    correct = rng.random(n) < p
    conf = np.full(n, p)
    return synthetic(correct, conf, np.where(correct, -np.log(p), -np.log((1 - p) / 9)))


def hard_logits() -> tuple[np.ndarray, np.ndarray]:
    with np.load(HARD) as f:
        return f["logits"].astype(np.float64), f["labels"]


# --------------------------------------------------------------------------------------------
# coverage


def test_accuracy_interval_covers_the_true_accuracy() -> None:
    covered = 0
    for seed in SEEDS:
        res = bootstrap_metrics(model(seed), replicates=B, seed=seed)
        lo, hi = res.interval("accuracy", LEVEL)
        assert lo <= res.point["accuracy"] <= hi
        covered += lo <= 0.8 <= hi
    rate = covered / len(SEEDS)
    assert 0.8 <= rate <= 0.97, rate


def test_paired_nll_difference_interval_covers_the_true_difference() -> None:
    """Candidate NLL = baseline NLL + d, with E[d] = 0.05: the true worsening is 0.05."""
    covered = 0
    for seed in SEEDS:
        rng = np.random.default_rng(1000 + seed)
        correct = rng.random(N) < 0.8
        conf = rng.uniform(0.5, 1.0, N)
        nll_base = rng.exponential(0.5, N)
        nll_cand = nll_base + rng.normal(0.05, 0.2, N)
        res = paired_bootstrap(
            synthetic(correct, conf, nll_cand),
            synthetic(correct, conf, nll_base),
            replicates=B,
            seed=seed,
        )
        lo, hi = res.interval("nll", LEVEL)
        covered += lo <= 0.05 <= hi
        # nothing but the NLL differs: every other worsening is exactly zero
        for metric in ("accuracy", "ece", "mce", "rmsce", "brier"):
            assert not res.replicates[metric].any()
    rate = covered / len(SEEDS)
    assert 0.8 <= rate <= 0.97, rate


def test_paired_accuracy_difference_interval_covers_the_true_difference() -> None:
    """The baseline is right with probability 0.85; the candidate breaks 10% of its right rows
    and fixes 5% of its wrong ones: the expected worsening is 0.85 * 0.10 - 0.15 * 0.05."""
    p_base, flip_bad, flip_good = 0.85, 0.10, 0.05
    true_worsening = p_base * flip_bad - (1 - p_base) * flip_good
    covered = 0
    for seed in SEEDS:
        rng = np.random.default_rng(5000 + seed)
        base = rng.random(N) < p_base
        u = rng.random(N)
        cand = np.where(base, u >= flip_bad, u < flip_good)
        conf = np.full(N, 0.85)
        nll = np.ones(N)
        res = paired_bootstrap(
            synthetic(cand, conf, nll), synthetic(base, conf, nll), replicates=B, seed=seed
        )
        assert res.point["accuracy"] == pytest.approx(base.mean() - cand.mean(), abs=1e-12)
        lo, hi = res.interval("accuracy", LEVEL)
        covered += lo <= true_worsening <= hi
    rate = covered / len(SEEDS)
    assert 0.8 <= rate <= 0.97, rate


# --------------------------------------------------------------------------------------------
# determinism


def test_the_same_seed_gives_the_same_replicates() -> None:
    a, b = model(1), model(2)
    r1 = paired_bootstrap(a, b, replicates=300, seed=42, paired=False)
    r2 = paired_bootstrap(a, b, replicates=300, seed=42, paired=False)
    r3 = paired_bootstrap(a, b, replicates=300, seed=43, paired=False)
    for metric in METRICS:
        np.testing.assert_array_equal(r1.replicates[metric], r2.replicates[metric])
        assert not np.array_equal(r1.replicates[metric], r3.replicates[metric])
        assert r1.point[metric] == r3.point[metric]
    s1 = bootstrap_metrics(a, replicates=300, seed=5)
    s2 = bootstrap_metrics(a, replicates=300, seed=5)
    for metric in METRICS:
        np.testing.assert_array_equal(s1.replicates[metric], s2.replicates[metric])


@pytest.mark.parametrize("paired", [True, False])
def test_replicates_do_not_depend_on_the_thread_count(
    monkeypatch: pytest.MonkeyPatch, paired: bool
) -> None:
    # small batches and small pieces, so several pieces run on the pool in several batches
    monkeypatch.setattr(bs, "_BATCH_CELLS", 37 * 50)
    monkeypatch.setattr(bs, "_STATS_CHUNK", 50)
    a, b = model(3), model(4)
    runs = {}
    for threads in ("1", "2", "5"):
        monkeypatch.setenv("CALIBKIT_THREADS", threads)
        runs[threads] = (
            paired_bootstrap(a, b, replicates=B, seed=9, paired=paired),
            bootstrap_metrics(a, replicates=B, seed=9, binning="mass"),
        )
    for metric in METRICS:
        for i in (0, 1):
            ref = runs["1"][i].replicates[metric]
            assert ref.shape == (B,)
            for threads in ("2", "5"):
                np.testing.assert_array_equal(runs[threads][i].replicates[metric], ref)


def test_replicates_equal_a_direct_weighted_computation() -> None:
    """The batched sums give what resampling rows by the weights and recomputing gives."""
    s = model(8, n=60)
    res = bootstrap_metrics(s, replicates=20, seed=3)
    w = poisson_weights(range(60), range(20), seed=3)
    assert res.dropped == 0 and w.sum(axis=1).min() > 0
    for r in range(20):
        rows = np.repeat(np.arange(60), w[r].astype(int))
        conf = s.confidence[rows]
        # the bins of the original sample (width bins do not depend on the sample anyway)
        resampled = ExampleStats(
            confidence=conf, outcome=s.outcome[rows], correct=s.correct[rows],
            log_prob=s.log_prob[rows], brier=s.brier[rows], saturated=s.saturated[rows],
        )  # fmt: skip
        direct = point_metrics(resampled)
        for metric in METRICS:
            assert res.replicates[metric][r] == pytest.approx(direct[metric], abs=1e-12)


# --------------------------------------------------------------------------------------------
# paired versus unpaired


def test_paired_interval_is_much_narrower_for_correlated_models() -> None:
    z, y = hard_logits()
    noise = np.random.default_rng(0).normal(0.0, 0.05, z.shape)
    base = collect_example_stats(Predictions.from_arrays(z, y))
    cand = collect_example_stats(Predictions.from_arrays(z + noise, y))
    paired = paired_bootstrap(cand, base, replicates=B, seed=0, paired=True)
    unpaired = paired_bootstrap(cand, base, replicates=B, seed=0, paired=False)
    for metric in ("nll", "brier", "ece"):
        assert paired.point[metric] == unpaired.point[metric]
        p_lo, p_hi = paired.interval(metric)
        u_lo, u_hi = unpaired.interval(metric)
        assert (p_hi - p_lo) < 0.2 * (u_hi - u_lo), metric


def test_paired_needs_the_same_number_of_examples() -> None:
    from calibkit.errors import UsageError

    with pytest.raises(UsageError, match="same examples"):
        paired_bootstrap(model(0, n=50), model(1, n=60), replicates=100)
    res = paired_bootstrap(model(0, n=50), model(1, n=60), replicates=100, paired=False)
    assert all(res.replicates[m].shape == (100,) for m in METRICS)


def test_fewer_than_one_replicate_is_refused() -> None:
    from calibkit.errors import UsageError

    with pytest.raises(UsageError, match="must be >= 1; got 0"):
        bootstrap_metrics(model(0), replicates=0)


# --------------------------------------------------------------------------------------------
# hypothesis


@settings(deadline=None, max_examples=60)
@given(
    start=st.integers(0, 2**40),
    n=st.integers(1, 300),
    size=st.integers(1, 30),
    seed=st.integers(0, 2**63 - 1),
)
def test_poisson_weights_depend_only_on_seed_replicate_and_row(
    start: int, n: int, size: int, seed: int
) -> None:
    rows = np.arange(start, start + n, dtype=np.uint64)
    w = poisson_weights(rows, range(size), seed=seed)
    assert w.shape == (size, n)
    assert np.all((w >= 0) & (w <= 20))
    np.testing.assert_array_equal(w, np.round(w))
    np.testing.assert_array_equal(poisson_weights(rows, range(size), seed=seed), w)
    # any subset of rows and replicates, in any order, gets the same weights
    pick = rows[::-3]
    np.testing.assert_array_equal(
        poisson_weights(pick, [size - 1, 0], seed=seed), w[[size - 1, 0]][:, ::-3]
    )


@settings(deadline=None, max_examples=40)
@given(
    n=st.integers(1, 80),
    k=st.integers(2, 6),
    scale=st.sampled_from([0.1, 1.0, 5.0, 50.0]),
    n_bins=st.integers(1, 20),
    binning=st.sampled_from(["width", "mass"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_model_against_itself_never_worsens(
    n: int, k: int, scale: float, n_bins: int, binning: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, scale, (n, k))
    y = rng.integers(0, k, n)
    s = collect_example_stats(Predictions.from_arrays(z, y))
    res = paired_bootstrap(s, s, n_bins=n_bins, binning=binning, replicates=100, seed=seed)  # type: ignore[arg-type]
    for metric in METRICS:
        assert res.point[metric] == 0.0
        assert res.replicates[metric].shape == (100 - res.dropped,)
        assert not res.replicates[metric].any(), metric
    boot = bootstrap_metrics(s, n_bins=n_bins, binning=binning, replicates=100, seed=seed)  # type: ignore[arg-type]
    for metric in METRICS:
        reps = boot.replicates[metric]
        assert np.all(np.isfinite(reps))
        lower = -1.0 if metric == "ece_debiased" else 0.0  # the debiased estimate can dip below 0
        assert np.all(reps >= lower) and np.all(reps <= (np.inf if metric == "nll" else 2.0))
