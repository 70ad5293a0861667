"""`calibkit --help` comes from the one list of commands, and says what Typer's help says.

The top-level help (calibkit/_fast_help.py) is drawn from calibkit/_commands.py without
importing Typer or the command modules. These tests hold on every Typer and Rich release:

* the list and the Typer app agree: the same commands, in the same order, each defined in the
  module the list names, each summary the first paragraph of that command's help; the same
  description, usage line and options;
* Typer's own rendering of the app's help (TyperGroup.format_help, which calibkit's group
  overrides) shows the same usage, description, options and commands, with the same texts;
* the page is what the real program prints, for `--help`, `-h` and `calibkit` alone, and what
  Typer prints when it is asked (`calibkit --debug --help`);
* `--help` and `--version` load neither Typer nor numpy nor the command modules.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import shutil
import subprocess
import sys
from typing import Any

import pytest
import typer.core
import typer.main
from typer.testing import CliRunner

from calibkit import _commands, _fast_help
from calibkit._version import __version__
from calibkit.cli import app

GROUP = typer.main.get_command(app)
BORDER = "│"


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TERMINAL_WIDTH", "FORCE_COLOR", "PY_COLORS", "GITHUB_ACTIONS", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)


def _ctx() -> Any:
    return GROUP.make_context("calibkit", ["--help"], resilient_parsing=True)


def _page(width: int, *, color: bool = False) -> str:
    """The top-level help as calibkit/_fast_help.py draws it at ``width`` columns."""
    environ = {"TERMINAL_WIDTH": str(width), **({"FORCE_COLOR": "1"} if color else {})}
    out = io.StringIO()
    _fast_help.print_help(_fast_help.console(environ, file=out))
    return out.getvalue()


def _typers_own_help(monkeypatch: pytest.MonkeyPatch, width: int) -> str:
    """The help of the app as Typer itself renders it (its format_help, not calibkit's)."""
    monkeypatch.setenv("COLUMNS", str(width))
    buffer = io.StringIO()
    ctx = _ctx()
    with contextlib.redirect_stdout(buffer):
        typer.core.TyperGroup.format_help(GROUP, ctx, ctx.make_formatter())  # type: ignore[arg-type]
    return buffer.getvalue()


def _panels(text: str) -> dict[str, list[list[str]]]:
    """Rows of each panel (title -> rows of cells), read off a help page drawn without wraps."""
    panels: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for line in text.splitlines():
        if line.startswith("╭"):
            title = line.strip("╭╮─ ").strip()
            current = panels.setdefault(title, [])
        elif line.startswith("╰"):
            current = None
        elif current is not None and line.startswith(BORDER):
            cells = re.split(r"\s{2,}", line.strip(BORDER).strip())
            current.append(cells)
    return panels


def _head(text: str) -> list[str]:
    """The lines before the first panel (usage and description), stripped, without blanks."""
    head = text.split("╭", 1)[0]
    return [line.strip() for line in head.splitlines() if line.strip()]


# the list and the Typer app ------------------------------------------------------------------


def test_the_list_names_exactly_the_apps_commands_in_its_order() -> None:
    names = [name for name, _, _ in _commands.COMMANDS]
    assert len(set(names)) == len(names)
    assert sorted(GROUP.commands) == sorted(names)  # type: ignore[attr-defined]
    assert GROUP.list_commands(_ctx()) == names


@pytest.mark.parametrize(("name", "module", "summary"), _commands.COMMANDS)
def test_each_command_lives_in_its_module_with_its_help(
    name: str, module: str, summary: str
) -> None:
    mod = importlib.import_module(f"calibkit.cli.{module}")
    command = GROUP.commands[name]  # type: ignore[attr-defined]
    assert command.callback.__module__ == mod.__name__
    assert command.help == mod.HELP
    assert mod.HELP.split("\n\n", 1)[0] == summary
    assert "\n" not in summary and summary == summary.strip()


def test_the_top_level_texts_are_the_apps() -> None:
    ctx = _ctx()
    assert GROUP.help == _commands.APP_HELP
    assert GROUP.get_usage(ctx) == "Usage: " + _commands.USAGE
    shown = []
    for param in GROUP.get_params(ctx):
        long = ",".join(o for o in param.opts if o.startswith("--"))
        short = ",".join(o for o in param.opts if not o.startswith("--"))
        assert not param.secondary_opts
        shown.append((long, short, param.help))  # type: ignore[attr-defined]
    assert tuple(shown) == _commands.OPTIONS


# the page and Typer's own rendering ------------------------------------------------------------


def test_the_page_says_what_typers_own_help_says(monkeypatch: pytest.MonkeyPatch) -> None:
    ours = _page(250)
    typers = _typers_own_help(monkeypatch, 250)
    assert "Commands" in typers and "Options" in typers  # (Typer's layout, whatever release)
    assert _head(ours) == _head(typers)
    assert _panels(ours) == _panels(typers)


def test_the_page_shows_every_option_and_command_with_its_text() -> None:
    panels = _panels(_page(250))
    assert list(panels) == ["Options", "Commands"]
    assert panels["Options"] == [
        [long, short, help_] if short else [long, help_] for long, short, help_ in _commands.OPTIONS
    ]
    assert panels["Commands"] == [[name, summary] for name, _, summary in _commands.COMMANDS]
    assert _head(_page(250)) == ["Usage: " + _commands.USAGE, _commands.APP_HELP]


@pytest.mark.parametrize("width", [40, 60, 80, 100, 120])
def test_at_usual_widths_no_word_is_lost(width: int) -> None:
    """Wrapped, not cut: every word of every text is on the page, and every line fits."""
    page = _page(width)
    assert {len(line) for line in page.splitlines()} == {width}
    words = page.split()
    for text in [_commands.APP_HELP, *(s for _, _, s in _commands.COMMANDS)]:
        for word in text.split():
            assert word in words, (width, word)
    for long, short, help_ in _commands.OPTIONS:
        assert long in words and (not short or short in words)
        assert all(word in words for word in help_.split())


def _styles(page: str, text: str) -> set[frozenset[str]]:
    """The SGR attributes in force on each character of the first ``text`` on ``page``."""
    chars: list[tuple[str, frozenset[str]]] = []
    style: frozenset[str] = frozenset()
    for piece in re.split(r"(\x1b\[[0-9;]*m)", page):
        if piece.startswith("\x1b["):
            codes = [c for c in piece[2:-1].split(";") if c] or ["0"]
            style = frozenset() if codes == ["0"] else style | frozenset(codes)
        else:
            chars += [(ch, style) for ch in piece]
    start = "".join(ch for ch, _ in chars).index(text)
    return {st for _, st in chars[start : start + len(text)]}


def test_colour_comes_with_typers_styles() -> None:
    page = _page(100, color=True)
    assert re.sub(r"\x1b\[[0-9;]*m", "", page) == _page(100)
    assert _styles(page, "Usage: ") == {frozenset({"1", "33"})}  # bold, yellow
    assert _styles(page, "--debug") == {frozenset({"1", "36"})}  # an option: bold cyan
    assert _styles(page, "-V") == {frozenset({"1", "32"})}  # a short option: bold green
    assert _styles(page, "apply-temp") == {frozenset({"1", "36"})}  # a command: bold cyan
    assert _styles(page, "╭─") == {frozenset({"2"})}  # dim borders


def test_typer_prints_this_page_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The group's help is this page (a marker printed by it shows up), not a second layout."""
    monkeypatch.setattr(_fast_help, "print_help", lambda out=None: print("<the page>"))
    result = CliRunner().invoke(app, ["--debug", "--help"], prog_name="calibkit")
    assert result.exit_code == 0
    assert result.output.startswith("<the page>\n")


@pytest.mark.parametrize(("argv", "code"), [(["--help"], 0), (["-h"], 0), ([], 2)])
def test_typers_runner_gets_the_page_too(argv: list[str], code: int) -> None:
    env = {"COLUMNS": "100", "NO_COLOR": "1"}
    result = CliRunner().invoke(app, argv, prog_name="calibkit", env=env)
    assert result.exit_code == code
    assert result.output == _page(100) + ("\n" if argv else "")


# the real program -----------------------------------------------------------------------------


def _program() -> list[str]:
    exe = shutil.which("calibkit")
    return [exe] if exe else [sys.executable, "-m", "calibkit"]


def _env(**extra: str) -> dict[str, str]:
    drop = {"TERMINAL_WIDTH", "FORCE_COLOR", "PY_COLORS", "GITHUB_ACTIONS", "NO_COLOR", "TERM"}
    env = {k: v for k, v in os.environ.items() if k not in drop and k != "PYTHONSTARTUP"}
    env.update(extra)
    return env


_TYPER_MAIN = "import sys; from calibkit.cli import main; sys.argv[0] = 'calibkit'; main()"


@pytest.mark.parametrize(("argv", "code"), [(["--help"], 0), (["-h"], 0), ([], 2)])
def test_the_program_prints_the_page(argv: list[str], code: int) -> None:
    run = {"capture_output": True, "text": True, "env": _env(COLUMNS="100")}
    fast = subprocess.run([*_program(), *argv], **run)  # type: ignore[call-overload]
    assert (fast.returncode, fast.stderr) == (code, "")
    assert fast.stdout == _page(100) + ("\n" if argv else "")
    typer_ = subprocess.run([sys.executable, "-c", _TYPER_MAIN, *argv], **run)  # type: ignore[call-overload]
    assert (typer_.returncode, typer_.stdout, typer_.stderr) == (code, fast.stdout, "")


def test_the_program_and_typer_agree_on_the_default_width() -> None:
    """No $COLUMNS and no terminal: both settle on Rich's default, 80 columns."""
    env = _env()
    env.pop("COLUMNS", None)
    run = {"capture_output": True, "text": True, "env": env, "stdin": subprocess.DEVNULL}
    fast = subprocess.run([*_program(), "--help"], **run)  # type: ignore[call-overload]
    slow = subprocess.run([sys.executable, "-c", _TYPER_MAIN, "--debug", "--help"], **run)  # type: ignore[call-overload]
    assert fast.returncode == slow.returncode == 0
    assert fast.stdout == slow.stdout
    assert fast.stdout.splitlines()[0] == " " * 80


def test_forced_colour_is_typers_choice_too() -> None:
    run = {"capture_output": True, "text": True, "env": _env(COLUMNS="100", FORCE_COLOR="1")}
    fast = subprocess.run([*_program(), "--help"], **run)  # type: ignore[call-overload]
    slow = subprocess.run([sys.executable, "-c", _TYPER_MAIN, "--debug", "--help"], **run)  # type: ignore[call-overload]
    assert "\x1b[" in fast.stdout
    assert fast.stdout == slow.stdout


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["--version"], ["-V"]])
def test_help_and_version_load_neither_typer_nor_the_commands(argv: list[str]) -> None:
    code = (
        "import sys\n"
        f"sys.argv = ['calibkit', *{argv!r}]\n"
        "from calibkit._entry import main\n"
        "main()\n"
        "heavy = ('typer', 'click', 'pydantic', 'numpy', 'calibkit.cli', 'rich.markdown')\n"
        "sys.stderr.write(','.join(m for m in heavy if m in sys.modules))\n"
        "sys.stderr.write('|rich' if 'rich' in sys.modules else '')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(COLUMNS="100")
    )
    assert proc.returncode == 0
    if argv[0] in ("--version", "-V"):
        assert proc.stderr == ""  # not even Rich
        assert proc.stdout == f"calibkit {__version__}\n"
    else:
        assert proc.stderr == "|rich"
        assert proc.stdout == _page(100) + "\n"


