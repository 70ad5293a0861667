"""The binary maps of #15 against independent computations: ``isotonic`` against
scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``, ``platt`` against a one-feature
``LogisticRegression`` without penalty (``C=np.inf``, scikit-learn 1.8's spelling of
``penalty=None``) on the logit of the confidence, ``beta`` against a direct
scipy fit of its constrained objective (and against ``betacal`` when it is installed),
``histogram`` against a hand computation."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from calibkit.calibrators import registry
from calibkit.calibrators.beta import BetaCalibration
from calibkit.calibrators.histogram import HistogramBinning
from calibkit.calibrators.isotonic import IsotonicRegression
from calibkit.calibrators.platt import PlattScaler
from calibkit.sources.predictions import Predictions


def _logits(seed: int, n: int, k: int, *, scale: float = 2.0, temper: float = 0.6) -> Any:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * scale
    p = np.exp(z * temper)
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return z, np.minimum(y, k - 1)


def _softmax(z: NDArray[np.float64]) -> NDArray[np.float64]:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
    return out


def _top(z: NDArray[np.float64], y: NDArray[np.intp]) -> tuple[Any, Any]:
    p = _softmax(z)
    return p.max(axis=1), (p.argmax(axis=1) == y).astype(float)


@pytest.mark.parametrize("rounding", [None, 2])
def test_isotonic_equals_sklearn_top_label(rounding: int | None) -> None:
    from sklearn.isotonic import IsotonicRegression as SkIso

    z, y = _logits(0, 4000, 6)
    conf, correct = _top(z, y)
    kind = "logits"
    scores: Any = z
    if rounding is not None:  # many ties: equal confidences must pool as scikit-learn pools them
        p = _softmax(z)
        top = p.argmax(axis=1)
        conf = np.maximum(np.round(conf, rounding), 0.2)  # > 1/6: still the top class
        scores = np.repeat(((1 - conf) / 5)[:, None], 6, axis=1)  # the rest shared equally
        scores[np.arange(len(y)), top] = conf
        kind = "probs"
        correct = (top == y).astype(float)
    cal = IsotonicRegression.fit_source(Predictions.from_arrays(scores, y, kind=kind))
    sk = SkIso(out_of_bounds="clip").fit(conf, correct)
    zt, _ = _logits(1, 2000, 6, scale=3.0)  # new data, some confidences beyond the fitted range
    ct = _softmax(zt).max(axis=1)
    ours = cal.map_values(_cols(cal, zt))[:, 0]
    np.testing.assert_allclose(ours, sk.predict(ct), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(cal.maps[0][0], sk.X_thresholds_)
    np.testing.assert_allclose(cal.maps[0][1], sk.y_thresholds_, atol=1e-14)


def _cols(cal: Any, z: NDArray[np.float64]) -> Any:
    from calibkit.calibrators.reductions import columns

    return columns(z, None, "logits", cal.reduction)


def test_isotonic_one_vs_all_equals_sklearn_per_class() -> None:
    from sklearn.isotonic import IsotonicRegression as SkIso

    z, y = _logits(2, 3000, 4)
    cal = IsotonicRegression.fit_source(Predictions.from_arrays(z, y), reduction="ova")
    p = _softmax(z)
    zt, _ = _logits(3, 500, 4)
    pt = _softmax(zt)
    q = np.column_stack(
        [SkIso(out_of_bounds="clip").fit(p[:, k], y == k).predict(pt[:, k]) for k in range(4)]
    )
    want = q / q.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(cal.transform(zt), want, atol=1e-12)


def test_platt_equals_one_feature_logistic_regression() -> None:
    from sklearn.linear_model import LogisticRegression

    z, y = _logits(4, 5000, 10)
    conf, correct = _top(z, y)
    cal = PlattScaler.fit_source(Predictions.from_arrays(z, y))
    assert cal.reduction == "top" and cal.outcome is not None and cal.outcome.converged
    # the feature: the logit of the confidence, log c - log(1 - c)
    x = np.log(conf) - np.log1p(-conf)
    lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(x[:, None], correct)
    a, b = cal.maps[0]
    assert a == pytest.approx(lr.coef_[0, 0], abs=1e-6)
    assert b == pytest.approx(lr.intercept_[0], abs=1e-6)
    zt, _ = _logits(5, 1000, 10)
    ct = _softmax(zt).max(axis=1)
    want = lr.predict_proba((np.log(ct) - np.log1p(-ct))[:, None])[:, 1]
    got = cal.transform(zt)[np.arange(1000), zt.argmax(axis=1)]
    assert (got >= want - 1e-6).all()  # top-vs-all only ever raises a confidence (to q*)
    # ... every row whose fitted confidence stayed above the top-vs-all floor equals it exactly
    raised = got > want + 1e-9
    np.testing.assert_allclose(got[~raised], want[~raised], atol=1e-6)
    assert cal.outcome.to_dict()["relative_gradient"] <= 1e-8


def test_platt_binary_is_fitted_on_the_logit_not_the_probability() -> None:
    """On K = 2 logits [0, z] the feature is z itself (not sigmoid(z): scikit-learn#34312)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(6)
    s = rng.normal(size=3000) * 3
    y = (rng.random(3000) < 1 / (1 + np.exp(-(0.5 * s - 0.3)))).astype(int)
    cal = PlattScaler.fit_source(Predictions.from_arrays(s, y, kind="logits"))
    assert cal.reduction == "binary"
    lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(s[:, None], y)
    np.testing.assert_allclose(cal.maps[0], [lr.coef_[0, 0], lr.intercept_[0]], atol=1e-6)
    out = cal.transform(np.column_stack([np.zeros(3000), s]))
    np.testing.assert_allclose(out[:, 1], lr.predict_proba(s[:, None])[:, 1], atol=1e-6)


def _beta_objective(theta: Any, lp: Any, l1p: Any, t: Any) -> float:
    s = theta[0] * lp - theta[1] * l1p + theta[2]
    return float(np.mean(np.logaddexp(0.0, s) - t * s))


@pytest.mark.parametrize("flip", [False, True])
def test_beta_equals_a_bounded_scipy_fit(flip: bool) -> None:
    """Unconstrained optimum inside the box (flip False) and outside it (flip True: the data say
    higher confidence, less often right, so the optimum needs a < 0 and the constraint binds)."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(7)
    p = rng.beta(2, 2, size=4000)
    truth = 1 / (1 + np.exp(-(3 * (p - 0.5)) * (-1 if flip else 1)))
    y = (rng.random(4000) < truth).astype(int)
    scores = np.column_stack([1 - p, p])
    cal = BetaCalibration.fit_source(Predictions.from_arrays(scores, y, kind="probs"))
    assert cal.outcome is not None and cal.outcome.converged
    lp, l1p = np.log(p), np.log1p(-p)
    res = minimize(
        _beta_objective,
        x0=[1.0, 1.0, 0.0],
        args=(lp, l1p, y),
        method="L-BFGS-B",
        bounds=[(0, None), (0, None), (None, None)],
        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000},
    )
    ours = cal.maps[0]
    assert _beta_objective(ours, lp, l1p, y) <= res.fun + 1e-12
    np.testing.assert_allclose(ours, res.x, atol=1e-5)
    assert cal.outcome.objective == pytest.approx(res.fun, abs=1e-10)
    if flip:
        assert min(ours[0], ours[1]) == 0.0  # the constraint is active


@pytest.mark.skipif(importlib.util.find_spec("betacal") is None, reason="betacal not installed")
def test_beta_equals_betacal() -> None:
    from betacal import BetaCalibration as Reference

    rng = np.random.default_rng(8)
    p = rng.beta(2, 3, size=3000)
    y = (rng.random(3000) < p**1.5).astype(int)
    cal = BetaCalibration.fit_source(
        Predictions.from_arrays(np.column_stack([1 - p, p]), y, kind="probs")
    )
    ref = Reference(parameters="abm").fit(p[:, None], y)
    pt = np.linspace(0.01, 0.99, 99)
    ours = cal.transform(np.column_stack([1 - pt, pt]), kind="probs")[:, 1]
    # betacal stops at scikit-learn's default tolerance (1e-4): the maps agree to ~1e-3 ...
    np.testing.assert_allclose(ours, ref.predict(pt[:, None]), atol=1e-3)

    # ... and ours reaches an equal or lower NLL on the data both were fitted on
    def nll(q: Any) -> float:
        q = np.clip(q, 1e-300, 1 - 1e-16)
        return float(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)))

    mine = cal.transform(np.column_stack([1 - p, p]), kind="probs")[:, 1]
    assert nll(mine) <= nll(ref.predict(p[:, None])) + 1e-12


def test_histogram_by_hand() -> None:
    """3 equal-width bins over K = 2 probabilities (binary reduction): bin means by hand, the
    empty middle bin at its midpoint, a score on an edge in the lower bin."""
    p1 = np.array([0.1, 0.2, 1 / 3, 0.7, 0.8, 0.9, 1.0])
    y = np.array([0, 1, 1, 1, 0, 1, 1])
    cal = HistogramBinning.fit_source(
        Predictions.from_arrays(np.column_stack([1 - p1, p1]), y, kind="probs"), bins=3
    )
    upper, values = cal.maps[0]
    np.testing.assert_array_equal(upper, [1 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(values, [2 / 3, 0.5, 3 / 4])
    q = cal.transform(np.array([[0.5, 0.5], [0.0, 1.0], [1.0, 0.0]]), kind="probs")
    np.testing.assert_allclose(q, [[0.5, 0.5], [0.25, 0.75], [1 / 3, 2 / 3]])


def test_histogram_equal_mass_never_splits_ties() -> None:
    p1 = np.array([0.2, 0.2, 0.2, 0.2, 0.5, 0.6, 0.7, 0.8])
    y = np.array([1, 0, 0, 0, 1, 1, 0, 1])
    cal = HistogramBinning.fit_source(
        Predictions.from_arrays(np.column_stack([1 - p1, p1]), y, kind="probs"),
        bins=4,
        binning="mass",
    )
    upper, values = cal.maps[0]
    # ranks ceil(b*8/4) - 1 = 1, 3, 5, 7 -> edges 0.2, 0.2, 0.6, 0.8: the repeated edge merges
    np.testing.assert_array_equal(upper, [0.2, 0.6, 0.8])
    np.testing.assert_allclose(values, [1 / 4, 1.0, 1 / 2])
    assert cal.parameters() == {"bins": 4} and cal.fit_details()["steps"] == 3


def test_every_method_round_trips_through_registry_load(tmp_path: Any) -> None:
    z, y = _logits(9, 800, 3)
    src = Predictions.from_arrays(z, y)
    for cls in (HistogramBinning, IsotonicRegression, PlattScaler, BetaCalibration):
        for reduction in ("top", "ova"):
            cal = cls.fit_source(src, reduction=reduction)
            path = tmp_path / f"{cls.method}-{reduction}.json"
            path.write_text(cal.to_json())
            back = registry.load(path)
            assert type(back) is cls and back.reduction == reduction
            np.testing.assert_array_equal(back.transform(z), cal.transform(z))
            assert back.parameters() == cal.parameters()
            assert back.changes_argmax is (reduction == "ova")
            if cls in (PlattScaler, BetaCalibration):
                assert back.to_dict()["fit"] == cal.to_dict()["fit"]
                assert math.isfinite(back.to_dict()["fit"]["objective"])


SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "external-logits"


@pytest.mark.skipif(
    not SHARED.is_dir(), reason="no ../shared/external-logits beside the project root"
)
@pytest.mark.parametrize("method", ["histogram", "isotonic"])
@pytest.mark.filterwarnings("ignore:.*probability of exactly 0")
def test_on_real_logits_one_vs_all_changes_accuracy_and_top_vs_all_does_not(method: str) -> None:
    """Guo et al. 2017: one-versus-all binning hurts accuracy; top-versus-all keeps it exactly
    (a CIFAR-100 ResNet-110 of Mukhoti et al. 2020; see ../shared/external-logits/README.md)."""
    from calibkit.calibrators.base import CalibratedPredictions
    from calibkit.loaders import read_predictions
    from calibkit.metrics import summarize

    folder = SHARED / "mukhoti20_c100_resnet110_brier"
    val = read_predictions(str(folder / "val.npz"))
    test = read_predictions(str(folder / "test.npz"))
    before = summarize(test).accuracy
    cls = registry.get(method)
    top = summarize(CalibratedPredictions(test, cls.fit_source(val, reduction="top")))
    ova = summarize(CalibratedPredictions(test, cls.fit_source(val, reduction="ova")))
    assert top.accuracy == before
    assert ova.accuracy < before - 0.005  # measured: about 2-3 points lower
