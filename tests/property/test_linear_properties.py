"""Hypothesis properties of the linear calibrators (#15): their outputs are distributions
(finite at any logits), and a calibrator fitted on data that is already calibrated is close to
the identity map in NLL."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calibkit.calibrators.dirichlet import DirichletCalibrator
from calibkit.calibrators.matrix import MatrixScaler, OdirMatrixScaler
from calibkit.calibrators.vector import VectorScaler
from calibkit.sources.predictions import Predictions

CLASSES = [VectorScaler, MatrixScaler, OdirMatrixScaler, DirichletCalibrator]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    k=st.integers(2, 6),
    n=st.integers(1, 20),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1e-3, 1.0, 30.0, 1e4]),
    which=st.integers(0, len(CLASSES) - 1),
)
def test_outputs_are_distributions(k: int, n: int, seed: int, scale: float, which: int) -> None:
    rng = np.random.default_rng(seed)
    cls = CLASSES[which]
    w = rng.normal(size=(k,) if cls is VectorScaler else (k, k)) * 3
    b = rng.normal(size=k) * 3
    cal = cls(w, b, lam=1.0, mu=1.0)
    z = rng.normal(size=(n, k)) * scale
    p = cal.transform(z - z.max(axis=1, keepdims=True), "logits")
    assert np.isfinite(p).all()
    probs = np.exp(z - z.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    probs = np.maximum(probs, 1e-300)
    probs /= probs.sum(axis=1, keepdims=True)
    out = cal.transform(probs, "probs")
    assert np.isfinite(out).all() and (out >= 0).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)


def _nll(u: np.ndarray, y: np.ndarray) -> float:
    m = u.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(u - m).sum(axis=1))
    return float(np.mean(lse - u[np.arange(len(y)), y]))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(2, 5), seed=st.integers(0, 2**32 - 1), which=st.integers(0, 3))
def test_fitted_on_calibrated_data_is_close_to_identity(k: int, seed: int, which: int) -> None:
    rng = np.random.default_rng(seed)
    n = 4000
    z = rng.normal(size=(n, k)) * 1.5
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.minimum((rng.random((n, 1)) > p.cumsum(axis=1)).sum(axis=1), k - 1)
    cls = CLASSES[which]
    opts = {"lambda": 1.0, "mu": 1.0} if cls.regularised else {}
    cal = cls.fit_source(Predictions.from_arrays(z, y, kind="logits"), **opts)
    assert cal.fit is not None and cal.fit.converged
    # in-sample gain over the identity map is small (overfitting of K^2+K params on n rows)
    gain = _nll(z, y) - _nll(cal.transform(z), y)
    assert gain >= -1e-12  # every method nests the identity (no penalty there)
    assert gain < 0.005 * k
    # and on fresh calibrated data it is no worse than the identity beyond noise
    z2 = rng.normal(size=(n, k)) * 1.5
    p2 = np.exp(z2 - z2.max(axis=1, keepdims=True))
    p2 /= p2.sum(axis=1, keepdims=True)
    y2 = np.minimum((rng.random((n, 1)) > p2.cumsum(axis=1)).sum(axis=1), k - 1)
    assert _nll(cal.transform(z2), y2) - _nll(z2, y2) < 0.005 * k