_CLOSED_PIPE = (
    "import subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
    "p.stdout.close()\n"
    "err = p.stderr.read()\n"
    "print(p.wait(), len(err))\n"
)


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_a_closed_pipe_ends_as_it_does_with_typer(flag: str) -> None:
    """The reader left before anything was written: exit 1, nothing on stderr, like Typer."""
    env = _env(COLUMNS="100")

    def outcome(cmd: list[str]) -> str:
        run = [sys.executable, "-c", _CLOSED_PIPE, *cmd]
        return subprocess.run(run, capture_output=True, text=True, env=env).stdout.strip()

    fast = outcome([*_program(), flag])
    typer_ = outcome([sys.executable, "-c", _TYPER_MAIN, "--quiet", flag])
    assert fast == typer_ == "1 0"


# what the fast path leaves to Typer --------------------------------------------------------------


@pytest.mark.parametrize(
    "argv", [["ece", "--help"], ["--debug", "--help"], ["--help", "ece"], ["--versio"], ["ece"]]
)
def test_other_command_lines_are_left_to_typer(monkeypatch, argv: list[str]) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    assert not _fast_help.print_if_fast(argv, environ={})
    assert stream.getvalue() == ""


def test_with_stdout_closed_typer_decides(monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdout", None)
    for argv in (["--version"], ["--help"], []):
        assert not _fast_help.print_if_fast(argv, environ={})


def test_version_matches_typer() -> None:
    assert CliRunner().invoke(app, ["--version"]).output == f"calibkit {__version__}\n"
