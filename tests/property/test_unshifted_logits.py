"""Hard-labelled logits skip the centring pass where |row max| <= 300 (examples._hard_logit_stats).

The shortcut must agree with the centred log-softmax formulas to float64 rounding, keep the
invariants (confidence <= 1, log p <= 0, Brier >= 0), not cancel when p_y is near 1, and decide
row by row so that no result depends on how rows are chunked.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from calibkit.metrics.examples import (
    UNSHIFTED_LIMIT,
    center_logits,
    example_stats,
    logit_stats,
)

FIELDS = ("confidence", "outcome", "correct", "log_prob", "brier", "saturated")


def _centred(z: np.ndarray, y: np.ndarray) -> object:
    zc, pred = center_logits(z, return_argmax=True)
    return logit_stats(zc, y, pred=pred, buffer=zc)


@st.composite
def logits_and_labels(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 30))
    k = draw(st.integers(2, 9))
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    limit = 6e4 if dtype == np.float16 else 1e4
    base = draw(
        hnp.arrays(np.float64, (n, k), elements=st.floats(-40, 40, allow_nan=False, width=32))
    )
    # shift whole rows, some past the limit, so both paths and mixed chunks occur
    shifts = draw(
        hnp.arrays(
            np.float64,
            (n, 1),
            elements=st.sampled_from([0.0, -250.0, 299.0, 300.0, -301.0, 650.0, limit / 2]),
        )
    )
    z = (base + shifts).astype(dtype)
    y = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    return z, y


@settings(max_examples=300, deadline=None)
@given(logits_and_labels())
def test_shortcut_equals_centred_formulas(data: tuple[np.ndarray, np.ndarray]) -> None:
    z, y = data
    fast, ref = example_stats(z, y), _centred(z, y)
    np.testing.assert_array_equal(fast.correct, ref.correct)
    np.testing.assert_array_equal(fast.outcome, ref.outcome)
    np.testing.assert_allclose(fast.confidence, ref.confidence, rtol=1e-14, atol=0)
    np.testing.assert_allclose(fast.log_prob, ref.log_prob, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(fast.brier, ref.brier, rtol=1e-13, atol=1e-14)
    assert (fast.confidence <= 1.0).all() and (fast.log_prob <= 0.0).all()
    assert (fast.brier >= 0.0).all()


@settings(max_examples=200, deadline=None)
@given(logits_and_labels(), st.integers(1, 29))
def test_rows_are_decided_one_by_one(data: tuple[np.ndarray, np.ndarray], cut: int) -> None:
    z, y = data
    cut = min(cut, len(y) - 1) if len(y) > 1 else 0
    whole = example_stats(z, y)
    if cut == 0:
        return
    head, tail = example_stats(z[:cut], y[:cut]), example_stats(z[cut:], y[cut:])
    for name in FIELDS:
        joined = np.concatenate([getattr(head, name), getattr(tail, name)])
        np.testing.assert_array_equal(getattr(whole, name), joined, err_msg=name)


@pytest.mark.parametrize("top", [0.0, 250.0, -250.0, UNSHIFTED_LIMIT, -UNSHIFTED_LIMIT])
def test_log_prob_near_one_does_not_cancel(top: float) -> None:
    """p_y = 1/(1 + e^-30): -log p_y = log1p(e^-30) = 9.4e-14, recovered to 1e-16 absolute."""
    z = np.array([[top, top - 30.0]])
    stats = example_stats(z, np.array([0]))
    exact = -math.log1p(math.exp(-30.0))
    assert abs(float(stats.log_prob[0]) - exact) < 2e-16
    assert float(stats.confidence[0]) == pytest.approx(1 / (1 + math.exp(-30.0)), rel=1e-15)


def test_saturated_rows_at_the_limit() -> None:
    z = np.array([[UNSHIFTED_LIMIT, -UNSHIFTED_LIMIT], [-UNSHIFTED_LIMIT, -UNSHIFTED_LIMIT - 800]])
    stats = example_stats(z, np.array([0, 1]))
    assert stats.confidence.tolist() == [1.0, 1.0]
    assert stats.saturated.all()
    assert stats.log_prob[0] == 0.0 and stats.log_prob[1] == -800.0
    assert stats.brier.tolist() == [0.0, 2.0]
