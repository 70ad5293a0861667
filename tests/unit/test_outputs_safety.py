"""Outputs never replace a device, FIFO, link or input, and apply-temp copies what it does not
rewrite (issue #12, items 8, 9, 11, 12 and the apply-temp part of 13).

Everything runs on stand-ins made inside ``tmp_path``: FIFOs, character devices made with
``os.mknod`` (the numbers of /dev/null and /dev/full, so writing to them is harmless even if the
code under test were wrong), symbolic links, ``/proc/self/fd/N`` links to descriptors opened
here. No test names a path under /dev.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import sys
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _fifo import read_fifo_while

from calibkit.calibrators import TemperatureScaler
from calibkit.errors import InputError, OutputError
from calibkit.io.atomic import (
    atomic_directory,
    atomic_path,
    atomic_write_text,
    check_output_dir,
    check_output_path,
    plan_output,
)
from calibkit.io.paths import input_files, is_shard_of, parquet_shards
from calibkit.loaders import ReadOptions, read_predictions
from calibkit.report.rewrite import write_scaled

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, devices and /proc")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/fd")
PATIENCE = 60.0  # seconds before a FIFO reader gives up (a safety net, not an assertion)


# --------------------------------------------------------------------------------------------
# stand-ins


def char_device(path: Path, major: int, minor: int) -> Path:
    """A character device node in ``tmp_path`` (1,3 is null and 1,7 is full, as in /dev)."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
        fd = os.open(path, os.O_WRONLY)
    except (PermissionError, AttributeError, OSError) as err:
        pytest.skip(f"cannot make a device node here ({err})")
    os.close(fd)
    return path


def is_char_device(path: Path) -> bool:
    return stat.S_ISCHR(os.lstat(path).st_mode)


def is_fifo(path: Path) -> bool:
    return stat.S_ISFIFO(os.lstat(path).st_mode)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    path = tmp_path / "out.json"
    os.mkfifo(path)
    return path


# --------------------------------------------------------------------------------------------
# item 8: devices, FIFOs, links


@posix_only
def test_text_into_a_fifo_is_written_in_place(fifo: Path) -> None:
    got = read_fifo_while(fifo, lambda: atomic_write_text(fifo, '{"ece": 0.1}\n'))
    assert is_fifo(fifo), "the FIFO was replaced by a file"
    assert got == b'{"ece": 0.1}\n'
    assert sorted(p.name for p in fifo.parent.iterdir()) == ["out.json"]


@posix_only
def test_a_path_writer_into_a_fifo_gets_the_bytes_copied(fifo: Path) -> None:
    """Writers that need a file name (numpy, matplotlib) write a private temporary file whose
    bytes then go into the FIFO, more than a pipe buffer of them."""
    payload = bytes(range(256)) * 2000  # 512 kB

    def write() -> None:
        with atomic_path(fifo) as tmp:
            assert tmp.parent != fifo.parent  # not made beside the FIFO
            tmp.write_bytes(payload)

    assert read_fifo_while(fifo, write) == payload
    assert is_fifo(fifo)
    assert sorted(p.name for p in fifo.parent.iterdir()) == ["out.json"]


@posix_only
def test_a_figure_into_a_fifo(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from calibkit.plotting.save import save_figure

    path = tmp_path / "fig.png"
    os.mkfifo(path)
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [0, 1])
    got = read_fifo_while(path, lambda: save_figure(fig, path))
    assert got.startswith(b"\x89PNG\r\n\x1a\n") and len(got) > 1000
    assert is_fifo(path)


@posix_only
def test_a_null_device_stays_a_device(tmp_path: Path) -> None:
    null = char_device(tmp_path / "null", 1, 3)
    atomic_write_text(null, "x" * 100_000)
    with atomic_path(null) as tmp:
        tmp.write_bytes(b"y" * 3_000_000)
    assert is_char_device(null), "the device was replaced by a file"
    assert plan_output(null).in_place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


@posix_only
@pytest.mark.parametrize("how", ["text", "path"])
def test_a_full_device_is_one_output_error(tmp_path: Path, how: str) -> None:
    full = char_device(tmp_path / "full", 1, 7)

    def write() -> None:
        if how == "text":
            atomic_write_text(full, "{}\n")
        else:
            with atomic_path(full) as tmp:
                tmp.write_bytes(b"z" * 10_000)

    with pytest.raises(OutputError) as caught:
        write()
    assert str(caught.value) == f"{full}: cannot write ({os.strerror(errno.ENOSPC)})"
    assert "\n" not in str(caught.value)
    assert is_char_device(full)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


