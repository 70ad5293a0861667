"""Invariants of the metrics, checked on generated predictions (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import calibkit
from calibkit.metrics import summarize
from calibkit.sources.predictions import Predictions

METRICS = ("ece", "mce", "rmsce", "nll", "brier", "accuracy", "mean_confidence")


@st.composite
def predictions(draw, max_rows: int = 60, max_classes: int = 6):
    n = draw(st.integers(1, max_rows))
    k = draw(st.integers(2, max_classes))
    scale = draw(st.sampled_from([0.1, 1.0, 10.0, 1e3]))
    logits = draw(
        hnp.arrays(
            np.float64,
            (n, k),
            elements=st.floats(-1, 1, allow_nan=False, allow_infinity=False),
        )
    )
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    return logits * scale, labels


def _clear_argmax(logits: np.ndarray) -> bool:
    """No row has its top two logits within rounding of each other (where argmax is fragile)."""
    if logits.shape[1] < 2:
        return True
    top2 = np.sort(logits, axis=1)[:, -2:]
    return bool(np.all(top2[:, 1] - top2[:, 0] > 1e-9 * np.maximum(1.0, np.abs(top2[:, 1]))))


def _close(a, b, name: str) -> None:
    for m in METRICS:
        assert getattr(a, m) == pytest.approx(getattr(b, m), rel=1e-12, abs=1e-12), (name, m)
    assert a.bins.count.tolist() == b.bins.count.tolist(), name


@given(predictions(), st.integers(1, 30), st.sampled_from(["width", "mass"]))
def test_errors_are_ordered_and_bounded(data, n_bins, binning) -> None:
    s = calibkit.evaluate(*data, n_bins=n_bins, binning=binning)
    assert 0.0 <= s.ece <= s.rmsce + 1e-12 <= s.mce + 2e-12 <= 1.0 + 2e-12
    assert 0.0 <= s.accuracy <= 1.0
    assert 0.0 <= s.brier <= 2.0
    assert s.nll >= 0.0
    assert s.bins.count.sum() == s.n


@given(predictions(), st.integers(1, 20), st.sampled_from(["width", "mass"]), st.randoms())
def test_row_order_does_not_matter(data, n_bins, binning, rnd) -> None:
    logits, labels = data
    perm = np.array(rnd.sample(range(len(labels)), len(labels)))
    a = calibkit.evaluate(logits, labels, n_bins=n_bins, binning=binning)
    b = calibkit.evaluate(logits[perm], labels[perm], n_bins=n_bins, binning=binning)
    _close(a, b, "permuted")


@given(predictions(max_rows=200), st.integers(1, 50), st.sampled_from(["width", "mass"]))
def test_chunk_size_does_not_matter(data, chunk_rows, binning) -> None:
    preds = Predictions.from_arrays(*data)
    whole = summarize(preds, binning=binning, chunk_rows=10**9)
    chunked = summarize(preds, binning=binning, chunk_rows=chunk_rows)
    _close(whole, chunked, f"chunk_rows={chunk_rows}")


@given(predictions(), st.floats(-50, 50))
def test_adding_a_constant_to_a_row_changes_nothing(data, shift) -> None:
    logits, labels = data
    a = calibkit.evaluate(logits, labels)
    b = calibkit.evaluate(logits + shift, labels)
    if _clear_argmax(logits):
        assert a.accuracy == b.accuracy
    for m in ("nll", "brier"):
        assert getattr(a, m) == pytest.approx(getattr(b, m), rel=1e-9, abs=1e-9)


@given(predictions())
def test_probabilities_and_logits_agree(data) -> None:
    logits, labels = data
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    a = calibkit.evaluate(logits, labels, n_bins=10)
    b = calibkit.evaluate(probs, labels, kind="probs", n_bins=10)
    if probs[np.arange(len(labels)), labels].min() > np.finfo(np.float64).eps:
        assert b.nll == pytest.approx(a.nll, rel=1e-9, abs=1e-9)
    else:  # an exact 0 is raised to the documented floor (a lower bound of the loss); a
        # subnormal probability keeps fewer bits, so its log is that of the stored value
        # (seen: logits [0, 718.75] give 718.7500000000011 from the probability)
        assert b.nll <= a.nll * (1 + 1e-9) + 1e-9
    assert b.brier == pytest.approx(a.brier, abs=1e-12)
    if _clear_argmax(logits):  # softmax can round distinct logits to equal probabilities
        assert b.accuracy == a.accuracy
    # probabilities within an ulp of a bin edge may change bins; compare away from edges
    conf = probs.max(axis=1)
    if _clear_argmax(logits) and np.all(np.abs(conf * 10 - np.round(conf * 10)) > 1e-9):
        assert b.ece == pytest.approx(a.ece, abs=1e-12)


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_perfectly_calibrated_model_has_ece_near_zero(binning) -> None:
    rng = np.random.default_rng(0)
    n, k = 200_000, 4
    logits = rng.normal(scale=2.0, size=(n, k))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1)  # y ~ Categorical(p)
    s = calibkit.evaluate(logits, labels, binning=binning)
    assert s.ece < 0.01
    assert s.nll == pytest.approx(-np.mean(np.log(p[np.arange(n), labels])))
    # and a model that squares its confidence is visibly miscalibrated on the same labels
    assert calibkit.evaluate(logits * 3, labels, binning=binning).ece > 0.1
