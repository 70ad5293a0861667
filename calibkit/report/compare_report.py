"""Rendering a :class:`~calibkit.comparison.Comparison`: Rich table, Markdown, report folder.

The folder (``calibkit compare --out-dir``) holds ``report.md`` (the table, the warnings, the
implied label smoothing table and the figures, readable on GitHub), ``report.json``
(:meth:`Comparison.to_dict`), ``reliability.png`` (one panel per model, and one per calibrated
model) and ``sweep.png`` (ECE and NLL against the temperature, fitted temperatures marked).
The folder is replaced as a whole (built beside it, then renamed into place), so its files
always come from one run.

Everything here formats what :mod:`calibkit.comparison` computed: the calibrator's columns,
parameter columns (``T``), panel names and notes come from its registered class
(:class:`~calibkit.calibrators.base.Calibrator`: ``abbreviation``, ``symbols``, ``title``), and
the sweeps from :func:`calibkit.comparison.with_sweeps`.

A *long* comparison (several methods, ``compare --method``) is one row per model and method
after each model's uncalibrated row: columns model, method, N, parameters, accuracy, ECE,
class-wise ECE, MCE, NLL, Brier (and any registered ``compare`` metric); the best value of each
column over all rows is marked (``*`` in the terminal, bold in Markdown; the lowest, the highest
for accuracy; every row that reaches it), a row whose accuracy differs from its model's
uncalibrated accuracy gets :data:`CHANGED` after its accuracy in every table, and the notes say
how each fit ended. Its ``reliability.png`` is a grid, a row per model and a column per method
(the uncalibrated panel first); ``sweep.png`` is drawn only when a compared method has a
``sweep_parameter`` (temperature scaling), marking the values that method fitted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table

from calibkit.calibrators import registry
from calibkit.calibrators.base import Calibrator, parameter_text
from calibkit.comparison import (
    METRICS,
    Comparison,
    Row,
    calibrated_metrics,
    compared_metrics,
    long_metrics,
)
from calibkit.errors import Param, UsageError
from calibkit.metrics import table as metric_table

__all__ = [
    "REPORT_FILES",
    "check_report_dir",
    "comparison_markdown",
    "comparison_table",
    "diagnostics_markdown",
    "diagnostics_table",
    "write_report_dir",
]

#: The files of a report folder; a folder holding anything else is never replaced.
REPORT_FILES = ("report.md", "report.json", "reliability.png", "sweep.png")

#: The labels of the built-in compare columns (the headers are read from the table when drawn).
LABELS = {m: metric_table.get(m).label for m in METRICS}

#: The mark after the accuracy of a calibrated row whose accuracy changed (long comparisons).
CHANGED = "†"


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
    filled = {  # how many models have a value (not a missing cell, not NaN)
        (metric, cal): sum(
            s is not None and not math.isnan(metric_table.get(metric).summary_value(s))
            for s in ((m.calibrated if cal else m.summary) for m in comp.models)
        )
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


# --------------------------------------------------------------------------------------------
# the long comparison (several methods)


def _long_headers() -> list[str]:
    return ["model", "method", "N", "parameters", *(_label(m) for m in long_metrics())]


def _method_cell(row: Row) -> str:
    if row.result is None:
        return row.method
    return row.method + (" (in-sample)" if row.result.fitted_where == "test" else "")


def _long_cells(comp: Comparison, bold: tuple[str, str]) -> list[list[str]]:
    metrics = long_metrics()
    best = {m: comp.best_rows(m) for m in metrics}
    rows = []
    for i, row in enumerate(comp.rows()):
        r = row.result
        params = parameter_text(r.calibrator, ".3g") if r is not None else ""
        cells = [row.model.name, _method_cell(row), str(row.summary.n), params or "-"]
        for metric in metrics:
            value = row.value(metric)
            text = metric_table.get(metric).format(value)
            if i in best[metric]:
                text = f"{bold[0]}{text}{bold[1]}"
            if metric == "accuracy" and row.accuracy_changed:
                text += f" {CHANGED}"
            if row.ci and metric in row.ci:
                lo, hi = row.ci[metric]
                text += f" [{lo:.3f}, {hi:.3f}]"
            cells.append(text)
        rows.append(cells)
    return rows


def _changed_note(comp: Comparison) -> str | None:
    """The note on the rows whose accuracy changed (``None`` when none did)."""
    moved = [
        f"{row.model.name} + {row.method} ({row.model.summary.accuracy:.4f} -> "
        f"{row.summary.accuracy:.4f})"
        for row in comp.rows()
        if row.accuracy_changed
    ]
    if not moved:
        return None
    return (
        f"{CHANGED} accuracy changed by calibration (the method changes the argmax): "
        + "; ".join(moved)
        + "; its other columns are those of different predictions"
    )


def _best_note() -> str:
    return (
        "best value of each column over all rows: the lowest (the highest for accuracy), "
        "every row that reaches it marked"
    )


def _fit_note(row: Row) -> str:
    """How one fit ended, in words: ``converged (3 iterations, 5 passes, gradient 2e-12)``."""
    r = row.result
    assert r is not None
    details = r.fit_details()
    fit = details.get("fit")
    record: dict[str, Any] = fit if isinstance(fit, dict) else details
    bits = []
    for key, word in (("iterations", "iteration"), ("passes", "pass")):
        v = record.get(key)
        if isinstance(v, int) and not isinstance(v, bool):
            bits.append(f"{v} {word}" + ("" if v == 1 else "es" if word == "pass" else "s"))
    g = record.get("gradient_norm", record.get("gradient"))
    if isinstance(g, float):
        bits.append(f"gradient {g:.2g}")
    message = record.get("message")
    if r.converged is False and isinstance(message, str) and message:
        bits.append(message)
    state = {True: "converged", False: "**did not converge**", None: ""}[r.converged]
    if not state:
        return "; " + ", ".join(bits) if bits else ""
    return "; " + state + (f" ({', '.join(bits)})" if bits else "")


def _long_table(comp: Comparison) -> Table:
    title = (
        f"calibration comparison ({comp.n_bins} {comp.binning} bins; class-wise ECE "
        f"{comp.n_bins} width bins per class; * = {_best_note()})"
    )
    changed = _changed_note(comp)
    t = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        caption=changed,
        caption_justify="left",
    )
    for i, head in enumerate(_long_headers()):
        t.add_column(head, justify="left" if i < 2 else "right")
    for row in _long_cells(comp, ("[bold green]", "*[/bold green]")):
        t.add_row(*row)
    return t


def _long_markdown(comp: Comparison, flags: Mapping[str, str] | None) -> str:
    heads = _long_headers()
    lines = [
        "| " + " | ".join(heads) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * (len(heads) - 2)) + "|",
    ]
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
        for row in _long_cells(comp, ("**", "**"))
    ]
    methods = comp.methods or ()
    fitted = [r for model in comp.models for r in model.calibrations]

    def can_move(method: str) -> bool:  # the fitted instances say; the class where none is
        mine = [r for r in fitted if r.method == method]
        return any(r.changes_argmax for r in mine) if mine else registry.get(method).changes_argmax

    titles = "; ".join(
        f"`{m}` = {registry.get(m).title}" + (" (can change the argmax)" if can_move(m) else "")
        for m in methods
    )
    notes = [
        f"ECE and MCE with {comp.n_bins} {comp.binning} bins; class-wise ECE: the mean over "
        f"classes of the ECE of p_k ({comp.n_bins} equal-width bins, Kull et al. 2019); "
        "NLL in nats",
        f"**bold**: {_best_note()}",
        "each method fitted on "
        + ("each model's validation data" if not comp.ts_on_test else "the data named below")
        + " and applied to the evaluated predictions; `uncalibrated`: the model as given; "
        + titles,
    ]
    changed = _changed_note(comp)
    if changed is not None:
        notes.append(changed.replace(CHANGED, f"**{CHANGED}**", 1))
    if comp.ci_level is not None:
        notes.append(
            f"[low, high]: {comp.ci_level:.0%} percentile bootstrap interval "
            f"({comp.bootstrap} replicates, seed {comp.seed}); none for the class-wise ECE"
        )
    for row in comp.rows():
        r = row.result
        if r is None:
            continue
        params = parameter_text(r.calibrator, ".4g")
        notes.append(
            f"`{row.model.name}` + `{r.method}`: "
            + (f"{params} " if params else "")
            + f"fitted on `{r.fit_source}`"
            + (" (**in-sample**)" if r.fitted_where == "test" else "")
            + _fit_note(row)
            + (
                f"; {r.calibrated.zero_prob_rows} evaluated rows get a label probability of "
                "exactly 0 (their NLL terms are lower bounds)"
                if r.calibrated.zero_prob_rows
                else ""
            )
        )
    for m in comp.models:
        if not m.calibrations and methods:
            notes.append(f"`{m.name}`: no validation data, no calibrated rows")
    text = "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    if comp.warnings:
        warned = comp.warning_texts(flags)
        text += "\n" + "\n".join(f"> **Warning:** {w}" for w in warned) + "\n"
    return text + "\n" + diagnostics_markdown(comp)


def comparison_table(comp: Comparison) -> Table:
    """A Rich table; the best value of each column in bold green."""
    if comp.long:
        return _long_table(comp)
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
    parameters shown as ``flags`` gives them: the CLI passes its flags) and by
    :func:`diagnostics_markdown`, the implied label smoothing."""
    if comp.long:
        return _long_markdown(comp, flags)
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
    return text + "\n" + diagnostics_markdown(comp)


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

    if comp.long:
        return _write_long_report(comp, Path(out_dir), inputs=inputs or [], flags=flags)
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


