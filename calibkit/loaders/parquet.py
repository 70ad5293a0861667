"""Streaming ``.parquet`` predictions with pyarrow, batch by batch.

Layouts (columns in any order):

* wide: ``logit_0 .. logit_{K-1}`` (or ``prob_0 ..``), ordered by the number in the name
  (``logit_10`` after ``logit_9``); a gap in the numbering is an error;
* one list or fixed-size-list column ``logits`` (or ``probs``) of length ``K`` on every row;
* one scalar float column ``logit`` / ``logits`` (or ``prob`` / ``probs``): a binary model;

plus a label column (``label``, ``labels``, ...; integers, or a list column of soft labels).
Only the needed columns are read, one record batch at a time, so memory is bounded by the batch
size (and by pyarrow's row-group size: a file written as a single row group is read whole).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.errors import InputError, describe
from calibkit.loaders.keys import ReadOptions, choose_keys, confidence_keys
from calibkit.predictions import (
    CONFIDENCE,
    SourceKind,
    default_chunk_rows,
    expand_binary,
    resolve_kind,
    validate_confidence,
    validate_labels,
    validate_scores,
)

__all__ = ["ParquetPredictions", "ShardedParquet", "open_parquet", "open_shards"]

_WIDE = re.compile(r"^(logit|prob)_(\d+)$", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class ParquetPredictions:
    """A parquet file of predictions, validated chunk by chunk as it is streamed."""

    path: Path
    source: str
    kind: SourceKind
    n_classes: int
    n_rows: int
    binary: bool
    soft_labels: bool
    score_columns: tuple[str, ...]
    label_column: str
    wide: bool
    score_key: str
    label_key: str
    kind_reason: str = ""

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = chunk_rows or default_chunk_rows(max(self.n_classes, 1))
        columns = [*self.score_columns, self.label_column]
        offset = 0
        try:
            # pre_buffer=False: the default read-ahead keeps every row group it has read
            with pq.ParquetFile(self.path, memory_map=False, pre_buffer=False) as pf:
                for batch in pf.iter_batches(batch_size=rows, columns=columns):
                    scores, labels = self.convert_batch(batch, offset)
                    offset += len(labels)
                    yield scores, labels
        except InputError:
            raise  # already names the file and the row
        except (OSError, ValueError, pa.ArrowException) as err:
            raise InputError(
                self.source, f"corrupted or truncated parquet ({describe(err)})"
            ) from None

    def convert_batch(self, batch: Any, offset: int) -> tuple[NDArray[np.floating], NDArray[Any]]:
        n = batch.num_rows
        if self.kind == CONFIDENCE:
            conf = _scalar_column(
                batch.column(self.score_columns[0]), self.score_key, self.source, offset
            )
            hit = _scalar_column(
                batch.column(self.label_column), self.label_key, self.source, offset
            )
            return validate_confidence(conf, hit, self.source, row_offset=offset)
        if self.wide:
            cols = [
                _scalar_column(batch.column(c), c, self.source, offset) for c in self.score_columns
            ]
            scores = np.column_stack(cols) if cols else np.empty((n, 0))
        else:
            name = self.score_columns[0]
            col = batch.column(name)
            if self.binary:
                scores = _scalar_column(col, name, self.source, offset).reshape(n, 1)
            else:
                scores = _list_column(col, name, self.n_classes, self.source, offset)
        validate_scores(scores, self.kind, self.source, row_offset=offset, reason=self.kind_reason)
        if scores.dtype.kind != "f":
            scores = scores.astype(np.float64)
        if self.binary:
            scores = expand_binary(scores, self.kind)
        lab_col = batch.column(self.label_column)
        if self.soft_labels:
            labels = _list_column(lab_col, self.label_column, self.n_classes, self.source, offset)
        else:
            labels = _scalar_column(lab_col, self.label_column, self.source, offset)
        return scores, validate_labels(labels, self.n_classes, self.source, row_offset=offset)


def _check_nulls(col: Any, name: str, source: str, offset: int, per_row: int = 1) -> None:
    """Refuse nulls; ``per_row`` > 1 for the flattened values of a list column."""
    if col.null_count:
        row = int(np.argmax(np.asarray(col.is_null()))) // per_row
        raise InputError(source, f"column {name!r} has a null at row {row + offset}")


def _scalar_column(col: Any, name: str, source: str, offset: int) -> NDArray[Any]:
    import pyarrow as pa

    _check_nulls(col, name, source, offset)
    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        raise InputError(source, f"column {name!r} must be numeric; found type {t}")
    if col.null_count == 0 and not pa.types.is_boolean(t):
        # straight from the Arrow buffer: no copy, and no lazy pandas import inside pyarrow
        # (which would swallow a Ctrl-C arriving meanwhile)
        dtype = np.dtype(t.to_pandas_dtype())
        data = np.frombuffer(col.buffers()[1], dtype=dtype)
        return data[col.offset : col.offset + len(col)]
    return np.asarray(col.to_numpy(zero_copy_only=False))


def _list_column(col: Any, name: str, k: int, source: str, offset: int) -> NDArray[Any]:
    _check_nulls(col, name, source, offset)
    n = len(col)
    lengths = np.asarray(col.value_lengths())
    if lengths.size and (lengths != k).any():
        row = int(np.argmax(lengths != k))
        raise InputError(
            source, f"column {name!r} has {lengths[row]} values at row {row + offset}, expected {k}"
        )
    values = col.flatten()
    _check_nulls(values, name, source, offset, per_row=k)
    arr = _scalar_column(values, name, source, offset)
    return arr.reshape(n, k)


def _list_length(field_type: Any, pf: Any, name: str, source: str) -> int:
    """Length of the lists in a list column (fixed size, or read off the first row)."""
    import pyarrow as pa

    if pa.types.is_fixed_size_list(field_type):
        return int(field_type.list_size)
    if pf.metadata.num_rows == 0:
        return 0
    try:
        first = next(pf.iter_batches(batch_size=1, columns=[name])).column(name)
    except StopIteration:
        raise InputError(source, "metadata counts rows but the file holds none") from None
    except (OSError, pa.ArrowException) as err:
        raise InputError(source, f"corrupted or truncated parquet ({describe(err)})") from None
    if first.null_count:
        raise InputError(source, f"column {name!r} has a null at row 0")
    return int(first.value_lengths()[0].as_py())


def open_parquet(path: Path, options: ReadOptions, source: str) -> ParquetPredictions:
    """Read the schema of a parquet file and decide which columns hold what (no data read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (OSError, ValueError, pa.ArrowException) as err:  # ValueError: names not UTF-8
        raise InputError(source, f"not a readable parquet file ({describe(err)})") from None
    with pf:
        try:
            schema = pf.schema_arrow
            names = list(schema.names)
        except (OSError, ValueError, pa.ArrowException) as err:  # e.g. names that are not UTF-8
            raise InputError(source, f"unreadable parquet schema ({describe(err)})") from None
        wide: dict[str, dict[int, str]] = {}
        for col in names:
            m = _WIDE.match(col)
            if m:
                wide.setdefault(m.group(1).lower(), {})[int(m.group(2))] = col
        pair = confidence_keys(names, options)
        if pair is not None:
            if int(pf.metadata.num_rows) == 0:
                raise InputError(source, "no rows: the predictions are empty")
            return ParquetPredictions(
                path=path,
                source=source,
                kind=CONFIDENCE,
                n_classes=0,
                n_rows=int(pf.metadata.num_rows),
                binary=False,
                soft_labels=False,
                score_columns=(pair[0],),
                label_column=pair[1],
                wide=False,
                score_key=pair[0],
                label_key=pair[1],
            )
        keys = names + [f"{p}_*" for p in wide]
        if (
            options.scores_key is not None
            and f"{options.scores_key.lower()}_*" in keys
            and options.scores_key not in names
        ):
            # --logits-key logit names the wide columns logit_0, logit_1, ...
            options = replace(options, scores_key=f"{options.scores_key.lower()}_*")
        scores_key, labels_key, kind = choose_keys(keys, options, source, what="columns")
        n_rows = int(pf.metadata.num_rows)
        if n_rows == 0:
            raise InputError(source, "no rows: the predictions are empty")
        label_type = schema.field(labels_key).type
        if scores_key in names:
            field_type = schema.field(scores_key).type
            if (
                pa.types.is_list(field_type)
                or pa.types.is_large_list(field_type)
                or pa.types.is_fixed_size_list(field_type)
            ):
                k = _list_length(field_type, pf, scores_key, source)
                binary = k == 1
                if binary:
                    raise InputError(
                        source,
                        f"column {scores_key!r} holds lists of length 1; "
                        "store a binary model's scores as a scalar column",
                    )
                if k < 2:
                    raise InputError(source, f"column {scores_key!r} holds empty lists")
            else:
                k, binary = 2, True
            score_columns: tuple[str, ...] = (scores_key,)
            is_wide = False
        else:
            prefix = scores_key[:-2]
            numbered = wide[prefix]
            k = max(numbered) + 1
            missing = sorted(set(range(k)) - set(numbered))
            if missing:
                raise InputError(
                    source,
                    f"columns {prefix}_0 .. {prefix}_{k - 1} have a gap: "
                    f"{prefix}_{missing[0]} is missing",
                )
            score_columns = tuple(numbered[i] for i in range(k))
            binary = k == 1
            is_wide = True
            if binary:
                k = 2
        soft = (
            pa.types.is_list(label_type)
            or pa.types.is_large_list(label_type)
            or pa.types.is_fixed_size_list(label_type)
        )
        if soft:
            lk = _list_length(label_type, pf, labels_key, source)
            if lk != k:
                raise InputError(
                    source, f"soft labels in {labels_key!r} have {lk} values, scores have {k}"
                )
    preds = ParquetPredictions(
        path=path,
        source=source,
        kind=kind,
        n_classes=k,
        n_rows=n_rows,
        binary=binary,
        soft_labels=soft,
        score_columns=score_columns,
        label_column=labels_key,
        wide=is_wide,
        score_key=scores_key,
        label_key=labels_key,
    )
    # --input forces the kind; else the name says, and the first batch read shows whether the
    # scores are probabilities in practice (later batches must agree: validation says so)
    look = options.kind is None and kind == "logits"
    choice = resolve_kind(
        _first_scores(preds) if look else np.empty((0, k)),
        source,
        forced=options.kind,
        named=kind,
        key=scores_key,
        forced_by="--input",
    )
    return replace(preds, kind=choice.kind, kind_reason=choice.reason)


def _first_scores(preds: ParquetPredictions) -> NDArray[Any]:
    """The scores of the first batch (the one column of a binary model), for choose_kind."""
    batches = preds.chunks()
    try:
        first = next(batches, None)
    finally:
        getattr(batches, "close", lambda: None)()  # a generator: close its file now
    if first is None:
        return np.empty((0, preds.n_classes))
    return first[0][:, 1:] if preds.binary else first[0]


@dataclass(frozen=True, eq=False)
class ShardedParquet:
    """Several parquet files with one layout, read as one data set, shard after shard.

    Errors name the shard and the row within it.
    """

    shards: tuple[ParquetPredictions, ...]
    source: str

    @property
    def kind(self) -> SourceKind:
        return self.shards[0].kind

    @property
    def n_classes(self) -> int:
        return self.shards[0].n_classes

    @property
    def binary(self) -> bool:
        return self.shards[0].binary

    @property
    def soft_labels(self) -> bool:
        return self.shards[0].soft_labels

    @property
    def n_rows(self) -> int:
        return sum(s.n_rows for s in self.shards)

    @property
    def kind_reason(self) -> str:
        return self.shards[0].kind_reason

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]:
        for shard in self.shards:
            yield from shard.chunks(chunk_rows)


def open_shards(paths: list[Path], options: ReadOptions, source: str) -> ShardedParquet:
    """Open every shard and check that they share one layout."""
    shards = tuple(open_parquet(p, options, str(p)) for p in paths)
    first = shards[0]
    for shard in shards[1:]:
        for attr in ("kind", "n_classes", "binary", "soft_labels"):
            if getattr(shard, attr) != getattr(first, attr):
                raise InputError(
                    shard.source,
                    f"{attr} is {getattr(shard, attr)!r}, but "
                    f"{first.source} has {getattr(first, attr)!r} (shards must share one layout)",
                )
    return ShardedParquet(shards, source)
