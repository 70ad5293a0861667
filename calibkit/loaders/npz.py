"""Reading ``.npz`` archives (never unpickling)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from calibkit.errors import InputError, describe
from calibkit.loaders.keys import ReadOptions, choose_keys
from calibkit.predictions import Predictions

__all__ = ["read_npz"]


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"


def read_npz(path: Path, options: ReadOptions, source: str) -> Predictions:
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
        scores_key, labels_key, kind = choose_keys(archive.files, options, source)
        try:
            scores = archive[scores_key]
            labels = archive[labels_key]
        except ValueError as err:
            if "pickle" in str(err).lower():
                raise InputError(
                    source, "holds object (pickled) arrays, which calibkit never loads"
                ) from None
            raise InputError(source, f"corrupted array ({describe(err)})") from None
        except Exception as err:
            raise InputError(source, f"corrupted or truncated archive ({describe(err)})") from None
    return Predictions.from_arrays(
        scores, labels, kind=kind, source=source, score_key=scores_key, label_key=labels_key
    )
