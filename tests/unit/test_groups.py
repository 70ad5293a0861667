"""Groups of rows (``--group-by``): columns from every format, codes, subsets as sources."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from calibkit.errors import InputError, UsageError
from calibkit.loaders import read_predictions
from calibkit.metrics import summarize
from calibkit.sources.groups import (
    MISSING,
    MemoryColumns,
    group_column,
    group_rows,
    parse_group_by,
    subset,
)
from calibkit.sources.partitions import plan_of
from calibkit.sources.predictions import ConfidenceRows, Predictions


def _preds(n: int = 600, seed: int = 0) -> tuple[Predictions, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4)) * 3
    y = rng.integers(0, 4, n)
    cols = {"task": rng.choice(["b", "a", "c"], n), "level": rng.integers(1, 3, n)}
    p = Predictions.from_arrays(z, y)
    return dataclasses.replace(p, columns=MemoryColumns(cols)), cols


def test_codes_match_a_pandas_groupby() -> None:
    p, cols = _preds()
    g = group_rows(p, ["task", "level"])
    frame = pd.DataFrame({"task": cols["task"], "level": cols["level"].astype(str)})
    expected = frame.groupby(["task", "level"]).size()
    assert [tuple(k) for k in expected.index] == list(g.keys)
    assert g.counts.tolist() == expected.tolist()
    for i, key in enumerate(g.keys):
        want = (frame["task"] == key[0]) & (frame["level"] == key[1])
        assert np.array_equal(g.rows(i), want.to_numpy())
    assert g.label(0) == "task=a, level=1"
    assert g.as_dict(0) == {"task": "a", "level": "1"}


@pytest.mark.parametrize("chunk_rows", [1, 7, 100, None])
def test_a_subset_summarises_as_the_group_alone(chunk_rows: int | None) -> None:
    p, _ = _preds()
    g = group_rows(p, ["task"])
    for i in range(g.n_groups):
        m = g.rows(i)
        got = summarize(subset(p, m), n_bins=10, chunk_rows=chunk_rows)
        ref = summarize(Predictions.from_arrays(p.scores[m], p.labels[m]), n_bins=10)
        assert got.n == int(m.sum())
        assert got.ece == pytest.approx(ref.ece, rel=1e-12)
        assert got.nll == pytest.approx(ref.nll, rel=1e-12)
        assert got.accuracy == ref.accuracy


def test_a_subset_splits_with_its_base() -> None:
    p, _ = _preds()
    m = group_rows(p, ["task"]).rows(1)
    plan = plan_of(subset(p, m), 50, 4)
    assert plan is not None
    assert sum(part.rows for part in plan.parts) == int(m.sum())
    starts = [part.start for part in plan.parts]
    assert starts == sorted(starts) and starts[0] == 0
    rows = np.concatenate([y for part in plan.parts for _, y in part.source.chunks(50)])
    assert np.array_equal(rows, p.labels[m])


def test_values_are_text_and_missing_is_a_group() -> None:
    conf = ConfidenceRows.from_arrays([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 1, 0])
    values = np.array([3.0, 3, None, float("nan"), "3"], dtype=object)
    rows = dataclasses.replace(conf, columns=MemoryColumns({"k": values}))
    g = group_rows(rows, ["k"])
    assert g.keys == ((MISSING,), ("3",))
    assert g.counts.tolist() == [2, 3]


def test_npz_members_and_parquet_columns_are_columns(tmp_path) -> None:
    rng = np.random.default_rng(1)
    z, y = rng.normal(size=(40, 3)), rng.integers(0, 3, 40)
    subject = rng.choice(["x", "y"], 40)
    np.savez(tmp_path / "p.npz", logits=z, labels=y, subject=subject)
    src = read_predictions(tmp_path / "p.npz")
    assert np.array_equal(group_column(src, "subject"), subject)
    pd.DataFrame({"logits": list(z), "labels": y, "subject": subject}).to_parquet(
        tmp_path / "p.parquet"
    )
    src = read_predictions(tmp_path / "p.parquet")
    assert list(group_column(src, "subject")) == list(subject)


def test_shards_concatenate_their_columns(tmp_path) -> None:
    rng = np.random.default_rng(2)
    parts = []
    (tmp_path / "d").mkdir()
    for i in range(3):
        z, y = rng.normal(size=(10 + i, 3)), rng.integers(0, 3, 10 + i)
        s = np.array([f"s{i}"] * (10 + i))
        np.savez(tmp_path / "d" / f"{i}.npz", logits=z, labels=y, source=s)
        parts.append(s)
    src = read_predictions(tmp_path / "d")
    assert list(group_column(src, "source")) == list(np.concatenate(parts))
    g = group_rows(src, ["source"])
    assert g.counts.tolist() == [10, 11, 12]


def test_a_missing_column_is_one_line_naming_the_columns(tmp_path) -> None:
    np.savez(tmp_path / "p.npz", logits=np.zeros((3, 2)), labels=[0, 1, 0])
    src = read_predictions(tmp_path / "p.npz")
    with pytest.raises(InputError, match=r"has no column 'task' to group by \(columns: 'logits'"):
        group_rows(src, ["task"])
    np.savez(tmp_path / "q.npz", logits=np.zeros((3, 2)), labels=[0, 1, 0], task=[1, 2])
    with pytest.raises(InputError, match="one value per row"):
        group_rows(read_predictions(tmp_path / "q.npz"), ["task"])
    bare = Predictions.from_arrays(np.zeros((3, 2)), [0, 1, 0])
    with pytest.raises(InputError, match="holds no columns"):
        group_rows(bare, ["task"])


def test_group_by_specs() -> None:
    assert parse_group_by(["task", "a, b"]) == ("task", "a", "b")
    assert parse_group_by(None) == ()
    with pytest.raises(UsageError, match="twice"):
        parse_group_by(["a", "a"])
    with pytest.raises(UsageError, match="needs a column name"):
        parse_group_by(["a,"])


def test_a_null_or_nan_field_of_a_record_file_is_the_missing_group(tmp_path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(
        '{"confidence": 0.9, "correct": 1, "subject": NaN}\n'
        '{"confidence": 0.8, "correct": 0, "subject": "a"}\n'
        '{"confidence": 0.7, "correct": 1, "subject": null}\n'
        '{"confidence": 0.6, "correct": 1}\n'
    )
    g = group_rows(read_predictions(path), ["subject"])
    assert g.keys == ((MISSING,), ("a",))
    assert g.counts.tolist() == [3, 1]


def test_length_normalize_is_refused_where_there_are_no_choice_texts(tmp_path) -> None:
    from calibkit.loaders import ReadOptions

    np.savez(tmp_path / "p.npz", logits=np.zeros((3, 2)), labels=[0, 1, 0])
    with pytest.raises(InputError, match="applies to lm-evaluation-harness samples only"):
        read_predictions(tmp_path / "p.npz", ReadOptions(length_normalize="char"))
