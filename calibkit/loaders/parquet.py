"""Streaming ``.parquet`` predictions with pyarrow, batch by batch.

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

Integrity: page checksums (CRC-32) are verified where the writer stored them (pyarrow >= 15);
the footer's row count must equal the sum of its row groups' counts when the file is opened,
and the number of rows actually read when it has been streamed. Either mismatch is an
:class:`~calibkit.errors.InputError`, never a count taken on trust.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.errors import InputError, Param, describe
from calibkit.loaders.keys import (
    ReadOptions,
    choose_labels_key,
    choose_scores_key,
    confidence_keys,
    family_key,
    family_prefix,
    quoted,
    shown,
)
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

__all__ = ["ParquetPredictions", "ShardedParquet", "open_parquet", "open_shards", "parquet_file"]

#: A column name ending in a number: the stem (prefix, maybe with ``_``) and the digits.
_NUMBERED = re.compile(r"^(.*?)(\d+)$", re.DOTALL)
#: Numbers with more significant digits than this cannot number a real column set; they get
#: distinct keys above any plausible class count, so the numbering check refuses them.
_MAX_DIGITS = 18


@cache
def _verifies_checksums() -> bool:
    """Whether the installed pyarrow can verify page checksums (added in pyarrow 15)."""
    import inspect

    import pyarrow.parquet as pq

    return "page_checksum_verification" in inspect.signature(pq.ParquetFile).parameters


def parquet_file(path: Path | str, **kwargs: Any) -> Any:
    """``pyarrow.parquet.ParquetFile(path, **kwargs)`` that verifies the CRC-32 of every page
    that stores one (pages without a checksum are read as before)."""
    import pyarrow.parquet as pq

    if _verifies_checksums():
        kwargs.setdefault("page_checksum_verification", True)
    return pq.ParquetFile(path, **kwargs)


def read_error(source: str, err: BaseException) -> InputError:
    """The one-line error for pyarrow failing while reading pages."""
    text = describe(err)
    if "checksum" in text.lower() or "crc" in text.lower():
        return InputError(source, f"corrupted parquet: a page checksum does not match ({text})")
    return InputError(source, f"corrupted or truncated parquet ({text})")


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
        """Validated ``(scores, labels)`` chunks; the rows read must be the rows the footer
        counts (checked as they come, and at the end of a complete pass)."""
        import pyarrow as pa

        rows = chunk_rows or default_chunk_rows(max(self.n_classes, 1))
        columns = [*self.score_columns, self.label_column]
        offset = 0
        try:
            # pre_buffer=False: the default read-ahead keeps every row group it has read
            with parquet_file(self.path, memory_map=False, pre_buffer=False) as pf:
                for batch in pf.iter_batches(batch_size=rows, columns=columns):
                    if offset + batch.num_rows > self.n_rows:
                        raise InputError(self.source, count_mismatch(self.n_rows, "more"))
                    scores, labels = self.convert_batch(batch, offset)
                    offset += len(labels)
                    yield scores, labels
        except InputError:
            raise  # already names the file and the row
        except (OSError, ValueError, pa.ArrowException) as err:
            raise read_error(self.source, err) from None
        if offset != self.n_rows:
            raise InputError(self.source, count_mismatch(self.n_rows, str(offset)))

    def stored_scores(self, batch: Any, offset: int) -> NDArray[Any]:
        """A batch's scores as stored, ``(n, K)`` (``(n, 1)`` for a binary model), not yet
        validated; only nulls and non-numeric columns are refused."""
        n = batch.num_rows
        if self.wide:
            cols = [
                _scalar_column(batch.column(c), c, self.source, offset) for c in self.score_columns
            ]
            return np.column_stack(cols) if cols else np.empty((n, 0))
        name = self.score_columns[0]
        col = batch.column(name)
        if self.binary:
            return _scalar_column(col, name, self.source, offset).reshape(n, 1)
        return _list_column(col, name, self.n_classes, self.source, offset)

    def convert_batch(self, batch: Any, offset: int) -> tuple[NDArray[np.floating], NDArray[Any]]:
        if self.kind == CONFIDENCE:
            conf = _scalar_column(
                batch.column(self.score_columns[0]), self.score_key, self.source, offset
            )
            hit = _scalar_column(
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
            labels = _list_column(lab_col, self.label_column, self.n_classes, self.source, offset)
        else:
            labels = _scalar_column(lab_col, self.label_column, self.source, offset)
        return scores, validate_labels(labels, self.n_classes, self.source, row_offset=offset)


def _check_nulls(col: Any, name: str, source: str, offset: int, per_row: int = 1) -> None:
    """Refuse nulls; ``per_row`` > 1 for the flattened values of a list column."""
    if col.null_count:
        row = int(np.argmax(np.asarray(col.is_null()))) // per_row
        raise InputError(source, f"column {quoted(name)} has a null at row {row + offset}")


def _scalar_column(col: Any, name: str, source: str, offset: int) -> NDArray[Any]:
    import pyarrow as pa

    _check_nulls(col, name, source, offset)
    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        raise InputError(source, f"column {quoted(name)} must be numeric; found type {t}")
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
            source,
            f"column {quoted(name)} has {lengths[row]} values at row {row + offset}, expected {k}",
        )
    values = col.flatten()
    _check_nulls(values, name, source, offset, per_row=k)
    arr = _scalar_column(values, name, source, offset)
    return arr.reshape(n, k)


def count_mismatch(claimed: int, read: str) -> str:
    return (
        f"the file's metadata counts {claimed} rows but it holds {read}: "
        "a corrupted or forged footer"
    )


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
        raise read_error(source, err) from None
    if first.null_count:
        raise InputError(source, f"column {quoted(name)} has a null at row 0")
    return int(first.value_lengths()[0].as_py())


def _is_list(field_type: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_list(field_type)
        or pa.types.is_large_list(field_type)
        or pa.types.is_fixed_size_list(field_type)
    )


def _check_row_counts(pf: Any, source: str) -> int:
    """The footer's row count, once it agrees with the sum over its row groups."""
    meta = pf.metadata
    claimed = int(meta.num_rows)
    groups = sum(int(meta.row_group(i).num_rows) for i in range(meta.num_row_groups))
    if claimed < 0 or groups != claimed:
        raise InputError(
            source,
            f"the file's metadata counts {claimed} rows but its row groups hold {groups}: "
            "a corrupted or forged footer",
        )
    return claimed


