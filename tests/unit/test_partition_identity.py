"""A pass split into parts gives the local engine's numbers bit for bit (#17).

Every splittable input streams, part by part, the chunks the local engine streams (shards one
part each; a single parquet file in runs of whole row groups, whose batches never span two
groups; in-memory arrays at chunk boundaries), so the merged sums are the same floats. Checked
here without a cluster: an executor that pickles each part and its pass function (as a worker
would receive them), runs the parts in shuffled order, and returns the results.
"""

from __future__ import annotations

import itertools
import pickle
import random
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from calibkit.calibrators.temperature import fit_temperature
from calibkit.engine.executors import using_executor
from calibkit.loaders import read_predictions
from calibkit.metrics import summarize
from calibkit.sources.digest import LabelDigest
from calibkit.sources.predictions import Predictions
from calibkit.stats.bootstrap import paired_bootstrap

T = TypeVar("T")
R = TypeVar("R")

cloudpickle = pytest.importorskip("cloudpickle")


class PicklingCluster:
    """A stand-in for the Dask executor: each item and the function go through cloudpickle,
    and the items run in a shuffled order."""

    distributed = True

    def __init__(self, hint: int = 3, seed: int = 0) -> None:
        self.hint, self.seed, self.items = hint, seed, 0

    def partition_hint(self) -> int:
        return self.hint

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        return map(fn, items)

    def map_remote(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        work = [cloudpickle.dumps((fn, item)) for item in items]
        self.items += len(work)
        random.Random(self.seed).shuffle(work)
        for blob in work:
            f, item = pickle.loads(blob)
            yield pickle.loads(pickle.dumps(f(item)))


def _logits(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=3.0, size=(n, k)).astype(np.float32)
    y = rng.integers(0, k, n)
    return z, y


def _parquet(path: Path, z: np.ndarray, y: np.ndarray, group: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({**{f"logit_{j}": z[:, j] for j in range(z.shape[1])}, "label": y})
    pq.write_table(table, path, row_group_size=group)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    d = tmp_path_factory.mktemp("parts")
    z, y = _logits(1003, 7, 0)
    zb = z * np.float32(1.7)
    (d / "shards").mkdir()
    (d / "shards_b").mkdir()
    cuts = [0, 1, 2, 300, 301, 777, 1003]
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        _parquet(d / "shards" / f"p{i:02d}.parquet", z[a:b], y[a:b], 64)
    for i, (a, b) in enumerate(zip([0, 500], [500, 1003], strict=True)):  # another layout
        _parquet(d / "shards_b" / f"q{i}.parquet", zb[a:b], y[a:b], 100)
    one = _parquet(d / "one.parquet", z, y, 37)
    base = _parquet(d / "base.parquet", zb, y, 53)
    np.savez(d / "mem.npz", logits=z, labels=y)
    np.savez(d / "mem_b.npz", logits=zb, labels=y)
    return {
        "single parquet file": (str(one), str(base)),
        "shard directories": (str(d / "shards"), str(d / "shards_b")),
        "in memory": (str(d / "mem.npz"), str(d / "mem_b.npz")),
    }


def _run(cand: str, base: str, chunk_rows: int | None) -> dict[str, Any]:
    c, b = read_predictions(cand), read_predictions(base)
    s = summarize(c, chunk_rows=chunk_rows)
    m = summarize(b, binning="mass", n_bins=10, chunk_rows=chunk_rows)
    t = fit_temperature(b, chunk_rows=chunk_rows).temperature
    boot = paired_bootstrap(c, b, replicates=200, seed=3, chunk_rows=chunk_rows)
    dc, db = LabelDigest(c), LabelDigest(b)
    summarize(dc, chunk_rows=chunk_rows)
    summarize(db, chunk_rows=chunk_rows)
    return {
        "ece": s.ece,
        "nll": s.nll,
        "brier": s.brier,
        "counts": s.bins.count.tolist(),
        "conf": s.bins.sum_confidence.tolist(),
        "mass_edges": m.bins.upper.tolist(),
        "mass_ece": m.ece,
        "T": t,
        "boot": {k: v.tolist() for k, v in boot.replicates.items()},
        "point": boot.point,
        "same_labels": dc.digest == db.digest,
    }


@pytest.mark.parametrize("chunk_rows", [None, 50, 97])
@pytest.mark.parametrize("name", ["single parquet file", "shard directories", "in memory"])
def test_parts_give_the_local_numbers_bit_for_bit(
    inputs: dict[str, tuple[str, str]], name: str, chunk_rows: int | None
) -> None:
    cand, base = inputs[name]
    local = _run(cand, base, chunk_rows)
    cluster = PicklingCluster(hint=4, seed=len(name))
    with using_executor(cluster):
        split = _run(cand, base, chunk_rows)
    assert cluster.items > 0  # the passes did go through the parts
    assert split == local  # floats compared with ==: bit for bit
    assert local["same_labels"]


def test_a_single_file_splits_into_several_parts(inputs: dict[str, tuple[str, str]]) -> None:
    src = read_predictions(inputs["single parquet file"][0])
    plan = src.partitions(None, 4)
    assert len(plan.parts) == 4
    assert [p.start for p in plan.parts] == sorted(p.start for p in plan.parts)
    assert sum(p.rows for p in plan.parts) == src.n_rows


def test_few_shards_split_into_row_group_runs(inputs: dict[str, tuple[str, str]]) -> None:
    src = read_predictions(inputs["shard directories"][1])  # 2 shards of 100-row groups
    assert len(src.partitions(None, 2).parts) == 2  # one per shard
    plan = src.partitions(None, 8)  # a larger cluster: runs of row groups within each shard
    assert len(plan.parts) == 8
    assert [p.start for p in plan.parts] == sorted(p.start for p in plan.parts)
    assert sum(p.rows for p in plan.parts) == src.n_rows
    local = summarize(src, chunk_rows=30)
    with using_executor(PicklingCluster(hint=8)):
        split = summarize(src, chunk_rows=30)
    assert (split.ece, split.nll, split.bins.count.tolist()) == (
        local.ece,
        local.nll,
        local.bins.count.tolist(),
    )


def test_in_memory_parts_are_chunk_aligned() -> None:
    z, y = _logits(101, 3, 1)
    p = Predictions.from_arrays(z, y)
    plan = p.partitions(10, 3)
    assert [(q.start, q.rows) for q in plan.parts] == [(0, 40), (40, 40), (80, 21)]
