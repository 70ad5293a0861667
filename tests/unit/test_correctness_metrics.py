"""calibkit.metrics.correctness and calibkit.stats.selective: hand-checked values on tiny inputs,
the edge cases that must give a reasoned ``None`` rather than a crash, and the source wrapper
(K-way temperature scaling cross-fitted on the FoldView folds)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from calibkit.engine.executors import SerialExecutor, using_executor
from calibkit.errors import InputError, UsageError
from calibkit.metrics.binning import mass_bin_edges
from calibkit.metrics.calibration import bin_table
from calibkit.metrics.correctness import (
    auroc_correct,
    check_coverages,
    collapse_message,
    correctness_metrics,
    cross_fit,
    fit_binary_temperature,
    fit_platt,
    helm_ece,
    helm_mass_bins,
    helm_mass_edges,
    platt_map,
    risk_coverage,
)
from calibkit.sources.folds import fold_of
from calibkit.sources.predictions import ConfidenceRows, Predictions
from calibkit.stats.selective import selective_metrics


def _random(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.3, 1.0, n)
    return c, (rng.uniform(size=n) < c).astype(np.float64)


# --- HELM's equal-mass bins ------------------------------------------------------------------


def test_helm_runs_are_numpy_array_split_runs() -> None:
    # N = 13, M = 10: array_split gives runs of 2, 2, 2, then seven of 1; the edges are the
    # last confidences of the runs: ranks 1, 3, 5, 6, 7, ..., 12
    c = np.arange(13) / 13.0
    ranks = [1, 3, 5, 6, 7, 8, 9, 10, 11, 12]
    assert helm_mass_edges(c[::-1], 10).tolist() == c[ranks].tolist()
    # calibkit's --binning mass puts the longer runs last: ceil(b*13/10) - 1
    assert mass_bin_edges(c, 10).tolist() == c[[1, 2, 3, 5, 6, 7, 9, 10, 11, 12]].tolist()


def test_helm_ece_by_hand() -> None:
    # runs [.1 .2 .3] [.4 .5]: 3/5 * |.2 - 1/3| + 2/5 * |.45 - 1| = .08 + .22
    c = [0.5, 0.1, 0.4, 0.2, 0.3]
    y = [1, 0, 1, 0, 1]
    assert helm_ece(c, y, 2) == pytest.approx(0.30, abs=1e-15)
    assert helm_ece(c, y, 1) == pytest.approx(abs(0.3 - 0.6), abs=1e-15)


def test_fewer_rows_than_bins_fill_one_bin_each() -> None:
    c, y = [0.9, 0.6, 0.7], [1, 0, 1]
    assert helm_ece(c, y, 10) == pytest.approx((0.1 + 0.6 + 0.3) / 3)
    m = correctness_metrics(c, y, folds=2)
    assert m.ece_10_bin_nonempty == 3 and not m.ece_10_bin_collapsed


def test_a_tie_is_never_split_and_the_collapse_is_reported() -> None:
    # 100 rows on 3 values: runs of 10 cut inside the ties; a value goes to one bin
    c = np.repeat([0.6, 0.8, 0.95], [30, 50, 20])
    y = np.zeros(100)
    y[:20] = 1
    y[30:70] = 1
    y[80:] = 1
    idx = helm_mass_bins(c, 10)
    for v in (0.6, 0.8, 0.95):
        assert np.unique(idx[c == v]).size == 1
    m = correctness_metrics(c, y)
    assert m.ece_10_bin_nonempty == 3
    assert m.ece_10_bin_collapsed and m.distinct_confidences == 3
    assert m.collapse_warning is not None and "3 of 10 bins hold rows" in m.collapse_warning
    # bins are the three values: .3 * |.6 - 2/3| + .5 * |.8 - .8| + .2 * |.95 - 1|
    assert m.ece_10_bin == pytest.approx(0.3 * (2 / 3 - 0.6) + 0.2 * 0.05, abs=1e-15)
    assert m.to_dict()["warnings"] == [m.collapse_warning]


def test_collapse_message_needs_fewer_bins_than_it_could_fill() -> None:
    assert collapse_message(10, 10, 500) is None
    assert collapse_message(4, 10, 4) is None
    msg = collapse_message(2, 10, 500)
    assert msg is not None and msg.startswith("equal-mass bins collapsed: 2 of 10 bins")


def test_ece_10_bin_and_calibkit_mass_binning_agree_when_n_is_a_multiple_of_10() -> None:
    c, y = _random(200)
    ours = bin_table(c, y, n_bins=10, binning="mass").ece()
    assert helm_ece(c, y, 10) == pytest.approx(ours, abs=1e-15)
    c, y = _random(13, seed=3)  # otherwise the runs differ (longer first vs longer last)
    assert helm_ece(c, y, 10) != pytest.approx(
        bin_table(c, y, n_bins=10, binning="mass").ece(), abs=1e-6
    )


# --- Brier, NLL, AUROC -----------------------------------------------------------------------


def test_brier_and_nll_of_the_correctness_event_by_hand() -> None:
    # row 1: c = 1, wrong: (1 - 0)^2 = 1, -log(1 - 1) read at the smallest float64 (744.44)
    # row 2: c = .5, right: .25, -log .5
    m = correctness_metrics([1.0, 0.5], [0, 1], folds=2)
    assert m.brier == pytest.approx(0.625, abs=1e-15)
    floor = -math.log(np.finfo(np.float64).smallest_subnormal)
    assert m.nll == pytest.approx((floor + math.log(2)) / 2, rel=1e-14)
    assert m.nll_floored_rows == 1


def test_auroc_with_ties_is_sklearns() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(5)
    c = rng.choice([0.2, 0.5, 0.5, 0.7, 0.9], 300)
    y = (rng.uniform(size=300) < c).astype(int)
    value, why = auroc_correct(c, y)
    assert why is None
    assert value == pytest.approx(sk.roc_auc_score(y, c), abs=1e-12)


@pytest.mark.parametrize(
    ("y", "reason"),
    [
        ([1, 1, 1], "every row is correct"),
        ([0, 0, 0], "every row is wrong"),
        ([1, 0.5, 0], "fractional"),
    ],
)
def test_auroc_is_undefined_with_a_reason(y: list[float], reason: str) -> None:
    value, why = auroc_correct([0.9, 0.8, 0.7], y)
    assert value is None and why is not None and reason in why
    m = correctness_metrics([0.9, 0.8, 0.7], y, folds=2)
    assert m.auroc is None and reason in m.reasons["auroc_correct"]
    assert m.to_dict()["auroc_correct"] is None


# --- selective prediction --------------------------------------------------------------------


def test_risk_coverage_aurc_and_accuracy_at_coverage_by_hand() -> None:
    # sorted: .9 (right) | .7, .7 (one right, one wrong) | .2 (wrong)
    # E(k) = 0, 0.5 (expected inside the tie group), 1, 2; risks 0, 1/4, 1/3, 1/2
    c, y = [0.7, 0.2, 0.9, 0.7], [0, 0, 1, 1]
    rc = risk_coverage(c, y)
    assert rc.rows.tolist() == [1, 3, 4]
    assert rc.errors.tolist() == [0.0, 1.0, 2.0]
    assert rc.cumulative_errors().tolist() == [0.0, 0.5, 1.0, 2.0]
    m = correctness_metrics(c, y, folds=2, coverages=(0.1, 0.5, 0.9))
    assert m.aurc == pytest.approx((0 + 1 / 4 + 1 / 3 + 1 / 2) / 4, abs=1e-15)
    # oracle: right rows first: E = 0, 0, 1, 2: risks 0, 0, 1/3, 1/2
    assert m.aurc_oracle == pytest.approx((1 / 3 + 1 / 2) / 4, abs=1e-15)
    assert m.e_aurc == pytest.approx(1 / 16, abs=1e-15)
    assert m.aurc_random == 0.5
    assert m.selective_cov_acc_area == pytest.approx(1 - m.aurc, abs=1e-15)
    assert m.selective_acc_at_10 == 1.0  # int(0.1 * 4) + 1 = 1 row
    got = [(a.target, a.coverage, a.rows, a.accuracy) for a in m.accuracy_at_coverage]
    # 50 %: row 2 lies in the tie group {.7, .7}: the whole group is taken (3 rows)
    assert got == [(0.1, 0.25, 1, 1.0), (0.5, 0.75, 3, pytest.approx(2 / 3)), (0.9, 1.0, 4, 0.5)]


def test_selective_acc_at_10_is_kumars_index() -> None:
    # N = 20: Kumar's accs[int(0.1 * 20)] = accs[2]: the 3 most confident rows
    c = np.linspace(1.0, 0.05, 20)
    y = np.ones(20)
    y[2] = 0
    m = correctness_metrics(c, y, folds=2)
    assert m.selective_acc_at_10 == pytest.approx(2 / 3)
    assert m.accuracy_at_coverage[0].rows == 2 and m.accuracy_at_coverage[0].accuracy == 1.0


@pytest.mark.parametrize("bad", [(), (0.0,), (1.5,), (0.5, -0.1), (float("nan"),)])
def test_coverages_must_lie_in_the_unit_interval(bad: tuple[float, ...]) -> None:
    with pytest.raises(UsageError, match="coverage"):
        check_coverages(bad)


# --- Platt and temperature -------------------------------------------------------------------


def test_platt_is_the_unregularised_logistic_regression() -> None:
    lm = pytest.importorskip("sklearn.linear_model")
    c, y = _random(400, seed=2)
    x = np.log(c / (1 - c))[:, None]
    clf = lm.LogisticRegression(C=1e12, tol=1e-12, max_iter=10_000).fit(x, y.astype(int))
    a, b = fit_platt(c, y)
    assert a == pytest.approx(float(clf.coef_[0][0]), abs=1e-6)
    assert b == pytest.approx(float(clf.intercept_[0]), abs=1e-6)


def test_platt_clips_like_kumar() -> None:
    # a confidence of exactly 1 is read as 1 - 1e-12: finite log-odds
    out = platt_map([1.0, 0.0], 1.0, 0.0)
    assert out.tolist() == pytest.approx([1 - 1e-12, 1e-12], rel=1e-6)


def test_binary_temperature_by_hand() -> None:
    # all at .9, 3 of 4 right: the best sigmoid(logit(.9) / T) is .75: T = ln 9 / ln 3 = 2
    assert fit_binary_temperature([0.9] * 4, [1, 1, 1, 0]) == pytest.approx(2.0, abs=1e-7)


def test_cross_fitted_platt_scores_each_row_by_a_map_fitted_without_it() -> None:
    c, y = _random(300, seed=4)
    m = correctness_metrics(c, y, folds=5, seed=7)
    fold = fold_of(np.arange(300), folds=5, seed=7)
    held = np.empty(300)
    for j in range(5):
        a, b = fit_platt(c[fold != j], y[fold != j])
        held[fold == j] = platt_map(c[fold == j], a, b)
    assert m.platt_ece_10_bin_cv == helm_ece(held, y, 10)
    assert m.platt_ece_1_bin_cv == helm_ece(held, y, 1)
    a, b = fit_platt(c, y)
    assert m.platt_coef == a and m.platt_intercept == b
    assert m.platt_ece_10_bin == helm_ece(platt_map(c, a, b), y, 10)
    assert m.ts_method == "binary" and m.ts_ece_10_bin_cv is not None


def test_too_few_rows_per_fold_is_a_reason_not_a_crash() -> None:
    c, y = _random(12)
    m = correctness_metrics(c, y, folds=10)
    for key in ("platt_ece_10_bin_cv", "platt_ece_1_bin_cv", "ts_ece_10_bin_cv"):
        assert getattr(m, key) is None
        assert "too few rows for 10-fold cross-fitting" in m.reasons[key]
    assert m.platt_ece_10_bin is not None  # in-sample needs no folds


def test_a_training_fold_of_one_class_is_a_reason() -> None:
    c, y = _random(200, seed=1)
    y[:] = 1
    y[17] = 0  # the fold holding row 17 trains on correct rows only
    m = correctness_metrics(c, y, folds=10)
    assert m.platt_ece_10_bin_cv is None and "one class only" in m.reasons["platt_ece_10_bin_cv"]
    assert m.ts_ece_10_bin_cv is None and "one class only" in m.reasons["ts_ece_10_bin_cv"]


def test_in_sample_platt_of_one_class_is_a_reason() -> None:
    m = correctness_metrics([0.9, 0.8, 0.7, 0.6], [1, 1, 1, 1], folds=2)
    assert m.platt_ece_10_bin is None
    assert "HELM stores 0.0" in m.reasons["platt_ece_10_bin"]


def test_folds_must_be_at_least_two() -> None:
    with pytest.raises(UsageError, match="folds"):
        cross_fit(10, folds=1, seed=0)


# --- the result ------------------------------------------------------------------------------


def test_to_dict_is_json_with_helms_names() -> None:
    m = correctness_metrics([0.9, 0.9, 0.8, 0.7], [1, 1, 1, 1], folds=2)
    doc = m.to_dict()
    text = json.dumps(doc, allow_nan=False)
    for key in (
        "ece_10_bin",
        "ece_1_bin",
        "max_prob",
        "selective_cov_acc_area",
        "selective_acc@10",
        "platt_ece_10_bin_cv",
        "platt_ece_1_bin_cv",
        "ts_ece_10_bin_cv",
        "platt_ece_10_bin",
        "platt_coef",
        "aurc",
        "auroc_correct",
        "accuracy_at_coverage",
        "risk_coverage",
    ):
        assert key in doc, key
    assert json.loads(text)["auroc_correct"] is None
    assert doc["risk_coverage"]["coverage"] == [0.5, 0.75, 1.0]


def test_the_json_curve_is_thinned() -> None:
    c, y = _random(1000)
    doc = correctness_metrics(c, y).to_dict()
    assert doc["risk_coverage"]["points"] == 1000
    assert len(doc["risk_coverage"]["coverage"]) <= 200
    assert doc["risk_coverage"]["coverage"][-1] == 1.0


@pytest.mark.parametrize(
    ("c", "y", "problem"),
    [
        ([0.5, 1.7], [1, 0], "confidences must be finite"),
        ([0.5, float("nan")], [1, 0], "confidences must be finite"),
        ([0.5, 0.6], [1, 2], "correctness must be finite"),
        ([], [], "no rows"),
    ],
)
def test_bad_arrays_are_input_errors(c: list[float], y: list[float], problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        correctness_metrics(c, y, source="x.npz")


# --- the source wrapper ----------------------------------------------------------------------


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_kway_temperature_is_fitted_on_the_training_folds() -> None:
    from calibkit.calibrators.temperature import fit_temperature

    rng = np.random.default_rng(0)
    z = rng.normal(size=(240, 4)) * 3
    labels = rng.integers(0, 4, 240)
    labels[:120] = z[:120].argmax(axis=1)
    m = selective_metrics(Predictions.from_arrays(z, labels), folds=4, seed=3)
    fold = fold_of(np.arange(240), folds=4, seed=3)
    held = np.empty(240)
    for j in range(4):
        train, test = fold != j, fold == j
        t = fit_temperature(z[train], labels[train], kind="logits").temperature
        held[test] = _softmax(z[test] / t).max(axis=1)
    correct = (z.argmax(axis=1) == labels).astype(float)
    assert m.ts_method == "softmax"
    assert m.ts_ece_10_bin_cv == pytest.approx(helm_ece(held, correct, 10), abs=1e-12)
    assert m.ece_10_bin == pytest.approx(helm_ece(_softmax(z).max(axis=1), correct, 10))


def test_confidence_rows_use_the_binary_temperature_and_fractional_correctness() -> None:
    c, _ = _random(100)
    hit = np.round(c * 4) / 4  # fractional agreement
    m = selective_metrics(ConfidenceRows.from_arrays(c, hit), folds=2)
    assert m.ts_method == "binary" and m.fractional
    assert m.auroc is None and "fractional" in m.reasons["auroc_correct"]
    assert m.accuracy == pytest.approx(hit.mean())


class _FakeCluster(SerialExecutor):
    distributed = True


def test_a_cluster_engine_is_refused() -> None:
    p = Predictions.from_arrays(np.zeros((4, 2)), np.zeros(4, dtype=int))
    with using_executor(_FakeCluster()), pytest.raises(UsageError, match="engine"):
        selective_metrics(p)


# --- groups ----------------------------------------------------------------------------------


def test_groups_match_a_pandas_groupby() -> None:
    import dataclasses

    import pandas as pd

    from calibkit.sources.groups import MemoryColumns
    from calibkit.stats.selective import grouped_selective_metrics

    rng = np.random.default_rng(8)
    n = 400
    z = rng.normal(size=(n, 3)) * 2
    labels = rng.integers(0, 3, n)
    labels[:250] = z[:250].argmax(axis=1)
    task = rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])
    p = dataclasses.replace(
        Predictions.from_arrays(z, labels), columns=MemoryColumns({"task": task})
    )
    r = grouped_selective_metrics(p, ["task"], folds=3)
    frame = pd.DataFrame(
        {
            "task": task,
            "conf": _softmax(z).max(axis=1),
            "correct": (z.argmax(axis=1) == labels).astype(float),
        }
    )
    expected = {}
    for name, part in frame.groupby("task"):
        m = correctness_metrics(part["conf"].to_numpy(), part["correct"].to_numpy(), folds=3)
        expected[f"task={name}"] = m
    assert {g.label for g in r.groups} == set(expected)
    for g in r.groups:
        e = expected[g.label]
        assert g.metrics.n == e.n and g.small  # all under 300 rows
        for key in ("ece_10_bin", "ece_1_bin", "aurc", "auroc", "selective_acc_at_10"):
            assert getattr(g.metrics, key) == pytest.approx(getattr(e, key), abs=1e-12), key
        # the group's Platt folds are those of a file holding only its rows
        assert g.metrics.platt_ece_10_bin_cv == pytest.approx(e.platt_ece_10_bin_cv, abs=1e-12)
    eces = [g.metrics.ece_10_bin for g in r.groups]
    assert eces == sorted(eces, reverse=True)  # the worst first
    assert r.macro["ece_10_bin"] == pytest.approx(np.mean(eces), abs=1e-15)
    assert r.macro_counts["ece_10_bin"] == 3
    assert r.micro.n == n
    doc = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert [g["label"] for g in doc["groups"]] == [g.label for g in r.groups]


def test_nll_of_logits_is_exact_however_confident() -> None:
    # row 1: margin 50, wrong: c rounds to 1.0 in float64, but -log(1 - c) = 50 + log1p(e^-50)
    # row 2: margin 0 of 2 classes, right: -log(1/2)
    z = np.array([[50.0, 0.0], [0.0, 0.0]])
    m = selective_metrics(Predictions.from_arrays(z, [1, 0]), folds=2)
    assert m.nll == pytest.approx((50.0 + math.log(2)) / 2, rel=1e-14)
    assert m.nll_floored_rows == 0
    # from the float64 confidence alone the first term is only known as >= 744 nats
    c = np.array([1.0, 0.5])
    assert correctness_metrics(c, [0, 1], folds=2).nll_floored_rows == 1
