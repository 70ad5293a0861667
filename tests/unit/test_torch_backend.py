"""The torch backend (``--device``) equals the numpy path; run on the CPU here, on CUDA as is."""

import numpy as np
import pytest

import calibkit
from calibkit.calibrators import fit_temperature
from calibkit.errors import UsageError
from calibkit.metrics import summarize
from calibkit.sources.predictions import Predictions

torch = pytest.importorskip("torch")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
FIELDS = ("accuracy", "ece", "mce", "rmsce", "nll", "brier", "mean_confidence",
          "saturated_fraction")  # fmt: skip


def _data(kind: str, labels: str, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = (rng.normal(size=(3000, k)) * 4).astype(np.float32)
    z[:5] = 1e4 * np.sign(z[:5])  # saturated rows
    y = rng.integers(0, k, 3000)
    scores = z
    if kind == "probs":
        e = np.exp(z.astype(np.float64) - z.max(axis=1, keepdims=True))
        scores = e / e.sum(axis=1, keepdims=True)
    lab = np.eye(k)[y] * 0.8 + 0.2 / k if labels == "soft" else y
    return Predictions.from_arrays(scores, lab, kind=kind)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["logits", "probs"])
@pytest.mark.parametrize("labels", ["hard", "soft"])
@pytest.mark.parametrize("binning", ["width", "mass"])
def test_summary_on_device_equals_numpy(device, kind, labels, binning) -> None:
    preds = _data(kind, labels, 7)
    a = summarize(preds, binning=binning, chunk_rows=500)
    b = summarize(preds, binning=binning, chunk_rows=500, device=device)
    for f in FIELDS:
        assert getattr(b, f) == pytest.approx(getattr(a, f), rel=1e-12, abs=1e-12), f
    assert b.bins.count.tolist() == a.bins.count.tolist()


@pytest.mark.parametrize("device", DEVICES)
def test_binary_positive_mode_on_device(device) -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(scale=2, size=2000)
    y = (rng.random(2000) < 0.4).astype(int)
    preds = Predictions.from_arrays(z, y)
    a = summarize(preds, binary_mode="positive")
    b = summarize(preds, binary_mode="positive", device=device)
    assert b.ece == pytest.approx(a.ece, abs=1e-12)
    assert b.brier == pytest.approx(a.brier, abs=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_temperature_fit_on_device_equals_numpy(device) -> None:
    preds = calibkit.read_predictions("sample_data/digits_hard_val.npz")
    a = fit_temperature(preds)
    b = fit_temperature(preds, device=device)
    assert b.temperature == pytest.approx(a.temperature, rel=1e-9)
    assert b.fit.passes == a.fit.passes


def test_unavailable_devices_are_refused() -> None:
    preds = _data("logits", "hard", 3)
    with pytest.raises(UsageError, match=r"^device='not-a-device': "):
        summarize(preds, device="not-a-device")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA device is available"):
            summarize(preds, device="cuda")
