"""Agreement with independent implementations (scikit-learn, PyTorch)."""

import numpy as np
import pytest

import calibkit


def _data(seed: int, n: int = 3000, k: int = 7):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(n, k))
    labels = rng.integers(0, k, n)
    return logits, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nll_matches_torch_cross_entropy(seed) -> None:
    torch = pytest.importorskip("torch")
    logits, labels = _data(seed)
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels))
    assert calibkit.nll(logits, labels) == pytest.approx(ref.item(), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_nll_matches_sklearn_log_loss(seed) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    logits, labels = _data(seed)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    ref = metrics.log_loss(labels, p, labels=range(7))
    assert calibkit.nll(logits, labels) == pytest.approx(ref, rel=1e-9)


def test_binary_positive_mode_matches_sklearn_calibration_curve() -> None:
    calibration = pytest.importorskip("sklearn.calibration")
    rng = np.random.default_rng(3)
    p1 = rng.random(5000)
    y = (rng.random(5000) < p1**1.5).astype(int)
    s = calibkit.evaluate(p1, y, kind="probs", n_bins=10, binary_mode="positive")
    prob_true, prob_pred = calibration.calibration_curve(y, p1, n_bins=10, strategy="uniform")
    filled = s.bins.count > 0
    # with random p1, no value sits on an edge, so the [lo, hi) and (lo, hi] rules agree
    np.testing.assert_allclose(s.bins.accuracy[filled], prob_true, rtol=1e-12)
    np.testing.assert_allclose(s.bins.confidence[filled], prob_pred, rtol=1e-12)
    # and its brier_score_loss is half of calibkit's two-class Brier
    ref = pytest.importorskip("sklearn.metrics").brier_score_loss(y, p1)
    assert s.brier == pytest.approx(2 * ref, rel=1e-12)


def test_accuracy_matches_argmax() -> None:
    logits, labels = _data(4)
    assert calibkit.accuracy(logits, labels) == np.mean(logits.argmax(axis=1) == labels)
