"""Every output option of every command, against the files it must never replace (issue #12).

* Item 9: with a directory or glob input, each output option refuses a shard (by its name, a
  symbolic link or a hard link) and a file that would become a shard.
* Item 8: outputs into a FIFO, a null or full device (stand-ins made in ``tmp_path`` with
  ``os.mknod``; no test names a path under /dev) and through a symbolic link.
* Item 11: ``apply-temp`` keeps non-array and object-array members, refuses corrupt ones, and
  names a corrupt input as the input.
* Item 12: ``compare --out-dir`` interrupted midway leaves the old report whole.
* Item 13: ``apply-temp`` checks the memory it needs before it allocates it.

Output options covered (grep ``check_output_path|atomic_|save_figure|write_report_dir`` in
calibkit/cli): ``ece --out``, ``fit-temp --out``, ``sweep-temp --csv`` and ``--plot``,
``diagram --out``, ``check --junit``, ``apply-temp --out``, ``compare --out-dir``.
"""

from __future__ import annotations

import os
import stat
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _cli import assert_ok
from _cli import invoke as run
from _fifo import read_fifo_while
from typer.testing import CliRunner, Result

from calibkit.errors import OutputError

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
SAME_AS_INPUT = "is also an input; refusing to overwrite it"
PATIENCE = 60.0
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, devices and links")

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def one_line_error(result: Result, code: int = 2) -> str:
    """Exit ``code``, nothing on stdout, exactly one ``calibkit:`` line; returns it."""
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder``: file bytes, or where a link points."""
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.rglob("*")):
        key = str(p.relative_to(folder))
        if p.is_symlink():
            out[key] = "-> " + os.readlink(p)
        elif p.is_file():
            out[key] = p.read_bytes()
        else:
            out[key] = "dir"
    return out


def char_device(path: Path, major: int, minor: int) -> Path:
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
        os.close(os.open(path, os.O_WRONLY))
    except (PermissionError, AttributeError, OSError) as err:
        pytest.skip(f"cannot make a device node here ({err})")
    return path


def _table(seed: int, n: int = 30, k: int = 3) -> Any:
    z = np.random.default_rng(seed).normal(size=(n, k))
    return pa.table({**{f"logit_{j}": z[:, j] for j in range(k)}, "label": np.arange(n) % k})


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Path]:
    """``shards/`` with two parquet shards, and a validation file of the same layout."""
    shards = tmp_path / "shards"
    shards.mkdir()
    pq.write_table(_table(0), shards / "a.parquet")
    pq.write_table(_table(1), shards / "b.parquet")
    val = tmp_path / "val.parquet"
    pq.write_table(_table(2), val)
    return {"shards": shards, "val": val, "tmp": tmp_path}


# --------------------------------------------------------------------------------------------
# item 9: a glob or directory input expands to inputs

#: (command line with IN = the shard spec, VAL, OUT; what OUT is)
OUTPUT_OPTIONS = [
    pytest.param(["ece", "IN", "--out", "OUT"], "shard", id="ece-out"),
    pytest.param(["ece", "IN", "--json", "--out", "OUT"], "hardlink", id="ece-out-hardlink"),
    pytest.param(["fit-temp", "IN", "--out", "OUT"], "shard", id="fit-temp-out"),
    pytest.param(["fit-temp", "VAL", "--eval", "IN", "--out", "OUT"], "shard", id="fit-eval"),
    pytest.param(["fit-temp", "IN", "--out", "OUT"], "symlink.json", id="fit-temp-symlink"),
    pytest.param(["sweep-temp", "IN", "--csv", "OUT"], "shard", id="sweep-csv"),
    pytest.param(["sweep-temp", "m=VAL", "--val", "m=IN", "--csv", "OUT"], "shard", id="sweep-val"),
    pytest.param(["sweep-temp", "IN", "--plot", "OUT"], "symlink.png", id="sweep-plot"),
    pytest.param(["diagram", "IN", "--out", "OUT"], "symlink.png", id="diagram-out"),
    pytest.param(["diagram", "a=VAL", "b=IN", "--out", "OUT"], "symlink.svg", id="diagram-2nd"),
    pytest.param(["check", "IN", "--max-ece", "1", "--junit", "OUT"], "shard", id="check-junit"),
    pytest.param(["check", "IN", "--max-ece", "1", "--junit", "OUT"], "hardlink", id="junit-hard"),
    pytest.param(["apply-temp", "IN", "-t", "2", "--out", "OUT"], "shard", id="apply-temp-out"),
]


def _place(kind: str, data: dict[str, Path]) -> Path:
    shard = data["shards"] / "a.parquet"
    if kind == "shard":
        return shard
    if sys.platform == "win32":
        pytest.skip("links need privileges on Windows")
    if kind == "hardlink":
        out = data["tmp"] / "hard.json"
        os.link(shard, out)
    else:
        out = data["tmp"] / kind
        out.symlink_to(shard)
    return out


@pytest.mark.parametrize("spec", ["directory", "glob"])
@pytest.mark.parametrize(("args", "kind"), OUTPUT_OPTIONS)
def test_an_output_that_is_a_shard_is_refused(
    runner: CliRunner, data: dict[str, Path], args: list[str], kind: str, spec: str
) -> None:
    """Regression: ``check shards/ --junit shards/a.parquet`` overwrote the shard."""
    out = _place(kind, data)
    given = str(data["shards"]) if spec == "directory" else str(data["shards"] / "*.parquet")
    names = {"IN": given, "VAL": str(data["val"]), "OUT": str(out)}
    before = snapshot(data["tmp"])
    result = run(runner, *fill(args, names))
    assert one_line_error(result) == f"calibkit: error: {out}: {SAME_AS_INPUT}"
    assert snapshot(data["tmp"]) == before  # no shard touched, no temporary file


def fill(args: list[str], names: dict[str, str]) -> list[str]:
    filled = []
    for arg in args:
        prefix, sep, placeholder = arg.rpartition("=")
        filled.append(prefix + sep + names[placeholder] if placeholder in names else arg)
    return filled


@pytest.mark.parametrize(
    ("args", "out_name"),
    [
        pytest.param(["ece", "DIR", "--out", "OUT"], "new.parquet", id="ece-new-shard"),
        pytest.param(["check", "DIR", "--max-ece", "1", "--junit", "OUT"], "c.pq", id="junit"),
        pytest.param(["sweep-temp", "GLOB", "--csv", "OUT"], "sweep.csv", id="csv-matches-glob"),
        pytest.param(["fit-temp", "GLOB", "--out", "OUT"], "cal.json", id="fit-matches-glob"),
    ],
)
def test_an_output_that_would_become_a_shard_is_refused(
    runner: CliRunner, data: dict[str, Path], args: list[str], out_name: str
) -> None:
    out = data["shards"] / out_name
    names = {"DIR": str(data["shards"]), "GLOB": str(data["shards"]) + "/*", "OUT": str(out)}
    spec = names["DIR"] if "DIR" in args else names["GLOB"]
    before = snapshot(data["tmp"])
    line = one_line_error(run(runner, *fill(args, names)))
    assert line == (
        f"calibkit: error: {out}: would become one of the shards of the input {spec}; "
        "refusing to write it there"
    )
    assert snapshot(data["tmp"]) == before


def test_a_report_beside_the_shards_is_fine(runner: CliRunner, data: dict[str, Path]) -> None:
    junit = data["shards"] / "report.xml"  # not a .parquet: never read as a shard
    assert_ok(run(runner, "check", data["shards"], "--max-ece", "1", "--junit", junit))
    assert junit.read_text().startswith("<?xml")


@pytest.mark.parametrize("spec", ["directory", "glob"])
def test_compare_out_dir_over_the_shards_is_refused(
    runner: CliRunner, data: dict[str, Path], spec: str
) -> None:
    shards = data["shards"]
    given = str(shards) if spec == "directory" else str(shards / "*.parquet")
    before = snapshot(data["tmp"])
    line = one_line_error(run(runner, "compare", f"m={given}", "--out-dir", shards))
    if spec == "directory":
        assert line == f"calibkit: error: {shards}: {SAME_AS_INPUT}"
    else:
        assert line == (
            f"calibkit: error: {shards}: holds the input {shards / 'a.parquet'}; "
            "give the outputs a folder of their own"
        )
    assert snapshot(data["tmp"]) == before


# --------------------------------------------------------------------------------------------
# item 8: devices, FIFOs and links


@posix_only
def test_ece_json_into_a_fifo(runner: CliRunner, tmp_path: Path) -> None:
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    results: list[Result] = []
    src = SAMPLE / "digits_hard_test.npz"
    got = read_fifo_while(
        fifo, lambda: results.append(run(runner, "ece", src, "--json", "--out", fifo))
    )
    assert_ok(results[0])
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert got.decode() == results[0].stdout  # the same JSON document
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


@posix_only
def test_a_figure_into_a_fifo(runner: CliRunner, tmp_path: Path) -> None:
    fifo = tmp_path / "fig.png"
    os.mkfifo(fifo)
    results: list[Result] = []
    src = SAMPLE / "digits_hard_test.npz"
    got = read_fifo_while(fifo, lambda: results.append(run(runner, "diagram", src, "--out", fifo)))
    assert_ok(results[0])
    assert got.startswith(b"\x89PNG\r\n\x1a\n") and len(got) > 10_000
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@posix_only
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["ece", "SRC", "--out", "OUT"], id="ece"),
        pytest.param(["fit-temp", "SRC", "--out", "OUT"], id="fit-temp"),
        pytest.param(["sweep-temp", "SRC", "--temps", "1,2", "--csv", "OUT"], id="sweep-csv"),
        pytest.param(["check", "SRC", "--max-ece", "1", "--junit", "OUT"], id="check-junit"),
    ],
)
def test_outputs_into_null_and_full_devices(
    runner: CliRunner, tmp_path: Path, args: list[str]
) -> None:
    """Regression: run as root, ``--out /dev/null`` replaced the device with a regular file."""
    null = char_device(tmp_path / "null", 1, 3)
    full = char_device(tmp_path / "full", 1, 7)
    src = str(SAMPLE / "digits_hard_test.npz")
    result = run(runner, *fill(args, {"SRC": src, "OUT": str(null)}))
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.lstat(null).st_mode)
    result = run(runner, *fill(args, {"SRC": src, "OUT": str(full)}))
    assert result.exit_code == 2 and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("calibkit: error:")]
    assert errors == [f"calibkit: error: {full}: cannot write (No space left on device)"]
    assert stat.S_ISCHR(os.lstat(full).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "null"]


@posix_only
def test_apply_temp_into_a_fifo(runner: CliRunner, tmp_path: Path) -> None:
    """Formats written through a path (np.savez here) are built in a private temporary file
    and copied in."""
    fifo = tmp_path / "out.npz"
    os.mkfifo(fifo)
    src = SAMPLE / "digits_hard_test.npz"
    results: list[Result] = []
    got = read_fifo_while(
        fifo, lambda: results.append(run(runner, "apply-temp", src, "-t", "2", "--out", fifo))
    )
    assert_ok(results[0])
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    copy = tmp_path / "copy.npz"
    copy.write_bytes(got)
    with np.load(copy) as f, np.load(src) as g:
        np.testing.assert_array_equal(f["logits"], (g["logits"] / 2).astype(g["logits"].dtype))


@posix_only
def test_a_linked_output_keeps_its_link(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "cal.json"
    target.write_text("{}")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    assert_ok(run(runner, "fit-temp", SAMPLE / "digits_hard_val.npz", "--out", link))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert '"calibkit_calibrator": 1' in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "runs"]


# --------------------------------------------------------------------------------------------
# item 11: apply-temp keeps every member it does not rewrite


def _npz_with(path: Path, extra: dict[str, bytes], stored: bool = True) -> Path:
    import io

    z = np.random.default_rng(4).normal(size=(30, 3)).astype(np.float32)
    members = {}
    for name, arr in (("logits.npy", z), ("labels.npy", np.arange(30) % 3)):
        buf = io.BytesIO()
        np.lib.format.write_array(buf, arr)
        members[name] = buf.getvalue()
    members.update(extra)
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    return path


def _object_npy() -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array([{"run": 1}], dtype=object), allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize("stored", [True, False], ids=["stored", "deflated"])
def test_apply_temp_keeps_a_text_member_and_an_object_array(
    runner: CliRunner, tmp_path: Path, stored: bool
) -> None:
    """Regression: ``README.txt`` came back as ``README.txt.npy``, and an object-array member
    crashed apply-temp with a traceback."""
    readme, obj = b"model v3, seed 7\n", _object_npy()
    src = _npz_with(tmp_path / "in.npz", {"README.txt": readme, "meta.npy": obj}, stored)
    out = tmp_path / "out.npz"
    result = run(runner, "apply-temp", src, "-t", "2", "--out", out)
    assert_ok(result)
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ["logits.npy", "labels.npy", "README.txt", "meta.npy"]
        assert zf.read("README.txt") == readme and zf.read("meta.npy") == obj
        assert {i.compress_type for i in zf.infolist()} == {
            zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npz", "out.npz"]


def test_apply_temp_refuses_a_corrupt_member_naming_it(runner: CliRunner, tmp_path: Path) -> None:
    payload = bytes(range(200)) * 50
    src = _npz_with(tmp_path / "in.npz", {"extra.bin": payload})
    raw = bytearray(src.read_bytes())
    at = raw.index(payload) + 5000
    raw[at] ^= 0x01
    src.write_bytes(bytes(raw))
    line = one_line_error(run(runner, "apply-temp", src, "-t", "2", "--out", tmp_path / "o.npz"))
    assert line.startswith(f"calibkit: error: {src}: ") and "'extra.bin'" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npz"]


def test_apply_temp_names_a_corrupt_parquet_input(runner: CliRunner, tmp_path: Path) -> None:
    """Regression: a page that fails to decode while apply-temp reads it was reported as
    ``OUT: cannot write (...)``, on two lines."""
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(_table(5, n=200), src, row_group_size=50, compression="none")
    col = pq.ParquetFile(src).metadata.row_group(2).column(0)
    start = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
    raw = bytearray(src.read_bytes())
    raw[start : start + 12] = b"\xff" * 12
    src.write_bytes(bytes(raw))
    line = one_line_error(run(runner, "apply-temp", src, "-t", "2", "--out", out))
    assert line.startswith(f"calibkit: error: {src}: ")
    assert str(out) not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_apply_temp_refuses_up_front_what_does_not_fit(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: an uncompressed npz passed the reader's check (its members are mapped), and
    apply-temp then loaded and copied everything."""
    src = tmp_path / "in.npz"
    np.savez(src, logits=np.zeros((2000, 10), dtype=np.float32), labels=np.arange(2000) % 10)
    monkeypatch.setenv("CALIBKIT_MEMORY_LIMIT", "20000")
    line = one_line_error(run(runner, "apply-temp", src, "-t", "2", "--out", tmp_path / "o.npz"))
    assert line.startswith(f"calibkit: error: {src}: needs about ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npz"]


