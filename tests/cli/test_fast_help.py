"""`calibkit --help` without Typer or Rich must print exactly what Typer would print.

The fast path (calibkit/_fast_help.py) lays the top-level help out itself; these tests render
the same help through Typer and Rich at every width from 1 to 400 columns, plain and coloured,
and compare them character by character (styles included), and check that the fast path steps
aside whenever it cannot guarantee that.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys

import pytest
import typer.rich_utils

from calibkit import _fast_help
from calibkit._version import __version__
from calibkit.cli import app

WIDTHS = range(1, _fast_help.MAX_WIDTH + 1)
VERIFIED = _fast_help.verified_versions()
needs_verified = pytest.mark.skipif(
    not VERIFIED,
    reason=f"fast help reproduces Typer {_fast_help.VERIFIED['typer']}x / Rich "
    f"{_fast_help.VERIFIED['rich']}x only; other releases get Typer's own help "
    "(test_other_typer_or_rich_releases_get_typers_help)",
)
NARROWEST = len("Usage: " + _fast_help.USAGE) + 2  # below this Rich wraps the usage line
SGR = re.compile(r"\x1b\[([0-9;]*)m")


def _typer_help(monkeypatch: pytest.MonkeyPatch, width: int, color: bool) -> str:
    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", width)
    monkeypatch.setattr(typer.rich_utils, "FORCE_TERMINAL", color)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        app(["--help"], prog_name="calibkit", standalone_mode=False)
    return out.getvalue()


def _styled_chars(text: str) -> list[tuple[str, frozenset[str]]]:
    """Each visible character with the set of SGR attributes in force (how a terminal sees it)."""
    chars: list[tuple[str, frozenset[str]]] = []
    style: frozenset[str] = frozenset()
    pos = 0
    for match in SGR.finditer(text):
        chars += [(ch, style) for ch in text[pos : match.start()]]
        codes = [c for c in match.group(1).split(";") if c] or ["0"]
        style = frozenset() if codes == ["0"] else style | frozenset(codes)
        pos = match.end()
    chars += [(ch, style) for ch in text[pos:]]
    return chars


@pytest.fixture
def rich_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("NO_COLOR", "COLORTERM", "TERM", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@needs_verified
def test_plain_help_is_byte_identical_to_typer_at_every_width(rich_env) -> None:
    served = 0
    for width in WIDTHS:
        fast = _fast_help.render(width, color=False)
        if width >= NARROWEST:
            assert fast is not None, width
        if fast is None:
            continue
        assert fast == _typer_help(rich_env, width, color=False), f"width {width}"
        served += 1
    assert served == len(WIDTHS) - NARROWEST + 1


@needs_verified
def test_colour_help_shows_the_same_styled_characters_as_typer(rich_env) -> None:
    for width in WIDTHS:
        fast = _fast_help.render(width, color=True)
        if fast is None:
            assert width < NARROWEST
            continue
        ref = _typer_help(rich_env, width, color=True)
        assert "\x1b[" in ref and "\x1b[" in fast
        assert _styled_chars(fast) == _styled_chars(ref), f"width {width}"
        assert SGR.sub("", fast) == _fast_help.render(width, color=False)


def test_command_texts_are_the_typer_commands() -> None:
    import typer.main

    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    assert list(_fast_help.COMMAND_HELP) == sorted(commands)
    for name, command in commands.items():
        assert command.help == _fast_help.COMMAND_HELP[name]
    assert group.help == _fast_help.APP_HELP


class _Stream(io.StringIO):
    def __init__(self, tty: bool, encoding: str = "utf-8") -> None:
        super().__init__()
        self._tty = tty
        self._encoding = encoding

    def isatty(self) -> bool:
        return self._tty

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding


@needs_verified
@pytest.mark.parametrize("tty", [False, True])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_fast_path_prints_the_rendering_for_the_terminal(monkeypatch, tty, flag) -> None:
    stream = _Stream(tty)
    monkeypatch.setattr(sys, "stdout", stream)
    assert _fast_help.print_if_fast([flag], environ={"COLUMNS": "97"})
    assert stream.getvalue() == _fast_help.render(97, color=tty)


@pytest.mark.parametrize(
    "environ",
    [{name: "1"} for name in _fast_help._RICH_ENV]
    + [{"TERM": "dumb"}, {"TERM": "unknown"}, {"COLUMNS": str(NARROWEST - 1)}]
    + [{"COLUMNS": str(_fast_help.MAX_WIDTH + 1)}],
    ids=lambda env: ",".join(f"{k}={v}" for k, v in env.items()),
)
def test_fast_path_steps_aside_when_rich_would_draw_differently(monkeypatch, environ) -> None:
    stream = _Stream(tty=True)
    monkeypatch.setattr(sys, "stdout", stream)
    assert not _fast_help.print_if_fast(["--help"], environ=environ)
    assert stream.getvalue() == ""


def test_fast_path_steps_aside_for_other_streams_and_command_lines(monkeypatch) -> None:
    ascii_stream = _Stream(tty=False, encoding="ascii")
    monkeypatch.setattr(sys, "stdout", ascii_stream)
    assert not _fast_help.print_if_fast(["--help"], environ={})
    monkeypatch.setattr(sys, "stdout", _Stream(tty=False))
    for argv in ([], ["ece", "--help"], ["--debug", "--help"], ["--help", "ece"], ["--versio"]):
        assert not _fast_help.print_if_fast(argv, environ={}), argv
    assert sys.stdout.getvalue() == ""
    monkeypatch.setattr(sys, "platform", "win32")
    assert not _fast_help.print_if_fast(["--help"], environ={})


def _program() -> list[str]:
    exe = shutil.which("calibkit")
    return [exe] if exe else [sys.executable, "-m", "calibkit"]


def _clean_env(**extra: str) -> dict[str, str]:
    drop = {*_fast_help._RICH_ENV, "TERM", "PYTHONSTARTUP"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env


@needs_verified
def test_the_real_program_prints_typers_help(rich_env) -> None:
    proc = subprocess.run(
        [*_program(), "--help"], capture_output=True, text=True, env=_clean_env(COLUMNS="100")
    )
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout == _typer_help(rich_env, 100, color=False)


def test_the_real_program_finds_the_width_rich_would_use() -> None:
    """No $COLUMNS and no terminal: both must settle on the same default width."""
    env = _clean_env()
    env.pop("COLUMNS", None)
    typer_code = (
        "import sys; sys.argv = ['calibkit', '--help']; from calibkit.cli import main; main()"
    )
    run = {"capture_output": True, "text": True, "env": env, "stdin": subprocess.DEVNULL}
    fast = subprocess.run([*_program(), "--help"], **run)  # type: ignore[call-overload]
    slow = subprocess.run([sys.executable, "-c", typer_code], **run)  # type: ignore[call-overload]
    assert fast.returncode == slow.returncode == 0
    assert fast.stdout == slow.stdout
    assert fast.stdout.splitlines()[0] == " " * 80


def test_the_real_program_falls_back_to_typer_for_forced_colour(rich_env) -> None:
    proc = subprocess.run(
        [*_program(), "--help"],
        capture_output=True,
        text=True,
        env=_clean_env(COLUMNS="100", FORCE_COLOR="1"),
    )
    assert proc.returncode == 0
    assert _styled_chars(proc.stdout) == _styled_chars(_typer_help(rich_env, 100, color=True))


@needs_verified
@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["--version"]])
def test_help_and_version_import_neither_typer_nor_rich(argv) -> None:
    code = (
        "import sys\n"
        f"sys.argv = ['calibkit', *{argv!r}]\n"
        "from calibkit._entry import main\n"
        "main()\n"
        "heavy = ('typer', 'rich', 'click', 'numpy')\n"
        "sys.stderr.write(','.join(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env()
    )
    assert proc.returncode == 0
    assert proc.stderr == ""
    if argv == ["--version"]:
        assert proc.stdout == f"calibkit {__version__}\n"


_CLOSED_PIPE = (
    "import subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
    "p.stdout.close()\n"
    "err = p.stderr.read()\n"
    "print(p.wait(), len(err))\n"
)
_TYPER_MAIN = "import sys; from calibkit.cli import main; sys.argv[0] = 'calibkit'; main()"


@needs_verified
@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_a_closed_pipe_ends_as_it_does_with_typer(flag: str) -> None:
    """The reader left before anything was written: exit 1, nothing on stderr, like Typer."""
    env = _clean_env(COLUMNS="100")

    def outcome(cmd: list[str]) -> str:
        run = [sys.executable, "-c", _CLOSED_PIPE, *cmd]
        return subprocess.run(run, capture_output=True, text=True, env=env).stdout.strip()

    fast = outcome([*_program(), flag])
    typer_ = outcome([sys.executable, "-c", _TYPER_MAIN, flag])
    assert fast == typer_ == "1 0"


def test_version_with_stdout_closed_is_left_to_typer(monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdout", None)
    assert not _fast_help.print_if_fast(["--version"], environ={})
    assert not _fast_help.print_if_fast(["--help"], environ={})


def test_version_matches_typer() -> None:
    from typer.testing import CliRunner

    assert CliRunner().invoke(app, ["--version"]).output == f"calibkit {__version__}\n"


def test_this_environment_reads_the_installed_versions() -> None:
    assert _fast_help._dist_version("typer") is not None
    assert _fast_help._dist_version("rich") is not None
    assert _fast_help._dist_version("no_such_module_here") is None


@pytest.mark.parametrize("module", ["typer", "rich"])
def test_other_typer_or_rich_releases_get_typers_help(monkeypatch, module) -> None:
    real = _fast_help._dist_version
    monkeypatch.setattr(
        _fast_help, "_dist_version", lambda m: "999.0.0" if m == module else real(m)
    )
    monkeypatch.setattr(sys, "stdout", _Stream(tty=False))
    assert not _fast_help.print_if_fast(["--help"], environ={"COLUMNS": "100"})
    assert sys.stdout.getvalue() == ""
