"""Validators for saved predictions, on top of :mod:`calibkit.readers`: one entry point,
:func:`read_predictions`.

Formats, by file extension (the reader registry, :func:`calibkit.readers.format_for`): ``.npz``
(numpy archive, loaded in memory, never unpickled), ``.parquet`` (streamed batch by batch with
pyarrow), ``.pt`` / ``.pth`` (a dict of tensors, with the ``torch`` extra, loaded with
``weights_only=True``). Key and column names are described in :mod:`calibkit.loaders.keys`.
Each of these formats has its own validator (:mod:`~calibkit.loaders.npz`,
:mod:`~calibkit.loaders.parquet`, :mod:`~calibkit.loaders.torch_pt`); a format registered
without one is read through its named arrays (:func:`read_named_arrays`).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from calibkit.errors import InputError
from calibkit.io.paths import PARQUET_SUFFIXES, parquet_shards
from calibkit.loaders.keys import ReadOptions, choose_keys, confidence_keys, keyed_predictions
from calibkit.readers import Format, check_file, format_for, suffixes
from calibkit.sources.predictions import ConfidenceRows, Predictions, PredictionSource

__all__ = [
    "SUPPORTED_SUFFIXES",
    "ReadOptions",
    "load_predictions",
    "read_named_arrays",
    "read_predictions",
]


def __getattr__(name: str) -> tuple[str, ...]:
    # ``SUPPORTED_SUFFIXES``: every registered suffix, read from the registry when asked for (a
    # format registered after this module was imported is listed too)
    if name == "SUPPORTED_SUFFIXES":
        return suffixes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: The formats whose validators know their layout better than named arrays do:
#: ``format name -> (module, function(path, options, source))``.
_VALIDATORS = {
    "npz": ("calibkit.loaders.npz", "read_npz"),
    "parquet": ("calibkit.loaders.parquet", "open_parquet"),
    "pt": ("calibkit.loaders.torch_pt", "read_pt"),
}


def read_named_arrays(
    fmt: Format, path: Path, options: ReadOptions, source: str
) -> PredictionSource:
    """Predictions from a format's named arrays: the keys chosen from the names the file holds
    (as for every format), then the two arrays read and validated."""
    reader = fmt.reader()
    names = reader.list_keys(path, source)
    pair = confidence_keys(names, options)
    if pair is not None:
        arrays = reader.read_arrays(path, pair, source)
        return ConfidenceRows.from_arrays(arrays[pair[0]], arrays[pair[1]], source=source)
    keys = choose_keys(names, options, source)
    arrays = reader.read_arrays(path, list(keys[:2]), source)
    return keyed_predictions(arrays[keys[0]], arrays[keys[1]], keys, options, source)


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
    fmt = format_for(path, source)  # by the suffix: an unknown one is refused before any check
    check_file(path, source)
    if fmt.name not in _VALIDATORS:
        return read_named_arrays(fmt, path, options, source)
    module, function = _VALIDATORS[fmt.name]
    read = getattr(importlib.import_module(module), function)
    return read(path, options, source)  # type: ignore[no-any-return]


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
