"""``.npz`` archives -> named arrays (never unpickling).

An archive's members are described from its zip directory and each member's ``.npy`` header
(:func:`npz_members`) before any array data is read, so that the memory an input needs is
estimated from the shapes and dtypes it declares, not from its size on disk. Uncompressed
members (``np.savez``) are memory-mapped after their CRC-32 has been checked in one sequential
pass over the member (:func:`verify_crc`); compressed ones are read by numpy, whose zip reader
checks the CRC-32 when it reaches a member's end.

:func:`open_npz` opens an archive (``allow_pickle=False``; a file that is not a zip archive is
refused before numpy could fall back to unpickling) as an :class:`NpzArchive`, whose
:meth:`~NpzArchive.load` and :meth:`~NpzArchive.mapped` give one array each;
:func:`read_arrays` gives several at once. Nothing here knows what the arrays mean.

An archive may also be named by URL (:mod:`calibkit.io.urls`): it is then read through its
fsspec file object, with the same checks (``allow_pickle=False``, headers before data, the
declared sizes against the memory available), except that no member is memory-mapped: each is
read into memory by numpy's zip reader, which checks its CRC-32 as it reaches the member's end.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Collection, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import IO, Any

import numpy as np

from calibkit.errors import InputError, describe
from calibkit.io.urls import Location, is_url, open_input
from calibkit.readers.memory import STREAMING_HINT, check_fits, format_bytes
from calibkit.readers.names import listing, quoted
from calibkit.readers.zipfiles import (
    ZIP_MAGIC,
    StoredProblem,
    check_stored,
    crc32_of,
    local_data_start,
)

__all__ = [
    "NPY_MAGIC",
    "NpzArchive",
    "NpzMember",
    "check_declared",
    "crc32_of",
    "held_bytes",
    "list_keys",
    "npz_members",
    "open_npz",
    "read_arrays",
    "sniff",
    "verify_crc",
]

NPY_MAGIC = b"\x93NUMPY"
#: numpy's own limit on a ``.npy`` header (``np.load``'s default ``max_header_size``).
_MAX_HEADER = 10_000


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
    path: Location, source: str, names: Collection[str] | None = None
) -> dict[str, NpzMember]:
    """The members of the archive at ``path`` by zip name (``"logits.npy"``), without their data.

    Every member, or only those in ``names`` (absent ones are left out). A compressed member's
    header is read by decompressing its first few kilobytes; no array data is read. Raises
    :class:`InputError` when the zip directory itself cannot be read.
    """
    try:
        with (
            open_input(path, source) as zfh,
            zipfile.ZipFile(zfh) as zf,
            open_input(path, source) as fh,
        ):
            infos = zf.infolist()
            if names is not None:
                wanted = set(names)
                infos = [info for info in infos if info.filename in wanted]
            return {info.filename: _describe(zf, fh, info) for info in infos}
    except InputError:
        raise
    except Exception as err:  # an untrusted file: any parser failure is the file's problem
        raise InputError(source, f"not a readable .npz archive ({describe(err)})") from None


def _describe(zf: zipfile.ZipFile, fh: IO[bytes], info: zipfile.ZipInfo) -> NpzMember:
    start = local_data_start(fh, info)
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
    if len(magic) < 8 or not magic.startswith(NPY_MAGIC):
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
    try:
        raw = check_stored(path, member.data_start, member.info.compress_size, member.info.CRC)
    except StoredProblem as problem:
        raise InputError(source, f"member {member.name!r} {problem}") from None
    except (ValueError, OSError):
        raise InputError(source, f"member {member.name!r} is truncated") from None
    if raw is None:  # an empty member holds no array bytes to map
        raise InputError(source, f"member {member.name!r} is truncated")
    return raw


def check_declared(member: NpzMember | None, source: str) -> None:
    """Refuse a member whose ``.npy`` header declares more bytes than the member holds."""
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


def held_bytes(member: NpzMember | None, mapped: bool) -> int:
    """Bytes of a member held in process memory once loaded (0 for a memory-mapped one)."""
    if member is None or mapped:
        return 0
    declared = member.nbytes
    return declared if declared is not None else member.info.file_size


class NpzArchive:
    """An open ``.npz`` archive (see :func:`open_npz`): its keys, and each key's array."""

    def __init__(self, path: Location, source: str, archive: Any) -> None:
        self.path = path
        #: whether the archive is a local file (whose uncompressed members can be mapped)
        self.local = not is_url(path)
        self.source = source
        self._archive = archive
        self._names = set(archive.zip.namelist()) if archive.zip is not None else set()

    @property
    def keys(self) -> list[str]:
        """numpy's names for the members: ``"logits"`` for ``logits.npy``, others as stored."""
        return list(self._archive.files)

    @property
    def array_keys(self) -> list[str]:
        """The keys of the ``.npy`` members (text files and other members left out)."""
        return [key for key in self._archive.files if f"{key}.npy" in self._names]

    def member_name(self, key: str) -> str:
        """The zip member numpy reads for a key."""
        return key if key in self._names else f"{key}.npy"

    def members(self, keys: Iterable[str]) -> dict[str, NpzMember | None]:
        """Each key's member as its header declares it (``None`` when not found); no data read."""
        keys = list(keys)
        found = npz_members(self.path, self.source, [self.member_name(k) for k in keys])
        return {key: found.get(self.member_name(key)) for key in keys}

    def mapped(self, member: NpzMember | None) -> np.ndarray[Any, Any] | None:
        """A read-only memory map of an uncompressed (``np.savez``) member, else ``None``.

        The array is then paged in from the file as chunks are read instead of being copied
        into memory whole. Compressed members (``np.savez_compressed``) are read normally.
        Raises :class:`InputError` when the member fails its CRC-32 check.
        """
        if member is None or not member.mappable or not self.local:
            return None
        assert member.shape is not None and member.dtype is not None
        raw = verify_crc(Path(self.path), member, self.source)
        return np.ndarray(
            member.shape,
            dtype=member.dtype,
            buffer=raw,
            offset=member.header_size,
            order="F" if member.fortran_order else "C",
        )

    def load(self, key: str) -> Any:
        """The array under ``key``, read into memory by numpy (its CRC-32 checked as it is
        read); any failure is an :class:`InputError` that says what went wrong."""
        source = self.source
        try:
            return self._archive[key]
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