def long_reliability_panels(
    comp: Comparison,
) -> tuple[dict[str, Any], dict[str, str], int]:
    """The panels of a long comparison's ``reliability.png``: a row per model, its
    uncalibrated panel first and then one per method (a blank slot, with a note, where the model
    has no calibrated row); ``(panels, colours, columns)``."""
    from calibkit.plotting.style import model_colors

    methods = comp.methods or ()
    colors = model_colors([m.name for m in comp.models])
    panels: dict[str, Any] = {}
    panel_colors: dict[str, str] = {}
    for m in comp.models:
        panels[f"{m.name}\nuncalibrated"] = m.summary
        panel_colors[f"{m.name}\nuncalibrated"] = colors[m.name]
        fitted = {r.method: r for r in m.calibrations}
        for method in methods:
            r = fitted.get(method)
            abbr = registry.get(method).abbreviation
            if r is None:
                panels[f"{m.name} + {abbr}\nno validation data"] = None
                continue
            details = [
                parameter_text(r.calibrator, ".3g"),
                "in-sample" if r.fitted_where == "test" else "",
                f"accuracy changed {CHANGED}" if r.accuracy_changed else "",
            ]
            # the details on a second line: a panel is 4.2 inches wide, the ODIR and ETS
            # parameters alone take most of it
            key = f"{m.name} + {abbr}\n" + (", ".join(d for d in details if d) or " ")
            panels[key] = r.calibrated
            panel_colors[key] = colors[m.name]
    return panels, panel_colors, 1 + len(methods)


