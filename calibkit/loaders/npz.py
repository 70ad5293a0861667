"""Reading ``.npz`` archives (never unpickling).

An archive's members are described from its zip directory and each member's ``.npy`` header
(:func:`npz_members`) before any array data is read, so that the memory an input needs is
estimated from the shapes and dtypes it declares, not from its size on disk. Uncompressed
members (``np.savez``) are memory-mapped after their CRC-32 has been checked in one sequential
pass over the member (:func:`verify_crc`); compressed ones are read by numpy, whose zip reader
checks the CRC-32 when it reaches a member's end.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Collection
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import IO, Any

import numpy as np

from calibkit.errors import InputError, describe
from calibkit.loaders.keys import ReadOptions, choose_keys, confidence_keys
from calibkit.sources.memory import check_fits, confidence_copies, format_bytes, prediction_copies
from calibkit.sources.predictions import ConfidenceRows, Predictions, PredictionSource

__all__ = ["NpzMember", "crc32_of", "npz_members", "read_npz", "verify_crc"]


STREAMING_HINT = (
    "; save the predictions as parquet (row groups of a few MB), which calibkit streams in "
    "bounded memory"
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"
#: numpy's own limit on a ``.npy`` header (``np.load``'s default ``max_header_size``).
_MAX_HEADER = 10_000
#: Bytes per step of the CRC-32 pass (of 1, 4 and 16 MiB steps over a memory map, 4 was fastest).
_CRC_STEP = 4 << 20


@dataclass(frozen=True)
class NpzMember:
    """One member of an ``.npz`` archive, as its zip directory and ``.npy`` header declare it.

    ``shape``, ``dtype`` and ``fortran_order`` are ``None``/``False`` when the member is not a
    readable ``.npy`` array (a text file, a corrupt or oversized header, an unsupported version):
    numpy then reports the problem in its own words if the member is ever loaded.
    """

    info: zipfile.ZipInfo
    #: File offset of the member's stored bytes (just past its local header); ``None`` when the
    #: local header is missing or disagrees with the zip directory.
    data_start: int | None
    shape: tuple[int, ...] | None = None
    dtype: np.dtype[Any] | None = None
    fortran_order: bool = False
    #: Offset of the array data from the start of the member's bytes (past the ``.npy`` header).
    header_size: int = 0

    @property
    def name(self) -> str:
        return self.info.filename

    @property
    def compressed(self) -> bool:
        return self.info.compress_type != zipfile.ZIP_STORED

    @property
    def nbytes(self) -> int | None:
        """The declared size of the array, ``None`` when the header is unreadable."""
        if self.shape is None or self.dtype is None:
            return None
        return self.dtype.itemsize * prod(self.shape)

    @property
    def loaded_as(self) -> tuple[tuple[int, ...], np.dtype[Any]] | None:
        """``(shape, dtype)`` as numpy loads the array (a sub-array dtype such as
        ``('<f4', (10,))`` widens the shape); ``None`` when the header is unreadable."""
        if self.shape is None or self.dtype is None:
            return None
        if self.dtype.subdtype is not None:
            base, sub = self.dtype.subdtype
            return (*self.shape, *sub), base
        return self.shape, self.dtype

    @property
    def mappable(self) -> bool:
        """Whether the array can be memory-mapped from the file instead of read into memory."""
        return (
            not self.compressed
            and not self.info.flag_bits & 0x1  # encrypted
            and self.data_start is not None
            and self.dtype is not None
            and not self.dtype.hasobject
            and bool(self.shape)
            and 0 not in (self.shape or ())
            and self.header_size + (self.nbytes or 0) <= self.info.compress_size
        )


def npz_members(
    path: Path, source: str, names: Collection[str] | None = None
) -> dict[str, NpzMember]:
    """The members of the archive at ``path`` by zip name (``"logits.npy"``), without their data.

    Every member, or only those in ``names`` (absent ones are left out). A compressed member's
    header is read by decompressing its first few kilobytes; no array data is read. Raises
    :class:`InputError` when the zip directory itself cannot be read.
    """
    try:
        with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
            infos = zf.infolist()
            if names is not None:
                wanted = set(names)
                infos = [info for info in infos if info.filename in wanted]
            return {info.filename: _describe(zf, fh, info) for info in infos}
    except Exception as err:  # an untrusted file: any parser failure is the file's problem
        raise InputError(source, f"not a readable .npz archive ({describe(err)})") from None


def _local_data_start(fh: IO[bytes], info: zipfile.ZipInfo) -> int | None:
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


def _describe(zf: zipfile.ZipFile, fh: IO[bytes], info: zipfile.ZipInfo) -> NpzMember:
    start = _local_data_start(fh, info)
    if info.flag_bits & 0x1:  # encrypted: numpy cannot read it either
        return NpzMember(info, start)
    try:
        if info.compress_type == zipfile.ZIP_STORED:
            if start is None:
                return NpzMember(info, start)
            fh.seek(start)
            header = _npy_header(fh, info.compress_size)
        else:
            with zf.open(info) as member:
                header = _npy_header(member, info.file_size)
    except Exception:  # a corrupt member: reported by numpy if it is ever loaded
        return NpzMember(info, start)
    if header is None:
        return NpzMember(info, start)
    shape, fortran, dtype, size = header
    return NpzMember(info, start, shape, dtype, fortran, size)


def _npy_header(
    stream: IO[bytes], available: int
) -> tuple[tuple[int, ...], bool, np.dtype[Any], int] | None:
    """``(shape, fortran_order, dtype, header size)`` of the ``.npy`` data at ``stream``.

    The header length is checked before the header is read, so a forged length cannot make
    this read (or decompress) gigabytes.
    """
    magic = stream.read(8)
    if len(magic) < 8 or not magic.startswith(_NPY_MAGIC):
        return None
    version = (magic[6], magic[7])
    if version == (1, 0):
        field = stream.read(2)
    elif version == (2, 0):
        field = stream.read(4)
    else:
        return None
    length = int.from_bytes(field, "little")
    size = 8 + len(field) + length
    if len(field) not in (2, 4) or length > _MAX_HEADER or size > available:
        return None
    prefixed = io.BytesIO(field + stream.read(length))
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(prefixed)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(prefixed)
    if any(d < 0 for d in shape):  # numpy's header check allows negative sizes
        return None
    return tuple(int(d) for d in shape), bool(fortran), dtype, size


def verify_crc(path: Path, member: NpzMember, source: str) -> np.memmap[Any, Any]:
    """Check an uncompressed member's CRC-32 in one pass; return its bytes, memory-mapped.

    The pass covers every stored byte of the member, ``.npy`` header included, and runs when the
    file is opened, before any output is written; it also brings the member into the page cache
    for the validation and metrics passes that follow.
    """
    if member.data_start is None:
        raise InputError(source, f"member {member.name!r} has no valid local header (corrupted)")
    size = member.info.compress_size
    try:
        raw = np.memmap(path, dtype=np.uint8, mode="r", offset=member.data_start, shape=(size,))
    except (ValueError, OSError):
        raise InputError(source, f"member {member.name!r} is truncated") from None
    if crc32_of(raw) != member.info.CRC:
        raise InputError(source, f"member {member.name!r} fails its CRC-32 check (corrupted)")
    return raw


def crc32_of(raw: np.ndarray[Any, Any]) -> int:
    """CRC-32 of a contiguous byte array such as a memory map, read in steps of a few MiB."""
    crc = 0
    for start in range(0, raw.size, _CRC_STEP):
        crc = zlib.crc32(raw[start : start + _CRC_STEP].data, crc)
    return crc


def read_npz(path: Path, options: ReadOptions, source: str) -> PredictionSource:
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head.startswith(_NPY_MAGIC):
        raise InputError(source, "holds a single .npy array, not an .npz archive of named arrays")
    if not head.startswith(_ZIP_MAGIC):
        # checked here because numpy would fall back to unpickling (refused, but misreported)
        raise InputError(source, "not a readable .npz archive (not a zip file)")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:  # an untrusted file: any parser failure is the file's problem
        raise InputError(source, f"not a readable .npz archive ({describe(err)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InputError(source, "not a readable .npz archive")
    with archive:
        names = set(archive.zip.namelist()) if archive.zip is not None else set()

        def name(key: str) -> str:  # the member numpy reads for a key
            return key if key in names else f"{key}.npy"

        pair = confidence_keys(archive.files, options)
        if pair is not None:
            members = npz_members(path, source, [name(key) for key in pair])
            _check_size(source, members, name(pair[0]), name(pair[1]), confidence=True)
            return ConfidenceRows.from_arrays(
                _member(archive, pair[0], source), _member(archive, pair[1], source), source=source
            )
        scores_key, labels_key, kind = choose_keys(archive.files, options, source)
        members = npz_members(path, source, [name(scores_key), name(labels_key)])
        _check_size(source, members, name(scores_key), name(labels_key))
        scores = _mapped(path, members.get(name(scores_key)), source)
        if scores is None:
            scores = _member(archive, scores_key, source)
        labels = _member(archive, labels_key, source)
    return Predictions.from_arrays(
        scores,
        labels,
        kind=options.kind,  # --input forces; else the name says, and probabilities are detected
        named=kind,
        forced_by="--input",
        source=source,
        score_key=scores_key,
        label_key=labels_key,
    )


def _mapped(path: Path, member: NpzMember | None, source: str) -> np.ndarray[Any, Any] | None:
    """A read-only memory map of an uncompressed (``np.savez``) member, else ``None``.

    The array is then paged in from the file as chunks are read instead of being copied into
    memory whole. Compressed members (``np.savez_compressed``) are read normally. Raises
    :class:`InputError` when the member fails its CRC-32 check.
    """
    if member is None or not member.mappable:
        return None
    assert member.shape is not None and member.dtype is not None
    raw = verify_crc(path, member, source)
    return np.ndarray(
        member.shape,
        dtype=member.dtype,
        buffer=raw,
        offset=member.header_size,
        order="F" if member.fortran_order else "C",
    )


def _held_bytes(member: NpzMember | None, mapped: bool) -> int:
    """Bytes of a member held in process memory once loaded (0 for a memory-mapped one)."""
    if member is None or mapped:
        return 0
    declared = member.nbytes
    return declared if declared is not None else member.info.file_size


def _check_size(
    source: str,
    members: dict[str, NpzMember],
    first_name: str,
    second_name: str,
    *,
    confidence: bool = False,
) -> None:
    """Refuse an input whose arrays and their copies will not fit in memory.

    Sizes come from the declared shapes and dtypes: the members read into memory (compressed
    ones, labels, anything that cannot be mapped) plus the copies the validation makes, such as
    the float64 copy of integer logits. A memory-mapped member costs page cache, not memory.
    """
    first, second = members.get(first_name), members.get(second_name)
    for member in (first, second):
        declared = member.nbytes if member is not None else None
        if (
            member is not None
            and declared is not None
            and (member.header_size + declared > member.info.file_size)
        ):
            raise InputError(
                source,
                f"member {member.name!r} declares a {member.dtype} array of shape "
                f"{member.shape} ({format_bytes(declared)}) but holds "
                f"{format_bytes(member.info.file_size)} (truncated or corrupted)",
            )
    mapped = not confidence and first is not None and first.mappable
    needed = _held_bytes(first, mapped) + _held_bytes(second, False)
    scores = first.loaded_as if first is not None else None
    labels = second.loaded_as if second is not None else None
    if scores is not None and labels is not None:
        shape, dtype = scores
        y_shape, y_dtype = labels
        if confidence:
            needed += confidence_copies(max(prod(shape), prod(y_shape)))
        else:
            needed += prediction_copies(shape, dtype, y_shape, y_dtype)
    else:  # a header numpy will refuse or read in its own way: its size, with room for copies
        needed = needed * 3 // 2
    check_fits(source, needed, hint=STREAMING_HINT)


def _member(archive: Any, key: str, source: str) -> Any:
    try:
        return archive[key]
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise InputError(
                source, "holds object (pickled) arrays, which calibkit never loads"
            ) from None
        raise InputError(source, f"corrupted array ({describe(err)})") from None
    except zipfile.BadZipFile as err:
        if "CRC-32" in str(err):  # zipfile checks the CRC as it reads a member to its end
            found = re.search(r"for file '(.*)'", str(err))
            name = found.group(1) if found else f"{key}.npy"
            raise InputError(
                source, f"member {name!r} fails its CRC-32 check (corrupted)"
            ) from None
        raise InputError(source, f"corrupted or truncated archive ({describe(err)})") from None
    except Exception as err:
        raise InputError(source, f"corrupted or truncated archive ({describe(err)})") from None
