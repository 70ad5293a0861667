"""`calibkit diagram`: reliability diagrams of one or more models."""

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from calibkit.cli._common import (
    BinaryChoice,
    BinaryOpt,
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
    parse_named,
    read_options,
    reports_errors,
    uses_engine,
    wrote,
)
from calibkit.cli.app import app

#: The help of `calibkit diagram --help`; its first paragraph is the summary in
#: `calibkit --help` (calibkit/_commands.py lists it, tests/cli/test_fast_help.py checks).
HELP = "Reliability diagrams (Guo et al. 2017): accuracy per confidence bin, gap, histogram."


class IntervalChoice(str, Enum):
    none = "none"
    wilson = "wilson"


@app.command("diagram", help=HELP)
@reports_errors
@uses_engine
def diagram_command(
    models: Annotated[
        list[str],
        typer.Argument(
            metavar="NAME=PRED", help="Predictions as NAME=PATH (or PATH, named by its stem)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Figure file: .png, .svg or .pdf.")],
    bins: Bins = 15,
    binning: BinningOpt = BinningChoice.width,
    binary: BinaryOpt = BinaryChoice.top_label,
    overlay: Annotated[
        bool, typer.Option("--overlay", help="All models on one axes, as lines with markers.")
    ] = False,
    title: Annotated[str | None, typer.Option("--title", help="Figure title.")] = None,
    smooth: Annotated[
        bool, typer.Option("--smooth", help="Draw the smooth-ECE reliability curve too.")
    ] = False,
    intervals: Annotated[
        IntervalChoice,
        typer.Option(
            "--intervals",
            help="Per-bin intervals on the accuracy: none, or wilson (Wilson score interval).",
        ),
    ] = IntervalChoice.none,
    ci: Annotated[
        float | None,
        typer.Option("--ci", help="Level of the --intervals, in (0, 1) (0.95)."),
    ] = None,
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
    from calibkit.errors import UsageError
    from calibkit.io.atomic import check_output_path
    from calibkit.loaders import read_predictions
    from calibkit.metrics import summarize
    from calibkit.metrics.intervals import check_level
    from calibkit.plotting.reliability import plot_reliability
    from calibkit.plotting.save import check_figure_path, save_figure

    if intervals is IntervalChoice.none and ci is not None:
        raise UsageError("--ci goes with --intervals wilson")
    level = check_level(0.95 if ci is None else ci)
    named = parse_named(models)
    inputs = [p for _, p in named]
    check_output_path(check_figure_path(out), inputs)
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
    summaries = {
        name: summarize(
            src,
            n_bins=bins,
            binning=binning.value,
            binary_mode=binary.value,
            chunk_rows=chunk_rows,
        )
        for name, src in sources.items()
    }
    curves = None
    spans: dict[str, tuple[float, float]] = {}
    if smooth:
        from calibkit.metrics.estimators import smooth_ece
        from calibkit.metrics.summary import collect_example_stats

        curves = {}
        for name, src in sources.items():
            st = collect_example_stats(
                src, binary_mode=binary.value, chunk_rows=chunk_rows, warn=False
            )
            curves[name] = smooth_ece(st.confidence, st.outcome)
            if st.confidence.size:  # the curve is drawn where there is data
                spans[name] = (float(st.confidence.min()), float(st.confidence.max()))
    fig = plot_reliability(
        summaries,
        overlay=overlay,
        title=title,
        smooth=curves,
        smooth_range=spans,
        intervals=None if intervals is IntervalChoice.none else intervals.value,
        ci=level,
    )
    save_figure(fig, out, inputs=inputs)
    wrote(out)
