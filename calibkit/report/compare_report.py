"""Rendering a :class:`~calibkit.comparison.Comparison`: Rich table, Markdown, report folder.

The folder (``calibkit compare --out-dir``) holds ``report.md`` (the table, the figures and the
warnings, readable on GitHub), ``report.json`` (:meth:`Comparison.to_dict`), ``reliability.png``
(one panel per model, and one per temperature-scaled model) and ``sweep.png`` (ECE and NLL
against the temperature, fitted temperatures marked). The folder is replaced as a whole (built
beside it, then renamed into place), so its files always come from one run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table

from calibkit.comparison import METRICS, TS_METRICS, Comparison
from calibkit.metrics import table as metric_table
from calibkit.sources.predictions import PredictionSource

__all__ = [
    "REPORT_FILES",
    "check_report_dir",
    "comparison_markdown",
    "comparison_table",
    "write_report_dir",
]

#: The files of a report folder; a folder holding anything else is never replaced.
REPORT_FILES = ("report.md", "report.json", "reliability.png", "sweep.png")

LABELS = {m: metric_table.get(m).label for m in METRICS}


def _fmt(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.4f}"


def _columns(comp: Comparison) -> list[tuple[str, str, bool]]:
    """(header, metric, is_ts) for every column shown."""
    cols = [(LABELS[m], m, False) for m in METRICS]
    if any(m.ts_summary is not None for m in comp.models):
        cols += [(f"TS {LABELS[m]}", m, True) for m in TS_METRICS]
    return cols


def _cells(comp: Comparison, bold: tuple[str, str]) -> list[list[str]]:
    cols = _columns(comp)
    best = {(metric, ts): comp.best(metric, ts=ts) for _, metric, ts in cols}
    filled = {
        (metric, ts): sum((m.ts_summary if ts else m.summary) is not None for m in comp.models)
        for _, metric, ts in cols
    }
    rows = []
    for m in comp.models:
        row = [m.name, str(m.summary.n)]
        for _, metric, ts in cols:
            if metric == "ece" and ts:
                row.append(f"{m.temperature:.3f}" if m.temperature is not None else "-")
            summary = m.ts_summary if ts else m.summary
            text = _fmt(getattr(summary, metric)) if summary is not None else "-"
            if summary is not None and best[(metric, ts)] == m.name and filled[(metric, ts)] > 1:
                text = f"{bold[0]}{text}{bold[1]}"
            intervals = m.ts_ci if ts else m.ci
            if summary is not None and intervals and metric in intervals:
                lo, hi = intervals[metric]
                text += f" [{lo:.3f}, {hi:.3f}]"
            row.append(text)
        rows.append(row)
    return rows


def _headers(comp: Comparison) -> list[str]:
    heads = ["model", "N"]
    for head, metric, ts in _columns(comp):
        if metric == "ece" and ts:
            heads.append("T")
        heads.append(head)
    return heads


def comparison_table(comp: Comparison) -> Table:
    """A Rich table; the best value of each column in bold green."""
    t = Table(
        title=f"calibration comparison ({comp.n_bins} {comp.binning} bins; * = best in column)",
        title_justify="left",
        header_style="bold",
    )
    for i, head in enumerate(_headers(comp)):
        t.add_column(head, justify="left" if i == 0 else "right")
    for row in _cells(comp, ("[bold green]", "*[/bold green]")):
        t.add_row(*row)
    return t


def comparison_markdown(comp: Comparison) -> str:
    """The table as GitHub Markdown (best values in bold), followed by the warnings."""
    heads = _headers(comp)
    lines = [
        "| " + " | ".join(heads) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(heads) - 1)) + "|",
    ]
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
        for row in _cells(comp, ("**", "**"))
    ]
    notes = [
        f"ECE and MCE with {comp.n_bins} {comp.binning} bins; NLL in nats; "
        "TS = temperature scaling with T fitted on "
        + ("each model's validation data" if not comp.ts_on_test else "the data named below")
        + " and applied to the evaluated predictions; accuracy is unchanged by TS."
    ]
    if comp.ci_level is not None:
        notes.append(
            f"[low, high]: {comp.ci_level:.0%} percentile bootstrap interval "
            f"({comp.bootstrap} replicates, seed {comp.seed})"
        )
    for m in comp.models:
        if m.ts_fitted_on is not None:
            notes.append(
                f"`{m.name}`: T = {m.temperature:.4f} fitted on `{m.ts_source}`"
                + (" (**in-sample**)" if m.ts_fitted_on == "test" else "")
            )
    text = "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    if comp.warnings:
        text += "\n" + "\n".join(f"> **Warning:** {w}" for w in comp.warnings) + "\n"
    return text


def check_report_dir(out_dir: str | Path, inputs: list[str] | None = None) -> Path:
    """Refuse a report folder that :func:`write_report_dir` must not replace (see
    :func:`calibkit.io.atomic.check_output_dir`), before any work is done."""
    from calibkit.io.atomic import check_output_dir

    return check_output_dir(out_dir, inputs or [], owned=REPORT_FILES)


def write_report_dir(
    comp: Comparison,
    models: Mapping[str, PredictionSource],
    out_dir: str | Path,
    *,
    inputs: list[str] | None = None,
    sweep_grid: Any = None,
) -> list[Path]:
    """Write report.md, report.json, reliability.png and sweep.png into ``out_dir``.

    The four files are made in a temporary sibling folder which then replaces ``out_dir`` in one
    rename, so a reader never sees files of two runs together, and an interrupted run leaves the
    old report whole. ``out_dir`` must be new, empty, or hold only an earlier report.
    """
    import numpy as np

    from calibkit.calibrators.sweep import sweep_temperatures
    from calibkit.io.atomic import atomic_directory, atomic_write_text
    from calibkit.plotting.reliability import plot_reliability
    from calibkit.plotting.save import save_figure
    from calibkit.plotting.style import model_colors
    from calibkit.plotting.sweep import plot_sweep
    from calibkit.report.summary_json import dumps

    out = Path(out_dir)
    inputs = inputs or []
    check_report_dir(out, inputs)  # before the figures are drawn
    colors = model_colors([m.name for m in comp.models])
    panels: dict[str, Any] = {}
    panel_colors: dict[str, str] = {}
    for m in comp.models:
        panels[m.name] = m.summary
        panel_colors[m.name] = colors[m.name]
        if m.ts_summary is not None:
            where = ", fitted in-sample" if m.ts_fitted_on == "test" else ""
            key = f"{m.name} + TS (T = {m.temperature:.3g}{where})"
            panels[key] = m.ts_summary
            panel_colors[key] = colors[m.name]
        elif any(r.ts_summary is not None for r in comp.models):
            panels[f"{m.name} (no validation data: no TS)"] = None  # keeps pairs in rows
    ncols = 2 if any(m.ts_summary is not None for m in comp.models) else None
    reliability = plot_reliability(
        panels,
        colors=panel_colors,
        ncols=ncols,
        title="reliability before and after temperature scaling",
    )
    # evenly spaced on the figure's log T axis: 81 points, 2^(1/20) apart, T = 1 among them
    grid = 2.0 ** np.linspace(-2.0, 2.0, 81) if sweep_grid is None else sweep_grid
    sweeps = [
        sweep_temperatures(
            models[m.name], grid, name=m.name, n_bins=comp.n_bins, binning=comp.binning
        )
        for m in comp.models
    ]
    fitted = {m.name: m.temperature for m in comp.models if m.temperature is not None}
    label = (
        "T fitted in-sample (--ts-on-test)"
        if any(m.ts_fitted_on == "test" for m in comp.models)
        else "T fitted on validation"
    )
    sweep = plot_sweep(sweeps, fitted=fitted, fitted_label=label)
    md = (
        "# Calibration report\n\n"
        + comparison_markdown(comp)
        + "\n## Reliability diagrams\n\n![reliability diagrams](reliability.png)\n"
        + "\n## Temperature sweep\n\n![ECE and NLL against temperature](sweep.png)\n"
    )
    with atomic_directory(out, inputs, owned=REPORT_FILES) as build:
        save_figure(reliability, build / "reliability.png", inputs=inputs)
        save_figure(sweep, build / "sweep.png", inputs=inputs)
        atomic_write_text(build / "report.json", dumps(comp.to_dict()), inputs=inputs)
        atomic_write_text(build / "report.md", md, inputs=inputs)
    return [out / name for name in ("reliability.png", "sweep.png", "report.json", "report.md")]
