"""`calibkit fit`: fit any registered calibration method on validation predictions."""

from pathlib import Path
from typing import Annotated, Any

import typer

from calibkit.cli._common import (
    BinningChoice,
    BinningOpt,
    Bins,
    ChunkRows,
    Device,
    EngineOpt,
    InputOpt,
    LabelsKey,
    LengthNormalize,
    LengthNormalizeOpt,
    LogitsKey,
    ParseConfidence,
    ProbsKey,
    SchedulerOpt,
    read_options,
    reports_errors,
    stdout,
    uses_engine,
    wrote,
)
from calibkit.cli.app import app

#: The help of `calibkit fit --help`; its first paragraph is the summary in `calibkit --help`
#: (calibkit/_commands.py lists it, tests/cli/test_fast_help.py checks).
HELP = (
    "Fit a calibration method (--method, default temperature) on validation data; metrics "
    "before and after."
)


def parse_params(specs: list[str] | None) -> dict[str, str]:
    """``NAME=VALUE`` texts of ``--param`` -> ``{name: text}``: a spec without ``=`` or a name
    given twice is a :class:`~calibkit.errors.UsageError`."""
    from calibkit.errors import Param, UsageError

    out: dict[str, str] = {}
    for spec in specs or []:
        name, sep, value = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--param expects NAME=VALUE; got {spec!r}")
        if name in out:
            raise UsageError(Param("params").entry(name) + ": given twice")
        out[name] = value.strip()
    return out


@app.command("fit", help=HELP)
@reports_errors
@uses_engine
def fit_command(
    val: Annotated[
        Path, typer.Argument(metavar="VAL", help="Validation predictions to fit the method on.")
    ],
    method: Annotated[
        str,
        typer.Option(
            "--method",
            metavar="<METHOD>",
            help="The calibration method (temperature, ets, ...; see the README).",
        ),
    ] = "temperature",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="<NAME=VALUE>",
            help="A fit option of the method, NAME=VALUE (repeatable).",
        ),
    ] = None,
    eval_path: Annotated[
        Path | None, typer.Option("--eval", help="Also report before/after on these predictions.")
    ] = None,
    bins: Bins = 15,
    binning: BinningOpt = BinningChoice.width,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the calibrator JSON here (atomically).")
    ] = None,
    logits_key: LogitsKey = None,
    probs_key: ProbsKey = None,
    labels_key: LabelsKey = None,
    parse_confidence: ParseConfidence = False,
    length_normalize: LengthNormalizeOpt = LengthNormalize.none,
    input_kind: InputOpt = None,
    chunk_rows: ChunkRows = None,
    engine: EngineOpt = None,
    scheduler: SchedulerOpt = None,
    device: Device = None,
) -> None:
    from calibkit.calibrators import registry
    from calibkit.calibrators.base import read_hyperparameters
    from calibkit.calibrators.grid import calibrator_json
    from calibkit.calibrators.report import fit_and_report
    from calibkit.io.atomic import atomic_write_text, check_output_path
    from calibkit.loaders import read_predictions
    from calibkit.report.summary_json import dumps
    from calibkit.sources.checks import check_class_count

    cls = registry.get(method)  # an unknown method names the known ones
    options = read_hyperparameters(cls, parse_params(param))  # refused before any read
    inputs = [val] + ([eval_path] if eval_path else [])
    if out is not None:
        check_output_path(out, inputs)
    read = read_options(
        logits_key,
        probs_key,
        labels_key,
        input_kind,
        parse_confidence=parse_confidence,
        length_normalize=length_normalize,
    )
    val_preds = read_predictions(val, read)
    eval_preds = read_predictions(eval_path, read) if eval_path else None
    if eval_preds is not None:
        check_class_count(str(eval_path), eval_preds.n_classes, val, val_preds.n_classes)
    calibrator, report = fit_and_report(
        val_preds,
        eval_preds,
        method=method,
        n_bins=bins,
        binning=binning.value,
        chunk_rows=chunk_rows,
        device=device,
        generic=True,
        **options,
    )
    if out is not None:
        atomic_write_text(out, calibrator_json(calibrator), inputs=inputs)
        wrote(out)
    if as_json:
        typer.echo(dumps(report), nl=False)
    else:
        print_report(report)


