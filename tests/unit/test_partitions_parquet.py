"""Parquet sources split for a distributed engine (issue #17): shards one part each, a file in
parts of whole row groups; parts pickle as paths, stream exactly the rows of the whole, keep the
footer's row-count checks, and a corrupt shard is named at open and while streaming."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from _cli import invoke, one_error_line
from typer.testing import CliRunner

from calibkit.errors import InputError
from calibkit.loaders import read_predictions
from calibkit.loaders.parquet import ParquetPredictions, ShardedParquet
from calibkit.readers.parquet import stream_batches
from calibkit.sources.partitions import Plan

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _table(n: int, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k))
    return pa.table(
        {**{f"logit_{j}": z[:, j] for j in range(k)}, "label": rng.integers(0, k, n)}
    ), z


def _rows(plan: Plan, chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
    scores = [s for p in plan.parts for s, _ in p.source.chunks(chunk_rows)]
    labels = [y for p in plan.parts for _, y in p.source.chunks(chunk_rows)]
    return np.concatenate(scores), np.concatenate(labels)


def _whole(src, chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
    parts = list(src.chunks(chunk_rows))
    return np.concatenate([s for s, _ in parts]), np.concatenate([y for _, y in parts])


def test_shards_split_one_part_per_shard(tmp_path: Path) -> None:
    sizes = [1, 40, 7, 1, 23]
    for i, n in enumerate(sizes):
        pq.write_table(_table(n, seed=i)[0], tmp_path / f"s{i}.parquet", row_group_size=5)
    src = read_predictions(tmp_path)
    assert isinstance(src, ShardedParquet)
    plan = src.partitions(4, 2)
    starts = np.cumsum([0, *sizes[:-1]]).tolist()
    assert [(p.start, p.rows) for p in plan.parts] == list(zip(starts, sizes, strict=True))
    assert [p.source for p in plan.parts] == list(src.shards)
    again = pickle.loads(pickle.dumps(plan))
    assert all(isinstance(p.source, ParquetPredictions) for p in again.parts)
    for chunk_rows in (1, 3, 64):
        # chunk for chunk what the local engine streams
        local = list(src.chunks(chunk_rows))
        remote = [c for p in again.parts for c in p.source.chunks(chunk_rows)]
        assert len(local) == len(remote)
        for (s1, y1), (s2, y2) in zip(local, remote, strict=True):
            np.testing.assert_array_equal(s1, s2)
            np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("hint", [1, 2, 3, 4, 7, 100])
def test_a_file_splits_into_whole_row_groups(tmp_path: Path, hint: int) -> None:
    table, z = _table(103)
    path = tmp_path / "p.parquet"
    pq.write_table(table, path, row_group_size=10)  # 10 groups of 10 and one of 3
    src = read_predictions(path)
    assert isinstance(src, ParquetPredictions)
    plan = src.partitions(8, hint)
    assert len(plan.parts) == min(hint, 11)
    groups = [g for p in plan.parts for g in p.source.row_groups]
    assert groups == list(range(11))  # every group once, in order
    assert plan.n_rows == 103
    start = 0
    for part in plan.parts:
        assert part.start == start == part.source.first_row
        assert (
            part.rows
            == part.source.n_rows
            == sum(src.group_rows[g] for g in part.source.row_groups)
        )
        assert part.rows > 0
        start += part.rows
    again = pickle.loads(pickle.dumps(plan))
    for chunk_rows in (1, 8, 1000):
        scores, labels = _rows(again, chunk_rows)
        np.testing.assert_array_equal(scores, z)
        np.testing.assert_array_equal(labels, table.column("label").to_numpy())
        w_scores, w_labels = _whole(src, chunk_rows)
        np.testing.assert_array_equal(scores, w_scores)
        np.testing.assert_array_equal(labels, w_labels)


def test_parts_are_balanced_and_empty_row_groups_join_a_part(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    table, _ = _table(60)
    with pq.ParquetWriter(path, table.schema) as writer:
        writer.write_table(table.slice(0, 0))  # an empty first group
        for a in range(0, 60, 10):
            writer.write_table(table.slice(a, 10))
            if a == 20:
                writer.write_table(table.slice(0, 0))
        writer.write_table(table.slice(0, 0))  # and a trailing one
    src = read_predictions(path)
    assert 0 in src.group_rows
    plan = src.partitions(None, 3)
    assert [p.rows for p in plan.parts] == [20, 20, 20]
    assert sorted(g for p in plan.parts for g in p.source.row_groups) == list(
        range(len(src.group_rows))
    )
    np.testing.assert_array_equal(_rows(plan, 7)[0], _whole(src, 7)[0])


def test_a_part_of_a_part_splits_its_own_groups(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(_table(80)[0], path, row_group_size=10)
    src = read_predictions(path)
    half = src.partitions(None, 2).parts[1].source
    sub = half.partitions(None, 2)
    assert [(p.start, p.rows, p.source.first_row) for p in sub.parts] == [(0, 20, 40), (20, 20, 60)]
    np.testing.assert_array_equal(_rows(sub, 3)[0], _whole(half, 3)[0])


def test_row_group_selection_in_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    table, z = _table(30)
    pq.write_table(table, path, row_group_size=10)
    batches = list(stream_batches(path, ["logit_0"], 4, 20, str(path), row_groups=(0, 2)))
    got = np.concatenate([b.column("logit_0").to_numpy() for b in batches])
    np.testing.assert_array_equal(got, np.concatenate([z[:10, 0], z[20:, 0]]))
    # the rows read must be the rows the selected groups count
    with pytest.raises(InputError, match="metadata counts 21 rows but it holds"):
        list(stream_batches(path, ["logit_0"], 4, 21, str(path), row_groups=(0, 2)))
    with pytest.raises(InputError, match="no longer"):
        list(stream_batches(path, ["logit_0"], 4, 10, str(path), row_groups=(5,)))


def test_row_count_checks_hold_per_part(tmp_path: Path) -> None:
    """A part whose footer counts disagree with the rows its groups hold is refused, as the
    whole file is (a part claiming one row more than its groups hold)."""
    path = tmp_path / "p.parquet"
    pq.write_table(_table(30)[0], path, row_group_size=10)
    part = read_predictions(path).partitions(None, 3).parts[1].source
    forged = pickle.loads(pickle.dumps(replace(part, n_rows=part.n_rows + 1)))
    with pytest.raises(InputError) as err:
        list(forged.chunks())
    assert err.value.source == str(path)
    assert "corrupted or forged footer" in str(err.value)


def test_errors_in_a_part_name_the_file_and_its_row(tmp_path: Path) -> None:
    table, z = _table(30)
    z[23, 1] = np.nan
    bad = pa.table({**{f"logit_{j}": z[:, j] for j in range(3)}, "label": table["label"]})
    path = tmp_path / "p.parquet"
    pq.write_table(bad, path, row_group_size=10)
    part = read_predictions(path).partitions(None, 3).parts[2]
    assert part.start == 20
    with pytest.raises(InputError) as err:
        list(pickle.loads(pickle.dumps(part.source)).chunks(4))
    assert err.value.source == str(path)
    assert "row 23" in str(err.value)


def _garble_last_column_chunk(path: Path) -> None:
    """Overwrite bytes just before the footer: the last row group's label pages (read only when
    the shard is streamed, never when it is opened)."""
    raw = bytearray(path.read_bytes())
    footer = int.from_bytes(raw[-8:-4], "little")
    end = len(raw) - 8 - footer
    raw[end - 40 : end - 8] = b"\x5a" * 32
    path.write_bytes(bytes(raw))


def test_corrupt_shard_named_at_open_and_while_streaming(tmp_path: Path, runner: CliRunner) -> None:
    for i in range(3):
        pq.write_table(
            _table(50, seed=i)[0],
            tmp_path / f"s{i}.parquet",
            row_group_size=10,
            write_page_checksum=True,
            compression="none",
        )
    bad = tmp_path / "s1.parquet"
    good = bad.read_bytes()
    bad.write_bytes(good[: len(good) - 20])  # truncated: the footer is gone
    msg = one_error_line(invoke(runner, "ece", tmp_path), bad)
    assert "parquet" in msg
    with pytest.raises(InputError) as err:
        read_predictions(tmp_path)
    assert err.value.source == str(bad)

    bad.write_bytes(good)
    _garble_last_column_chunk(bad)
    src = read_predictions(tmp_path)  # opens: the footer and the first batch are intact
    assert src.n_rows == 150
    with pytest.raises(InputError) as err:
        list(src.chunks())
    assert err.value.source == str(bad)
    msg = one_error_line(invoke(runner, "ece", tmp_path), bad)
    assert "corrupted" in msg
    # and on a worker: the part of that shard names it
    part = pickle.loads(pickle.dumps(src.partitions(None, 3).parts[1]))
    with pytest.raises(InputError) as err:
        list(part.source.chunks())
    assert err.value.source == str(bad)


def test_empty_shards_among_others(tmp_path: Path) -> None:
    """A writer's empty shard (0 rows) takes the others' layout, streams nothing and has no
    part; one without their columns is named; every shard empty is refused."""
    table, z = _table(30)
    pq.write_table(table.slice(0, 0), tmp_path / "a.parquet")  # empty first
    pq.write_table(table.slice(0, 20), tmp_path / "b.parquet")
    pq.write_table(table.slice(0, 0), tmp_path / "c.parquet")
    pq.write_table(table.slice(20, 10), tmp_path / "d.parquet")
    src = read_predictions(tmp_path)
    assert src.n_rows == 30 and [s.n_rows for s in src.shards] == [0, 20, 0, 10]
    np.testing.assert_array_equal(_whole(src, 7)[0], z)
    plan = src.partitions(7, 4)
    assert [(p.start, p.rows) for p in plan.parts] == [(0, 20), (20, 10)]
    np.testing.assert_array_equal(_rows(plan, 7)[0], z)
    pq.write_table(pa.table({"other": pa.array([], pa.float64())}), tmp_path / "c.parquet")
    with pytest.raises(InputError, match="not found") as err:
        read_predictions(tmp_path)
    assert err.value.source == str(tmp_path / "c.parquet")
    for name in ("b", "c", "d"):
        pq.write_table(table.slice(0, 0), tmp_path / f"{name}.parquet")
    with pytest.raises(InputError, match="every shard is empty"):
        read_predictions(tmp_path)
