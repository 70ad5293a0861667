"""Regression tests of the review of issue #18 (library side)."""

from __future__ import annotations

import numpy as np
import pytest

from calibkit.metrics.correctness import correctness_metrics, fit_platt, helm_ece, platt_map
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
