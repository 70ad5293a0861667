"""Rich tables for the terminal (plain text when stdout is not a terminal)."""

from __future__ import annotations

import math

from rich.console import Group
from rich.table import Table

from calibkit.metrics import table as metric_table
from calibkit.metrics.calibration import BinTable
from calibkit.metrics.soft_labels import SoftLabelMetrics
from calibkit.metrics.summary import CalibrationSummary

__all__ = [
    "alpha_text",
    "bins_table",
    "extended_table",
    "fmt",
    "metrics_table",
    "soft_label_table",
    "summary_renderable",
]


def fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def alpha_text(alpha: float | None) -> str:
    """An implied smoothing ``alpha``: 4 decimals, or 3 significant digits below 0.001 (a
    hard-label model's ``2.5e-10`` would read ``0.0000``); ``-`` when there is none."""
    if alpha is None or (isinstance(alpha, float) and math.isnan(alpha)):
        return "-"
    return f"{alpha:.4f}" if alpha == 0 or alpha >= 1e-3 else f"{alpha:.3g}"


def soft_label_table(m: SoftLabelMetrics) -> Table:
    """The metrics against the label distribution (``calibkit ece`` with soft labels)."""
    t = Table(
        title="against the label distribution (soft labels)",
        title_justify="left",
        header_style="bold",
    )
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("meaning", style="dim")
    rows = [
        ("cross-entropy", fmt(m.cross_entropy), "mean -sum_k t_k log p_k, nats (= NLL)"),
        ("KL(t || p)", fmt(m.kl_divergence), "cross-entropy - H(t), nats"),
        ("H(p)", fmt(m.entropy_predictions), "mean entropy of the predictions, nats"),
        ("H(t)", fmt(m.entropy_labels), "mean entropy of the labels, nats"),
        (
            "ECE (argmax t)",
            fmt(m.ece_label_argmax),
            f"correct = argmax p == argmax t, {m.n_bins} {m.binning} bins",
        ),
        ("ECE (label mass)", fmt(m.ece_label_mass), "outcome = t of the predicted class"),
        ("tied argmax t", str(m.tied_label_argmax), "rows whose label maximum is shared"),
    ]
    for row in rows:
        t.add_row(*row)
    return t


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
        rows[2] = ("accuracy", fmt(s.accuracy), "mean of the rows' correctness")
    elif "ragged" in s.input_reason:
        rows[1] = ("K", str(s.n_classes), "choices of the longest question (ragged K)")
    rows.insert(2, ("input", s.kind, s.input_reason or "how the scores were read"))
    registered = [  # a registered headline metric: after Brier (the built-ins' rows are above)
        (m.label, m.format(m.summary_value(s)), m.extended.what if m.extended else m.unit)
        for m in metric_table.metrics(lambda m: m.summary)
        if m.name not in metric_table.BUILTIN
    ]
    at = next(i for i, row in enumerate(rows) if row[0] == "Brier") + 1
    rows[at:at] = registered
    if s.kind == "probs":
        rows.append(
            (
                "p(label) = 0",
                str(s.zero_prob_rows),
                "rows with an exact 0 for the label: NLL terms are lower bounds"
                if s.zero_prob_rows
                else "rows with an exact 0 for the label",
            )
        )
    for row in rows:
        t.add_row(*row)
    return t


#: Above this many bins, each run of empty bins is one row ("3-998 ... empty"): the table then
#: has at most 2 N + 1 rows (a rich table costs about a millisecond a row).
COLLAPSE_EMPTY_ABOVE = 100


def _bin_rows(table: BinTable) -> list[tuple[int, int]]:
    """``(first, last)`` bin of each row: one bin a row, or runs of empty bins joined."""
    if table.n_bins <= COLLAPSE_EMPTY_ABOVE:
        return [(i, i) for i in range(table.n_bins)]
    rows: list[tuple[int, int]] = []
    for i in range(table.n_bins):
        if rows and table.count[i] == 0 and table.count[rows[-1][1]] == 0:
            rows[-1] = (rows[-1][0], i)
        else:
            rows.append((i, i))
    return rows


