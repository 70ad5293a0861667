"""What every command shares: error reporting, consoles and the input options.

Heavy modules (numpy, the library) are imported inside the commands, so ``calibkit --help``
stays fast.
"""

import functools
import os
import sys
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console

from calibkit.errors import CalibkitError, ExitStatus
from calibkit.limits import MAX_BINS, MAX_CHUNK_ROWS

F = TypeVar("F", bound=Callable[..., Any])


class Terminated(BaseException):
    """Raised by the SIGTERM handler, so ``finally`` blocks (temporary files) still run."""


#: stderr console: markup off so ``[brackets]`` in paths stay literal; long paths do not wrap.
stderr = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


def stdout() -> Console:
    """Console for results. Off a terminal (CI logs, pipes) lines may be long: tables are not
    squeezed to 80 columns there, and no colour codes are written."""
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=False, width=200, no_color=True)
    return console


class _State:
    debug = False
    quiet = False  # --quiet: no progress bar
    interrupt_reported = False  # set by the console script's SIGINT handler


state = _State()


#: The flag of each library parameter (:class:`calibkit.errors.Param`) that an error can name:
#: the library says ``n_bins must be ...``, the command line ``--bins must be ...``. The entries
#: of ``max_values`` / ``min_values`` with a flag of their own (``--max-ece``) come from the
#: metric table: see :func:`flags`.
FLAGS: dict[str, str] = {
    "alpha": "--alpha",
    "baseline": "--baseline",
    "bias_key": "--bias-key",
    "binary_mode": "--binary",
    "binning": "--binning",
    "bins": "--bins",
    "bootstrap": "--bootstrap",
    "ci": "--ci",
    "classes": "--classes",
    "coverage": "--coverage",
    "device": "--device",
    "engine": "--engine",
    "features_key": "--features-key",
    "folds": "--folds",
    "group_by": "--group-by",
    "group_min_rows": "--group-min-rows",
    "kind": "--input",
    "labels_from_counts": "--labels-from-counts",
    "labels_key": "--labels-key",
    "length_normalize": "--length-normalize",
    "logits_key": "--logits-key",
    "logits_precision": "--logits-precision",
    "max_groups": "--max-groups",
    "max_increase": "--max-increase",
    "max_values": "--max",
    "methods": "--method",
    "min_values": "--min",
    "n_bins": "--bins",
    "out": "--out",
    "params": "--param",
    "parse_confidence": "--parse-confidence",
    "per_class": "--per-class",
    "probs_key": "--probs-key",
    "scheduler": "--scheduler",
    "scores_key": "--logits-key or --probs-key",
    "seed": "--seed",
    "ts_on_test": "--ts-on-test",
    "unpaired": "--unpaired",
    "weight_key": "--weight-key",
    "weights": "--weights",
}


def flags() -> dict[str, str]:
    """:data:`FLAGS` and the flag of each built-in metric's own limit, from the metric table
    (``max_values[ece]`` -> ``--max-ece``, ..., ``min_values[accuracy]`` -> ``--min-accuracy``):
    the words in which the CLI prints a library error. A metric registered later has no flag of
    its own; its limit reads ``--max NAME``. (The table is read when an error is printed, so
    ``--help`` imports no metrics.)"""
    from calibkit.metrics import table

    own = {
        f"{m.limit}_values[{m.name}]": m.flag
        for m in table.metrics()
        if m.flag is not None and m.limit_key is not None and m.name in table.BUILTIN
    }  # a metric without a flag of its own reads --max NAME through FLAGS
    return {**FLAGS, **own}


def error_line(message: str) -> None:
    stderr.print(f"calibkit: error: {message}")


def warning_line(message: str) -> None:
    stderr.print(f"calibkit: warning: {message}")


def wrote(path: object, detail: str = "") -> None:
    """Say on stderr that a command wrote ``path``: ``calibkit: wrote FILE`` (with ``detail`` in
    parentheses after it). Every command that writes a file says so, once per file, after the
    file is in place; stdout (``--json``, tables) carries results only."""
    stderr.print(f"calibkit: wrote {path}" + (f" ({detail})" if detail else ""))


