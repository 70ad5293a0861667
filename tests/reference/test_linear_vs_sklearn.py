"""The linear calibrators against independent computations (#15): unregularised matrix scaling
is multinomial logistic regression on the logits (scikit-learn, no penalty); vector scaling,
matrix scaling with ODIR and Dirichlet calibration against full-batch scipy solves of the same
objectives written here from the papers (Guo et al. 2017; Kull et al. 2019, ODIR
``λ/(K(K-1)) Σ_{i≠j} W_ij² + μ/K Σ b_j²`` on the mean NLL); and a fit on real logits of
``../shared/external-logits`` (skipped when it is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import log_softmax as sp_log_softmax
from scipy.special import logsumexp

import calibkit
from calibkit.calibrators.dirichlet import DirichletCalibrator
from calibkit.calibrators.matrix import MatrixScaler, OdirMatrixScaler
from calibkit.calibrators.temperature import fit_temperature
from calibkit.calibrators.vector import VectorScaler
from calibkit.sources.predictions import Predictions

SHARED = Path(calibkit.__file__).resolve().parents[2] / "shared" / "external-logits"


def _data(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2.0
    true = 0.5 * z @ (np.eye(k) + 0.2 * rng.normal(size=(k, k))) + rng.normal(size=k) * 0.3
    p = np.exp(true - logsumexp(true, axis=1, keepdims=True))
    y = (rng.random((n, 1)) > p.cumsum(axis=1)).sum(axis=1)
    return z, np.minimum(y, k - 1)


def _nll(u: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(logsumexp(u, axis=1) - u[np.arange(len(y)), y]))


def test_unregularised_matrix_equals_multinomial_logistic_regression() -> None:
    from sklearn.linear_model import LogisticRegression

    z, y = _data(4000, 5, seed=0)
    cal = MatrixScaler.fit_source(Predictions.from_arrays(z, y, kind="logits"))
    assert cal.fit is not None and cal.fit.converged
    lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=100_000)
    lr.fit(z, y)
    ours = _nll(cal.transform(z), y)
    theirs = _nll(lr.decision_function(z), y)
    assert ours == pytest.approx(theirs, abs=1e-6)
    assert ours <= theirs + 1e-12
    assert cal.fit.objective == pytest.approx(ours, rel=1e-12)


def _kull_objective(x: np.ndarray, y: np.ndarray, lam: float, mu: float) -> tuple[object, object]:
    """The ODIR objective and its gradient, full batch, parameters as (K, K+1) = [W | b]."""
    n, k = x.shape
    off = 1.0 - np.eye(k)

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a = theta.reshape(k, k + 1)
        w, b = a[:, :k], a[:, k]
        u = x @ w.T + b
        lp = sp_log_softmax(u, axis=1)
        val = -lp[np.arange(n), y].mean()
        val += lam / (k * (k - 1)) * np.sum((w * off) ** 2) + mu / k * np.sum(b**2)
        r = np.exp(lp)
        r[np.arange(n), y] -= 1.0
        gw = r.T @ x / n + 2 * lam / (k * (k - 1)) * w * off
        gb = r.mean(axis=0) + 2 * mu / k * b
        return float(val), np.hstack([gw, gb[:, None]]).ravel()

    return f, np.hstack([np.eye(k), np.zeros((k, 1))]).ravel()


@pytest.mark.parametrize("method", ["matrix-odir", "dirichlet-odir"])
def test_odir_equals_a_full_batch_solve_of_kulls_objective(method: str) -> None:
    z, y = _data(3000, 4, seed=1)
    lam, mu = 0.3, 0.05
    cls = OdirMatrixScaler if method == "matrix-odir" else DirichletCalibrator
    cal = cls.fit_source(Predictions.from_arrays(z, y, kind="logits"), **{"lambda": lam, "mu": mu})
    assert cal.fit is not None and cal.fit.converged
    x = z if method == "matrix-odir" else sp_log_softmax(z, axis=1)
    f, x0 = _kull_objective(x, y, lam, mu)
    ref = minimize(f, x0, jac=True, method="BFGS", options={"gtol": 1e-11, "maxiter": 10_000})
    k = z.shape[1]
    a = ref.x.reshape(k, k + 1)
    np.testing.assert_allclose(cal.weights, a[:, :k], atol=2e-6)
    np.testing.assert_allclose(cal.bias, a[:, k], atol=2e-6)
    assert cal.fit.objective == pytest.approx(ref.fun, abs=1e-10)
    assert cal.fit.objective <= ref.fun + 1e-12


def test_vector_equals_a_direct_scipy_minimisation() -> None:
    z, y = _data(3000, 6, seed=2)
    k = z.shape[1]

    def f(theta: np.ndarray) -> float:
        u = z * theta[:k] + theta[k:]
        return _nll(u, y)

    ref = minimize(
        f,
        np.concatenate([np.ones(k), np.zeros(k)]),
        method="Nelder-Mead" if k < 3 else "BFGS",
        options={"gtol": 1e-10, "maxiter": 10_000},
    )
    cal = VectorScaler.fit_source(Predictions.from_arrays(z, y, kind="logits"))
    assert cal.fit is not None and cal.fit.converged
    ours = _nll(cal.transform(z), y)
    assert ours == pytest.approx(ref.fun, abs=1e-9)
    assert ours <= ref.fun + 1e-12
    np.testing.assert_allclose(cal.weights, ref.x[:k], atol=1e-4)
    # the bias is defined up to a constant: compare centred
    np.testing.assert_allclose(cal.bias - cal.bias.mean(), ref.x[k:] - ref.x[k:].mean(), atol=1e-4)


def test_vector_nests_temperature_scaling() -> None:
    z, y = _data(2000, 4, seed=3)
    src = Predictions.from_arrays(z, y, kind="logits")
    ts = fit_temperature(src)
    vs = VectorScaler.fit_source(src)
    assert vs.fit is not None
    assert vs.fit.objective <= _nll(z / ts.temperature, y) + 1e-12


@pytest.mark.skipif(not SHARED.is_dir(), reason="no ../shared/external-logits beside the project")
def test_real_logits_fit_and_beat_or_match_ts_in_sample() -> None:
    from calibkit.loaders import read_predictions

    models = [p for p in sorted(SHARED.iterdir()) if (p / "val.npz").is_file()]
    if not models:
        pytest.skip("no model with a val.npz in ../shared/external-logits")
    folder = next((p for p in models if "_c10_" in p.name), models[0])  # K = 10: quick
    src = read_predictions(folder / "val.npz")
    ts = fit_temperature(src)
    assert ts.fit is not None
    ts_nll = ts.fit.nll_after
    for cls, opts in (
        (VectorScaler, {}),
        (OdirMatrixScaler, {"lambda": 1.0, "mu": 1.0}),
        (DirichletCalibrator, {"lambda": 1.0, "mu": 1.0}),
    ):
        cal = cls.fit_source(src, **opts)
        assert cal.fit is not None and cal.fit.converged, (cls.method, cal.fit)
        if cls is VectorScaler:  # nests TS: never worse in sample
            assert cal.fit.objective <= ts_nll + 1e-10
