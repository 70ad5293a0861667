"""`calibkit diagram`: reliability diagrams of one or more models."""

from enum import Enum
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
    parse_named,
    read_options,
    reports_errors,
    uses_engine,
    warning_line,
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
    group_by: GroupByOpt = None,
    max_groups: Annotated[
        int,
        typer.Option(
            "--max-groups",
            min=1,
            help="With --group-by: draw the largest this many groups (12); a warning names "
            "how many are left out.",
        ),
    ] = 12,
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
    from calibkit.sources.groups import parse_group_by

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
    columns = parse_group_by(group_by)
    if columns:
        if overlay and len(sources) > 1:
            raise UsageError("--overlay --group-by draws the groups of one model only")
        _group_diagram(
            sources,
            columns,
            out,
            inputs,
            max_groups=max_groups,
            bins=bins,
            binning=binning.value,
            binary_mode=binary.value,
            chunk_rows=chunk_rows,
            overlay=overlay,
            title=title,
            smooth=smooth,
            intervals=None if intervals is IntervalChoice.none else intervals.value,
            ci=level,
        )
        return
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


def _group_diagram(
    sources: dict[str, Any],
    columns: tuple[str, ...],
    out: Path,
    inputs: list[str],
    *,
    max_groups: int,
    bins: int,
    binning: str,
    binary_mode: str,
    chunk_rows: int | None,
    overlay: bool,
    title: str | None,
    smooth: bool,
    intervals: str | None,
    ci: float,
) -> None:
    """``diagram --group-by``: a panel per group (the largest ``max_groups``), per model."""
    from calibkit.metrics import summarize
    from calibkit.plotting.groups import largest_groups, plot_group_reliability
    from calibkit.plotting.save import save_figure
    from calibkit.sources.groups import MIN_GROUP_ROWS, group_rows, subset

    groupings = {name: group_rows(src, columns) for name, src in sources.items()}  # read first
    counts: dict[str, int] = {}
    rows: dict[str, dict[str, Any]] = {}
    for name, g in groupings.items():
        for i in range(g.n_groups):
            label = g.label(i)
            counts[label] = max(counts.get(label, 0), int(g.counts[i]))  # rows in one file
            rows.setdefault(label, {})[name] = g.rows(i)
    kept, left_out = largest_groups(counts, max_groups)
    if left_out:
        warning_line(
            f"{left_out} of {len(counts)} groups by {', '.join(columns)} left out of the figure "
            f"(the {len(kept)} largest drawn; --max-groups N draws more)"
        )
    small = [f"{label} N={counts[label]}" for label in kept if counts[label] < MIN_GROUP_ROWS]
    if small:
        shown = ", ".join(small[:5]) + (f", ... ({len(small) - 5} more)" if len(small) > 5 else "")
        warning_line(
            f"{len(small)} of the groups drawn have fewer than {MIN_GROUP_ROWS} rows ({shown}): "
            "their bins are noisy"
        )
    panels: dict[str, dict[str, Any]] = {}
    curves: dict[str, dict[str, Any]] = {}
    spans: dict[str, dict[str, tuple[float, float]]] = {}
    for label in kept:
        panels[label] = {}
        for name, src in sources.items():
            mask = rows[label].get(name)
            if mask is None:
                panels[label][name] = None
                continue
            part = subset(src, mask)
            panels[label][name] = summarize(
                part,
                n_bins=bins,
                binning=binning,  # type: ignore[arg-type]
                binary_mode=binary_mode,  # type: ignore[arg-type]
                chunk_rows=chunk_rows,
            )
            if smooth:
                from calibkit.metrics.estimators import smooth_ece
                from calibkit.metrics.summary import collect_example_stats

                st = collect_example_stats(
                    part,
                    binary_mode=binary_mode,  # type: ignore[arg-type]
                    chunk_rows=chunk_rows,
                    warn=False,
                )
                curves.setdefault(label, {})[name] = smooth_ece(st.confidence, st.outcome)
                if st.confidence.size:
                    spans.setdefault(label, {})[name] = (
                        float(st.confidence.min()),
                        float(st.confidence.max()),
                    )
    fig = plot_group_reliability(
        panels,
        by=columns,
        left_out=left_out,
        title=title,
        overlay=overlay,
        smooth=curves or None,
        smooth_range=spans,
        intervals=intervals,
        ci=ci,
    )
    save_figure(fig, out, inputs=inputs)
    wrote(out, f"{len(kept)} group{'s' if len(kept) > 1 else ''}")