# --------------------------------------------------------------------------------------------
# item 12: compare --out-dir never mixes two runs

REPORT_FILES = ["reliability.png", "report.json", "report.md", "sweep.png"]


def _compare(runner: CliRunner, model: str, out_dir: Path) -> Result:
    return run(
        runner,
        "compare",
        f"{model}={SAMPLE / f'digits_{model}_test.npz'}",
        "--val",
        f"{model}={SAMPLE / f'digits_{model}_val.npz'}",
        "--out-dir",
        out_dir,
    )


def _fail_on_call(monkeypatch: pytest.MonkeyPatch, target: str, n: int, error: Exception) -> None:
    """Make the ``n``-th call of ``target`` (module.function) raise ``error``."""
    module_name, _, name = target.rpartition(".")
    module = sys.modules[module_name]
    real = getattr(module, name)
    calls = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == n:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


@pytest.mark.parametrize(
    ("target", "n", "error", "code"),
    [
        pytest.param(
            "calibkit.plotting.save.save_figure", 2, KeyboardInterrupt(), 130, id="ctrl-c"
        ),
        pytest.param(
            "calibkit.io.atomic._replace",  # the 4th file written: report.md
            4,
            OutputError("report.md", "cannot write (No space left on device)"),
            2,
            id="md",
        ),
        pytest.param("calibkit.io.atomic._exchange", 1, OSError(5, "EIO"), 2, id="swap"),
    ],
)
def test_an_interrupted_report_leaves_the_old_one_whole(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    n: int,
    error: Exception,
    code: int,
) -> None:
    """Regression: a run stopped after the first figure left a new figure beside the old
    report.md."""

    out_dir = tmp_path / "report"
    assert_ok(_compare(runner, "hard", out_dir))
    before = snapshot(tmp_path)
    assert sorted(p.name for p in out_dir.iterdir()) == REPORT_FILES
    _fail_on_call(monkeypatch, target, n, error)
    result = _compare(runner, "ls20", out_dir)
    monkeypatch.undo()
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert snapshot(tmp_path) == before  # the old report, byte for byte; no temporary folder
    assert_ok(_compare(runner, "ls20", out_dir))  # and the next run replaces it whole
    md = (out_dir / "report.md").read_text(encoding="utf-8")
    assert "| ls20 |" in md and "| hard |" not in md
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


