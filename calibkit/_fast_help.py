"""``calibkit --help`` (``-h``, and ``calibkit`` alone) and ``--version`` (``-V``), fast.

Typer's help costs the import of Typer and of the whole command line interface (every command
module, pydantic, Rich's Markdown renderer): several times Python's own start-up. The top-level
help needs none of that: it is the usage line, the app's description, four options and the list
of commands, all in :mod:`calibkit._commands`. This module draws them with Rich, in the panels
and styles of Typer's help (the same console settings, highlighter and tables), so the page
looks like every ``calibkit COMMAND --help``.

It is the one top-level help, not a copy: :class:`calibkit.cli.app.CalibkitGroup` prints this
same page when Typer is asked for it (``calibkit --debug --help``, tests through Typer's runner),
so nothing depends on which Typer or Rich release draws it. ``tests/cli/test_fast_help.py``
checks it against the Typer app and against Typer's own rendering of the same help.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # (typing is not imported: `calibkit --version` needs none of it)
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping, Sequence
    from typing import IO, Any

    from rich.console import Console

#: Exit status of ``calibkit`` alone: the help, as for a usage error (Typer's, too).
EXIT_NO_ARGS = 2

# Typer's help styles and highlighter (typer.rich_utils), so this page looks like the commands'
# own help: options in bold cyan, short ones in bold green, types in bold yellow.
_THEME = {"option": "bold cyan", "switch": "bold green", "types": "bold yellow", "usage": "yellow"}
_HIGHLIGHTS = [
    r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])",
    r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
    r"(?P<types>\<[^\>]+\>)",
    r"(?P<usage>Usage: )",
]


class _Fill:
    """A table cell that measures as wide as the space it is given, as Typer's option help does
    (a Rich ``Columns``), so that the help, not the option names, takes the spare width."""

    def __init__(self, renderable: Any) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield self.renderable


def console(environ: Mapping[str, str] | None = None, file: IO[str] | None = None) -> Console:
    """A Rich console set up as Typer sets up the one for its help.

    Typer reads the same variables: ``TERMINAL_WIDTH`` (the width), ``FORCE_COLOR``,
    ``PY_COLORS`` and ``GITHUB_ACTIONS`` (colour even when not on a terminal) and
    ``_TYPER_FORCE_DISABLE_TERMINAL`` (never); Rich itself reads ``COLUMNS``, ``NO_COLOR``,
    ``TERM`` and the others it documents. It writes on ``file``, by default ``sys.stdout``
    at the time of each print.
    """
    from rich.console import Console
    from rich.highlighter import RegexHighlighter
    from rich.theme import Theme

    environ = os.environ if environ is None else environ

    class _Options(RegexHighlighter):
        highlights = _HIGHLIGHTS

    width = environ.get("TERMINAL_WIDTH")
    force: bool | None = None
    if environ.get("GITHUB_ACTIONS") or environ.get("FORCE_COLOR") or environ.get("PY_COLORS"):
        force = True
    if environ.get("_TYPER_FORCE_DISABLE_TERMINAL"):
        force = False
    return Console(
        theme=Theme(_THEME),
        highlighter=_Options(),
        color_system="auto",
        force_terminal=force,
        width=int(width) if width and width.isdigit() else None,
        file=file,
    )


def print_help(out: Console | None = None) -> None:
    """Print the top-level help on ``out`` (default: :func:`console`)."""
    from rich.align import Align
    from rich.padding import Padding
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from calibkit._commands import APP_HELP, COMMANDS, OPTIONS, USAGE

    out = console() if out is None else out
    highlight = out.highlighter

    def table(**kwargs: Any) -> Table:
        return Table(
            show_header=False, expand=True, box=None, pad_edge=False, padding=(0, 1), **kwargs
        )

    out.print(Padding(highlight(Text("Usage: " + USAGE)), 1), style="bold")
    out.print(Padding(Align(highlight(Text(APP_HELP)), pad=False), (0, 1, 1, 1)))

    # Typer's columns: long name, short name, secondary long and short names (--x/--no-x) and
    # type (all empty here: the options are flags), then the help
    options = table(highlight=True)
    for long, short, help_ in OPTIONS:
        names = (highlight(Text(long)), highlight(Text(short)), Text(), Text(), Text())
        options.add_row(*names, _Fill(highlight(Text(help_))))
    out.print(Panel(options, border_style="dim", title="Options", title_align="left"))

    commands = table(highlight=False)
    commands.add_column(style="bold cyan", no_wrap=True, width=max(len(c[0]) for c in COMMANDS))
    commands.add_column(ratio=10)
    for name, _, summary in COMMANDS:
        commands.add_row(Text(name), highlight(Text(summary)))
    out.print(Panel(commands, border_style="dim", title="Commands", title_align="left"))


def print_if_fast(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> bool:
    """Print the top-level help or the version when the command line asks for nothing else.

    Returns ``False`` (printing nothing) whenever Typer should handle the command line; raises
    :class:`SystemExit` for ``calibkit`` alone (the help, exit status 2, as Typer does) and when
    the reader of the output has gone (exit 1, quietly, as Typer does).
    """
    args = list(argv)
    if sys.stdout is None or args not in ([], ["--help"], ["-h"], ["--version"], ["-V"]):
        return False  # (stdout closed: Typer deals with it)
    try:
        if args in (["--version"], ["-V"]):
            from calibkit._version import __version__

            sys.stdout.write(f"calibkit {__version__}\n")
        else:
            print_help(console(environ))
            if args:  # Typer then prints the text of the help it drew itself: an empty line
                sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the reader has gone: exit 1 quietly, as Typer does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit does not fail again
        raise SystemExit(1) from None
    if not args:
        raise SystemExit(EXIT_NO_ARGS)
    return True
