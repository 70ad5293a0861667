"""Rendering a :class:`~calibkit.comparison.Comparison`: Rich table, Markdown, report folder.

The folder (``calibkit compare --out-dir``) holds ``report.md`` (the table, the figures and the
warnings, readable on GitHub), ``report.json`` (:meth:`Comparison.to_dict`), ``reliability.png``
(one panel per model, and one per calibrated model) and ``sweep.png`` (ECE and NLL against the
temperature, fitted temperatures marked). The folder is replaced as a whole (built beside it,
then renamed into place), so its files always come from one run.

Everything here formats what :mod:`calibkit.comparison` computed: the calibrator's columns,
parameter columns (``T``), panel names and notes come from its registered class
(:class:`~calibkit.calibrators.base.Calibrator`: ``abbreviation``, ``symbols``, ``title``), and
the sweeps from :func:`calibkit.comparison.with_sweeps`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table

from calibkit.calibrators import registry
from calibkit.calibrators.base import Calibrator, parameter_text
from calibkit.comparison import METRICS, Comparison, calibrated_metrics, compared_metrics
from calibkit.errors import Param, UsageError
from calibkit.metrics import table as metric_table

__all__ = [
    "REPORT_FILES",
    "check_report_dir",
    "comparison_markdown",
    "comparison_table",
    "write_report_dir",
]

#: The files of a report folder; a folder holding anything else is never replaced.
REPORT_FILES = ("report.md", "report.json", "reliability.png", "sweep.png")

#: The labels of the built-in compare columns (the headers are read from the table when drawn).
LABELS = {m: metric_table.get(m).label for m in METRICS}


def _label(metric: str) -> str:
    return metric_table.get(metric).label


def _fmt(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.4f}"


def _method(comp: Comparison) -> type[Calibrator]:
    return registry.get(comp.method)


def _columns(comp: Comparison) -> list[tuple[str, str, bool]]:
    """(header, metric, is_calibrated) for every metric column shown; the calibrator's
    parameters are shown just before its first column."""
    cols = [(_label(m), m, False) for m in compared_metrics()]
    if any(m.calibrated is not None for m in comp.models):
        cls = _method(comp)
        cols += [(f"{cls.abbreviation} {_label(m)}", m, True) for m in calibrated_metrics(cls)]
    return cols


def _first_calibrated(cols: list[tuple[str, str, bool]]) -> int:
    return next((i for i, (_, _, cal) in enumerate(cols) if cal), -1)


def _cells(comp: Comparison, bold: tuple[str, str]) -> list[list[str]]:
    cols = _columns(comp)
    first = _first_calibrated(cols)
    symbols = _method(comp).symbols
    best = {(metric, cal): comp.best(metric, ts=cal) for _, metric, cal in cols}
    filled = {
        (metric, cal): sum((m.calibrated if cal else m.summary) is not None for m in comp.models)
        for _, metric, cal in cols
    }
    rows = []
    for m in comp.models:
        row = [m.name, str(m.summary.n)]
        params = m.parameters
        for i, (_, metric, cal) in enumerate(cols):
            if i == first:
                row += [f"{params[p]:.3f}" if p in params else "-" for p in symbols]
            summary = m.calibrated if cal else m.summary
            record = metric_table.get(metric)
            text = _fmt(record.summary_value(summary)) if summary is not None else "-"
            if summary is not None and best[(metric, cal)] == m.name and filled[(metric, cal)] > 1:
                text = f"{bold[0]}{text}{bold[1]}"
            intervals = m.calibrated_ci if cal else m.ci
            if summary is not None and intervals and metric in intervals:
                lo, hi = intervals[metric]
                text += f" [{lo:.3f}, {hi:.3f}]"
            row.append(text)
        rows.append(row)
    return rows


def _headers(comp: Comparison) -> list[str]:
    heads = ["model", "N"]
    cols = _columns(comp)
    first = _first_calibrated(cols)
    for i, (head, _, _) in enumerate(cols):
        if i == first:
            heads += list(_method(comp).symbols.values())
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


def comparison_markdown(comp: Comparison, flags: Mapping[str, str] | None = None) -> str:
    """The table as GitHub Markdown (best values in bold), followed by the warnings (their
    parameters shown as ``flags`` gives them: the CLI passes its flags)."""
    cls = _method(comp)
    abbr = cls.abbreviation
    heads = _headers(comp)
    lines = [
        "| " + " | ".join(heads) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(heads) - 1)) + "|",
    ]
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
        for row in _cells(comp, ("**", "**"))
    ]
    accuracy = (
        f"{abbr} accuracy is that of the calibrated predictions."
        if cls.changes_argmax
        else f"accuracy is unchanged by {abbr}."
    )
    notes = [
        f"ECE and MCE with {comp.n_bins} {comp.binning} bins; NLL in nats; "
        f"{abbr} = {cls.title} with {' and '.join(cls.symbols.values())} fitted on "
        + ("each model's validation data" if not comp.ts_on_test else "the data named below")
        + f" and applied to the evaluated predictions; {accuracy}"
    ]
    if comp.ci_level is not None:
        notes.append(
            f"[low, high]: {comp.ci_level:.0%} percentile bootstrap interval "
            f"({comp.bootstrap} replicates, seed {comp.seed})"
        )
    for m in comp.models:
        if m.fitted_where is not None and m.calibrator is not None:
            notes.append(
                f"`{m.name}`: {parameter_text(m.calibrator, '.4f')} fitted on `{m.fit_source}`"
                + (" (**in-sample**)" if m.fitted_where == "test" else "")
            )
    text = "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    if comp.warnings:
        warned = comp.warning_texts(flags)
        text += "\n" + "\n".join(f"> **Warning:** {w}" for w in warned) + "\n"
    return text


def check_report_dir(out_dir: str | Path, inputs: list[str] | None = None) -> Path:
    """Refuse a report folder that :func:`write_report_dir` must not replace (see
    :func:`calibkit.io.atomic.check_output_dir`), before any work is done."""
    from calibkit.io.atomic import check_output_dir

    return check_output_dir(out_dir, inputs or [], owned=REPORT_FILES)


def write_report_dir(
    comp: Comparison,
    out_dir: str | Path,
    *,
    inputs: list[str] | None = None,
    flags: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write report.md, report.json, reliability.png and sweep.png into ``out_dir``.

    ``comp`` carries the temperature sweeps that ``sweep.png`` draws
    (:func:`calibkit.comparison.with_sweeps`); nothing is computed here. The four files are
    made in a temporary sibling folder which then replaces ``out_dir`` in one rename, so a
    reader never sees files of two runs together, and an interrupted run leaves the old report
    whole. ``out_dir`` must be new, empty, or hold only an earlier report. Parameters named in
    the text (warnings, the in-sample note of ``sweep.png``) are shown as ``flags`` gives them.
    """
    from calibkit.io.atomic import atomic_directory, atomic_write_text
    from calibkit.plotting.reliability import plot_reliability
    from calibkit.plotting.save import save_figure
    from calibkit.plotting.style import model_colors
    from calibkit.plotting.sweep import plot_sweep
    from calibkit.report.summary_json import dumps

    if comp.sweeps is None:
        raise UsageError(
            "a report needs the comparison's temperature sweeps: "
            "calibkit.comparison.with_sweeps(comparison, models)"
        )
    out = Path(out_dir)
    inputs = inputs or []
    check_report_dir(out, inputs)  # before the figures are drawn
    cls = _method(comp)
    abbr = cls.abbreviation
    colors = model_colors([m.name for m in comp.models])
    panels: dict[str, Any] = {}
    panel_colors: dict[str, str] = {}
    calibrated = any(m.calibrated is not None for m in comp.models)
    for m in comp.models:
        panels[m.name] = m.summary
        panel_colors[m.name] = colors[m.name]
        if m.calibrated is not None and m.calibrator is not None:
            where = ", fitted in-sample" if m.fitted_where == "test" else ""
            key = f"{m.name} + {abbr} ({parameter_text(m.calibrator, '.3g')}{where})"
            panels[key] = m.calibrated
            panel_colors[key] = colors[m.name]
        elif calibrated:
            panels[f"{m.name} (no validation data: no {abbr})"] = None  # keeps pairs in rows
    reliability = plot_reliability(
        panels,
        colors=panel_colors,
        ncols=2 if calibrated else None,
        title=f"reliability before and after {cls.title}",
    )
    marked = cls.sweep_parameter
    fitted = {
        m.name: m.parameters[marked]
        for m in comp.models
        if marked is not None and marked in m.parameters
    }
    symbol = cls.symbols.get(marked, marked) if marked is not None else ""
    label = (
        f"{symbol} fitted in-sample ({Param('ts_on_test', True).render(flags or {})})"
        if any(m.fitted_where == "test" for m in comp.models)
        else f"{symbol} fitted on validation"
    )
    sweep = plot_sweep(list(comp.sweeps), fitted=fitted, fitted_label=label)
    md = (
        "# Calibration report\n\n"
        + comparison_markdown(comp, flags)
        + "\n## Reliability diagrams\n\n![reliability diagrams](reliability.png)\n"
        + "\n## Temperature sweep\n\n![ECE and NLL against temperature](sweep.png)\n"
    )
    with atomic_directory(out, inputs, owned=REPORT_FILES) as build:
        save_figure(reliability, build / "reliability.png", inputs=inputs)
        save_figure(sweep, build / "sweep.png", inputs=inputs)
        atomic_write_text(build / "report.json", dumps(comp.to_dict(flags)), inputs=inputs)
        atomic_write_text(build / "report.md", md, inputs=inputs)
    return [out / name for name in ("reliability.png", "sweep.png", "report.json", "report.md")]
