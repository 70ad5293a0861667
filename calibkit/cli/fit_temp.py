"""`calibkit fit-temp`: fit temperature scaling on validation predictions."""

from enum import Enum
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
    GroupByOpt,
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
    warning_line,
    wrote,
)
from calibkit.cli.app import app

#: The help of `calibkit fit-temp --help`; its first paragraph is the summary in
#: `calibkit --help` (calibkit/_commands.py lists it, tests/cli/test_fast_help.py checks).
HELP = (
    "Fit a temperature T on validation data: the NLL optimum (exact Newton on 1/T), or the "
    "lowest ECE or NLL on a grid."
)


class ObjectiveChoice(str, Enum):
    nll = "nll"
    ece = "ece"


@app.command("fit-temp", help=HELP)
@reports_errors
@uses_engine
def fit_temp_command(
    val: Annotated[Path, typer.Argument(metavar="VAL", help="Validation predictions to fit T on.")],
    eval_path: Annotated[
        Path | None, typer.Option("--eval", help="Also report before/after on these predictions.")
    ] = None,
    bins: Bins = 15,
    binning: BinningOpt = BinningChoice.width,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the calibrator JSON here (atomically).")
    ] = None,
    t_min: Annotated[
        float | None, typer.Option("--t-min", min=0, help="Smallest T allowed (default 1e-4).")
    ] = None,
    t_max: Annotated[
        float | None, typer.Option("--t-max", help="Largest T allowed (default 1e4).")
    ] = None,
    objective: Annotated[
        ObjectiveChoice,
        typer.Option(
            "--objective",
            help="What T minimises on VAL: nll (exact, or on --grid) or ece (needs --grid).",
        ),
    ] = ObjectiveChoice.nll,
    grid: Annotated[
        str | None,
        typer.Option(
            "--grid",
            metavar="<start:stop:step>",
            help="Keep the grid T (ends included) with the lowest --objective on VAL.",
        ),
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
    group_by: GroupByOpt = None,
) -> None:
    from calibkit.calibrators.base import Calibrator
    from calibkit.calibrators.grid import (
        calibrator_json,
        check_grid_cells,
        fit_temperature_grid,
        parse_grid,
    )
    from calibkit.calibrators.report import fit_and_report, scaling_report
    from calibkit.errors import UsageError
    from calibkit.io.atomic import atomic_write_text, check_output_path
    from calibkit.loaders import read_predictions
    from calibkit.report.summary_json import dumps
    from calibkit.sources.checks import check_class_count
    from calibkit.sources.groups import parse_group_by

    if grid is None and objective is ObjectiveChoice.ece:
        raise UsageError(
            "--objective ece needs --grid START:STOP:STEP (e.g. --grid 0.1:10:0.1): the ECE "
            "is not smooth in T, so it is minimised over a grid"
        )
    if grid is not None:
        exact_only = (("--t-min", t_min), ("--t-max", t_max), ("--device", device))
        given = [flag for flag, value in exact_only if value is not None]
        if given:
            raise UsageError(
                f"--grid sets the temperatures; {given[0]} applies to the exact fit only"
            )
    columns = parse_group_by(group_by)
    temperatures = parse_grid(grid) if grid is not None else None
    if temperatures is not None:
        check_grid_cells(temperatures, bins)  # refused before any read
    inputs = [val] + ([eval_path] if eval_path else [])
    if out is not None:
        check_output_path(out, inputs)
    options = read_options(
        logits_key,
        probs_key,
        labels_key,
        input_kind,
        parse_confidence=parse_confidence,
        length_normalize=length_normalize,
    )
    val_preds = read_predictions(val, options)
    eval_preds = read_predictions(eval_path, options) if eval_path else None
    if eval_preds is not None:
        check_class_count(str(eval_path), eval_preds.n_classes, val, val_preds.n_classes)

    def fit(v: Any, e: Any) -> tuple[Calibrator, dict[str, Any]]:
        if temperatures is not None:
            grid_scaler = fit_temperature_grid(
                v,
                grid=temperatures,
                objective=objective.value,
                n_bins=bins,
                binning=binning.value,
                chunk_rows=chunk_rows,
            )
            return grid_scaler, scaling_report(
                grid_scaler, v, e, n_bins=bins, binning=binning.value, chunk_rows=chunk_rows
            )
        # the exact fit: its first and last passes carry the validation metrics
        bounds: dict[str, Any] = {
            k: value for k, value in (("t_min", t_min), ("t_max", t_max)) if value is not None
        }
        return fit_and_report(
            v,
            e,
            method="temperature",
            n_bins=bins,
            binning=binning.value,
            chunk_rows=chunk_rows,
            device=device,
            **bounds,
        )

    scaler, report = fit(val_preds, eval_preds)
    groups = None
    if columns:
        groups = _fit_groups(val_preds, eval_preds, columns, fit, str(val))
        report = {**report, "group_by": groups}
    if out is not None:
        atomic_write_text(out, calibrator_json(scaler), inputs=inputs)
        wrote(out)
    if as_json:
        typer.echo(dumps(report), nl=False)
    else:
        _print(report)
        if groups is not None:
            from calibkit.report.groups import fit_groups_table

            stdout().print(
                fit_groups_table(columns, report, groups["groups"], min_rows=groups["min_rows"])
            )
            saved = f" (saved to {out})" if out is not None else ""
            stdout().print(
                f"the calibrator{saved} is the pooled fit, T = {report['temperature']:.6g}; "
                "the per-group temperatures are not saved"
            )


