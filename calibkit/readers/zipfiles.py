"""Zip archives (``.npz``, and ``.pt`` since torch 1.6): where a member's bytes lie, and their
CRC-32, checked in one pass over a memory map.

``zipfile`` checks a member's CRC-32 only when it reads the member to its end; numpy memory-maps
uncompressed ``.npz`` members and ``torch.load`` checks nothing, so both readers check stored
members here first, in bounded memory.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "CRC_FAILED",
    "CRC_STEP",
    "TRUNCATED",
    "ZIP_MAGIC",
    "StoredProblem",
    "check_stored",
    "crc32_of",
    "local_data_start",
]

#: The first bytes of a zip archive (a local file header, or the end record of an empty one).
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
#: Bytes per step of the CRC-32 pass (of 1, 4 and 16 MiB steps over a memory map, 4 was fastest).
CRC_STEP = 4 << 20
CRC_FAILED = "fails its CRC-32 check (corrupted)"
TRUNCATED = "is truncated"


class StoredProblem(Exception):
    """What is wrong with a member's stored bytes (``str(err)``: ``"is truncated"``, ...)."""


def local_data_start(fh: IO[bytes], info: zipfile.ZipInfo) -> int | None:
    """Where the member's stored bytes begin, checked against its local header."""
    fh.seek(info.header_offset)
    local = fh.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        return None
    name_len = int.from_bytes(local[26:28], "little")
    extra_len = int.from_bytes(local[28:30], "little")
    encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
    if fh.read(name_len) != info.orig_filename.encode(encoding, "replace"):
        return None  # the local header names another file: let zipfile refuse it
    return info.header_offset + 30 + name_len + extra_len


def crc32_of(raw: np.ndarray[Any, Any]) -> int:
    """CRC-32 of a contiguous byte array such as a memory map, read in steps of a few MiB."""
    crc = 0
    for start in range(0, raw.size, CRC_STEP):
        crc = zlib.crc32(raw[start : start + CRC_STEP].data, crc)
    return crc


def check_stored(path: Path, start: int, size: int, crc: int) -> np.memmap[Any, Any] | None:
    """Memory-map the ``size`` stored bytes at ``start`` and check them against ``crc``.

    Returns the map (``None`` for an empty member, which has nothing to map). Raises
    :class:`StoredProblem` for a member that runs past the end of the file or fails its CRC-32;
    a failure to map the file (``OSError``, ``ValueError``) is left to the caller to word.
    """
    if start + size > path.stat().st_size:
        raise StoredProblem(TRUNCATED)
    if size == 0:
        if crc != 0:
            raise StoredProblem(CRC_FAILED)
        return None
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=start, shape=(size,))
    if crc32_of(raw) != crc:
        raise StoredProblem(CRC_FAILED)
    return raw
