"""Known answers for the estimators of ``calibkit ece --all``.

Each expected value is worked out by hand in a comment, or recomputed here by an independent
numpy computation that follows the cited definition (not calibkit's code path):

* :mod:`calibkit.metrics.estimators`: the over/under-confidence split, Kumar et al.'s debiased
  squared L2 calibration error, Błasiok & Nakkiran's smooth ECE, the bin sensitivity table;
* :mod:`calibkit.metrics.classwise`: class-wise ECE, top-k accuracy, the Brier decomposition;
* :func:`calibkit.stats.bootstrap.bootstrap_metrics`: sanity of the percentile intervals.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import calibkit
from calibkit.metrics import bin_table, summarize
from calibkit.metrics.calibration import BinTable
from calibkit.metrics.classwise import class_statistics
from calibkit.metrics.estimators import (
    SENSITIVITY_BINS,
    bin_sensitivity,
    debiased_squared_ce,
    over_under_confidence,
    smooth_ece,
)
from calibkit.metrics.summary import collect_example_stats
from calibkit.sources.predictions import Predictions
from calibkit.stats.bootstrap import bootstrap_metrics

DATA = Path(__file__).resolve().parents[2] / "sample_data"
SAMPLES = ["digits_hard_test", "digits_ls10_test"]


# --------------------------------------------------------------------------------------------
# helpers: independent computations


def table(counts, sum_conf, sum_out) -> BinTable:
    """A hand-made :class:`BinTable` of equal-width bins."""
    m = len(counts)
    edges = np.arange(m + 1) / m
    return BinTable(
        lower=edges[:-1],
        upper=edges[1:],
        count=np.asarray(counts, dtype=np.int64),
        sum_confidence=np.asarray(sum_conf, dtype=np.float64),
        sum_outcome=np.asarray(sum_out, dtype=np.float64),
    )


def width_bin(p: np.ndarray, m: int) -> np.ndarray:
    """0-based bin of ``(b-1)/M < p <= b/M`` (0 in the first bin), straight from the definition."""
    edges = np.arange(m + 1) / m
    return np.minimum(np.searchsorted(edges[1:], p, side="left"), m - 1)


def binned_ece(p: np.ndarray, o: np.ndarray, m: int = 15) -> float:
    """``sum_b |B_b|/N |mean(o in b) - mean(p in b)|`` with a Python loop over bins."""
    idx = width_bin(p, m)
    total = 0.0
    for b in range(m):
        sel = idx == b
        if sel.any():
            total += sel.sum() / p.size * abs(o[sel].mean() - p[sel].mean())
    return total


def debiased_by_formula(conf: np.ndarray, out: np.ndarray, m: int) -> float:
    """Kumar et al. 2019: ``sum_b n_b/N [(acc_b - conf_b)^2 - acc_b (1 - acc_b) / (n_b - 1)]``."""
    idx = width_bin(conf, m)
    total = 0.0
    for b in range(m):
        sel = idx == b
        n_b = int(sel.sum())
        if n_b < 2:
            continue
        acc, cb = out[sel].mean(), conf[sel].mean()
        total += n_b / conf.size * ((acc - cb) ** 2 - acc * (1 - acc) / (n_b - 1))
    return total


def smece_at(f: np.ndarray, y: np.ndarray, s: float, grid: int = 2000) -> float:
    """``smECE_s = int_0^1 |(1/N) sum_i K_s(t, f_i)(y_i - f_i)| dt`` with the *fully* reflected
    Gaussian kernel (images ``±f + 2j``, ``|j| <= 3``), no rounding of ``f``; midpoint rule."""
    t = (np.arange(grid) + 0.5) / grid
    k = np.zeros((grid, f.size))
    for j in range(-3, 4):
        for image in (f + 2 * j, -f + 2 * j):
            k += np.exp(-0.5 * ((t[:, None] - image[None, :]) / s) ** 2)
    k /= s * np.sqrt(2 * np.pi)
    return float(np.abs(k @ (y - f) / f.size).mean())


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def calibrated(seed: int, n: int, low: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Confidences uniform in ``[low, 1]`` and outcomes ``~ Bernoulli(confidence)``."""
    rng = np.random.default_rng(seed)
    f = rng.uniform(low, 1.0, n)
    return f, (rng.random(n) < f).astype(np.float64)


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(DATA / f"{name}.npz") as data:
        return data["logits"].astype(np.float64), data["labels"]