@posix_only
def test_a_symlink_target_is_replaced_and_the_link_kept(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "report.json"
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "report.json"
    link.symlink_to(Path("data") / "report.json")
    chain = tmp_path / "latest.json"
    chain.symlink_to(link)
    atomic_write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == os.path.join("data", "report.json")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    atomic_write_text(chain, "newer")
    assert chain.is_symlink() and link.is_symlink()
    assert target.read_text() == "newer"
    with atomic_path(link) as tmp:
        assert tmp.parent == target.parent  # the temporary file lies beside the target
        tmp.write_text("newest")
    assert link.is_symlink() and target.read_text() == "newest"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "latest.json", "report.json"]
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


@posix_only
def test_a_dangling_symlink_gets_its_target_created(tmp_path: Path) -> None:
    link = tmp_path / "out.json"
    link.symlink_to("made.json")
    atomic_write_text(link, "{}")
    assert link.is_symlink()
    assert (tmp_path / "made.json").read_text() == "{}"


@linux_only
def test_an_open_regular_file_through_proc_is_appended_to(tmp_path: Path) -> None:
    """``--out /dev/stdout > log``: the log the shell opened gets the bytes appended; it is not
    replaced by a new file (the shell's descriptor would then write to a deleted one)."""
    log = tmp_path / "log.txt"
    with open(log, "w") as fh:
        fh.write("table\n")
        fh.flush()
        inode = os.stat(log).st_ino
        stdout = tmp_path / "stdout"  # what /dev/stdout is: a link to /proc/self/fd/1
        stdout.symlink_to(f"/proc/self/fd/{fh.fileno()}")
        plan = plan_output(stdout)
        assert plan.in_place and plan.append
        atomic_write_text(stdout, '{"n": 1}\n')
        with atomic_path(f"/proc/self/fd/{fh.fileno()}") as tmp:
            tmp.write_bytes(b"more\n")
    assert log.read_text() == 'table\n{"n": 1}\nmore\n'
    assert os.stat(log).st_ino == inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.txt", "stdout"]


