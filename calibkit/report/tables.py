"""Rich tables for the terminal (plain text when stdout is not a terminal)."""

from __future__ import annotations

import math

from rich.console import Group
from rich.table import Table

from calibkit.metrics.calibration import BinTable
from calibkit.metrics.summary import CalibrationSummary

__all__ = ["bins_table", "fmt", "metrics_table", "summary_renderable"]


def fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def metrics_table(s: CalibrationSummary) -> Table:
    t = Table(title=s.source, title_justify="left", show_header=True, header_style="bold")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("meaning", style="dim")
    rows = [
        ("N", str(s.n), "examples"),
        ("K", str(s.n_classes), "classes" + (" (binary model)" if s.binary_mode else "")),
        ("accuracy", fmt(s.accuracy), "share of rows whose argmax is the label"),
        ("ECE", fmt(s.ece), f"expected calibration error, {s.n_bins} {s.binning} bins"),
        ("MCE", fmt(s.mce), "largest |accuracy - confidence| of a non-empty bin"),
        ("RMSCE", fmt(s.rmsce), "root-mean-square calibration error"),
        ("NLL", fmt(s.nll), "mean -log p(label), natural log"),
        ("Brier", fmt(s.brier), "mean sum_k (p_k - onehot_k)^2"),
        ("confidence", fmt(s.mean_confidence), "mean top-label confidence"),
    ]
    if s.binary_mode == "positive":
        rows[3] = ("ECE", fmt(s.ece), f"ECE of p(y=1), {s.n_bins} {s.binning} bins")
    if s.kind == "confidence":
        rows[1] = ("K", "-", "confidence-only input: no classes, no NLL or Brier")
    for row in rows:
        t.add_row(*row)
    return t


def bins_table(table: BinTable) -> Table:
    t = Table(title="bins", title_justify="left", header_style="bold")
    for name in ("bin", "range", "count", "confidence", "accuracy", "gap"):
        t.add_column(name, justify="right")
    conf, acc, gap = table.confidence, table.accuracy, table.gap
    for i in range(table.n_bins):
        lo_bracket = "[" if i == 0 and table.binning == "width" else "("
        rng = f"{lo_bracket}{table.lower[i]:.3f}, {table.upper[i]:.3f}]"
        empty = table.count[i] == 0
        t.add_row(
            str(i + 1),
            rng,
            str(int(table.count[i])),
            "empty" if empty else fmt(conf[i]),
            "" if empty else fmt(acc[i]),
            "" if empty else f"{gap[i]:+.4f}",
        )
    return t


def summary_renderable(s: CalibrationSummary, *, show_bins: bool = True) -> Group:
    parts: list[Table] = [metrics_table(s)]
    if show_bins:
        parts.append(bins_table(s.bins))
    return Group(*parts)