def random_logits(rng: np.random.Generator, n: int = 97, k: int = 5):
    return rng.normal(scale=2.0, size=(n, k)), rng.integers(0, k, n)


# --------------------------------------------------------------------------------------------
# over / under-confidence


def test_over_under_by_hand() -> None:
    # bin 1: 2 rows, conf .25, acc .5 -> under-confident by .5 in sums
    # bin 2: empty; bin 3: 4 rows, conf .9, acc .5 -> over-confident by 1.6 in sums; N = 6
    t = table([2, 0, 4], [0.5, 0.0, 3.6], [1.0, 0.0, 2.0])
    over, under = over_under_confidence(t)
    assert over == pytest.approx(1.6 / 6, abs=1e-15)
    assert under == pytest.approx(0.5 / 6, abs=1e-15)
    assert t.ece() == pytest.approx(2.1 / 6, abs=1e-15)


def test_over_under_one_sided_and_calibrated() -> None:
    assert over_under_confidence(table([4], [3.2], [2.0])) == pytest.approx((0.3, 0.0))
    assert over_under_confidence(table([4, 1], [1.2, 0.1], [3.0, 1.0])) == pytest.approx(
        (0.0, (1.8 + 0.9) / 5)
    )
    assert over_under_confidence(table([2, 2], [0.5, 1.5], [0.5, 1.5])) == (0.0, 0.0)


def test_over_under_docstring_example_from_raw_rows() -> None:
    # 2 bins: (0, .5] holds .2 (right): under by .8; (.5, 1] holds .9, .9 (one right): over by .8
    over, under = over_under_confidence(bin_table([0.9, 0.9, 0.2], [1, 0, 1], n_bins=2))
    assert over == pytest.approx(0.8 / 3) and under == pytest.approx(0.8 / 3)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0])), min_size=1, max_size=60
    ),
    n_bins=st.integers(1, 30),
    binning=st.sampled_from(["width", "mass"]),
)
def test_over_plus_under_is_ece(rows, n_bins, binning) -> None:
    conf, out = (np.array(c) for c in zip(*rows, strict=True))
    t = bin_table(conf, out, n_bins=n_bins, binning=binning)
    over, under = over_under_confidence(t)
    assert over >= 0 and under >= 0
    # equal up to float64 summation order (the two partial sums are rounded separately)
    assert over + under == pytest.approx(t.ece(), rel=1e-13, abs=1e-15)
    assert over == pytest.approx(
        sum(max(c - o, 0.0) for c, o in zip(t.sum_confidence, t.sum_outcome, strict=True))
        / conf.size,
        rel=1e-12,
        abs=1e-15,
    )


# --------------------------------------------------------------------------------------------
# debiased squared calibration error (Kumar et al. 2019)


def test_debiased_by_hand() -> None:
    # bin 1: n 4, conf .8, acc .5: (.3)^2 - .25/3 = 0.09 - 0.083333 = 0.0066667, weight 4/10
    # bin 2: n 1: contributes 0 whatever its gap, but counts in N
    # bin 3: n 5, conf .6, acc 1: (.4)^2 - 0 = 0.16, weight 5/10
    t = table([4, 1, 5], [3.2, 0.1, 3.0], [2.0, 1.0, 5.0])
    expected = 0.4 * (0.09 - 0.25 / 3) + 0.5 * 0.16
    assert debiased_squared_ce(t) == pytest.approx(expected, abs=1e-15)
    # changing the single-row bin changes nothing
    assert debiased_squared_ce(table([4, 1, 5], [3.2, 0.9, 3.0], [2.0, 0.0, 5.0])) == (
        pytest.approx(expected, abs=1e-15)
    )


def test_debiased_two_row_bin_and_small_bins_only() -> None:
    # n_b = 2, conf .5, acc .5: 0 - .25/1 = -.25 (negative: the estimate is of a squared error)
    assert debiased_squared_ce(table([2], [1.0], [1.0])) == pytest.approx(-0.25)
    # only bins with fewer than 2 rows: 0, not NaN
    assert debiased_squared_ce(table([1, 0, 1], [0.1, 0.0, 0.9], [1.0, 0.0, 0.0])) == 0.0


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_bins", [1, 5, 15, 40])
def test_debiased_equals_the_formula_recomputed(seed, n_bins) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 200))
    conf = rng.random(n)
    out = (rng.random(n) < conf**1.5).astype(np.float64)
    got = debiased_squared_ce(bin_table(conf, out, n_bins=n_bins))
    assert got == pytest.approx(debiased_by_formula(conf, out, n_bins), rel=1e-12, abs=1e-15)


