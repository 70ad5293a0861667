"""Several ``.npz`` files read as one data set (a directory or a glob of shards, issue #17): the
same numbers as one file, a layout checked across shards from their headers, each shard read
only when it is streamed (by the worker that streams it), and a corrupt shard named."""

from __future__ import annotations

import itertools
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _cli import invoke, one_error_line, run_json
from typer.testing import CliRunner

from calibkit.errors import InputError
from calibkit.loaders import read_predictions
from calibkit.loaders.npz import NpzShard, ShardedNpz
from calibkit.metrics import summarize

DATA = Path(__file__).resolve().parents[2] / "sample_data"
SAMPLE = DATA / "digits_hard_test.npz"


def _cut(folder: Path, cuts: list[int], *, compressed: bool = False, **arrays: Any) -> list[Path]:
    """``arrays`` cut at ``cuts`` into shards ``folder/part_XX.npz``."""
    folder.mkdir(exist_ok=True)
    save = np.savez_compressed if compressed else np.savez
    paths = []
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        path = folder / f"part_{i:02d}.npz"
        save(path, **{k: v[a:b] for k, v in arrays.items()})
        paths.append(path)
    return paths


def _sample() -> dict[str, np.ndarray]:
    with np.load(SAMPLE) as d:
        return {k: d[k] for k in d.files}


