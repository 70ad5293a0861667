"""What CLI tests assert about a refusal (imported by test modules; ``tests/`` is on
``sys.path`` because ``tests/conftest.py`` lives there)."""

from __future__ import annotations

import os

from typer.testing import Result


def one_error_line(result: Result, path: str | os.PathLike[str] | None = None) -> str:
    """Exit 2, nothing on stdout, no traceback, exactly one ``calibkit: error:`` line (naming
    ``path`` first when given); returns the message after that prefix."""
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    head = "calibkit: error: " + ("" if path is None else f"{path}: ")
    assert lines[0].startswith(head), lines[0]
    return lines[0][len(head) :]
