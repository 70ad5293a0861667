"""The real program (``python -m calibkit`` in a subprocess) under signals and resource limits.

* Ctrl-C (SIGINT) and SIGTERM during a long run end it with exactly one stderr line
  (``calibkit: interrupted`` / ``calibkit: terminated``), exit status 130 / 143 and no traceback.
* Outputs are atomic: a run killed with SIGKILL while it writes leaves the previous file or the
  complete new one, never a partial one. SIGKILL cannot be caught, so the temporary file
  (``.out.npz.*``) may stay behind; after SIGINT or SIGTERM none may.
* ``CALIBKIT_MEMORY_LIMIT`` makes an ``.npz`` that does not fit a one-line error pointing to
  parquet, which is streamed and still works.
* No command writes over one of its inputs.

Synchronisation: a signal is sent once the process has the input file open or mapped (read off
``/proc`` on Linux; elsewhere after a fixed pause), or once its temporary output file has reached a
given size, so that it lands inside the command rather than during start-up. Sleeps are used only
to poll; no test asserts on durations.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
N, K = 100_000, 100  # 40 MB of float32 logits
POLL = 0.005
PATIENCE = 60.0  # seconds before a wait gives up (a safety net, not an assertion)


def calibkit(*args: object) -> list[str]:
    return [sys.executable, "-m", "calibkit", *map(str, args)]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALIBKIT_")}
    env.update(extra)
    return env


def start(*args: object, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        calibkit(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(**env),
    )


def run(*args: object, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        calibkit(*args), capture_output=True, text=True, env=environment(**env), timeout=120
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=PATIENCE)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"calibkit did not stop; stderr: {err!r}")
    return proc.returncode, out, err


def _handles(pid: int) -> Iterator[str]:
    """Files the process has open or memory-mapped."""
    proc = Path(f"/proc/{pid}")
    try:
        yield from (line.split(maxsplit=5)[-1] for line in (proc / "maps").read_text().splitlines())
        for fd in (proc / "fd").iterdir():
            yield os.readlink(fd)
    except OSError:
        return


def _catches_sigterm(pid: int) -> bool:
    """Whether calibkit's SIGTERM handler is installed (``main()`` has started)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt")), "0")
    return bool(int(mask, 16) & (1 << (signal.SIGTERM - 1)))


def wait_until_reading(proc: subprocess.Popen[str], path: Path) -> None:
    """Return once ``proc`` is inside the command, reading ``path`` (a pause where /proc is
    missing). Reading is seen as the file being open or mapped; should that be missed, one
    second after ``main()`` installed its SIGTERM handler will do."""
    if not Path(f"/proc/{proc.pid}").is_dir():
        time.sleep(2.0)
        return
    target = str(path.resolve())
    deadline = time.monotonic() + PATIENCE
    main_since = None
    while proc.poll() is None and time.monotonic() < deadline:
        if target in set(_handles(proc.pid)):
            break
        if main_since is None and _catches_sigterm(proc.pid):
            main_since = time.monotonic()
        if main_since is not None and time.monotonic() - main_since > 1.0:
            break
        time.sleep(POLL)
    time.sleep(0.3)  # past the read, into the computation


def temporaries(directory: Path, name: str) -> set[Path]:
    return set(directory.glob(f".{name}.*"))


def wait_for_temporary(
    proc: subprocess.Popen[str], directory: Path, name: str, before: set[Path], size: int
) -> bool:
    """Wait until a new temporary file for ``name`` holds at least ``size`` bytes; ``False`` if
    the process ended first."""
    deadline = time.monotonic() + PATIENCE
    while proc.poll() is None and time.monotonic() < deadline:
        for tmp in temporaries(directory, name) - before:
            try:
                if tmp.stat().st_size >= size:
                    return True
            except FileNotFoundError:
                pass
        time.sleep(POLL)
    return False


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uncompressed .npz of N x K float32 logits, made once for the module."""
    path = tmp_path_factory.mktemp("big") / "big.npz"
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((N, K), dtype=np.float32)
    labels = rng.integers(0, K, size=N)
    np.savez(path, logits=logits, labels=labels)
    return path


@pytest.fixture(scope="module")
def big_deflated(big: Path) -> Path:
    """The same arrays, compressed: ``apply-temp`` writes its output compressed too, which takes
    long enough (about a second) for signals to land while the output is being written."""
    path = big.with_name("big_deflated.npz")
    np.savez_compressed(path, **load(big))
    return path


def load(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz, read in full (a partial file raises)."""
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


