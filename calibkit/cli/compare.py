"""`calibkit compare`: models side by side, with temperature scaling fitted on validation data.

``--method a,b,...`` (anything but temperature alone) fits each listed calibration method on
every model's ``--val`` file, with its ``--param`` options, and prints one row per model and
method (:mod:`calibkit.comparison`, :mod:`calibkit.report.compare_report`); the methods and the
options are checked before any file is read.
"""

from pathlib import Path
from typing import Annotated, Any

import typer

from calibkit.cli._common import (
    BinningChoice,
    BinningOpt,
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
    flags,
    parse_models_and_val,
    read_options,
    reports_errors,
    stdout,
    uses_engine,
    warning_line,
    wrote,
)
from calibkit.cli.app import app

#: The help of `calibkit compare --help`; its first paragraph is the summary in
#: `calibkit --help` (calibkit/_commands.py lists it, tests/cli/test_fast_help.py checks).
HELP = (
    "Compare models: accuracy, ECE, MCE, NLL, Brier and implied label smoothing, before and "
    "after calibration (temperature scaling or --method)."
)


#: What to use instead of an option ``compare --group-by`` refuses.
_GROUP_HINTS = {
    **dict.fromkeys(
        ("--val", "--ts-on-test", "--method", "--param"),
        "for a temperature per group use `calibkit fit-temp VAL --group-by COLUMN`",
    ),
    "--out-dir": "for the per-group metrics in a file use --json and redirect it; the report "
    "directory of --out-dir is for whole models, without --group-by",
    "--markdown": "the per-group table is printed as text or, with --json, as JSON; for a "
    "Markdown gate summary per group use `calibkit check PRED --group-by COLUMN --markdown`",
}


