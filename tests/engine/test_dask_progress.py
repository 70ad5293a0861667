"""Progress on the Dask engine: a pass reports the rows of each part when the part's results
are merged, and ends at the source's rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _engine_helpers import wide, write_shards

pytest.importorskip("distributed")


@pytest.mark.parametrize("layout", ["memory", "shards"])
def test_a_dask_pass_reports_each_part_as_merged(
    healthy: Any, tmp_path: Path, rng: np.random.Generator, layout: str
) -> None:
    from calibkit import progress
    from calibkit.engine.dask_executor import DaskExecutor
    from calibkit.engine.passes import run_pass
    from calibkit.loaders import read_predictions
    from calibkit.sources.partitions import plan_of
    from calibkit.sources.predictions import Predictions

    n = 503
    logits, labels = rng.normal(size=(n, 3)), rng.integers(0, 3, n)
    if layout == "memory":
        source: Any = Predictions.from_arrays(logits, labels)
    else:
        source = read_predictions(write_shards(tmp_path, wide(logits, labels), [1, 200, 2, 97]))
    ex = DaskExecutor(healthy)
    plan = plan_of(source, 10, ex.partition_hint())
    assert plan is not None and len(plan.parts) > 1
    merged: list[int] = []
    rec = progress.Recorder()
    with progress.reporting(rec):
        chunks = run_pass(
            source,
            lambda c: c.rows,
            merged.append,
            chunk_rows=10,
            executor=ex,
            description="p: metrics",
        )
    (task,) = rec.tasks
    assert (task.description, task.total, task.unit, task.finished) == (
        "p: metrics",
        n,
        "rows",
        True,
    )
    assert task.advances == [p.rows for p in plan.parts]  # one advance per part, in row order
    assert task.done == n == sum(merged) and chunks == len(merged)
