"""Every command is documented: help text in the CLI and a section in the README."""

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from calibkit.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(
    c.name or c.callback.__name__ for c in app.registered_commands if c.callback is not None
)


def test_commands_are_registered() -> None:
    assert "ece" in COMMANDS


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_help_and_readme_section(name: str) -> None:
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    assert command.help and len(command.help) > 20
    assert f"### calibkit {name}\n" in README


def test_readme_quick_start_commands_are_the_ci_ones() -> None:
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pytest -q" in README
    assert ci.rstrip().splitlines()[-1] == "python -m pytest -q"


def test_changelog_has_unreleased_section() -> None:
    text = (Path(__file__).resolve().parents[1] / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in text
