"""The remaining loops over chunks go through the pass engine (#14).

``metrics.conventions`` (the other tools' bins and scikit-learn's log loss) and the rewriter of
``apply-temp`` read their chunks through :func:`calibkit.engine.passes.run_pass`. The
conventions run on the installed executor, so a shuffling one on another thread must give the
same numbers bit for bit; the rewriter runs serially, one chunk read and written before the
next is read (the memory that :func:`calibkit.report.rewrite.rewrite_memory` counts), whatever
executor is installed. A static check keeps new code from reading chunks on its own.
"""

from __future__ import annotations

import ast
import copy
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from _executors import Shuffled

from calibkit.calibrators.temperature import TemperatureScaler
from calibkit.engine.executors import using_executor
from calibkit.metrics.conventions import CONVENTIONS, convention_bins, sklearn_log_loss
from calibkit.report import rewrite
from calibkit.sources import predictions as predictions_module
from calibkit.sources.predictions import Predictions

T = TypeVar("T")
R = TypeVar("R")
PACKAGE = Path(__file__).resolve().parents[2] / "calibkit"


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """About 100 rows a chunk for 5 classes: the inputs below are read in many chunks."""
    monkeypatch.setattr(predictions_module, "CHUNK_ELEMENTS", 500)


def _preds(kind: str, dtype: Any = np.float64, binary: bool = False) -> Predictions:
    rng = np.random.default_rng(3)
    k = 2 if binary else 5
    z = rng.normal(size=(1037, k)) * 3
    y = (z + rng.gumbel(size=z.shape) * 2).argmax(axis=1)
    if binary:
        z = z[:, 1] - z[:, 0]
    scores = z if kind == "logits" else np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return Predictions.from_arrays(scores.astype(dtype), y)


@pytest.mark.parametrize(
    ("kind", "dtype", "binary"),
    [("logits", np.float64, False), ("probs", np.float32, False), ("logits", np.float32, True)],
)
def test_conventions_run_on_the_installed_executor(
    small_chunks: None, kind: str, dtype: Any, binary: bool
) -> None:
    preds = _preds(kind, dtype, binary)
    assert len(list(preds.chunks())) >= 5
    with using_executor("serial"):
        want = [convention_bins(preds, c) for c in CONVENTIONS[1:]], sklearn_log_loss(preds)
    shuffled = Shuffled()
    with using_executor(shuffled):
        got = [convention_bins(preds, c) for c in CONVENTIONS[1:]], sklearn_log_loss(preds)
    assert shuffled.items == len(CONVENTIONS[1:]) * len(list(preds.chunks())) + len(
        list(preds.chunks())
    )
    assert shuffled.threads and threading.current_thread().name not in shuffled.threads
    assert got[1] == want[1]  # the same float, summed in chunk order
    for a, b in zip(got[0], want[0], strict=True):
        for field in ("lower", "upper", "count", "sum_confidence", "sum_outcome"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), strict=True)
        assert a.total == b.total and a.ece() == b.ece()


def test_conventions_refuse_soft_labels_through_the_engine() -> None:
    rng = np.random.default_rng(0)
    soft = rng.dirichlet(np.ones(3), size=20)
    preds = Predictions.from_arrays(rng.normal(size=(20, 3)), soft)
    with using_executor(Shuffled()), pytest.raises(Exception, match="need hard labels"):
        convention_bins(preds, "guo")
    with pytest.raises(Exception, match="need hard labels"):
        sklearn_log_loss(preds)


class _Logged(Predictions):
    """Predictions that log each chunk they hand out."""

    log: list[str]

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[Any, Any]]:
        for i, chunk in enumerate(super().chunks(chunk_rows)):
            self.log.append(f"read {i}")
            yield chunk


def _logged(preds: Predictions, log: list[str], path: Path) -> _Logged:
    out = copy.copy(preds)
    object.__setattr__(out, "__class__", _Logged)
    object.__setattr__(out, "source", str(path))
    object.__setattr__(out, "log", log)
    return out  # type: ignore[return-value]


@pytest.mark.parametrize("suffix", [".npz", ".pt"])
def test_the_rewriter_writes_each_chunk_before_it_reads_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """One chunk in memory at a time, whatever executor is installed (it is not used)."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 4)).astype(np.float32)
    y = rng.integers(0, 4, size=300)
    path = tmp_path / f"in{suffix}"
    if suffix == ".npz":
        np.savez(path, logits=z, labels=y)
    else:
        torch = pytest.importorskip("torch")
        torch.save({"logits": torch.from_numpy(z), "labels": torch.from_numpy(y)}, path)
    preds = Predictions.from_arrays(z, y)
    object.__setattr__(preds, "score_key", "logits")
    log: list[str] = []
    source = _logged(preds, log, path)
    scaled = rewrite._scaled

    def logged_scale(scores: Any, kind: str, scaler: Any) -> Any:
        log.append("scale")
        return scaled(scores, kind, scaler)

    monkeypatch.setattr(rewrite, "_scaled", logged_scale)
    real_pass = rewrite.run_pass

    def logged_pass(src: Any, fn: Any, merge: Any, **kwargs: Any) -> int:
        assert kwargs["executor"] == "serial"

        def write(chunk: Any) -> None:
            log.append("write")
            merge(chunk)

        return real_pass(src, fn, write, **kwargs)

    monkeypatch.setattr(rewrite, "run_pass", logged_pass)
    shuffled = Shuffled()
    with using_executor(shuffled):
        out = rewrite.write_calibrated(source, TemperatureScaler(2.0), tmp_path / f"o{suffix}",
                                       chunk_rows=64)  # fmt: skip
    assert shuffled.items == 0  # the installed executor is not used: one chunk at a time
    assert log == [e for i in range(5) for e in (f"read {i}", "scale", "write")]
    if suffix == ".npz":
        with np.load(out) as f:
            np.testing.assert_array_equal(f["logits"], (z.astype(np.float64) / 2.0).astype(z.dtype))
            np.testing.assert_array_equal(f["labels"], y)


#: Modules that call ``.chunks(`` outside the pass engine and the sources, and why.
READS_CHUNKS = {
    "loaders/__init__.py": "load_predictions concatenates a whole source into memory; loaders "
    "sit below the engine in the layer order",
    "loaders/shards.py": "ShardSet.chunks (parquet and npz shards) is a source: the chunks of "
    "its shards in turn",
    "loaders/npz.py": "NpzShard.chunks, one shard read when streamed, is a source",
    "calibrators/base.py": "the calibrated view's chunks() is a source over its base's chunks",
}


def _chunk_calls(path: Path) -> list[tuple[int, str | None]]:
    """``(line, enclosing function)`` of every ``.chunks(...)`` call."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "chunks"
                ):
                    found.append((node.lineno, func.name))
    return found


def test_only_the_engine_and_sources_read_chunks() -> None:
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE))
        if rel.startswith(("engine/", "sources/")):
            continue
        for line, func in _chunk_calls(path):
            if rel in READS_CHUNKS and (rel == "loaders/__init__.py" or func == "chunks"):
                continue  # a source's own chunks(), or the whole-input loader
            hits.append(f"{rel}:{line} in {func}()")
    assert hits == [], "read chunks through calibkit.engine.passes.run_pass"
