"""Streaming ``.parquet`` predictions: the columns of :mod:`calibkit.readers.parquet` validated
batch by batch into a :class:`~calibkit.sources.predictions.PredictionSource`.

Layouts (columns in any order):

* wide: a numbered family of columns, one per class, ordered by the number (``logit_10`` after
  ``logit_9``): ``logit_0 .. logit_{K-1}``, ``prob_0 ..``, ``p0 ..`` (with or without the
  underscore; see :mod:`calibkit.loaders.keys` for the prefixes), ``score_0 ..``, or bare
  integers ``0 .. K-1`` (pandas' names for ``pd.DataFrame(clf.predict_proba(X))``), or any
  prefix named with ``--logits-key``/``--probs-key``. The numbers must be exactly
  ``0 .. K-1``, each spelled once: a gap, a number beyond the columns present
  (``logit_30000000``), the same number spelled twice (``logit_0`` next to ``logit_00``) or a
  column name that appears twice is refused before any data is read. Naming one column of a
  family of several (``--probs-key p0`` next to ``p1``) is refused too: it is one class's
  score, never a binary model's positive class;
* one list or fixed-size-list column ``logits`` (or ``probs``) of length ``K`` on every row;
* one scalar float column ``logit`` / ``logits`` (or ``prob`` / ``probs``), or a family of one
  column (``logit_0``): a binary model;

plus a label column (``label``, ``labels``, ...; integers, or a list column of soft labels).
Only the needed columns are read, one record batch at a time, so memory is bounded by the batch
size (and by pyarrow's row-group size: a file written as a single row group is read whole).

Which columns hold what is :func:`calibkit.loaders.keys.choose_columns`. Integrity is the
reader's: page checksums (CRC-32) are verified where the writer stored them (pyarrow >= 15); the
footer's row count must equal the sum of its row groups' counts when the file is opened, and the
number of rows actually read when it has been streamed. Either mismatch is an
:class:`~calibkit.errors.InputError`, never a count taken on trust.

Splitting for a distributed engine (:mod:`calibkit.sources.partitions`): a file splits into
parts of whole row groups (:meth:`ParquetPredictions.partitions`; each part is the same source
restricted to those groups, their rows counted by the footer and checked as they are read, its
errors naming rows of the whole file); shards split one part per shard
(:meth:`ShardedParquet.partitions`). Parts hold paths or URLs, never open files: a worker opens
its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.errors import InputError, Param
from calibkit.io.urls import Location
from calibkit.loaders.keys import ReadOptions, choose_columns, confidence_keys, families_of
from calibkit.loaders.shards import ShardSet, shard_parts
from calibkit.readers.names import quoted
from calibkit.readers.parquet import (
    first_batch,
    is_list,
    list_column,
    open_parquet_file,
    parquet_errors,
    scalar_column,
    stream_batches,
)
from calibkit.sources.groups import FileColumns
from calibkit.sources.partitions import Part, Plan
from calibkit.sources.predictions import (
    CONFIDENCE,
    ScoreKind,
    SourceKind,
    default_chunk_rows,
    expand_binary,
    resolve_kind,
    validate_confidence,
    validate_labels,
    validate_scores,
)

__all__ = ["ParquetPredictions", "ShardedParquet", "open_parquet", "open_shards"]


@dataclass(kw_only=True, frozen=True, eq=False)
class ParquetPredictions:
    """A parquet file of predictions, validated chunk by chunk as it is streamed.

    ``row_groups`` restricts it to some of its row groups (a part, see :meth:`partitions`):
    ``n_rows`` is then theirs and ``first_row`` the file's row the first of them starts at.
    """

    path: Location
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
    #: ``--labels-from-counts``: the label lists are counts, divided by their row sums
    labels_from_counts: bool = False
    #: each row group's rows, as the footer counts them (every group of the file)
    group_rows: tuple[int, ...] = ()
    #: the row groups read (``None``: all of them)
    row_groups: tuple[int, ...] | None = None
    #: the file's row at which the first row read lies (row numbers in errors count from it)
    first_row: int = 0
    #: ``--parse-confidence``: a confidence column of text (``"80%"``, ``"8/10"``) is parsed
    parse_confidence: bool = False

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]:
        """Validated ``(scores, labels)`` chunks; the rows read must be the rows the footer
        counts (checked as they come, and at the end of a complete pass)."""
        rows = chunk_rows or default_chunk_rows(max(self.n_classes, 1))
        columns = [*self.score_columns, self.label_column]
        offset = self.first_row
        with parquet_errors(self.source):  # an InputError already names the file and the row
            batches = stream_batches(
                self.path, columns, rows, self.n_rows, self.source, row_groups=self.row_groups
            )
            for batch in batches:
                scores, labels = self.convert_batch(batch, offset)
                offset += len(labels)
                yield scores, labels

    @property
    def columns(self) -> FileColumns:
        """The file's columns, for ``--group-by`` (:mod:`calibkit.sources.groups`)."""
        return FileColumns(self.path, self.source)

    def partitions(self, chunk_rows: int | None, hint: int) -> Plan:
        """About ``hint`` parts of whole row groups, in file order (fewer when the file has
        fewer groups); each is this source restricted to its groups (see
        :mod:`calibkit.sources.partitions`). A part of a part splits its own groups."""
        groups = (
            list(range(len(self.group_rows))) if self.row_groups is None else list(self.row_groups)
        )
        if not groups:  # no footer counts known: the file is one part
            return Plan((Part(0, self.n_rows, self),))
        hint = max(1, hint)
        runs: list[list[int]] = []  # the groups of each part
        rows: list[int] = []
        before, last = 0, -1
        for g in groups:
            n = self.group_rows[g]
            # the share of the rows the middle of this group lies in; an empty group joins the
            # part before it (or the first part)
            share = min(hint - 1, (2 * before + n) * hint // max(1, 2 * self.n_rows))
            if share != last and (n or not runs):
                runs.append([])
                rows.append(0)
                last = share
            runs[-1].append(g)
            rows[-1] += n
            before += n
        parts: list[Part] = []
        start = 0
        for run, n in zip(runs, rows, strict=True):
            parts.append(self._part(start, self.first_row + start, run, n))
            start += n
        return Plan(tuple(parts))

    def _part(self, start: int, first_row: int, groups: list[int], rows: int) -> Part:
        return Part(
            start, rows, replace(self, row_groups=tuple(groups), n_rows=rows, first_row=first_row)
        )

    def stored_scores(self, batch: Any, offset: int) -> NDArray[Any]:
        """A batch's scores as stored, ``(n, K)`` (``(n, 1)`` for a binary model), not yet
        validated; only nulls and non-numeric columns are refused."""
        n = batch.num_rows
        if self.wide:
            cols = [
                scalar_column(batch.column(c), c, self.source, offset) for c in self.score_columns
            ]
            return np.column_stack(cols) if cols else np.empty((n, 0))
        name = self.score_columns[0]
        col = batch.column(name)
        if self.binary:
            return scalar_column(col, name, self.source, offset).reshape(n, 1)
        return list_column(col, name, self.n_classes, self.source, offset)

    def _confidences(self, col: Any, offset: int) -> NDArray[Any]:
        """A batch's confidences: numbers, or text parsed with ``--parse-confidence``
        (:func:`calibkit.loaders.records.parse_confidence`: ``"80%"``, ``"0.8"``, ``"8/10"``)."""
        import pyarrow as pa

        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            return scalar_column(col, self.score_key, self.source, offset)
        if not self.parse_confidence:
            raise InputError(
                self.source,
                f"column {quoted(self.score_key)} holds text; to read confidences such as "
                '"80%" or "8/10", give ' + Param("parse_confidence", True),
            )
        from calibkit.loaders.records import parse_confidence

        values = np.empty(len(col), dtype=np.float64)
        for i, text in enumerate(col.to_pylist()):
            parsed = None if text is None else parse_confidence(text)
            if parsed is None:
                what = (
                    "is missing (null)"
                    if text is None
                    else (f"{text[:40]!r} is not a number, a percentage or a fraction")
                )
                raise InputError(self.source, f"row {offset + i}: {quoted(self.score_key)} {what}")
            values[i] = parsed
        return values

    def convert_batch(self, batch: Any, offset: int) -> tuple[NDArray[np.floating], NDArray[Any]]:
        if self.kind == CONFIDENCE:
            conf = self._confidences(batch.column(self.score_columns[0]), offset)
            hit = scalar_column(
                batch.column(self.label_column), self.label_key, self.source, offset
            )
            return validate_confidence(conf, hit, self.source, row_offset=offset)
        scores = self.stored_scores(batch, offset)
        validate_scores(scores, self.kind, self.source, row_offset=offset, reason=self.kind_reason)
        if scores.dtype.kind != "f":
            scores = scores.astype(np.float64)
        if self.binary:
            scores = expand_binary(scores, self.kind)
        lab_col = batch.column(self.label_column)
        if self.soft_labels:
            labels = list_column(lab_col, self.label_column, self.n_classes, self.source, offset)
        else:
            labels = scalar_column(lab_col, self.label_column, self.source, offset)
        return scores, validate_labels(
            labels,
            self.n_classes,
            self.source,
            row_offset=offset,
            from_counts=self.labels_from_counts,
        )


def open_parquet(path: Location, options: ReadOptions, source: str) -> ParquetPredictions:
    """Read the schema of a parquet file and decide which columns hold what (no data read)."""
    with open_parquet_file(path, source) as pf:
        names, schema, n_rows = pf.names, pf.schema, pf.n_rows
        group_rows = pf.group_rows
        pair = confidence_keys(names, options, families_of(names))
        if pair is not None:
            if n_rows == 0:
                raise InputError(source, "no rows: the predictions are empty")
            for col in pair:
                if names.count(col) > 1:
                    raise InputError(
                        source, f"column {quoted(col)} appears {names.count(col)} times"
                    )
            pf.check_value_counts(pair)
            return ParquetPredictions(
                path=path,
                source=source,
                kind=CONFIDENCE,
                n_classes=0,
                n_rows=n_rows,
                binary=False,
                soft_labels=False,
                score_columns=(pair[0],),
                label_column=pair[1],
                wide=False,
                score_key=pair[0],
                label_key=pair[1],
                group_rows=group_rows,
                parse_confidence=options.parse_confidence,
            )
        cols = choose_columns(names, options, source)
        # What the scores are: options.kind, else what the name says; None means the name does
        # not say (score_*, bare integers), and the values decide (see resolve_kind below).
        named: ScoreKind | None = cols.kind
        kind: ScoreKind = cols.kind or "logits"  # provisional: logits accept any real value
        if n_rows == 0:
            raise InputError(source, "no rows: the predictions are empty")
        scores_key, labels_key = cols.score_key, cols.label_key
        pf.check_value_counts((cols.score_columns[0], labels_key))
        label_type = schema.field(labels_key).type
        if cols.wide:
            k = len(cols.score_columns)
            binary = k == 1
            if binary:
                k = 2
        else:
            field_type = schema.field(scores_key).type
            if is_list(field_type):
                k = pf.list_length(scores_key, field_type)
                binary = k == 1
                if binary:
                    raise InputError(
                        source,
                        f"column {quoted(scores_key)} holds lists of length 1; "
                        "store a binary model's scores as a scalar column",
                    )
                if k < 2:
                    raise InputError(source, f"column {quoted(scores_key)} holds empty lists")
            else:
                k, binary = 2, True
        soft = is_list(label_type)
        if soft:
            lk = pf.list_length(labels_key, label_type)
            if lk != k:
                raise InputError(
                    source, f"soft labels in {quoted(labels_key)} have {lk} values, scores have {k}"
                )
        elif options.labels_from_counts:
            raise InputError(
                source,
                Param("labels_from_counts", True)
                + f" needs a list column of counts per class; {quoted(labels_key)} holds one "
                "value per row",
            )
    preds = ParquetPredictions(
        path=path,
        source=source,
        kind=kind,
        n_classes=k,
        n_rows=n_rows,
        binary=binary,
        soft_labels=soft,
        score_columns=cols.score_columns,
        label_column=labels_key,
        wide=cols.wide,
        score_key=scores_key,
        label_key=labels_key,
        labels_from_counts=options.labels_from_counts,
        group_rows=group_rows,
    )
    # --input forces the kind; else the name says, and the first batch read shows whether the
    # scores are probabilities in practice (later batches must agree: validation says so)
    look = options.kind is None and kind == "logits"
    choice = resolve_kind(
        _first_scores(preds) if look else np.empty((0, k)),
        source,
        forced=options.kind,
        named=named,
        key=scores_key,
        forced_by="--input",
    )
    return replace(preds, kind=choice.kind, kind_reason=choice.reason)


def _first_scores(preds: ParquetPredictions) -> NDArray[Any]:
    """The stored scores of the first batch, for choose_kind: only the score columns are read
    (the label column and the validation wait for the metrics pass)."""
    rows = default_chunk_rows(max(preds.n_classes, 1))
    first = first_batch(preds.path, list(preds.score_columns), rows, preds.source)
    if first is None:
        return np.empty((0, preds.n_classes))
    return preds.stored_scores(first, 0)


@dataclass(frozen=True, eq=False)
class ShardedParquet(ShardSet):
    """Several parquet files with one layout, read as one data set, shard after shard.

    Errors name the shard and the row within it.
    """

    shards: tuple[ParquetPredictions, ...]

    def partitions(self, chunk_rows: int | None, hint: int) -> Plan:
        """One part per shard (but empty ones), in order; with fewer shards than ``hint``, each
        shard splits further into runs of whole row groups (about ``hint / shards`` each), so a
        cluster larger than the number of shards has work for every worker. Either way a worker
        streams exactly the chunks the local engine does (no batch spans two row groups)."""
        if len(self.shards) >= hint:
            return Plan(shard_parts(self.shards))
        per = -(-hint // max(1, len(self.shards)))
        parts, start = [], 0
        for shard in self.shards:
            if shard.n_rows:
                for part in shard.partitions(chunk_rows, per).parts:
                    parts.append(Part(start + part.start, part.rows, part.source))
            start += shard.n_rows
        return Plan(tuple(parts))


def open_shards(paths: list[Location], options: ReadOptions, source: str) -> ShardedParquet:
    """Open every shard and check that they share one layout.

    A shard whose footer counts no rows (a writer's empty output) is allowed among others: it
    takes their layout, must hold their columns, and streams nothing; every shard empty is the
    error an empty file is.
    """
    empty: dict[int, tuple[list[str], tuple[int, ...]]] = {}
    for i, p in enumerate(paths):
        with open_parquet_file(p, str(p)) as pf:
            if pf.n_rows == 0:
                empty[i] = (pf.names, pf.group_rows)
    if len(empty) == len(paths):
        raise InputError(source, "no rows: every shard is empty")
    opened = {i: open_parquet(p, options, str(p)) for i, p in enumerate(paths) if i not in empty}
    first = opened[min(opened)]
    for shard in opened.values():
        for attr in ("kind", "n_classes", "binary", "soft_labels"):
            if getattr(shard, attr) != getattr(first, attr):
                raise InputError(
                    shard.source,
                    f"{attr} is {getattr(shard, attr)!r}, but "
                    f"{first.source} has {getattr(first, attr)!r} (shards must share one layout)",
                )
    shards = []
    for i, p in enumerate(paths):
        if i in opened:
            shards.append(opened[i])
            continue
        names, groups = empty[i]
        for column in (*first.score_columns, first.label_column):
            if column not in names:
                raise InputError(
                    str(p),
                    f"column {quoted(column)} not found, but {first.source} has it "
                    "(shards must share one layout)",
                )
        shards.append(
            replace(first, path=p, source=str(p), n_rows=0, group_rows=groups, row_groups=None)
        )
    return ShardedParquet(tuple(shards), source)
