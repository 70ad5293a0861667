"""Every command's help reads the same way: positional arguments by what to type (``PRED``,
``NAME=PRED...``), flags with no value shown, one option shown alike in every command; ``-V``
is ``--version``; ``calibkit completion SHELL`` prints a script that the CLI then answers."""

from __future__ import annotations

import io
import re
import sys
from collections import defaultdict

import pytest
import typer.main
from typer.testing import CliRunner

from calibkit import _fast_help
from calibkit._version import __version__
from calibkit.cli import app

GROUP = typer.main.get_command(app)
COMMANDS = sorted(GROUP.commands)  # type: ignore[attr-defined]
USAGE = {
    "apply": "calibkit apply [OPTIONS] PRED",
    "fit": "calibkit fit [OPTIONS] VAL",
    "apply-temp": "calibkit apply-temp [OPTIONS] PRED",
    "check": "calibkit check [OPTIONS] PRED",
    "compare": "calibkit compare [OPTIONS] NAME=PRED...",
    "completion": "calibkit completion [OPTIONS] SHELL",
    "diagram": "calibkit diagram [OPTIONS] NAME=PRED...",
    "ece": "calibkit ece [OPTIONS] PRED",
    "fit-temp": "calibkit fit-temp [OPTIONS] VAL",
    "mutual-info": "calibkit mutual-info [OPTIONS] NAME=LOGITS...",
    "penultimate": "calibkit penultimate [OPTIONS] NAME=LAYER...",
    "selective": "calibkit selective [OPTIONS] PRED",
    "sweep-temp": "calibkit sweep-temp [OPTIONS] NAME=PRED...",
    "soft-targets": "calibkit soft-targets [OPTIONS] TEACHER",
    "teacher": "calibkit teacher [OPTIONS] NAME=TEACHER...",
}


def _help(*args: str) -> str:
    result = CliRunner().invoke(
        app, [*args, "--help"], prog_name="calibkit", env={"COLUMNS": "200", "NO_COLOR": "1"}
    )
    assert result.exit_code == 0, result.output
    return result.output


def _usage_line(text: str) -> str:
    line = next(line for line in text.splitlines() if "Usage:" in line)
    return line.split("Usage:", 1)[1].strip()


def test_every_command_is_listed_here() -> None:
    assert sorted(USAGE) == COMMANDS


@pytest.mark.parametrize("name", COMMANDS)
def test_usage_names_arguments_by_what_to_type(name: str) -> None:
    text = _help(name)
    assert _usage_line(text) == USAGE[name]
    assert not re.search(r"\{[^}]*\}", text), "Typer's {name} placeholder"
    assert "list[" not in text


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_flags_show_no_value(name: str) -> None:
    text = _help(*([name] if name else []))
    assert "<bool>" not in text
    assert "--help" in text


def _option_displays() -> dict[str, set[str]]:
    """Each option's type column, as every command shows it."""
    shown: dict[str, set[str]] = defaultdict(set)
    for name in COMMANDS:
        command = GROUP.commands[name]  # type: ignore[attr-defined]
        ctx = command.make_context(name, ["--help"], resilient_parsing=True)
        for param in command.get_params(ctx):
            if param.param_type_name != "option":
                continue
            display = param.display_type_rich(ctx=ctx)
            for opt in param.opts:
                shown[opt].add(display or "")
    return shown


#: Options that mean different things in different commands (so their values differ too).
DIFFERENT_MEANINGS = {
    "--plot": ["", "<path>"],  # ece: a text chart (flag); sweep-temp: a figure
    "--method": ["<METHOD,...>", "<METHOD>"],  # compare: several methods; fit: one
    "--param": ["<NAME=VALUE>", "<[METHOD.]NAME=VALUE>"],  # compare: also one method's option
    "--classes": ["<A,B,C>", "<A,B>"],  # penultimate: three classes; mutual-info: two
}


def test_one_option_reads_the_same_in_every_command() -> None:
    shown = _option_displays()
    differing = {opt: sorted(d) for opt, d in shown.items() if len(d) > 1}
    assert differing == DIFFERENT_MEANINGS
    assert shown["--binning"] == {"<width|mass>"}  # check's --binning too
    assert shown["--json"] == {""}  # a flag: no value
    assert shown["--bins"] == {"<int>"}  # with or without bounds, which follow it
    assert shown["--val"] == {"<NAME=VAL>"}


def test_argument_metavars_are_what_the_user_types() -> None:
    for name in COMMANDS:
        command = GROUP.commands[name]  # type: ignore[attr-defined]
        arguments = [p for p in command.params if p.param_type_name == "argument"]
        assert arguments, name
        for argument in arguments:
            assert argument.metavar is not None, (name, argument.name)
            assert re.fullmatch(r"[A-Z]+(=[A-Z]+)?", argument.metavar), argument.metavar


def test_check_help_shows_binning_as_ece_does() -> None:
    row = re.compile(r"--binning\s+(\S+)")
    assert row.search(_help("check")).group(1) == row.search(_help("ece")).group(1)  # type: ignore[union-attr]


def test_missing_argument_is_named_as_in_the_usage() -> None:
    result = CliRunner().invoke(app, ["compare"], prog_name="calibkit")
    assert result.exit_code == 2
    assert result.stderr == (
        "calibkit: error: missing argument NAME=PRED...; see 'calibkit compare --help'\n"
    )


# -V ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_short_version_flag(flag: str) -> None:
    result = CliRunner().invoke(app, [flag], prog_name="calibkit")
    assert result.exit_code == 0 and result.output == f"calibkit {__version__}\n"


def test_short_version_flag_on_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    assert _fast_help.print_if_fast(["-V"], environ={})
    assert stream.getvalue() == f"calibkit {__version__}\n"


def test_top_level_help_lists_the_short_version_flag() -> None:
    text = _help()
    assert re.search(r"--version\s+-V\s+Print the version\.", text), text


# completion ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell", "pwsh"])
def test_completion_prints_a_script(shell: str) -> None:
    result = CliRunner().invoke(app, ["completion", shell], prog_name="calibkit")
    assert result.exit_code == 0, result.output
    assert "_CALIBKIT_COMPLETE=complete_" in result.output or (
        '_CALIBKIT_COMPLETE = "complete_' in result.output  # PowerShell's assignment
    )


def test_completion_refuses_other_shells() -> None:
    result = CliRunner().invoke(app, ["completion", "tcsh"], prog_name="calibkit")
    assert result.exit_code == 2
    assert result.stderr == (
        "calibkit: error: SHELL must be bash, zsh, fish, powershell or pwsh; got 'tcsh'; "
        "see 'calibkit completion --help'\n"
    )


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        ("calibkit ec", "1", ["ece"]),
        ("calibkit ece --bin", "2", ["--bins", "--binning", "--binary"]),
        ("calibkit ece x --binning ", "4", ["width", "mass"]),
    ],
)
def test_the_bash_script_is_answered(words: str, cword: str, expected: list[str]) -> None:
    """What the script's shell function asks (COMP_WORDS, COMP_CWORD) gets the completions."""
    env = {"_CALIBKIT_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword}
    result = CliRunner().invoke(app, [], prog_name="calibkit", env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == expected
