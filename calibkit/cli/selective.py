"""`calibkit selective`: selective prediction and HELM's calibration metrics of one predictions
file.

The JSON is :meth:`calibkit.metrics.correctness.CorrectnessMetrics.to_dict` (HELM's names where
HELM has the number); the computation is :func:`calibkit.stats.selective.selective_metrics`.
"""

from pathlib import Path
from typing import Annotated

import typer

from calibkit.cli._common import (
    Bins,
    ChunkRows,
    EngineOpt,
    GroupByOpt,
    InputOpt,
    LabelsFromCounts,
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

#: The help of `calibkit selective --help`; its first paragraph is the summary in
#: `calibkit --help` (calibkit/_commands.py lists it, tests/cli/test_fast_help.py checks).
HELP = (
    "Selective prediction (risk-coverage, AURC) and HELM's calibration metrics of the top-label "
    "confidence."
)


def parse_coverages(spec: str) -> list[float]:
    """``--coverage 0.1,0.5,0.9``: the numbers of a comma-separated list (ranges are the
    library's to check)."""
    from calibkit.errors import UsageError

    parts = [p.strip() for p in spec.split(",") if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UsageError(f"--coverage must be comma-separated numbers; got {spec!r}") from None
    if not values:
        raise UsageError("--coverage is empty")
    if len(values) > 100:
        raise UsageError(f"--coverage: at most 100 coverages; got {len(values)}")
    return values


def _names(labels: list[str], shown: int = 5) -> str:
    more = f" and {len(labels) - shown} more" if len(labels) > shown else ""
    return ", ".join(labels[:shown]) + more


@app.command("selective", help=HELP)
@reports_errors
@uses_engine
def selective_command(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PRED",
            help="Predictions: a .npz, .parquet or .pt file, a directory or quoted glob of "
            "shards, or a URL (s3://, gs://, file://).",
        ),
    ],
    bins: Bins = 15,
    folds: Annotated[
        int,
        typer.Option(
            "--folds", min=2, help="Folds of the cross-fitted Platt and temperature scaling (10)."
        ),
    ] = 10,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Seed of the fold assignment (0).")
    ] = 0,
    coverage: Annotated[
        str,
        typer.Option(
            "--coverage", help="Coverages of the accuracy-at-coverage rows (0.1,0.5,0.9)."
        ),
    ] = "0.1,0.5,0.9",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the JSON to this file (atomically).")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Draw the risk-coverage curve to this .png, .svg or .pdf."),
    ] = None,
    group_by: GroupByOpt = None,
    logits_key: LogitsKey = None,
    probs_key: ProbsKey = None,
    labels_key: LabelsKey = None,
    parse_confidence: ParseConfidence = False,
    length_normalize: LengthNormalizeOpt = LengthNormalize.none,
    labels_from_counts: LabelsFromCounts = False,
    input_kind: InputOpt = None,
    chunk_rows: ChunkRows = None,
    engine: EngineOpt = None,
    scheduler: SchedulerOpt = None,
) -> None:
    from calibkit.errors import UsageError
    from calibkit.io.atomic import check_output_path
    from calibkit.loaders import read_predictions
    from calibkit.metrics.correctness import check_coverages
    from calibkit.report.summary_json import dumps
    from calibkit.sources.groups import parse_group_by
    from calibkit.stats.selective import selective_metrics

    coverages = check_coverages(parse_coverages(coverage))
    columns = parse_group_by(group_by)
    if columns and plot is not None:
        raise UsageError("--plot draws one curve: run it without --group-by")
    if out is not None:
        check_output_path(out, [path])
    if plot is not None:
        from calibkit.plotting.save import check_figure_path

        check_output_path(check_figure_path(plot), [path])
        if out is not None and Path(out).resolve() == Path(plot).resolve():
            raise UsageError("--out and --plot name the same file")
    preds = read_predictions(
        path,
        read_options(
            logits_key,
            probs_key,
            labels_key,
            input_kind,
            labels_from_counts,
            parse_confidence=parse_confidence,
            length_normalize=length_normalize,
        ),
    )
    grouped = None
    if columns:
        from calibkit.stats.selective import grouped_selective_metrics

        grouped = grouped_selective_metrics(
            preds,
            columns,
            n_bins=bins,
            folds=folds,
            seed=seed,
            coverages=coverages,
            chunk_rows=chunk_rows,
        )
        m = grouped.micro
    else:
        m = selective_metrics(
            preds, n_bins=bins, folds=folds, seed=seed, coverages=coverages, chunk_rows=chunk_rows
        )
    if m.collapse_warning is not None:
        warning_line(f"{path}: ece_10_bin: {m.collapse_warning}")
    if m.nll_floored_rows:
        rows = m.nll_floored_rows
        warning_line(
            f"{path}: {rows} row{'s have' if rows != 1 else ' has'} a confidence of exactly 1 "
            "(or 0) and the other outcome: the NLL takes -log 0 at the smallest float64 "
            "(744.4 nats), so it is a lower bound"
        )
    if grouped is not None:
        collapsed = [g.label for g in grouped.groups if g.metrics.ece_10_bin_collapsed]
        if collapsed:
            warning_line(
                f"{path}: ece_10_bin: equal-mass bins collapsed in {len(collapsed)} of "
                f"{len(grouped.groups)} groups (ties are never split): {_names(collapsed)}"
            )
        small = [g.label for g in grouped.small_groups]
        if small:
            warning_line(
                f"{path}: {len(small)} of {len(grouped.groups)} groups have fewer than "
                f"{grouped.min_rows} rows (HELM's guideline for a 10-bin ECE), so their numbers "
                f"are noisy: {_names(small)}"
            )
    doc = m.to_dict()  # the pooled document, as without --group-by, and the groups beside it
    if grouped is not None:
        doc["group_by"] = grouped.to_dict()
    text = dumps(doc)
    if out is not None:
        from calibkit.io.atomic import atomic_write_text

        atomic_write_text(out, text, inputs=[path])
        wrote(out)
    if plot is not None:
        from calibkit.plotting.risk_coverage import plot_risk_coverage
        from calibkit.plotting.save import save_figure

        save_figure(plot_risk_coverage(m, name=path.name), plot, inputs=[path])
        wrote(plot)
    if as_json:
        typer.echo(text, nl=False)
    else:
        from calibkit.report.correctness import grouped_table, selective_renderable

        console = stdout()
        if grouped is not None:
            console.print(grouped_table(grouped))
        else:
            console.print(selective_renderable(m))