#: Where calibkit's own modules live: code in here is calibkit's.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def shows_warning(category: type[Warning], issuer: str) -> bool:
    """The rule for warnings raised while a command runs (``issuer``: the file of the code that
    raised it, whatever ``stacklevel`` it gave).

    Shown, each as one ``calibkit: warning: ...`` line: the warnings calibkit raises on purpose,
    i.e. a :class:`UserWarning` (:class:`~calibkit.errors.ConvergenceWarning` included) raised
    by calibkit's own code. Dropped: every other category (numpy's ``RuntimeWarning`` such as
    "overflow encountered in exp", ``DeprecationWarning``, ``FutureWarning``,
    ``ResourceWarning``, ...) and a ``UserWarning`` that another package raises. Those speak of a
    library's internals, not of the user's input; calibkit checks its results itself and says so
    when they cannot be trusted. ``calibkit --debug COMMAND`` shows every warning, as Python
    would.
    """
    return issubclass(category, UserWarning) and os.path.abspath(issuer).startswith(_PACKAGE_DIR)


def _issuer() -> str:
    """The file of the code that called ``warnings.warn`` (or, for a warning raised in C, such as
    numpy's floating-point warnings, the Python code that called into C)."""
    frame = sys._getframe(2)  # the caller of _show_warning: the warnings module
    while frame is not None and frame.f_code.co_filename == warnings.__file__:
        frame = frame.f_back  # type: ignore[assignment]
    return frame.f_code.co_filename if frame is not None else ""


def _show_warning(
    message: Any, category: Any, filename: str, lineno: int, *a: Any, **k: Any
) -> None:
    if state.debug:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno))
    elif shows_warning(category, _issuer()):
        warning_line(" ".join(str(message).split()))


def progress_bar() -> AbstractContextManager[object]:
    """A progress bar on stderr for long work, when stderr is a terminal and not ``--quiet``
    (:func:`calibkit.report.progress_bar.terminal_progress`; imported only then)."""
    if state.quiet or not getattr(sys.stderr, "isatty", lambda: False)():
        return nullcontext()
    from calibkit.report.progress_bar import terminal_progress

    return terminal_progress(stderr)


def reports_errors(command: F) -> F:
    """Turn calibkit errors into one stderr line and their exit code; Ctrl-C into 130."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings(), progress_bar():
            warnings.simplefilter("always")
            warnings.showwarning = _show_warning
            try:
                return command(*args, **kwargs)
            except CalibkitError as err:
                if state.debug:
                    raise
                error_line(err.render(flags()))
                raise typer.Exit(err.exit_code) from None
            except KeyboardInterrupt:
                if state.debug:
                    raise
                if not state.interrupt_reported:
                    stderr.print("calibkit: interrupted")
                raise typer.Exit(ExitStatus.INTERRUPTED) from None
            except Terminated:
                stderr.print("calibkit: terminated")
                raise typer.Exit(ExitStatus.TERMINATED) from None
            except MemoryError:
                if state.debug:
                    raise
                error_line("out of memory; try a smaller --chunk-rows or a parquet input")
                raise typer.Exit(ExitStatus.BAD_INPUT) from None
            except BrokenPipeError:
                # stdout closed early (`calibkit ece x.npz | head`): not an error of ours
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                raise typer.Exit(ExitStatus.OK) from None

    return wrapper  # type: ignore[return-value]


def usage_message(err: Exception) -> str:
    """One line, in calibkit's words, for a command-line usage error of Typer (Click) — a bad
    or missing value, an unknown option or command — ending with where to find help.

    >>> class NoSuchOption(Exception):
    ...     option_name, possibilities, ctx = "--bogus", ["--bins"], None
    >>> usage_message(NoSuchOption())
    'no such option --bogus (did you mean --bins?)'
    """
    kind = type(err).__name__
    param = getattr(err, "param", None)
    hint = getattr(err, "param_hint", None) or (param.get_error_hint() if param else None)
    name = hint.strip("'\"") if isinstance(hint, str) else None
    if kind == "NoSuchOption":
        text = f"no such option {getattr(err, 'option_name', '')}"
        possible = sorted(getattr(err, "possibilities", None) or ())
        if possible:
            text += f" (did you mean {_either(possible)}?)"
    elif kind == "MissingParameter":
        what = getattr(err, "param_type", None) or (param.param_type_name if param else "value")
        shown = name.upper() if what == "argument" and name else name
        text = f"missing {what} {shown}" if shown else f"missing {what}"
    elif name is not None:  # BadParameter: a value Typer could not convert or that is out of range
        text = f"{name} {_value_problem(err)}"
    else:
        message = getattr(err, "format_message", lambda: str(err))()
        text = " ".join(str(message).split()).rstrip(".")
        option = getattr(err, "option_name", None)
        if option and text.endswith("requires an argument"):
            text = f"{option} needs a value"
        text = text[:1].lower() + text[1:]
    ctx = getattr(err, "ctx", None)
    if ctx is not None:
        text += f"; see '{ctx.command_path} --help'"
    return text


def _value_problem(err: Exception) -> str:
    """What is wrong with an option's value, from the validation error Typer wraps."""
    cause: Any = err.__cause__
    details = cause.errors() if hasattr(cause, "errors") else None
    if not details:
        message = " ".join(str(getattr(err, "message", err)).split()).rstrip(".")
        return f": {message[:1].lower() + message[1:]}"
    first = details[0]
    kind, ctx, value = first.get("type", ""), first.get("ctx") or {}, first.get("input")
    got = f"; got {value!r}" if isinstance(value, str) else ""
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
              "less_than": "<"}[kind]  # fmt: skip
        bound = next(iter(ctx.values()), "?")
        return f"must be {op} {bound}; got {value}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be an integer{got}"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return f"must be a number{got}"
    message = " ".join(str(ctx.get("error") or first.get("msg", "")).split()).rstrip(".")
    _, sep, choices = message.partition(" is not one of ")  # Typer's "'x' is not one of 'a', 'b'"
    if sep:
        return f"must be {_either([c.strip().strip(chr(39)) for c in choices.split(',')])}{got}"
    return f": {message[:1].lower() + message[1:]}{got}"