def test_debiased_is_unbiased_for_a_calibrated_model_where_plug_in_is_not() -> None:
    # N = 300, conf ~ U[.5, 1], outcome ~ Bernoulli(conf): the true (binned) error is 0.
    debiased, plug_in = [], []
    for seed in range(50):
        t = bin_table(*calibrated(seed, 300, low=0.5), n_bins=15)
        debiased.append(debiased_squared_ce(t))
        filled = t.count > 0
        acc = t.sum_outcome[filled] / t.count[filled]
        conf = t.sum_confidence[filled] / t.count[filled]
        plug_in.append(float((t.count[filled] / t.n * (acc - conf) ** 2).sum()))
    # plug-in bias ~ sum_b p_b acc_b(1-acc_b)/n_b ~ 8 bins * .16 / 300 ~ 0.004
    assert abs(np.mean(debiased)) < 0.002
    assert np.mean(plug_in) > 0.003
    assert np.mean(plug_in) > 5 * abs(np.mean(debiased))


def test_debiased_constant_miscalibration_exact_share() -> None:
    # conf .8 everywhere, exactly 60% right: (.6 - .8)^2 - .24 / (N - 1)
    n = 100_000
    out = (np.arange(n) < 0.6 * n).astype(np.float64)
    got = debiased_squared_ce(bin_table(np.full(n, 0.8), out))
    assert got == pytest.approx(0.04 - 0.24 / (n - 1), abs=1e-12)


def test_debiased_constant_miscalibration_random() -> None:
    rng = np.random.default_rng(0)
    n = 100_000
    out = (rng.random(n) < 0.6).astype(np.float64)
    assert debiased_squared_ce(bin_table(np.full(n, 0.8), out)) == pytest.approx(0.04, abs=0.002)


# --------------------------------------------------------------------------------------------
# smooth ECE (Błasiok & Nakkiran 2023)


@pytest.mark.parametrize("n", [10, 1000])
def test_smooth_ece_constant_prediction(n) -> None:
    # f = .7 everywhere, outcome mean .6: the smoothed residual is -.1 K_s(t, .7), whose integral
    # over [0, 1] is .1 for every s (the reflected kernel has mass 1): smECE_s = .1 = s.
    out = (np.arange(n) < 0.6 * n).astype(np.float64)
    r = smooth_ece(np.full(n, 0.7), out)
    assert r.value == pytest.approx(0.1, abs=1e-3)
    assert r.bandwidth == pytest.approx(0.1, abs=1e-3)
    assert r.density.mean() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(("conf", "acc"), [(0.95, 0.2), (1.0, 0.0)])
def test_smooth_ece_constant_prediction_badly_miscalibrated(conf, acc) -> None:
    # Same argument as above: smECE_s = |conf - acc| for every s, so the fixed point is there.
    n = 100
    r = smooth_ece(np.full(n, conf), (np.arange(n) < acc * n).astype(np.float64))
    assert r.density.mean() == pytest.approx(1.0, abs=1e-3)
    assert r.value == pytest.approx(abs(conf - acc), abs=1e-3)


@pytest.mark.parametrize(
    "case",
    ["calibrated", "overconfident", "flat"],
)
def test_smooth_ece_is_the_fixed_point_of_an_independent_smece(case) -> None:
    # smECE_s - s strictly decreases (slope <= -1), so smECE_s(bandwidth) ~= bandwidth computed
    # independently pins the fixed point to the same tolerance.
    rng = np.random.default_rng(7)
    f = rng.uniform(0.3, 1.0, 300) if case == "overconfident" else rng.random(300)
    truth = {"calibrated": f, "overconfident": f - 0.15, "flat": np.full(300, 0.5)}[case]
    y = (rng.random(300) < truth).astype(np.float64)
    r = smooth_ece(f, y)
    assert abs(r.value - r.bandwidth) < 1e-3
    assert smece_at(f, y, r.bandwidth) == pytest.approx(r.bandwidth, abs=5e-4)


