"""Properties of the reductions of #15 (top-versus-all, one-versus-all), by hypothesis.

* every output row is a distribution (non-negative, summing to 1);
* top-versus-all keeps the argmax as ``np.argmax`` reads it, as the *unique* maximum, for any map
  output (0, below ``1/K``, below the runner-up after rescaling, exact ties of the input) and so
  keeps the accuracy exactly, for every fitted method;
* one-versus-all can change the argmax (a case is found and pinned).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from calibkit.calibrators import registry
from calibkit.calibrators.base import CalibratedPredictions
from calibkit.calibrators.histogram import HistogramBinning
from calibkit.calibrators.reductions import columns, combine
from calibkit.metrics import summarize
from calibkit.sources.predictions import Predictions

# logits with many exact ties (small integers) and extreme values
LOGIT = st.one_of(
    st.integers(-3, 3).map(float),
    st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False),
)


@st.composite
def logit_rows(draw: Any, min_k: int = 2, max_k: int = 6) -> Any:
    k = draw(st.integers(min_k, max_k))
    n = draw(st.integers(1, 12))
    return draw(hnp.arrays(np.float64, (n, k), elements=LOGIT))


@st.composite
def prob_rows(draw: Any) -> Any:
    z = draw(logit_rows())
    mode = draw(st.sampled_from(["softmax", "zeros"]))
    p = np.exp(np.clip(z - z.max(axis=1, keepdims=True), -700, 0))
    if mode == "zeros":  # exact zeros and exact ones
        p = (p == p.max(axis=1, keepdims=True)).astype(float) * draw(
            st.sampled_from([0.0, 1.0])
        ) + p
    return p / p.sum(axis=1, keepdims=True)


def _map_outputs(draw: Any, n: int, m: int) -> Any:
    special = st.sampled_from([0.0, 1.0, 1e-300, 0.5, 1 / 3])
    return draw(hnp.arrays(np.float64, (n, m), elements=st.one_of(special, st.floats(0, 1))))


def _check_distribution(out: Any) -> None:
    assert out.dtype == np.float64
    assert np.isfinite(out).all() and (out >= 0).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=0, atol=1e-12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), kind=st.sampled_from(["logits", "probs"]))
def test_top_versus_all_keeps_the_argmax_as_the_unique_maximum(data: Any, kind: str) -> None:
    scores = data.draw(logit_rows() if kind == "logits" else prob_rows())
    cols = columns(scores, None, kind, "top")
    q = _map_outputs(data.draw, scores.shape[0], 1)
    out = combine(cols, q)
    _check_distribution(out)
    top = scores.argmax(axis=1)
    np.testing.assert_array_equal(out.argmax(axis=1), top)
    rows = np.arange(len(top))
    rest = out.copy()
    rest[rows, top] = -1.0
    assert (out[rows, top] > rest.max(axis=1)).all()  # unique, whatever the input's ties
    # the top confidence is the map's value whenever that keeps the argmax (then no raise)
    k = scores.shape[1]
    assert (out[rows, top] >= np.minimum(q[:, 0], 1.0) - 1e-15).all()
    assert (out[rows, top] >= 1.0 / k - 1e-15).all()


@settings(max_examples=200, deadline=None)
@given(data=st.data(), kind=st.sampled_from(["logits", "probs"]))
def test_one_versus_all_gives_distributions(data: Any, kind: str) -> None:
    scores = data.draw(logit_rows() if kind == "logits" else prob_rows())
    cols = columns(scores, None, kind, "ova")
    out = combine(cols, _map_outputs(data.draw, *scores.shape))
    _check_distribution(out)


def test_one_versus_all_with_every_map_zero_is_uniform() -> None:
    cols = columns(np.array([[2.0, 1.0, 0.0]]), None, "logits", "ova")
    np.testing.assert_array_equal(combine(cols, np.zeros((1, 3))), [[1 / 3, 1 / 3, 1 / 3]])


def test_one_versus_all_can_change_the_argmax() -> None:
    """Class 0 is over-confident (its map pulls 0.6 down to 0.2); class 1's map keeps 0.3."""
    cols = columns(np.array([[0.6, 0.3, 0.1]]), None, "probs", "ova")
    out = combine(cols, np.array([[0.2, 0.3, 0.1]]))
    assert out.argmax() == 1
    top = combine(columns(np.array([[0.6, 0.3, 0.1]]), None, "probs", "top"), np.array([[0.2]]))
    assert top.argmax() == 0 and top[0, 0] == pytest.approx(0.3 / 0.7)  # raised to q*


@st.composite
def datasets(draw: Any) -> Any:
    k = draw(st.integers(2, 5))
    n = draw(st.integers(2 * k, 60))
    z = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-6, 6).map(lambda v: round(v, 1))))
    y = draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))
    y[:k] = np.arange(k)
    return z, y


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=datasets(), method=st.sampled_from(["histogram", "isotonic", "platt", "beta"]))
def test_fitted_top_versus_all_keeps_accuracy_exactly(data: Any, method: str) -> None:
    import warnings

    z, y = data
    src = Predictions.from_arrays(z, y, kind="logits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # separable toy data: the logistic fits say so
        cal = registry.get(method).fit_source(src, reduction="top")
    assert cal.changes_argmax is False
    out = cal.transform(z)
    _check_distribution(out)
    np.testing.assert_array_equal(out.argmax(axis=1), z.argmax(axis=1))
    before, after = summarize(src), summarize(CalibratedPredictions(src, cal))
    assert after.accuracy == before.accuracy


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=datasets(), chunk=st.integers(1, 9))
def test_histogram_and_isotonic_do_not_depend_on_the_chunk_size(data: Any, chunk: int) -> None:
    z, y = data
    src = Predictions.from_arrays(z, y, kind="logits")
    for method in ("histogram", "isotonic"):
        for reduction in ("top", "ova"):
            whole = registry.get(method).fit_source(src, reduction=reduction)
            parts = registry.get(method).fit_source(src, reduction=reduction, chunk_rows=chunk)
            assert whole.to_dict()["maps"] == parts.to_dict()["maps"]
    h = HistogramBinning.fit_source(src, binning="mass", bins=4, chunk_rows=chunk)
    assert (
        h.to_dict()["maps"]
        == HistogramBinning.fit_source(src, binning="mass", bins=4).to_dict()["maps"]
    )