def bins_table(table: BinTable) -> Table:
    t = Table(title="bins", title_justify="left", header_style="bold")
    for name in ("bin", "range", "count", "confidence", "accuracy", "gap"):
        t.add_column(name, justify="right")
    conf, acc, gap = table.confidence, table.accuracy, table.gap
    digits = max(3, len(str(table.n_bins)))  # edges 1/M apart stay distinct
    for i, last in _bin_rows(table):
        lo_bracket = "[" if i == 0 and table.binning == "width" else "("
        rng = f"{lo_bracket}{table.lower[i]:.{digits}f}, {table.upper[last]:.{digits}f}]"
        empty = table.count[i] == 0
        t.add_row(
            str(i + 1) if last == i else f"{i + 1}-{last + 1}",
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


def extended_table(s: CalibrationSummary, extra: dict[str, object]) -> Group:
    """The ``--all`` estimators with their bootstrap intervals, then the bin sensitivity."""
    headline = metric_table.metrics(lambda m: m.summary)
    values = {**{m.name: m.summary_value(s) for m in headline}, **extra}
    ci = extra.get("ci", {})
    assert isinstance(ci, dict)
    level = extra.get("ci_level", 0.95)
    t = Table(
        title=f"estimators ({s.n_bins} {s.binning} bins; {level:.0%} bootstrap CI, "
        f"{extra.get('bootstrap')} replicates)",
        title_justify="left",
        header_style="bold",
    )
    for col in ("estimator", "value", "CI", "what"):
        t.add_column(col, justify="right" if col in ("value", "CI") else "left")
    for metric, shown in metric_table.extended_rows():  # the table's rows, by rank
        if metric.name not in values:
            continue
        v = values[metric.name]
        interval = ci.get(metric.name)
        t.add_row(
            shown.label,
            metric.format(v if isinstance(v, float) else None),
            f"{interval[0]:.4f} .. {interval[1]:.4f}" if interval else "-",
            shown.what,
        )
    top_k = extra.get("top_k_accuracy")
    if isinstance(top_k, dict):
        for k, v in top_k.items():
            if k != "1":
                t.add_row(f"top-{k} accuracy", fmt(v), "-", "label among the k highest scores")
    if "implied_ls_alpha" in extra:
        gap, alpha = extra.get("median_logit_gap"), extra.get("implied_ls_alpha")
        reason = extra.get("implied_ls_reason")
        t.add_row(
            "median logit gap",
            fmt(gap if isinstance(gap, float) else None),
            "-",
            f"z_y - mean other z, {extra.get('implied_ls_correct')} correct rows"
            if reason is None
            else str(reason),
        )
        t.add_row(
            "implied LS alpha",
            alpha_text(alpha if isinstance(alpha, float) else None),
            "-",
            "label smoothing whose optimum has that gap",
        )
    parts: list[Table] = [t]
    sens = extra.get("bin_sensitivity")
    if isinstance(sens, list):
        st = Table(title="bin sensitivity of ECE", title_justify="left", header_style="bold")
        st.add_column("binning")
        counts = sorted({int(r["n_bins"]) for r in sens})
        for m in counts:
            st.add_column(f"M={m}", justify="right")
        for binning in ("width", "mass"):
            row = {int(r["n_bins"]): float(r["ece"]) for r in sens if r["binning"] == binning}
            st.add_row(binning, *(fmt(row[m]) for m in counts))
        parts.append(st)
    worst = extra.get("worst_classes")
    if isinstance(worst, list) and worst:
        wt = Table(
            title="worst classes by class-wise ECE", title_justify="left", header_style="bold"
        )
        wt.add_column("class", justify="right")
        wt.add_column("ECE", justify="right")
        for row in worst[:5]:
            wt.add_row(str(row["class"]), fmt(row["ece"]))
        parts.append(wt)
    return Group(*parts)
