"""Agreement with independent implementations (scikit-learn, PyTorch)."""

import itertools

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


@pytest.mark.parametrize("k", [2, 10, 100])
def test_torchmetrics_convention_matches_torchmetrics(k) -> None:
    torch = pytest.importorskip("torch")
    tmc = pytest.importorskip("torchmetrics.functional.classification")
    from calibkit.metrics.conventions import convention_bins
    from calibkit.sources.predictions import Predictions

    rng = np.random.default_rng(k)
    z = (rng.normal(size=(5000, k)) * 3).astype(np.float32)
    y = rng.integers(0, k, 5000)
    ref = tmc.multiclass_calibration_error(
        torch.from_numpy(z), torch.from_numpy(y), num_classes=k, n_bins=15
    ).item()
    got = convention_bins(Predictions.from_arrays(z, y), "torchmetrics").ece()
    assert got == pytest.approx(ref, abs=2e-6)


def test_guo_convention_matches_the_reference_ece_loss() -> None:
    torch = pytest.importorskip("torch")
    from calibkit.metrics.conventions import convention_bins
    from calibkit.sources.predictions import Predictions

    rng = np.random.default_rng(7)
    z = (rng.normal(size=(5000, 10)) * 3).astype(np.float32)
    y = rng.integers(0, 10, 5000)
    # transcription of the _ECELoss loop of the public temperature_scaling code
    conf, pred = torch.softmax(torch.from_numpy(z), 1).max(1)
    acc = pred.eq(torch.from_numpy(y))
    edges = torch.linspace(0, 1, 16)
    ece = torch.zeros(1)
    for lo, hi in itertools.pairwise(edges):
        in_bin = conf.gt(lo.item()) * conf.le(hi.item())
        prop = in_bin.float().mean()
        if prop.item() > 0:
            ece += torch.abs(conf[in_bin].mean() - acc[in_bin].float().mean()) * prop
    got = convention_bins(Predictions.from_arrays(z, y), "guo").ece()
    assert got == pytest.approx(ece.item(), abs=2e-6)


def test_sklearn_convention_bins_like_calibration_curve() -> None:
    calibration = pytest.importorskip("sklearn.calibration")
    from calibkit.metrics.conventions import convention_bins
    from calibkit.sources.predictions import Predictions

    edges = np.linspace(0, 1, 11)
    p1 = np.concatenate([edges, np.random.default_rng(1).random(500)])  # values on edges too
    y = (np.random.default_rng(2).random(p1.size) < p1).astype(int)
    table = convention_bins(Predictions.from_arrays(p1, y, kind="probs"), "sklearn", n_bins=10)
    prob_true, prob_pred = calibration.calibration_curve(y, p1, n_bins=10)
    filled = table.count > 0
    np.testing.assert_allclose(table.accuracy[filled], prob_true, rtol=1e-12)
    np.testing.assert_allclose(table.confidence[filled], prob_pred, rtol=1e-12)


def test_netcal_convention_bins_like_scipy_binned_statistic() -> None:
    # netcal 1.4 clips to [eps, 1 - eps] and bins with scipy's binned_statistic_dd on linspace
    # edges; scipy's binned_statistic applies the same rule in one dimension
    stats = pytest.importorskip("scipy.stats")
    from calibkit.metrics.conventions import convention_bins
    from calibkit.sources.predictions import Predictions

    rng = np.random.default_rng(5)
    z = rng.normal(scale=3, size=(3000, 6))
    z[:50] = 0.0  # confidences of exactly 1/6 ...
    z[50:60, 0] = 50.0  # ... and of 1.0 (clipped to 1 - eps)
    y = rng.integers(0, 6, 3000)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    conf = np.clip(p.max(axis=1), np.finfo(float).eps, 1 - np.finfo(float).eps)
    hit = (p.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0, 1, 16)
    count = stats.binned_statistic(conf, hit, "count", bins=edges).statistic
    acc = stats.binned_statistic(conf, hit, "mean", bins=edges).statistic
    mean_conf = stats.binned_statistic(conf, conf, "mean", bins=edges).statistic
    table = convention_bins(Predictions.from_arrays(z, y), "netcal")
    assert table.count.tolist() == count.astype(int).tolist()
    filled = count > 0
    ref = np.sum(count[filled] / count.sum() * np.abs(acc[filled] - mean_conf[filled]))
    assert table.ece() == pytest.approx(ref, abs=1e-12)


def test_guo_convention_leaves_confidence_zero_out_of_the_bins_but_in_n() -> None:
    from calibkit.metrics.conventions import convention_bins
    from calibkit.sources.predictions import ConfidenceRows

    rows = ConfidenceRows.from_arrays([0.0, 0.9, 0.9], [0, 1, 0])
    table = convention_bins(rows, "guo", n_bins=10)
    assert table.count.sum() == 2 and table.n == 3
    assert table.ece() == pytest.approx(abs(0.5 - 0.9) * 2 / 3, abs=1e-6)  # float32 sums


def test_cli_convention_is_recorded_and_changes_only_the_binned_errors() -> None:
    import json

    from typer.testing import CliRunner

    from calibkit.cli import app

    path = "sample_data/digits_hard_test.npz"
    base = json.loads(CliRunner().invoke(app, ["ece", path, "--json"]).stdout)
    for convention in ("guo", "torchmetrics", "netcal"):
        out = json.loads(
            CliRunner().invoke(app, ["ece", path, "--json", "--convention", convention]).stdout
        )
        assert out["convention"] == convention
        assert out["ece"] == pytest.approx(base["ece"], abs=1e-5)  # no edge cases in this file
        assert (out["nll"], out["brier"], out["accuracy"]) == (
            base["nll"],
            base["brier"],
            base["accuracy"],
        )
    assert base["convention"] == "calibkit"
