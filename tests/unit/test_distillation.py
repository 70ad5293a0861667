"""Soft targets and the teacher diagnostics (calibkit.diagnostics.distillation): hand-checked
values, an independent formula (scipy), properties, chunk-size invariance, extreme logits and
golden numbers on the bundled sample data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import entr, logsumexp

from calibkit.diagnostics.distillation import (
    SoftTargetScaler,
    check_temperature,
    soft_target_summary,
    soft_targets,
    teacher_curve,
)
from calibkit.errors import UsageError
from calibkit.sources.predictions import Predictions

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def direct(z: np.ndarray, y: np.ndarray, t: float) -> tuple[float, float, float]:
    """Mean entropy, top-1 mass and gamma of softmax(z / t), written independently (scipy)."""
    z = np.asarray(z, dtype=np.float64) / t
    p = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    k = z.shape[1]
    onehot = np.eye(k)[y] if y.ndim == 1 else y
    wrong = ((1.0 - onehot) * p).sum(axis=1)
    return (
        float(entr(p).sum(axis=1).mean()),
        float(p.max(axis=1).mean()),
        float(wrong.mean() * k / (k - 1)),
    )


def curve(z: object, y: object, temps: list[float], **kw: object) -> object:
    return teacher_curve(Predictions.from_arrays(z, y, kind="logits"), temps, **kw)  # type: ignore[arg-type]


# -- by hand ------------------------------------------------------------------------------------


def test_two_rows_three_classes_by_hand() -> None:
    # row 1: z = (log 2, 0, 0), label 0 -> p = (1/2, 1/4, 1/4): H = 1.5 log 2, top-1 1/2, w 1/2
    # row 2: z = (0, 0, log 2), label 0 -> p = (1/4, 1/4, 1/2): H = 1.5 log 2, top-1 1/2, w 3/4
    z = [[math.log(2), 0.0, 0.0], [0.0, 0.0, math.log(2)]]
    c = curve(z, [0, 0], [1.0])
    assert c.entropy[0] == pytest.approx(1.5 * math.log(2), rel=1e-15)
    assert c.top1[0] == pytest.approx(0.5, rel=1e-15)
    assert c.gamma[0] == pytest.approx((0.5 + 0.75) / 2 * 3 / 2, rel=1e-15)  # 0.9375
    # the same rows at T = 2 are z = (2 log 2, 0, 0) etc.: the same soft targets
    c2 = curve(np.asarray(z) * 2, [0, 0], [2.0])
    assert c2.gamma[0] == pytest.approx(0.9375, rel=1e-15)
    assert c2.entropy[0] == pytest.approx(1.5 * math.log(2), rel=1e-15)


def test_hand_example_with_e() -> None:
    e = math.e
    c = curve([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [0, 2], [1.0])
    w1 = 2 / (e**2 + 2)  # label 0 has e^2 / (e^2 + 2)
    w2 = 1 - 1 / (e + 2)  # label 2 has 1 / (e + 2)
    assert c.gamma[0] == pytest.approx((w1 + w2) / 2 * 1.5, rel=1e-14)
    assert c.top1[0] == pytest.approx((e**2 / (e**2 + 2) + e / (e + 2)) / 2, rel=1e-14)


def test_soft_labels_weigh_the_wrong_mass() -> None:
    # p = (1/2, 1/4, 1/4); y = (0.5, 0.5, 0): wrong mass = 0.5 * 1/2 + 0.5 * 1/4 + 1 * 1/4
    z = [[math.log(2), 0.0, 0.0]]
    c = curve(z, np.array([[0.5, 0.5, 0.0]]), [1.0])
    assert c.soft_labels
    assert c.gamma[0] == pytest.approx((0.25 + 0.125 + 0.25) * 1.5, rel=1e-15)


def test_probability_inputs_keep_exact_zeros() -> None:
    p = Predictions.from_arrays([[0.8, 0.2, 0.0]], [0], kind="probs")
    c = teacher_curve(p, [2.0])  # soft targets (2/3, 1/3, 0): 0 log 0 = 0, 0^(1/T) = 0
    h = -(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3)
    assert c.entropy[0] == pytest.approx(h, rel=1e-14)
    assert c.gamma[0] == pytest.approx(1 / 3 * 1.5, rel=1e-14)
    out = SoftTargetScaler(2.0).transform(np.array([[0.8, 0.2, 0.0]]), "probs")
    assert out[0, 2] == 0.0
    assert out[0].tolist() == pytest.approx([2 / 3, 1 / 3, 0.0], rel=1e-15)


def test_gamma_exceeds_one_on_confident_mistakes() -> None:
    # all the mass on a wrong class: w = 1, gamma = K / (K - 1), the top of its range
    c = curve([[50.0, 0.0, 0.0]], [1], [1.0])
    assert c.gamma[0] == pytest.approx(1.5, rel=1e-15)
    assert c.gamma[0] > 1


# -- an independent formula ---------------------------------------------------------------------


@pytest.mark.parametrize("soft", [False, True])
def test_against_scipy(rng: np.random.Generator, soft: bool) -> None:
    z = rng.normal(scale=4.0, size=(300, 7))
    y = rng.integers(0, 7, 300)
    labels = rng.dirichlet(np.ones(7), 300) if soft else y
    temps = [0.5, 1.0, 2.0, 3.0, 8.0]
    c = curve(z, labels, temps)
    for j, t in enumerate(temps):
        h, top1, gamma = direct(z, labels, t)
        assert c.entropy[j] == pytest.approx(h, rel=1e-12)
        assert c.top1[j] == pytest.approx(top1, rel=1e-12)
        assert c.gamma[j] == pytest.approx(gamma, rel=1e-12)


def test_soft_targets_against_scipy(rng: np.random.Generator) -> None:
    z = rng.normal(scale=3.0, size=(50, 4))
    for t in (0.3, 1.0, 4.0):
        ref = np.exp(z / t - logsumexp(z / t, axis=1, keepdims=True))
        got = soft_targets(z, t)
        np.testing.assert_allclose(got, ref, rtol=1e-13, atol=0)
        assert np.abs(got.sum(axis=1) - 1).max() <= 4e-16
    before = z.copy()
    soft_targets(z, 2.0)
    assert np.array_equal(z, before)  # the caller's array stays as it was


# -- properties ---------------------------------------------------------------------------------

_logits = st.integers(2, 8).flatmap(
    lambda k: st.integers(1, 30).flatmap(
        lambda n: arrays(np.float64, (n, k), elements=st.floats(-30, 30, width=64))
    )
)
_temps = [0.25, 0.5, 1.0, 2.0, 4.0, 16.0, 100.0]


@settings(max_examples=60, deadline=None)
@given(z=_logits, seed=st.integers(0, 2**31 - 1))
def test_ranges_and_monotonicity(z: np.ndarray, seed: int) -> None:
    n, k = z.shape
    y = np.random.default_rng(seed).integers(0, k, n)
    c = curve(z, y, _temps)
    tol = 1e-12
    assert (c.entropy >= 0).all() and (c.entropy <= math.log(k) + tol).all()
    assert (c.top1 >= 1 / k - tol).all() and (c.top1 <= 1 + tol).all()
    assert (c.gamma >= 0).all() and (c.gamma <= k / (k - 1) + tol).all()
    assert (np.diff(c.entropy) >= -1e-12).all()  # softer with T
    assert (np.diff(c.top1) <= 1e-12).all()


@settings(max_examples=60, deadline=None)
@given(z=_logits)
def test_gamma_rises_with_t_when_the_label_is_the_top_class(z: np.ndarray) -> None:
    y = np.argmax(z, axis=1)
    c = curve(z, y, _temps)
    assert (np.diff(c.gamma) >= -1e-12).all()
    far = curve(z, y, [1e7])
    assert far.gamma[0] == pytest.approx(1.0, abs=1e-5)  # uniform: (1 - 1/K) K / (K - 1)
    assert far.entropy[0] == pytest.approx(math.log(z.shape[1]), abs=1e-9)


# -- chunks, extremes, argument checks ----------------------------------------------------------


def test_chunk_size_does_not_change_a_bit(rng: np.random.Generator) -> None:
    n = 9426
    z = rng.normal(scale=3.0, size=(n, 5))
    y = rng.integers(0, 5, n)
    temps = [1.0, 2.0, 3.5]
    ref = curve(z, y, temps, chunk_rows=n)
    for rows in (1, 1000, 333, 4095, 4097, 7919):
        c = curve(z, y, temps, chunk_rows=rows)
        assert np.array_equal(c.gamma, ref.gamma)
        assert np.array_equal(c.entropy, ref.entropy)
        assert np.array_equal(c.top1, ref.top1)
    h, _, g = direct(z, y, 2.0)
    assert ref.gamma[1] == pytest.approx(g, rel=1e-12)
    assert ref.entropy[1] == pytest.approx(h, rel=1e-12)


def test_huge_logits_do_not_overflow() -> None:
    z = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]])
    y = np.array([0, 2])
    temps = [0.01, 1.0, 100.0, 1e4, 1e8]
    c = curve(z, y, temps)
    assert np.isfinite(c.entropy).all() and np.isfinite(c.gamma).all()
    assert c.entropy[1] == 0.0 and c.top1[1] == 1.0
    assert c.gamma[1] == pytest.approx((0 + 1) / 2 * 1.5)  # row 2's label gets exp(-1e4)
    for j, t in enumerate(temps[2:], start=2):
        h, top1, g = direct(z, y, t)
        assert c.entropy[j] == pytest.approx(h, rel=1e-12, abs=1e-300)
        assert c.top1[j] == pytest.approx(top1, rel=1e-12)
        assert c.gamma[j] == pytest.approx(g, rel=1e-12)
    s = soft_targets(z, 0.001)
    assert np.isfinite(s).all() and s.sum(axis=1).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("t", [0.0, -1.0, math.inf, math.nan, True, "2"])
def test_temperature_must_be_positive_and_finite(t: object) -> None:
    with pytest.raises(UsageError, match="finite number > 0"):
        soft_targets([[1.0, 0.0]], t)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        curve([[1.0, 0.0]], [0], [t])  # type: ignore[list-item]


def test_argmax_changes_of_float32_are_counted() -> None:
    z = np.array([[1.0, 1.0 + 1e-9, 0.0], [0.0, 3.0, 1.0], [2.0, 2.0 + 1e-10, 2.0 - 1e-10]])
    y = np.array([1, 1, 0])
    p = Predictions.from_arrays(z, y, kind="logits")
    s32 = soft_target_summary(p, 2.0, dtype=np.float32)
    assert (s32.argmax_changed, s32.examples, s32.dtype) == (2, (0, 2), "float32")
    s64 = soft_target_summary(p, 2.0, dtype=np.float64)
    assert s64.argmax_changed == 0
    assert s64.curve.gamma[0] == pytest.approx(direct(z, y, 2.0)[2], rel=1e-13)
    with pytest.raises(UsageError, match="float32 or float64"):
        soft_target_summary(p, 2.0, dtype=np.float16)


# -- golden numbers on the bundled sample data ---------------------------------------------------

#: gamma(T) at T = 1, 2, 4, 8 (4 decimals), measured once by calibkit and checked below by the
#: independent formula on the arrays read with numpy.
GOLDEN = {
    "hard": (0.1397, 0.1600, 0.2546, 0.5135),
    "ls05": (0.2176, 0.5469, 0.8193, 0.9269),
    "ls10": (0.2762, 0.6289, 0.8556, 0.9404),
    "ls20": (0.3713, 0.7157, 0.8895, 0.9531),
}


@pytest.mark.parametrize("model", sorted(GOLDEN))
def test_golden_gamma_on_sample_data(model: str) -> None:
    from calibkit.loaders import read_predictions

    path = SAMPLE / f"digits_{model}_test.npz"
    temps = [1.0, 2.0, 4.0, 8.0]
    c = teacher_curve(read_predictions(path), temps)
    with np.load(path, allow_pickle=False) as f:
        z, y = f["logits"], f["labels"]
    assert c.n == len(y) == 450
    for j, t in enumerate(temps):
        h, top1, g = direct(z, y, t)
        assert c.gamma[j] == pytest.approx(g, rel=1e-12)
        assert c.entropy[j] == pytest.approx(h, rel=1e-12)
        assert c.top1[j] == pytest.approx(top1, rel=1e-12)
    assert np.round(c.gamma, 4).tolist() == list(GOLDEN[model])


def test_exact_sums(rng: np.random.Generator) -> None:
    from fractions import Fraction

    from calibkit.diagnostics.distillation import exact_mean, exact_sums

    values = rng.random(10_000) * 20
    values[:8] = [0.0, 1e-300, 5e-324, 19.999999999, 2.0**-89, 0.1, 3.7e-42, 7.25]
    exact = sum(Fraction(v) for v in values.tolist())
    (total,) = exact_sums(values[None, :])
    assert Fraction(total, 2**1080) == exact
    assert exact_mean(total, values.size) == float(exact / values.size)
    parts = exact_sums(values[None, :3333])[0] + exact_sums(values[None, 3333:])[0]
    assert parts == total
    assert math.isnan(exact_mean(0, 0))


@pytest.mark.parametrize("t", [1e-320, 5e-309])
def test_a_temperature_whose_inverse_overflows_is_refused(t: float) -> None:
    """Regression: T = 1e-320 gave top-1 mass 0 (below 1/K, impossible) and gamma 0, exit 0."""
    z = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    y = np.array([0, 2])
    with pytest.raises(UsageError, match="1/T overflows"):
        teacher_curve(Predictions.from_arrays(z, y), [t])
    with pytest.raises(UsageError, match="1/T overflows"):
        check_temperature(t)
    tiny = teacher_curve(Predictions.from_arrays(z, y), [1e-308])  # the smallest allowed: argmax
    assert tiny.top1.tolist() == [1.0] and tiny.gamma.tolist() == [pytest.approx(0.75)]
