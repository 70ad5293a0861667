"""`calibkit teacher`: what teachers pass on at each temperature (entropy, top-1 mass and the
equivalent smoothing gamma(T) of Müller et al. 2019), side by side."""

from pathlib import Path
from typing import Annotated, Any

import typer

from calibkit.cli._common import (
    ChunkRows,
    InputOpt,
    LabelsFromCounts,
    LabelsKey,
    LengthNormalize,
    LengthNormalizeOpt,
    LogitsKey,
    ParseConfidence,
    ProbsKey,
    parse_named,
    parse_number_list,
    read_options,
    reports_errors,
    stdout,
    wrote,
)
from calibkit.cli.app import app

#: The help of `calibkit teacher --help`; its first paragraph is the summary in
#: `calibkit --help` (calibkit/_commands.py lists it, tests/cli/test_fast_help.py checks).
HELP = (
    "Teacher diagnostics over T: mean entropy, top-1 mass and equivalent smoothing gamma(T) of "
    "softmax(z / T), for each teacher (Müller et al. 2019)."
)

#: The temperatures when ``--temperatures`` is not given.
DEFAULT_TEMPERATURES = "1,2,3,4,6,8"


@app.command("teacher", help=HELP)
@reports_errors
def teacher_command(
    teachers: Annotated[
        list[str],
        typer.Argument(
            metavar="NAME=TEACHER",
            help="Teacher predictions as NAME=PATH (or PATH, named by its stem).",
        ),
    ],
    temperatures: Annotated[
        str,
        typer.Option(
            "--temperatures",
            help="Temperatures: a list 1,2,4 or a grid START:STOP:STEP (ends included).",
        ),
    ] = DEFAULT_TEMPERATURES,
    alpha: Annotated[
        list[str] | None,
        typer.Option(
            "--ls-alpha",
            metavar="<NAME=ALPHA>",
            help="NAME=ALPHA: the LS alpha teacher NAME was trained with, shown next to its "
            "gamma (repeatable).",
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write the gamma/entropy-vs-T figure (.png/.svg/.pdf)."),
    ] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="Write a tidy CSV table.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    logits_key: LogitsKey = None,
    probs_key: ProbsKey = None,
    labels_key: LabelsKey = None,
    parse_confidence: ParseConfidence = False,
    length_normalize: LengthNormalizeOpt = LengthNormalize.none,
    input_kind: InputOpt = None,
    labels_from_counts: LabelsFromCounts = False,
    chunk_rows: ChunkRows = None,
) -> None:
    from calibkit.diagnostics.distillation import teacher_curves
    from calibkit.errors import UsageError
    from calibkit.io.atomic import atomic_write_text, check_output_path
    from calibkit.loaders import read_predictions
    from calibkit.report.summary_json import dumps
    from calibkit.report.teacher import teacher_csv, teacher_json, teacher_tables

    named = parse_named(teachers)
    alphas = _alphas(alpha or [], [n for n, _ in named])
    inputs = [p for _, p in named]
    if plot is not None and csv is not None and plot.resolve() == csv.resolve():
        raise UsageError(f"--csv and --plot both name {csv}; give them different files")
    if plot is not None:
        from calibkit.plotting.save import check_figure_path

        check_output_path(check_figure_path(plot), inputs)
    if csv is not None:
        check_output_path(csv, inputs)
    grid = parse_temperatures(temperatures)
    options = read_options(
        logits_key,
        probs_key,
        labels_key,
        input_kind,
        labels_from_counts,
        parse_confidence=parse_confidence,
        length_normalize=length_normalize,
    )
    sources = {name: read_predictions(p, options) for name, p in named}
    curves = teacher_curves(sources, grid, chunk_rows=chunk_rows)
    if csv is not None:
        atomic_write_text(csv, teacher_csv(curves), inputs=inputs)
        wrote(csv)
    if plot is not None:
        from calibkit.plotting.save import save_figure
        from calibkit.plotting.teacher import plot_teacher

        save_figure(plot_teacher(curves, alphas=alphas), plot, inputs=inputs)
        wrote(plot)
    if as_json:
        typer.echo(dumps(teacher_json(curves, alphas)), nl=False)
    else:
        stdout().print(teacher_tables(curves, alphas))


def parse_temperatures(spec: str) -> Any:
    """``--temperatures``: ``START:STOP:STEP`` (:func:`calibkit.calibrators.grid.parse_grid`,
    exact decimals, ends included) or a comma-separated list of numbers > 0."""
    import math

    from calibkit.calibrators.grid import parse_grid
    from calibkit.errors import UsageError

    if ":" in spec:
        return list(parse_grid(spec).values)
    values = parse_number_list(
        spec, "--temperatures", expected="comma-separated numbers or START:STOP:STEP"
    )
    bad = next((v for v in values if not (math.isfinite(v) and v > 0)), None)
    if bad is not None:
        raise UsageError(f"--temperatures must be finite numbers > 0; got {bad:g}")
    return values


def _alphas(specs: list[str], names: list[str]) -> dict[str, float]:
    """``--ls-alpha NAME=ALPHA`` -> ``{name: alpha}``; every NAME must be a teacher, each ALPHA a
    number in [0, 1]."""
    import math

    from calibkit.errors import UsageError

    out: dict[str, float] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        if not sep or not name:
            raise UsageError(f"--ls-alpha {spec!r}: expected NAME=ALPHA, e.g. ls10=0.1")
        if name not in names:
            raise UsageError(f"--ls-alpha names {name!r}, which is not one of the teachers")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (0.0 <= value <= 1.0):
            raise UsageError(f"--ls-alpha {spec!r}: ALPHA must be a number in [0, 1]")
        if name in out:
            raise UsageError(f"--ls-alpha gives {name!r} more than once")
        out[name] = value
    return out
