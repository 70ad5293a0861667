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
        scores = _member(archive, scores_key, source)
        labels = _member(archive, labels_key, source)
    return Predictions.from_arrays(
        scores, labels, kind=kind, source=source, score_key=scores_key, label_key=labels_key
    )


def _check_size(path: Path, source: str) -> None:
    """Refuse an archive whose arrays will not fit in memory (sizes from the zip directory)."""
    try:
        with zipfile.ZipFile(path) as zf:
            size = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # np.load reports the problem in its own words
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
