"""Inputs named by URL, read through fsspec (issue #17): parquet and npz files, directories and
globs; a clear one-line error when fsspec or an object store's package is missing; parts that
pickle as URLs and re-open them in another process."""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _cli import assert_one_line_error, invoke, one_error_line, run_json
from typer.testing import CliRunner

from calibkit.errors import InputError
from calibkit.io.paths import input_files, is_shard_of
from calibkit.io.urls import as_url, local_path
from calibkit.loaders import read_predictions
from calibkit.loaders.npz import ShardedNpz
from calibkit.loaders.parquet import ParquetPredictions, ShardedParquet

fsspec = pytest.importorskip("fsspec")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

DATA = Path(__file__).resolve().parents[2] / "sample_data"


def _url(path: Path) -> str:
    return "file://" + str(path)


def _same_json(runner: CliRunner, a: object, b: object) -> None:
    x, y = run_json(runner, "ece", a), run_json(runner, "ece", b)
    # (a trailing "/" is dropped: command-line arguments are parsed into paths)
    assert x.pop("source") == str(a) and y.pop("source") == str(b).rstrip("/")
    assert x == y


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed")
def test_missing_filesystem_package_is_one_line(runner: CliRunner) -> None:
    result = invoke(runner, "ece", "s3://bucket/x.parquet")
    assert_one_line_error(
        result,
        "s3://bucket/x.parquet: reading s3:// URLs needs the s3fs package (pip install s3fs)",
    )
    for spec in ("s3://bucket/preds/", "s3://bucket/preds/*.parquet"):
        with pytest.raises(InputError, match="needs the s3fs package"):
            read_predictions(spec)


@pytest.mark.skipif(importlib.util.find_spec("gcsfs") is not None, reason="gcsfs is installed")
def test_missing_gcsfs(runner: CliRunner) -> None:
    msg = one_error_line(invoke(runner, "ece", "gs://b/x.npz"), "gs://b/x.npz")
    assert msg == "reading gs:// URLs needs the gcsfs package (pip install gcsfs)"


def test_missing_fsspec_is_one_line(monkeypatch: pytest.MonkeyPatch, runner: CliRunner) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)  # import fsspec now fails
    msg = one_error_line(invoke(runner, "ece", "s3://bucket/x.parquet"), "s3://bucket/x.parquet")
    assert msg == "reading s3:// URLs needs the fsspec and s3fs packages (pip install fsspec s3fs)"
    msg = one_error_line(invoke(runner, "ece", "file:///tmp/x.npz"), "file:///tmp/x.npz")
    assert msg == "reading file:// URLs needs the fsspec package (pip install fsspec)"


def test_unknown_protocol_and_missing_url(tmp_path: Path, runner: CliRunner) -> None:
    msg = one_error_line(invoke(runner, "ece", "nosuchproto://b/x.npz"), "nosuchproto://b/x.npz")
    assert "unknown URL protocol" in msg
    url = _url(tmp_path / "missing.parquet")
    assert one_error_line(invoke(runner, "ece", url), url) == "no such file"
    url = _url(tmp_path) + "/*.npz"
    assert one_error_line(invoke(runner, "ece", url), url) == "no files match this pattern"
    (tmp_path / "x.pt").write_bytes(b"x")
    url = _url(tmp_path / "x.pt")
    assert "cannot be read from a URL" in one_error_line(invoke(runner, "ece", url), url)


def test_file_urls_give_the_local_numbers(tmp_path: Path, runner: CliRunner) -> None:
    for name in ("digits_hard_test.npz", "digits_hard_test.parquet"):
        (tmp_path / name).write_bytes((DATA / name).read_bytes())
        _same_json(runner, tmp_path / name, _url(tmp_path / name))
    src = read_predictions(_url(tmp_path / "digits_hard_test.parquet"))
    assert isinstance(src, ParquetPredictions) and src.path == _url(
        tmp_path / "digits_hard_test.parquet"
    )


def test_url_directories_and_globs_of_shards(tmp_path: Path, runner: CliRunner) -> None:
    table = pq.read_table(DATA / "digits_hard_test.parquet")
    (tmp_path / "pq").mkdir()
    for i, a in enumerate(range(0, table.num_rows, 100)):
        pq.write_table(table.slice(a, 100), tmp_path / "pq" / f"s{i}.parquet")
    (tmp_path / "pq" / ".hidden.parquet").write_bytes(b"not read")
    with np.load(DATA / "digits_hard_test.npz") as d:
        arrays = {k: d[k] for k in d.files}
    (tmp_path / "npz").mkdir()
    for i, a in enumerate(range(0, len(arrays["labels"]), 128)):
        np.savez(tmp_path / "npz" / f"s{i}.npz", **{k: v[a : a + 128] for k, v in arrays.items()})
    for spec, kind in (
        (_url(tmp_path / "pq"), ShardedParquet),
        (_url(tmp_path / "pq") + "/s*.parquet", ShardedParquet),
        (_url(tmp_path / "npz") + "/", ShardedNpz),
        (_url(tmp_path / "npz") + "/*.npz", ShardedNpz),
    ):
        src = read_predictions(spec)
        assert isinstance(src, kind), spec
        assert [s.source for s in src.shards] == sorted(s.source for s in src.shards)
        assert all(s.source.startswith("file://") for s in src.shards)
        local = tmp_path / ("pq" if kind is ShardedParquet else "npz")
        _same_json(runner, local, spec)