def _check_chunk_counts(pf: Any, columns: tuple[str, ...], source: str) -> None:
    """Each row group's stored values of ``columns`` (scalar ones) must match its row count.

    pyarrow reads as many rows as a row group *claims*, so a footer that understates them
    would silently drop rows; a flat column stores one value (or null) per row. Costs one
    metadata lookup per row group and column, so callers pass a few columns, not all.
    """
    meta = pf.metadata
    schema = meta.schema
    paths = [schema.column(j).path for j in range(meta.num_columns)]
    leaves = {c: paths.index(c) for c in columns if paths.count(c) == 1}
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        for name, j in leaves.items():
            stored = int(group.column(j).num_values)
            if stored != group.num_rows:
                raise InputError(
                    source,
                    f"row group {i} counts {group.num_rows} rows but column {quoted(name)} "
                    f"stores {stored} values: a corrupted or forged footer",
                )


# --------------------------------------------------------------------------------------------
# which columns hold what


def _families(names: list[str]) -> dict[str, dict[int, list[str]]]:
    """Numbered columns by family prefix (see :func:`~calibkit.loaders.keys.family_prefix`):
    ``{prefix: {number: [names spelling that number]}}``; ``p_0`` and ``p0`` are one family."""
    out: dict[str, dict[int, list[str]]] = {}
    for i, name in enumerate(names):
        m = _NUMBERED.match(name)
        if m is None:
            continue
        stem, digits = m.groups()
        significant = digits.lstrip("0") or "0"
        # a number too long for int() is far beyond any column count: refused as sparse
        too_long = len(significant) > _MAX_DIGITS
        number = 10**_MAX_DIGITS + i if too_long else int(significant)
        out.setdefault(family_prefix(stem), {}).setdefault(number, []).append(name)
    return out


