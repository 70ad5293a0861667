"""Writing outputs safely: atomically over files, in place into devices, never over an input.

What happens to an output depends on what its path names (after following symbolic links):

* **A new path or a regular file** is replaced atomically: the content goes to a temporary file
  in the same directory, which is then renamed over the target (``os.replace``, atomic on POSIX
  and Windows), so an interrupted run leaves the old file or the new one, never a partial one.
  When the path is a symbolic link, its *target* is replaced (the temporary file is made beside
  the target), so the link stays a link. The old file's permission bits (and, when run as root,
  its owner) are kept.
* **A character device or a FIFO** (``/dev/null``, ``/dev/full``, a terminal, a named pipe) is
  written in place: opened for writing without creating or truncating anything, never renamed
  over. Text goes straight in; a writer that needs a file name (matplotlib, numpy, torch, pyarrow)
  writes a temporary file in a private temporary directory (``TMPDIR``), whose bytes are then
  copied in, so formats that seek while writing work too. A full device (``/dev/full``) is a
  one-line :class:`~calibkit.errors.OutputError`. Writing in place is not atomic.
* **An open descriptor named through** ``/proc`` (``/dev/stdout``, ``/dev/stderr``,
  ``/dev/fd/N``) is written in place too; when it is a regular file (``> log``) the bytes are
  appended, as the shell's ``>>`` would, instead of replacing the file the shell opened.
* **A directory, a block device or a socket** is refused.

A folder of outputs (``compare --out-dir``) is built whole in a temporary sibling folder and then
swapped in with one rename (:func:`atomic_directory`), so a reader sees the old set of files or
the new one, never a mix. Because the old folder goes away in the swap, the target must be new,
empty, or hold nothing but files with the names calibkit writes there; a folder holding anything
else (your files, a sub-folder, a link) is refused, never emptied.

An output that is also an input is refused: the same file by path, symbolic link or hard link;
any file a directory or glob input expands to (:func:`calibkit.io.paths.input_files`); and a file
that would become one of those shards (a new ``.parquet`` file in a shard directory, a file
matching a pattern).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
import tempfile
import warnings
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from calibkit.errors import CalibkitError, OutputError
from calibkit.io.paths import input_files, is_pattern, is_shard_of

__all__ = [
    "OutputTarget",
    "atomic_directory",
    "atomic_path",
    "atomic_write_text",
    "check_output_dir",
    "check_output_path",
    "plan_output",
]

_COPY_BYTES = 1 << 20


@dataclass(frozen=True)
class OutputTarget:
    """Where and how an output is written; see :func:`plan_output`."""

    path: Path  #: the path as given (used in messages)
    real: Path  #: the file that is replaced, or the path that is opened for writing in place
    in_place: bool  #: a device, FIFO or open descriptor: written in place, not atomically
    append: bool = False  #: a regular file reached through /proc: appended to


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except (OSError, RuntimeError):
        return False


def _in_proc(path: str) -> bool:
    return path == "/proc" or path.startswith("/proc/")


def _through_proc(text: str) -> bool:
    """Whether ``text`` reaches its file through ``/proc`` (``/dev/stdout`` ->
    ``/proc/self/fd/1`` -> ...): such links name an open descriptor, not a place to put a file."""
    if not sys.platform.startswith("linux"):
        return False
    current = os.path.abspath(text)
    for _ in range(40):  # the kernel's own limit on links followed
        parent = os.path.realpath(os.path.dirname(current))
        current = os.path.join(parent, os.path.basename(current))
        if _in_proc(parent) or _in_proc(current):
            return True
        try:
            link = os.readlink(current)
        except OSError:  # not a link (or missing): the chain ends here
            return False
        current = os.path.join(parent, link)
    return False


def _check_inputs(path: Path, inputs: Iterable[str | os.PathLike[str]]) -> None:
    for spec in inputs:
        if any(_same_file(path, f) for f in input_files(spec)):
            raise OutputError(str(path), "is also an input; refusing to overwrite it")
        if is_shard_of(spec, path):
            raise OutputError(
                str(path),
                f"would become one of the shards of the input {os.fspath(spec)}; "
                "refusing to write it there",
            )


def _atomic_target(path: Path, real: Path) -> OutputTarget:
    parent = real.parent
    shown = real.parent if os.path.islink(path) else path.parent
    if not parent.is_dir():
        raise OutputError(str(path), f"directory {str(shown)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(str(path), f"directory {str(shown)!r} is not writable")
    return OutputTarget(path, real, in_place=False)


def plan_output(
    target: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = ()
) -> OutputTarget:
    """Decide how ``target`` is written (see the module docstring), or raise
    :class:`~calibkit.errors.OutputError` when it must not be."""
    path = Path(target)
    text = os.fspath(path)
    if "\0" in text:
        raise OutputError(repr(text), "is not a valid file name (it holds a NUL character)")
    _check_inputs(path, inputs)
    via_proc = _through_proc(text)
    try:
        st: os.stat_result | None = os.stat(text)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise OutputError(str(path), f"directory {str(path.parent)!r} does not exist") from None
    except OSError as err:
        raise OutputError(str(path), f"cannot use this path ({err.strerror or err})") from None
    if st is None:
        if via_proc:
            raise OutputError(str(path), "names a file descriptor that is not open")
        # a new file; or a dangling symbolic link, whose target is created (the link stays)
        return _atomic_target(path, Path(os.path.realpath(text)))
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise OutputError(str(path), "is a directory; give a file name")
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return OutputTarget(path, path, in_place=True)
    if stat.S_ISREG(mode):
        if via_proc:
            return OutputTarget(path, path, in_place=True, append=True)
        return _atomic_target(path, Path(os.path.realpath(text)))
    if stat.S_ISBLK(mode):
        raise OutputError(str(path), "is a block device; calibkit never writes to one")
    if stat.S_ISSOCK(mode):
        raise OutputError(str(path), "is a socket; give a file name")
    raise OutputError(str(path), "is not a regular file, device or FIFO; give a file name")


def check_output_path(
    target: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = ()
) -> Path:
    """Refuse an output that is an input (or one of its shards), a directory, a block device or
    socket, or a file in a directory that does not exist; returns ``Path(target)``."""
    plan_output(target, inputs)
    return Path(target)


def _reason(err: OSError) -> str:
    return err.strerror or str(err) or type(err).__name__


def _open_in_place(t: OutputTarget) -> int:
    """Open a device, FIFO or descriptor for writing: never created, never truncated."""
    flags = os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    if t.append:
        flags |= os.O_APPEND
    try:
        fd = os.open(t.real, flags)
    except OSError as err:
        raise OutputError(str(t.path), f"cannot open for writing ({_reason(err)})") from None
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or (t.append and stat.S_ISREG(mode))):
        os.close(fd)
        raise OutputError(str(t.path), "changed while calibkit was writing; nothing written")
    return fd


def _write_all(t: OutputTarget, fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except OSError as err:
            raise OutputError(str(t.path), f"cannot write ({_reason(err)})") from None
        if written == 0:  # pragma: no cover - a device that takes nothing
            raise OutputError(str(t.path), f"cannot write ({os.strerror(errno.ENOSPC)})")
        view = view[written:]


def _write_in_place(t: OutputTarget, chunks: Iterable[bytes]) -> None:
    fd = _open_in_place(t)
    try:
        for chunk in chunks:
            _write_all(t, fd, chunk)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def _file_chunks(t: OutputTarget, path: Path) -> Iterator[bytes]:
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_COPY_BYTES):
                yield chunk
    except OSError as err:  # the private temporary file: nothing here raises calibkit errors
        raise OutputError(str(t.path), f"cannot write ({_reason(err)})") from None


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _replace(t: OutputTarget, tmp: Path) -> None:
    """Rename the finished temporary file over ``t.real`` (keeping the old file's mode)."""
    try:
        with contextlib.suppress(OSError):  # on disk before it takes the target's name
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        try:
            old: os.stat_result | None = os.lstat(t.real)
        except FileNotFoundError:
            old = None
        if old is not None and not stat.S_ISREG(old.st_mode):
            raise OutputError(str(t.path), "changed while calibkit was writing; nothing written")
        if old is not None:
            with contextlib.suppress(OSError):
                os.chmod(tmp, stat.S_IMODE(old.st_mode))
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                with contextlib.suppress(OSError):
                    os.chown(tmp, old.st_uid, old.st_gid)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, t.real)
    except OSError as err:
        if isinstance(err, CalibkitError):
            raise
        raise OutputError(str(t.path), f"cannot write ({_reason(err)})") from None


