"""Rendering a gate :class:`~calibkit.gate.checks.Verdict`: Rich table, Markdown, JUnit XML.

JUnit: one ``<testsuite name="calibkit check">`` with a ``<testcase>`` per check
(``classname="calibkit.check"``, ``name`` the check's name); a failed check carries a
``<failure message="...">`` with the readable message, so Jenkins, GitLab and GitHub test
reporters show it.
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
    if v.passed:
        return f"PASSED: {len(v.checks)} of {len(v.checks)} checks"
    names = ", ".join(dict.fromkeys(metric_table.get(c.metric).label for c in v.failed))
    return f"FAILED: {len(v.failed)} of {len(v.checks)} checks ({names})"


def verdict_table(v: Verdict) -> Group:
    t = Table(title="calibkit check", title_justify="left", header_style="bold")
    for col in ("check", "value", "limit", "worsening", "CI", "p", "verdict"):
        t.add_column(col, justify="left" if col in ("check", "verdict") else "right")
    for c in v.checks:
        t.add_row(
            c.name,
            _num(c.value),
            _limit(c),
            "-" if c.delta is None else f"{c.delta:+.4f}",
            _ci(c),
            "-" if c.p_value is None else f"{c.p_value:.4f}",
            Text("pass", style="green") if c.passed else Text("FAIL", style="bold red"),
        )
    lines: list[Table | Text] = [t]
    for c in v.checks:
        mark = "ok  " if c.passed else "FAIL"
        lines.append(Text(f"{mark} {c.name}: {c.message}"))
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
        f"| `{c.name}` | {_num(c.value)} | {_limit(c)} | "
        f"{'-' if c.delta is None else f'{c.delta:+.4f}'} | {_ci(c)} | "
        f"{'-' if c.p_value is None else f'{c.p_value:.4f}'} | "
        f"{'✅ pass' if c.passed else '❌ **FAIL**'} |\n"
        for c in v.checks
    )
    notes = "".join(f"\n- {n}" for n in v.notes)
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
        skipped="0",
    )
    for c in v.checks:
        case = ET.SubElement(ts, "testcase", classname="calibkit.check", name=c.name)
        if not c.passed:
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
