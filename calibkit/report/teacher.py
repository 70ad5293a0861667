"""Tables, JSON and CSV of ``calibkit teacher`` and the summary of ``calibkit soft-targets``.

The numbers are those of :mod:`calibkit.diagnostics.distillation` (defined there): the mean
entropy of the soft targets (nats), their mean top-1 mass and the equivalent smoothing
``gamma(T)``, per teacher and temperature. This module only formats them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group
from rich.table import Table

from calibkit.diagnostics.distillation import SoftTargetSummary, TeacherCurve

__all__ = [
    "soft_target_json",
    "soft_target_table",
    "teacher_csv",
    "teacher_json",
    "teacher_tables",
]


def _labels(curve: TeacherCurve) -> str:
    return "soft" if curve.soft_labels else "hard"


def teacher_json(
    curves: Sequence[TeacherCurve], alphas: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """``{"teachers": [{"name", "source", "input", "labels", "n", "n_classes", "ls_alpha",
    "temperatures", "entropy", "top1", "gamma"}]}``; ``ls_alpha`` is the training alpha the user
    gave for that teacher (``--ls-alpha``), else ``null``."""
    alphas = alphas or {}
    return {
        "teachers": [
            {
                "name": c.name,
                "source": c.source,
                "input": c.kind,
                "labels": _labels(c),
                "n": c.n,
                "n_classes": c.n_classes,
                "ls_alpha": alphas.get(c.name),
                "temperatures": c.temperatures.tolist(),
                "entropy": c.entropy.tolist(),
                "top1": c.top1.tolist(),
                "gamma": c.gamma.tolist(),
            }
            for c in curves
        ]
    }


def teacher_csv(curves: Sequence[TeacherCurve]) -> str:
    """A tidy table ``teacher,temperature,entropy,top1,gamma`` (one row per teacher and T;
    numbers with 17 significant digits, so they read back exactly)."""
    lines = ["teacher,temperature,entropy,top1,gamma"]
    for c in curves:
        name = c.name if not any(ch in c.name for ch in ',"\n') else _quoted(c.name)
        for row in c.rows():
            values = ",".join(repr(row[key]) for key in ("temperature", "entropy", "top1", "gamma"))
            lines.append(f"{name},{values}")
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _cell(x: float, digits: int = 4) -> str:
    return "-" if not math.isfinite(x) else f"{x:.{digits}f}"


def teacher_tables(
    curves: Sequence[TeacherCurve], alphas: Mapping[str, float] | None = None
) -> Group:
    """Three tables, one column per teacher and one row per temperature: gamma(T), the mean
    entropy and the mean top-1 mass; then one line per teacher (N, K, input, labels)."""
    alphas = alphas or {}
    temps = sorted({float(t) for c in curves for t in c.temperatures})
    ks = sorted({c.n_classes for c in curves})
    log_k = " / ".join(f"{math.log(k):.3f}" for k in ks)
    specs = (
        ("gamma", "equivalent smoothing gamma(T) = mean wrong-class mass x K/(K-1)"),
        ("entropy", f"mean entropy of the soft targets, nats (uniform: log K = {log_k})"),
        ("top1", "mean top-1 mass of the soft targets"),
    )
    parts: list[Any] = []
    for metric, title in specs:
        t = Table(title=title, title_justify="left", header_style="bold", min_width=len(title))
        t.add_column("T", justify="right")
        for c in curves:
            t.add_column(c.name, justify="right")
        for temp in temps:
            cells = []
            for c in curves:
                hits = [i for i, v in enumerate(c.temperatures.tolist()) if v == temp]
                cells.append(_cell(float(getattr(c, metric)[hits[0]])) if hits else "-")
            t.add_row(f"{temp:g}", *cells)
        if metric == "gamma" and any(c.name in alphas for c in curves):
            t.add_row(
                "LS alpha given",
                *[_cell(alphas[c.name]) if c.name in alphas else "-" for c in curves],
                style="dim",
            )
        parts.append(t)
    for c in curves:
        parts.append(
            f"{c.name}: {c.source}, N = {c.n}, K = {c.n_classes}, input {c.kind}, "
            f"{_labels(c)} labels"
        )
    return Group(*parts)


def soft_target_json(summary: SoftTargetSummary, out: str) -> dict[str, Any]:
    """``{"source", "out", "input", "n", "n_classes", "temperature", "dtype", "entropy",
    "top1", "gamma", "argmax_changed", "argmax_changed_rows"}`` (the first rows, at most 5)."""
    c = summary.curve
    return {
        "source": c.source,
        "out": out,
        "input": c.kind,
        "n": c.n,
        "n_classes": c.n_classes,
        "temperature": summary.temperature,
        "dtype": summary.dtype,
        "entropy": float(c.entropy[0]),
        "top1": float(c.top1[0]),
        "gamma": float(c.gamma[0]),
        "argmax_changed": summary.argmax_changed,
        "argmax_changed_rows": list(summary.examples),
    }


def soft_target_table(summary: SoftTargetSummary, out: str) -> Table:
    """The summary of ``calibkit soft-targets`` as a two-column table."""
    c = summary.curve
    t = Table(
        title=f"soft targets softmax(z / T) of {c.source} -> {out}",
        title_justify="left",
        header_style="bold",
    )
    t.add_column("")
    t.add_column("value", justify="right")
    t.add_column("meaning", style="dim")
    changed = summary.argmax_changed
    log_k = math.log(c.n_classes)
    rows = [
        ("N", str(c.n), "examples"),
        ("K", str(c.n_classes), "classes"),
        ("T", f"{summary.temperature:g}", "temperature"),
        ("dtype", summary.dtype, "of the written probabilities"),
        ("entropy", _cell(float(c.entropy[0])), f"mean, nats (max log K = {log_k:.3f})"),
        ("top-1 mass", _cell(float(c.top1[0])), "mean largest soft target"),
        ("gamma", _cell(float(c.gamma[0])), "equivalent smoothing: wrong-class mass x K/(K-1)"),
        (
            "argmax changed",
            str(changed),
            "rows whose written argmax differs from the teacher's"
            + (f" (first: {', '.join(map(str, summary.examples))})" if changed else ""),
        ),
    ]
    for row in rows:
        t.add_row(*row)
    return t
