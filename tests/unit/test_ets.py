"""Ensemble temperature scaling (``ets``, Zhang et al. 2020): the exact weight fit against an
independent scipy SLSQP solve of Zhang's objective, the temperature against TS, the JSON
document, chunk-size invariance, the argmax (hypothesis), probability inputs and extremes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize, minimize_scalar

from calibkit.calibrators import registry
from calibkit.calibrators.base import CalibratedPredictions, Calibrator
from calibkit.calibrators.ets import EnsembleTemperatureScaler, fit_ets, simplex_qp
from calibkit.calibrators.temperature import fit_temperature
from calibkit.errors import InputError, UsageError
from calibkit.metrics.summary import summarize
from calibkit.sources.predictions import Predictions


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _noisy(seed: int, n: int = 3000, k: int = 6, spread: float = 1.0) -> tuple[np.ndarray, ...]:
    """Over-confident logits with 20 % of labels random: the optimum mixes in the uniform."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    z = rng.normal(size=(n, k)) * 2 + 5 * np.eye(k)[true]
    noisy = rng.random(n) < 0.2
    y = np.where(noisy, rng.integers(0, k, n), true)
    z[: n // 2] *= spread
    return z, y


def _zhang_weights(z: np.ndarray, y: np.ndarray, t: float) -> tuple[np.ndarray, float]:
    """Zhang et al.'s weight fit, written here from the paper's definition: the mean over all
    N x K entries of the squared error of w1 softmax(z/T) + w2 softmax(z) + w3/K, minimised by
    SLSQP on the simplex."""
    n, k = z.shape
    onehot = np.eye(k)[y]
    p0, p1, p2 = _softmax(z / t), _softmax(z), np.full((n, k), 1.0 / k)

    def mse(w: np.ndarray) -> float:
        p = w[0] * p0 + w[1] * p1 + w[2] * p2
        return float(np.mean((p - onehot) ** 2))

    res = minimize(
        mse,
        np.array([1.0, 0.0, 0.0]),
        method="SLSQP",
        bounds=[(0.0, 1.0)] * 3,
        constraints={"type": "eq", "fun": lambda w: np.sum(w) - 1.0},
        tol=1e-14,
        options={"maxiter": 500},
    )
    return res.x, mse(res.x)


@pytest.mark.parametrize(("seed", "spread"), [(0, 1.0), (1, 0.3), (2, 2.5)])
def test_weights_equal_a_scipy_slsqp_solve_of_zhangs_objective(seed: int, spread: float) -> None:
    z, y = _noisy(seed, spread=spread)
    cal = fit_ets(Predictions.from_arrays(z, y, kind="logits"))
    w_ref, f_ref = _zhang_weights(z, y, cal.temperature)
    np.testing.assert_allclose(cal.weights, w_ref, atol=1e-6)
    k = z.shape[1]
    assert cal.fit is not None
    # calibkit's objective is the Brier score: K times Zhang's per-entry mean, same minimiser
    assert cal.fit.objective == pytest.approx(k * f_ref, rel=1e-9)
    assert cal.fit.objective <= k * f_ref + 1e-12  # never worse than SLSQP
    assert cal.fit.converged and cal.fit.gradient_norm <= 1e-12
    assert cal.fit.solver == "active-set" and cal.fit.n == len(y)


def test_the_temperature_is_the_nll_temperature_of_ts() -> None:
    z, y = _noisy(3)
    src = Predictions.from_arrays(z, y, kind="logits")
    cal = fit_ets(src)
    assert cal.temperature == fit_temperature(src).temperature

    def nll(t: float) -> float:
        return float(-np.log(_softmax(z / t)[np.arange(len(y)), y]).mean())

    ref = minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded", options={"xatol": 1e-10})
    assert cal.temperature == pytest.approx(ref.x, rel=1e-6)


def test_the_objective_is_the_brier_score_after_calibration() -> None:
    z, y = _noisy(4, k=5)
    src = Predictions.from_arrays(z, y, kind="logits")
    cal = fit_ets(src)
    assert cal.fit is not None
    after = summarize(CalibratedPredictions(src, cal))
    assert after.brier == pytest.approx(cal.fit.objective, rel=1e-12)
    assert after.brier < summarize(src).brier
    assert cal.fit.passes == (fit_temperature(src).fit.passes + 1)  # type: ignore[union-attr]


def test_outputs_are_probabilities_of_the_mixture() -> None:
    z, _ = _noisy(5, n=50)
    cal = EnsembleTemperatureScaler(1.7, (0.5, 0.3, 0.2))
    p = cal.transform(z, "logits")
    expected = 0.5 * _softmax(z / 1.7) + 0.3 * _softmax(z) + 0.2 / z.shape[1]
    np.testing.assert_allclose(p, expected, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-13)
    # probability inputs: the same map of log p
    np.testing.assert_allclose(cal.transform(_softmax(z), "probs"), expected, rtol=1e-10)
    view = CalibratedPredictions(Predictions.from_arrays(z, np.zeros(50, int)), cal)
    assert view.kind == "probs"


def test_probability_inputs_fit_as_their_logarithms() -> None:
    z, y = _noisy(6, n=1500)
    a = fit_ets(Predictions.from_arrays(z, y, kind="logits"))
    b = fit_ets(Predictions.from_arrays(_softmax(z), y, kind="probs"))
    assert b.temperature == pytest.approx(a.temperature, rel=1e-8)
    np.testing.assert_allclose(b.weights, a.weights, atol=1e-8)
    assert b.input_kind == "probs"


def test_chunk_size_does_not_change_the_fit() -> None:
    z, y = _noisy(7, n=2000)
    src = Predictions.from_arrays(z, y, kind="logits")
    fits = [fit_ets(src, chunk_rows=rows) for rows in (37, 500, 2000)]
    for other in fits[1:]:
        assert other.temperature == pytest.approx(fits[0].temperature, rel=1e-12)
        np.testing.assert_allclose(other.weights, fits[0].weights, atol=1e-12)


def test_soft_labels_use_the_label_distribution() -> None:
    z, y = _noisy(8, n=1000, k=4)
    soft = np.eye(4)[y]
    a = fit_ets(Predictions.from_arrays(z, y, kind="logits"))
    b = fit_ets(Predictions.from_arrays(z, soft, kind="logits"))
    np.testing.assert_allclose(b.weights, a.weights, atol=1e-10)


def test_extreme_logits_do_not_overflow() -> None:
    rng = np.random.default_rng(9)
    y = rng.integers(0, 3, 300)
    z = np.where(np.eye(3)[y] > 0, 1e4, -1e4)
    z[:30] = -z[:30]  # some confidently wrong
    cal = fit_ets(Predictions.from_arrays(z, y, kind="logits"))
    p = cal.transform(z, "logits")
    assert np.all(np.isfinite(p)) and np.all(np.isfinite(cal.weights))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


# --------------------------------------------------------------------------------------------
# the quadratic programme itself


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000))
def test_simplex_qp_matches_slsqp_on_random_problems(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(5, 3))
    a = m.T @ m + (1e-3 if seed % 2 else 0.0) * np.eye(3)
    b = rng.normal(size=3)
    w, f, residual, faces = simplex_qp(a, b)
    assert faces == 7 and w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-15)
    res = minimize(
        lambda x: float(x @ a @ x - 2 * b @ x),
        np.full(3, 1 / 3),
        method="SLSQP",
        bounds=[(0.0, 1.0)] * 3,
        constraints={"type": "eq", "fun": lambda x: np.sum(x) - 1.0},
        tol=1e-14,
    )
    assert f <= res.fun + 1e-9 * max(1.0, abs(res.fun))
    assert residual <= 1e-9 * max(1.0, float(np.abs(a).max()), float(np.abs(b).max()))


