"""Slices of a prediction source: the rows that share the values of one or more columns.

``--group-by task`` (and ``--group-by task,subject`` or the option twice, for the cross product)
asks every command for its numbers per group. This module is the one seam for it, below the
metrics: it reads the grouping columns (:func:`group_column`), turns their values into group
codes (:func:`group_rows`, a :class:`Grouping`) and gives each group as a source of its own
(:func:`subset`, a :class:`RowSubset` view that streams only the group's rows, in their order).
A metric computed on a :class:`RowSubset` is that metric of the group: nothing downstream knows
about groups, and every pass keeps its guarantees (chunk-size independence, the Dask engine).

Where columns come from
    A source holds its other columns in ``columns`` (an object with ``names()`` and
    ``read(name)``, such as :class:`MemoryColumns` or :class:`FileColumns`), or answers
    ``group_column(name)`` itself (sets of shards: every shard's column, in shard order); a view
    asks its ``base``. ``.npz`` archives group by a 1-D member, parquet files by a column, record
    files (``.jsonl``, ``.csv``) by a field (nested fields by a dotted path, ``doc.subject``).

Group values
    Values are compared as text: ``str`` of the value (an integral float ``3.0`` is ``"3"``,
    bytes are decoded as UTF-8), so ``3``, ``3.0`` and ``"3"`` are one group. A missing value
    (``None``, NaN, an empty string) is the group :data:`MISSING`, never dropped: every row is in
    exactly one group. Groups are numbered in the sorted order of their values (the first
    column first); reports order them as they need (the worst first, the largest first).

Small groups
    :data:`MIN_GROUP_ROWS` (300) is HELM's guideline for the fewest examples a 10-bin ECE is
    worth reporting on; reports flag smaller groups, they do not drop them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.errors import InputError, Param, UsageError
from calibkit.sources.partitions import Part, Plan, plan_of
from calibkit.sources.predictions import PredictionSource, SourceView

__all__ = [
    "MAX_GROUPS",
    "MIN_GROUP_ROWS",
    "MISSING",
    "FileColumns",
    "Grouping",
    "MemoryColumns",
    "RowSubset",
    "group_column",
    "group_rows",
    "parse_group_by",
    "subset",
]

#: HELM's guideline: about 300 examples are needed before a 10-bin ECE means much.
MIN_GROUP_ROWS = 300
#: The most groups one ``--group-by`` may make (a column of ids, grouped by mistake, is refused).
MAX_GROUPS = 10_000
#: The value of a row whose grouping column is missing (``None``, NaN or empty).
MISSING = "(missing)"


class MemoryColumns:
    """Columns held in memory: ``{name: 1-D array of one value per row}``."""

    def __init__(self, columns: Mapping[str, Any]) -> None:
        self._columns = {name: np.asarray(values) for name, values in columns.items()}

    def names(self) -> list[str]:
        return list(self._columns)

    def read(self, name: str) -> NDArray[Any]:
        return self._columns[name]

    def __reduce__(self) -> tuple[Any, ...]:
        return (MemoryColumns, (self._columns,))


@dataclass(frozen=True)
class FileColumns:
    """The columns of a file, read through its format's reader when one is asked for: the
    module's ``read_column(path, name, source)`` when it has one (parquet: strings too), else
    its ``read_arrays`` (an ``.npz`` member)."""

    path: Any  # a Path or a URL string
    source: str

    def _reader(self) -> Any:
        from calibkit.readers import format_for

        if isinstance(self.path, str) and "://" in self.path:
            raise InputError(self.source, "grouping columns are read from local files only")
        return format_for(self.path, self.source).reader()

    def names(self) -> list[str]:
        return list(self._reader().list_keys(Path(self.path), self.source))

    def read(self, name: str) -> NDArray[Any]:
        reader = self._reader()
        one = getattr(reader, "read_column", None)  # a format whose columns are not all numbers
        if one is not None:
            return np.asarray(one(Path(self.path), name, self.source))
        return np.asarray(reader.read_arrays(Path(self.path), [name], self.source)[name])


def _lookup(source: Any, name: str) -> NDArray[Any] | None:
    node = source
    while node is not None:
        columns = getattr(node, "columns", None)
        if columns is not None:
            if name not in columns.names():
                shown = ", ".join(repr(n) for n in columns.names()[:20]) or "none"
                raise InputError(
                    source.source, f"has no column {name!r} to group by (columns: {shown})"
                )
            return np.asarray(columns.read(name))
        own = getattr(node, "group_column", None)
        if callable(own):
            return np.asarray(own(name))
        node = getattr(node, "base", None)
    return None


def group_column(source: PredictionSource, name: str) -> NDArray[Any]:
    """The values of column ``name``, one per row of ``source`` (see the module docstring)."""
    values = _lookup(source, name)
    if values is None:
        raise InputError(
            source.source, f"cannot be grouped by {name!r}: it holds no columns but its predictions"
        )
    if values.ndim != 1 or values.shape[0] != source.n_rows:
        raise InputError(
            source.source,
            f"column {name!r} must hold one value per row ({source.n_rows}); "
            f"found shape {values.shape}",
        )
    return values


def parse_group_by(specs: Sequence[str] | None) -> tuple[str, ...]:
    """The column names of ``--group-by`` options (each may list several, comma-separated)."""
    names: list[str] = []
    for spec in specs or ():
        for name in spec.split(","):
            name = name.strip()
            if not name:
                raise UsageError(Param("group_by") + f" needs a column name; got {spec!r}")
            if name in names:
                raise UsageError(Param("group_by") + f" names column {name!r} twice")
            names.append(name)
    return tuple(names)


def _as_text(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number):
            return MISSING
        if number.is_integer() and abs(number) < 2**53:
            return str(int(number))
        return repr(number)
    if isinstance(value, (np.integer, int)):
        return str(int(value))
    text = str(value)
    return text if text.strip() else MISSING


def _factorize(values: NDArray[Any]) -> tuple[NDArray[np.int64], list[str]]:
    if values.dtype.kind in "iub":
        uniq, codes = np.unique(values, return_inverse=True)
        return codes.astype(np.int64), [_as_text(v) for v in uniq.tolist()]
    text = np.array([_as_text(v) for v in values.tolist()], dtype=object)
    uniq, codes = np.unique(text.astype(str), return_inverse=True)
    return codes.astype(np.int64), [str(u) for u in uniq]


@dataclass(frozen=True, eq=False)
class Grouping:
    """Which group each row is in: ``codes[i]`` indexes :attr:`keys` (one tuple of values per
    group, one value per column of :attr:`columns`)."""

    columns: tuple[str, ...]
    codes: NDArray[np.int64]
    keys: tuple[tuple[str, ...], ...]

    @property
    def n_groups(self) -> int:
        return len(self.keys)

    @property
    def counts(self) -> NDArray[np.int64]:
        return np.bincount(self.codes, minlength=self.n_groups).astype(np.int64)

    def rows(self, group: int) -> NDArray[np.bool_]:
        """The rows of group number ``group`` (a mask over the source's rows)."""
        mask: NDArray[np.bool_] = self.codes == group
        return mask

    def label(self, group: int) -> str:
        """``task=mmlu_anatomy`` (``, ``-joined for several columns): how messages name it."""
        return ", ".join(f"{c}={v}" for c, v in zip(self.columns, self.keys[group], strict=True))

    def as_dict(self, group: int) -> dict[str, str]:
        """``{column: value}`` of group number ``group`` (the JSON's ``group``)."""
        return dict(zip(self.columns, self.keys[group], strict=True))


def group_rows(source: PredictionSource, columns: Sequence[str]) -> Grouping:
    """The groups of ``source`` by the values of ``columns`` (their cross product: only the
    combinations that occur).

    >>> import numpy as np
    >>> from calibkit.sources.predictions import ConfidenceRows
    >>> rows = ConfidenceRows.from_arrays([0.9, 0.6, 0.7], [1, 0, 1])
    >>> rows = ConfidenceRows(rows.confidence, rows.correct, columns=MemoryColumns(
    ...     {"task": ["b", "a", "b"]}))
    >>> g = group_rows(rows, ["task"])
    >>> g.keys, g.codes.tolist(), g.counts.tolist()
    ((('a',), ('b',)), [1, 0, 1], [1, 2])
    """
    if not columns:
        raise UsageError(Param("group_by") + " needs at least one column")
    per_column = [_factorize(group_column(source, name)) for name in columns]
    stacked = np.stack([codes for codes, _ in per_column], axis=1)
    # the combinations that occur, in lexicographic order of the columns' sorted values
    used, codes = np.unique(stacked, axis=0, return_inverse=True)
    keys = [tuple(per_column[j][1][int(v)] for j, v in enumerate(row)) for row in used.tolist()]
    if len(keys) > MAX_GROUPS:
        raise InputError(
            source.source,
            f"{', '.join(columns)} make {len(keys)} groups, more than {MAX_GROUPS}: "
            "is it a column of ids?",
        )
    return Grouping(tuple(columns), codes.astype(np.int64).reshape(-1), tuple(keys))


@dataclass(frozen=True, eq=False)
class RowSubset(SourceView):
    """The rows of :attr:`base` where :attr:`rows` is true, in order, as a source of their own.

    It streams the base's chunks and keeps the rows of the group (a chunk may so be shorter
    than ``chunk_rows``; every pass is independent of chunk sizes). On a distributed engine it
    splits with its base: each part keeps the group's rows of one part of the base.
    """

    base: PredictionSource
    rows: NDArray[np.bool_]

    def __post_init__(self) -> None:
        if self.rows.shape != (self.base.n_rows,):
            raise ValueError(f"a row mask of {self.base.n_rows} rows; got {self.rows.shape}")

    @property
    def n_rows(self) -> int:
        return int(np.count_nonzero(self.rows))

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]:
        start = 0
        for scores, labels in self.base.chunks(chunk_rows):
            n = int(labels.shape[0])
            keep = self.rows[start : start + n]
            start += n
            if keep.all():
                yield scores, labels
            elif keep.any():
                yield scores[keep], labels[keep]

    def group_column(self, name: str) -> NDArray[Any]:
        values: NDArray[Any] = group_column(self.base, name)[self.rows]
        return values

    def partitions(self, chunk_rows: int | None, hint: int) -> Plan | None:
        plan = plan_of(self.base, chunk_rows, hint)
        if plan is None:
            return None
        parts, start = [], 0
        for part in plan.parts:
            keep = self.rows[part.start : part.start + part.rows]
            count = int(np.count_nonzero(keep))
            if count:
                parts.append(Part(start, count, RowSubset(part.source, keep.copy())))
            start += count
        return Plan(tuple(parts), plan.finish)


def subset(source: PredictionSource, rows: NDArray[np.bool_]) -> RowSubset:
    """The rows of ``source`` where ``rows`` is true, as a source (:class:`RowSubset`)."""
    return RowSubset(source, np.asarray(rows, dtype=bool))