# --------------------------------------------------------------------------------------------
# SIGINT and SIGTERM during a long run

LONG_SWEEP = ("--steps", "1000", "--chunk-rows", "1000")  # minutes: it never gets to finish


@posix_only
@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        pytest.param(signal.SIGINT, 130, "calibkit: interrupted", id="SIGINT"),
        pytest.param(signal.SIGTERM, 143, "calibkit: terminated", id="SIGTERM"),
    ],
)
def test_signal_during_a_long_run(
    big: Path, tmp_path: Path, signum: int, code: int, line: str
) -> None:
    csv, png = tmp_path / "out.csv", tmp_path / "out.png"
    proc = start("sweep-temp", big, *LONG_SWEEP, "--csv", csv, "--plot", png)
    wait_until_reading(proc, big)
    assert proc.poll() is None, "the sweep ended before the signal"
    proc.send_signal(signum)
    rc, out, err = finish(proc)
    assert "Traceback" not in out + err
    assert (rc, err) == (code, line + "\n")
    assert out == ""
    assert not csv.exists() and not png.exists()
    assert list(tmp_path.iterdir()) == []


@posix_only
@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        pytest.param(signal.SIGINT, 130, "calibkit: interrupted", id="SIGINT"),
        pytest.param(signal.SIGTERM, 143, "calibkit: terminated", id="SIGTERM"),
    ],
)
def test_signal_while_writing_removes_the_temporary_file(
    big_deflated: Path, tmp_path: Path, signum: int, code: int, line: str
) -> None:
    big = big_deflated
    out = tmp_path / "out.npz"
    np.savez_compressed(out, logits=np.zeros((2, 2)), labels=np.array([0, 1]))
    previous = out.read_bytes()
    size = big.stat().st_size
    interrupted = 0
    for fraction in (0.0, 0.6):
        proc = start("apply-temp", big, "-t", "2", "--out", out)
        if wait_for_temporary(proc, tmp_path, out.name, set(), int(fraction * size)):
            proc.send_signal(signum)
        rc, stdout, err = finish(proc)
        assert "Traceback" not in stdout + err
        assert temporaries(tmp_path, out.name) == set(), "a temporary file was left behind"
        if rc == 0:  # it finished before the signal
            assert_complete_output(out, big)
            previous = out.read_bytes()
        else:
            assert (rc, err) == (code, line + "\n")
            assert out.read_bytes() == previous
            interrupted += 1
    assert interrupted, "every run finished before the signal"


def assert_complete_output(out: Path, big: Path) -> None:
    written, source = load(out), load(big)
    assert sorted(written) == ["labels", "logits"]
    assert written["logits"].dtype == np.float32
    np.testing.assert_array_equal(written["logits"], source["logits"] / 2)  # exact: halving
    np.testing.assert_array_equal(written["labels"], source["labels"])


# --------------------------------------------------------------------------------------------
# SIGKILL: outputs are atomic


@posix_only
def test_sigkill_leaves_the_old_output_or_the_complete_new_one(
    big_deflated: Path, tmp_path: Path
) -> None:
    big = big_deflated
    out = tmp_path / "out.npz"
    np.savez_compressed(out, logits=np.full((3, 2), 7.0), labels=np.array([0, 1, 1]))
    versions = {out.read_bytes()}
    size = big.stat().st_size
    # kills at start-up and while reading, then at points of the write, then a run that finishes
    attempts: list[tuple[str, float]] = [("delay", 0.2), ("delay", 0.5)]
    attempts += [("written", f) for f in (0.0, 0.1, 0.5, 0.9)] + [("finish", 0.0)]
    killed_while_writing = 0
    for how, amount in attempts:
        before = temporaries(tmp_path, out.name)
        proc = start("apply-temp", big, "-t", "2", "--out", out)
        if how == "delay":
            time.sleep(amount)
            proc.kill()
        elif how == "written" and wait_for_temporary(
            proc, tmp_path, out.name, before, int(amount * size)
        ):
            proc.kill()
            killed_while_writing += 1
        proc.communicate(timeout=PATIENCE)
        assert out.exists(), f"{how} {amount}: the output is gone"
        data = out.read_bytes()
        if data not in versions:  # a run that finished (zip timestamps make each one differ)
            assert_complete_output(out, big)
            versions.add(data)
    assert proc.returncode == 0  # the last run, not killed, wrote a complete output
    assert_complete_output(out, big)
    assert killed_while_writing >= 1, "no kill landed while the output was being written"