def _fit_groups(
    val_preds: Any, eval_preds: Any, columns: tuple[str, ...], fit: Any, val: str
) -> dict[str, Any]:
    """Per group of VAL, temperature scaling fitted on the group's rows alone (``fit``, the
    pooled fit's own path), reported on the same group of the ``--eval`` file when it has one;
    worst validation ECE (at T = 1) first, ties to the larger group, then the key."""
    import warnings

    from calibkit.sources.groups import MIN_GROUP_ROWS, group_rows, subset

    grouping = group_rows(val_preds, columns)
    eval_rows: dict[tuple[str, ...], Any] = {}
    if eval_preds is not None:
        eval_grouping = group_rows(eval_preds, columns)
        eval_rows = {key: eval_grouping.rows(i) for i, key in enumerate(eval_grouping.keys)}
    out = []
    for g, key in enumerate(grouping.keys):
        label = grouping.label(g)
        part = subset(val_preds, grouping.rows(g))
        part_eval = subset(eval_preds, eval_rows[key]) if key in eval_rows else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, report = fit(part, part_eval)
        for w in caught:  # a group's fit warns naming its group
            warning_line(f"{val}: group {label}: {w.message}")
        n = int(report["n"])
        out.append(
            {
                "group": grouping.as_dict(g),
                "label": label,
                "small": n < MIN_GROUP_ROWS,
                **{k: v for k, v in report.items() if k != "calibkit_version"},
            }
        )
    out.sort(key=lambda r: (-(r["ece_before"] or 0.0), -r["n"], tuple(r["group"].values())))
    missing = [
        ", ".join(f"{c}={v}" for c, v in zip(columns, key, strict=True))
        for key in eval_rows
        if key not in set(grouping.keys)
    ]
    if missing:
        warning_line(
            f"{eval_preds.source}: {len(missing)} groups have no rows in {val} (no temperature "
            f"of their own; the pooled one applies): {'; '.join(missing[:5])}"
        )
    small = [r["label"] for r in out if r["small"]]
    if small:
        from calibkit.report.groups import small_groups_line

        warning_line(f"{val}: {small_groups_line(small, MIN_GROUP_ROWS, len(out))}")
    return {
        "columns": list(columns),
        "min_rows": MIN_GROUP_ROWS,
        "n_groups": len(out),
        "saved": "pooled",
        "groups": out,
        "eval_without_val": missing,
    }


def _print(report: dict[str, Any]) -> None:
    from rich.table import Table

    from calibkit.report.tables import fmt

    console = stdout()
    grid = report.get("grid")
    if grid:
        console.print(f"T = {report['temperature']:.6g}  ({_grid_line(report, grid)})")
    else:
        state = "converged" if report["converged"] else "NOT converged"
        clamp = f", clamped at {report['clamped']}" if report["clamped"] else ""
        console.print(
            f"T = {report['temperature']:.6g}  (fitted on {report['fitted_on']}, N = "
            f"{report['n']}; {state} in {report['passes']} passes, |dNLL/d(1/T)| = "
            f"{abs(report['gradient']):.1e}{clamp})"
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


def _grid_line(report: dict[str, Any], grid: dict[str, Any]) -> str:
    """How a grid fit chose T, in one line."""
    objective = report["objective"]
    what = f"ECE, {grid['n_bins']} {grid['binning']} bins" if objective == "ece" else "NLL"
    ties = f"; {grid['ties']} grid points tie, the smallest T is kept" if grid["ties"] > 1 else ""
    end = "; at an end of the grid" if report["clamped"] else ""
    return (
        f"lowest validation {what}, {grid['best']:.6g}, of {grid['size']} temperatures on "
        f"grid {grid['spec']}; fitted on {report['fitted_on']}, N = {report['n']}{ties}{end}"
    )
