"""``calibkit --help`` and ``calibkit --version`` (``-h``, ``-V``) without importing Typer or Rich.

Typer renders help with Rich, and importing Rich's console, markdown and table modules costs
more than the whole start-up budget of ``calibkit --help``. The top-level help is small and
fixed, so this module holds its texts (the command modules take their help from here, so there
is one source) and lays them out exactly as Typer's Rich help does: the same usage block,
panels, column widths, word wrapping and, on a colour terminal, the same styles.

It is a fast path, never a second behaviour. It declines, and the entry point lets Typer draw
the help, whenever its layout is not known to be identical to Typer's: Typer or Rich releases
other than the ones it is tested against (:data:`VERIFIED`), a terminal too narrow for the
usage line (under 45 columns, where Rich would squeeze or fold columns) or wider than the 400
columns the tests cover, a non-UTF-8 stream, Windows, or any environment variable that changes
how Rich draws. ``tests/cli/test_fast_help.py`` compares the two outputs character by
character, styles included, at every width from 1 to 400 columns.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

APP_HELP = "Measure and fix the calibration of classifiers from saved logits or probabilities."
USAGE = "calibkit [OPTIONS] COMMAND [ARGS]..."

DEBUG_HELP = "Show Python tracebacks instead of one-line errors."
QUIET_HELP = "Show no progress bar (one shows on a terminal for work over a second)."
VERSION_HELP = "Print the version."

#: Help of each command, in the order ``calibkit --help`` lists them (alphabetical, as Typer
#: sorts them). The first paragraph is the one-line summary in the top-level list; the whole
#: text opens ``calibkit COMMAND --help``.
COMMAND_HELP: dict[str, str] = {
    "apply-temp": (
        "Divide logits by T (probabilities: softmax(log p / T)) and write them, same format."
    ),
    "check": (
        "Gate calibration in CI: absolute limits and significant regressions vs a baseline."
        "\n\nExit 0 when every check passes, 1 when one fails, 2 for bad usage or input."
    ),
    "compare": (
        "Compare models: accuracy, ECE, MCE, NLL, Brier, before and after temperature scaling."
    ),
    "completion": (
        "Print the script that lets your shell complete calibkit's commands and options."
        '\n\nbash: add the line  eval "$(calibkit completion bash)"  to ~/.bashrc'
        '\nzsh: add the line  eval "$(calibkit completion zsh)"  to ~/.zshrc, after compinit'
        "\nfish: calibkit completion fish > ~/.config/fish/completions/calibkit.fish"
        "\nPowerShell: add  calibkit completion pwsh | Out-String | Invoke-Expression  to $PROFILE"
    ),
    "diagram": (
        "Reliability diagrams (Guo et al. 2017): accuracy per confidence bin, gap, histogram."
    ),
    "ece": "Expected calibration error, MCE, RMSCE, NLL, Brier and accuracy of saved predictions.",
    "fit-temp": (
        "Fit a temperature T on validation data: the NLL optimum (exact Newton on 1/T), or the "
        "lowest ECE or NLL on a grid."
    ),
    "sweep-temp": (
        "Sweep temperatures: ECE, NLL and Brier of softmax(z / T) for each model and each T."
    ),
}

#: (long name, short name, help) of the top-level options, in Typer's order. They are flags,
#: so the type column is empty (calibkit.cli.app.tidy_params).
OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--debug", "", DEBUG_HELP),
    ("--quiet", "", QUIET_HELP),
    ("--version", "-V", VERSION_HELP),
    ("--help", "-h", "Show this message and exit."),
)

#: The widest terminal the tests compare with Typer's rendering; wider ones go to Typer.
MAX_WIDTH = 400

#: The Typer and Rich releases whose layout this module reproduces, as version prefixes
#: (``tests/cli/test_fast_help.py`` compares the two there); with any other release installed,
#: or when the installed versions cannot be read cheaply, Typer draws the help itself.
VERIFIED = {"typer": "0.29.", "rich": "15."}

# Environment variables that change Typer's or Rich's output (colour, width, terminal
# detection); when any is set, Typer renders the help itself.
_RICH_ENV = (
    "TERMINAL_WIDTH",
    "_TYPER_FORCE_DISABLE_TERMINAL",
    "TYPER_USE_RICH",
    "FORCE_COLOR",
    "PY_COLORS",
    "GITHUB_ACTIONS",
    "NO_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "JUPYTER_COLUMNS",
    "JUPYTER_LINES",
    "DATABRICKS_RUNTIME_VERSION",
)

# SGR codes of the styles Typer's help uses.
_BOLD = "1"
_DIM = "2"
_USAGE = "1;33"  # bold (the usage block) + yellow "Usage: "
_OPTION = "1;36"  # bold cyan: long options and command names
_SWITCH = "1;32"  # bold green: short options
_TYPE = "1;33"  # bold yellow metavar ...
_TYPE_SEP = "1;2;33"  # ... with dim brackets

Segment = tuple[str, str]  # (text, SGR codes; "" for unstyled)
Line = list[Segment]


def _wrap(text: str, width: int) -> list[str] | None:
    """Greedy word wrap (Rich's rule); ``None`` when a word is wider than ``width``."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        if len(word) > width:
            return None
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = word
    lines.append(current)
    return lines


def _ratio_reduce(
    total: int, ratios: list[int], maximums: list[int], values: list[int]
) -> list[int]:
    ratios = [ratio if maximum else 0 for ratio, maximum in zip(ratios, maximums, strict=True)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    remaining = total
    result = []
    for ratio, maximum, value in zip(ratios, maximums, values, strict=True):
        if ratio and total_ratio > 0:
            cut = min(maximum, round(ratio * remaining / total_ratio))
            result.append(value - cut)
            remaining -= cut
            total_ratio -= ratio
        else:
            result.append(value)
    return result


def _ratio_distribute(total: int, ratios: list[int]) -> list[int]:
    total_ratio = sum(ratios)
    remaining = total
    result = []
    for ratio in ratios:
        share = -(-ratio * remaining // total_ratio) if total_ratio > 0 else remaining
        result.append(share)
        total_ratio -= ratio
        remaining -= share
    return result


def _measure(text: str, pad: int, max_width: int) -> tuple[int, int]:
    """Rich's (minimum, maximum) width of a padded text cell given ``max_width``."""
    if max_width < 1:
        return 0, 0
    if max_width - pad < 1:
        low = high = max_width
    else:
        inner = max_width - pad
        longest_word = max((len(word) for word in text.split()), default=len(text))
        low, high = min(longest_word, len(text)), len(text)
        low, high = min(low, inner), min(high, inner)
        if high < 1:
            low = high = 0
        low, high = min(low + pad, max_width), min(high + pad, max_width)
    if high < 1:
        return 0, 0
    return min(low, high), high


def _column_widths(
    rows: Sequence[Sequence[str]], pads: Sequence[int], max_width: int
) -> list[int] | None:
    """Rich's expanding table layout for all-wrappable text columns (``None``: not reproduced)."""
    n = len(pads)

    def column_max(j: int, width: int) -> int:
        if j == n - 1:  # Typer's help cells measure as wide as the space they are given
            return max(width, 0)
        return max(_measure(row[j], pads[j], width)[1] for row in rows)

    widths = [column_max(j, max_width) or 1 for j in range(n)]
    if sum(widths) > max_width:
        excess = sum(widths) - max_width
        while excess > 0:
            largest = max(widths)
            second = max((w for w in widths if w != largest), default=0)
            if not largest - second:
                return None
            ratios = [1 if w == largest else 0 for w in widths]
            widths = _ratio_reduce(excess, ratios, [min(excess, largest - second)] * n, widths)
            excess = sum(widths) - max_width
        widths = [column_max(j, widths[j]) for j in range(n)]
    if sum(widths) < max_width:
        extra = _ratio_distribute(max_width - sum(widths), widths)
        widths = [w + e for w, e in zip(widths, extra, strict=True)]
    return widths


def _styled_option(text: str, style: str) -> Line:
    return [(text, style)] if text else []


def _styled_type(text: str) -> Line:
    if not text:
        return []
    return [("<", _TYPE_SEP), (text[1:-1], _TYPE), (">", _TYPE_SEP)]


def _table_lines(
    cells: Sequence[Sequence[tuple[str, Line | None]]],
    pads: Sequence[tuple[int, int]],
    widths: Sequence[int],
    fill_styles: Sequence[str],
) -> list[Line] | None:
    """Rows of cells: (plain text, its styled segments or None = wrap plain text)."""
    out: list[Line] = []
    for row in cells:
        columns: list[list[Line]] = []
        for (text, styled), (left, right), width, fill in zip(
            row, pads, widths, fill_styles, strict=True
        ):
            inner = width - left - right
            if styled is not None:
                if len(text) > inner:
                    return None
                lines: list[Line] = [styled]
                lengths = [len(text)]
            else:
                wrapped = _wrap(text, inner) if text else [""]
                if wrapped is None:
                    return None
                lines = [[(line, "")] if line else [] for line in wrapped]
                lengths = [len(line) for line in wrapped]
            column = []
            for line, length in zip(lines, lengths, strict=True):
                column.append([(" " * left, fill), *line, (" " * (inner - length + right), fill)])
            columns.append(column)
        height = max(len(column) for column in columns)
        for i in range(height):
            line_out: Line = []
            for column, width, fill in zip(columns, widths, fill_styles, strict=True):
                line_out.extend(column[i] if i < len(column) else [(" " * width, fill)])
            out.append(line_out)
    return out


def _panel(title: str, body: list[Line], width: int) -> list[Line]:
    top = [("╭─", _DIM), (title, _DIM), ("─" * (width - 4 - len(title)), _DIM), ("─╮", _DIM)]
    lines: list[Line] = [top]
    for line in body:
        lines.append([("│", _DIM), (" ", ""), *line, (" ", ""), ("│", _DIM)])
    lines.append([("╰" + "─" * (width - 2) + "╯", _DIM)])
    return lines


def layout(width: int) -> list[Line] | None:
    """The help as styled lines at ``width`` columns, or ``None`` where not reproduced."""
    text_width = width - 2
    usage = "Usage: " + USAGE
    description = _wrap(APP_HELP, text_width)
    if len(usage) > text_width or description is None:
        return None
    lines: list[Line] = [
        [(" " * width, _BOLD)],
        [
            (" ", _BOLD),
            ("Usage: ", _USAGE),
            (USAGE, _BOLD),
            (" " * (text_width - len(usage) + 1), _BOLD),
        ],
        [(" " * width, _BOLD)],
    ]
    lines += [[(" " + line + " " * (text_width - len(line) + 1), "")] for line in description]
    lines.append([(" " * width, "")])

    inner = width - 4
    # Typer's options table: long, short, secondary long, secondary short, type, help
    option_rows = [(long, short, "", "", "", help_) for long, short, help_ in OPTIONS]
    pads = ((0, 1), (1, 1), (1, 1), (1, 1), (1, 1), (1, 0))  # (left, right); no outer edges
    widths = _column_widths(option_rows, [left + right for left, right in pads], inner)
    if widths is None:
        return None
    option_cells = [
        [
            (long, _styled_option(long, _OPTION)),
            (short, _styled_option(short, _SWITCH)),
            ("", []),
            ("", []),
            (kind, _styled_type(kind)),
            (help_, None),
        ]
        for long, short, _, _, kind, help_ in option_rows
    ]
    body = _table_lines(option_cells, pads, widths, [""] * 6)
    if body is None:
        return None
    lines += _panel(" Options ", body, width)

    name_width = max(len(name) for name in COMMAND_HELP) + 1
    summary_width = inner - name_width
    if summary_width < 2:
        return None
    command_cells = [
        [(name, [(name, _OPTION)]), (help_.split("\n\n")[0], None)]
        for name, help_ in COMMAND_HELP.items()
    ]
    body = _table_lines(command_cells, ((0, 1), (1, 0)), (name_width, summary_width), (_OPTION, ""))
    if body is None:
        return None
    lines += _panel(" Commands ", body, width)
    lines.append([])
    return lines


def render(width: int, color: bool) -> str | None:
    """The help text as Typer would print it, with ANSI styles when ``color``."""
    lines = layout(width)
    if lines is None:
        return None
    out = []
    for line in lines:
        if color:
            out.append(
                "".join(f"\x1b[{sgr}m{text}\x1b[0m" if sgr else text for text, sgr in line if text)
            )
        else:
            out.append("".join(text for text, _ in line))
    return "\n".join(out) + "\n"


def _terminal_width(environ: Mapping[str, str]) -> int:
    """The width Rich uses: $COLUMNS, else the first terminal among fds 0-2, else 80."""
    columns = environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        return int(columns)
    for fd in (0, 1, 2):
        try:
            size = os.get_terminal_size(fd)
        except (AttributeError, ValueError, OSError):
            continue
        return size.columns or 80
    return 80


def _dist_version(module: str) -> str | None:
    """The version of the installed distribution of ``module`` (without importing it), or None.

    ``importlib.metadata`` would cost as much as the whole fast path; the ``*.dist-info``
    folder beside the package says the same for a normal install.
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    site = os.path.dirname(os.path.dirname(spec.origin))
    try:
        names = os.listdir(site)
    except OSError:
        return None
    prefix, suffix = module + "-", ".dist-info"
    found = [
        n[len(prefix) : -len(suffix)] for n in names if n.startswith(prefix) and n.endswith(suffix)
    ]
    return found[0] if len(found) == 1 else None


def verified_versions() -> bool:
    """Whether the installed Typer and Rich are releases this module is tested against."""
    for module, prefix in VERIFIED.items():
        version = _dist_version(module)
        if version is None or not version.startswith(prefix):
            return False
    return True


def print_if_fast(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> bool:
    """Print the top-level help or version when that needs neither Typer nor Rich.

    Returns ``False`` (printing nothing) whenever Typer should handle the command line.
    """
    if list(argv) in (["--version"], ["-V"]):
        from calibkit._version import __version__

        if sys.stdout is None:  # stdout closed: let Typer deal with it
            return False
        _emit(sys.stdout, f"calibkit {__version__}\n")
        return True
    if list(argv) not in (["--help"], ["-h"]):
        return False
    environ = os.environ if environ is None else environ
    stream = sys.stdout
    if stream is None:  # stdout closed: let Typer report it
        return False
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower()
    term = environ.get("TERM", "").strip().lower()
    if (
        sys.platform == "win32"
        or not encoding.startswith("utf")
        or term in ("dumb", "unknown")
        or any(name in environ for name in _RICH_ENV)
    ):
        return False
    width = _terminal_width(environ)
    if width > MAX_WIDTH or not verified_versions():
        return False
    isatty = getattr(stream, "isatty", None)
    text = render(width, color=bool(isatty and isatty()))
    if text is None:
        return False
    _emit(stream, text)
    return True


def _emit(stream: TextIO, text: str) -> None:
    """Write ``text``; if the reader has gone (a closed pipe), exit 1 quietly, as Typer does."""
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())  # so the flush at exit does not fail again
        raise SystemExit(1) from None