@app.command("compare", help=HELP)
@reports_errors
@uses_engine
def compare_command(
    models: Annotated[
        list[str],
        typer.Argument(metavar="NAME=PRED", help="Evaluation predictions as NAME=PATH (or PATH)."),
    ],
    val: Annotated[
        list[str] | None,
        typer.Option(
            "--val",
            metavar="<NAME=VAL>",
            help="NAME=VAL: fit temperature scaling on VAL (repeatable).",
        ),
    ] = None,
    bins: Bins = 15,
    binning: BinningOpt = BinningChoice.width,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out-dir", help="Write report.md, report.json and figures here."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the table as Markdown (CI summaries).")
    ] = False,
    ts_on_test: Annotated[
        bool,
        typer.Option(
            "--ts-on-test",
            help="Fit T on the evaluated data itself for models without --val (in-sample).",
        ),
    ] = False,
    check_labels: Annotated[
        bool,
        typer.Option(
            "--same-labels/--different-labels",
            help="Warn unless every model was evaluated on the same label vector.",
        ),
    ] = True,
    ci: Annotated[
        float | None,
        typer.Option("--ci", help="Show bootstrap intervals at this level, e.g. 0.95."),
    ] = None,
    method: Annotated[
        list[str] | None,
        typer.Option(
            "--method",
            metavar="<METHOD,...>",
            help="Calibration methods fitted on --val, comma-separated (repeatable; default "
            "temperature). Other than temperature alone: a row per model and method, with "
            "class-wise ECE.",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="<[METHOD.]NAME=VALUE>",
            help="A fit option of the methods that declare NAME, or of METHOD only (repeatable).",
        ),
    ] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Replicates for --ci.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Bootstrap seed for --ci.")] = 0,
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
    group_by: GroupByOpt = None,
) -> None:
    from calibkit.comparison import compare_models, method_options, parse_methods
    from calibkit.errors import UsageError
    from calibkit.loaders import read_predictions
    from calibkit.report.summary_json import dumps
    from calibkit.sources.checks import check_class_count
    from calibkit.sources.groups import parse_group_by

    if as_json and markdown:
        raise UsageError("give --json or --markdown, not both")
    named, named_val = parse_models_and_val(models, val)
    columns = parse_group_by(group_by)
    if columns:
        given = [
            flag
            for flag, on in (
                ("--val", bool(named_val)),
                ("--ts-on-test", ts_on_test),
                ("--method", bool(method)),
                ("--param", bool(param)),
                ("--out-dir", out_dir is not None),
                ("--markdown", markdown),
            )
            if on
        ]
        if given:
            raise UsageError(
                f"{given[0]} is not available with --group-by (the models' metrics per group); "
                + _GROUP_HINTS[given[0]]
            )
    methods = parse_methods(method) if method else ("temperature",)
    long = methods != ("temperature",)  # temperature alone: today's table, keys and figures
    options = method_options(methods, param or [])  # before any file is read
    inputs = [p for _, p in named] + [p for _, p in named_val]
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir} exists and is not a directory")
    if out_dir is not None:
        from calibkit.report.compare_report import check_report_dir

        check_report_dir(out_dir, inputs)  # refused now, not after the work
    read = read_options(
        logits_key,
        probs_key,
        labels_key,
        input_kind,
        parse_confidence=parse_confidence,
        length_normalize=length_normalize,
    )
    # --labels-from-counts: the evaluated files' labels are counts; --val files are read as
    # they are (temperature scaling fits on hard or soft labels alike)
    counted = read_options(
        logits_key,
        probs_key,
        labels_key,
        input_kind,
        labels_from_counts,
        parse_confidence=parse_confidence,
        length_normalize=length_normalize,
    )
    sources = {name: read_predictions(p, counted) for name, p in named}
    vals = {name: read_predictions(p, read) for name, p in named_val}
    for name, v in vals.items():
        check_class_count(v.source, v.n_classes, sources[name].source, sources[name].n_classes)
    words = flags()  # the warnings' parameters as this command's flags (--ts-on-test)
    if columns:
        _compare_groups(
            sources,
            columns,
            as_json=as_json,
            check_labels=check_labels,
            n_bins=bins,
            binning=binning.value,
            chunk_rows=chunk_rows,
            ci=ci,
            bootstrap=bootstrap,
            seed=seed,
        )
        return
    comp = compare_models(
        sources,
        val=vals,
        n_bins=bins,
        binning=binning.value,
        ts_on_test=ts_on_test,
        check_labels=check_labels,
        chunk_rows=chunk_rows,
        ci=ci,
        bootstrap=bootstrap,
        seed=seed,
        methods=methods if long else None,
        params=options if long else None,
    )
    for w in comp.warning_texts(words):
        warning_line(w)
    if out_dir is not None:
        from calibkit.comparison import with_sweeps
        from calibkit.report.compare_report import write_report_dir

        swept = with_sweeps(comp, sources) if comp.sweep_method is not None else comp
        for path in write_report_dir(swept, out_dir, inputs=inputs, flags=words):
            wrote(path)
    if as_json:
        typer.echo(dumps(comp.to_dict(words)), nl=False)
    elif markdown:
        from calibkit.report.compare_report import comparison_markdown

        typer.echo(comparison_markdown(comp, words), nl=False)
    else:
        from calibkit.report.compare_report import comparison_table, diagnostics_table

        console = stdout()
        console.print(comparison_table(comp))
        console.print(diagnostics_table(comp))


def _compare_groups(
    sources: dict[str, Any],
    columns: tuple[str, ...],
    *,
    as_json: bool,
    check_labels: bool,
    **options: Any,
) -> None:
    """``compare --group-by``: every model's metrics per group, side by side."""
    from calibkit.report.groups import compare_groups_table, small_groups_line
    from calibkit.report.summary_json import dumps
    from calibkit.sources.checks import label_mismatches
    from calibkit.stats.groups import compare_groups

    if check_labels:
        for w in label_mismatches(sources):
            warning_line(w)
    comp = compare_groups(sources, columns, **options)
    for name, grouped in comp.per_model.items():
        small = [g.label for g in grouped.small_groups]
        if small:
            line = small_groups_line(small, grouped.min_rows, len(grouped.groups))
            warning_line(f"{name}: {line}")
    if as_json:
        typer.echo(dumps({"group_by": comp.to_dict()}), nl=False)
    else:
        stdout().print(
            compare_groups_table(columns, comp.models, comp.rows(), min_rows=comp.min_rows)
        )
