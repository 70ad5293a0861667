"""Exit statuses are named once, in :class:`calibkit.errors.ExitStatus` (#14).

The numbers are the README's exit-code table and do not change. The code that ends the process
names them through the enum; the only literals left are in ``calibkit/_entry.py``, whose signal
handlers run before anything else is imported (checked here to agree with the enum).
"""

from __future__ import annotations

import ast
import os
import signal
from pathlib import Path

import pytest

from calibkit.errors import CalibkitError, ExitStatus, InputError, OutputError, UsageError

PACKAGE = Path(__file__).resolve().parents[2] / "calibkit"

#: Modules allowed to write an exit status as a number, and why.
LITERAL_ALLOWED = {
    "_entry.py": "its handlers are installed before any import; checked against the enum below",
    "_fast_help.py": "loads only calibkit._version, so `calibkit --help` stays fast",
}

#: Calls that end the process (or a command) with a status.
EXIT_CALLS = {"Exit", "exit", "_exit", "SystemExit"}


def test_the_values_are_the_readme_table() -> None:
    assert {s.name: int(s) for s in ExitStatus} == {
        "OK": 0,
        "CHECK_FAILED": 1,
        "BAD_INPUT": 2,
        "ENGINE_FAILED": 3,
        "INTERRUPTED": 130,
        "TERMINATED": 143,
    }
    assert ExitStatus.ABORTED is ExitStatus.CHECK_FAILED  # an alias: Click's own status 1


@pytest.mark.parametrize("error", [UsageError("x"), InputError("f", "x"), OutputError("f", "x")])
def test_every_calibkit_error_exits_with_bad_input(error: CalibkitError) -> None:
    assert error.exit_code is ExitStatus.BAD_INPUT


def _literal_exits(text: str, where: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name not in EXIT_CALLS:
            continue
        if any(
            isinstance(sub, ast.Constant) and isinstance(sub.value, int)
            for sub in ast.walk(node.args[0])
        ):
            found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_exit_status_is_written_as_a_number() -> None:
    found = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if str(path.relative_to(PACKAGE)) not in LITERAL_ALLOWED
        for hit in _literal_exits(path.read_text(encoding="utf-8"), str(path))
    ]
    assert found == []


def test_the_check_finds_a_number() -> None:
    text = (
        "import sys, typer\n"
        "def f(code):\n"
        "    sys.exit(code if code else 0)\n"
        "    raise typer.Exit(ExitStatus.OK)\n"
        "    raise SystemExit(2) from None\n"
    )
    assert [hit.split(": ")[0] for hit in _literal_exits(text, "m")] == ["m:3", "m:5"]


@pytest.mark.parametrize(
    ("signum", "status", "line"),
    [
        (signal.SIGINT, ExitStatus.INTERRUPTED, "calibkit: interrupted\n"),
        (signal.SIGTERM, ExitStatus.TERMINATED, "calibkit: terminated\n"),
    ],
)
def test_the_early_handlers_use_the_enum_values(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], signum, status, line
) -> None:
    from calibkit import _entry

    class Exited(Exception):
        pass

    def fake_exit(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(os, "_exit", fake_exit)  # the handler would end this process
    with pytest.raises(Exited) as info:
        _entry._early(signum, None)
    assert info.value.args == (int(status),)
    assert capsys.readouterr().err == line