def test_url_parts_pickle_and_reopen_in_another_process(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    table = pq.read_table(DATA / "digits_hard_test.parquet")
    pq.write_table(table, path, row_group_size=64)
    np.savez(tmp_path / "a.npz", logits=np.eye(3)[[0, 1]] * 4.0, labels=np.array([0, 1]))
    np.savez(tmp_path / "b.npz", logits=np.eye(3)[[2]] * 4.0, labels=np.array([2]))
    plans = {
        "parquet": read_predictions(_url(path)).partitions(None, 3),
        "npz": read_predictions(_url(tmp_path) + "/*.npz").partitions(None, 3),
    }
    for name, plan in plans.items():
        blob = tmp_path / f"{name}.pickle"
        blob.write_bytes(pickle.dumps(plan))
        script = (
            "import pickle, sys\n"
            "plan = pickle.loads(open(sys.argv[1], 'rb').read())\n"
            "print(sum(len(y) for p in plan.parts for _, y in p.source.chunks(50)))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script, str(blob)],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert int(done.stdout) == plan.n_rows, name
        assert all(str(p.source.source).startswith("file://") for p in plan.parts)


def test_memory_urls_in_process(tmp_path: Path) -> None:
    fs = fsspec.filesystem("memory")
    try:
        fs.pipe("/h17/a.parquet", (DATA / "digits_hard_test.parquet").read_bytes())
        fs.pipe("/h17/z/a.npz", (DATA / "digits_hard_test.npz").read_bytes())
        fs.pipe("/h17/z/b.npz", (DATA / "digits_hard_test.npz").read_bytes())
        one = read_predictions("memory://h17/a.parquet")
        assert one.n_rows == 450 and sum(len(y) for _, y in one.chunks()) == 450
        two = read_predictions("memory://h17/z")
        assert isinstance(two, ShardedNpz) and two.n_rows == 900
        got = np.concatenate([s for s, _ in two.chunks()])
        local = read_predictions(DATA / "digits_hard_test.npz")
        np.testing.assert_array_equal(got[450:], local.scores)  # type: ignore[attr-defined]
    finally:
        fs.rm("/h17", recursive=True)


def test_npz_over_a_url_keeps_the_crc_and_pickle_checks(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    np.savez(
        path, logits=np.arange(600, dtype=np.float64).reshape(200, 3), labels=np.zeros(200, int)
    )
    raw = bytearray(path.read_bytes())
    raw[1000:1008] = b"\x01" * 8  # inside the logits data: its CRC-32 fails
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="CRC-32") as err:
        read_predictions(_url(path))
    assert err.value.source == _url(path)
    np.savez(
        path,
        logits=np.array([[1.0, 2.0]], dtype=object),
        labels=np.array([0]),
        allow_pickle=True,
    )
    with pytest.raises(InputError, match="pickle"):
        read_predictions(_url(path))
    path.write_bytes(b"\x80\x04 not a zip: a pickle")
    with pytest.raises(InputError, match="not a zip file"):
        read_predictions(_url(path))


def test_corrupt_url_shard_is_named(tmp_path: Path, runner: CliRunner) -> None:
    np.savez(tmp_path / "a.npz", logits=np.zeros((2, 2)), labels=np.array([0, 1]))
    (tmp_path / "b.npz").write_bytes(b"PK\x03\x04 truncated")
    spec = _url(tmp_path) + "/*.npz"
    msg = one_error_line(invoke(runner, "ece", spec), _url(tmp_path / "b.npz"))
    assert "not a readable .npz archive" in msg


def test_collapsed_urls_and_output_checks(tmp_path: Path) -> None:
    """Command-line arguments arrive as Paths, which collapse ``//``: the URL is recovered; a
    ``file://`` input names its local file for the output checks."""
    assert as_url(Path("s3://bucket/x.parquet")) == "s3://bucket/x.parquet"
    assert as_url(Path("file:///tmp/x.npz")) == "file:///tmp/x.npz"
    assert as_url("s3://bucket/x.parquet") == "s3://bucket/x.parquet"
    assert as_url(Path("C:/x.npz")) is None and as_url(tmp_path / "x.npz") is None
    assert local_path("file:///tmp/x.npz") == Path("/tmp/x.npz")
    assert local_path("s3://b/x.npz") is None
    np.savez(tmp_path / "a.npz", logits=np.zeros((2, 2)), labels=np.array([0, 1]))
    assert input_files(_url(tmp_path / "a.npz")) == [tmp_path / "a.npz"]
    assert input_files(_url(tmp_path)) == [tmp_path / "a.npz"]
    assert input_files("s3://bucket/a.npz") == []
    assert is_shard_of(_url(tmp_path), tmp_path / "new.npz")
    assert not is_shard_of("s3://bucket/", tmp_path / "new.npz")