#: The rows of the before/after tables: (key, label).
_ROWS = (
    ("ece", "ECE"),
    ("classwise_ece", "class-wise ECE"),
    ("mce", "MCE"),
    ("nll", "NLL"),
    ("brier", "Brier"),
)


def fit_line(report: dict[str, Any]) -> str:
    """How the fit ended, in one line: the method's ``fit`` (a FitOutcome), else the
    temperature fit's own keys, else that it was fitted."""
    fit = report.get("fit")
    where = f"fitted on {report.get('fitted_on')}, N = {report['n']}"
    if isinstance(fit, dict):
        state = "converged" if fit.get("converged") else "NOT converged"
        grad = fit.get("gradient_norm")
        grad_text = "n/a" if grad is None else f"{grad:.1e}"
        solver = f" ({fit['solver']})" if fit.get("solver") else ""
        return (
            f"{where}; {state}{solver}: {fit.get('iterations')} iterations, "
            f"{fit.get('passes')} passes, gradient {grad_text}, objective "
            f"{fit.get('objective'):.6g}"
        )
    if "converged" in report and report.get("passes") is not None:
        state = "converged" if report["converged"] else "NOT converged"
        grad = report.get("gradient")
        grad_text = "" if grad is None else f", gradient {abs(grad):.1e}"
        clamp = f", clamped at {report['clamped']}" if report.get("clamped") else ""
        return f"{where}; {state} in {report['passes']} passes{grad_text}{clamp}"
    return where


def print_report(report: dict[str, Any]) -> None:
    """The table of ``calibkit fit``: the method, its parameters, how the fit ended, then the
    metrics before and after on each data set, the accuracy row marked when it moved."""
    from rich.table import Table

    from calibkit.report.tables import fmt

    console = stdout()
    symbols = report.get("symbols") or {}
    params = ", ".join(f"{symbols.get(k, k)} = {v:.6g}" for k, v in report["parameters"].items())
    console.print(f"{report['title']} ({report['method']}): {params}")
    console.print(fit_line(report))
    options = report.get("options") or {}
    if options:
        console.print("options: " + ", ".join(f"{k} = {v}" for k, v in options.items()))
    moved: list[str] = []
    for title, part in (("validation", report), ("evaluation", report.get("eval"))):
        if not part:
            continue
        console.print(f"{title} input: {part['input']} ({part['input_reason']})")
        t = Table(title=f"{title}: {part['source']}", title_justify="left", header_style="bold")
        for col in ("metric", "before", "after", "change"):
            t.add_column(col, justify="right" if col != "metric" else "left")
        for key, label in _ROWS:
            before, after = part.get(f"{key}_before"), part.get(f"{key}_after")
            if before is None or after is None:
                continue
            t.add_row(label, fmt(before), fmt(after), f"{after - before:+.4f}")
        acc, acc_after = part["accuracy"], part["accuracy_after"]
        if part["accuracy_changed"]:
            moved.append(f"{title} ({part['source']}): {acc:.4f} -> {acc_after:.4f}")
            note = f"{acc_after - acc:+.4f}  CHANGED"
            label = "accuracy (!)"
        else:
            note = "unchanged"
            label = "accuracy"
        t.add_row(label, fmt(acc), fmt(acc_after), note)
        console.print(t)
    why = (
        f"{report['title']} can change the argmax"
        if report["changes_argmax"]
        else f"{report['title']} keeps the argmax in exact arithmetic; some calibrated "
        "probabilities tie"
    )
    for line in moved:
        console.print(f"warning: the calibrated predictions change the accuracy on {line} ({why})")