def test_kkt_residual_is_zero_only_at_the_optimum() -> None:
    from calibkit.calibrators.ets import kkt_residual

    a, b = np.eye(3), np.array([1.0, 0.0, 0.0])
    assert kkt_residual(a, b, np.array([1.0, 0.0, 0.0])) == 0.0
    assert kkt_residual(a, b, np.array([0.0, 1.0, 0.0])) > 1.0
    assert kkt_residual(a, b, np.array([0.5, 0.5, 0.0])) > 0.5


# --------------------------------------------------------------------------------------------
# the argmax


@settings(max_examples=80, deadline=None)
@given(
    st.integers(2, 6),
    st.integers(0, 10_000),
    st.floats(0.05, 20.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
)
def test_ets_keeps_the_argmax_ties_included(
    k: int, seed: int, t: float, a: float, b: float
) -> None:
    """Distinct logits a unit apart (no rounding ties) plus exact ties (duplicated maxima): the
    first argmax of the mixture is the first argmax of z whenever w3 < 1."""
    rng = np.random.default_rng(seed)
    n = 40
    z = rng.permuted(np.tile(np.arange(k, dtype=float), (n, 1)), axis=1) * 1.0
    z[::3, 0] = z[::3].max(axis=1)  # ties at the maximum, first index kept
    z[1::4, -1] = z[1::4].max(axis=1)
    w3 = min(a, 0.999)
    w1 = (1 - w3) * b
    w = (w1, 1 - w3 - w1, w3)
    cal = EnsembleTemperatureScaler(t, w)
    p = cal.transform(z, "logits")
    assert not cal.changes_argmax
    np.testing.assert_array_equal(p.argmax(axis=1), z.argmax(axis=1))


def test_all_weight_on_the_uniform_makes_every_row_uniform() -> None:
    """The documented exception: w3 = 1 (then the accuracy row of calibkit fit shows it)."""
    z = np.array([[0.0, 3.0, 1.0]])
    p = EnsembleTemperatureScaler(2.0, (0.0, 0.0, 1.0)).transform(z, "logits")
    np.testing.assert_allclose(p, 1 / 3)


# --------------------------------------------------------------------------------------------
# the JSON document and the registry


def test_the_json_document_round_trips(tmp_path: Path) -> None:
    z, y = _noisy(10, n=800)
    cal = fit_ets(Predictions.from_arrays(z, y, kind="logits", source="val.npz"))
    assert registry.get("ets") is EnsembleTemperatureScaler
    assert isinstance(cal, Calibrator)
    back = registry.from_json(cal.to_json())
    assert back == cal and type(back) is EnsembleTemperatureScaler
    path = tmp_path / "ets.json"
    path.write_text(cal.to_json(), encoding="utf-8")
    again = registry.load(path)
    assert again == cal
    np.testing.assert_array_equal(again.transform(z), cal.transform(z))
    doc = json.loads(cal.to_json())
    assert doc["method"] == "ets" and doc["fit"]["converged"] is True
    assert doc["weights"] == list(cal.weights) and doc["n_classes"] == 6
    assert set(cal.parameters()) == {"temperature", "w_scaled", "w_original", "w_uniform"}
    assert EnsembleTemperatureScaler.from_parameters(cal.parameters()).weights == cal.weights


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weights": [0.5, 0.5]}, "weights must be a list of 3 numbers"),
        ({"weights": [0.5, 0.6, -0.1]}, "weights must be >= 0 and sum to 1"),
        ({"weights": [0.5, 0.4, 0.2]}, "weights must be >= 0 and sum to 1"),
        ({"weights": [0.5, "x", 0.5]}, "weights must be 3 finite numbers"),
        ({"temperature": 0}, "temperature must be a finite number > 0"),
        ({"temperature": None}, "temperature must be a finite number > 0"),
        ({"n_classes": 1}, "n_classes must be an integer >= 2"),
        ({"fit": {"objective": 1.0}}, "fit.iterations must be an integer"),
    ],
)
def test_a_bad_document_is_one_error_naming_the_file(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    doc = json.loads(EnsembleTemperatureScaler(2.0, (0.5, 0.3, 0.2), n_classes=3).to_json())
    doc.update(change)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InputError) as info:
        registry.load(path)
    assert str(info.value).startswith(f"{path}: {message}")


def test_bad_parameters_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="sum to 1"):
        EnsembleTemperatureScaler(1.0, (0.5, 0.5, 0.5))
    with pytest.raises(UsageError, match="has the parameters"):
        EnsembleTemperatureScaler.from_parameters({"temperature": 1.0})
    with pytest.raises(UsageError, match="no option 'lambda'"):
        fit_ets(Predictions.from_arrays(*_noisy(0, n=50)), **{"lambda": 1.0})