def _span(members: dict[int, list[str]]) -> str:
    """``p0 .. p9`` (or ``p0`` alone): how a family's columns are shown in a message."""
    first, last = members[min(members)][0], members[max(members)][0]
    return shown(first) if first == last else f"{shown(first)} .. {shown(last)}"


def _family_columns(members: dict[int, list[str]], source: str) -> tuple[str, ...]:
    """The columns of a family in class order, refusing duplicates, gaps and sparse numbers.

    Works on the numbers present only, so a name like ``logit_30000000`` costs nothing.
    """
    for number in sorted(members):
        spelled = members[number]
        if len(spelled) > 1:
            if len(set(spelled)) == 1:
                raise InputError(
                    source, f"column {quoted(spelled[0])} appears {len(spelled)} times"
                )
            both = " and ".join(quoted(n) for n in spelled[:2])
            raise InputError(
                source, f"columns {both} both number class {number}: rename or drop one"
            )
    numbers = sorted(members)
    k = len(numbers)
    if numbers[-1] != k - 1:
        missing = next(i for i, n in enumerate(numbers) if n != i)
        low = members[numbers[0]][0]
        digits = _NUMBERED.match(low).group(2)  # type: ignore[union-attr]
        stem = low[: len(low) - len(digits)]
        width = len(digits) if digits.startswith("0") and len(digits) > 1 else 1
        raise InputError(
            source,
            f"columns {shown(stem)}{0:0{width}d} .. {shown(members[numbers[-1]][0])} have a "
            f"gap: {shown(stem)}{missing:0{width}d} is missing",
        )
    return tuple(members[i][0] for i in range(k))


@dataclass(frozen=True)
class _Columns:
    """Which columns hold the scores and the labels, and what the names say the scores are."""

    score_key: str  # a column name, or a family's key (``logit_*``)
    score_columns: tuple[str, ...]
    wide: bool
    kind: ScoreKind | None  # options.kind, else what the name says; None: the name does not say
    label_key: str

    @property
    def described(self) -> str:
        if self.wide:
            return f"the columns {shown(self.score_columns[0])} .. {shown(self.score_columns[-1])}"
        return f"column {quoted(self.score_key)}"


def _key_param(kind: ScoreKind | None, prefix: str) -> Param:
    """``scores_key=prefix``; on the command line, the key flag of ``kind``."""
    return Param("scores_key", prefix, alias="probs_key" if kind == "probs" else "logits_key")


def _chosen_family(key: str, families: dict[str, dict[int, list[str]]]) -> str | None:
    """The prefix of the family that a key from ``choose_scores_key`` stands for, else None."""
    prefix = "" if key == "*" else key[:-2] if key.endswith("_*") else None
    if prefix is None or prefix not in families or family_key(prefix) != key:
        return None
    return prefix


