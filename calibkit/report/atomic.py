"""Writing outputs atomically, never over an input.

Every file calibkit writes goes to a temporary file in the target's directory first and is then
renamed over the target (``os.replace``, atomic on POSIX and Windows), so an interrupted run leaves
either the old file or the new one, never a partial one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from calibkit.errors import OutputError

__all__ = ["atomic_path", "atomic_write_text", "check_output_path"]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def check_output_path(
    target: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = ()
) -> Path:
    """Refuse an output that is an input, a directory, or in a directory that does not exist."""
    path = Path(target)
    for inp in inputs:
        if _same_file(path, Path(inp)):
            raise OutputError(str(path), "is also an input; refusing to overwrite it")
    if path.is_dir():
        raise OutputError(str(path), "is a directory; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(str(path), f"directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(str(path), f"directory {str(parent)!r} is not writable")
    return path


@contextlib.contextmanager
def atomic_path(
    target: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = ()
) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed to ``target``.

    The temporary name keeps the target's suffix, so writers that choose a format by extension
    (matplotlib, numpy) still do. On any error the temporary file is removed and the target left
    untouched.
    """
    path = check_output_path(target, inputs)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent
        )
    except OSError as err:
        raise OutputError(str(path), f"cannot create a file there ({err.strerror})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if path.exists():
            with contextlib.suppress(OSError):
                os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as err:
        raise OutputError(str(path), f"cannot write ({err.strerror or err})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_text(
    target: str | os.PathLike[str], text: str, inputs: Iterable[str | os.PathLike[str]] = ()
) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically; returns the target path."""
    with atomic_path(target, inputs) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(target)