def _write_long_report(
    comp: Comparison, out: Path, *, inputs: list[str], flags: Mapping[str, str] | None
) -> list[Path]:
    """:func:`write_report_dir` of a long comparison (module docstring)."""
    from calibkit.io.atomic import atomic_directory, atomic_write_text
    from calibkit.plotting.reliability import plot_reliability
    from calibkit.plotting.save import save_figure
    from calibkit.plotting.sweep import plot_sweep
    from calibkit.report.summary_json import dumps

    sweep_method = comp.sweep_method
    if sweep_method is not None and comp.sweeps is None:
        raise UsageError(
            f"a report of {sweep_method!r} needs the comparison's temperature sweeps: "
            "calibkit.comparison.with_sweeps(comparison, models)"
        )
    check_report_dir(out, inputs)  # before the figures are drawn
    panels, panel_colors, ncols = long_reliability_panels(comp)
    reliability = plot_reliability(
        panels,
        colors=panel_colors,
        ncols=ncols,
        title="reliability before and after calibration (a row per model, a column per method)",
    )
    sweep = None
    if sweep_method is not None and comp.sweeps is not None:
        cls = registry.get(sweep_method)
        marked = cls.sweep_parameter
        fitted = {
            m.name: r.parameters[marked]
            for m in comp.models
            for r in m.calibrations
            if r.method == sweep_method and marked is not None and marked in r.parameters
        }
        symbol = cls.symbols.get(marked, marked) if marked is not None else ""
        in_sample = any(r.fitted_where == "test" for m in comp.models for r in m.calibrations)
        label = (
            f"{symbol} of {cls.title} fitted in-sample "
            f"({Param('ts_on_test', True).render(flags or {})})"
            if in_sample
            else f"{symbol} of {cls.title} fitted on validation"
        )
        sweep = plot_sweep(list(comp.sweeps), fitted=fitted, fitted_label=label)
    md = (
        "# Calibration report\n\n"
        + comparison_markdown(comp, flags)
        + "\n## Reliability diagrams\n\n"
        + "A row per model, a column per method (the model as given first).\n\n"
        + "![reliability diagrams](reliability.png)\n"
    )
    if sweep is not None:
        md += "\n## Temperature sweep\n\n![ECE and NLL against temperature](sweep.png)\n"
    names = ["reliability.png", *(["sweep.png"] if sweep is not None else [])]
    with atomic_directory(out, inputs, owned=REPORT_FILES) as build:
        save_figure(reliability, build / "reliability.png", inputs=inputs)
        if sweep is not None:
            save_figure(sweep, build / "sweep.png", inputs=inputs)
        atomic_write_text(build / "report.json", dumps(comp.to_dict(flags)), inputs=inputs)
        atomic_write_text(build / "report.md", md, inputs=inputs)
    return [out / name for name in (*names, "report.json", "report.md")]


