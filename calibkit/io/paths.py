"""Which files an input argument names: one seam for the readers and the output checks.

An input argument is a file, a directory of parquet or ``.npz`` shards (or of
lm-evaluation-harness samples files), or a glob pattern such
as ``'preds/*.parquet'`` (expanded by calibkit, not the shell); or a URL of any of these
(:mod:`calibkit.io.urls`), of which only ``file://`` ones name local files here (outputs are
local, so no other URL can be written over). The readers
(:func:`calibkit.loaders.read_predictions`) read exactly the files listed here, and
:func:`calibkit.io.atomic.check_output_path` refuses an output that is one of them, or that
would become one of them, so no command can write over (or into) the data it reads.

Nothing here raises on a missing or unreadable input: the readers report those.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob as globmod
import os
from pathlib import Path

from calibkit.io.urls import as_url, local_path

__all__ = [
    "NPZ_SUFFIXES",
    "PARQUET_SUFFIXES",
    "SHARD_SUFFIXES",
    "input_files",
    "is_pattern",
    "is_samples_file",
    "is_shard_of",
    "parquet_shards",
    "shard_files",
]

PARQUET_SUFFIXES = (".parquet", ".pq")
NPZ_SUFFIXES = (".npz",)
#: The files a directory of shards holds: parquet ones or ``.npz`` ones (never both).
SHARD_SUFFIXES = PARQUET_SUFFIXES + NPZ_SUFFIXES
_MAGIC = frozenset("*?[")


def is_pattern(spec: str | os.PathLike[str]) -> bool:
    """Whether ``spec`` is a glob pattern: it has ``*``, ``?`` or ``[``, and names no file."""
    text = os.fspath(spec)
    return any(ch in _MAGIC for ch in text) and not os.path.lexists(text)


def _is_shard(path: Path) -> bool:
    return path.suffix.lower() in SHARD_SUFFIXES


def is_samples_file(path: Path) -> bool:
    """Whether a file in a directory is an lm-evaluation-harness samples file, read as part of
    the directory (:func:`calibkit.loaders.records.record_files`): every ``.jsonl`` file, and
    the ``.json`` files named ``samples_*`` (lm-eval's ``results_*.json`` beside them is not
    one)."""
    suffix = path.suffix.lower()
    return suffix == ".jsonl" or (suffix == ".json" and path.name.startswith("samples_"))


def _is_read_from_directory(path: Path) -> bool:
    return _is_shard(path) or is_samples_file(path)


def shard_files(spec: str | os.PathLike[str]) -> tuple[str, list[Path]] | None:
    """The shards a directory or pattern names, as ``(how, files)``; ``None`` for a single file.

    ``how`` is ``"directory"`` (the ``.parquet`` / ``.pq`` / ``.npz`` files in it, sorted, except
    hidden ones: another run's temporary files, macOS ``._*`` metadata; a glob pattern skips them
    too) or ``"pattern"`` (the files matching it, sorted; not only shards, so a reader can
    refuse the others). Local inputs only: a URL's shards are :func:`calibkit.io.urls.list_url`'s.
    """
    path = Path(spec)
    if path.is_dir():
        files = (p for p in path.iterdir() if _is_shard(p) and not p.name.startswith("."))
        return "directory", sorted(files)
    if is_pattern(spec):
        return "pattern", sorted(p for p in map(Path, globmod.glob(os.fspath(spec))) if p.is_file())
    return None


#: The name :func:`shard_files` had when shards were parquet files only.
parquet_shards = shard_files


def input_files(spec: str | os.PathLike[str]) -> list[Path]:
    """Every file the input argument ``spec`` names: itself, a directory's shards, a pattern's
    matches. An input that does not exist (yet) names itself; a URL names nothing local,
    except a ``file://`` one (read as the path it names)."""
    if as_url(spec) is not None:
        local = local_path(spec)
        return [] if local is None else input_files(local)
    path = Path(spec)
    try:
        if path.is_dir():  # its shards, or its lm-eval samples files
            return sorted(
                p
                for p in path.iterdir()
                if _is_read_from_directory(p) and not p.name.startswith(".")
            )
        shards = shard_files(spec)
    except OSError:  # an unreadable directory: the reader will say so
        shards = None
    return [Path(spec)] if shards is None else shards[1]


def is_shard_of(spec: str | os.PathLike[str], candidate: str | os.PathLike[str]) -> bool:
    """Whether a file written at ``candidate`` would be read as part of the input ``spec``
    (a new parquet file in a shard directory, a new samples file in a directory of lm-eval
    samples, or any file matching a pattern)."""
    if as_url(spec) is not None:
        local = local_path(spec)
        return local is not None and is_shard_of(local, candidate)
    cand = Path(candidate)
    text = os.fspath(spec)
    if Path(text).is_dir():
        if not _is_read_from_directory(cand):
            return False
        try:
            return os.path.samefile(os.path.dirname(os.path.abspath(cand)), text)
        except OSError:
            return False
    if not is_pattern(text):
        return False
    parts = Path(os.path.abspath(text)).parts
    names = {Path(os.path.abspath(cand)).parts}
    with contextlib.suppress(OSError):
        names.add(Path(os.path.realpath(cand)).parts)
    return any(_matches(parts, name) for name in names)


def _matches(pattern: tuple[str, ...], name: tuple[str, ...]) -> bool:
    """Component-wise glob matching as :func:`glob.glob` does it (``*`` stops at ``/``; a name
    starting with ``.`` needs a pattern starting with ``.``)."""
    if len(pattern) != len(name):
        return False
    for pat, part in zip(pattern, name, strict=True):
        if part.startswith(".") and not pat.startswith(".") and any(c in _MAGIC for c in pat):
            return False
        if not fnmatch.fnmatchcase(part, pat):
            return False
    return True
