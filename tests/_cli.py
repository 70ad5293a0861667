"""What CLI tests share: running ``calibkit`` in-process and what they assert about the result
(imported by test modules; ``tests/`` is on ``sys.path`` because ``tests/conftest.py`` lives
there). The ``runner`` fixture is in ``tests/conftest.py``.

Each assertion helper checks everything its copies in the test modules used to check (no
traceback, no exception other than the exit, the exit status, stdout and stderr), never less.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner, Result

from calibkit.cli import app
from calibkit.errors import ExitStatus

__all__ = [
    "assert_exit",
    "assert_ok",
    "assert_one_line_error",
    "ece_json",
    "invoke",
    "no_traceback",
    "one_error_line",
    "run_json",
    "write_npz",
]


def invoke(
    runner: CliRunner,
    *args: object,
    env: dict[str, str] | None = None,
    prog_name: str | None = None,
) -> Result:
    """``calibkit ARGS...`` through Typer's runner (each argument as text: paths may be given);
    ``prog_name`` as Click's (``calibkit`` where a message names the command line)."""
    extra = {} if prog_name is None else {"prog_name": prog_name}  # None: the runner's default
    return runner.invoke(app, [str(a) for a in args], env=env, **extra)


def no_traceback(result: Result) -> None:
    """No traceback printed, and no exception but the command's own exit."""
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )


def assert_exit(result: Result, code: int) -> None:
    """Exit status ``code``, with no traceback."""
    no_traceback(result)
    assert result.exit_code == code, result.output


def assert_ok(result: Result) -> None:
    """Exit 0, with no traceback."""
    assert_exit(result, ExitStatus.OK)


def run_json(
    runner: CliRunner, *args: object, quiet: bool = True, wrote: tuple[Path, ...] = ()
) -> Any:
    """The parsed ``--json`` output of ``calibkit ARGS... --json`` (exit 0, no traceback);
    ``quiet``: stderr holds nothing but the ``calibkit: wrote`` lines of ``wrote``."""
    result = invoke(runner, *args, "--json")
    assert_ok(result)
    if quiet:
        assert result.stderr == "".join(f"calibkit: wrote {path}\n" for path in wrote)
    return json.loads(result.stdout)


def ece_json(runner: CliRunner, *args: object, quiet: bool = False) -> Any:
    """``calibkit ece ARGS... --json``, parsed (see :func:`run_json`)."""
    return run_json(runner, "ece", *args, quiet=quiet)


def assert_one_line_error(result: Result, message: str) -> None:
    """Exit 2, no traceback, empty stdout and exactly ``calibkit: error: <message>``."""
    assert_exit(result, ExitStatus.BAD_INPUT)
    assert result.stderr == f"calibkit: error: {message}\n"
    assert result.stdout == ""


def one_error_line(result: Result, path: str | os.PathLike[str] | None = None) -> str:
    """Exit 2, nothing on stdout, no traceback, exactly one ``calibkit: error:`` line (naming
    ``path`` first when given); returns the message after that prefix."""
    assert_exit(result, ExitStatus.BAD_INPUT)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    head = "calibkit: error: " + ("" if path is None else f"{path}: ")
    assert lines[0].startswith(head), lines[0]
    return lines[0][len(head) :]


def write_npz(path: Path, **arrays: Any) -> Path:
    """``np.savez(path, **arrays)``; returns ``path``."""
    np.savez(path, **arrays)
    return path
