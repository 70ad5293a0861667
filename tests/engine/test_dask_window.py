"""The tasks in flight and the results waiting to be merged stay within the window (#17).

Regression: a slow first part let the client submit every other part and hold all their
results until the first came back (the window counted tasks in flight only).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from calibkit.engine.passes import Chunk, run_pass
from calibkit.loaders import read_predictions

pytest.importorskip("distributed")

from calibkit.engine.dask_executor import DaskExecutor


def _slow_first(chunk: Chunk) -> int:
    if chunk.start == 0:
        time.sleep(2.0)  # the first part straggles
    return chunk.rows


def test_a_straggler_does_not_let_results_pile_up(
    dask_client: Any, healthy: Any, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for i in range(40):  # 40 shards: 40 parts, far more than the window
        table = pa.table({"confidence": np.full(5, 0.5), "correct": np.ones(5, dtype=bool)})
        pq.write_table(table, tmp_path / f"s{i:02d}.parquet")
    ex = DaskExecutor(dask_client, parts_per_thread=1)  # 2 threads: window 4
    assert ex.window() == 4
    submitted = 0
    original = ex._submit

    def counting(fn: Any, item: Any) -> Any:
        nonlocal submitted
        submitted += 1
        return original(fn, item)

    ex._submit = counting  # type: ignore[method-assign]
    merged: list[int] = []
    at_first_merge: list[int] = []

    def merge(n: int) -> None:
        if not merged:
            at_first_merge.append(submitted)
        merged.append(n)

    run_pass(read_predictions(tmp_path), _slow_first, merge, executor=ex)
    assert submitted == 40 and sum(merged) == 200
    assert at_first_merge[0] <= ex.window()  # the others waited for the straggler
