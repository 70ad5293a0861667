"""Properties of the selective-prediction and HELM metrics (calibkit.metrics.correctness):
nothing depends on the order of the rows, duplicating every row leaves the curve where it was,
no order beats the oracle, and a tie is never split between equal-mass bins."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from calibkit.metrics.correctness import (
    correctness_metrics,
    helm_ece,
    helm_mass_bins,
    risk_coverage,
)

#: Few distinct values, so that ties are the rule (verbalised confidences), or any float.
_VALUES = st.one_of(
    st.sampled_from([0.0, 0.2, 0.5, 0.5, 0.8, 0.9, 1.0]),
    st.floats(0.0, 1.0, allow_nan=False),
)


@st.composite
def _pairs(draw: st.DrawFn, min_size: int = 1) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(min_size, 40))
    c = np.array(draw(st.lists(_VALUES, min_size=n, max_size=n)), dtype=np.float64)
    y = np.array(draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n)))
    return c, y


def _order_free(m: object) -> dict[str, object]:
    """The numbers that must not depend on the row order (the cross-fitted ones do: folds are
    a hash of the row number)."""
    keys = (
        "ece_10_bin",
        "ece_1_bin",
        "ece",
        "brier",
        "auroc",
        "aurc",
        "aurc_oracle",
        "selective_cov_acc_area",
        "selective_acc_at_10",
        "ece_10_bin_nonempty",
    )
    out: dict[str, object] = {k: getattr(m, k) for k in keys}
    out["coverage"] = [(a.coverage, a.rows, a.accuracy) for a in m.accuracy_at_coverage]  # type: ignore[attr-defined]
    return out


def _close(a: dict[str, object], b: dict[str, object]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, float) and isinstance(y, float):
            assert abs(x - y) <= 1e-12, (k, x, y)
        elif isinstance(x, list):
            assert len(x) == len(y)  # type: ignore[arg-type]
            for (c1, r1, a1), (c2, r2, a2) in zip(x, y, strict=True):  # type: ignore[arg-type]
                assert (c1, r1) == (c2, r2) and abs(a1 - a2) <= 1e-12
        else:
            assert x == y, (k, x, y)


@settings(max_examples=60, deadline=None)
@given(_pairs(), st.randoms(use_true_random=False))
def test_row_order_changes_nothing(pairs: tuple[np.ndarray, np.ndarray], rnd) -> None:  # type: ignore[no-untyped-def]
    c, y = pairs
    perm = list(range(c.size))
    rnd.shuffle(perm)
    a = correctness_metrics(c, y, folds=2)
    b = correctness_metrics(c[perm], y[perm], folds=2)
    _close(_order_free(a), _order_free(b))
    ra, rb = risk_coverage(c, y), risk_coverage(c[perm], y[perm])
    assert ra.rows.tolist() == rb.rows.tolist()
    assert np.allclose(ra.errors, rb.errors, atol=1e-12, rtol=0)


@settings(max_examples=60, deadline=None)
@given(_pairs())
def test_duplicating_every_row_keeps_the_curve(pairs: tuple[np.ndarray, np.ndarray]) -> None:
    c, y = pairs
    a = correctness_metrics(c, y, folds=2)
    b = correctness_metrics(np.repeat(c, 2), np.repeat(y, 2), folds=2)
    assert np.array_equal(a.curve.coverage, b.curve.coverage)
    assert np.allclose(a.curve.risk, b.curve.risk, atol=1e-12, rtol=0)
    for x, z in zip(a.accuracy_at_coverage, b.accuracy_at_coverage, strict=True):
        assert x.coverage == z.coverage and abs(x.accuracy - z.accuracy) <= 1e-12
    for key in ("ece_1_bin", "ece", "brier", "aurc_random"):
        assert abs(getattr(a, key) - getattr(b, key)) <= 1e-12, key
    assert (a.auroc is None) == (b.auroc is None)
    if a.auroc is not None:
        assert abs(a.auroc - b.auroc) <= 1e-12  # type: ignore[operator]
    if c.size % 10 == 0:  # then the doubled runs are the runs, doubled
        assert abs(a.ece_10_bin - b.ece_10_bin) <= 1e-12


@settings(max_examples=80, deadline=None)
@given(_pairs())
def test_no_order_beats_the_oracle(pairs: tuple[np.ndarray, np.ndarray]) -> None:
    c, y = pairs
    m = correctness_metrics(c, y, folds=2)
    assert m.aurc_oracle <= m.aurc + 1e-12
    assert m.aurc_oracle >= 0.0 and m.aurc <= 1.0 + 1e-12
    assert m.e_aurc >= -1e-12


@settings(max_examples=100, deadline=None)
@given(_pairs(), st.integers(1, 15))
def test_ties_are_never_split(pairs: tuple[np.ndarray, np.ndarray], bins: int) -> None:
    c, y = pairs
    idx = helm_mass_bins(c, bins)
    for v in np.unique(c):
        assert np.unique(idx[c == v]).size == 1
    # bins are ordered by value: every value of bin b lies below every value of bin b + 1
    filled = [c[idx == b] for b in range(bins) if (idx == b).any()]
    for lo, hi in itertools.pairwise(filled):
        assert lo.max() < hi.min()
    assert 0.0 <= helm_ece(c, y, bins) <= 1.0
