"""What the distributed-engine tests share: parquet shard writers, the sample data and a
comparer of JSON documents (``tests/engine`` is on ``sys.path`` through its conftest)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

TESTS = Path(__file__).resolve().parent

#: Keys whose values differ from run to run (when a document was made, how long it took).
VOLATILE = frozenset({"created", "created_at", "timestamp", "date", "elapsed", "seconds", "time"})


def write_shards(
    folder: Path,
    columns: Mapping[str, Any],
    sizes: Sequence[int],
    *,
    row_group_size: int | None = None,
) -> Path:
    """The rows of ``columns`` (arrays, or lists for list columns) as parquet shards of
    ``sizes`` rows (repeated until every row is written) in ``folder``; returns ``folder``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    n = len(next(iter(columns.values())))
    start, k = 0, 0
    while start < n:
        stop = min(n, start + sizes[k % len(sizes)])
        table = pa.table({name: _column(col, start, stop) for name, col in columns.items()})
        pq.write_table(
            table, folder / f"part-{k:04d}.parquet", row_group_size=row_group_size or None
        )
        start, k = stop, k + 1
    return folder


def _column(col: Any, start: int, stop: int) -> Any:
    import pyarrow as pa

    if isinstance(col, np.ndarray) and col.ndim == 2:  # a list column (soft labels, logits)
        return pa.array(list(col[start:stop]), type=pa.list_(pa.from_numpy_dtype(col.dtype)))
    return col[start:stop]


def wide(scores: np.ndarray, labels: np.ndarray, prefix: str = "logit_") -> dict[str, Any]:
    """Columns ``prefix0 .. prefix{K-1}`` and ``label``."""
    out: dict[str, Any] = {f"{prefix}{j}": scores[:, j] for j in range(scores.shape[1])}
    out["label"] = labels
    return out


def sample(name: str) -> dict[str, np.ndarray]:
    """The arrays of ``sample_data/<name>``."""
    with np.load(TESTS.parents[1] / "sample_data" / name, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def assert_same(local: Any, dask: Any, *, rel: float = 1e-12, path: str = "$") -> None:
    """``dask`` equals ``local``: the same keys and list lengths, integers (counts) and text
    exactly, floats to ``rel`` relative (``abs`` below 1e-300: both zero); keys in
    :data:`VOLATILE` are skipped."""
    if isinstance(local, Mapping):
        assert isinstance(dask, Mapping), f"{path}: {dask!r} is not an object"
        assert sorted(local) == sorted(dask), f"{path}: keys {sorted(local)} != {sorted(dask)}"
        for key in local:
            if key not in VOLATILE:
                assert_same(local[key], dask[key], rel=rel, path=f"{path}.{key}")
    elif isinstance(local, list | tuple):
        assert isinstance(dask, list | tuple), f"{path}: {dask!r} is not a list"
        assert len(local) == len(dask), f"{path}: {len(local)} items != {len(dask)}"
        for i, (a, b) in enumerate(zip(local, dask, strict=True)):
            assert_same(a, b, rel=rel, path=f"{path}[{i}]")
    elif isinstance(local, float) and not isinstance(dask, bool):
        assert isinstance(dask, float | int), f"{path}: {dask!r} is not a number"
        if math.isnan(local):
            assert math.isnan(dask), f"{path}: {dask} != nan"
        else:
            assert math.isclose(local, dask, rel_tol=rel, abs_tol=1e-300), (
                f"{path}: {dask!r} != {local!r}"
            )
    else:  # int (counts), str, bool, None: exactly
        assert type(local) is type(dask) and local == dask, f"{path}: {dask!r} != {local!r}"
