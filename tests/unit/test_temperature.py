"""Temperature scaling: exact fit against an independent reference, edge cases, sweep."""

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import log_softmax, softmax

import calibkit
from calibkit.calibrators import (
    ScaledPredictions,
    TemperatureScaler,
    fit_temperature,
    nll_gradient_hessian,
    sweep_temperatures,
)
from calibkit.calibrators.sweep import temperature_grid
from calibkit.errors import ConvergenceWarning, InputError, UsageError
from calibkit.sources.predictions import Predictions

DATA = Path(__file__).resolve().parents[2] / "sample_data"


def reference_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Root of dNLL/dbeta by bracketing (brentq), with scipy's softmax: independent code."""

    def grad(beta: float) -> float:
        p = softmax(beta * logits, axis=1)
        return float(np.mean((p * logits).sum(axis=1) - logits[np.arange(len(labels)), labels]))

    return 1.0 / brentq(grad, 1e-3, 1e3, xtol=1e-15, rtol=1e-15, maxiter=500)


def synthetic(seed: int, n: int = 4000, k: int = 10, scale: float = 3.0, true_t: float = 1.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=scale, size=(n, k))
    p = softmax(logits / true_t, axis=1)
    labels = (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1)
    return logits, np.minimum(labels, k - 1)


@pytest.mark.parametrize(("seed", "true_t"), [(0, 1.0), (1, 0.2), (2, 10.0), (3, 2.5), (4, 0.5)])
def test_fit_matches_reference_minimiser(seed, true_t) -> None:
    logits, labels = synthetic(seed, true_t=true_t)
    ts = fit_temperature(logits, labels)
    ref = reference_temperature(logits, labels)
    assert ts.temperature == pytest.approx(ref, rel=1e-6)
    assert ts.fit is not None and ts.fit.converged and abs(ts.fit.gradient) <= 1e-10
    assert ts.fit.passes <= 12
    # and the data-generating temperature is recovered roughly
    assert ts.temperature == pytest.approx(true_t, rel=0.25)


@pytest.mark.parametrize("model", ["hard", "ls05", "ls10", "ls20"])
def test_fit_matches_reference_on_sample_data(model) -> None:
    with np.load(DATA / f"digits_{model}_val.npz") as f:
        logits, labels = f["logits"].astype(np.float64), f["labels"]
    ts = fit_temperature(calibkit.read_predictions(DATA / f"digits_{model}_val.npz"))
    assert ts.temperature == pytest.approx(reference_temperature(logits, labels), rel=1e-6)
    assert (ts.temperature > 1) == (model == "hard")  # hard over-, LS under-confident here


def test_refitting_scaled_logits_gives_one() -> None:
    logits, labels = synthetic(5, true_t=3.0)
    ts = fit_temperature(logits, labels)
    again = fit_temperature(ts.transform(logits), labels)
    assert again.temperature == pytest.approx(1.0, rel=1e-8)


def test_scaling_never_changes_the_argmax_or_accuracy() -> None:
    logits, labels = synthetic(6)
    for t in (0.01, 0.3, 1.0, 7.0, 1e3):
        scaled = TemperatureScaler(t).transform(logits)
        assert (scaled.argmax(axis=1) == logits.argmax(axis=1)).all()
        assert calibkit.accuracy(scaled, labels) == calibkit.accuracy(logits, labels)


def test_gradient_and_hessian_match_finite_differences() -> None:
    logits, labels = synthetic(7, n=500)
    preds = Predictions.from_arrays(logits, labels)
    beta, h = 0.7, 1e-5
    f, g, hess = nll_gradient_hessian(preds, beta)
    fp, gp, _ = nll_gradient_hessian(preds, beta + h)
    fm, gm, _ = nll_gradient_hessian(preds, beta - h)
    assert g == pytest.approx((fp - fm) / (2 * h), rel=1e-6)
    assert hess == pytest.approx((gp - gm) / (2 * h), rel=1e-6)
    nll = -np.mean(log_softmax(beta * logits, axis=1)[np.arange(500), labels])
    assert f == pytest.approx(nll, rel=1e-12)


def test_binary_single_logit_fits_like_two_columns() -> None:
    rng = np.random.default_rng(8)
    z = rng.normal(scale=4, size=3000)
    y = (rng.random(3000) < 1 / (1 + np.exp(-z / 2.0))).astype(int)
    one = fit_temperature(z, y).temperature
    two = fit_temperature(np.stack([np.zeros_like(z), z], axis=1), y).temperature
    assert one == pytest.approx(two, rel=1e-12)
    assert one == pytest.approx(2.0, rel=0.15)


def test_soft_labels_fit_cross_entropy() -> None:
    logits, labels = synthetic(9, n=2000, k=4)
    onehot = np.eye(4)[labels]
    assert fit_temperature(logits, onehot).temperature == pytest.approx(
        fit_temperature(logits, labels).temperature, rel=1e-10
    )


def test_probabilities_are_fitted_on_their_logs() -> None:
    logits, labels = synthetic(10, n=2000, true_t=2.0)
    probs = softmax(logits, axis=1)
    from_probs = fit_temperature(probs, labels, kind="probs").temperature
    assert from_probs == pytest.approx(fit_temperature(logits, labels).temperature, rel=1e-6)


def test_saturated_probabilities_warn() -> None:
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.3, 0.7], [1.0, 0.0]], dtype=np.float32)
    with pytest.warns(UserWarning, match="saturated probabilities is biased"):
        fit_temperature(probs, [0, 1, 0, 1], kind="probs")