def _diagnostics(comp: Comparison) -> tuple[str, list[str], list[list[str]]]:
    """The title, headers and cells of the implied-label-smoothing table (terminal and
    Markdown alike): 4 decimals, the implied alpha by :func:`~calibkit.report.tables.alpha_text`,
    ``-`` where a value is null; the soft-label columns only when some model has soft labels."""
    from calibkit.report.tables import alpha_text

    abbr = _method(comp).abbreviation
    calibrated = any(m.calibrated is not None for m in comp.models)
    soft = any(m.soft is not None for m in comp.models)
    title = "implied label smoothing" + ("; soft labels (nats)" if soft else "")
    heads = ["model", "median gap", "LS alpha"]
    if calibrated:
        heads += [f"{abbr} median gap", f"{abbr} LS alpha"]
    if soft:
        heads += ["KL", "H(p)", "H(t)"] + ([f"{abbr} KL", f"{abbr} H(p)"] if calibrated else [])
    rows = []
    for m in comp.models:
        row = [m.name]
        parts = [m.implied] + ([m.calibrated_implied] if calibrated else [])
        for implied in parts:
            row += [
                _fmt(implied.median_gap) if implied is not None else "-",
                alpha_text(implied.alpha) if implied is not None else "-",
            ]
        if soft:
            for metrics, keys in (
                (m.soft, ("kl_divergence", "entropy_predictions", "entropy_labels")),
                *(
                    ((m.calibrated_soft, ("kl_divergence", "entropy_predictions")),)
                    if calibrated
                    else ()
                ),
            ):
                row += [_fmt(getattr(metrics, k)) if metrics is not None else "-" for k in keys]
        rows.append(row)
    return title, heads, rows


def diagnostics_table(comp: Comparison) -> Table:
    """The implied label smoothing of each model (and after its calibrator, which divides the
    gaps by ``T`` for temperature scaling) and, for soft labels, KL and the entropies: printed
    under the comparison table (``compare --json``: the same numbers per model)."""
    title, heads, rows = _diagnostics(comp)
    t = Table(title=title, title_justify="left", header_style="bold")
    for i, head in enumerate(heads):
        t.add_column(head, justify="left" if i == 0 else "right")
    for row in rows:
        t.add_row(*row)
    return t


def diagnostics_markdown(comp: Comparison) -> str:
    """:func:`diagnostics_table` as GitHub Markdown: a ``##`` heading, the same columns and
    numbers, and a note defining them. :func:`comparison_markdown` ends with it (so
    ``compare --markdown`` and the report folder's ``report.md`` show it after the main table
    and its notes)."""
    cls = _method(comp)
    abbr = cls.abbreviation
    calibrated = any(m.calibrated is not None for m in comp.models)
    soft = any(m.soft is not None for m in comp.models)
    title, heads, rows = _diagnostics(comp)
    lines = [
        f"## {title[0].upper()}{title[1:]}",
        "",
        "| " + " | ".join(heads) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(heads) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    note = (
        "median gap: the median over correctly classified rows of `z_y - mean_{k≠y} z_k` "
        "(nats of logit); LS alpha = `K / (exp(median gap) + K - 1)`, the label smoothing "
        "whose optimum has that gap (Müller et al. 2019)"
    )
    if calibrated:
        note += f"; {abbr} columns: after {cls.title}" + (
            ", which divides every gap by T" if cls.sweep_parameter == "temperature" else ""
        )
    if soft:
        note += "; KL = `KL(t‖p)`, H(p) and H(t): mean entropies of the predictions and the labels"
    implied = [
        i
        for m in comp.models
        for i in (m.implied, *((m.calibrated_implied,) if m.calibrated is not None else ()))
    ]
    dashes = [
        text
        for text, shown in (
            (
                "nothing measured (`implied_ls_reason` in the JSON)",
                any(i is None or i.median_gap is None for i in implied),
            ),
            (f"no {abbr} fitted", calibrated and any(m.calibrated is None for m in comp.models)),
            ("hard labels", soft and any(m.soft is None for m in comp.models)),
        )
        if shown
    ]
    if dashes and any(cell == "-" for row in rows for cell in row[1:]):
        note += "; `-`: " + ", ".join(dashes)
    return "\n".join(lines) + "\n\n- " + note + "\n"