def _about(err: OSError, *paths: Path) -> bool:
    """Whether an error raised while writing concerns the output: it names one of ``paths``, or
    no file at all (a write on an open file object)."""
    names = [n for n in (err.filename, err.filename2) if n is not None]
    if not names:
        return True
    own = {os.fspath(p) for p in paths}
    return any(isinstance(n, str | bytes) and os.fsdecode(n) in own for n in names)


@contextlib.contextmanager
def atomic_path(
    target: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = ()
) -> Iterator[Path]:
    """Yield a temporary path to write the output to; on success it becomes ``target``.

    For a regular (or new) target the temporary file lies beside it and is renamed over it; for
    a device or FIFO it lies in a private temporary directory and its bytes are copied in (see
    the module docstring). The temporary name keeps the target's suffix, so writers that choose
    a format by extension (matplotlib, numpy) still do. On any error the temporary file is
    removed and the target left untouched.

    An :class:`OSError` raised inside the block is reported as the output's
    (:class:`~calibkit.errors.OutputError`) only when it names the temporary file, the target or
    no file at all; so code reading an input inside the block must turn its read errors into
    :class:`~calibkit.errors.InputError` (which, like every calibkit error, passes unchanged).
    """
    with _atomic(plan_output(target, inputs)) as tmp:
        yield tmp