# --------------------------------------------------------------------------------------------
# memory guard


def test_memory_limit_refuses_npz_and_streams_parquet() -> None:
    npz, parquet = SAMPLE / "digits_hard_test.npz", SAMPLE / "digits_hard_test.parquet"
    refused = run("ece", npz, CALIBKIT_MEMORY_LIMIT="1000")
    assert refused.returncode == 2, refused.stderr
    assert refused.stdout == "" and "Traceback" not in refused.stderr
    lines = refused.stderr.splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith(f"calibkit: error: {npz}: ")
    assert "needs about" in lines[0] and "parquet" in lines[0]

    streamed = run("ece", parquet, "--json", CALIBKIT_MEMORY_LIMIT="1000")
    assert streamed.returncode == 0, streamed.stderr
    unlimited = run("ece", npz, "--json")
    assert unlimited.returncode == 0, unlimited.stderr
    a, b = json.loads(streamed.stdout), json.loads(unlimited.stdout)
    for key in ("n", "accuracy", "ece", "nll", "brier"):
        assert a[key] == pytest.approx(b[key], rel=1e-12), key


# --------------------------------------------------------------------------------------------
# no output over an input

SAME_AS_INPUT = "is also an input; refusing to overwrite it"


def _refusals() -> list[object]:
    """``(args with IN / VAL / OUT placeholders, what OUT is)``: OUT is IN, VAL, or a symlink to
    IN with a figure suffix (a figure path must end in .png; only a link can name the input)."""
    return [
        pytest.param(["ece", "IN", "--out", "OUT"], "IN", id="ece-out"),
        pytest.param(["ece", "IN", "--json", "--out", "OUT"], "link.json", id="ece-out-link"),
        pytest.param(["fit-temp", "IN", "--out", "OUT"], "IN", id="fit-temp-out"),
        pytest.param(["fit-temp", "VAL", "--eval", "IN", "--out", "OUT"], "IN", id="fit-eval"),
        pytest.param(["apply-temp", "IN", "-t", "2", "--out", "OUT"], "IN", id="apply-temp-out"),
        pytest.param(["sweep-temp", "IN", "--csv", "OUT"], "IN", id="sweep-csv"),
        pytest.param(
            ["sweep-temp", "m=IN", "--val", "m=VAL", "--csv", "OUT"], "VAL", id="sweep-val"
        ),
        pytest.param(["sweep-temp", "IN", "--plot", "OUT"], "link.png", id="sweep-plot"),
        pytest.param(["diagram", "IN", "--out", "OUT"], "link.png", id="diagram-out"),
        pytest.param(["diagram", "a=VAL", "b=IN", "--out", "OUT"], "link.svg", id="diagram-2nd"),
        pytest.param(["check", "IN", "--max-ece", "1", "--junit", "OUT"], "IN", id="check-junit"),
        pytest.param(
            ["check", "IN", "--baseline", "VAL", "--max-increase", "ece=1", "--junit", "OUT"],
            "VAL",
            id="check-baseline",
        ),
    ]


