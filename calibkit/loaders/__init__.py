"""Readers for saved predictions: one entry point, :func:`read_predictions`.

Formats, by file extension: ``.npz`` (numpy archive, loaded in memory, never unpickled),
``.parquet`` (streamed batch by batch with pyarrow), ``.pt`` / ``.pth`` (a dict of tensors, with
the ``torch`` extra, loaded with ``weights_only=True``). Key and column names are described in
:mod:`calibkit.loaders.keys`.
"""

from __future__ import annotations

import os
from pathlib import Path

from calibkit.errors import InputError
from calibkit.io.paths import PARQUET_SUFFIXES, parquet_shards
from calibkit.loaders.keys import ReadOptions
from calibkit.sources.predictions import Predictions, PredictionSource

__all__ = ["SUPPORTED_SUFFIXES", "ReadOptions", "load_predictions", "read_predictions"]

SUPPORTED_SUFFIXES = (".npz", ".parquet", ".pq", ".pt", ".pth")


def _check_file(path: Path, source: str) -> None:
    if not path.exists():
        raise InputError(source, "no such file")
    if path.is_dir():
        raise InputError(source, "is a directory, not a predictions file")
    if not os.access(path, os.R_OK):
        raise InputError(source, "permission denied")
    if path.stat().st_size == 0:
        raise InputError(source, "file is empty (0 bytes)")


def _parquet_shards(spec: str) -> list[Path] | None:
    """The parquet files a directory or glob pattern names; ``None`` for a single file.

    The listing is :func:`calibkit.io.paths.parquet_shards`, the one that output checks use too.
    """
    try:
        found = parquet_shards(spec)
    except OSError as err:
        raise InputError(spec, f"cannot list the shards ({err.strerror or err})") from None
    if found is None:
        return None
    how, files = found
    if how == "directory":
        if not files:
            raise InputError(spec, "is a directory with no .parquet files")
        return files
    if not files:
        raise InputError(spec, "no files match this pattern")
    bad = [p for p in files if p.suffix.lower() not in PARQUET_SUFFIXES]
    if bad:
        raise InputError(str(bad[0]), "a pattern may only match .parquet shards")
    return files


def read_predictions(
    path: str | os.PathLike[str], options: ReadOptions | None = None
) -> PredictionSource:
    """Open a predictions file; the result streams validated chunks (see ``PredictionSource``).

    ``.npz`` and ``.pt`` files are read and validated at once; ``.parquet`` files are checked
    for layout now and validated batch by batch as they are read. A directory, or a glob pattern
    such as ``preds/*.parquet``, names parquet shards that are read as one data set, in sorted
    order, shard by shard.
    """
    source = str(path)
    options = options or ReadOptions()
    shards = _parquet_shards(source)
    if shards is not None:
        from calibkit.loaders.parquet import open_shards

        return open_shards(shards, options, source)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(
            source,
            f"unknown file type {path.suffix or '(no extension)'!r}; "
            f"expected one of {', '.join(SUPPORTED_SUFFIXES)}",
        )
    _check_file(path, source)
    if suffix == ".npz":
        from calibkit.loaders.npz import read_npz

        return read_npz(path, options, source)
    if suffix in (".parquet", ".pq"):
        from calibkit.loaders.parquet import open_parquet

        return open_parquet(path, options, source)
    from calibkit.loaders.torch_pt import read_pt

    return read_pt(path, options, source)


def load_predictions(
    path: str | os.PathLike[str], options: ReadOptions | None = None
) -> Predictions:
    """Read a whole predictions file into memory as
    :class:`~calibkit.sources.predictions.Predictions`."""
    import numpy as np

    src = read_predictions(path, options)
    if isinstance(src, Predictions):
        return src
    if src.kind == "confidence":
        raise InputError(src.source, "holds confidences only; use read_predictions for it")
    parts = list(src.chunks())
    scores = np.concatenate([s for s, _ in parts])
    labels = np.concatenate([y for _, y in parts])
    return Predictions(
        scores,
        labels,
        src.kind,
        src.source,
        src.binary,
        getattr(src, "score_key", None),
        getattr(src, "label_key", None),
    )
