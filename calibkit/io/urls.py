"""Inputs named by URL (``s3://bucket/preds.parquet``, ``gs://...``, ``file:///...``,
``memory://...``): read through `fsspec <https://filesystem-spec.readthedocs.io>`_.

fsspec is optional, imported only when a URL is read; so is each object store's filesystem
package (``s3fs`` for ``s3://``, ``gcsfs`` for ``gs://``). A missing one is an
:class:`~calibkit.errors.InputError` that names the package to install, never a traceback.

A *location* is a local :class:`~pathlib.Path` or a URL string (:data:`Location`); readers that
take one open it with :func:`open_input`. Nothing here keeps a file or a filesystem object: a URL
is re-opened wherever it is read (a worker process opens its own), so sources that hold
locations pickle as plain strings.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Union

from calibkit.errors import InputError, describe

__all__ = [
    "Location",
    "as_url",
    "check_url",
    "filesystem",
    "is_url",
    "list_url",
    "local_path",
    "open_input",
    "protocol_of",
    "url_size",
]

#: A local path, or a URL string read through fsspec.
Location = Union[Path, str]  # noqa: UP007 (a runtime alias)

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_MAGIC = frozenset("*?[")


def is_url(spec: object) -> bool:
    """Whether ``spec`` is a URL string ``protocol://...`` (a :class:`~pathlib.Path` never is)."""
    return isinstance(spec, str) and _URL.match(spec) is not None


#: A URL after :class:`~pathlib.Path` has collapsed its ``//`` (``s3:/bucket/x``); a protocol of
#: one letter is a Windows drive, never a URL.
_COLLAPSED = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):/(?!/)")


def as_url(spec: object) -> str | None:
    """The URL ``spec`` names, or ``None`` for a local path.

    A string is a URL when it starts ``protocol://``. A :class:`~pathlib.Path` cannot hold one
    intact (``Path("s3://bucket/x")`` is ``s3:/bucket/x``; command-line arguments are parsed
    into paths): one that reads ``protocol:/...`` and names no local file is taken for the URL
    it came from (``file:/tmp/x`` for ``file:///tmp/x``).
    """
    if isinstance(spec, str):
        return spec if is_url(spec) else None
    if not isinstance(spec, os.PathLike):
        return None
    text = os.fspath(spec)
    if not isinstance(text, str):
        return None
    found = _COLLAPSED.match(text)
    if found is None or os.path.lexists(text):
        return None
    protocol, rest = found.group(1), text[found.end() :]
    if protocol.lower() in ("file", "local"):
        return f"{protocol}:///{rest}"
    return f"{protocol}://{rest}"


def protocol_of(url: str) -> str:
    found = _URL.match(url)
    return found.group(1).lower() if found else ""


def local_path(spec: object) -> Path | None:
    """The local file a ``file://`` URL names (``None`` for other inputs; see :func:`as_url`)."""
    url = as_url(spec)
    if url is not None and protocol_of(url) in ("file", "local"):
        rest = url.split("://", 1)[1]
        return Path(rest) if rest.startswith("/") else Path("/" + rest)
    return None


def _package_for(protocol: str) -> str | None:
    """The package implementing ``protocol`` in fsspec's registry (``s3fs`` for ``s3``)."""
    try:
        from fsspec.registry import known_implementations
    except ImportError:
        return None
    entry = known_implementations.get(protocol)
    if not entry:
        return None
    return str(entry["class"]).split(".", 1)[0]


