"""Tables of per-group results (``--group-by``): one row per group, then micro and macro.

:func:`groups_table` shows a :class:`~calibkit.stats.groups.GroupedSummary` (``calibkit ece
--group-by``), :func:`fit_groups_table` the per-group temperatures of ``fit-temp --group-by``
and :func:`compare_groups_table` the models side by side per group (``compare --group-by``).
A null value is ``-`` (as in :mod:`calibkit.report.tables`); a group with fewer rows than the
small-group threshold has its N marked ``*`` and the table a footnote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from calibkit.metrics import table as metric_table
from calibkit.report.tables import fmt
from calibkit.stats.groups import GroupedSummary

__all__ = [
    "compare_groups_table",
    "fit_groups_table",
    "groups_table",
    "small_groups_line",
    "small_note",
]

#: The metrics of the per-group table, in its order (the JSON has every headline metric).
SHOWN = ("accuracy", "ece", "mce", "nll", "brier")


def small_note(min_rows: int) -> str:
    """The footnote of a table with small groups."""
    return f"* fewer than {min_rows} examples: a 10-bin ECE is unreliable (HELM's guideline)"


def small_groups_line(labels: Sequence[str], min_rows: int, total: int) -> str:
    """The warning naming the small groups (the first five, then how many more)."""
    shown = "; ".join(labels[:5])
    more = f"; and {len(labels) - 5} more" if len(labels) > 5 else ""
    return (
        f"{len(labels)} of {total} groups have fewer than {min_rows} examples (a 10-bin ECE "
        f"is unreliable there, HELM's guideline): {shown}{more}"
    )


def _n_text(n: int, small: bool) -> str:
    return f"{n}*" if small else str(n)


def _cell(value: float | None, interval: Any = None) -> str:
    """``0.0410``, or with an interval ``0.041 [0.030, 0.055]`` (3 decimals, to keep it short)."""
    if interval is None:
        return fmt(value)
    text = fmt(value, 3)
    if text != "-":
        lo, hi = interval
        text += f" [{fmt(lo, 3)}, {fmt(hi, 3)}]"
    return text


def _label(name: str) -> str:
    return metric_table.get(name).label


def groups_table(gs: GroupedSummary, *, title: str | None = None) -> Table:
    """One row per group (worst first), then the micro (pooled) and macro (mean) rows."""
    level = f"; {gs.ci_level:.0%} bootstrap CI within each group" if gs.ci_level else ""
    t = Table(
        title=title
        or f"by {', '.join(gs.columns)}: {len(gs.groups)} groups, worst {_label(gs.order_by)} "
        f"first ({gs.micro.n_bins} {gs.micro.binning} bins{level})",
        title_justify="left",
        header_style="bold",
        caption=small_note(gs.min_rows) if gs.small_groups else None,
        caption_justify="left",
    )
    for column in gs.columns:
        t.add_column(column)
    t.add_column("N", justify="right")
    for name in SHOWN:
        t.add_column(_label(name), justify="right")
    for g in gs.groups:
        ci = g.ci or {}
        values = g.metrics()
        t.add_row(
            *g.key,
            _n_text(g.n, g.small),
            *(_cell(values[m], ci.get(m)) for m in SHOWN),
        )
    pad = [""] * (len(gs.columns) - 1)
    micro, mci = gs.micro_metrics(), gs.micro_ci or {}
    t.add_section()
    t.add_row(
        "micro (pooled)", *pad, str(gs.micro.n), *(_cell(micro[m], mci.get(m)) for m in SHOWN)
    )
    t.add_row(
        "macro (mean of groups)",
        *pad,
        f"{len(gs.groups)} groups",
        *(fmt(gs.macro.get(m), 3 if gs.ci_level else 4) for m in SHOWN),
    )
    return t


def fit_groups_table(
    columns: Sequence[str],
    pooled: Mapping[str, Any],
    groups: Sequence[Mapping[str, Any]],
    *,
    min_rows: int,
) -> Table:
    """``fit-temp --group-by``: per group of VAL its own temperature, NLL and ECE before and
    after it (and on the group of ``--eval`` when given), then the pooled fit."""
    has_eval = any(g.get("eval") for g in groups)
    small = any(g["n"] < min_rows for g in groups)
    t = Table(
        title=f"temperature per group of {', '.join(columns)} (each fitted on its own rows)",
        title_justify="left",
        header_style="bold",
        caption=small_note(min_rows) if small else None,
        caption_justify="left",
    )
    for column in columns:
        t.add_column(column)
    heads = ["N", "T", "NLL T=1", "NLL after", "ECE T=1", "ECE after"]
    if has_eval:
        heads += ["eval N", "eval ECE T=1", "eval ECE after"]
    for head in heads:
        t.add_column(head, justify="right")

    def cells(part: Mapping[str, Any], *, small_mark: bool) -> list[str]:
        row = [
            _n_text(int(part["n"]), small_mark),
            f"{part['temperature']:.4g}",
            fmt(part["nll_before"]),
            fmt(part["nll_after"]),
            fmt(part["ece_before"]),
            fmt(part["ece_after"]),
        ]
        if has_eval:
            ev = part.get("eval")
            row += (
                [str(ev["n"]), fmt(ev["ece_before"]), fmt(ev["ece_after"])]
                if ev
                else ["-", "-", "-"]
            )
        return row

    for g in groups:
        t.add_row(*g["group"].values(), *cells(g, small_mark=g["n"] < min_rows))
    t.add_section()
    t.add_row("pooled (saved)", *[""] * (len(columns) - 1), *cells(pooled, small_mark=False))
    return t


def compare_groups_table(
    columns: Sequence[str],
    models: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    min_rows: int,
    metrics: Sequence[str] = ("accuracy", "ece", "nll"),
) -> Table:
    """``compare --group-by``: one row per group, each model's metrics side by side (``-``
    where a model has no rows of the group); the last rows pooled and macro."""
    t = Table(
        title=f"by {', '.join(columns)}: {' vs '.join(models)}",
        title_justify="left",
        header_style="bold",
        caption=small_note(min_rows)
        if any(r.get("small") for r in rows if r["kind"] == "group")
        else None,
        caption_justify="left",
    )
    for column in columns:
        t.add_column(column)
    t.add_column("N", justify="right")
    for name in metrics:
        for model in models:
            t.add_column(f"{_label(name)} {model}", justify="right")
    sectioned = False
    for r in rows:
        if r["kind"] != "group" and not sectioned:
            t.add_section()
            sectioned = True
        key = r["group"] if r["kind"] == "group" else [r["kind"], *[""] * (len(columns) - 1)]
        n = r["n"]
        n_text = _n_text(n, bool(r.get("small"))) if isinstance(n, int) else str(n)
        values, cis = r["models"], r.get("ci") or {}
        t.add_row(
            *key,
            n_text,
            *(
                _cell(
                    values[model].get(name) if values.get(model) else None,
                    (cis.get(model) or {}).get(name),
                )
                for name in metrics
                for model in models
            ),
        )
    return t
