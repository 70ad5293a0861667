"""Record files (``.jsonl``, ``.csv``): one record (a mapping of field names to values) per
line or row, and their fields as columns.

The two formats' modules (:mod:`~calibkit.readers.jsonl`, :mod:`~calibkit.readers.csvfile`)
give ``iter_records(path, source)``: ``(line number, record)`` pairs, each problem one
:class:`~calibkit.errors.InputError` naming the line. Here: what both share, the fields of a
record by dotted path (``doc.subject``; :func:`flat_fields`) and the columns of many records
(:func:`columns_of`), which is what ``list_keys`` / ``read_arrays`` give for these formats and
what ``--group-by`` reads.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from calibkit.errors import InputError
from calibkit.readers.memory import check_fits
from calibkit.readers.names import listing

__all__ = [
    "MAX_DEPTH",
    "RecordReader",
    "check_size",
    "column_values",
    "columns_of",
    "flat_fields",
    "read_columns",
]

#: Nested mappings are flattened this many levels deep at most (``a.b.c.d``).
MAX_DEPTH = 4
#: Python objects cost this many times a record file's size, about (a loose upper bound).
_OBJECT_FACTOR = 12


class RecordReader(Protocol):
    def iter_records(self, path: Path, source: str) -> Iterator[tuple[int, dict[str, Any]]]: ...


def check_size(path: Path, source: str) -> None:
    """Refuse a record file whose records would not fit in memory (they are read whole)."""
    try:
        size = os.stat(path).st_size
    except OSError:
        return
    check_fits(source, size * _OBJECT_FACTOR)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def flat_fields(
    record: Mapping[str, Any], prefix: str = "", depth: int = 0
) -> Iterator[tuple[str, Any]]:
    """The scalar fields of ``record`` (``None``, text, numbers, booleans), nested mappings by
    dotted path (``doc.subject``); lists and deeper values are left out.

    >>> dict(flat_fields({"a": 1, "doc": {"subject": "law", "choices": ["x", "y"]}}))
    {'a': 1, 'doc.subject': 'law'}
    """
    for key, value in record.items():
        name = f"{prefix}{key}"
        if _scalar(value):
            yield name, value
        elif isinstance(value, Mapping) and depth + 1 < MAX_DEPTH:
            yield from flat_fields(value, f"{name}.", depth + 1)


def column_values(values: list[Any]) -> Any:
    """One column as a 1-D numpy array: ``float64`` when every value is a number (a missing one
    NaN), ``bool`` when every value is a boolean, else text (``str`` of each value, a missing one
    (null, NaN) ``""``)."""
    import numpy as np

    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present) and len(present) == len(values):
        return np.array(values, dtype=bool)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    return np.array([_text(v) for v in values], dtype=str)


def _text(value: Any) -> str:
    """A value of a column of text: a missing one (null, NaN) is ``""``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def columns_of(records: Iterable[Mapping[str, Any]], n: int | None = None) -> dict[str, Any]:
    """``{field: 1-D array}`` for every scalar field of the records (nested ones by dotted
    path), in the order they first appear; a record without a field has it missing."""
    seen: dict[str, list[Any]] = {}
    count = 0
    for i, record in enumerate(records):
        for name, value in flat_fields(record):
            column = seen.get(name)
            if column is None:
                column = seen[name] = [None] * i
            column.append(value)
        count = i + 1
        for column in seen.values():
            if len(column) < count:
                column.append(None)
    return {name: column_values(values) for name, values in seen.items()}


def read_columns(
    reader: RecordReader, path: Path, keys: Collection[str] | None, source: str
) -> dict[str, Any]:
    """The columns under ``keys`` (all when ``None``) of a record file; a key that is not
    there is one error listing those that are."""
    check_size(path, source)
    columns = columns_of(record for _, record in reader.iter_records(path, source))
    if keys is None:
        return columns
    missing = [k for k in keys if k not in columns]
    if missing:
        raise InputError(
            source, f"field {missing[0]!r} not found; fields present: {listing(columns)}"
        )
    return {k: columns[k] for k in keys}