def test_smooth_ece_small_for_a_calibrated_model() -> None:
    f, y = calibrated(0, 2000)
    r = smooth_ece(f, y)
    assert r.value < 0.03
    assert abs(r.value - r.bandwidth) < 1e-3


def test_smooth_ece_below_plug_in_ece_at_small_n() -> None:
    # 15-bin plug-in ECE of a calibrated model at N = 200 is mostly noise (~0.08)
    smooth, plug_in = [], []
    for seed in range(5):
        f, y = calibrated(seed, 200)
        smooth.append(smooth_ece(f, y).value)
        plug_in.append(bin_table(f, y).ece())
    assert np.mean(smooth) < np.mean(plug_in)


@pytest.fixture(scope="module")
def squared_model():
    """f ~ U(0, 1), y ~ Bernoulli(f^2), N = 20000: E[y | f] = f^2 below the diagonal."""
    rng = np.random.default_rng(11)
    f = rng.random(20_000)
    y = (rng.random(20_000) < f**2).astype(np.float64)
    return smooth_ece(f, y)


def test_smooth_ece_known_miscalibration(squared_model) -> None:
    # f - f^2 >= 0 on [0, 1], so smECE_s = E|f - f^2| = 1/2 - 1/3 = 1/6 for every s
    r = squared_model
    assert r.value == pytest.approx(1 / 6, abs=0.02)
    assert abs(r.value - r.bandwidth) < 1e-3


def test_smooth_ece_curve_and_density(squared_model) -> None:
    r = squared_model
    mid = int(np.argmin(np.abs(r.t - 0.5)))
    # the curve is f^2 smoothed with s ~ 1/6: E[X^2] = .25 + s^2 ~ .278 at t = .5
    assert r.curve[mid] == pytest.approx(0.25, abs=0.05)
    inner = (r.t > 0.2) & (r.t < 0.8)
    assert np.abs(r.curve[inner] - r.t[inner] ** 2).max() < 0.05
    assert r.t.size == r.curve.size == r.density.size
    assert r.density.mean() == pytest.approx(1.0, abs=1e-3)  # the grid is uniform on [0, 1]
    assert (r.density >= 0).all()


# --------------------------------------------------------------------------------------------
# bin sensitivity


def test_bin_sensitivity_rows_are_plug_in_eces(rng) -> None:
    conf = rng.random(500)
    out = (rng.random(500) < conf**2).astype(np.float64)
    rows = bin_sensitivity(conf, out)
    assert len(rows) == 10
    assert {(r["binning"], r["n_bins"]) for r in rows} == set(
        itertools.product(["width", "mass"], SENSITIVITY_BINS)
    )
    for r in rows:
        expected = bin_table(conf, out, n_bins=r["n_bins"], binning=r["binning"]).ece()
        assert r["ece"] == expected
    width15 = next(r for r in rows if r["binning"] == "width" and r["n_bins"] == 15)
    assert width15["ece"] == pytest.approx(binned_ece(conf, out, 15), abs=1e-14)


# --------------------------------------------------------------------------------------------
# class-wise ECE, top-k, Brier decomposition


