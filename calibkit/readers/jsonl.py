"""JSON Lines (``.jsonl``, ``.ndjson``): one JSON object per line.

Read line by line; a blank line is skipped; a line that is not JSON, or JSON that is not an
object, is one :class:`~calibkit.errors.InputError` naming ``line N``. ``NaN`` and
``Infinity`` (which Python's ``json`` writes) are read as floats: the validators refuse them
where a number must be finite. As arrays (:func:`list_keys`, :func:`read_arrays`) a file's
records are columns (:func:`calibkit.readers.records.columns_of`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from calibkit.errors import InputError
from calibkit.readers.records import check_size, columns_of, read_columns

__all__ = ["iter_records", "list_keys", "read_arrays"]


def iter_records(path: Path, source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` for every non-blank line (line numbers from 1)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed below; a generator)
    except OSError as err:
        raise InputError(source, f"cannot read the file ({err.strerror or err})") from None
    with fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # a BOM, as in CSV
            except UnicodeDecodeError:
                raise InputError(source, f"line {number}: not UTF-8 text") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(source, f"line {number}: not JSON ({err.msg})") from None
            except RecursionError:
                raise InputError(source, f"line {number}: JSON nested too deeply") from None
            if not isinstance(record, dict):
                raise InputError(
                    source,
                    f"line {number}: a JSON {_json_type(record)} where a record "
                    "(a JSON object) belongs",
                )
            yield number, record


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"


def list_keys(path: Path, source: str) -> list[str]:
    """The scalar fields of the records (nested ones by dotted path)."""
    check_size(path, source)
    return list(columns_of(record for _, record in iter_records(path, source)))


def read_arrays(path: Path, keys: Collection[str] | None, source: str) -> dict[str, Any]:
    """The records' fields under ``keys`` as 1-D columns."""
    import sys

    return read_columns(sys.modules[__name__], path, keys, source)
