"""`calibkit sweep-temp`: ECE, NLL and Brier across a grid of temperatures."""

from pathlib import Path
from typing import Annotated, Any

import typer

from calibkit.cli._common import (
    BinningChoice,
    BinningOpt,
    Bins,
    ChunkRows,
    EngineOpt,
    InputOpt,
    LabelsFromCounts,
    LabelsKey,
    LengthNormalize,
    LengthNormalizeOpt,
    LogitsKey,
    ParseConfidence,
    ProbsKey,
    SchedulerOpt,
    parse_models_and_val,
    parse_number_list,
    read_options,
    reports_errors,
    stdout,
    uses_engine,
    wrote,
)
from calibkit.cli.app import app
from calibkit.limits import MAX_SWEEP_CELLS, MAX_TEMPERATURES

#: The help of `calibkit sweep-temp --help`; its first paragraph is the summary in
#: `calibkit --help` (calibkit/_commands.py lists it, tests/cli/test_fast_help.py checks).
HELP = "Sweep temperatures: ECE, NLL and Brier of softmax(z / T) for each model and each T."


@app.command("sweep-temp", help=HELP)
@reports_errors
@uses_engine
def sweep_temp_command(
    models: Annotated[
        list[str],
        typer.Argument(
            metavar="NAME=PRED", help="Predictions as NAME=PATH (or PATH, named by its stem)."
        ),
    ],
    t_min: Annotated[float, typer.Option("--t-min", help="Smallest temperature.")] = 0.5,
    t_max: Annotated[float, typer.Option("--t-max", help="Largest temperature.")] = 3.0,
    steps: Annotated[
        int,
        typer.Option("--steps", min=1, max=MAX_TEMPERATURES, help="Grid points, ends included."),
    ] = 51,
    temps: Annotated[
        str | None, typer.Option("--temps", help="Explicit temperatures, e.g. 0.5,1,1.5.")
    ] = None,
    val: Annotated[
        list[str] | None,
        typer.Option(
            "--val",
            metavar="<NAME=VAL>",
            help="NAME=VAL: also fit T on VAL and mark it (repeatable).",
        ),
    ] = None,
    bins: Bins = 15,
    binning: BinningOpt = BinningChoice.width,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write ECE/NLL-vs-T figure (.png/.svg/.pdf).")
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
    engine: EngineOpt = None,
    scheduler: SchedulerOpt = None,
) -> None:
    from calibkit.calibrators.sweep_report import run_sweeps, sweep_csv, sweep_json
    from calibkit.errors import UsageError
    from calibkit.io.atomic import atomic_write_text, check_output_path
    from calibkit.loaders import read_predictions
    from calibkit.report.summary_json import dumps

    named, named_val = parse_models_and_val(models, val)
    inputs = [p for _, p in named] + [p for _, p in named_val]
    if plot is not None and csv is not None and plot.resolve() == csv.resolve():
        raise UsageError(f"--csv and --plot both name {csv}; give them different files")
    if plot is not None:
        from calibkit.plotting.save import check_figure_path

        check_output_path(check_figure_path(plot), inputs)
    if csv is not None:
        check_output_path(csv, inputs)
    grid = _grid(temps, t_min, t_max, steps)
    if len(grid) * bins > MAX_SWEEP_CELLS:
        raise UsageError(
            f"{len(grid)} temperatures x {bins} bins is {len(grid) * bins:.2g} per-bin sums per "
            f"model, above the limit of {MAX_SWEEP_CELLS:.0e}; use fewer temperatures or bins"
        )
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
    vals = {name: read_predictions(p, options) for name, p in named_val}
    results = run_sweeps(
        sources, grid, val=vals, n_bins=bins, binning=binning.value, chunk_rows=chunk_rows
    )
    if csv is not None:
        atomic_write_text(csv, sweep_csv(results), inputs=inputs)
        wrote(csv)
    if plot is not None:
        from calibkit.plotting.save import save_figure
        from calibkit.plotting.sweep import plot_sweep

        fitted = {r.sweep.name: r.fitted_temperature for r in results if r.fitted_temperature}
        save_figure(plot_sweep([r.sweep for r in results], fitted=fitted), plot, inputs=inputs)
        wrote(plot)
    if as_json:
        typer.echo(dumps(sweep_json(results)), nl=False)
    else:
        _print(results)


def _grid(temps: str | None, t_min: float, t_max: float, steps: int) -> Any:
    from calibkit.calibrators.sweep import temperature_grid

    if temps is None:
        return temperature_grid(t_min, t_max, steps)
    return parse_number_list(temps, "--temps")


def _print(results: list[Any]) -> None:
    from rich.table import Table

    from calibkit.report.tables import fmt

    sw0 = results[0].sweep
    t = Table(
        title=f"temperature sweep: {len(sw0.temperatures)} temperatures from "
        f"{sw0.temperatures.min():g} to {sw0.temperatures.max():g}; ECE with {sw0.n_bins} "
        f"{sw0.binning} bins",
        title_justify="left",
        header_style="bold",
    )
    t.add_column("")
    for r in results:
        t.add_column(r.sweep.name, justify="right")
    rows: list[tuple[str, list[str]]] = [
        ("N", [str(r.sweep.n) for r in results]),
        ("input", [r.input for r in results]),
        ("accuracy (any T)", [fmt(r.sweep.accuracy) for r in results]),
        ("ECE at T = 1", [fmt(r.at_one["ece"]) for r in results]),
        ("NLL at T = 1", [fmt(r.at_one["nll"]) for r in results]),
        ("lowest ECE on grid", [_best(r.sweep, "ece") for r in results]),
        ("lowest NLL on grid", [_best(r.sweep, "nll") for r in results]),
    ]
    if any(r.fitted_temperature for r in results):
        rows += [
            ("T fitted on --val", [_opt(r.fitted_temperature, "{:.4g}") for r in results]),
            ("ECE at fitted T", [fmt(r.at_fitted["ece"]) if r.at_fitted else "-" for r in results]),
            ("NLL at fitted T", [fmt(r.at_fitted["nll"]) if r.at_fitted else "-" for r in results]),
        ]
    for label, cells in rows:
        t.add_row(label, *cells)
    console = stdout()
    console.print(t)
    for r in results:
        console.print(f"{r.sweep.name} input: {r.input} ({r.input_reason})")


def _best(sweep: Any, metric: str) -> str:
    temp, value = sweep.best(metric)
    return f"{value:.4f} @ T={temp:.3g}"


def _opt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)