@linux_only
def test_a_pipe_through_proc_is_written(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    try:
        stdout = tmp_path / "stdout"
        stdout.symlink_to(f"/proc/self/fd/{write_end}")
        atomic_write_text(stdout, "through the pipe\n")
        assert stdout.is_symlink()
        os.set_blocking(read_end, False)  # a wrong implementation must fail, not hang
        try:
            got = os.read(read_end, 100)
        except BlockingIOError:
            got = b""
        assert got == b"through the pipe\n"
    finally:
        os.close(read_end)
        os.close(write_end)


@linux_only
def test_a_closed_descriptor_is_refused(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    with pytest.raises(OutputError, match="names a file descriptor that is not open"):
        check_output_path(f"/proc/self/fd/{write_end}")


@posix_only
def test_block_devices_sockets_and_directories_are_refused(tmp_path: Path) -> None:
    block = tmp_path / "disk"
    try:  # loop device 200: not one this machine has, so nothing could be written anyway
        os.mknod(block, stat.S_IFBLK | 0o600, os.makedev(7, 200))
    except (PermissionError, OSError):
        block = None
    if block is not None:
        with pytest.raises(OutputError, match="is a block device; calibkit never writes to one"):
            atomic_write_text(block, "x")
        assert stat.S_ISBLK(os.lstat(block).st_mode)
    sock_path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(OutputError, match="is a socket; give a file name"):
            atomic_write_text(sock_path, "x")
        assert stat.S_ISSOCK(os.lstat(sock_path).st_mode)
    with pytest.raises(OutputError, match="is a directory; give a file name"):
        atomic_write_text(tmp_path, "x")


def test_a_write_error_is_the_outputs_and_an_input_error_is_not(tmp_path: Path) -> None:
    """Only errors about the output become ``OUT: cannot write``; an error that names another
    file (an input read inside the block) and calibkit's own errors pass unchanged."""
    out = tmp_path / "out.bin"
    elsewhere = tmp_path / "input.npz"
    with pytest.raises(FileNotFoundError) as raw, atomic_path(out):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(elsewhere))
    assert not isinstance(raw.value, OutputError)
    with pytest.raises(InputError, match=r"input\.npz: corrupted"), atomic_path(out):
        raise InputError(str(elsewhere), "corrupted")
    full = r"out\.bin: cannot write \(No space left on device\)"
    with pytest.raises(OutputError, match=full), atomic_path(out):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# item 9: every file a directory or glob names is an input


def _shards(tmp_path: Path) -> Path:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    folder = tmp_path / "shards"
    folder.mkdir()
    for i, name in enumerate(["a.parquet", "b.pq"]):
        z = np.random.default_rng(i).normal(size=(20, 3))
        table = pa.table({**{f"logit_{k}": z[:, k] for k in range(3)}, "label": np.arange(20) % 3})
        pq.write_table(table, folder / name)
    (folder / "notes.txt").write_text("not a shard")
    return folder


def test_input_files_lists_what_the_readers_read(tmp_path: Path) -> None:
    folder = _shards(tmp_path)
    shards = [folder / "a.parquet", folder / "b.pq"]
    assert input_files(folder) == shards
    assert input_files(str(folder) + "/*") == [*shards, folder / "notes.txt"]
    assert input_files(folder / "*.parquet") == [folder / "a.parquet"]
    assert input_files(folder / "a.parquet") == [folder / "a.parquet"]
    assert input_files(tmp_path / "missing.npz") == [tmp_path / "missing.npz"]
    assert parquet_shards(folder / "a.parquet") is None
    source = read_predictions(folder)
    assert [s.path for s in source.shards] == shards  # type: ignore[attr-defined]


@pytest.mark.parametrize("spec", ["dir", "glob"])
def test_a_shard_of_a_directory_or_glob_is_an_input(tmp_path: Path, spec: str) -> None:
    folder = _shards(tmp_path)
    given = folder if spec == "dir" else folder / "*.parquet"
    shard = folder / "a.parquet"
    before = shard.read_bytes()
    hard = tmp_path / "hard.json"
    os.link(shard, hard)
    link = tmp_path / "link.png"
    link.symlink_to(shard)
    for out in (shard, hard, link, folder / "." / "a.parquet"):
        with pytest.raises(OutputError, match="is also an input; refusing to overwrite it"):
            check_output_path(out, [given])
        with pytest.raises(OutputError, match="is also an input"):
            atomic_write_text(out, "x", inputs=[given])
    assert shard.read_bytes() == before


def test_a_new_shard_of_an_input_is_refused(tmp_path: Path) -> None:
    folder = _shards(tmp_path)
    for spec, out in [
        (folder, folder / "new.parquet"),
        (str(folder) + "/*", folder / "sweep.csv"),
        (str(tmp_path) + "/*/a.parquet", folder / "a.parquet"),
    ]:
        assert is_shard_of(spec, out)
        with pytest.raises(OutputError, match=r"shards of the input|is also an input"):
            check_output_path(out, [spec])
    assert not is_shard_of(folder, folder / "report.json")  # not read: not a shard
    assert not is_shard_of(str(folder) + "/*.parquet", folder / ".hidden.parquet")
    check_output_path(folder / "report.json", [folder])


# --------------------------------------------------------------------------------------------
# item 12: a folder of outputs is swapped in whole

OWNED = ("report.md", "a.png")


def _old_report(folder: Path) -> dict[str, bytes]:
    folder.mkdir()
    (folder / "report.md").write_text("old report, see a.png")
    (folder / "a.png").write_bytes(b"old figure")
    return {"report.md": b"old report, see a.png", "a.png": b"old figure"}


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("swap", ["exchange", "two-renames"])
def test_a_folder_is_replaced_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str
) -> None:
    if swap == "two-renames":
        monkeypatch.setattr("calibkit.io.atomic._exchange", lambda a, b: False)
    folder = tmp_path / "report"
    _old_report(folder)
    folder.chmod(0o750)
    with atomic_directory(folder, owned=OWNED) as build:
        assert build.parent == tmp_path and build != folder
        atomic_write_text(build / "a.png", "new figure")
        assert _contents(folder)["a.png"] == b"old figure"  # nothing changes until the end
        atomic_write_text(build / "report.md", "new report")
    assert _contents(folder) == {"a.png": b"new figure", "report.md": b"new report"}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError, InputError])
