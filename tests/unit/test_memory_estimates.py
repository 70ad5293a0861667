"""The memory guard estimates from DECLARED shapes and dtypes and the copies a read makes.

File size says little: a compressed member or a deflated ``.pt`` record expands, an expanded
(stride-0) tensor view holds one number for 10^18 elements, and integer logits are widened to a
float64 copy even when the file is memory-mapped. ``CALIBKIT_MEMORY_LIMIT`` (bytes) sets the
limit the guard compares against. Every file is built here, in ``tmp_path``.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import calibkit
from calibkit.cli import app
from calibkit.errors import InputError
from calibkit.sources import memory
from calibkit.sources.predictions import Predictions

torch = pytest.importorskip("torch")

MiB = 1 << 20


def _limit(monkeypatch, n_bytes: int) -> None:
    monkeypatch.setenv("CALIBKIT_MEMORY_LIMIT", str(n_bytes))


def _refused(path: Path) -> str:
    with pytest.raises(InputError) as info:
        calibkit.read_predictions(path)
    message = str(info.value)
    assert message.startswith(f"{path}: needs about "), message
    assert "of memory to load, but only" in message and "parquet" in message
    return message


# --------------------------------------------------------------------------------------------
# the model of Predictions.from_arrays's copies


SCORE_CASES = [
    ("float32", (2,)),
    ("float64", (2,)),
    ("float16", (2,)),
    ("int8", (2,)),
    ("int64", (2,)),
    ("float32", ()),  # one score per row: expanded to two columns
    ("int16", ()),
    ("float64", (1,)),
]


@pytest.mark.parametrize(("scores_dtype", "tail"), SCORE_CASES)
@pytest.mark.parametrize("labels_dtype", ["int64", "int32", "float64", "float32", "bool", "soft"])
def test_prediction_copies_bound_what_from_arrays_allocates(
    scores_dtype, tail, labels_dtype
) -> None:
    n, k = 200_000, 10
    rng = np.random.default_rng(3)
    shape = (n, k) if tail == (2,) else (n, *tail)
    scores = (rng.normal(size=shape) * 3).astype(scores_dtype)
    classes = k if tail == (2,) else 2
    if labels_dtype == "soft":
        labels = rng.dirichlet(np.ones(classes), n)
    else:
        labels = rng.integers(0, 2 if labels_dtype == "bool" else classes, n).astype(labels_dtype)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        preds = Predictions.from_arrays(scores, labels)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert preds.n_rows == n
    estimate = memory.prediction_copies(scores.shape, scores.dtype, labels.shape, labels.dtype)
    # validation works in chunks of 2**19 numbers: its masks are the only thing not counted
    assert peak <= estimate + 2 * MiB, (peak / MiB, estimate / MiB)
    assert estimate <= 3 * peak + 2 * MiB, (peak / MiB, estimate / MiB)


def test_format_bytes_reaches_exbibytes() -> None:
    assert memory.format_bytes(4 * 10**18) == "3.5 EiB"
    assert memory.format_bytes(10**30).endswith(" EiB")


# --------------------------------------------------------------------------------------------
# .npz: the declared shapes, not the zip's compressed sizes


def test_memory_mapped_int8_logits_count_their_float64_copy(tmp_path, monkeypatch) -> None:
    n, k = 500_000, 10
    rng = np.random.default_rng(0)
    path = tmp_path / "int8.npz"
    labels = np.zeros(n, np.int64)
    np.savez(path, logits=rng.integers(-100, 100, (n, k), dtype=np.int8), labels=labels)
    _limit(monkeypatch, 20 * MiB)  # the file is 9 MB; the float64 copy alone is 40 MB
    message = _refused(path)
    assert "needs about 4" in message  # 40 MB of scores, labels and their copies
    _limit(monkeypatch, 200 * MiB)
    assert calibkit.read_predictions(path).n_rows == n


def test_uncompressed_labels_are_read_whole(tmp_path, monkeypatch) -> None:
    n = 2_000_000
    path = tmp_path / "labels.npz"
    np.savez(path, logits=np.zeros((n, 2), np.float32), labels=np.zeros(n, np.int64))
    _limit(monkeypatch, 12 * MiB)  # logits are mapped (free); the 16 MB of labels are read
    _refused(path)
    _limit(monkeypatch, 40 * MiB)
    calibkit.read_predictions(path)


def test_compressed_members_count_at_their_declared_size(tmp_path, monkeypatch) -> None:
    n, k = 100_000, 50  # 40 MB of float64 zeros compress to about 40 kB
    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, logits=np.zeros((n, k)), labels=np.zeros(n, np.int64))
    assert path.stat().st_size < MiB
    _limit(monkeypatch, 20 * MiB)
    message = _refused(path)
    assert "needs about 39." in message or "needs about 40." in message, message


def test_members_that_are_not_used_are_not_counted(tmp_path, monkeypatch) -> None:
    rng = np.random.default_rng(1)
    n = 1000
    path = tmp_path / "extra.npz"
    np.savez_compressed(
        path,
        logits=rng.normal(size=(n, 3)),
        labels=rng.integers(0, 3, n),
        features=rng.normal(size=(n, 2000)),  # 16 MB that ece never reads
    )
    _limit(monkeypatch, 2 * MiB)
    assert calibkit.read_predictions(path).n_rows == n


def test_members_named_without_the_npy_suffix_are_counted(tmp_path, monkeypatch) -> None:
    """numpy reads key ``labels`` from a member named ``labels`` before ``labels.npy``."""
    n = 2_000_000
    path = tmp_path / "bare.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for name, array in (("logits", np.zeros((n, 2), np.float32)), ("labels", np.zeros(n))):
            with zf.open(name, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, array)
    _limit(monkeypatch, 12 * MiB)  # 16 MB of float64 labels, then their int64 copy
    _refused(path)
    _limit(monkeypatch, 80 * MiB)
    preds = calibkit.read_predictions(path)
    assert isinstance(preds, Predictions)
    base = preds.scores
    while not isinstance(base, np.memmap) and getattr(base, "base", None) is not None:
        base = base.base
    assert isinstance(base, np.memmap)  # the bare-named logits member is mapped too


def test_mapped_float_logits_stay_free(tmp_path, monkeypatch) -> None:
    n, k = 200_000, 20
    path = tmp_path / "mapped.npz"
    np.savez(path, logits=np.zeros((n, k), np.float32), labels=np.zeros(n, np.int64))
    _limit(monkeypatch, 3 * MiB)  # 16 MB of logits mapped; 1.6 MB of labels and 0.6 MB of masks
    calibkit.read_predictions(path)


def test_the_cli_says_needed_versus_available_in_one_line(tmp_path) -> None:
    n, k = 500_000, 10
    path = tmp_path / "int8.npz"
    np.savez(path, logits=np.ones((n, k), np.int8), labels=np.zeros(n, np.int64))
    result = CliRunner().invoke(
        app, ["ece", str(path)], env={"CALIBKIT_MEMORY_LIMIT": str(10 * MiB)}
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"calibkit: error: {path}: needs about ")
    assert "but only 10.0 MiB is available" in lines[0]


# --------------------------------------------------------------------------------------------
# .pt: the zip directory before torch.load, the tensors' view sizes after it


def _deflate(src: Path, dst: Path) -> None:
    """Re-zip torch's archive with deflated records (torch.load accepts them)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info), compress_type=zipfile.ZIP_DEFLATED)