def _either(names: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


class InputKind(str, Enum):
    logits = "logits"
    probs = "probs"


class LengthNormalize(str, Enum):
    none = "none"
    char = "char"
    token = "token"


class BinningChoice(str, Enum):
    width = "width"
    mass = "mass"


class BinaryChoice(str, Enum):
    top_label = "top-label"
    positive = "positive"


Bins = Annotated[int, typer.Option("--bins", min=1, max=MAX_BINS, help="Number of bins (M).")]
BinningOpt = Annotated[
    BinningChoice,
    typer.Option("--binning", help="width: equal-width bins (Guo et al.); mass: equal-count bins."),
]
BinaryOpt = Annotated[
    BinaryChoice,
    typer.Option(
        "--binary",
        help="For binary models: top-label confidence (default) or p(y=1) as in "
        "scikit-learn's calibration curve.",
    ),
]
LogitsKey = Annotated[
    str | None,
    typer.Option("--logits-key", help="Key/column (parquet: or column prefix) holding logits."),
]
ProbsKey = Annotated[
    str | None,
    typer.Option(
        "--probs-key", help="Key/column (parquet: or column prefix) holding probabilities."
    ),
]
LabelsKey = Annotated[str | None, typer.Option("--labels-key", help="Key/column holding labels.")]
LabelsFromCounts = Annotated[
    bool,
    typer.Option(
        "--labels-from-counts",
        help="The labels are (N, K) counts (annotator votes): divide each row by its sum.",
    ),
]
ParseConfidence = Annotated[
    bool,
    typer.Option(
        "--parse-confidence",
        help='Record files: read a confidence given as text ("80%", "0.8", "8/10").',
    ),
]
LengthNormalizeOpt = Annotated[
    LengthNormalize,
    typer.Option(
        "--length-normalize",
        help="lm-eval samples: divide each choice's log-likelihood by its length in "
        "characters (acc_norm) or tokens.",
    ),
]
InputOpt = Annotated[
    InputKind | None,
    typer.Option("--input", help="Say what the scores are, whatever their name."),
]
GroupByOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--group-by",
        metavar="COLUMN",
        help="Split by this column: a result per group (repeat, or a,b, for the cross product).",
    ),
]
ChunkRows = Annotated[
    int | None,
    typer.Option(
        "--chunk-rows",
        min=1,
        max=MAX_CHUNK_ROWS,
        help="Rows per chunk when streaming (default: auto).",
    ),
]


def read_options(
    logits_key: str | None,
    probs_key: str | None,
    labels_key: str | None,
    input_kind: InputKind | None,
    labels_from_counts: bool = False,
    *,
    parse_confidence: bool = False,
    length_normalize: LengthNormalize | str = "none",
) -> Any:
    """Build :class:`~calibkit.loaders.ReadOptions` from the shared flags."""
    from calibkit.errors import UsageError
    from calibkit.loaders import ReadOptions

    if logits_key and probs_key:
        raise UsageError("give --logits-key or --probs-key, not both")
    kind: Literal["logits", "probs"] | None = None  # --input: forced, whatever the values
    if input_kind is not None:
        kind = "logits" if input_kind is InputKind.logits else "probs"
    key_kind: Literal["logits", "probs"] | None = None  # a name, as a key's own name would be
    if logits_key or probs_key:
        key_kind = "logits" if logits_key else "probs"
    return ReadOptions(
        scores_key=logits_key or probs_key,
        labels_key=labels_key,
        kind=kind,
        key_kind=key_kind,
        labels_from_counts=labels_from_counts,
        parse_confidence=parse_confidence,
        length_normalize=getattr(length_normalize, "value", length_normalize),
    )