def test_an_interrupted_folder_leaves_the_old_one(tmp_path: Path, error: type) -> None:
    folder = tmp_path / "report"
    old = _old_report(folder)

    def write() -> None:
        with atomic_directory(folder, owned=OWNED) as build:
            atomic_write_text(build / "a.png", "new figure")
            raise error(*(("x.npz", "corrupted") if error is InputError else ()))

    with pytest.raises(error):
        write()
    assert _contents(folder) == old
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_a_failed_second_rename_puts_the_old_folder_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("calibkit.io.atomic._exchange", lambda a, b: False)
    folder = tmp_path / "report"
    old = _old_report(folder)
    real_rename = os.rename
    built: list[Path] = []

    def rename(src: Any, dst: Any) -> None:
        if built and Path(src) == built[0]:
            raise OSError(errno.EIO, "Input/output error")
        real_rename(src, dst)

    monkeypatch.setattr("calibkit.io.atomic.os.rename", rename)

    def write() -> None:
        with atomic_directory(folder, owned=OWNED) as build:
            built.append(build)
            atomic_write_text(build / "a.png", "new figure")

    with pytest.raises(OutputError, match="cannot replace the folder"):
        write()
    monkeypatch.undo()
    assert _contents(folder) == old
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_folders_that_cannot_be_swapped_are_refused(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    _old_report(mixed)
    (mixed / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"holds files calibkit did not write \(notes.txt\)"):
        check_output_dir(mixed, owned=OWNED)
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "report.md").mkdir()  # a folder with an owned name is not calibkit's file
    with pytest.raises(OutputError, match=r"did not write \(report.md\)"):
        check_output_dir(sub, owned=OWNED)
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "report.md").symlink_to(mixed / "notes.txt")
    with pytest.raises(OutputError, match="did not write"):
        check_output_dir(linked, owned=OWNED)
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.npz").write_bytes(b"PK")
    with pytest.raises(OutputError, match="holds the input"):
        check_output_dir(data, [data / "in.npz"], owned=OWNED)
    with pytest.raises(OutputError, match="is also an input"):
        check_output_dir(data, [data], owned=OWNED)
    assert (mixed / "notes.txt").read_text() == "mine"
    assert (linked / "report.md").is_symlink()


def test_the_working_directory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match="is the working directory"):
        check_output_dir(".", owned=OWNED)


@posix_only
def test_a_linked_folder_keeps_its_link(tmp_path: Path) -> None:
    folder = tmp_path / "real"
    _old_report(folder)
    link = tmp_path / "report"
    link.symlink_to("real")
    with atomic_directory(link, owned=OWNED) as build:
        atomic_write_text(build / "report.md", "new")
    assert link.is_symlink()
    assert _contents(folder) == {"report.md": b"new"}


def test_a_new_folder_and_its_parents_are_made(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b" / "report"
    with atomic_directory(folder, owned=OWNED) as build:
        atomic_write_text(build / "report.md", "new")
    assert _contents(folder) == {"report.md": b"new"}
    assert [p.name for p in folder.parent.iterdir()] == ["report"]


# --------------------------------------------------------------------------------------------
# item 11 and 13: apply-temp on npz copies members byte for byte, in bounded memory


def _npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def _object_member() -> bytes:
    """An object array's .npy bytes (a pickle inside), built without unpickling anything."""
    return _npy_bytes(np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


def _hostile_npz(path: Path, z: np.ndarray, y: np.ndarray) -> dict[str, tuple[bytes, int]]:
    """logits, labels and extra members of every kind; returns ``{name: (bytes, method)}``."""
    members = {
        "logits.npy": (_npy_bytes(z), zipfile.ZIP_DEFLATED),
        "README.txt": (b"scores from run 17\n", zipfile.ZIP_STORED),
        "labels.npy": (_npy_bytes(y), zipfile.ZIP_STORED),
        "meta.npy": (_object_member(), zipfile.ZIP_DEFLATED),
        "sub/notes.bin": (bytes(range(256)) * 3, zipfile.ZIP_DEFLATED),
        "ids.npy": (_npy_bytes(np.arange(len(y), dtype=">i4")), zipfile.ZIP_STORED),
    }
    with zipfile.ZipFile(path, "w") as zf:
        for name, (data, method) in members.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 5, 17, 12, 0, 0))
            info.compress_type = method
            zf.writestr(info, data)
    return members


