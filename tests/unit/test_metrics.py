"""Metrics on small examples computed by hand."""

import math

import numpy as np
import pytest

import calibkit
from calibkit.errors import InputError
from calibkit.metrics import bin_table, expected_calibration_error, summarize
from calibkit.metrics.calibration import maximum_calibration_error, rms_calibration_error
from calibkit.sources.predictions import Predictions


def test_ece_by_hand_two_bins() -> None:
    # bin 1 (0, .5]: conf .2,.4 -> mean .3; outcomes 0,1 -> acc .5; gap .2, weight 2/5
    # bin 2 (.5, 1]: conf .6,.8,1.0 -> mean .8; outcomes 1,1,0 -> acc 2/3; gap 2/15, weight 3/5
    conf = [0.2, 0.4, 0.6, 0.8, 1.0]
    out = [0, 1, 1, 1, 0]
    expected = 2 / 5 * 0.2 + 3 / 5 * (0.8 - 2 / 3)
    assert expected_calibration_error(conf, out, n_bins=2) == pytest.approx(expected, abs=1e-15)
    assert maximum_calibration_error(conf, out, n_bins=2) == pytest.approx(0.2, abs=1e-15)
    rms = math.sqrt(2 / 5 * 0.2**2 + 3 / 5 * (0.8 - 2 / 3) ** 2)
    assert rms_calibration_error(conf, out, n_bins=2) == pytest.approx(rms, abs=1e-15)


def test_ece_confidence_exactly_on_1_over_m_and_1() -> None:
    # 0.1 lies on the first edge of 10 bins: bin 1; 1.0: bin 10.
    table = bin_table([0.1, 1.0, 1.0], [0, 1, 0], n_bins=10)
    assert table.count.tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    # bin 1: |0 - .1| * 1/3; bin 10: |.5 - 1| * 2/3
    assert table.ece() == pytest.approx(0.1 / 3 + 0.5 * 2 / 3, abs=1e-15)


def test_empty_bins_weigh_nothing_and_are_nan() -> None:
    table = bin_table([0.95], [1], n_bins=4)
    assert table.count.tolist() == [0, 0, 0, 1]
    assert np.isnan(table.accuracy[:3]).all()
    assert table.ece() == pytest.approx(0.05)
    assert table.mce() == pytest.approx(0.05)


def test_summary_by_hand_three_classes() -> None:
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.5, 0.25, 0.25], [0.15, 0.3, 0.55]]))
    labels = np.array([0, 1, 1])
    s = summarize(Predictions.from_arrays(logits, labels), n_bins=5)
    assert s.n == 3 and s.n_classes == 3
    assert s.accuracy == pytest.approx(1 / 3)
    assert s.nll == pytest.approx(-(math.log(0.7) + math.log(0.25) + math.log(0.3)) / 3)
    brier = (
        (0.3**2 + 0.2**2 + 0.1**2) + (0.5**2 + 0.75**2 + 0.25**2) + (0.15**2 + 0.7**2 + 0.55**2)
    ) / 3
    assert s.brier == pytest.approx(brier)
    # bins of 5: .7 -> (0.6, 0.8]; .5 and .55 -> (0.4, 0.6], both wrong
    assert s.bins.count.tolist() == [0, 0, 2, 1, 0]
    assert s.ece == pytest.approx((abs(0 - 0.525) * 2 + abs(1 - 0.7)) / 3)
    assert s.mean_confidence == pytest.approx((0.7 + 0.5 + 0.55) / 3)
    assert s.missing_classes == (2,)


def test_argmax_ties_take_the_first_index() -> None:
    s = calibkit.evaluate([[1.0, 1.0]], [0])
    assert s.accuracy == 1.0
    assert calibkit.evaluate([[1.0, 1.0]], [1]).accuracy == 0.0