def filesystem(url: str, source: str) -> tuple[Any, str]:
    """``(fsspec filesystem, path within it)`` for ``url``; a missing package (fsspec, or the
    protocol's own such as ``s3fs``) or an unknown protocol is one :class:`InputError`."""
    protocol = protocol_of(url)
    try:
        import fsspec
    except ImportError:
        needed = _KNOWN.get(protocol)
        what = "the fsspec package" if needed is None else f"the fsspec and {needed} packages"
        pip = "fsspec" if needed is None else f"fsspec {needed}"
        raise InputError(
            source, f"reading {protocol}:// URLs needs {what} (pip install {pip})"
        ) from None
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError:
        package = _package_for(protocol) or _KNOWN.get(protocol) or f"{protocol}fs"
        needs = f"the {package} package (pip install {package})"
        raise InputError(source, f"reading {protocol}:// URLs needs {needs}") from None
    except ValueError as err:
        if "protocol not known" in str(err).lower():
            raise InputError(source, f"unknown URL protocol {protocol + '://'!r}") from None
        raise InputError(source, f"cannot open this URL ({describe(err)})") from None
    except Exception as err:  # credentials, a malformed bucket name, ...: the input's problem
        raise InputError(source, f"cannot open this URL ({describe(err)})") from None
    return fs, str(path)


#: Packages of a few common protocols, for the message when fsspec itself is missing.
_KNOWN = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "abfs": "adlfs",
    "az": "adlfs",
}


def check_url(url: str, source: str, *, what: str = "predictions file") -> None:
    """Refuse a URL that names nothing, a directory or an empty file (one line each)."""
    fs, path = filesystem(url, source)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise InputError(source, "no such file") from None
    except Exception as err:
        raise InputError(source, f"cannot open ({describe(err)})") from None
    if info.get("type") == "directory":
        raise InputError(source, f"is a directory, not a {what}")
    if not info.get("size"):
        raise InputError(source, "file is empty (0 bytes)")


def url_size(url: str, source: str) -> int:
    """The size in bytes of the file at ``url``."""
    fs, path = filesystem(url, source)
    try:
        return int(fs.size(path))
    except Exception as err:
        raise InputError(source, f"cannot open ({describe(err)})") from None


@contextmanager
def open_input(location: Location, source: str) -> Iterator[IO[bytes]]:
    """A binary file object over ``location`` (a local path, or a URL opened with fsspec),
    closed when the block ends. A URL that cannot be opened is an :class:`InputError`."""
    if not is_url(location):
        with open(location, "rb") as fh:
            yield fh
        return
    url = str(location)
    fs, path = filesystem(url, source)
    try:
        fh = fs.open(path, "rb")
    except FileNotFoundError:
        raise InputError(source, "no such file") from None
    except Exception as err:
        raise InputError(source, f"cannot open ({describe(err)})") from None
    with fh:
        yield fh


def _visible(name: str) -> bool:
    return not name.rstrip("/").rsplit("/", 1)[-1].startswith(".")


def list_url(url: str, source: str, suffixes: tuple[str, ...]) -> tuple[str, list[str]] | None:
    """The shards a directory or glob URL names, as ``(how, urls)`` (see
    :func:`calibkit.io.paths.shard_files`); ``None`` for a single file (or nothing at all).

    A directory lists its files ending in ``suffixes`` (not hidden ones); a pattern, every file
    it matches (hidden names only when the pattern asks for them, as :mod:`glob` does)."""
    fs, path = filesystem(url, source)
    try:
        if any(ch in _MAGIC for ch in path) and not fs.exists(path):
            found = fs.glob(path, detail=True)
            files = [
                name
                for name, info in found.items()
                if info.get("type") != "directory" and (_visible(name) or _dotted(path))
            ]
            return "pattern", sorted(fs.unstrip_protocol(name) for name in files)
        if fs.isdir(path):
            entries = fs.ls(path, detail=True)
            files = [
                e["name"]
                for e in entries
                if e.get("type") != "directory"
                and _visible(e["name"])
                and e["name"].lower().endswith(suffixes)
            ]
            return "directory", sorted(fs.unstrip_protocol(name) for name in files)
    except InputError:
        raise
    except Exception as err:
        raise InputError(source, f"cannot list the shards ({describe(err)})") from None
    return None


def _dotted(pattern: str) -> bool:
    return pattern.rstrip("/").rsplit("/", 1)[-1].startswith(".")
