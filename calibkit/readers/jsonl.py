"""JSON Lines (``.jsonl``, ``.ndjson``, ``.json``): one JSON object per line, or a JSON array of
objects.

The first non-blank character of the file tells the two apart. ``{``: JSON Lines, read line by
line; a blank line is skipped; a line that is not JSON, or JSON that is not an object, is one
:class:`~calibkit.errors.InputError` naming ``line N``. ``[``: one JSON array of records (what
lm-evaluation-harness v0.4.0 to v0.4.2 wrote into its ``.jsonl`` samples files, pretty-printed),
read whole once its size is checked against the memory available; a problem names ``record N``
(the array's index, from 0). ``NaN`` and ``Infinity`` (which Python's ``json`` writes) are read
as floats: the validators refuse them where a number must be finite. As arrays
(:func:`list_keys`, :func:`read_arrays`) a file's records are columns
(:func:`calibkit.readers.records.columns_of`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from calibkit.errors import InputError
from calibkit.readers.records import check_size, columns_of, read_columns

__all__ = ["first_char", "iter_labelled", "iter_records", "list_keys", "read_arrays"]

_BLANK = b" \t\r\n"


def first_char(path: Path, source: str) -> str:
    """The first non-blank character of the file (``""`` for a blank one): ``[`` for a JSON
    array of records, else JSON Lines."""
    try:
        with open(path, "rb") as fh:
            while True:
                block = fh.read(65536)
                if not block:
                    return ""
                rest = block.lstrip(_BLANK)
                if rest:
                    return chr(rest[0]) if rest[0] < 128 else ""
    except OSError as err:
        raise InputError(source, f"cannot read the file ({err.strerror or err})") from None


def iter_records(path: Path, source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(number, record)`` for every record: the line number (from 1) of a JSON Lines file,
    the index (from 0) of a JSON array's record."""
    for _, number, record in _records(path, source):
        yield number, record


def iter_labelled(path: Path, source: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, record)`` for every record, ``where`` as a message names it: ``line N`` (JSON
    Lines) or ``record N`` (a JSON array)."""
    for unit, number, record in _records(path, source):
        yield f"{unit} {number}", record


def _records(path: Path, source: str) -> Iterator[tuple[str, int, dict[str, Any]]]:
    if first_char(path, source) == "[":
        yield from _array(path, source)
        return
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
                hint = ""
                if line.strip() == "{":
                    hint = (
                        "; a record file holds one JSON object per line (JSON Lines) or a JSON "
                        "array of records, not one pretty-printed object"
                    )
                raise InputError(source, f"line {number}: not JSON ({err.msg}){hint}") from None
            except RecursionError:
                raise InputError(source, f"line {number}: JSON nested too deeply") from None
            if not isinstance(record, dict):
                raise InputError(
                    source,
                    f"line {number}: a JSON {_json_type(record)} where a record "
                    "(a JSON object) belongs",
                )
            yield "line", number, record


def _array(path: Path, source: str) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """The records of a file holding one JSON array (read whole: its size checked first)."""
    check_size(path, source)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(source, f"cannot read the file ({err.strerror or err})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(source, f"not UTF-8 text (byte {err.start})") from None
    del data
    try:
        records = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            source,
            f"a JSON array of records that is not JSON at line {err.lineno} column "
            f"{err.colno} ({err.msg})",
        ) from None
    except RecursionError:
        raise InputError(source, "JSON nested too deeply") from None
    del text
    if not isinstance(records, list):  # pragma: no cover - "[" starts an array or fails above
        raise InputError(source, "not a JSON array of records")
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InputError(
                source,
                f"record {index}: a JSON {_json_type(record)} where a record "
                "(a JSON object) belongs",
            )
        yield "record", index, record


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