def _close(a: Any, b: Any, path: str = "") -> None:
    """JSON values equal: numbers to 1e-12 relative, integers (counts) exactly."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15), path
    else:
        assert a == b, path


@pytest.mark.parametrize("spec", ["dir", "glob"])
def test_ece_of_npz_shards_equals_the_single_file(
    tmp_path: Path, runner: CliRunner, spec: str
) -> None:
    arrays = _sample()
    n = len(arrays["labels"])
    _cut(tmp_path / "shards", [0, 1, 2, 100, 101, 257, n], **arrays)
    arg = tmp_path / "shards" if spec == "dir" else f"{tmp_path / 'shards'}/part_*.npz"
    whole = run_json(runner, "ece", SAMPLE)
    sharded = run_json(runner, "ece", arg)
    assert sharded.pop("source") == str(arg)
    whole.pop("source")
    _close(sharded, whole)
    assert [b["count"] for b in sharded["bins"]] == [b["count"] for b in whole["bins"]]


def test_shards_are_read_in_sorted_order_as_one_source(tmp_path: Path) -> None:
    arrays = _sample()
    n = len(arrays["labels"])
    paths = _cut(tmp_path / "s", [0, 7, 7 + 150, n], compressed=True, **arrays)
    src = read_predictions(tmp_path / "s")
    assert isinstance(src, ShardedNpz)
    assert [s.source for s in src.shards] == [str(p) for p in paths]
    assert (src.n_rows, src.n_classes, src.kind) == (n, 10, "logits")
    assert src.kind_reason == "named: key 'logits'"
    scores = np.concatenate([s for s, _ in src.chunks(64)])
    labels = np.concatenate([y for _, y in src.chunks(64)])
    np.testing.assert_array_equal(scores, arrays["logits"].astype(np.float64))
    np.testing.assert_array_equal(labels, arrays["labels"])


def test_one_part_per_shard_picklable_streaming_the_same_chunks(tmp_path: Path) -> None:
    arrays = _sample()
    n = len(arrays["labels"])
    cuts = [0, 1, 50, 51, n]
    _cut(tmp_path / "s", cuts, **arrays)
    src = read_predictions(tmp_path / "s")
    plan = src.partitions(16, 99)  # type: ignore[attr-defined]
    assert [(p.start, p.rows) for p in plan.parts] == [
        (a, b - a) for a, b in itertools.pairwise(cuts)
    ]
    assert plan.n_rows == n
    again = pickle.loads(pickle.dumps(plan))
    for part, copy in zip(plan.parts, again.parts, strict=True):
        assert isinstance(copy.source, NpzShard)
        local = list(part.source.chunks(16))
        remote = list(copy.source.chunks(16))
        assert len(local) == len(remote)
        for (s1, y1), (s2, y2) in zip(local, remote, strict=True):
            np.testing.assert_array_equal(s1, s2)
            np.testing.assert_array_equal(y1, y2)
    streamed = [s for p in again.parts for s, _ in p.source.chunks(16)]
    whole = [s for s, _ in src.chunks(16)]
    assert len(streamed) == len(whole)
    for a, b in zip(streamed, whole, strict=True):
        np.testing.assert_array_equal(a, b)
    # the same numbers from the parts' sums as from the whole
    assert summarize(src, n_bins=15).ece == pytest.approx(
        summarize(read_predictions(SAMPLE), n_bins=15).ece, rel=1e-12
    )


def test_shards_are_read_only_when_streamed(tmp_path: Path) -> None:
    """Opening reads headers only: a later shard whose array bytes are garbled (its CRC-32 fails)
    opens, and fails naming that shard when it is streamed."""
    arrays = _sample()
    n = len(arrays["labels"])
    paths = _cut(tmp_path / "s", [0, 200, n], **arrays)
    raw = bytearray(paths[1].read_bytes())
    raw[400:420] = b"\xff" * 20  # inside the logits member's data, past its .npy header
    paths[1].write_bytes(bytes(raw))
    src = read_predictions(tmp_path / "s")
    assert src.n_rows == n
    with pytest.raises(InputError) as err:
        for _ in src.chunks():
            pass
    assert err.value.source == str(paths[1])
    assert "CRC-32" in str(err.value)


def test_corrupt_shard_named_at_open_and_while_streaming(tmp_path: Path, runner: CliRunner) -> None:
    arrays = _sample()
    n = len(arrays["labels"])
    paths = _cut(tmp_path / "s", [0, 150, 300, n], **arrays)
    good = paths[1].read_bytes()
    paths[1].write_bytes(good[: len(good) // 2])  # truncated: no zip directory
    msg = one_error_line(invoke(runner, "ece", tmp_path / "s"), paths[1])
    assert "not a readable .npz archive" in msg
    # garbled data: the headers open, the CRC-32 fails when the shard is streamed
    raw = bytearray(good)
    raw[500:520] = bytes(20)
    paths[1].write_bytes(bytes(raw))
    assert read_predictions(tmp_path / "s").n_rows == n
    msg = one_error_line(invoke(runner, "ece", tmp_path / "s"), paths[1])
    assert "CRC-32" in msg


def test_layouts_must_agree_across_shards(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = tmp_path / "a.npz"
    np.savez(base, logits=rng.normal(size=(5, 3)), labels=np.arange(5) % 3)
    cases = {
        "classes": {"logits": rng.normal(size=(5, 4)), "labels": np.arange(5) % 3},
        "binary": {"logits": rng.normal(size=5), "labels": np.arange(5) % 2},
        "soft": {"logits": rng.normal(size=(5, 3)), "labels": np.full((5, 3), 1 / 3)},
        "keys": {"logits": rng.normal(size=(5, 3)), "y": np.arange(5) % 3},
    }
    for name, arrays in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        np.savez(folder / "a.npz", logits=rng.normal(size=(5, 3)), labels=np.arange(5) % 3)
        np.savez(folder / "b.npz", **arrays)
        with pytest.raises(InputError) as err:
            read_predictions(folder)
        assert err.value.source == str(folder / "b.npz"), name
        assert "shards must share one layout" in str(err.value)


def test_kind_decided_by_the_first_shard_values(tmp_path: Path) -> None:
    """Probabilities under a logits key are detected from the first shard; a later shard that
    holds logits contradicts it, named."""
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    np.savez(tmp_path / "a.npz", logits=probs, labels=np.array([0, 1]))
    np.savez(tmp_path / "b.npz", logits=probs[::-1], labels=np.array([1, 0]))
    with pytest.warns(UserWarning, match="holds probabilities"):
        src = read_predictions(tmp_path)
    assert src.kind == "probs"
    with pytest.warns(UserWarning, match="holds probabilities"):
        rows = sum(len(y) for _, y in src.chunks())
    assert rows == 4
    np.savez(tmp_path / "c.npz", logits=np.array([[2.0, -1.0, 0.0]]), labels=np.array([0]))
    with pytest.warns(UserWarning, match="holds probabilities"):
        src = read_predictions(tmp_path)
    with pytest.warns(UserWarning, match="holds probabilities"), pytest.raises(InputError) as err:
        list(src.chunks())  # a.npz and b.npz warn again as they are read, c.npz fails
    assert err.value.source == str(tmp_path / "c.npz")
    assert "decided by" in str(err.value) and str(tmp_path / "a.npz") in str(err.value)


def test_logits_decided_once_probs_like_later_shard_read_as_logits(tmp_path: Path) -> None:
    """As the rows of one file: the first shard's logits decide, a later shard whose rows
    happen to be probabilities is read as logits too (not a third kind of reading)."""
    np.savez(tmp_path / "a.npz", logits=np.array([[2.0, -1.0, 0.0]]), labels=np.array([0]))
    np.savez(tmp_path / "b.npz", logits=np.array([[0.7, 0.2, 0.1]]), labels=np.array([0]))
    src = read_predictions(tmp_path)
    assert src.kind == "logits"
    chunks = list(src.chunks())
    np.testing.assert_array_equal(chunks[1][0], [[0.7, 0.2, 0.1]])


def test_named_probs_validated_in_every_shard(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", probs=np.array([[0.7, 0.3]]), labels=np.array([0]))
    np.savez(tmp_path / "b.npz", probs=np.array([[0.7, 0.7]]), labels=np.array([0]))
    src = read_predictions(tmp_path)
    assert src.kind == "probs"
    with pytest.raises(InputError) as err:
        list(src.chunks())
    assert err.value.source == str(tmp_path / "b.npz")


def test_forced_kind_applies_to_every_shard(tmp_path: Path, runner: CliRunner) -> None:
    np.savez(tmp_path / "a.npz", logits=np.array([[0.7, 0.3]]), labels=np.array([0]))
    np.savez(tmp_path / "b.npz", logits=np.array([[0.4, 0.6]]), labels=np.array([1]))
    out = run_json(runner, "ece", tmp_path, "--input", "logits")
    assert out["input"] == "logits" and out["input_reason"] == "forced: --input logits"
    assert out["n"] == 2


def test_confidence_only_shards(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    conf, hit = rng.random(40), (rng.random(40) < 0.5).astype(float)
    _cut(tmp_path / "s", [0, 13, 40], confidence=conf, correct=hit)
    src = read_predictions(tmp_path / "s")
    assert src.kind == "confidence" and src.n_rows == 40
    np.testing.assert_array_equal(np.concatenate([c for c, _ in src.chunks(5)]), conf)


def test_object_arrays_in_a_shard_are_never_unpickled(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", logits=np.zeros((2, 2)), labels=np.array([0, 1]))
    np.savez(
        tmp_path / "b.npz",
        logits=np.array([[0.0, 1.0], [1.0, 0.0]], dtype=object),
        labels=np.array([0, 1]),
        allow_pickle=True,
    )
    src = read_predictions(tmp_path)  # headers only: the object array is not read yet
    with pytest.raises(InputError) as err:
        list(src.chunks())
    assert err.value.source == str(tmp_path / "b.npz")
    assert "pickle" in str(err.value)


def test_mixed_npz_and_parquet_refused(tmp_path: Path, runner: CliRunner) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    np.savez(tmp_path / "a.npz", logits=np.zeros((2, 2)), labels=np.array([0, 1]))
    pq.write_table(pa.table({"logit_0": [0.0], "logit_1": [1.0], "label": [0]}), tmp_path / "b.pq")
    for spec in (tmp_path, f"{tmp_path}/*"):
        msg = one_error_line(invoke(runner, "ece", spec), spec)
        assert "mixes .parquet and .npz shards" in msg
    (tmp_path / "c.txt").write_text("no")
    msg = one_error_line(invoke(runner, "ece", f"{tmp_path}/*"), tmp_path / "c.txt")
    assert "may only match .parquet or .npz shards" in msg


def test_empty_directory_message(tmp_path: Path, runner: CliRunner) -> None:
    msg = one_error_line(invoke(runner, "ece", tmp_path), tmp_path)
    assert msg == (
        "is a directory with no data files: it may hold .parquet or .npz shards, or "
        "lm-evaluation-harness samples files (samples_*.jsonl, samples_*.json)"
    )


def test_shard_memory_estimate_per_shard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory check of one archive applies to each shard when it is read: a shard whose
    declared arrays do not fit is refused, named."""
    import calibkit.loaders.npz as npz_loader

    np.savez_compressed(tmp_path / "a.npz", logits=np.zeros((4, 2)), labels=np.zeros(4, int))
    np.savez_compressed(tmp_path / "b.npz", logits=np.zeros((400, 2)), labels=np.zeros(400, int))
    seen: list[tuple[str, int]] = []

    def fits(source: str, needed: int, **_: Any) -> None:
        seen.append((source, needed))
        if needed > 10_000:
            raise InputError(source, "too big")

    monkeypatch.setattr(npz_loader, "check_fits", fits)
    src = read_predictions(tmp_path)
    with pytest.raises(InputError) as err:
        list(src.chunks())
    assert err.value.source == str(tmp_path / "b.npz")
    assert {s for s, _ in seen} == {str(tmp_path / "a.npz"), str(tmp_path / "b.npz")}