def test_apply_temp_copies_every_other_member_byte_for_byte(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(40, 3)).astype(np.float32)
    y = np.arange(40) % 3
    src, out = tmp_path / "in.npz", tmp_path / "out.npz"
    members = _hostile_npz(src, z, y)
    write_scaled(read_predictions(src), TemperatureScaler(2.0), out)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out) as zout:
        assert zout.namelist() == zin.namelist()  # same names, same order, nothing renamed
        for a, b in zip(zin.infolist(), zout.infolist(), strict=True):
            assert b.compress_type == a.compress_type == members[a.filename][1], a.filename
            assert b.date_time == a.date_time
            if a.filename != "logits.npy":
                assert zout.read(b) == zin.read(a) == members[a.filename][0], a.filename
                assert b.CRC == a.CRC
    with np.load(out, allow_pickle=False) as f:
        np.testing.assert_array_equal(f["logits"], (z.astype(np.float64) / 2.0).astype(np.float32))
        assert f["logits"].dtype == np.float32


@pytest.mark.parametrize("member", ["ids.npy", "meta.npy"])
def test_apply_temp_refuses_a_corrupt_extra_member(tmp_path: Path, member: str) -> None:
    z = np.zeros((40, 3), dtype=np.float32)
    y = np.arange(40) % 3
    src, out = tmp_path / "in.npz", tmp_path / "out.npz"
    _hostile_npz(src, z, y)
    with zipfile.ZipFile(src) as zf:
        info = zf.getinfo(member)
    raw = bytearray(src.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + info.compress_size - 3] ^= 0x20  # inside the member's stored / deflated data
    src.write_bytes(bytes(raw))
    source = read_predictions(src)  # the reader reads logits and labels only
    with pytest.raises(InputError) as caught:
        write_scaled(source, TemperatureScaler(2.0), out)
    message = str(caught.value)
    assert message.startswith(f"{src}: member {member!r} ")
    assert "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npz"]