def _token() -> str:
    """A random name part (64 bits): a clash with an existing file is not expected, and is
    retried."""
    return os.urandom(8).hex()


@contextlib.contextmanager
def _atomic(t: OutputTarget) -> Iterator[Path]:
    """:func:`atomic_path` for a target already planned (see :func:`plan_output`).

    The temporary file's (or private folder's) name is chosen and recorded *before* it is
    created, inside the ``try`` whose ``finally`` removes it: a Ctrl-C (or SIGTERM) at any
    moment, even between the creation and the first write, leaves nothing behind. (Python's
    ``mkstemp`` returns the name only after creating the file, which leaves a window.)
    """
    private: Path | None = None
    tmp: Path | None = None
    try:
        try:
            if t.in_place:
                while private is None:
                    private = Path(tempfile.gettempdir()) / f"calibkit-{_token()}"
                    try:
                        os.mkdir(private, 0o700)
                    except FileExistsError:
                        private = None  # not ours: never removed
                tmp = private / f"output{t.path.suffix}"
                tmp.touch(mode=0o600)
            else:
                while tmp is None:
                    tmp = t.real.parent / f".{t.real.name}.{_token()}.tmp{t.real.suffix}"
                    try:
                        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                    except FileExistsError:
                        tmp = None  # not ours: never removed
        except OSError as err:
            where = "a temporary file" if t.in_place else "a file there"
            raise OutputError(str(t.path), f"cannot create {where} ({_reason(err)})") from None
        try:
            yield tmp
        except OSError as err:
            if isinstance(err, CalibkitError) or not _about(err, tmp, t.path, t.real):
                raise
            raise OutputError(str(t.path), f"cannot write ({_reason(err)})") from None
        if t.in_place:
            _write_in_place(t, _file_chunks(t, tmp))
        else:
            _replace(t, tmp)
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        if private is not None:
            with contextlib.suppress(OSError):
                os.rmdir(private)


def atomic_write_text(
    target: str | os.PathLike[str], text: str, inputs: Iterable[str | os.PathLike[str]] = ()
) -> Path:
    """Write ``text`` (UTF-8) to ``target``: atomically, or in place into a device or FIFO;
    returns the target path."""
    t = plan_output(target, inputs)
    data = text.encode("utf-8")
    if t.in_place:
        _write_in_place(t, [data])
        return Path(target)
    with _atomic(t) as tmp, open(tmp, "wb") as fh:  # a failed write is the output's error
        fh.write(data)
    return Path(target)


# --------------------------------------------------------------------------------------------
# folders of outputs

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _inside(path: Path, folder: Path) -> bool:
    try:
        real, top = os.path.realpath(path), os.path.realpath(folder)
        return os.path.commonpath([real, top]) == top
    except ValueError:  # different drives (Windows)
        return False


def _foreign(folder: Path, owned: Collection[str]) -> list[str]:
    """Entries of ``folder`` that are not regular files named in ``owned``."""
    with os.scandir(folder) as entries:
        return sorted(
            e.name for e in entries if e.name not in owned or not e.is_file(follow_symlinks=False)
        )


