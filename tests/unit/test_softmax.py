"""One softmax (#14): :mod:`calibkit.metrics.softmax`, and the fused kernels agree with it."""

from __future__ import annotations

import numpy as np
import pytest

from calibkit.metrics.examples import center_logits, logit_stats
from calibkit.metrics.softmax import log_softmax, softmax


def test_large_logits_are_finite_and_exact() -> None:
    z = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4], [1e300, -1e300, 0.0]])
    p = softmax(z)
    assert np.isfinite(p).all()
    assert p.tolist() == [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0]]
    logp = log_softmax(z[:2])
    assert logp[0].tolist() == [0.0, -1e4, -2e4]
    assert logp[1] == pytest.approx(np.full(3, -np.log(3.0)), rel=1e-15)


def test_shift_invariant_and_normalised(rng: np.random.Generator) -> None:
    z = rng.normal(size=(200, 9)) * 20
    p = softmax(z)
    assert p.dtype == np.float64
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=4e-16)
    np.testing.assert_allclose(softmax(z + 5e3), p, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(np.exp(log_softmax(z)), p, rtol=1e-14, atol=1e-300)


def test_agrees_with_the_definition_in_high_precision(rng: np.random.Generator) -> None:
    z = rng.normal(size=(50, 4)) * 3
    wide = z.astype(np.longdouble)
    e = np.exp(wide - wide.max(axis=1, keepdims=True))
    exact = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(softmax(z), exact.astype(np.float64), rtol=4e-15)  # a few ulp


def test_minus_infinity_gives_exact_zeros() -> None:
    p = softmax(np.array([[0.0, -np.inf, np.log(3.0)]]))
    assert p[0, 1] == 0.0
    assert p[0].round(15).tolist() == [0.25, 0.0, 0.75]


def test_inputs_are_not_changed_unless_overwrite() -> None:
    z = np.array([[1.0, 2.0, 3.0]])
    kept = z.copy()
    softmax(z)
    log_softmax(z)
    assert np.array_equal(z, kept)
    out = softmax(z, overwrite=True)
    assert out is z
    halves = np.array([[1.0, 2.0]], dtype=np.float16)
    assert (
        softmax(halves, overwrite=True).dtype == np.float64
    )  # a float16 input is copied into float64


def test_float32_for_other_libraries_conventions() -> None:
    p = softmax(np.array([[100.0, 0.0, -3.0]]), dtype=np.float32)
    assert p.dtype == np.float32
    assert p[0, 0] == np.float32(1.0)


def test_refuses_other_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        softmax(np.zeros(3))


@pytest.mark.parametrize("beta", [1.0, 0.25, 3.0])
def test_the_fused_kernel_agrees(rng: np.random.Generator, beta: float) -> None:
    """``logit_stats`` never forms the probabilities (see the module docstring) but its numbers
    are those of ``softmax(beta * z)``."""
    z = rng.normal(size=(300, 6)) * 8
    y = rng.integers(0, 6, 300)
    stats = logit_stats(center_logits(z), y, beta=beta)
    p = softmax(beta * z)
    rows = np.arange(len(y))
    np.testing.assert_allclose(stats.confidence, p.max(axis=1), rtol=1e-14)
    np.testing.assert_allclose(stats.log_prob, log_softmax(beta * z)[rows, y], rtol=1e-12)
    onehot = np.eye(6)[y]
    np.testing.assert_allclose(stats.brier, ((p - onehot) ** 2).sum(axis=1), atol=1e-14)