def parse_number_list(
    spec: str, flag: str, *, expected: str = "comma-separated numbers"
) -> list[float]:
    """``--temps 0.5,1,2`` / ``--temperatures 1,2,4``: the numbers of a comma-separated list,
    refused (one line naming ``flag``) when a part is not a number, when it is empty, and beyond
    :data:`~calibkit.limits.MAX_TEMPERATURES` values. Ranges are the caller's to check."""
    from calibkit.errors import UsageError
    from calibkit.limits import MAX_TEMPERATURES

    try:
        values = [float(t) for t in spec.split(",") if t.strip()]
    except ValueError:
        raise UsageError(f"{flag} must be {expected}; got {spec!r}") from None
    if not values:
        raise UsageError(f"{flag} is empty")
    if len(values) > MAX_TEMPERATURES:
        raise UsageError(f"{flag}: at most {MAX_TEMPERATURES} temperatures; got {len(values)}")
    return values


def parse_named(specs: list[str]) -> list[tuple[str, str]]:
    """``NAME=PATH`` (or a bare ``PATH``, named after its stem) -> ``[(name, path), ...]``.

    A ``NAME`` is everything before the first ``=`` when that part holds no path separator.
    """
    from pathlib import Path

    from calibkit.errors import UsageError

    out: list[tuple[str, str]] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or "/" in name or "\\" in name:
            name, path = Path(spec).stem, spec
        if not path:
            raise UsageError(f"{spec!r}: expected NAME=PATH")
        out.append((name, path))
    names = [n for n, _ in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        bare = any(
            spec == path for spec, (name, path) in zip(specs, out, strict=True) if name == dupes[0]
        )
        hint = "name them NAME=PATH" if bare else "give each model its own NAME"
        raise UsageError(f"model name {dupes[0]!r} is given more than once; {hint}")
    return out


Device = Annotated[
    str | None,
    typer.Option("--device", help="Compute with torch on this device (cuda, cuda:1, cpu)."),
]


class EngineChoice(str, Enum):
    local = "local"
    dask = "dask"


EngineOpt = Annotated[
    EngineChoice | None,
    typer.Option(
        "--engine",
        help="Where the passes run: local (this machine; default) or dask (a Dask cluster). "
        "CALIBKIT_ENGINE or \\[tool.calibkit] in pyproject.toml set it for every command.",
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        metavar="<address>",
        help="Dask scheduler to attach to (tcp://host:8786; or CALIBKIT_SCHEDULER); without "
        "it, --engine dask starts a local cluster of one worker process per core "
        "(CALIBKIT_DASK_WORKERS sets how many).",
    ),
]


def _quiet_cluster_exit() -> None:
    """distributed closes every cluster left open at exit (an ``atexit`` hook); the command
    closes its own, and a cluster interrupted while it started would make that hook print a
    traceback after ``calibkit: interrupted``."""
    import atexit

    try:
        from distributed.deploy import spec
    except ImportError:  # the engine says what to install
        return
    atexit.unregister(spec.close_clusters)


def uses_engine(command: F) -> F:
    """Run ``command`` on the engine its ``engine`` / ``scheduler`` options (and ``device``),
    the environment or ``[tool.calibkit]`` choose; goes under :func:`reports_errors`, so that
    an engine that cannot start is one error line too."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from calibkit.engine.settings import engine_scope as scope
        from calibkit.engine.settings import resolve_engine

        engine = kwargs.get("engine")
        settings = resolve_engine(None if engine is None else engine.value, kwargs.get("scheduler"))
        if settings.engine == "dask":  # this process owns its clusters
            _quiet_cluster_exit()
        with scope(settings, device=kwargs.get("device")):
            return command(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def parse_models_and_val(
    models: list[str], val: list[str] | None
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``NAME=PATH`` models and their ``--val NAME=VAL`` files; every VAL must name a model."""
    from calibkit.errors import UsageError

    named = parse_named(models)
    named_val = parse_named(val or [])
    unknown = sorted({n for n, _ in named_val} - {n for n, _ in named})
    if unknown:
        raise UsageError(f"--val names {unknown[0]!r}, which is not one of the models")
    return named, named_val
