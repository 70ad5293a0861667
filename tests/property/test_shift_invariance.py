"""Softmax ignores a constant added to a row; so must every per-example number, to the bit.

Logits are centred on the row maximum before the exponential, so a row and the same row
shifted by ``c`` give the same centred logits whenever the shift is exact, and then the same
confidence, bin, saturation flag, log-probability and Brier score. An earlier shortcut that
skipped the centring broke this: rows of equal logits landed on either side of the bin edge
1/K depending on their offset. These tests pin it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from calibkit.metrics import summarize
from calibkit.metrics.examples import example_stats
from calibkit.sources.predictions import Predictions

FIELDS = ("confidence", "outcome", "correct", "log_prob", "brier", "saturated")


@pytest.mark.parametrize("k", [2, 3, 5, 10, 15, 100])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_equal_logits_give_exactly_one_over_k_at_any_offset(k: int, dtype: type) -> None:
    offsets = [0.0, -299.0, 299.0, 7.25, -1e4, 1e4, 6e4]
    rows = np.repeat(np.array(offsets)[:, None], k, axis=1).astype(dtype)
    stats = example_stats(rows, np.zeros(len(offsets), dtype=np.int64))
    assert (stats.confidence == 1.0 / k).all()
    assert not stats.saturated.any()
    np.testing.assert_array_equal(stats.log_prob, np.full(len(offsets), -np.log(k)))


def test_equal_logit_rows_share_one_bin_whatever_their_offset() -> None:
    """1/3 is the edge 5/15: all rows of [c, c, c] must fall on the same side of it."""
    z = np.concatenate([np.zeros((1000, 3)), np.full((1000, 3), -299.0)])
    y = np.concatenate([np.zeros(1000, np.int64), np.ones(1000, np.int64)])
    s = summarize(Predictions.from_arrays(z, y), n_bins=15)
    assert s.bins.count.tolist().count(2000) == 1
    assert s.ece == pytest.approx(abs(0.5 - 1 / 3), abs=1e-12)


@settings(max_examples=300, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 20), st.integers(2, 8)),
        elements=st.integers(-40 * 1024, 40 * 1024).map(lambda i: i / 1024),
    ),
    st.integers(-600 * 1024, 600 * 1024).map(lambda i: i / 1024),
    st.data(),
)
def test_exact_shifts_change_nothing(z: np.ndarray, shift: float, data: st.DataObject) -> None:
    """Logits and shifts on a 2^-10 grid: ``z + c`` is exact, so the results are identical."""
    y = data.draw(hnp.arrays(np.int64, (z.shape[0],), elements=st.integers(0, z.shape[1] - 1)))
    a, b = example_stats(z, y), example_stats(z + shift, y)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