@pytest.mark.parametrize(("args", "target"), _refusals())
def test_output_equal_to_an_input_is_refused(tmp_path: Path, args: list[str], target: str) -> None:
    inp, val = tmp_path / "in.npz", tmp_path / "val.npz"
    inp.write_bytes((SAMPLE / "digits_hard_test.npz").read_bytes())
    val.write_bytes((SAMPLE / "digits_hard_val.npz").read_bytes())
    if target == "IN":
        out = inp
    elif target == "VAL":
        out = val
    else:
        if sys.platform == "win32":
            pytest.skip("symlinks need privileges on Windows")
        out = tmp_path / target
        out.symlink_to(inp)
    before = {p.name: p.read_bytes() for p in (inp, val)}
    listing = sorted(p.name for p in tmp_path.iterdir())
    names = {"IN": str(inp), "VAL": str(val), "OUT": str(out)}
    result = run(*fill(args, names))
    assert "Traceback" not in result.stderr
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr == f"calibkit: error: {out}: {SAME_AS_INPUT}\n"
    assert {p.name: p.read_bytes() for p in (inp, val)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # no temporary file


def fill(args: list[str], names: dict[str, str]) -> list[str]:
    """Replace the placeholders ``IN``, ``VAL``, ``OUT`` (alone or after ``NAME=``)."""
    filled = []
    for arg in args:
        prefix, sep, placeholder = arg.rpartition("=")
        filled.append(prefix + sep + names[placeholder] if placeholder in names else arg)
    return filled


def test_figure_over_the_input_is_refused(tmp_path: Path) -> None:
    """``--plot in.npz``: refused (a figure must be .png/.svg/.pdf) and the input unchanged."""
    inp = tmp_path / "in.npz"
    inp.write_bytes((SAMPLE / "digits_hard_test.npz").read_bytes())
    before = inp.read_bytes()
    for args in (["sweep-temp", inp, "--plot", inp], ["diagram", inp, "--out", inp]):
        result = run(*args)
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
        assert result.stderr.startswith(f"calibkit: error: {inp}: ")
        assert inp.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["in.npz"]


# --------------------------------------------------------------------------------------------
# signals at awkward moments: while starting up, while parsing, inside a library's import
#
# A subprocess sends the signal to itself when a given module is first imported (a meta-path
# hook), so the moment is exact and the outcome reproducible.

HOOK = """
import os, runpy, signal, sys
class SignalOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            sys.meta_path.remove(self)
            open({marker!r}, "w").close()
            os.kill(os.getpid(), {signum})
        return None
sys.meta_path.insert(0, SignalOnImport())
sys.argv = ["calibkit", *sys.argv[1:]]
runpy.run_module("calibkit", run_name="__main__", alter_sys=True)
"""

SIGNALS = [
    pytest.param(signal.SIGINT, 130, "calibkit: interrupted", id="SIGINT"),
    pytest.param(signal.SIGTERM, 143, "calibkit: terminated", id="SIGTERM"),
]


@posix_only
@pytest.mark.parametrize(("signum", "code", "line"), SIGNALS)
@pytest.mark.parametrize(
    "module",
    [
        pytest.param("calibkit.cli.app", id="importing-the-cli"),
        # typer imports its pydantic adapters lazily, when it converts the first parameter value
        pytest.param("typer._adapters", id="parsing-the-arguments"),
        pytest.param("calibkit.loaders.npz", id="starting-the-command"),
    ],
)
def test_signal_before_the_command_runs(
    tmp_path: Path, module: str, signum: int, code: int, line: str
) -> None:
    """Regression: a Ctrl-C while calibkit.cli was imported printed a traceback, and one while
    Typer parsed the arguments ended silently with 130."""
    signal_on_import(tmp_path, module, signum, SAMPLE / "digits_hard_test.npz", code, line)


@posix_only
@pytest.mark.parametrize(("signum", "code", "line"), SIGNALS)
def test_signal_while_pyarrow_imports_pandas(
    tmp_path: Path, signum: int, code: int, line: str
) -> None:
    pytest.importorskip("pandas")
    signal_on_import(tmp_path, "pandas", signum, SAMPLE / "digits_hard_test.parquet", code, line)


def signal_on_import(
    tmp_path: Path, module: str, signum: int, path: Path, code: int, line: str
) -> None:
    """``calibkit ece path`` sending itself ``signum`` when ``module`` is first imported: it must
    stop with exactly ``line`` on stderr, status ``code`` and nothing on stdout."""
    marker = tmp_path / "fired"
    hook = HOOK.format(module=module, marker=str(marker), signum=int(signum))
    result = subprocess.run(
        [sys.executable, "-c", hook, "ece", str(path)],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=120,
    )
    if not marker.exists():
        pytest.skip(f"{module} is no longer imported while calibkit runs")
    assert "Traceback" not in result.stderr
    assert (result.returncode, result.stderr, result.stdout) == (code, line + "\n", "")
