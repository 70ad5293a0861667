"""``extended_metrics`` (``calibkit ece --all``) against hand-checked values and direct formulas.

The example is six rows of three-class probabilities, binned into two equal-width bins
(``[0, 0.5]``, ``(0.5, 1]``), small enough to check on paper:

====  ==================  =====  ==========  =======
row   probabilities       label  confidence  correct
====  ==================  =====  ==========  =======
1     0.80, 0.10, 0.10    0      0.80        1
2     0.60, 0.30, 0.10    0      0.60        1
3     0.20, 0.70, 0.10    1      0.70        1
4     0.30, 0.25, 0.45    0      0.45        0
5     0.95, 0.03, 0.02    1      0.95        0
6     0.40, 0.35, 0.25    0      0.40        1
====  ==================  =====  ==========  =======

Bin 1 holds rows 4 and 6 (confidence 0.85 in all, 1 correct: under-confident by 0.15); bin 2
rows 1, 2, 3, 5 (confidence 3.05, 3 correct: over-confident by 0.05). So ECE = 0.2 / 6,
ECE_over = 0.05 / 6, ECE_under = 0.15 / 6, and Kumar et al.'s debiased squared error is
``(2 (0.075^2 - 0.25 / 1) + 4 (0.0125^2 - 0.1875 / 3)) / 6 = -0.738125 / 6`` (below 0, so the
debiased RMSCE is 0). The class-wise and Brier terms and the bootstrap intervals are checked
against direct per-class / per-replicate formulas written out below, not against the library's
own helpers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from calibkit.metrics import table
from calibkit.metrics.estimators import smooth_ece
from calibkit.metrics.summary import summarize
from calibkit.sources.predictions import Predictions
from calibkit.stats.bootstrap import poisson_weights
from calibkit.stats.extended import extended_metrics

P = np.array(
    [
        [0.80, 0.10, 0.10],
        [0.60, 0.30, 0.10],
        [0.20, 0.70, 0.10],
        [0.30, 0.25, 0.45],
        [0.95, 0.03, 0.02],
        [0.40, 0.35, 0.25],
    ]
)
Y = np.array([0, 0, 1, 0, 1, 0])
CONF = np.array([0.80, 0.60, 0.70, 0.45, 0.95, 0.40])
CORRECT = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 1.0])
N, K, M = 6, 3, 2
ONEHOT = np.eye(K)[Y]
EXACT = {"rel": 1e-12, "abs": 1e-14}
REPLICATES = 200
SEED = 7


@pytest.fixture(scope="module")
def extra() -> dict[str, Any]:
    source = Predictions.from_arrays(P, Y, kind="probs")
    summary = summarize(source, n_bins=M)
    return extended_metrics(source, summary, bootstrap=REPLICATES, seed=SEED, ci=0.9)


def _bin(p: np.ndarray, m: int) -> np.ndarray:
    """Equal-width bin of each value: [0, 1/m], (1/m, 2/m], ... (first bin closed)."""
    return np.maximum(np.ceil(p * m).astype(int) - 1, 0)


def test_the_example_is_what_the_docstring_says() -> None:
    assert (P.argmax(axis=1) == Y).astype(float).tolist() == CORRECT.tolist()
    assert P.max(axis=1).tolist() == CONF.tolist()
    assert _bin(CONF, M).tolist() == [1, 1, 1, 0, 1, 0]


def test_over_under_and_debiased_are_the_hand_values(extra: dict[str, Any]) -> None:
    assert extra["ece_over"] == pytest.approx(0.05 / 6, **EXACT)
    assert extra["ece_under"] == pytest.approx(0.15 / 6, **EXACT)
    assert extra["ece_debiased"] == pytest.approx(-0.738125 / 6, **EXACT)
    assert extra["rmsce_debiased"] == 0.0  # the square root of max(0, negative)


def test_top_1_accuracy_is_the_hand_value(extra: dict[str, Any]) -> None:
    assert extra["top_k_accuracy"] == {"1": pytest.approx(4 / 6, **EXACT)}  # K = 3: no top-5


def test_classwise_ece_and_worst_classes_follow_the_direct_formula(extra: dict[str, Any]) -> None:
    per_class = []
    for k in range(K):
        p, o, b = P[:, k], ONEHOT[:, k], _bin(P[:, k], M)
        per_class.append(sum(abs(p[b == j].sum() - o[b == j].sum()) for j in range(M)) / N)
    # class 0: bins {0.30, 0.20, 0.40} (1 of 3 is class 0) and {0.80, 0.60, 0.95} (2 of 3)
    assert per_class[0] == pytest.approx((abs(0.9 - 2) + abs(2.35 - 2)) / 6, **EXACT)
    assert extra["classwise_ece"] == pytest.approx(np.mean(per_class), **EXACT)
    order = sorted(range(K), key=lambda k: -per_class[k])
    assert [row["class"] for row in extra["worst_classes"]] == order
    for row in extra["worst_classes"]:
        assert row["ece"] == pytest.approx(per_class[row["class"]], **EXACT)


def test_brier_terms_follow_the_direct_formulas(extra: dict[str, Any]) -> None:
    rel = res = unc = wbv = wbc = 0.0
    for k in range(K):
        p, o, b = P[:, k], ONEHOT[:, k], _bin(P[:, k], M)
        unc += o.mean() * (1 - o.mean())
        for j in range(M):
            inside = b == j
            if not inside.any():
                continue
            f, ob = p[inside].mean(), o[inside].mean()
            rel += inside.sum() * (f - ob) ** 2 / N
            res += inside.sum() * (ob - o.mean()) ** 2 / N
            wbv += ((p[inside] - f) ** 2).sum() / N
            wbc += ((p[inside] - f) * (o[inside] - ob)).sum() / N
    brier = ((P - ONEHOT) ** 2).sum(axis=1).mean()
    assert rel - res + unc + wbv - 2 * wbc == pytest.approx(brier, **EXACT)  # the identity
    assert extra["brier_reliability"] == pytest.approx(rel, **EXACT)
    assert extra["brier_resolution"] == pytest.approx(res, **EXACT)
    assert extra["brier_uncertainty"] == pytest.approx(unc, **EXACT)
    assert extra["brier_within_bin_variance"] == pytest.approx(wbv, **EXACT)
    assert extra["brier_within_bin_covariance"] == pytest.approx(wbc, **EXACT)
    assert extra["brier_binning"] == "2 equal-width bins of each class probability"


def test_smooth_ece_is_of_the_top_label_confidence_and_correctness(extra: dict[str, Any]) -> None:
    smooth = smooth_ece(CONF, CORRECT)  # the hand-listed columns, not ones the library derived
    assert extra["smece"] == pytest.approx(smooth.value, **EXACT)
    assert extra["smece_bandwidth"] == pytest.approx(smooth.bandwidth, **EXACT)


def test_bin_sensitivity_width_rows_follow_the_direct_formula(extra: dict[str, Any]) -> None:
    rows = [r for r in extra["bin_sensitivity"] if r["binning"] == "width"]
    assert rows
    for row in rows:
        b = _bin(CONF, row["n_bins"])
        direct = sum(abs(CONF[b == j].sum() - CORRECT[b == j].sum()) for j in range(row["n_bins"]))
        assert row["ece"] == pytest.approx(direct / N, **EXACT), row


def _weighted_metrics(w: np.ndarray) -> dict[str, float]:
    """The metrics of one replicate (multiplicities ``w``), straight from their definitions."""
    total = w.sum()
    b = _bin(CONF, M)
    signed = [(w[b == j] * (CONF[b == j] - CORRECT[b == j])).sum() for j in range(M)]
    nll = -np.log(P[np.arange(N), Y])
    brier = ((P - ONEHOT) ** 2).sum(axis=1)
    return {
        "accuracy": (w * CORRECT).sum() / total,
        "ece": sum(abs(s) for s in signed) / total,
        "ece_over": sum(max(s, 0.0) for s in signed) / total,
        "ece_under": sum(max(-s, 0.0) for s in signed) / total,
        "nll": (w * nll).sum() / total,
        "brier": (w * brier).sum() / total,
    }


def test_intervals_are_percentiles_of_directly_computed_replicates(extra: dict[str, Any]) -> None:
    # the Poisson weights of rows 0 .. N-1 in replicates 0 .. REPLICATES-1 with SEED
    weights = poisson_weights(range(N), range(REPLICATES), seed=SEED)
    reps = [_weighted_metrics(w) for w in weights]
    assert extra["ci_level"] == 0.9 and extra["bootstrap"] == REPLICATES and extra["seed"] == SEED
    for metric in ("accuracy", "ece", "ece_over", "ece_under", "nll", "brier"):
        values = np.array([r[metric] for r in reps])
        lo, hi = np.quantile(values, [0.05, 0.95])
        assert extra["ci"][metric] == pytest.approx([lo, hi], **EXACT), metric
    assert {m for m in extra["ci"] if m in table.BUILTIN} == {
        "accuracy",
        "ece",
        "mce",
        "rmsce",
        "nll",
        "brier",
        "ece_over",
        "ece_under",
        "ece_debiased",
    }  # fmt: skip  (the built-ins, by name: a metric registered at import is left out)
    assert not math.isnan(extra["ci"]["mce"][0])
