"""Comma-separated values (``.csv``): a header row of field names, then one record per row.

Read with the standard library's :mod:`csv` module. A cell that reads as a number
(``int``, then ``float``) is that number, an empty cell is missing (``None``), any other cell is
text. A row with more cells than the header has names, a header with a repeated or empty name,
or a file with no header, is one :class:`~calibkit.errors.InputError` naming the line.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from calibkit.errors import InputError
from calibkit.readers.records import check_size, columns_of, read_columns

__all__ = ["iter_records", "list_keys", "read_arrays"]

#: The longest cell read (bytes): a longer one is refused rather than held.
_FIELD_LIMIT = 16 << 20


def cell(text: str) -> Any:
    """A cell's value: ``None`` when empty, else an ``int`` or ``float`` when it reads as one,
    else the text.

    >>> cell(""), cell("3"), cell("0.25"), cell("80%")
    (None, 3, 0.25, '80%')
    """
    if text == "":
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def iter_records(path: Path, source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` for every row after the header (blank rows skipped)."""
    csv.field_size_limit(_FIELD_LIMIT)
    try:
        fh = open(path, encoding="utf-8", newline="")  # noqa: SIM115 (closed below)
    except OSError as err:
        raise InputError(source, f"cannot read the file ({err.strerror or err})") from None
    with fh:
        reader = csv.reader(fh)
        try:
            header: list[str] | None = None
            for row in reader:
                line = reader.line_num
                if not row or all(c == "" for c in row):
                    continue
                if header is None:
                    names = [c.strip() for c in row]
                    if "" in names:
                        raise InputError(source, f"line {line}: the header has an empty name")
                    dup = next((n for n in names if names.count(n) > 1), None)
                    if dup is not None:
                        raise InputError(source, f"line {line}: the header names {dup!r} twice")
                    header = names
                    continue
                if len(row) > len(header):
                    raise InputError(
                        source,
                        f"line {line}: {len(row)} cells, but the header names {len(header)}",
                    )
                yield line, {name: cell(c) for name, c in zip(header, row, strict=False)}
        except csv.Error as err:
            raise InputError(source, f"line {reader.line_num}: not CSV ({err})") from None
        except UnicodeDecodeError:
            raise InputError(source, f"line {reader.line_num + 1}: not UTF-8 text") from None
        if header is None:
            raise InputError(source, "no header row: the file holds no records")


def list_keys(path: Path, source: str) -> list[str]:
    """The header's names (read from the records: every column)."""
    check_size(path, source)
    return list(columns_of(record for _, record in iter_records(path, source)))


def read_arrays(path: Path, keys: Collection[str] | None, source: str) -> dict[str, Any]:
    """The rows' cells under ``keys`` as 1-D columns."""
    import sys

    return read_columns(sys.modules[__name__], path, keys, source)