@pytest.mark.parametrize("spec", ["dir", "glob"])
def test_apply_temp_on_shards_says_it_takes_one_file(
    runner: CliRunner, tmp_path: Path, spec: str
) -> None:
    """It said "--out ... must have the input's extension ''" (directory) or "cannot write
    '.parquet' predictions" (glob)."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    shards = tmp_path / "shards"
    shards.mkdir()
    for name in ("a", "b"):
        pq.write_table(
            pa.table({"logit_0": [2.0, -1.0], "logit_1": [-1.0, 3.0], "label": [0, 1]}),
            shards / f"{name}.parquet",
        )
    arg = str(shards) if spec == "dir" else str(shards / "*.parquet")
    result = run(runner, "apply-temp", arg, "-t", "2", "--out", tmp_path / "o.parquet")
    assert result.exit_code == 2
    assert result.stderr == (
        f"calibkit: error: {arg}: apply-temp rewrites one file; give each shard on its own\n"
    )
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize(
    ("args", "name"),
    [
        pytest.param(["ece", "DIR", "--out", "OUT"], "samples_a_2026.jsonl", id="over-an-input"),
        pytest.param(["fit-temp", "DIR", "--out", "OUT"], "samples_new.json", id="new-samples"),
        pytest.param(["ece", "DIR", "--out", "OUT"], "other.jsonl", id="new-jsonl"),
    ],
)
def test_an_lm_eval_samples_directory_is_never_written_into(
    runner: CliRunner, tmp_path: Path, args: list[str], name: str
) -> None:
    record = (
        '{"doc_id": %d, "target": 0, "filtered_resps": [["-0.5", "True"], ["-1.5", "False"]]}\n'
    )
    samples = tmp_path / "run"
    samples.mkdir()
    (samples / "samples_a_2026.jsonl").write_text("".join(record % i for i in range(4)))
    out = samples / name
    before = snapshot(tmp_path)
    result = run(runner, *fill(args, {"DIR": str(samples), "OUT": str(out)}))
    assert result.exit_code == 2
    line = one_line_error(result)
    assert line.startswith(f"calibkit: error: {out}: ")
    assert "refusing" in line
    assert snapshot(tmp_path) == before
