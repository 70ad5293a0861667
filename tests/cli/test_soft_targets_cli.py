"""`calibkit soft-targets`: the file it writes (npz / parquet / pt), read back by numpy and by
calibkit, its summary, the float32 argmax check and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _cli import assert_ok, ece_json, invoke, one_error_line, write_npz
from scipy.special import entr, logsumexp
from typer.testing import CliRunner

from calibkit.errors import UsageError


def _targets(runner: CliRunner, *args: object) -> dict:
    """``calibkit soft-targets ARGS --json``: exit 0 and, on stderr, only the line saying where
    the targets went (``--out``, the argument after it)."""
    out = args[list(args).index("--out") + 1]
    result = invoke(runner, "soft-targets", *args, "--json")
    assert_ok(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"calibkit: wrote {out} (soft targets at T = ")
    doc: dict = json.loads(result.stdout)
    return doc


def _soft(z: np.ndarray, t: float) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64) / t
    return np.exp(z - logsumexp(z, axis=1, keepdims=True))


@pytest.fixture
def teacher(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, np.ndarray, np.ndarray]:
    z = rng.normal(scale=3.0, size=(200, 5)).astype(np.float32)
    y = rng.integers(0, 5, 200)
    return write_npz(tmp_path / "teacher.npz", logits=z, labels=y), z, y


def test_npz_written_as_probabilities(runner: CliRunner, teacher: tuple, tmp_path: Path) -> None:
    path, z, y = teacher
    before = path.read_bytes()
    out = tmp_path / "targets.npz"
    doc = _targets(runner, path, "--temperature", 4, "--out", out)
    assert path.read_bytes() == before
    with np.load(out, allow_pickle=False) as f:
        assert sorted(f.files) == ["labels", "probs"]  # the logits are left out
        p, labels = f["probs"], f["labels"]
    assert p.dtype == np.float64 and p.shape == (200, 5)
    assert np.abs(p.sum(axis=1) - 1).max() <= 1e-15
    assert np.array_equal(labels, y)
    np.testing.assert_allclose(p, _soft(z, 4.0), rtol=1e-13, atol=0)
    # the summary, against the formula on the written targets
    k = 5
    wrong = 1 - p[np.arange(200), y]
    assert doc["n"] == 200 and doc["n_classes"] == 5 and doc["temperature"] == 4.0
    assert doc["dtype"] == "float64" and doc["input"] == "logits" and doc["out"] == str(out)
    assert doc["entropy"] == pytest.approx(entr(p).sum(axis=1).mean(), rel=1e-12)
    assert doc["top1"] == pytest.approx(p.max(axis=1).mean(), rel=1e-12)
    assert doc["gamma"] == pytest.approx(wrong.mean() * k / (k - 1), rel=1e-12)
    assert doc["argmax_changed"] == 0 and doc["argmax_changed_rows"] == []
    # every calibkit command reads it as the teacher's predictions at T
    read = ece_json(runner, out)
    assert read["input"] == "probs"
    assert read["accuracy"] == pytest.approx(np.mean(np.argmax(z, axis=1) == y))


def test_float32_on_request(runner: CliRunner, teacher: tuple, tmp_path: Path) -> None:
    path, z, _ = teacher
    out = tmp_path / "targets.npz"
    result = invoke(runner, "soft-targets", path, "--temperature", 2, "--out", out, "--dtype",
                    "float32")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "float32" in result.stdout and "argmax changed" in result.stdout
    with np.load(out, allow_pickle=False) as f:
        p = f["probs"]
    assert p.dtype == np.float32
    assert np.abs(p.astype(np.float64).sum(axis=1) - 1).max() <= 1e-6
    np.testing.assert_allclose(p, _soft(z, 2.0), rtol=1e-6)


def test_float32_ties_are_reported(runner: CliRunner, tmp_path: Path) -> None:
    # row 0: two logits 1e-9 apart, one float32 number once softened: the argmax moves to 0
    z = np.array([[1.0, 1.0 + 1e-9, 0.0], [0.0, 3.0, 1.0]])
    path = write_npz(tmp_path / "t.npz", logits=z, labels=np.array([1, 1]))
    out = tmp_path / "o.npz"
    result = invoke(runner, "soft-targets", path, "--temperature", 2, "--out", out, "--dtype",
                    "float32", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "calibkit: warning:" in result.stderr and "argmax of 1 of 2 rows" in result.stderr
    doc = json.loads(result.stdout)
    assert doc["argmax_changed"] == 1 and doc["argmax_changed_rows"] == [0]
    ok = _targets(runner, path, "--temperature", 2, "--out", out)
    assert ok["argmax_changed"] == 0  # float64 keeps them apart


def test_parquet_and_pt(runner: CliRunner, tmp_path: Path, rng: np.random.Generator) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    torch = pytest.importorskip("torch")  # the .pt half needs the torch extra

    z = rng.normal(size=(40, 3))
    y = rng.integers(0, 3, 40)
    table = pa.table({f"logit_{k}": z[:, k] for k in range(3)} | {"label": y})
    pq.write_table(table, tmp_path / "t.parquet")
    out = tmp_path / "o.parquet"
    _targets(runner, tmp_path / "t.parquet", "--temperature", 3, "--out", out,
             "--dtype", "float32")  # fmt: skip
    got = pq.read_table(out)
    assert got.column_names == ["prob_0", "prob_1", "prob_2", "label"]
    assert got.schema.field("prob_0").type == pa.float32()
    p = np.stack([got[f"prob_{k}"].to_numpy() for k in range(3)], axis=1)
    np.testing.assert_allclose(p, _soft(z, 3.0), rtol=1e-6)
    assert got["label"].to_numpy().tolist() == y.tolist()

    torch.save({"logits": torch.from_numpy(z), "labels": torch.from_numpy(y)}, tmp_path / "t.pt")
    out_pt = tmp_path / "o.pt"
    _targets(runner, tmp_path / "t.pt", "--temperature", 3, "--out", out_pt,
             )  # fmt: skip
    obj = torch.load(out_pt, weights_only=True)
    assert sorted(obj) == ["labels", "probs"] and obj["probs"].dtype == torch.float64
    np.testing.assert_allclose(obj["probs"].numpy(), _soft(z, 3.0), rtol=1e-13)


def test_probability_teacher(runner: CliRunner, tmp_path: Path) -> None:
    p = np.array([[0.8, 0.2, 0.0], [0.1, 0.3, 0.6]])
    path = write_npz(tmp_path / "p.npz", probs=p, labels=np.array([0, 2]))
    out = tmp_path / "o.npz"
    doc = _targets(runner, path, "--temperature", 2, "--out", out)
    with np.load(out, allow_pickle=False) as f:
        got = f["probs"]
    ref = np.sqrt(p) / np.sqrt(p).sum(axis=1, keepdims=True)  # softmax(log p / 2)
    np.testing.assert_allclose(got, ref, rtol=1e-14)
    assert got[0, 2] == 0.0 and doc["input"] == "probs"


def test_soft_labels_are_copied(runner: CliRunner, tmp_path: Path) -> None:
    z = np.array([[2.0, 0.0], [0.0, 1.0]])
    y = np.array([[0.7, 0.3], [0.2, 0.8]])
    path = write_npz(tmp_path / "s.npz", logits=z, labels=y)
    out = tmp_path / "o.npz"
    doc = _targets(runner, path, "--temperature", 1, "--out", out)
    with np.load(out, allow_pickle=False) as f:
        assert np.array_equal(f["labels"], y)
        p = f["probs"]
    wrong = ((1 - y) * p).sum(axis=1).mean() * 2
    assert doc["gamma"] == pytest.approx(wrong, rel=1e-13)


@pytest.mark.parametrize("t", ["0", "-1", "inf", "nan"])
def test_bad_temperature(runner: CliRunner, teacher: tuple, tmp_path: Path, t: str) -> None:
    path, _, _ = teacher
    out = tmp_path / "o.npz"
    result = invoke(runner, "soft-targets", path, "--temperature", t, "--out", out)
    message = one_error_line(result)
    assert message.startswith("--temperature must be a finite number > 0"), message
    assert not out.exists()


def test_output_over_the_input_is_refused(runner: CliRunner, teacher: tuple) -> None:
    path, _, _ = teacher
    before = path.read_bytes()
    result = invoke(runner, "soft-targets", path, "--temperature", 2, "--out", path)
    one_error_line(result)
    assert path.read_bytes() == before


def test_other_extension_is_refused(runner: CliRunner, teacher: tuple, tmp_path: Path) -> None:
    path, _, _ = teacher
    out = tmp_path / "o.parquet"
    message = one_error_line(invoke(runner, "soft-targets", path, "--temperature", 2, "--out", out))
    assert "extension" in message and not out.exists()


def test_bad_file(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip archive at all")
    out = tmp_path / "o.npz"
    one_error_line(invoke(runner, "soft-targets", bad, "--temperature", 2, "--out", out), bad)
    assert not out.exists()


def test_writer_dtype_is_checked() -> None:
    from calibkit.report.rewrite import _probs_dtype

    assert _probs_dtype(np.float32) == np.float64  # the default: float64 whatever the input
    assert _probs_dtype(np.float32, "float32") == np.float32
    with pytest.raises(UsageError, match="float32 or float64"):
        _probs_dtype(None, np.int64)
