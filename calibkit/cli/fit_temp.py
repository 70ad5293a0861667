"""`calibkit fit-temp`: fit temperature scaling on validation predictions."""

from pathlib import Path
from typing import Annotated, Any

import typer

from calibkit._fast_help import COMMAND_HELP
from calibkit.cli._common import (
    BinningChoice,
    BinningOpt,
    Bins,
    ChunkRows,
    Device,
    InputOpt,
    LabelsKey,
    LogitsKey,
    ProbsKey,
    read_options,
    reports_errors,
    stdout,
)
from calibkit.cli.app import app


@app.command("fit-temp", help=COMMAND_HELP["fit-temp"])
@reports_errors
def fit_temp_command(
    val: Annotated[Path, typer.Argument(help="Validation predictions to fit T on.")],
    eval_path: Annotated[
        Path | None, typer.Option("--eval", help="Also report before/after on these predictions.")
    ] = None,
    bins: Bins = 15,
    binning: BinningOpt = BinningChoice.width,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the calibrator JSON here (atomically).")
    ] = None,
    t_min: Annotated[float, typer.Option("--t-min", min=0, help="Smallest T allowed.")] = 1e-4,
    t_max: Annotated[float, typer.Option("--t-max", help="Largest T allowed.")] = 1e4,
    logits_key: LogitsKey = None,
    probs_key: ProbsKey = None,
    labels_key: LabelsKey = None,
    input_kind: InputOpt = None,
    chunk_rows: ChunkRows = None,
    device: Device = None,
) -> None:
    from calibkit.calibrators.report import fit_and_report
    from calibkit.errors import InputError
    from calibkit.loaders import read_predictions
    from calibkit.report.atomic import atomic_write_text, check_output_path
    from calibkit.report.summary_json import dumps

    inputs = [val] + ([eval_path] if eval_path else [])
    if out is not None:
        check_output_path(out, inputs)
    options = read_options(logits_key, probs_key, labels_key, input_kind)
    val_preds = read_predictions(val, options)
    eval_preds = read_predictions(eval_path, options) if eval_path else None
    if eval_preds is not None and eval_preds.n_classes != val_preds.n_classes:
        raise InputError(
            str(eval_path),
            f"has {eval_preds.n_classes} classes, but {val} has {val_preds.n_classes}",
        )
    scaler, report = fit_and_report(
        val_preds,
        eval_preds,
        t_min=t_min,
        t_max=t_max,
        n_bins=bins,
        binning=binning.value,
        chunk_rows=chunk_rows,
        device=device,
    )
    if out is not None:
        atomic_write_text(out, scaler.to_json(), inputs=inputs)
    if as_json:
        typer.echo(dumps(report), nl=False)
    else:
        _print(report)


def _print(report: dict[str, Any]) -> None:
    from rich.table import Table

    from calibkit.report.tables import fmt

    console = stdout()
    state = "converged" if report["converged"] else "NOT converged"
    clamp = f", clamped at {report['clamped']}" if report["clamped"] else ""
    console.print(
        f"T = {report['temperature']:.6g}  (fitted on {report['fitted_on']}, N = {report['n']}; "
        f"{state} in {report['passes']} passes, |dNLL/d(1/T)| = {abs(report['gradient']):.1e}"
        f"{clamp})"
    )
    for title, part in (("validation", report), ("evaluation", report.get("eval"))):
        if not part:
            continue
        console.print(f"{title} input: {part['input']} ({part['input_reason']})")
        t = Table(title=f"{title}: {part['source']}", title_justify="left", header_style="bold")
        for col in ("metric", "T = 1", f"T = {report['temperature']:.4g}", "change"):
            t.add_column(col, justify="right" if col != "metric" else "left")
        for m in ("nll", "ece", "mce", "brier"):
            before, after = part[f"{m}_before"], part[f"{m}_after"]
            t.add_row(
                m.upper() if m != "brier" else "Brier",
                fmt(before),
                fmt(after),
                f"{after - before:+.4f}",
            )
        t.add_row(
            "accuracy",
            fmt(part["accuracy"]),
            fmt(part["accuracy"]),
            "unchanged (TS keeps the argmax)",
        )
        console.print(t)
