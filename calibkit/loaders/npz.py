"""Reading ``.npz`` archives (never unpickling)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from calibkit.errors import InputError
from calibkit.loaders.keys import ReadOptions, choose_keys
from calibkit.predictions import Predictions

__all__ = ["read_npz"]


def read_npz(path: Path, options: ReadOptions, source: str) -> Predictions:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise InputError(source, f"not a readable .npz archive ({_reason(err)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InputError(source, "holds a single .npy array, not an .npz archive of named arrays")
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
            raise InputError(source, f"corrupted array ({_reason(err)})") from None
        except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
            raise InputError(source, f"corrupted or truncated archive ({_reason(err)})") from None
    return Predictions.from_arrays(
        scores, labels, kind=kind, source=source, score_key=scores_key, label_key=labels_key
    )


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:200]
