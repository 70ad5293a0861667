"""The rewriter with a probability-output calibrator (``ets``): the probabilities go under
``probs`` (npz, pt) / ``prob_0 .. prob_{K-1}`` (parquet), nothing that calibkit would read as
scores before them is kept, everything else is copied, and reading the output back gives the
metrics of the calibrated view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calibkit.calibrators.base import CalibratedPredictions
from calibkit.calibrators.ets import EnsembleTemperatureScaler
from calibkit.calibrators.temperature import TemperatureScaler
from calibkit.loaders import ReadOptions, read_predictions
from calibkit.metrics.summary import summarize
from calibkit.report.rewrite import score_names, write_calibrated

CAL = EnsembleTemperatureScaler(1.8, (0.6, 0.3, 0.1), n_classes=4)


def _data(seed: int, n: int = 300, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    return rng.normal(size=(n, k)) * 2 + 3 * np.eye(k)[y], y


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _same_metrics(out: Path, src_path: Path, **read: object) -> None:
    """``summarize`` of the written file equals that of the calibrated view of the input."""
    src = read_predictions(src_path, ReadOptions(**read))  # type: ignore[arg-type]
    back = read_predictions(out)
    assert back.kind == "probs" and back.n_classes == src.n_classes
    a, b = summarize(back), summarize(CalibratedPredictions(src, CAL))
    for name in ("accuracy", "ece", "mce", "nll", "brier"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-12, abs=1e-15), name


def test_npz_probs_replace_the_logits(tmp_path: Path) -> None:
    z, y = _data(0)
    src = tmp_path / "in.npz"
    np.savez(src, logits=z, labels=y, extra=np.arange(3), note=np.array("keep me"))
    out = write_calibrated(read_predictions(src), CAL, tmp_path / "out.npz", chunk_rows=64)
    with np.load(out, allow_pickle=False) as f:
        assert sorted(f.files) == ["extra", "labels", "note", "probs"]
        np.testing.assert_array_equal(f["probs"], CAL.transform(z))
        assert f["probs"].dtype == np.float64
        np.testing.assert_array_equal(f["labels"], y)
        np.testing.assert_array_equal(f["extra"], np.arange(3))
    _same_metrics(out, src)


def test_npz_with_logits_and_probs_keeps_neither(tmp_path: Path) -> None:
    """Logits win over probabilities when calibkit reads a file: an output with the calibrated
    ``probs`` and any logits would be read as those logits. Every score-like member goes."""
    z, y = _data(1)
    src = tmp_path / "both.npz"
    np.savez(src, Logits=z, probs=_softmax(z), proba=_softmax(z), labels=y, score_0=z[:, 0])
    out = write_calibrated(read_predictions(src), CAL, tmp_path / "o.npz")
    with np.load(out, allow_pickle=False) as f:
        assert sorted(f.files) == ["labels", "probs", "score_0"]
        np.testing.assert_array_equal(f["probs"], CAL.transform(z))
    _same_metrics(out, src)


def test_npz_float16_and_binary_inputs(tmp_path: Path) -> None:
    z, y = _data(2, k=2)
    src = tmp_path / "bin.npz"
    np.savez(src, logits=(z[:, 1] - z[:, 0]).astype(np.float16), labels=y)
    cal = EnsembleTemperatureScaler(1.5, (0.7, 0.2, 0.1))
    out = write_calibrated(read_predictions(src), cal, tmp_path / "bin_out.npz", chunk_rows=50)
    with np.load(out, allow_pickle=False) as f:
        p = f["probs"]
    assert p.shape == (300, 2) and p.dtype == np.float32  # both columns; float16 -> float32
    binary = read_predictions(src)
    expected = np.concatenate([c for c, _ in CalibratedPredictions(binary, cal).chunks()])
    np.testing.assert_allclose(p, expected, rtol=1e-6)
    assert read_predictions(out).kind == "probs"


def test_parquet_wide_logits_become_prob_columns(tmp_path: Path) -> None:
    z, y = _data(3)
    src = tmp_path / "in.parquet"
    cols = {f"logit_{k}": z[:, k].astype(np.float32) for k in range(4)}
    table = pa.table({"id": np.arange(300), **cols, "label": y, "p_0": z[:, 0], "p_1": z[:, 1]})
    pq.write_table(table, src)
    out = write_calibrated(read_predictions(src), CAL, tmp_path / "out.parquet", chunk_rows=70)
    got = pq.read_table(out)
    assert got.schema.names == ["id", "prob_0", "prob_1", "prob_2", "prob_3", "label"]
    assert got.schema.field("prob_0").type == pa.float32()
    p = np.stack([got.column(f"prob_{k}").to_numpy() for k in range(4)], axis=1)
    np.testing.assert_allclose(p, CAL.transform(z.astype(np.float32)), rtol=1e-6)
    assert got.column("id").to_pylist() == list(range(300))
    assert got.column("label").to_pylist() == y.tolist()
    back = read_predictions(out)
    assert back.kind == "probs" and back.n_classes == 4


def test_parquet_list_column_of_probabilities(tmp_path: Path) -> None:
    z, y = _data(4)
    src = tmp_path / "list.parquet"
    pq.write_table(pa.table({"probs": list(_softmax(z)), "y": y}), src)
    out = write_calibrated(read_predictions(src), CAL, tmp_path / "list_out.parquet")
    got = pq.read_table(out)
    assert got.schema.names == ["prob_0", "prob_1", "prob_2", "prob_3", "y"]
    _same_metrics(out, src)


def test_pt_probs_replace_the_logits(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    z, y = _data(5)
    src = tmp_path / "in.pt"
    torch.save(
        {"logits": torch.tensor(z), "labels": torch.tensor(y), "epoch": torch.tensor(3)}, src
    )
    out = write_calibrated(read_predictions(src), CAL, tmp_path / "out.pt")
    obj = torch.load(out, weights_only=True)
    assert sorted(obj) == ["epoch", "labels", "probs"]
    np.testing.assert_array_equal(obj["probs"].numpy(), CAL.transform(z))
    _same_metrics(out, src)


def test_a_logit_output_calibrator_still_writes_logits(tmp_path: Path) -> None:
    z, y = _data(6)
    src = tmp_path / "in.npz"
    np.savez(src, logits=z, labels=y)
    out = write_calibrated(read_predictions(src), TemperatureScaler(2.0), tmp_path / "ts.npz")
    with np.load(out) as f:
        assert sorted(f.files) == ["labels", "logits"]
        np.testing.assert_array_equal(f["logits"], z / 2.0)


def test_score_names() -> None:
    names = ["logits.npy", "labels.npy", "probs.npy", "p0.npy", "p1.npy", "id.npy", "y_prob"]
    assert score_names(names, ("logits.npy",), "labels.npy") == [
        "logits.npy",
        "probs.npy",
        "p0.npy",
        "p1.npy",
        "y_prob",
    ]
    # the labels are never left out, whatever their name
    assert score_names(["scores", "prob"], ("scores",), "prob") == ["scores"]
