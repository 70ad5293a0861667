"""Reading the small text files calibkit takes: JSON baselines, calibrator JSON, TOML settings.

(Predictions are read by :mod:`calibkit.loaders`; this module depends on nothing but the errors
and :mod:`calibkit.limits`, so the calibrators can use it too.)

One reader for all of them, so every such file gets the same guarantees:

* only a regular file or a pipe (``--config <(...)``, a FIFO) is read; a device such as
  ``/dev/zero``, a directory or a socket is refused with one line, before any byte is read;
* at most :data:`~calibkit.limits.MAX_TEXT_BYTES` (16 MiB) are read: one byte more says the file
  is too large, so an endless stream cannot exhaust memory or time;
* opening never blocks: a FIFO with no writer reads as empty instead of hanging;
* it must be UTF-8 text;
* JSON or TOML nested too deeply for the parser (``[[[[...``) or holding an integer of thousands
  of digits is refused with one line, as any other malformed file, never a traceback.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from calibkit.errors import InputError
from calibkit.limits import MAX_TEXT_BYTES

__all__ = ["load_json", "load_toml", "parse_json", "read_small_text"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _size(n: int) -> str:
    return f"{n / (1 << 20):g} MiB" if n >= 1 << 20 else f"{n} bytes"


def read_small_text(path: str | Path, what: str = "file", limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of ``path``, a regular file or pipe of at most ``limit`` bytes.

    ``what`` names the file in messages (``"a JSON baseline"``). Every problem is an
    :class:`~calibkit.errors.InputError` naming ``path``.

    >>> read_small_text("/dev/zero", "a calibrator")
    Traceback (most recent call last):
    ...
    calibkit.errors.InputError: /dev/zero: is a character device; a calibrator must be a file
    """
    source = str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError(source, "no such file") from None
    except IsADirectoryError:  # (Windows cannot open a directory)
        raise InputError(source, f"is a directory; {what} must be a file") from None
    except OSError as err:
        raise InputError(source, f"cannot open ({err.strerror or err})") from None
    try:
        mode = os.fstat(fd).st_mode  # of what was opened: no race with a rename
        for test, kind in _KINDS:
            if test(mode):
                raise InputError(source, f"is {kind}; {what} must be a file")
        if stat.S_ISFIFO(mode) and hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # a writer may still be writing: wait for its data
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except InputError:
        raise
    except OSError as err:
        raise InputError(source, f"cannot read ({err.strerror or err})") from None
    finally:
        os.close(fd)
    if size > limit:
        raise InputError(source, f"larger than {_size(limit)}; not {what}")
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(source, f"not UTF-8 text (byte {err.start}); not {what}") from None


def load_json(path: str | Path, what: str = "a JSON file", limit: int = MAX_TEXT_BYTES) -> Any:
    """The parsed JSON of ``path`` (read with :func:`read_small_text`)."""
    return parse_json(read_small_text(path, what, limit), str(path))


def parse_json(text: str, source: str) -> Any:
    """``json.loads(text)``, with every way it can fail an :class:`InputError` naming ``source``.

    >>> parse_json("[" * 100_000, "deep.json")
    Traceback (most recent call last):
    ...
    calibkit.errors.InputError: deep.json: not valid JSON (nested too deeply)
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(source, f"not valid JSON ({err.msg} at line {err.lineno})") from None
    except RecursionError:
        raise InputError(source, "not valid JSON (nested too deeply)") from None
    except ValueError as err:  # an integer of more digits than Python converts (4300)
        raise InputError(source, f"not valid JSON ({_first_clause(err)})") from None


def load_toml(path: str | Path, what: str = "a TOML file", limit: int = MAX_TEXT_BYTES) -> Any:
    """The parsed TOML of ``path`` (read with :func:`read_small_text`)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    source = str(path)
    text = read_small_text(path, what, limit)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(source, f"not valid TOML ({err})") from None
    except RecursionError:
        raise InputError(source, "not valid TOML (nested too deeply)") from None
    except ValueError as err:
        raise InputError(source, f"not valid TOML ({_first_clause(err)})") from None


def _first_clause(err: BaseException) -> str:
    text = " ".join(str(err).split())
    if "integer string conversion" in text:
        return "an integer with too many digits"
    return text.split(";")[0].rstrip(".")[:160]
