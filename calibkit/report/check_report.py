"""Rendering a gate :class:`~calibkit.gate.checks.Verdict`: Rich table, Markdown, JUnit XML.

JUnit: one ``<testsuite name="calibkit check">`` with a ``<testcase>`` per check
(``classname="calibkit.check"``, ``name`` the check's name); a failed check carries a
``<failure message="...">`` with the readable message, so Jenkins, GitLab and GitHub test
reporters show it. With ``--group-by`` each (check, group) is a testcase of its own, named
``max_ece[task=mmlu_anatomy]`` (the pooled checks keep their names); a group left out of the
gate (``--group-min-rows``) has ``<skipped message="...">`` testcases.

The text report lists every check in its table; below it, a line per pooled check and one per
failing group check (``FAIL max_ece[task=a]: ECE 0.0810 > limit 0.05 [task=a, N=135]``),
then how many groups passed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from rich.console import Group
from rich.table import Table
from rich.text import Text

from calibkit.gate.checks import Check, Verdict
from calibkit.metrics import table as metric_table

__all__ = ["verdict_junit", "verdict_markdown", "verdict_table"]


def _num(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _value(c: Check) -> str:
    """The check's value; ``-`` for a skipped group (too few rows: not measured), as the JSON's
    ``null``."""
    return "-" if c.skipped else _num(c.value)


def _limit(c: Check) -> str:
    if c.kind == "max":
        return f"<= {c.limit:g}"
    if c.kind == "min":
        return f">= {c.limit:g}"
    return f"worsening <= {c.limit:g}"


def _ci(c: Check) -> str:
    if c.ci_low is None or c.ci_high is None:
        return "-"
    return f"{c.ci_low:+.4f} .. {c.ci_high:+.4f}"


def summary_line(v: Verdict) -> str:
    ran = len(v.checks) - len(v.skipped)
    skipped = f", {len(v.skipped)} skipped" if v.skipped else ""
    if v.passed:
        return f"PASSED: {ran} of {ran} checks{skipped}"
    names = ", ".join(dict.fromkeys(metric_table.get(c.metric).label for c in v.failed))
    groups = list(dict.fromkeys(c.group_label for c in v.failed if c.group_label is not None))
    where = ""
    if groups:
        shown = "; ".join(groups[:10]) + (
            f"; ... ({len(groups) - 10} more)" if len(groups) > 10 else ""
        )
        where = f" in {len(groups)} group{'s' if len(groups) > 1 else ''}: {shown}"
    return f"FAILED: {len(v.failed)} of {ran} checks ({names}){where}{skipped}"


def groups_line(v: Verdict) -> str | None:
    """``groups by task: 55 of 57 pass every check, 2 fail, 3 skipped`` (None without groups)."""
    if not v.group_by:
        return None
    gated = [g for g in v.groups if not g.skipped]
    good = sum(1 for g in gated if g.passed)
    text = f"groups by {', '.join(v.group_by)}: {good} of {len(gated)} pass every check"
    if good < len(gated):
        text += f", {len(gated) - good} fail"
    skipped = len(v.groups) - len(gated)
    if skipped:
        text += f", {skipped} skipped (too few rows)"
    return text


def verdict_table(v: Verdict) -> Group:
    t = Table(title="calibkit check", title_justify="left", header_style="bold")
    columns = ("check", "N", "value") if v.group_by else ("check", "value")
    for col in (*columns, "limit", "worsening", "CI", "p", "verdict"):
        t.add_column(col, justify="left" if col in ("check", "verdict") else "right")
    for c in v.checks:
        n = ("-" if c.n is None else str(c.n),) if v.group_by else ()
        verdict = Text("pass", style="green") if c.passed else Text("FAIL", style="bold red")
        if c.skipped:
            verdict = Text("skip", style="dim")
        t.add_row(
            Text(c.name),  # not markup: a group's name has brackets, [task=a]
            *n,
            _value(c),
            _limit(c),
            "-" if c.delta is None else f"{c.delta:+.4f}",
            _ci(c),
            "-" if c.p_value is None else f"{c.p_value:.4f}",
            verdict,
        )
    lines: list[Table | Text] = [t]
    for c in v.checks:
        if c.group is not None and c.passed:
            continue  # a group's passing checks are in the table; its failures are named
        mark = "ok  " if c.passed else "FAIL"
        lines.append(Text(f"{mark} {c.name}: {c.message}"))
    groups = groups_line(v)
    if groups is not None:
        lines.append(Text(groups))
    for note in v.notes:
        lines.append(Text(f"note: {note}", style="dim"))
    lines.append(Text(summary_line(v), style="bold green" if v.passed else "bold red"))
    return Group(*lines)


def verdict_markdown(v: Verdict) -> str:
    head = (
        "| check | value | limit | worsening | CI | p | verdict |\n"
        "|---|---:|---:|---:|---:|---:|---|\n"
    )
    rows = "".join(
        f"| `{c.name}` | {_value(c)} | {_limit(c)} | "
        f"{'-' if c.delta is None else f'{c.delta:+.4f}'} | {_ci(c)} | "
        f"{'-' if c.p_value is None else f'{c.p_value:.4f}'} | "
        f"{'⏭ skip' if c.skipped else '✅ pass' if c.passed else '❌ **FAIL**'} |\n"
        for c in v.checks
    )
    groups = groups_line(v)
    notes = "".join(f"\n- {n}" for n in ([groups] if groups else []) + list(v.notes))
    status = "✅" if v.passed else "❌"
    return f"### calibkit check: {status} {summary_line(v)}\n\n{head}{rows}{notes}\n"


def verdict_junit(v: Verdict, *, suite: str = "calibkit check") -> str:
    """JUnit XML text (UTF-8), one testcase per check."""
    root = ET.Element("testsuites", name="calibkit")
    ts = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(v.checks)),
        failures=str(len(v.failed)),
        errors="0",
        skipped=str(len(v.skipped)),
    )
    for c in v.checks:
        case = ET.SubElement(ts, "testcase", classname="calibkit.check", name=c.name)
        if c.skipped:
            ET.SubElement(case, "skipped", message=c.message)
        elif not c.passed:
            fail = ET.SubElement(case, "failure", message=c.message, type="CalibrationRegression")
            fail.text = c.message
        out = ET.SubElement(case, "system-out")
        out.text = c.message
    if v.notes:
        props = ET.SubElement(ts, "properties")
        for i, note in enumerate(v.notes):
            ET.SubElement(props, "property", name=f"note{i}", value=note)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