def test_all_right_and_confident_clamps_at_t_min() -> None:
    logits = np.array([[5.0, 0.0], [0.0, 5.0], [4.0, 1.0]])
    with pytest.warns(ConvergenceWarning, match=r"T -> 0.*clamped to 0.0001"):
        ts = fit_temperature(logits, [0, 1, 0])
    assert ts.fit.clamped == "t_min" and ts.temperature == pytest.approx(1e-4)


def test_all_wrong_clamps_at_t_max() -> None:
    logits = np.array([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    with pytest.warns(ConvergenceWarning, match="clamped to 10000"):
        ts = fit_temperature(logits, [1, 2])
    assert ts.fit.clamped == "t_max" and ts.temperature == pytest.approx(1e4)


def test_custom_range_is_respected() -> None:
    logits, labels = synthetic(11, true_t=5.0)
    with pytest.warns(ConvergenceWarning, match="clamped to 2"):
        ts = fit_temperature(logits, labels, t_min=0.5, t_max=2.0)
    assert ts.temperature == 2.0
    with pytest.raises(UsageError, match="t_min < t_max"):
        fit_temperature(logits, labels, t_min=3.0, t_max=2.0)


def test_single_example_and_single_class() -> None:
    with pytest.warns(ConvergenceWarning, match="no better than uniform"):
        ts = fit_temperature(np.array([[2.0, 1.0, 0.0]]), [1])  # label at the mean logit
    assert ts.temperature == pytest.approx(1e4)
    with pytest.warns(ConvergenceWarning, match="right and confident"):
        ts = fit_temperature(np.array([[2.0, 1.0, 0.0]]), [0])  # one right example: T -> 0
    assert ts.fit.clamped == "t_min"
    logits, _ = synthetic(12, n=300, k=3)
    labels = np.zeros(300, dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ts = fit_temperature(logits, labels)
    assert ts.temperature == pytest.approx(reference_temperature(logits, labels), rel=1e-6)


def test_constant_logits_keep_t_equal_one() -> None:
    ts = fit_temperature(np.ones((5, 3)), [0, 1, 2, 0, 1])
    assert ts.temperature == 1.0 and ts.fit.converged


def test_huge_logits_do_not_overflow() -> None:
    logits, labels = synthetic(13, n=1000, scale=3.0, true_t=1.0)
    big = logits * 1e3  # saturated: optimum near T = 1000
    ts = fit_temperature(big.astype(np.float32), labels)
    assert ts.temperature == pytest.approx(
        1e3 * fit_temperature(logits, labels).temperature, rel=1e-4
    )


def test_chunk_size_does_not_change_the_fit() -> None:
    logits, labels = synthetic(14, n=3000)
    preds = Predictions.from_arrays(logits, labels)
    a = fit_temperature(preds, chunk_rows=7).temperature
    b = fit_temperature(preds, chunk_rows=100_000).temperature
    assert a == pytest.approx(b, rel=1e-12)


def test_calibrator_json_round_trip_and_validation(tmp_path) -> None:
    logits, labels = synthetic(15, n=500)
    ts = fit_temperature(logits, labels)
    path = tmp_path / "cal.json"
    path.write_text(ts.to_json())
    back = TemperatureScaler.load(path)
    assert back.temperature == ts.temperature and back.fit == ts.fit
    doc = ts.to_dict()
    assert doc["calibkit_calibrator"] == 1 and doc["method"] == "temperature"
    for bad, msg in [
        ("[]", "must be a JSON object"),
        ('{"calibkit_calibrator": 2}', "not a calibkit calibrator of format 1"),
        ('{"calibkit_calibrator": 1, "method": "no-such-method"}', "unknown calibration method"),
        ('{"calibkit_calibrator": 1, "method": "temperature", "temperature": -1}', "> 0"),
        ("{", "not valid JSON"),
    ]:
        with pytest.raises(InputError, match=msg):
            TemperatureScaler.from_json(bad)
    with pytest.raises(UsageError):
        TemperatureScaler(0.0)


def test_scaled_predictions_stream_scaled_logits() -> None:
    logits, labels = synthetic(16, n=100)
    view = ScaledPredictions(Predictions.from_arrays(logits, labels), 0.5)
    z = np.concatenate([c for c, _ in view.chunks(13)])
    np.testing.assert_array_equal(z, logits * 0.5)


def test_sweep_matches_per_temperature_evaluation_and_fitted_t() -> None:
    logits, labels = synthetic(17, n=3000, true_t=1.7)
    preds = Predictions.from_arrays(logits, labels)
    grid = temperature_grid(0.5, 3.0, 51)
    sw = sweep_temperatures(preds, grid, chunk_rows=500)
    for i in (0, 10, 37, 50):
        ref = calibkit.evaluate(logits / grid[i], labels)
        assert sw.ece[i] == pytest.approx(ref.ece, abs=1e-12)
        assert sw.nll[i] == pytest.approx(ref.nll, abs=1e-12)
        assert sw.brier[i] == pytest.approx(ref.brier, abs=1e-12)
    t_best, _ = sw.best("nll")
    assert abs(t_best - fit_temperature(preds).temperature) <= grid[1] - grid[0]
    assert sw.accuracy == calibkit.accuracy(logits, labels)


def test_grid_validation() -> None:
    assert temperature_grid(1.0, 1.0, 1).tolist() == [1.0]
    for args in ((0.0, 1.0, 5), (2.0, 1.0, 5), (0.5, 1.0, 1)):
        with pytest.raises(UsageError):
            temperature_grid(*args)
    assert math.isclose(temperature_grid(0.5, 3.0, 51)[10], 1.0)
