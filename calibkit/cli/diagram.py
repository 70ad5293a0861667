"""`calibkit diagram`: reliability diagrams of one or more models."""

from pathlib import Path
from typing import Annotated

import typer

from calibkit._fast_help import COMMAND_HELP
from calibkit.cli._common import (
    BinaryChoice,
    BinaryOpt,
    BinningChoice,
    BinningOpt,
    Bins,
    ChunkRows,
    InputOpt,
    LabelsKey,
    LogitsKey,
    ProbsKey,
    parse_named,
    read_options,
    reports_errors,
    wrote,
)
from calibkit.cli.app import app


@app.command("diagram", help=COMMAND_HELP["diagram"])
@reports_errors
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
    logits_key: LogitsKey = None,
    probs_key: ProbsKey = None,
    labels_key: LabelsKey = None,
    input_kind: InputOpt = None,
    chunk_rows: ChunkRows = None,
) -> None:
    from calibkit.loaders import read_predictions
    from calibkit.metrics import summarize
    from calibkit.plotting.reliability import plot_reliability
    from calibkit.plotting.save import check_figure_path, save_figure
    from calibkit.report.atomic import check_output_path

    named = parse_named(models)
    inputs = [p for _, p in named]
    check_output_path(check_figure_path(out), inputs)
    options = read_options(logits_key, probs_key, labels_key, input_kind)
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
    if smooth:
        from calibkit.metrics.estimators import smooth_ece
        from calibkit.metrics.summary import collect_example_stats

        curves = {}
        for name, src in sources.items():
            st = collect_example_stats(
                src, binary_mode=binary.value, chunk_rows=chunk_rows, warn=False
            )
            curves[name] = smooth_ece(st.confidence, st.outcome)
    fig = plot_reliability(summaries, overlay=overlay, title=title, smooth=curves)
    save_figure(fig, out, inputs=inputs)
    wrote(out)
