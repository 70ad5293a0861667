"""Reading ``.npz`` archives (never unpickling)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from calibkit.errors import InputError, describe
from calibkit.loaders.keys import ReadOptions, choose_keys, confidence_keys
from calibkit.memory import check_fits
from calibkit.predictions import ConfidenceRows, Predictions, PredictionSource

__all__ = ["read_npz"]


STREAMING_HINT = (
    "; save the predictions as parquet (row groups of a few MB), which calibkit streams in "
    "bounded memory"
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"


def read_npz(path: Path, options: ReadOptions, source: str) -> PredictionSource:
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head.startswith(_NPY_MAGIC):
        raise InputError(source, "holds a single .npy array, not an .npz archive of named arrays")
    if not head.startswith(_ZIP_MAGIC):
        # checked here because numpy would fall back to unpickling (refused, but misreported)
        raise InputError(source, "not a readable .npz archive (not a zip file)")
    _check_size(path, source)
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:  # an untrusted file: any parser failure is the file's problem
        raise InputError(source, f"not a readable .npz archive ({describe(err)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InputError(source, "not a readable .npz archive")
    with archive:
        pair = confidence_keys(archive.files, options)
        if pair is not None:
            return ConfidenceRows.from_arrays(
                _member(archive, pair[0], source), _member(archive, pair[1], source), source=source
            )
        scores_key, labels_key, kind = choose_keys(archive.files, options, source)
        scores = _mapped(path, scores_key)
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


def _mapped(path: Path, key: str) -> np.ndarray | None:
    """A read-only memory map of an uncompressed (``np.savez``) member, else ``None``.

    The array is then paged in from the file as chunks are read instead of being copied into
    memory whole. Compressed members (``np.savez_compressed``) are read normally.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(f"{key}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with open(path, "rb") as fh:
            fh.seek(info.header_offset)
            local = fh.read(30)
            if local[:4] != b"PK\x03\x04":
                return None
            name_len = int.from_bytes(local[26:28], "little")
            extra_len = int.from_bytes(local[28:30], "little")
            fh.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                return None
            offset = fh.tell()
        if dtype.hasobject or not shape or 0 in shape:
            return None
        needed = int(np.prod(shape)) * dtype.itemsize
        if offset + needed > info.header_offset + 30 + name_len + extra_len + info.file_size:
            return None
        return np.memmap(
            path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C"
        )
    except Exception:  # anything odd: fall back to numpy's own reader and its checks
        return None


def _check_size(path: Path, source: str) -> None:
    """Refuse an archive whose arrays will not fit in memory (sizes from the zip directory).

    Uncompressed members are memory-mapped, not loaded, so only compressed ones count.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            size = sum(
                info.file_size for info in zf.infolist() if info.compress_type != zipfile.ZIP_STORED
            )
    except Exception:  # an untrusted file: np.load reports the problem in its own words
        return
    # the arrays, plus validation masks and the binary expansion
    check_fits(source, int(size * 1.5), hint=STREAMING_HINT)


def _member(archive: Any, key: str, source: str) -> Any:
    try:
        return archive[key]
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise InputError(
                source, "holds object (pickled) arrays, which calibkit never loads"
            ) from None
        raise InputError(source, f"corrupted array ({describe(err)})") from None
    except Exception as err:
        raise InputError(source, f"corrupted or truncated archive ({describe(err)})") from None