@contextmanager
def open_npz(path: Location, source: str) -> Iterator[NpzArchive]:
    """Open the archive at ``path`` (a local path or a URL) with ``allow_pickle=False``; closed
    when the block ends."""
    with ExitStack() as stack:
        fh = stack.enter_context(open_input(path, source))
        head = fh.read(6)
        if head.startswith(NPY_MAGIC):
            raise InputError(
                source, "holds a single .npy array, not an .npz archive of named arrays"
            )
        if not head.startswith(ZIP_MAGIC):
            # checked here because numpy would fall back to unpickling (refused, but misreported)
            raise InputError(source, "not a readable .npz archive (not a zip file)")
        if is_url(path):
            fh.seek(0)
            target: Any = fh  # kept open until the archive is closed
        else:
            stack.close()
            target = path
        try:
            archive = np.load(target, allow_pickle=False)
        except Exception as err:  # an untrusted file: any parser failure is the file's problem
            raise InputError(source, f"not a readable .npz archive ({describe(err)})") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise InputError(source, "not a readable .npz archive")
        with archive:
            yield NpzArchive(path, source, archive)


def sniff(path: Path) -> bool:
    """Whether the file at ``path`` looks like an ``.npz`` archive: a zip archive of ``.npy``
    members (a ``.pt`` archive holds a ``data.pkl`` record instead)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except Exception:
        return False
    return all(name.endswith(".npy") for name in names) and bool(names)


def read_arrays(
    path: Location, keys: Collection[str] | None, source: str
) -> dict[str, np.ndarray[Any, Any]]:
    """The arrays under ``keys`` (every ``.npy`` member when ``None``), by key.

    Uncompressed members are memory-mapped after their CRC-32 check; the others are read into
    memory, after a check that their declared sizes fit in the memory available.
    """
    with open_npz(path, source) as archive:
        present = archive.keys
        wanted = archive.array_keys if keys is None else list(dict.fromkeys(keys))
        for key in wanted:
            if key not in present:
                raise InputError(
                    source, f"key {quoted(key)} not found; keys present: {listing(present)}"
                )
        members = archive.members(wanted)
        for member in members.values():
            check_declared(member, source)
        needed = sum(
            held_bytes(member, member is not None and member.mappable and archive.local)
            for member in members.values()
        )
        check_fits(source, needed, hint=STREAMING_HINT)
        out: dict[str, np.ndarray[Any, Any]] = {}
        for key in wanted:
            array = archive.mapped(members[key])
            if array is None:
                array = archive.load(key)
            if not isinstance(array, np.ndarray):
                raise InputError(
                    source, f"member {quoted(archive.member_name(key))} is not a .npy array"
                )
            out[key] = array
    return out


def list_keys(path: Path, source: str) -> list[str]:
    """numpy's names for the archive's members (``"logits"`` for ``logits.npy``)."""
    with open_npz(path, source) as archive:
        return archive.keys
