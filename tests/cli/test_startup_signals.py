"""Ctrl-C in the first milliseconds of ``calibkit``: one line and exit 130 from calibkit's first
statement on.

The console script runs ``from calibkit._entry import main; main()``: Python loads
``calibkit/__init__.py`` and ``calibkit/_entry.py`` before calibkit can install its handlers.
Those two files import nothing (tests/unit/test_bounds.py checks it), and ``main()`` installs
the handlers first, so from there on every moment is covered. What comes before is Python's
own start-up (the interpreter, ``site``, the wrapper's ``import re``): a SIGINT there is killed
silently by the signal (status -2) or, once Python has installed its handler, ends in Python's
``KeyboardInterrupt`` traceback with no frame of calibkit's in it (a bare ``KeyboardInterrupt``
line and status 1 when it lands in C code with no Python frame yet). No program can change that.

Two tests: one sends SIGINT at each of the first imports after calibkit's two files are loaded
(an audit hook sees every import, so the moments are exact and the outcome reproducible); one
sends it at delays from 0 to 200 ms after starting the real program and checks that every
outcome is one of those just described.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import calibkit

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "digits_hard_test.npz"
PACKAGE = str(Path(calibkit.__file__).resolve().parent)

#: The console-script wrapper pip writes, plus an audit hook that sends SIGINT (or SIGTERM) to
#: the process at the K-th module import after both ``calibkit`` and ``calibkit._entry`` are
#: loaded (import events are raised as each module starts loading).
WRAPPER = """
import os, re, sys
K, SIGNUM = int(sys.argv.pop(1)), int(sys.argv.pop(1))
seen, counted = set(), []
def hook(event, args):
    if event != "import":
        return
    if {"calibkit", "calibkit._entry"} <= seen:
        counted.append(args[0])
        if len(counted) == K:
            sys.stderr.write("[signal at " + args[0] + "]\\n")
            os.kill(os.getpid(), SIGNUM)
    seen.add(args[0])
sys.addaudithook(hook)
sys.argv[0] = "calibkit"
from calibkit._entry import main
if __name__ == "__main__":
    sys.exit(main())
"""


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CALIBKIT_")}


@posix_only
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 8, 12, 20, 40, 80, 160])
@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        pytest.param(signal.SIGINT, 130, "calibkit: interrupted", id="SIGINT"),
        pytest.param(signal.SIGTERM, 143, "calibkit: terminated", id="SIGTERM"),
    ],
)
def test_signal_at_each_import_after_calibkit_loaded(
    tmp_path: Path, k: int, signum: int, code: int, line: str
) -> None:
    """Regression: calibkit/__init__.py imported ``importlib``, ``typing`` and
    ``calibkit._version``, and calibkit/_entry.py ``signal``, before the handlers were
    installed: a Ctrl-C then was Python's KeyboardInterrupt traceback."""
    script = tmp_path / "calibkit_wrapper.py"
    script.write_text(WRAPPER)
    proc = subprocess.run(
        [sys.executable, str(script), str(k), str(int(signum)), "ece", str(SAMPLE), "--json"],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=120,
    )
    marker, _, rest = proc.stderr.partition("\n")
    if not marker.startswith("[signal at "):
        pytest.skip(f"calibkit ece imports fewer than {k} modules now")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert (proc.returncode, rest, proc.stdout) == (code, line + "\n", ""), marker


def _program() -> list[str]:
    exe = shutil.which("calibkit")
    return [exe] if exe else [sys.executable, "-m", "calibkit"]


LOADED_FIRST = (f'{PACKAGE}{os.sep}__init__.py", ', f'{PACKAGE}{os.sep}_entry.py", ')


def _frames_in_calibkit(stderr: str) -> list[str]:
    """Traceback frames in calibkit's code, but for the module bodies of the two files Python
    loads before calibkit's first statement runs (microseconds of assignments and ``def``)."""
    return [
        ln
        for ln in stderr.splitlines()
        if ln.strip().startswith("File ")
        and PACKAGE in ln
        and not (ln.endswith("in <module>") and any(f in ln for f in LOADED_FIRST))
    ]


#: What CPython prints when a signal interrupts its check of ``argv[0]`` (Modules/main.c,
#: ``pymain_run_python``) before it runs the console script; it then runs the script anyway.
PYTHON_ARGV0_REPORT = "Failed checking if argv[0] is an import path entry\n"
#: What CPython prints when a KeyboardInterrupt is raised inside an import-lock callback.
IMPORT_LOCK_REPORT = "Exception ignored in: <function _get_module_lock.<locals>.cb"


@posix_only
def test_sigint_at_any_moment_of_start_up() -> None:
    outcomes = []
    for delay_ms in range(0, 201, 10):
        proc = subprocess.Popen(
            [*_program(), "ece", str(SAMPLE), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_environment(),
        )
        time.sleep(delay_ms / 1000)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        outcomes.append((delay_ms, proc.returncode, err))
        if proc.returncode == 0 and err.startswith(PYTHON_ARGV0_REPORT):
            # (seen once in CI) the signal landed in CPython's own start-up, while it asked
            # zipimport whether the script's path is an archive: CPython prints that traceback
            # and runs the program on, before any calibkit code exists; a complete result
            assert out.startswith("{")
            assert _frames_in_calibkit(err) == [], err
            assert err.rstrip().endswith("KeyboardInterrupt"), err
        elif proc.returncode == 0 and err.startswith(IMPORT_LOCK_REPORT):
            # (seen once in CI, under load) the signal landed in a callback of importlib's
            # module locks while Python's own handler was still installed (before calibkit's
            # entry point): Python ignores an exception raised in a callback, prints that it
            # did, and the program runs on to a complete result
            assert out.startswith("{")
            assert _frames_in_calibkit(err) == [], err
            assert err.rstrip().endswith("KeyboardInterrupt:"), err
        elif proc.returncode == 0:  # it had finished: a complete result
            assert out.startswith("{") and err == ""
        elif proc.returncode == 130:  # calibkit's handler
            assert (out, err) == ("", "calibkit: interrupted\n")
        elif "Traceback" in err:  # Python's handler, while Python itself was starting
            assert proc.returncode in (1, -signal.SIGINT)
            assert _frames_in_calibkit(err) == [], err
            assert err.rstrip().endswith("KeyboardInterrupt")
        elif err == "KeyboardInterrupt\n":
            # (seen once in CI) Python's handler fired inside the interpreter's own C start-up,
            # where no Python frame exists yet: CPython prints the bare exception name and exits
            # 1 before any file of calibkit's is loaded
            assert (proc.returncode, out) == (1, "")
        else:  # before Python had a handler: the signal's default action, nothing printed
            assert (proc.returncode, out, err) == (-signal.SIGINT, "", "")
    assert any(code == 130 for _, code, _ in outcomes), outcomes


def test_an_early_signal_inside_an_import_callback_still_ends_the_program() -> None:
    """Regression (seen once in CI): a SIGINT landing in a callback of the import system while
    the CLI was loading raised SystemExit there; Python ignored it ("Exception ignored in ...")
    and the command ran on to exit 0. The early handler now ends the process itself."""
    code = (
        "import os, signal, sys, weakref\n"
        "from calibkit._entry import _early\n"
        "signal.signal(signal.SIGINT, _early)\n"
        "class Box: pass\n"
        "box = Box()\n"
        "ref = weakref.ref(box, lambda r: os.kill(os.getpid(), signal.SIGINT))\n"
        "del box\n"  # the callback runs here, as importlib's lock callbacks do
        "print('ran on')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (130, "", "calibkit: interrupted\n")