def test_binary_single_logit_equals_two_class_softmax() -> None:
    z = np.array([-3.0, -0.2, 0.0, 0.4, 2.5, 9.0])
    y = np.array([0, 1, 1, 0, 1, 1])
    one = calibkit.evaluate(z, y)
    two = calibkit.evaluate(np.stack([np.zeros_like(z), z], axis=1), y)
    for name in ("ece", "mce", "nll", "brier", "accuracy"):
        assert getattr(one, name) == getattr(two, name)
    assert one.binary_mode == "top-label"
    # nll of a single logit is the logistic loss
    p = 1 / (1 + np.exp(-z))
    assert one.nll == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_binary_positive_mode_bins_p1() -> None:
    p1 = np.array([0.1, 0.2, 0.8, 0.9])
    y = np.array([0, 1, 1, 1])
    s = calibkit.evaluate(p1, y, kind="probs", n_bins=2, binary_mode="positive")
    # bin 1: p1 .1,.2 mean .15, freq of y=1 .5; bin 2: .85 vs 1.0
    assert s.ece == pytest.approx(0.5 * 0.35 + 0.5 * 0.15)
    assert s.binary_mode == "positive"


def test_soft_labels_cross_entropy_and_brier() -> None:
    p = np.array([[0.6, 0.4], [0.3, 0.7]])
    t = np.array([[0.5, 0.5], [0.0, 1.0]])
    s = calibkit.evaluate(p, t, kind="probs")
    ce = -(0.5 * math.log(0.6) + 0.5 * math.log(0.4) + math.log(0.7)) / 2
    assert s.nll == pytest.approx(ce)
    assert s.brier == pytest.approx((0.01 + 0.01 + 0.09 + 0.09) / 2)
    assert s.accuracy == pytest.approx(1.0)  # argmax of [.5,.5] is class 0
    assert s.soft_labels


def test_logits_of_magnitude_1e4_do_not_overflow() -> None:
    for dtype in (np.float32, np.float64):
        z = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 3.0]], dtype=dtype)
        s = calibkit.evaluate(z, [0, 2])
        assert s.nll == pytest.approx((0 + (1e4 - 3)) / 2)
        assert s.brier == pytest.approx(1.0)
        assert s.saturated_fraction == 1.0
        assert np.isfinite([s.ece, s.mce, s.rmsce, s.nll, s.brier]).all()


def test_float16_input_accumulates_in_float64() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=(2000, 5)).astype(np.float16)
    y = rng.integers(0, 5, 2000)
    half = calibkit.evaluate(z, y)
    full = calibkit.evaluate(z.astype(np.float64), y)
    assert half.nll == full.nll and half.ece == full.ece


def test_probability_zero_on_the_label_uses_the_documented_floor() -> None:
    """An exact 0 is read as the dtype's smallest subnormal (was: its epsilon, #12)."""
    with pytest.warns(UserWarning, match="1 row gives the label a probability of exactly 0"):
        s = calibkit.evaluate(np.array([[1.0, 0.0]], dtype=np.float32), [1], kind="probs")
    assert s.nll == pytest.approx(-math.log(float(np.finfo(np.float32).smallest_subnormal)))
    assert s.zero_prob_rows == 1


@pytest.mark.parametrize(
    ("scores", "labels", "kind", "message"),
    [
        ([[0.5, 0.5]], [2], "probs", "label 2 at row 0 is outside [0, 2)"),
        ([[np.nan, 0.0]], [0], "logits", "logits contain nan at row 0"),
        ([[0.6, 0.6]], [0], "probs", "probability rows must sum to 1"),
        ([[1.0, 0.0]], [0.5], "logits", "labels must be integers; row 0 has 0.5"),
        (np.zeros((0, 3)), np.zeros(0), "logits", "no rows"),
        (np.zeros((2, 2, 2)), [0, 1], "logits", "found shape (2, 2, 2)"),
    ],
)
def test_array_api_validates(scores, labels, kind, message) -> None:
    with pytest.raises(InputError, match=None) as info:
        calibkit.evaluate(scores, labels, kind=kind)
    assert message in str(info.value)
    assert str(info.value).startswith("<array>: ")
