"""calibkit's HELM metrics against Kumar's ``uncertainty-calibration`` package (``calibration``:
what HELM calls for ``ece_10_bin``, ``ece_1_bin``, ``selective_cov_acc_area``,
``selective_acc@10`` and its in-sample ``platt_ece_10_bin_cv``), on the same inputs.

How they relate (read from calibration/utils.py, version 0.1.4):

* ``get_ece_em`` cuts the sorted confidences into ``numpy.array_split`` runs, puts each edge
  halfway between a run's last value and the next run's first, and assigns by value
  (``searchsorted``, left): every row lands in the bin calibkit's :func:`helm_mass_bins` gives
  it, ties included (a tie is never split there either; only duplicate edges are dropped). So
  ``ece_10_bin`` equals it with and without ties.
* ``get_selective_stats`` sorts with ``argsort(-probs)``, so with ties its numbers depend on the
  order of the tied rows; calibkit's are the expectation over those orders (equal to Kumar's
  mean over every permutation of the rows), and without ties the same number.
* ``get_platt_scaler`` is scikit-learn's ``LogisticRegression(C=1e10)`` with lbfgs at its
  default tolerance (1e-4), so its fit stops short of the optimum: the recalibrated ECE agrees
  to about 1e-5 (tolerance 1e-4 here); against the same regression solved tightly it agrees
  to 1e-6.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

cal = pytest.importorskip("calibration")

from calibkit.metrics.calibration import bin_table  # noqa: E402
from calibkit.metrics.correctness import (  # noqa: E402
    correctness_metrics,
    helm_ece,
    platt_map,
)

SIZES = [1, 2, 7, 10, 13, 99, 100, 101, 457, 2000]


def _tie_free(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.2, 1.0, n)
    assert np.unique(c).size == n
    return c, (rng.uniform(size=n) < c).astype(np.int64)


@pytest.mark.parametrize("n", SIZES)
def test_tie_free_inputs_give_kumars_numbers(n: int) -> None:
    c, y = _tie_free(n, seed=n)
    m = correctness_metrics(c, y, folds=2)
    assert m.ece_10_bin == pytest.approx(cal.get_ece_em(c, y, num_bins=10), abs=1e-12)
    assert m.ece_1_bin == pytest.approx(cal.get_ece(c, y, num_bins=1), abs=1e-12)
    area, acc10 = cal.get_selective_stats(c, y)
    assert m.selective_cov_acc_area == pytest.approx(area, abs=1e-12)
    assert m.selective_acc_at_10 == pytest.approx(acc10, abs=1e-12)
    # Kumar's equal-width get_ece is calibkit's equal-width binning ((b-1)/M, b/M]
    width = bin_table(c, y, n_bins=15, binning="width").ece()
    assert m.ece == pytest.approx(cal.get_ece(c, y, num_bins=15), abs=1e-12)
    assert width == m.ece


@pytest.mark.parametrize("n", [13, 99, 457])
def test_other_bin_counts_match_too(n: int) -> None:
    c, y = _tie_free(n, seed=1)
    for bins in (2, 5, 15, 20):
        assert helm_ece(c, y, bins) == pytest.approx(cal.get_ece_em(c, y, num_bins=bins), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_ties_are_binned_as_kumar_bins_them(seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = rng.choice([0.3, 0.55, 0.6, 0.8, 0.8, 0.95, 1.0], 333)
    y = (rng.uniform(size=333) < c).astype(np.int64)
    m = correctness_metrics(c, y, folds=2)
    assert m.ece_10_bin == pytest.approx(cal.get_ece_em(c, y, num_bins=10), abs=1e-12)
    assert m.ece_10_bin_collapsed  # 6 distinct values cannot fill 10 bins


def test_with_ties_kumars_selective_stats_depend_on_row_order_and_ours_are_their_mean() -> None:
    c = np.array([0.9, 0.7, 0.7, 0.7, 0.4, 0.4])
    y = np.array([1, 1, 0, 0, 1, 0])
    areas, accs = [], []
    for perm in itertools.permutations(range(6)):
        p = list(perm)
        a, b = cal.get_selective_stats(c[p], y[p])
        areas.append(a)
        accs.append(b)
    assert len(set(np.round(areas, 12))) > 1  # Kumar's number moves with the order
    m = correctness_metrics(c, y, folds=2)
    assert m.selective_cov_acc_area == pytest.approx(np.mean(areas), abs=1e-12)
    assert m.selective_acc_at_10 == pytest.approx(np.mean(accs), abs=1e-12)


@pytest.mark.parametrize("n", [60, 457, 2000])
def test_in_sample_platt_is_kumars_get_platt_scaler(n: int) -> None:
    c, y = _tie_free(n, seed=n + 1)
    m = correctness_metrics(c, y, folds=2)
    calibrator, clf = cal.get_platt_scaler(c, y, get_clf=True)
    kumar = calibrator(c)
    assert m.platt_ece_10_bin == pytest.approx(cal.get_ece_em(kumar, y, num_bins=10), abs=1e-4)
    assert m.platt_ece_1_bin == pytest.approx(cal.get_ece(kumar, y, num_bins=1), abs=1e-4)
    assert m.platt_coef == pytest.approx(float(clf.coef_[0][0]), abs=1e-2)
    # the same regression solved to tolerance: 1e-6 on the ECE
    from sklearn.linear_model import LogisticRegression

    x = np.clip(c, 1e-12, 1 - 1e-12)
    tight = LogisticRegression(C=1e10, tol=1e-12, max_iter=10_000).fit(
        np.log(x / (1 - x))[:, None], y
    )
    a, b = float(tight.coef_[0][0]), float(tight.intercept_[0])
    exact = platt_map(c, a, b)
    assert m.platt_ece_10_bin == pytest.approx(cal.get_ece_em(exact, y, num_bins=10), abs=1e-6)
    assert m.platt_ece_1_bin == pytest.approx(cal.get_ece(exact, y, num_bins=1), abs=1e-6)