def test_apply_temp_streams_the_scores(tmp_path: Path) -> None:
    """Regression: every member was loaded whole and the scores copied twice (float64, then
    the output dtype): 1.26 GB under a 300 MB limit. Now the traced peak stays well below the
    size of the scores array."""
    n, k = 600_000, 20  # 48 MB of float32 logits, 4.8 MB of labels, 48 MB of extra data
    rng = np.random.default_rng(1)
    z = rng.normal(size=(n, k)).astype(np.float32)
    src, out = tmp_path / "big.npz", tmp_path / "out.npz"
    np.savez(src, logits=z, labels=np.arange(n) % k, extra=z)
    del z
    source = read_predictions(src)
    tracemalloc.start()
    try:
        write_scaled(source, TemperatureScaler(2.0), out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # about 10 MB (a few float64 chunks of 4 MiB) where it was 3 times the scores and more
    assert peak < n * k * 4 / 2, f"peak {peak / 1e6:.1f} MB for 48 MB of scores"
    with np.load(out) as f, np.load(src) as g:
        np.testing.assert_array_equal(f["logits"], (g["logits"] / np.float32(2)))
        np.testing.assert_array_equal(f["extra"], g["extra"])


def test_apply_temp_checks_memory_before_allocating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, out = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(src, logits=np.zeros((5000, 10), dtype=np.float32), labels=np.arange(5000) % 10)
    source = read_predictions(src)
    monkeypatch.setenv("CALIBKIT_MEMORY_LIMIT", "100000")
    with pytest.raises(InputError, match=f"^{src}: needs about .* of memory"):
        write_scaled(source, TemperatureScaler(2.0), out)
    assert not out.exists()
    write_scaled(source, TemperatureScaler(2.0), out, chunk_rows=100)  # 100 rows fit
    assert out.exists()


def _page_headers_have_crc(path: Path) -> list[bool]:
    """Whether the first page header of each column chunk carries a CRC (thrift field 4)."""
    import pyarrow.parquet as pq

    data = path.read_bytes()
    found = []
    meta = pq.ParquetFile(path).metadata
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            col = meta.row_group(g).column(c)
            pos = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
            field = 0
            while True:  # thrift compact protocol: (delta << 4) | type, then a zigzag varint
                head = data[pos]
                pos += 1
                if head & 0x0F != 5:  # not an i32: the page header's struct fields start
                    break
                field += head >> 4
                while data[pos] & 0x80:
                    pos += 1
                pos += 1
                if field == 4:
                    break
            found.append(field == 4)
    return found


def test_apply_temp_writes_parquet_page_checksums(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    z = np.random.default_rng(2).normal(size=(100, 3))
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    table = pa.table({**{f"logit_{k}": z[:, k] for k in range(3)}, "label": np.arange(100) % 3})
    pq.write_table(table, src)
    assert not any(_page_headers_have_crc(src))  # the helper can tell
    write_scaled(read_predictions(src), TemperatureScaler(2.0), out)
    assert all(_page_headers_have_crc(out))
    pq.ParquetFile(out, page_checksum_verification=True).read()


def test_apply_temp_reports_a_corrupt_parquet_page_as_the_inputs(tmp_path: Path) -> None:
    """Regression: a read error inside the output's block was reported as ``OUT: cannot
    write``."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    z = np.random.default_rng(3).normal(size=(200, 3))
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    table = pa.table({**{f"logit_{k}": z[:, k] for k in range(3)}, "label": np.arange(200) % 3})
    pq.write_table(table, src, row_group_size=50, compression="none", use_dictionary=False)
    col = pq.ParquetFile(src).metadata.row_group(3).column(1)
    raw = bytearray(src.read_bytes())
    raw[col.data_page_offset : col.data_page_offset + 12] = b"\xff" * 12  # a broken page header
    src.write_bytes(bytes(raw))
    # the layout is in the footer: this still opens (kind forced, so no first batch is read)
    source = read_predictions(src, ReadOptions(kind="logits"))
    with pytest.raises(InputError) as caught:
        write_scaled(source, TemperatureScaler(2.0), out)
    assert str(caught.value).startswith(f"{src}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_apply_temp_pt_checks_memory_for_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The .pt output is held whole (torch.save needs it): its size is counted up front."""
    torch = pytest.importorskip("torch")
    n, k = 20_000, 10
    src, out = tmp_path / "in.pt", tmp_path / "out.pt"
    logits = torch.zeros((n, k), dtype=torch.float16)
    torch.save({"logits": logits, "labels": torch.arange(n) % k}, src)
    source = read_predictions(src)
    monkeypatch.setenv("CALIBKIT_MEMORY_LIMIT", str(5 * n * k))  # the reader's check passes
    with pytest.raises(InputError, match=f"^{src}: needs about"):
        write_scaled(source, TemperatureScaler(2.0), out)
    assert not out.exists()
    monkeypatch.delenv("CALIBKIT_MEMORY_LIMIT")
    write_scaled(source, TemperatureScaler(2.0), out)
    got = torch.load(out, weights_only=True)
    assert got["logits"].dtype == torch.float16 and torch.equal(got["logits"], logits)


def test_a_name_with_a_nul_is_one_output_error() -> None:
    with pytest.raises(OutputError, match="holds a NUL character"):
        check_output_path("out\0.json")
    with pytest.raises(OutputError, match="holds a NUL character"):
        check_output_dir("report\0", owned=OWNED)


def test_hidden_files_in_a_shard_directory_are_not_shards(tmp_path: Path) -> None:
    """Another run's temporary file (``.out.parquet.XXXX.tmp.parquet``) or macOS ``._a.parquet``
    beside the shards is never read as one."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"logit_0": [0.0, 1.0], "logit_1": [1.0, 0.0], "label": [0, 1]})
    pq.write_table(table, tmp_path / "a.parquet")
    (tmp_path / "._a.parquet").write_bytes(b"\x00\x05\x16\x07 not parquet")
    listed = parquet_shards(tmp_path)
    assert listed is not None
    assert [p.name for p in listed[1]] == ["a.parquet"]
    assert read_predictions(tmp_path).n_rows == 2


@pytest.mark.parametrize("layout", ["wide", "list", "fixed"])
def test_apply_temp_writes_integer_parquet_scores_as_float64(tmp_path: Path, layout: str) -> None:
    """Regression: integer score columns made the rewrite cast -1.5 back to int64 (traceback)."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    z = np.array([[3, 0, -3], [0, 2, 1], [1, 1, 4], [-2, 5, 0]], dtype=np.int64)
    labels = np.array([0, 1, 2, 1])
    if layout == "wide":
        cols = {f"logit_{k}": pa.array(z[:, k]) for k in range(3)}
    else:
        values = pa.array(z.reshape(-1))
        cols = {
            "logits": pa.FixedSizeListArray.from_arrays(values, 3)
            if layout == "fixed"
            else pa.ListArray.from_arrays(pa.array(np.arange(0, 13, 3, dtype=np.int32)), values)
        }
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(pa.table({**cols, "label": labels}), src)
    write_scaled(read_predictions(src), TemperatureScaler(2.0), out)
    got = read_predictions(out)
    scores = np.concatenate([s for s, _ in got.chunks()])
    np.testing.assert_array_equal(scores, z / 2.0)  # -3 / 2 = -1.5: no longer a whole number
    assert pq.read_table(out).column("label").to_pylist() == labels.tolist()