def test_a_deflated_pt_is_refused_before_it_is_decompressed(tmp_path, monkeypatch) -> None:
    n, k = 250_000, 10
    plain, packed = tmp_path / "plain.pt", tmp_path / "packed.pt"
    torch.save({"logits": torch.zeros(n, k), "labels": torch.zeros(n, dtype=torch.long)}, plain)
    _deflate(plain, packed)
    assert packed.stat().st_size < MiB < 10 * MiB < plain.stat().st_size
    obj = torch.load(packed, weights_only=True)  # a valid file torch reads
    assert obj["logits"].shape == (n, k)

    def no_load(*args, **kwargs):
        raise AssertionError("torch.load was called")

    _limit(monkeypatch, 5 * MiB)
    monkeypatch.setattr(torch, "load", no_load)
    _refused(packed)


def _save_expanded(path: Path, rows: int, cols: int, dtype=torch.float32) -> None:
    logits = torch.zeros(1, dtype=dtype).expand(rows, cols)
    torch.save({"logits": logits, "labels": torch.zeros(3, dtype=torch.long)}, path)


def test_an_expanded_view_counts_every_element(tmp_path, monkeypatch) -> None:
    path = tmp_path / "view.pt"
    _save_expanded(path, 1_000_000, 100)  # 400 MB of float32 from a 4-byte storage
    assert path.stat().st_size < 10_000
    _limit(monkeypatch, 100 * MiB)
    message = _refused(path)
    assert "needs about 381." in message, message


def test_an_expanded_bfloat16_view_counts_its_float32_copy(tmp_path, monkeypatch) -> None:
    path = tmp_path / "view16.pt"
    _save_expanded(path, 1_000_000, 20, torch.bfloat16)  # 40 MB of view, an 80 MB copy
    _limit(monkeypatch, 100 * MiB)
    message = _refused(path)
    assert "needs about 114." in message, message


def test_an_ordinary_pt_under_a_small_limit(tmp_path, monkeypatch) -> None:
    n = 20_000
    path = tmp_path / "small.pt"
    torch.save({"logits": torch.randn(n, 5), "labels": torch.randint(0, 5, (n,))}, path)
    _limit(monkeypatch, 2 * MiB)  # 400 kB of logits, 160 kB of labels, their masks
    assert calibkit.read_predictions(path).n_rows == n
    _limit(monkeypatch, 400_000)
    _refused(path)


@pytest.mark.parametrize("layout", ["logits", "confidence"])
def test_a_10_to_the_18_element_view_is_refused_at_once(tmp_path, layout) -> None:
    """The issue's 2 KB file: it used to run until killed; now it is refused with no limit set."""
    path = tmp_path / "huge.pt"
    if layout == "logits":
        _save_expanded(path, 10**12, 10**6)
    else:
        torch.save(
            {
                "confidence": torch.ones(1).expand(10**15),
                "correct": torch.ones(1).expand(10**15),
            },
            path,
        )
    assert path.stat().st_size < 4000
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "calibkit", "ece", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the expanded view was not refused within 120 s")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"calibkit: error: {path}: needs about ")
