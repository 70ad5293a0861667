"""Inputs at scale: confidence-only rows, parquet shards, memory-mapped npz, bounded memory."""

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import calibkit
from calibkit.cli import app
from calibkit.errors import InputError, UsageError
from calibkit.metrics import expected_calibration_error, summarize
from calibkit.sources.predictions import ConfidenceRows, Predictions

DATA = Path(__file__).resolve().parents[2] / "sample_data"


def _conf_data(n: int = 5000, seed: int = 0):
    rng = np.random.default_rng(seed)
    conf = rng.random(n)
    correct = (rng.random(n) < conf**1.3).astype(np.int8)
    return conf, correct


def test_confidence_rows_give_the_same_ece_as_the_confidences() -> None:
    conf, correct = _conf_data()
    s = summarize(ConfidenceRows.from_arrays(conf, correct), n_bins=15)
    assert s.ece == pytest.approx(expected_calibration_error(conf, correct, n_bins=15), abs=1e-15)
    assert s.accuracy == pytest.approx(correct.mean())
    assert np.isnan(s.nll) and np.isnan(s.brier)
    assert s.n_classes == 0 and s.kind == "confidence"


def test_confidence_only_files_in_every_format(tmp_path) -> None:
    conf, correct = _conf_data()
    np.savez(tmp_path / "c.npz", confidence=conf, correct=correct)
    pq.write_table(
        pa.table({"confidence": conf, "correct": correct.astype(bool)}),
        tmp_path / "c.parquet",
        row_group_size=700,
    )
    ref = expected_calibration_error(conf, correct, n_bins=15)
    for name in ("c.npz", "c.parquet"):
        s = summarize(calibkit.read_predictions(tmp_path / name), chunk_rows=333)
        assert s.ece == pytest.approx(ref, abs=1e-14), name
    out = CliRunner().invoke(app, ["ece", str(tmp_path / "c.parquet"), "--json"])
    assert out.exit_code == 0
    doc = json.loads(out.stdout)
    assert doc["input"] == "confidence" and doc["nll"] is None and doc["brier"] is None


@pytest.mark.parametrize(
    ("conf", "correct", "message"),
    [
        ([0.5, 1.5], [1, 0], "confidence must lie in [0, 1]; row 1 has 1.5"),
        ([0.5, np.nan], [1, 0], "confidence must lie in [0, 1]; row 1 has nan"),
        ([0.5, 0.6], [1, 2], "correct must lie in [0, 1]; row 1 has 2"),
        ([0.5], [1, 0], "1 confidences but 2 correctness values"),
        ([], [], "no rows"),
    ],
)
def test_confidence_rows_are_validated(conf, correct, message) -> None:
    with pytest.raises(InputError) as info:
        ConfidenceRows.from_arrays(np.array(conf), np.array(correct))
    assert message in str(info.value)


def test_what_needs_logits_is_refused_for_confidence_rows(tmp_path) -> None:
    conf, correct = _conf_data(200)
    path = tmp_path / "c.npz"
    np.savez(path, confidence=conf, correct=correct)
    runner = CliRunner()
    r = runner.invoke(app, ["fit-temp", str(path)])
    assert r.exit_code == 2
    assert "temperature scaling needs logits or probabilities" in r.stderr
    r = runner.invoke(app, ["check", str(path), "--max-nll", "1"])
    assert r.exit_code == 2
    assert "cannot check nll" in r.stderr
    r = runner.invoke(app, ["check", str(path), "--max-ece", "0.5"])
    assert r.exit_code == 0
    with pytest.raises(UsageError):
        calibkit.fit_temperature(calibkit.read_predictions(path))


def _write_shards(folder: Path, table: pa.Table, cuts: list[int]) -> None:
    folder.mkdir()
    bounds = [0, *cuts, table.num_rows]
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        pq.write_table(table.slice(a, b - a), folder / f"part-{i:03d}.parquet")


def test_parquet_shards_read_as_one_data_set(tmp_path) -> None:
    table = pq.read_table(DATA / "digits_hard_test.parquet")
    _write_shards(tmp_path / "shards", table, [100, 101, 300])
    whole = summarize(calibkit.read_predictions(DATA / "digits_hard_test.npz"))
    for spec in (tmp_path / "shards", str(tmp_path / "shards" / "part-*.parquet")):
        s = summarize(calibkit.read_predictions(spec), chunk_rows=64)
        assert s.n == whole.n
        for m in ("ece", "nll", "brier", "accuracy"):
            assert getattr(s, m) == pytest.approx(getattr(whole, m), abs=1e-12)


