"""The reader layer: a file -> named arrays or column streams, knowing nothing about predictions.

One module per format turns a file into arrays by name: :mod:`~calibkit.readers.npz` (members,
memory-mapped after a CRC-32 check, ``allow_pickle=False``), :mod:`~calibkit.readers.parquet`
(schema, column streams batch by batch, footer vs row groups vs rows), :mod:`~calibkit.readers.pt`
(``torch.load(weights_only=True)``, tensors -> arrays), and the record files
:mod:`~calibkit.readers.jsonl` (JSON Lines, line by line, or a JSON array of records; also
``.json``: lm-evaluation-harness wrote JSON Lines into ``.json`` files in mid-2024) and
:mod:`~calibkit.readers.csvfile` (CSV), whose records' fields are columns
(:mod:`~calibkit.readers.records`). They share
:mod:`~calibkit.readers.zipfiles` (where a zip member's bytes lie, and their CRC-32),
:mod:`~calibkit.readers.memory` (what may be loaded) and :mod:`~calibkit.readers.names` (names
in one-line messages). Every problem is an :class:`~calibkit.errors.InputError` naming the file.

The validators in :mod:`calibkit.loaders` sit on top: they choose the keys and turn the arrays
into predictions. Another input kind (features and a final layer's weights, logits of shape
``(N, L, K)``) asks for its arrays with :func:`read_arrays`.

Adding a format is one module and one registration: the module defines
``list_keys(path, source)`` and ``read_arrays(path, keys, source)`` (see :class:`ArrayReader`)
and, optionally, ``sniff(path)``; the registration is one :func:`register` call: inside calibkit, a
``calibkit/readers/<format>.py`` module and its call at the end of this file, next to the
built-in ones; outside, the call in a plugin (:mod:`calibkit.plugins`), imported when a file's
suffix is not registered (:func:`format_for` then looks again). The call names the module
(imported only when a file of that format is read), its suffixes and its magic bytes.
:func:`calibkit.loaders.read_predictions` then reads predictions from it too, choosing the keys
as it does for every format (a format whose layout needs a validator of its own adds it to
``_VALIDATORS`` in :mod:`calibkit.loaders`).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from calibkit.errors import InputError

__all__ = [
    "ArrayReader",
    "Format",
    "check_file",
    "format_for",
    "formats",
    "read_arrays",
    "register",
    "suffixes",
]


class ArrayReader(Protocol):
    """What a format's module provides (module-level functions)."""

    def list_keys(self, path: Path, source: str) -> list[str]:
        """The names of the arrays (or columns) the file holds, without reading them."""
        ...

    def read_arrays(
        self, path: Path, keys: Collection[str] | None, source: str
    ) -> Mapping[str, Any]:
        """The arrays under ``keys`` (all of them when ``None``), by name; a key not present is
        an :class:`InputError` listing the keys present."""
        ...


@dataclass(frozen=True, kw_only=True)
class Format:
    """A registered file format: its name, file suffixes, leading magic bytes and reader."""

    name: str
    #: lower-case file suffixes, with the dot; the first one is the format's usual one
    suffixes: tuple[str, ...]
    #: the module implementing :class:`ArrayReader`, imported on first use
    module: str
    #: byte strings one of which a file of this format starts with (for files without a suffix)
    magic: tuple[bytes, ...] = ()

    def reader(self) -> ArrayReader:
        return cast(ArrayReader, importlib.import_module(self.module))

    def sniffs(self, path: Path, head: bytes) -> bool:
        """Whether the file (starting with ``head``) is of this format, by its contents."""
        if not any(head.startswith(m) for m in self.magic):
            return False
        sniff = getattr(importlib.import_module(self.module), "sniff", None)
        return True if sniff is None else bool(sniff(path))


_FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add a format; its name and suffixes must be new."""
    taken = set(suffixes())
    clash = [s for s in fmt.suffixes if s in taken]
    if fmt.name in _FORMATS or clash:
        raise ValueError(f"format {fmt.name!r} or suffix {clash} is registered already")
    if any(s != s.lower() or not s.startswith(".") for s in fmt.suffixes):
        raise ValueError(f"suffixes must be lower case and start with '.': {fmt.suffixes}")
    _FORMATS[fmt.name] = fmt
    return fmt


def formats() -> tuple[Format, ...]:
    """The registered formats, in registration order."""
    return tuple(_FORMATS.values())


def suffixes() -> tuple[str, ...]:
    """Every registered suffix, format by format (``.npz, .parquet, .pq, .pt, .pth``)."""
    return tuple(s for fmt in _FORMATS.values() for s in fmt.suffixes)


def _unknown(path: Path, source: str) -> InputError:
    return InputError(
        source,
        f"unknown file type {path.suffix or '(no extension)'!r}; "
        f"expected one of {', '.join(suffixes())}",
    )


def _by_suffix(suffix: str) -> Format | None:
    """The format of ``suffix``; on a miss the plugins are imported (once) and looked in again."""
    for attempt in range(2):
        for fmt in _FORMATS.values():
            if suffix in fmt.suffixes:
                return fmt
        if attempt == 0:
            from calibkit.plugins import load_plugins

            load_plugins()
    return None


def format_for(path: str | os.PathLike[str], source: str, *, sniff: bool = False) -> Format:
    """The format of the file at ``path``, by its suffix; with ``sniff``, a file whose suffix
    is not registered is recognised by its first bytes (and the format's own ``sniff``)."""
    path = Path(path)
    fmt = _by_suffix(path.suffix.lower())
    if fmt is not None:
        return fmt
    if sniff:
        try:
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError:
            raise _unknown(path, source) from None
        found = [fmt for fmt in _FORMATS.values() if fmt.sniffs(path, head)]
        if len(found) == 1:
            return found[0]
    raise _unknown(path, source)


def check_file(path: Path, source: str, *, what: str = "predictions file") -> None:
    """Refuse a path that is missing, a directory, unreadable or empty (one line each)."""
    if not path.exists():
        raise InputError(source, "no such file")
    if path.is_dir():
        raise InputError(source, f"is a directory, not a {what}")
    if not os.access(path, os.R_OK):
        raise InputError(source, "permission denied")
    if path.stat().st_size == 0:
        raise InputError(source, "file is empty (0 bytes)")


def read_arrays(
    path: str | os.PathLike[str],
    keys: Collection[str] | str | None = None,
    *,
    source: str | None = None,
) -> Mapping[str, Any]:
    """The named arrays of an ``.npz``, ``.parquet`` or ``.pt`` file, with nothing read as
    predictions: ``{key: numpy array}`` for ``keys`` (one key, or several), or for every array
    the file holds when ``keys`` is ``None`` (an ``.npz`` archive's ``.npy`` members, a parquet
    file's columns, a ``.pt`` dict's tensors).

    The format comes from the suffix, else from the first bytes. Every safety check of the
    predictions readers applies: no unpickling, CRC-32 checks, parquet row counts, memory
    estimated from the declared shapes. A parquet column becomes ``(N,)``, or ``(N, k)`` for a
    list column of length ``k``; ``.npz`` arrays of any shape come as stored (memory-mapped when
    uncompressed). Raises :class:`~calibkit.errors.InputError` for any problem.
    """
    source = str(path) if source is None else source
    path = Path(path)
    wanted = [keys] if isinstance(keys, str) else None if keys is None else list(keys)
    check_file(path, source, what="data file")
    fmt = format_for(path, source, sniff=True)
    return fmt.reader().read_arrays(path, wanted, source)


# the built-in formats, in the order their suffixes are listed in messages
register(
    Format(
        name="npz",
        suffixes=(".npz",),
        module="calibkit.readers.npz",
        magic=(b"PK\x03\x04", b"PK\x05\x06"),
    )
)
register(
    Format(
        name="parquet",
        suffixes=(".parquet", ".pq"),
        module="calibkit.readers.parquet",
        magic=(b"PAR1",),
    )
)
register(
    Format(
        name="pt",
        suffixes=(".pt", ".pth"),
        module="calibkit.readers.pt",
        magic=(b"PK\x03\x04", b"\x80"),
    )
)
register(
    Format(
        name="jsonl",
        suffixes=(".jsonl", ".ndjson", ".json"),
        module="calibkit.readers.jsonl",
    )
)
register(
    Format(
        name="csv",
        suffixes=(".csv",),
        module="calibkit.readers.csvfile",
    )
)
