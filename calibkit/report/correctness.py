"""The Rich tables of ``calibkit selective``: HELM's calibration metrics and selective
prediction of the top-label confidence (definitions: :mod:`calibkit.metrics.correctness`)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table

from calibkit.metrics.correctness import CorrectnessMetrics
from calibkit.report.tables import fmt
from calibkit.stats.selective import GroupedSelective

__all__ = ["grouped_table", "selective_renderable"]


def _value(m: CorrectnessMetrics, key: str, x: float | None) -> tuple[str, str | None]:
    return fmt(x), m.reasons.get(key)


def selective_renderable(m: CorrectnessMetrics) -> Group:
    """Two tables: calibration of the correctness event, then selective prediction."""
    t = Table(title=m.source, title_justify="left", header_style="bold")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("meaning", style="dim")
    frac = " (fractional correctness)" if m.fractional else ""
    bins = f"{m.ece_10_bin_nonempty} of 10 bins hold rows"
    rows: list[tuple[str, str, float | None, str]] = [
        ("accuracy", "accuracy", m.accuracy, "mean correctness" + frac),
        ("max_prob", "max_prob", m.mean_confidence, "mean top-label confidence"),
        ("ece_10_bin", "ece_10_bin", m.ece_10_bin, f"HELM: equal-mass ECE, 10 bins ({bins})"),
        ("ece_1_bin", "ece_1_bin", m.ece_1_bin, "HELM: |mean confidence - accuracy|"),
        ("ECE", "ece", m.ece, f"equal-width ECE, {m.n_bins} bins"),
        ("smooth ECE", "smooth_ece", m.smooth_ece, "kernel-smoothed ECE (Blasiok & Nakkiran)"),
        ("Brier", "brier_correct", m.brier, "mean (confidence - correct)^2 (binary, not K-way)"),
        ("NLL", "nll_correct", m.nll, "binary log loss of the correctness event, nats"),
        ("AUROC", "auroc_correct", m.auroc, "confidence as a score of being correct"),
        (
            "platt_ece_10_bin",
            "platt_ece_10_bin",
            m.platt_ece_10_bin,
            "HELM: Platt fitted and scored on the same rows (in-sample)",
        ),
        ("platt_ece_1_bin", "platt_ece_1_bin", m.platt_ece_1_bin, "HELM: the same, 1 bin"),
        (
            "platt_ece_10_bin_cv",
            "platt_ece_10_bin_cv",
            m.platt_ece_10_bin_cv,
            f"Platt scaling, cross-fitted ({m.folds} folds, seed {m.seed}): not HELM's",
        ),
        ("platt_ece_1_bin_cv", "platt_ece_1_bin_cv", m.platt_ece_1_bin_cv, "the same, 1 bin"),
        (
            "ts_ece_10_bin_cv",
            "ts_ece_10_bin_cv",
            m.ts_ece_10_bin_cv,
            f"temperature scaling ({m.ts_method}), cross-fitted ({m.folds} folds)",
        ),
    ]
    t.add_row("N", str(m.n), "rows")
    for label, key, x, meaning in rows:
        text, why = _value(m, key, x)
        t.add_row(label, text, why if why is not None else meaning)
    s = Table(title="selective prediction", title_justify="left", header_style="bold")
    s.add_column("metric")
    s.add_column("value", justify="right")
    s.add_column("meaning", style="dim")
    s.add_row("AURC", fmt(m.aurc), "mean selective risk over coverages k/N (lower is better)")
    s.add_row("AURC oracle", fmt(m.aurc_oracle), "the best possible order (correct rows first)")
    s.add_row("E-AURC", fmt(m.e_aurc), "AURC - oracle")
    s.add_row("AURC random", fmt(m.aurc_random), "a random order: 1 - accuracy")
    s.add_row("selective_cov_acc_area", fmt(m.selective_cov_acc_area), "HELM: 1 - AURC")
    s.add_row(
        "selective_acc@10", fmt(m.selective_acc_at_10), "HELM: accuracy of the int(0.1 N)+1 top"
    )
    for a in m.accuracy_at_coverage:
        used = f", {a.coverage:.1%} used (whole tie group)" if a.whole_tie_group else ""
        s.add_row(
            f"accuracy @ {a.target:.0%}", fmt(a.accuracy), f"the {a.rows} most confident{used}"
        )
    return Group(t, s)


def grouped_table(r: GroupedSelective) -> Table:
    """One row per group (the worst ``ece_10_bin`` first), then the micro and macro rows."""
    t = Table(
        title=f"{r.micro.source} by {', '.join(r.columns)} (worst ece_10_bin first; "
        f"* fewer than {r.min_rows} rows)",
        title_justify="left",
        header_style="bold",
    )
    heads = (
        "group",
        "N",
        "accuracy",
        "ece_10_bin",
        "ece_1_bin",
        "AURC",
        "AUROC",
        "platt_ece_10_bin_cv",
        "ts_ece_10_bin_cv",
    )
    for h in heads:
        t.add_column(h, justify="left" if h == "group" else "right")

    def cells(m: CorrectnessMetrics) -> list[str]:
        return [
            fmt(m.accuracy),
            fmt(m.ece_10_bin),
            fmt(m.ece_1_bin),
            fmt(m.aurc),
            fmt(m.auroc),
            fmt(m.platt_ece_10_bin_cv),
            fmt(m.ts_ece_10_bin_cv),
        ]

    for g in r.groups:
        t.add_row(g.label + (" *" if g.small else ""), str(g.metrics.n), *cells(g.metrics))
    t.add_section()
    t.add_row("micro (all rows)", str(r.micro.n), *cells(r.micro))
    keys = (
        "accuracy",
        "ece_10_bin",
        "ece_1_bin",
        "aurc",
        "auroc_correct",
        "platt_ece_10_bin_cv",
        "ts_ece_10_bin_cv",
    )
    t.add_row(
        f"macro (mean of {len(r.groups)} groups)",
        "-",
        *(fmt(r.macro[k]) for k in keys),
    )
    return t