def test_shard_errors_name_the_shard_and_its_row(tmp_path) -> None:
    table = pq.read_table(DATA / "digits_hard_test.parquet")
    folder = tmp_path / "shards"
    _write_shards(folder, table, [200])
    bad = table.slice(0, 50).to_pandas()
    bad.loc[7, "logit_3"] = np.nan
    pq.write_table(pa.Table.from_pandas(bad, preserve_index=False), folder / "part-002.parquet")
    with pytest.raises(InputError) as info:
        summarize(calibkit.read_predictions(folder))
    assert str(info.value) == f"{folder / 'part-002.parquet'}: column 'logit_3' has a null at row 7"


def test_shards_with_different_layouts_are_refused(tmp_path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    pq.write_table(pq.read_table(DATA / "digits_hard_test.parquet"), folder / "a.parquet")
    pq.write_table(
        pa.table({"logit_0": [0.1], "logit_1": [0.2], "label": [1]}), folder / "b.parquet"
    )
    with pytest.raises(InputError, match=r"n_classes is 2, but .* has 10"):
        calibkit.read_predictions(folder)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("empty", "is a directory with no data files: it may hold .parquet or .npz shards"),
        ("none-*.parquet", "no files match"),
    ],
)
def test_empty_shard_specs(tmp_path, spec, message) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=message):
        calibkit.read_predictions(str(tmp_path / spec))


def test_uncompressed_npz_is_memory_mapped(tmp_path) -> None:
    with np.load(DATA / "digits_hard_test.npz") as f:
        logits, labels = f["logits"], f["labels"]
    np.savez(tmp_path / "stored.npz", logits=logits, labels=labels)
    preds = calibkit.read_predictions(tmp_path / "stored.npz")
    assert isinstance(preds, Predictions)
    base = preds.scores
    while not isinstance(base, np.memmap) and getattr(base, "base", None) is not None:
        base = base.base
    assert isinstance(base, np.memmap)
    np.testing.assert_array_equal(np.asarray(preds.scores), logits)
    ref = summarize(calibkit.read_predictions(DATA / "digits_hard_test.npz"))
    assert summarize(preds).ece == ref.ece


def test_memory_check_ignores_memory_mapped_members(tmp_path, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", logits=rng.normal(size=(2000, 50)), labels=np.zeros(2000, int))
    np.savez_compressed(
        tmp_path / "c.npz", logits=rng.normal(size=(2000, 50)), labels=np.zeros(2000, int)
    )
    monkeypatch.setenv("CALIBKIT_MEMORY_LIMIT", str(200_000))  # < the 800 kB of logits
    calibkit.read_predictions(tmp_path / "s.npz")  # mapped: fine
    with pytest.raises(InputError, match="needs about"):
        calibkit.read_predictions(tmp_path / "c.npz")


@pytest.mark.skipif(sys.platform != "linux", reason="reads peak RSS the Linux way")
def test_parquet_streams_in_bounded_memory(tmp_path) -> None:
    # 400 000 x 100 float32 = 160 MB of logits, in row groups of 4 096 rows
    n, k = 400_000, 100
    path = tmp_path / "big.parquet"
    rng = np.random.default_rng(0)
    schema = pa.schema([(f"logit_{j}", pa.float32()) for j in range(k)] + [("label", pa.int64())])
    with pq.ParquetWriter(path, schema) as writer:
        for _ in range(0, n, 50_000):
            z = rng.normal(size=(50_000, k)).astype(np.float32)
            cols = [pa.array(z[:, j]) for j in range(k)] + [pa.array(rng.integers(0, k, 50_000))]
            writer.write_table(pa.Table.from_arrays(cols, schema=schema), row_group_size=4096)
    code = (
        "import resource, sys\n"
        "from calibkit.cli import app\n"
        "from typer.testing import CliRunner\n"
        f"r = CliRunner().invoke(app, ['ece', {str(path)!r}, '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    base = (
        "import resource\nimport calibkit.cli, calibkit.loaders.parquet, pyarrow.parquet, numpy\n"
        "from typer.testing import CliRunner\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    peak_kib = int(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()[-1]
    )
    base_kib = int(
        subprocess.run(
            [sys.executable, "-c", base], capture_output=True, text=True, check=True
        ).stdout.split()[-1]
    )
    extra_mb = (peak_kib - base_kib) / 1024
    assert extra_mb < 100, f"{extra_mb:.0f} MB on top of the imports for a 160 MB file"