def check_output_dir(
    target: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str]] = (),
    *,
    owned: Collection[str],
) -> Path:
    """Refuse a folder of outputs that :func:`atomic_directory` must not replace: an input, a
    folder holding an input, anything but a directory, the working directory or a mount point,
    or a folder holding anything but regular files named in ``owned``. Returns the folder with
    symbolic links followed (where the new folder will be put)."""
    path = Path(target)
    text = os.fspath(path)
    if "\0" in text:
        raise OutputError(repr(text), "is not a valid folder name (it holds a NUL character)")
    for spec in inputs:
        named = input_files(spec)
        for f in named if is_pattern(spec) else [Path(spec), *named]:
            if _same_file(path, f):
                raise OutputError(str(path), "is also an input; refusing to overwrite it")
            if _inside(f, path):
                raise OutputError(
                    str(path), f"holds the input {f}; give the outputs a folder of their own"
                )
    if _through_proc(text):
        raise OutputError(str(path), "is not a folder calibkit can write into")
    try:
        st: os.stat_result | None = os.stat(text)
    except FileNotFoundError:
        st = None
    except OSError as err:
        raise OutputError(str(path), f"cannot create the folder ({_reason(err)})") from None
    real = Path(os.path.realpath(text))
    if st is None:
        return real  # new (a dangling link: its target is created)
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(str(path), "exists and is not a directory")
    if real == Path(os.path.realpath(os.getcwd())) or os.path.ismount(real):
        what = "the working directory" if not os.path.ismount(real) else "a mount point"
        raise OutputError(str(path), f"is {what}; give a folder inside it")
    try:
        foreign = _foreign(real, owned)
    except OSError as err:
        raise OutputError(str(path), f"cannot list the folder ({_reason(err)})") from None
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        shown = ", ".join(foreign[:3]) + more
        raise OutputError(
            str(path),
            f"holds files calibkit did not write ({shown}); give a new or empty folder, or one "
            "holding only an earlier calibkit report",
        )
    if not os.access(real.parent, os.W_OK):
        raise OutputError(str(path), f"directory {str(real.parent)!r} is not writable")
    return real


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); ``False`` where the
    system or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    c_int, c_path = ctypes.c_int, ctypes.c_char_p
    renameat2.argtypes = [c_int, c_path, c_int, c_path, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), os.fspath(b))


def _discard(old: Path, owned: Collection[str], shown: str) -> None:
    """Remove a replaced folder: only the files calibkit owns; anything else is kept (with a
    warning) rather than deleted."""
    for name in owned:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
            entry = old / name
            if entry.is_file() and not entry.is_symlink():
                entry.unlink()
    try:
        old.rmdir()
    except OSError:
        warnings.warn(
            f"{shown}: files appeared in the old folder while calibkit wrote the new one; "
            f"they are kept in {old}",
            stacklevel=3,
        )


@contextlib.contextmanager
def atomic_directory(
    target: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str]] = (),
    *,
    owned: Collection[str],
) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; on success it replaces ``target``.

    Write every output into the yielded folder (its files must be named in ``owned``). When the
    block ends without error the folder takes ``target``'s name in one rename, so a reader sees
    the old set of files or the new one, never a mix; where the system cannot swap two folders
    in one step (``renameat2``, Linux), the old folder is renamed aside first and put back if the
    second rename fails. The old folder's files are then removed. On any error, or Ctrl-C, the
    temporary folder is removed and ``target`` left as it was. See :func:`check_output_dir` for
    the folders refused.
    """
    path = Path(target)
    real = check_output_dir(path, list(inputs), owned=owned)
    built: Path | None = None
    replaced: Path | None = None
    try:
        try:  # the name is recorded before the folder exists (see _atomic): no leak on Ctrl-C
            real.parent.mkdir(parents=True, exist_ok=True)
            while built is None:
                built = real.parent / f".{real.name}.{_token()}.tmp"
                try:
                    os.mkdir(built, 0o700)
                except FileExistsError:
                    built = None  # not ours: never removed
        except OSError as err:
            raise OutputError(str(path), f"cannot create the folder ({_reason(err)})") from None
        yield built
        try:
            old = os.stat(real) if os.path.lexists(real) else None
            mode = stat.S_IMODE(old.st_mode) if old is not None else 0o777 & ~_umask()
            os.chmod(built, mode)
            if old is None:
                os.rename(built, real)  # also over an empty folder made meanwhile
                built = None
            else:
                if _foreign(real, owned):  # something arrived while the outputs were made
                    check_output_dir(path, owned=owned)
                if _exchange(built, real):
                    replaced, built = built, None  # the temporary name now holds the old folder
                else:
                    aside = Path(
                        tempfile.mkdtemp(prefix=f".{real.name}.", suffix=".old", dir=real.parent)
                    )
                    os.rmdir(aside)  # a fresh name: renaming onto a folder fails on Windows
                    os.rename(real, aside)
                    try:
                        os.rename(built, real)
                    except BaseException:
                        os.rename(aside, real)
                        raise
                    replaced, built = aside, None
        except OSError as err:
            if isinstance(err, CalibkitError):
                raise
            raise OutputError(str(path), f"cannot replace the folder ({_reason(err)})") from None
    finally:
        if built is not None:
            shutil.rmtree(built, ignore_errors=True)
        if replaced is not None:
            _discard(replaced, owned, str(path))