def _choose_columns(names: list[str], options: ReadOptions, source: str) -> _Columns:
    """Pick the score and label columns from a schema (nothing read), refusing ambiguity."""
    label_hint = options.labels_key if options.labels_key in names else None
    families = _families([n for n in names if n != label_hint])
    score_key, kind = choose_scores_key(names, options, source, what="columns", families=families)
    family = _chosen_family(score_key, families)
    if family is not None:
        if score_key in names:
            raise InputError(
                source,
                f"column {quoted(score_key)} clashes with the columns "
                f"{_span(families[family])}: rename it",
            )
        score_columns = _family_columns(families[family], source)
        wide = True
    else:
        m = _NUMBERED.match(score_key)
        if m is not None:
            siblings = families.get(family_prefix(m.group(1)), {})
            if sum(len(spelled) for spelled in siblings.values()) > 1:
                # p0 next to p1: class 0's score, not a binary model's positive class
                stem = m.group(1)
                prefix = stem[:-1] if stem.endswith("_") else stem
                how = (
                    "name the prefix: " + _key_param(kind, shown(prefix))
                    if prefix
                    else "leave out the key and give " + Param("kind", kind or "logits|probs")
                )
                raise InputError(
                    source,
                    f"column {quoted(score_key)} is one of the columns {_span(siblings)}, "
                    f"one per class, not a binary model's score; to read them all, " + how,
                )
        own = family_prefix(score_key)
        if own in families:
            raise InputError(
                source,
                f"both column {quoted(score_key)} and the columns {_span(families[own])} "
                "could hold the scores: drop or rename one",
            )
        score_columns = (score_key,)
        wide = False
    label_key = choose_labels_key(names, options, source, what="columns")
    if label_key in score_columns:
        raise InputError(source, f"column {quoted(label_key)} cannot be scores and labels")
    counts = Counter(names)
    for col in (*score_columns, label_key):
        if counts[col] > 1:
            raise InputError(source, f"column {quoted(col)} appears {counts[col]} times")
    return _Columns(score_key, score_columns, wide, kind, label_key)


def open_parquet(path: Path, options: ReadOptions, source: str) -> ParquetPredictions:
    """Read the schema of a parquet file and decide which columns hold what (no data read)."""
    import pyarrow as pa

    try:
        pf = parquet_file(path)
    except (OSError, ValueError, pa.ArrowException) as err:  # ValueError: names not UTF-8
        raise InputError(source, f"not a readable parquet file ({describe(err)})") from None
    with pf:
        try:
            schema = pf.schema_arrow
            names = list(schema.names)
        except (OSError, ValueError, pa.ArrowException) as err:  # e.g. names that are not UTF-8
            raise InputError(source, f"unreadable parquet schema ({describe(err)})") from None
        n_rows = _check_row_counts(pf, source)
        pair = confidence_keys(names, options, _families(names))
        if pair is not None:
            if n_rows == 0:
                raise InputError(source, "no rows: the predictions are empty")
            for col in pair:
                if names.count(col) > 1:
                    raise InputError(
                        source, f"column {quoted(col)} appears {names.count(col)} times"
                    )
            _check_chunk_counts(pf, pair, source)
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
            )
        cols = _choose_columns(names, options, source)
        # What the scores are: options.kind, else what the name says; None means the name does
        # not say (score_*, bare integers), and the values decide (see resolve_kind below).
        named: ScoreKind | None = cols.kind
        kind: ScoreKind = cols.kind or "logits"  # provisional: logits accept any real value
        if n_rows == 0:
            raise InputError(source, "no rows: the predictions are empty")
        scores_key, labels_key = cols.score_key, cols.label_key
        _check_chunk_counts(pf, (cols.score_columns[0], labels_key), source)
        label_type = schema.field(labels_key).type
        if cols.wide:
            k = len(cols.score_columns)
            binary = k == 1
            if binary:
                k = 2
        else:
            field_type = schema.field(scores_key).type
            if _is_list(field_type):
                k = _list_length(field_type, pf, scores_key, source)
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
        soft = _is_list(label_type)
        if soft:
            lk = _list_length(label_type, pf, labels_key, source)
            if lk != k:
                raise InputError(
                    source, f"soft labels in {quoted(labels_key)} have {lk} values, scores have {k}"
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
    import pyarrow as pa

    rows = default_chunk_rows(max(preds.n_classes, 1))
    try:
        with parquet_file(preds.path, memory_map=False, pre_buffer=False) as pf:
            batches = pf.iter_batches(batch_size=rows, columns=list(preds.score_columns))
            first = next(iter(batches), None)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise read_error(preds.source, err) from None
    if first is None:
        return np.empty((0, preds.n_classes))
    return preds.stored_scores(first, 0)


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