def test_json_of_shards_names_the_directory(tmp_path: Path, runner: CliRunner) -> None:
    arrays = _sample()
    _cut(tmp_path / "s", [0, 300, len(arrays["labels"])], **arrays)
    out = invoke(runner, "ece", tmp_path / "s", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["n"] == len(arrays["labels"])


def test_empty_npz_shards_among_others(tmp_path: Path, runner: CliRunner) -> None:
    arrays = _sample()
    n = len(arrays["labels"])
    _cut(tmp_path / "s", [0, 0, 200, 200, n, n], **arrays)  # empty first, middle and last
    src = read_predictions(tmp_path / "s")
    assert [s.n_rows for s in src.shards] == [0, 200, 0, n - 200, 0]
    plan = src.partitions(None, 4)
    assert [(p.start, p.rows) for p in plan.parts] == [(0, 200), (200, n - 200)]
    whole = run_json(runner, "ece", SAMPLE)
    sharded = run_json(runner, "ece", tmp_path / "s")
    whole.pop("source"), sharded.pop("source")
    _close(sharded, whole)
    folder = tmp_path / "e"
    _cut(folder, [0, 0, 0], **arrays)
    with pytest.raises(InputError, match="every shard is empty"):
        read_predictions(folder)


def test_apply_temp_refuses_npz_shards(tmp_path: Path, runner: CliRunner) -> None:
    """Regression: a directory of npz shards got "--out must have the input's extension ''"."""
    arrays = _sample()
    _cut(tmp_path / "s", [0, 100, len(arrays["labels"])], **arrays)
    result = invoke(runner, "apply-temp", tmp_path / "s", "-t", "1.5", "--out", tmp_path / "o.npz")
    assert "apply-temp rewrites one file" in result.stderr
    assert result.exit_code != 0 and not (tmp_path / "o.npz").exists()
