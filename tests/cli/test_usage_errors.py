"""One line and exit 2 for every usage error and every malformed file, in every command.

* Usage errors Typer (Click) finds while parsing (a bad, missing or out-of-range value, an
  unknown option or command) are ``calibkit: error: <message>`` on one line, in calibkit's
  words, not a usage block with a Rich panel in pydantic's; help, ``--version`` and the help
  for ``calibkit`` alone stay Typer's, exit codes included.
* Every command refuses each malformed predictions file that the tests build with one line
  naming the file, exit 2, nothing on stdout and no output written.
* Hostile configuration, baseline and calibrator files (a device, nesting 10^6 deep, an
  integer of 5001 digits, a ``pyproject.toml`` whose ``[tool] calibkit`` is a string) and
  devices calibkit cannot compute on (``--device meta``) are one line too.
* Warnings: calibkit's own warnings are printed, numpy's floating-point warnings never.

Every hostile input is crafted here, in ``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _cli import invoke as _invoke
from _cli import one_error_line
from typer.testing import CliRunner, Result

from calibkit._version import __version__

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "digits_hard_test.npz"
N, K = 8, 3
LABELS = np.arange(N) % K


def invoke(runner: CliRunner, *args: object) -> Result:
    return _invoke(runner, *args, prog_name="calibkit")


# --------------------------------------------------------------------------------------------
# usage errors found while parsing


USAGE_ERRORS = [
    (["ece", "IN", "--bins", "0"], "--bins must be >= 1; got 0; see 'calibkit ece --help'"),
    (
        ["ece", "IN", "--bins", "abc"],
        "--bins must be an integer; got 'abc'; see 'calibkit ece --help'",
    ),
    (
        ["ece", "IN", "--bins", "1000000"],
        "--bins must be <= 10000; got 1000000; see 'calibkit ece --help'",
    ),
    (
        ["ece", "IN", "--bins", str(2**63 - 1)],
        f"--bins must be <= 10000; got {2**63 - 1}; see 'calibkit ece --help'",
    ),
    (
        ["ece", "IN", "--binning", "foo"],
        "--binning must be width or mass; got 'foo'; see 'calibkit ece --help'",
    ),
    (
        ["ece", "IN", "--binary", "x"],
        "--binary must be top-label or positive; got 'x'; see 'calibkit ece --help'",
    ),
    (
        ["ece", "IN", "--ci", "x", "--all"],
        "--ci must be a number; got 'x'; see 'calibkit ece --help'",
    ),
    (["ece"], "missing argument PRED; see 'calibkit ece --help'"),
    (["apply-temp", "IN", "-t", "2"], "missing option --out; see 'calibkit apply-temp --help'"),
    (["ece", "IN", "--bins"], "--bins needs a value"),
    (
        ["ece", "IN", "--bogus"],
        "no such option --bogus (did you mean --bins or --out?); see 'calibkit ece --help'",
    ),
    (["ece", "IN", "extra"], "got unexpected extra argument(s) (extra); see 'calibkit ece --help'"),
    (["frob"], "no such command 'frob'; see 'calibkit --help'"),
    (["--bogus"], "no such option --bogus; see 'calibkit --help'"),
    (
        ["ece", "IN", "--chunk-rows", "0"],
        "--chunk-rows must be >= 1; got 0; see 'calibkit ece --help'",
    ),
    (
        ["ece", "IN", "--chunk-rows", str(10**12)],
        f"--chunk-rows must be <= 100000000; got {10**12}; see 'calibkit ece --help'",
    ),
    (
        ["sweep-temp", "IN", "--steps", "100000"],
        "--steps must be <= 10000; got 100000; see 'calibkit sweep-temp --help'",
    ),
    (
        ["check", "IN", "--max-ece", "x"],
        "--max-ece must be a number; got 'x'; see 'calibkit check --help'",
    ),
    (["check", "IN", "--bins", "0"], "--bins must be >= 1; got 0; see 'calibkit check --help'"),
]


@pytest.mark.parametrize(
    ("args", "message"), USAGE_ERRORS, ids=[" ".join(args)[:40] for args, _ in USAGE_ERRORS]
)
def test_usage_errors_are_one_line(runner: CliRunner, args: list[str], message: str) -> None:
    result = invoke(runner, *(str(SAMPLE) if a == "IN" else a for a in args))
    assert one_error_line(result) == message


@pytest.mark.parametrize(
    "command",
    ["apply-temp", "check", "compare", "diagram", "ece", "fit-temp", "sweep-temp"],
)
def test_every_command_reports_a_missing_argument_and_an_unknown_option(
    runner: CliRunner, command: str
) -> None:
    assert one_error_line(invoke(runner, command)).startswith("missing ")
    message = one_error_line(invoke(runner, command, SAMPLE, "--no-such-flag"))
    assert message.startswith("no such option --no-such-flag")
    assert message.endswith(f"; see 'calibkit {command} --help'")


def test_help_version_and_bare_calibkit_stay_typers(runner: CliRunner) -> None:
    top = invoke(runner, "--help")
    assert top.exit_code == 0 and "Usage: calibkit [OPTIONS] COMMAND" in top.stdout
    sub = invoke(runner, "ece", "--help")
    assert sub.exit_code == 0 and "--bins" in sub.stdout and sub.stderr == ""
    short = invoke(runner, "ece", "-h")
    assert short.exit_code == 0 and short.stdout == sub.stdout
    version = invoke(runner, "--version")
    assert (version.exit_code, version.stdout) == (0, f"calibkit {__version__}\n")
    bare = invoke(runner)
    assert bare.exit_code == 2  # Typer's code for no_args_is_help, with the help printed
    assert "Usage: calibkit [OPTIONS] COMMAND" in bare.stdout
    assert "error" not in bare.stderr


def test_help_shows_the_bounds(runner: CliRunner) -> None:
    text = invoke(runner, "ece", "--help").stdout
    assert "1<=x<=10000" in text  # --bins
    assert "1<=x<=100000000" in text  # --chunk-rows


def test_exit_codes_of_commands_are_unchanged(runner: CliRunner) -> None:
    passed = invoke(runner, "check", SAMPLE, "--max-ece", "1")
    failed = invoke(runner, "check", SAMPLE, "--max-ece", "0.001")
    assert (passed.exit_code, failed.exit_code) == (0, 1)


def _program() -> list[str]:
    exe = shutil.which("calibkit")
    return [exe] if exe else [sys.executable, "-m", "calibkit"]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["ece", str(SAMPLE), "--bins", "0"], "--bins must be >= 1; got 0"),
        (["ece", str(SAMPLE), "--binning", "foo"], "--binning must be width or mass; got 'foo'"),
        (["ece"], "missing argument PRED"),
    ],
)
def test_the_real_program_prints_one_line(args: list[str], line: str) -> None:
    proc = subprocess.run([*_program(), *args], capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith(f"calibkit: error: {line}")
    assert len(proc.stderr.splitlines()) == 1, proc.stderr


# --------------------------------------------------------------------------------------------
# every command on every malformed predictions file


def _logits() -> np.ndarray:
    return np.linspace(-2.0, 2.0, N * K).reshape(N, K)


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name

    return build


def _npz(**arrays: np.ndarray) -> Callable[[Path], Path]:
    return _write("bad.npz", _npz_bytes(**arrays))


def _truncated_npz(tmp: Path) -> Path:
    data = _npz_bytes(logits=_logits(), labels=LABELS)
    return _write("bad.npz", data[: len(data) // 2])(tmp)


def _bad_parquet_bytes(tmp: Path) -> Path:
    path = tmp / "bad.parquet"
    pq.write_table(pa.table({"logit_0": [0.1] * N, "logit_1": [0.2] * N, "label": [0] * N}), path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 16] = b"\xff" * 16  # inside the data pages
    data[-8:-4] = b"\xff\xff\xff\x7f"  # and a footer length beyond the file
    path.write_bytes(bytes(data))
    return path


def _parquet(**columns: list[object]) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = tmp / "bad.parquet"
        pq.write_table(pa.table(columns), path)
        return path

    return build


def _with_nan() -> np.ndarray:
    z = _logits()
    z[3, 1] = np.nan
    return z


MALFORMED: dict[str, Callable[[Path], Path]] = {
    "empty-file": _write("bad.npz", b""),
    "not-a-zip": _write("bad.npz", b"this is not a zip archive\n" * 4),
    "truncated-npz": _truncated_npz,
    "nan-logits": _npz(logits=_with_nan(), labels=LABELS),
    "wrong-shape": _npz(logits=np.zeros((N, K, 2)), labels=LABELS),
    "labels-out-of-range": _npz(logits=_logits(), labels=LABELS + K),
    "labels-not-integers": _npz(logits=_logits(), labels=LABELS + 0.5),
    "rows-mismatch": _npz(logits=_logits(), labels=LABELS[:-1]),
    "missing-labels-key": _npz(logits=_logits()),
    "bad-parquet-bytes": _bad_parquet_bytes,
    "parquet-missing-label": _parquet(logit_0=[0.0] * N, logit_1=[1.0] * N),
    "parquet-nan": _parquet(logit_0=[0.0] * N, logit_1=[float("nan")] * N, label=[0] * N),
}


def _command_line(command: str, path: Path, tmp: Path) -> list[object]:
    """``command`` run on ``path``, with the options it needs and its outputs in ``out/``."""
    out = tmp / "out"
    return {
        "ece": ["ece", path],
        "fit-temp": ["fit-temp", path],
        "sweep-temp": ["sweep-temp", path],
        "diagram": ["diagram", path, "--out", out / "fig.png"],
        "compare": ["compare", path],
        "check": ["check", path, "--max-ece", "1"],
        "apply-temp": ["apply-temp", path, "-t", "2", "--out", out / f"scaled{path.suffix}"],
    }[command]


@pytest.mark.parametrize("kind", list(MALFORMED))
@pytest.mark.parametrize(
    "command", ["ece", "fit-temp", "sweep-temp", "diagram", "compare", "check", "apply-temp"]
)
def test_every_command_refuses_every_malformed_file_with_one_line(
    runner: CliRunner, tmp_path: Path, command: str, kind: str
) -> None:
    path = MALFORMED[kind](tmp_path)
    (tmp_path / "out").mkdir()
    result = invoke(runner, *_command_line(command, path, tmp_path))
    message = one_error_line(result)
    assert message.startswith(f"{path}: "), message  # the input is named, not the output
    assert list((tmp_path / "out").iterdir()) == []


def test_a_malformed_file_from_the_real_program(tmp_path: Path) -> None:
    path = _truncated_npz(tmp_path)
    for command in ("fit-temp", "check"):
        args = [command, str(path)] + (["--max-ece", "1"] if command == "check" else [])
        proc = subprocess.run([*_program(), *args], capture_output=True, text=True, timeout=120)
        assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
        [line] = proc.stderr.splitlines()
        assert line.startswith(f"calibkit: error: {path}: ")


# --------------------------------------------------------------------------------------------
# configuration, baseline and calibrator files


def _deep_json(depth: int = 10**6) -> str:
    return "[" * depth + "]" * depth


def _big_int_json() -> str:
    return '{"ece": ' + "7" * 5001 + "}"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (_deep_json(), "not valid JSON (nested too deeply)"),
        ('{"a": ' * 100_000 + "1" + "}" * 100_000, "not valid JSON (nested too deeply)"),
        (_big_int_json(), "not valid JSON (an integer with too many digits)"),
    ],
    ids=["array-10^6-deep", "object-10^5-deep", "5001-digit-integer"],
)
def test_hostile_json_baseline_and_calibrator(
    runner: CliRunner, tmp_path: Path, content: str, problem: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    baseline = invoke(runner, "check", SAMPLE, "--baseline", bad, "--max-increase", "ece=0.1")
    assert one_error_line(baseline) == f"{bad}: {problem}"
    out = tmp_path / "scaled.npz"
    calibrator = invoke(runner, "apply-temp", SAMPLE, "--calibrator", bad, "--out", out)
    assert one_error_line(calibrator) == f"{bad}: {problem}"
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("a = " + "[" * 10_000 + "]" * 10_000 + "\n", "not valid TOML (nested too deeply)"),
        ("a = " + "{b = " * 5_000 + "1" + "}" * 5_000 + "\n", "not valid TOML (nested too deeply)"),
        ("seed = " + "1" * 5001 + "\n", "not valid TOML (an integer with too many digits)"),
        ("bins = 0\n", "bins must be from 1 to 10000; got 0"),
        ("bins = 10000000\n", "bins must be from 1 to 10000; got 10000000"),
        ("bootstrap = 100000000\n", "bootstrap must be from 1 to 1000000; got 100000000"),
        ("seed = -1\n", "seed must be from 0 to 9223372036854775807; got -1"),
    ],
    ids=[
        "array-deep",
        "inline-table",
        "big-int",
        "bins-0",
        "bins-big",
        "bootstrap-big",
        "seed-neg",
    ],
)
def test_hostile_toml_config(runner: CliRunner, tmp_path: Path, content: str, problem: str) -> None:
    config = tmp_path / "calibkit.toml"
    config.write_text(content)
    result = invoke(runner, "check", SAMPLE, "--max-ece", "1", "--config", config)
    assert one_error_line(result) == f"{config}: {problem}"


@pytest.mark.parametrize(
    ("pyproject", "problem"),
    [
        ('[tool]\ncalibkit = "x"\n', "[tool.calibkit] must be a table; got 'x'"),
        ("tool = 5\n", "[tool] must be a table; got 5"),
        ("[tool.calibkit]\ncheck = [1, 2]\n", "[tool.calibkit.check] must be a table; got [1, 2]"),
    ],
)
def test_pyproject_levels_of_the_wrong_type_without_config(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pyproject: str, problem: str
) -> None:
    """Regression: ``[tool] calibkit = "x"`` in the working directory's pyproject.toml crashed
    ``check`` (``'str' object has no attribute 'get'``) although no --config was given."""
    (tmp_path / "pyproject.toml").write_text(pyproject)
    monkeypatch.chdir(tmp_path)
    result = invoke(runner, "check", SAMPLE, "--max-ece", "1")
    assert one_error_line(result) == f"{tmp_path / 'pyproject.toml'}: {problem}"


def test_other_tools_tables_in_pyproject_are_ignored(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ruff]\nline-length = 3\n[project]\nname = "x"\n'
    )
    monkeypatch.chdir(tmp_path)
    assert invoke(runner, "check", SAMPLE, "--max-ece", "1").exit_code == 0


def _device(path: str) -> Path:
    """A character device to read from (calibkit only ever opens it read-only here)."""
    if not os.path.exists(path):
        pytest.skip(f"no {path}")
    return Path(path)


@pytest.mark.parametrize("flag", ["--config", "--baseline", "--calibrator"])
def test_a_device_is_refused_before_reading(runner: CliRunner, tmp_path: Path, flag: str) -> None:
    """Regression: ``/dev/zero`` as a JSON or TOML file was read until memory ran out. It is
    reached through a ``.json`` link here (a baseline is read as JSON by its suffix)."""
    link = tmp_path / "zero.json"
    link.symlink_to(_device("/dev/zero"))
    out = tmp_path / "scaled.npz"
    args: list[object] = {
        "--config": ["check", SAMPLE, "--max-ece", "1", "--config", link],
        "--baseline": ["check", SAMPLE, "--baseline", link, "--max-increase", "ece=0.1"],
        "--calibrator": ["apply-temp", SAMPLE, "--calibrator", link, "--out", out],
    }[flag]
    message = one_error_line(invoke(runner, *args))
    assert message.startswith(f"{link}: is a character device; ")
    assert not out.exists()


def test_a_fifo_without_a_writer_does_not_hang(runner: CliRunner, tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    fifo = tmp_path / "calibrator.json"
    os.mkfifo(fifo)
    out = tmp_path / "scaled.npz"
    result = invoke(runner, "apply-temp", SAMPLE, "--calibrator", fifo, "--out", out)
    assert one_error_line(result).startswith(f"{fifo}: not valid JSON")  # it read as empty
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# devices


def test_device_meta_is_refused(runner: CliRunner) -> None:
    pytest.importorskip("torch")
    for command in ("ece", "fit-temp"):
        result = invoke(runner, command, SAMPLE, "--device", "meta")
        assert (
            one_error_line(result) == "--device meta: calibkit computes on cpu or cuda devices only"
        )


def test_device_that_is_not_a_torch_device(runner: CliRunner) -> None:
    pytest.importorskip("torch")
    result = invoke(runner, "ece", SAMPLE, "--device", "nonsense")
    assert (
        one_error_line(result) == "--device nonsense: not a torch device; give cpu, cuda or cuda:N"
    )


def test_longdouble_scores_on_the_torch_cpu_path(runner: CliRunner, tmp_path: Path) -> None:
    """Regression: float128 (longdouble) logits with --device cpu were a TypeError traceback from
    torch; they are computed as float64, as without --device."""
    pytest.importorskip("torch")
    path = tmp_path / "f128.npz"
    z = np.random.default_rng(0).standard_normal((40, 3))
    np.savez(path, logits=z.astype(np.longdouble), labels=np.arange(40) % 3)
    plain = invoke(runner, "ece", path, "--json")
    torch_cpu = invoke(runner, "ece", path, "--json", "--device", "cpu")
    assert plain.exit_code == torch_cpu.exit_code == 0, torch_cpu.output
    import json

    a, b = json.loads(plain.stdout), json.loads(torch_cpu.stdout)
    for key in ("ece", "nll", "brier", "accuracy"):
        assert b[key] == pytest.approx(a[key], rel=1e-12, abs=1e-15), key
    fitted = invoke(runner, "fit-temp", path, "--json", "--device", "cpu")
    assert fitted.exit_code == 0, fitted.output


# --------------------------------------------------------------------------------------------
# warnings


def test_numpy_warnings_never_print(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: numpy's RuntimeWarnings from calibkit's arithmetic (``invalid value
    encountered in multiply``, 10 lines of them for ±1e308 logits) were printed as
    ``calibkit: warning:`` lines."""
    import warnings

    import calibkit.cli.ece as ece_module

    real = ece_module.stdout

    def noisy_stdout():  # type: ignore[no-untyped-def]
        with np.errstate(all="warn"):
            np.exp(np.array([1e6]))  # RuntimeWarning: overflow encountered in exp (in C)
            np.nanmean(np.array([np.nan]))  # RuntimeWarning raised by numpy's Python code
        warnings.warn("deprecated somewhere", DeprecationWarning, stacklevel=1)
        return real()

    monkeypatch.setattr(ece_module, "stdout", noisy_stdout)
    result = invoke(runner, "ece", SAMPLE)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_calibkits_own_warnings_still_print(runner: CliRunner) -> None:
    result = invoke(runner, "fit-temp", SAMPLE, "--t-max", "1.01")
    assert result.exit_code == 0, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith(f"calibkit: warning: {SAMPLE}: ") and "clamped to 1.01" in line


def test_debug_shows_every_warning(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    import calibkit.cli.ece as ece_module

    real = ece_module.stdout

    def noisy_stdout():  # type: ignore[no-untyped-def]
        with np.errstate(all="warn"):
            np.exp(np.array([1e6]))
        return real()

    monkeypatch.setattr(ece_module, "stdout", noisy_stdout)
    result = invoke(runner, "--debug", "ece", SAMPLE)
    assert result.exit_code == 0
    assert "RuntimeWarning: overflow encountered in exp" in result.stderr


def test_shows_warning_rule() -> None:
    import calibkit.metrics.summary as inside
    from calibkit.cli._common import shows_warning
    from calibkit.errors import ConvergenceWarning

    assert shows_warning(ConvergenceWarning, inside.__file__)
    assert shows_warning(UserWarning, inside.__file__)
    assert not shows_warning(RuntimeWarning, inside.__file__)
    assert not shows_warning(DeprecationWarning, inside.__file__)
    assert not shows_warning(UserWarning, np.__file__)
    assert not shows_warning(UserWarning, str(zipfile.__file__))
