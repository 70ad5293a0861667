"""Validators for saved predictions, on top of :mod:`calibkit.readers`: one entry point,
:func:`read_predictions`.

Formats, by file extension (the reader registry, :func:`calibkit.readers.format_for`): ``.npz``
(numpy archive, loaded in memory, never unpickled), ``.parquet`` (streamed batch by batch with
pyarrow), ``.pt`` / ``.pth`` (a dict of tensors, with the ``torch`` extra, loaded with
``weights_only=True``). Key and column names are described in :mod:`calibkit.loaders.keys`.
Each of these formats has its own validator (:mod:`~calibkit.loaders.npz`,
:mod:`~calibkit.loaders.parquet`, :mod:`~calibkit.loaders.torch_pt`); a format registered
without one is read through its named arrays (:func:`read_named_arrays`). Record files
(``.jsonl``, ``.json``, ``.csv``: LLM evaluation outputs) are :mod:`~calibkit.loaders.records`': the
samples of lm-evaluation-harness (ragged K), confidence rows, top-k log-probabilities.

Several files are one data set: a directory, or a glob pattern, of parquet shards
(:class:`~calibkit.loaders.parquet.ShardedParquet`) or of ``.npz`` archives
(:class:`~calibkit.loaders.npz.ShardedNpz`), never both, read in sorted order; or of
lm-evaluation-harness samples files (``*.jsonl``, ``samples_*.json``;
:func:`~calibkit.loaders.records.record_files`), generation tasks among them left out with one
warning.
A URL
(``s3://bucket/preds/``, ``gs://...``, ``file:///...``; :mod:`calibkit.io.urls`) of a parquet or
``.npz`` file, a directory or a pattern is read through fsspec (imported only then; a missing
filesystem package is a one-line error naming it).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from calibkit.errors import InputError, Param
from calibkit.io.paths import NPZ_SUFFIXES, PARQUET_SUFFIXES, SHARD_SUFFIXES, shard_files
from calibkit.io.urls import Location, as_url, check_url, is_url, list_url
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
    "jsonl": ("calibkit.loaders.records", "read_jsonl"),
    "csv": ("calibkit.loaders.records", "read_csv"),
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


def _shards(spec: str) -> tuple[str, list[Location]] | None:
    """The format (``"parquet"`` or ``"npz"``) and the files a directory or glob pattern (or a
    URL of either) names; ``None`` for a single file.

    The local listing is :func:`calibkit.io.paths.shard_files`, the one that output checks use
    too; a URL's is :func:`calibkit.io.urls.list_url`.
    """
    found: tuple[str, list[Location]] | None
    if is_url(spec):
        listed = list_url(spec, spec, SHARD_SUFFIXES)
        found = None if listed is None else (listed[0], list(listed[1]))
    else:
        try:
            local = shard_files(spec)
        except OSError as err:
            raise InputError(spec, f"cannot list the shards ({err.strerror or err})") from None
        found = None if local is None else (local[0], list(local[1]))
    if found is None:
        return None
    how, files = found
    if not files:
        if how == "directory":
            raise InputError(
                spec,
                "is a directory with no data files: it may hold .parquet or .npz shards, or "
                "lm-evaluation-harness samples files (samples_*.jsonl, samples_*.json)",
            )
        raise InputError(spec, "no files match this pattern")
    bad = [f for f in files if _suffix(f) not in SHARD_SUFFIXES]
    if bad:
        raise InputError(
            str(bad[0]),
            "a pattern may only match .parquet or .npz shards, or lm-evaluation-harness "
            "samples files (.jsonl, .json)",
        )
    parquet = [f for f in files if _suffix(f) in PARQUET_SUFFIXES]
    if parquet and len(parquet) < len(files):
        npz = next(f for f in files if _suffix(f) in NPZ_SUFFIXES)
        raise InputError(
            spec,
            f"mixes .parquet and .npz shards ({parquet[0]}, {npz}); "
            "shards of one data set share one format",
        )
    return ("parquet" if parquet else "npz"), files


#: The formats of record files (:mod:`calibkit.loaders.records`), where lm-eval samples live.
_RECORD_FORMATS = ("jsonl", "csv", "json")


def _lm_eval_only(options: ReadOptions, source: str, fmt_name: str) -> None:
    """``length_normalize`` divides lm-eval samples' per-choice log-likelihoods by the choices'
    lengths; other formats hold no choice texts, so asking for it there is refused, not
    ignored (the record loaders refuse it on record files of other layouts)."""
    if options.length_normalize != "none" and fmt_name not in _RECORD_FORMATS:
        raise InputError(
            source,
            Param("length_normalize", options.length_normalize)
            + f" applies to lm-evaluation-harness samples only; {fmt_name} inputs hold no "
            "choice texts to measure",
        )


def _suffix(location: Location) -> str:
    name = str(location).rstrip("/").rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def read_predictions(
    path: str | os.PathLike[str], options: ReadOptions | None = None
) -> PredictionSource:
    """Open a predictions file; the result streams validated chunks (see ``PredictionSource``).

    ``.npz`` and ``.pt`` files are read and validated at once; ``.parquet`` files are checked
    for layout now and validated batch by batch as they are read. A directory, or a glob pattern
    such as ``preds/*.parquet``, names parquet shards, or ``.npz`` archives, that are read as one
    data set, in sorted order, shard by shard (an ``.npz`` shard only when it is streamed). A
    URL such as ``s3://bucket/preds.parquet`` (or of a directory, or a pattern) is read through
    fsspec (:func:`calibkit.io.urls.as_url`: also when it was parsed into a ``Path``).
    """
    url = as_url(path)  # a URL, even one a Path has collapsed (command-line arguments)
    source = url if url is not None else os.fspath(path)
    options = options or ReadOptions()
    if not is_url(source):  # a directory or pattern of lm-eval samples files (.jsonl, .json)
        from calibkit.loaders.records import read_record_files, record_files

        samples = record_files(source)
        if samples is not None:
            return read_record_files(samples, options, source)
    shards = _shards(source)
    if shards is not None:
        fmt_name, files = shards
        _lm_eval_only(options, source, fmt_name)
        if fmt_name == "npz":
            from calibkit.loaders.npz import open_npz_shards

            return open_npz_shards(files, options, source)
        from calibkit.loaders.parquet import open_shards

        return open_shards(files, options, source)
    if is_url(source):
        fmt = format_for(source, source)
        if fmt.name not in ("npz", "parquet"):
            raise InputError(
                source, f"{fmt.suffixes[0]} files cannot be read from a URL; copy it locally"
            )
        check_url(source, source)
        _lm_eval_only(options, source, fmt.name)
        module, function = _VALIDATORS[fmt.name]
        read = getattr(importlib.import_module(module), function)
        return read(source, options, source)  # type: ignore[no-any-return]
    local = Path(path)
    fmt = format_for(local, source)  # by the suffix: an unknown one is refused before any check
    check_file(local, source)
    _lm_eval_only(options, source, fmt.name)
    if fmt.name not in _VALIDATORS:
        return read_named_arrays(fmt, local, options, source)
    module, function = _VALIDATORS[fmt.name]
    read = getattr(importlib.import_module(module), function)
    return read(local, options, source)  # type: ignore[no-any-return]


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