def check_class_statistics(logits: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> None:
    k = logits.shape[1]
    preds = Predictions.from_arrays(logits, labels)
    cls = class_statistics(preds, n_bins=n_bins, top_k=(1, 2, k))
    b = cls.brier
    assert b.brier == pytest.approx(b.total, abs=1e-12)
    assert b.brier == pytest.approx(
        b.reliability
        - b.resolution
        + b.uncertainty
        + b.within_bin_variance
        - 2 * b.within_bin_covariance,
        abs=1e-12,
    )
    assert b.brier == pytest.approx(summarize(preds, n_bins=n_bins).brier, abs=1e-12)
    p = softmax(logits)
    onehot = np.eye(k)[labels]
    assert b.brier == pytest.approx(((p - onehot) ** 2).sum(axis=1).mean(), abs=1e-12)
    expected = [binned_ece(p[:, j], onehot[:, j], n_bins) for j in range(k)]
    np.testing.assert_allclose(cls.class_ece, expected, rtol=0, atol=1e-12)
    assert cls.classwise_ece == pytest.approx(np.mean(expected), abs=1e-12)
    assert cls.top_k[1] == pytest.approx(calibkit.accuracy(logits, labels), abs=1e-15)
    assert cls.top_k[k] == 1.0
    worst = cls.worst_classes(3)
    assert [c for c, _ in worst] == list(np.argsort(-np.asarray(expected), kind="stable")[:3])


@pytest.mark.parametrize("name", SAMPLES)
def test_class_statistics_on_sample_data(name) -> None:
    check_class_statistics(*load(name))


@pytest.mark.parametrize("seed", range(4))
def test_class_statistics_on_random_data(seed) -> None:
    rng = np.random.default_rng(seed)
    logits, labels = random_logits(rng, n=int(rng.integers(5, 120)), k=int(rng.integers(2, 7)))
    check_class_statistics(logits, labels, n_bins=int(rng.integers(1, 20)))


def test_top_k_against_argsort(rng) -> None:
    logits, labels = random_logits(rng, n=300, k=6)  # continuous: no ties
    cls = class_statistics(Predictions.from_arrays(logits, labels), top_k=range(1, 7))
    order = np.argsort(-logits, axis=1)
    for k in range(1, 7):
        expected = np.mean([labels[i] in order[i, :k] for i in range(300)])
        assert cls.top_k[k] == pytest.approx(expected, abs=1e-15)


def test_top_k_ties_rank_the_first_index_first() -> None:
    # rows all tied: the label ranks at its index
    cls = class_statistics(Predictions.from_arrays(np.zeros((3, 3)), [0, 1, 2]), top_k=(1, 2, 3))
    assert cls.top_k == pytest.approx({1: 1 / 3, 2: 2 / 3, 3: 1.0})


def test_class_statistics_one_hot_soft_labels_equal_hard_labels(rng) -> None:
    logits, labels = random_logits(rng, n=200, k=4)
    hard = class_statistics(Predictions.from_arrays(logits, labels))
    soft = class_statistics(Predictions.from_arrays(logits, np.eye(4)[labels]))
    np.testing.assert_allclose(soft.class_ece, hard.class_ece, rtol=0, atol=1e-15)
    assert soft.top_k == hard.top_k
    for field in ("brier", "reliability", "resolution", "uncertainty"):
        assert getattr(soft.brier, field) == pytest.approx(getattr(hard.brier, field), abs=1e-15)


def test_brier_identity_with_fractional_soft_labels(rng) -> None:
    # UNC is then sum_k Var(o_k) (not o_bar (1 - o_bar)); the identity still holds exactly
    logits = rng.normal(size=(80, 4))
    soft = rng.dirichlet(np.ones(4), 80)
    preds = Predictions.from_arrays(logits, soft)
    b = class_statistics(preds, n_bins=7).brier
    assert b.brier == pytest.approx(((softmax(logits) - soft) ** 2).sum(axis=1).mean(), abs=1e-12)
    assert b.brier == pytest.approx(summarize(preds).brier, abs=1e-12)
    assert b.brier == pytest.approx(b.total, abs=1e-12)
    assert b.uncertainty == pytest.approx(soft.var(axis=0).sum(), abs=1e-12)


@pytest.mark.parametrize("name", SAMPLES)
def test_class_statistics_probabilities_equal_logits(name) -> None:
    logits, labels = load(name)
    a = class_statistics(Predictions.from_arrays(logits, labels))
    b = class_statistics(Predictions.from_arrays(softmax(logits), labels, kind="probs"))
    np.testing.assert_allclose(b.class_ece, a.class_ece, rtol=0, atol=1e-9)
    assert b.classwise_ece == pytest.approx(a.classwise_ece, abs=1e-9)
    assert b.top_k == pytest.approx(a.top_k, abs=1e-12)
    for field in (
        "brier",
        "reliability",
        "resolution",
        "uncertainty",
        "within_bin_variance",
        "within_bin_covariance",
    ):
        assert getattr(b.brier, field) == pytest.approx(getattr(a.brier, field), abs=1e-9)


def test_class_statistics_independent_of_chunking(rng) -> None:
    logits, labels = random_logits(rng, n=250, k=5)
    preds = Predictions.from_arrays(logits, labels)
    whole, chunked = class_statistics(preds), class_statistics(preds, chunk_rows=7)
    np.testing.assert_allclose(chunked.class_ece, whole.class_ece, rtol=0, atol=1e-14)
    assert chunked.top_k == whole.top_k
    assert chunked.brier.brier == pytest.approx(whole.brier.brier, abs=1e-14)


def test_brier_resolution_and_uncertainty_by_hand() -> None:
    # p(class 1) = .2, .2, .7, .9; labels 0, 1, 1, 1; 2 bins (0, .5], (.5, 1]
    # class 1: bin 1 {.2, .2} o {0, 1}: f .2, o_b .5; bin 2 {.7, .9} o {1, 1}: f .8, o_b 1
    # class 0: bin 1 {.3, .1} o {0, 0}: f .2, o_b 0;  bin 2 {.8, .8} o {1, 0}: f .8, o_b .5
    # o_bar: class 1 .75, class 0 .25
    p = np.array([[0.8, 0.2], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
    cls = class_statistics(Predictions.from_arrays(p, [0, 1, 1, 1], kind="probs"), n_bins=2)
    b = cls.brier
    assert b.reliability == pytest.approx((2 * 0.09 + 2 * 0.04 + 2 * 0.04 + 2 * 0.09) / 4)  # .13
    assert b.resolution == pytest.approx(8 * 0.0625 / 4)  # every |o_b - o_bar| is .25: .125
    assert b.uncertainty == pytest.approx(2 * 0.75 * 0.25)  # .375
    assert b.within_bin_variance == pytest.approx((0.01 + 0.01 + 0.01 + 0.01) / 4)  # .01
    assert b.within_bin_covariance == pytest.approx(0.0, abs=1e-15)  # o constant where p varies
    assert b.brier == pytest.approx((0.08 + 1.28 + 0.18 + 0.02) / 4)  # .39
    assert b.brier == pytest.approx(0.13 - 0.125 + 0.375 + 0.01)
    # class ECE: class 1 (|1 - .4| + |2 - 1.6|) / 4 = .25; class 0 (|0 - .4| + |1 - 1.6|) / 4
    np.testing.assert_allclose(cls.class_ece, [0.25, 0.25], atol=1e-15)


def test_brier_within_bin_covariance_by_hand() -> None:
    # as above with labels 0, 1, 0, 1: class 1 bin 2 {.7 (o 0), .9 (o 1)}: f .8, o_b .5
    # WBC class 1: (-.1)(-.5) + (.1)(.5) = .1; class 0 bin 1 {.3 (o 1), .1 (o 0)}: .1; / 4
    p = np.array([[0.8, 0.2], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
    b = class_statistics(Predictions.from_arrays(p, [0, 1, 0, 1], kind="probs"), n_bins=2).brier
    assert b.within_bin_covariance == pytest.approx(0.05)
    assert b.resolution == pytest.approx(0.0, abs=1e-15)  # every o_b is .5 = o_bar
    assert b.uncertainty == pytest.approx(0.5)
    assert b.reliability == pytest.approx(4 * 2 * 0.09 / 4)  # .18
    assert b.brier == pytest.approx((0.08 + 1.28 + 0.98 + 0.02) / 4)  # .59
    assert b.brier == pytest.approx(0.18 - 0 + 0.5 + 0.01 - 2 * 0.05)


# --------------------------------------------------------------------------------------------
# bootstrap intervals


def stats_of(seed: int, n: int):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, 4))
    labels = np.array([rng.choice(4, p=row) for row in softmax(logits * 0.7)])
    return collect_example_stats(Predictions.from_arrays(logits, labels))


def test_bootstrap_interval_contains_accuracy_and_narrows_with_n() -> None:
    small = bootstrap_metrics(stats_of(0, 200), replicates=400, seed=1)
    large = bootstrap_metrics(stats_of(0, 5000), replicates=400, seed=1)
    for boot in (small, large):
        lo, hi = boot.interval("accuracy", 0.95)
        assert lo <= boot.point["accuracy"] <= hi
        assert lo < hi
    for metric in ("accuracy", "ece", "nll", "brier", "ece_debiased"):
        w_small = np.subtract(*small.interval(metric, 0.95)[::-1])
        w_large = np.subtract(*large.interval(metric, 0.95)[::-1])
        assert 0 < w_large < w_small / 2, metric  # ~ 1/sqrt(25) = 1/5 for a mean
