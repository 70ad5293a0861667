"""Regression tests of the review of issue #18 (library side)."""

from __future__ import annotations

import numpy as np
import pytest

from calibkit.metrics.correctness import (
    correctness_metrics,
    fit_platt,
    helm_ece,
    platt_map,
    target_rows,
)
from calibkit.metrics.examples import confidence_stats
from calibkit.metrics.summary import MetricAccumulator
from calibkit.sources.folds import fold_of
from calibkit.stats.bootstrap import bootstrap_metrics, point_metrics

CONF = np.array([0.5, 0.9, 0.7])
FRACTIONAL = np.array([1.0, 0.5, 0.0])  # mean 0.5; a >= 0.5 threshold would give 2/3


def _summary(correct: np.ndarray, binning: str = "width") -> float:
    acc = MetricAccumulator(0, kind="confidence", n_bins=10, binning=binning)  # type: ignore[arg-type]
    acc.update_stats(confidence_stats(CONF, correct), np.asarray(correct))
    return acc.result().accuracy


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_fractional_correctness_accuracy_is_the_mean(binning: str) -> None:
    assert _summary(FRACTIONAL, binning) == 0.5


def test_integer_correctness_accuracy_unchanged() -> None:
    rng = np.random.default_rng(3)
    conf = rng.uniform(0, 1, 997)
    hit = (rng.uniform(0, 1, 997) < conf).astype(np.float64)
    acc = MetricAccumulator(0, kind="confidence")
    for a in range(0, 997, 100):
        acc.update_stats(confidence_stats(conf[a : a + 100], hit[a : a + 100]), hit[a : a + 100])
    assert acc.result().accuracy == int(np.count_nonzero(hit)) / 997  # bit for bit


def test_bootstrap_accuracy_of_fractional_correctness_is_the_mean() -> None:
    stats = confidence_stats(CONF, FRACTIONAL)
    assert point_metrics(stats)["accuracy"] == 0.5
    res = bootstrap_metrics(stats, replicates=200, seed=1)
    assert res.point["accuracy"] == 0.5


def test_correct_values_of_confidence_rows() -> None:
    s = confidence_stats(CONF, FRACTIONAL)
    assert s.correct_values().tolist() == [1.0, 0.5, 0.0]
    assert s.correct.tolist() == [True, False, False]


# 2. HELM's key names mean HELM's numbers: in-sample Platt; cross-fitted ones end in _cv


def test_helm_named_keys_are_the_in_sample_values() -> None:
    rng = np.random.default_rng(5)
    c = rng.uniform(0.3, 1.0, 400)
    y = (rng.uniform(0, 1, 400) < c**2).astype(np.float64)
    m = correctness_metrics(c, y, folds=5, seed=2)
    doc = m.to_dict()
    a, b = fit_platt(c, y)
    assert doc["platt_coef"] == a and doc["platt_intercept"] == b
    assert doc["platt_ece_10_bin"] == helm_ece(platt_map(c, a, b), y, 10)
    assert doc["platt_ece_1_bin"] == helm_ece(platt_map(c, a, b), y, 1)
    fold = fold_of(np.arange(400), folds=5, seed=2)
    held = np.empty(400)
    for j in range(5):
        aj, bj = fit_platt(c[fold != j], y[fold != j])
        held[fold == j] = platt_map(c[fold == j], aj, bj)
    assert doc["platt_ece_10_bin_cv"] == helm_ece(held, y, 10)
    assert doc["platt_ece_10_bin_cv"] != doc["platt_ece_10_bin"]
    assert doc["ts_ece_10_bin_cv"] is not None
    assert not [k for k in doc if k.endswith("_in_sample")] and "ts_ece_10_bin" not in doc


# 3. "whole tie group" only when the target row is tied (exact k* = ceil(q N))


@pytest.mark.parametrize(
    ("q", "n", "k"),
    [(0.1, 1065, 107), (0.1, 1000, 100), (0.07, 100, 7), (0.29, 100, 29), (1.0, 7, 7)],
)
def test_target_rows_is_exact(q: float, n: int, k: int) -> None:
    assert target_rows(q, n) == k


def test_no_tie_group_without_ties() -> None:
    rng = np.random.default_rng(0)
    c = rng.permutation(np.linspace(0.3, 0.99, 1065))  # 1065 distinct confidences
    y = (rng.uniform(0, 1, 1065) < c).astype(np.float64)
    m = correctness_metrics(c, y)
    assert [a.rows for a in m.accuracy_at_coverage] == [107, 533, 959]
    assert not any(a.whole_tie_group for a in m.accuracy_at_coverage)


def test_tie_group_when_the_target_row_is_tied() -> None:
    c = np.array([0.9] * 5 + [0.5] * 5)
    m = correctness_metrics(c, np.array([1.0, 0, 1, 1, 0, 1, 0, 0, 1, 0]), coverages=[0.3])
    (a,) = m.accuracy_at_coverage
    assert a.target_rows == 3 and a.rows == 5 and a.whole_tie_group


def test_plot_labels_clear_of_the_curve() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    from calibkit.plotting.risk_coverage import plot_risk_coverage

    rng = np.random.default_rng(0)
    c = rng.permutation(np.linspace(0.3, 0.99, 1065))
    y = (rng.uniform(0, 1, 1065) < c**3).astype(np.float64)
    m = correctness_metrics(c, y)
    fig = plot_risk_coverage(m)
    ax = fig.axes[0]
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()
    line = ax.lines[0]
    xy = ax.transData.transform(np.column_stack(line.get_data()))
    labels = [t for t in ax.texts if "acc" in t.get_text()]
    assert len(labels) == 3
    for t in labels:
        assert "tie group" not in t.get_text()
        box = Text.get_window_extent(t, renderer)  # the text only, not a leader line
        assert box.count_contains(xy) == 0, t.get_text()
