"""`calibkit ece`: the metrics of one predictions file.

The JSON is :func:`calibkit.report.summary_json.summary_to_dict` with ``convention``; soft labels
add ``label_distribution`` (:class:`calibkit.metrics.soft_labels.SoftLabelMetrics`), and
``--all`` the keys of :func:`calibkit.stats.extended.extended_metrics` (with the implied label
smoothing, :mod:`calibkit.metrics.implied`).
"""

from pathlib import Path
from typing import Annotated, Any

import typer

from calibkit.cli._common import (
    BinaryChoice,
    BinaryOpt,
    BinningChoice,
    BinningOpt,
    Bins,
    ChunkRows,
    Device,
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

#: The help of `calibkit ece --help`; its first paragraph is the summary in
#: `calibkit --help` (calibkit/_commands.py lists it, tests/cli/test_fast_help.py checks).
HELP = "Expected calibration error, MCE, RMSCE, NLL, Brier and accuracy of saved predictions."


@app.command("ece", help=HELP)
@reports_errors
@uses_engine
def ece_command(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PRED",
            help="Predictions: a .npz, .parquet or .pt file, a directory or quoted glob of "
            "shards, or a URL (s3://, gs://, file://).",
        ),
    ],
    bins: Bins = 15,
    binning: BinningOpt = BinningChoice.width,
    binary: BinaryOpt = BinaryChoice.top_label,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the JSON to this file (atomically).")
    ] = None,
    no_bins: Annotated[bool, typer.Option("--no-bins", help="Omit the per-bin table.")] = False,
    plot: Annotated[
        bool,
        typer.Option("--plot", help="Draw a text reliability chart (for terminals and CI logs)."),
    ] = False,
    convention: Annotated[
        str,
        typer.Option(
            "--convention",
            help="Bin like another tool: calibkit (default), guo, torchmetrics, sklearn, netcal.",
        ),
    ] = "calibkit",
    all_estimators: Annotated[
        bool,
        typer.Option(
            "--all", help="Every estimator (debiased, smooth, class-wise ECE, ...) + CIs."
        ),
    ] = False,
    ci: Annotated[
        float | None,
        typer.Option("--ci", help="Bootstrap interval level for --all or --group-by (0.95)."),
    ] = None,
    bootstrap: Annotated[
        int | None,
        typer.Option("--bootstrap", help="Bootstrap replicates for --all or --group-by (1000)."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", min=0, help="Bootstrap seed for --all or --group-by (0)."),
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
    device: Device = None,
) -> None:
    from calibkit.errors import UsageError
    from calibkit.io.atomic import check_output_path
    from calibkit.loaders import read_predictions
    from calibkit.metrics import summarize
    from calibkit.report.summary_json import dumps, summary_to_dict
    from calibkit.sources.groups import parse_group_by

    if out is not None:
        check_output_path(out, [path])
    columns = parse_group_by(group_by)
    if columns:
        _refuse_with_groups(all_estimators=all_estimators, plot=plot, convention=convention)
    elif not all_estimators and (ci, bootstrap, seed) != (None, None, None):
        raise UsageError("--ci, --bootstrap and --seed go with --all")
    if all_estimators and convention != "calibkit":
        raise UsageError("--all uses calibkit's binning; run --convention without --all")
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
    summary = summarize(
        preds,
        n_bins=bins,
        binning=binning.value,
        binary_mode=binary.value,
        chunk_rows=chunk_rows,
        device=device,
    )
    if convention != "calibkit":
        from calibkit.metrics.conventions import apply_convention

        summary = apply_convention(summary, preds, convention, n_bins=bins)
    if summary.saturated_fraction > 0 and summary.kind != "logits":
        # stored probabilities of exactly 1 have lost how sure the model was; logits whose
        # softmax rounds to 1 in float64 have not (every metric is computed from the logits)
        warning_line(
            f"{path}: {summary.saturated_fraction:.1%} of rows have a top probability of exactly "
            "1 (saturated): how sure the model was is lost in the stored precision; save logits "
            "to keep it"
        )
    if summary.missing_classes and not getattr(preds, "ragged", False):  # ragged: positions
        shown = ", ".join(map(str, summary.missing_classes[:10]))
        more = " ..." if len(summary.missing_classes) > 10 else ""
        warning_line(
            f"{path}: {len(summary.missing_classes)} of {summary.n_classes} classes never occur "
            f"in the labels: {shown}{more}"
        )
    if summary.binning == "mass":
        from calibkit.metrics.correctness import collapse_message

        filled = int((summary.bins.count > 0).sum())
        collapsed = collapse_message(filled, summary.n_bins, summary.n)
        if collapsed is not None:
            warning_line(f"{path}: {collapsed}")
    doc = summary_to_dict(summary)
    doc["convention"] = convention
    soft = None
    if summary.soft_labels and summary.kind != "confidence":
        from calibkit.metrics.soft_labels import soft_label_metrics

        soft = soft_label_metrics(preds, n_bins=bins, binning=binning.value, chunk_rows=chunk_rows)
        doc["label_distribution"] = soft.to_dict()
    extra = None
    if all_estimators:
        from calibkit.stats.extended import extended_metrics

        extra = extended_metrics(
            preds,
            summary,
            ci=0.95 if ci is None else ci,
            bootstrap=1000 if bootstrap is None else bootstrap,
            seed=seed or 0,
            binary_mode=binary.value,
            chunk_rows=chunk_rows,
        )
        doc.update(extra)
    grouped = None
    if columns:
        grouped = _groups(
            preds,
            columns,
            summary,
            str(path),
            n_bins=bins,
            binning=binning.value,
            binary_mode=binary.value,
            chunk_rows=chunk_rows,
            device=device,
            ci=ci,
            bootstrap=bootstrap,
            seed=seed,
        )
        doc["group_by"] = grouped.to_dict()
    text = dumps(doc)
    if out is not None:
        from calibkit.io.atomic import atomic_write_text

        atomic_write_text(out, text, inputs=[path])
        wrote(out)
    if as_json:
        typer.echo(text, nl=False)
    else:
        from calibkit.report.tables import summary_renderable

        console = stdout()
        console.print(summary_renderable(summary, show_bins=not no_bins and not plot))
        if soft is not None:
            from calibkit.report.tables import soft_label_table

            console.print(soft_label_table(soft))
        if plot:
            from calibkit.report.text_chart import reliability_text

            console.print(reliability_text(summary.bins))
        if extra is not None:
            from calibkit.report.tables import extended_table

            console.print(extended_table(summary, extra))
        if grouped is not None:
            from calibkit.report.groups import groups_table

            console.print(groups_table(grouped))


def _refuse_with_groups(*, all_estimators: bool, plot: bool, convention: str) -> None:
    """The options of `ece` that have no per-group form, refused in one line each."""
    from calibkit.errors import UsageError

    if all_estimators:
        raise UsageError(
            "--all is not computed per group; use --group-by with --ci for per-group intervals, "
            "or --all without --group-by"
        )
    if plot:
        raise UsageError(
            "--plot draws one chart; use `calibkit diagram --group-by` for a panel per group"
        )
    if convention != "calibkit":
        raise UsageError("--group-by uses calibkit's binning; run --convention without --group-by")


def _groups(
    preds: Any,
    columns: tuple[str, ...],
    summary: Any,
    path: str,
    *,
    ci: float | None,
    bootstrap: int | None,
    seed: int | None,
    **kw: Any,
) -> Any:
    """The per-group summaries (:func:`calibkit.stats.groups.summarize_groups`, the pooled
    summary reused), and the warning naming the small groups."""
    from calibkit.report.groups import small_groups_line
    from calibkit.stats.groups import summarize_groups

    boot = ci is not None or bootstrap is not None or seed is not None
    grouped = summarize_groups(
        preds,
        columns,
        pooled=summary,
        ci=(0.95 if ci is None else ci) if boot else None,
        bootstrap=1000 if bootstrap is None else bootstrap,
        seed=seed or 0,
        **kw,
    )
    small = grouped.small_groups
    if small:
        labels = [g.label for g in small]
        warning_line(f"{path}: {small_groups_line(labels, grouped.min_rows, len(grouped.groups))}")
    return grouped
