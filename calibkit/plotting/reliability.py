"""Reliability diagrams (Guo et al. 2017): accuracy per confidence bin against the diagonal.

:func:`prepare_reliability` turns a :class:`~calibkit.metrics.summary.CalibrationSummary` into
plain arrays; :func:`plot_reliability` draws one panel per model (bars of accuracy, the gap to the
bin's mean confidence shaded, the diagonal, and under it a histogram of sample counts), or all
models overlaid as lines with markers. Empty bins are outlined and labelled, never drawn as zero
accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.metrics.summary import CalibrationSummary
from calibkit.plotting.style import model_colors

__all__ = ["ReliabilityData", "plot_reliability", "prepare_reliability"]


@dataclass(frozen=True, eq=False)
class ReliabilityData:
    """What a reliability panel shows, per bin (arrays of length ``n_bins``)."""

    name: str
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    count: NDArray[np.int64]
    confidence: NDArray[np.float64]  # NaN for empty bins
    accuracy: NDArray[np.float64]  # NaN for empty bins
    ece: float
    n: int
    n_bins: int
    binning: str

    @property
    def empty(self) -> NDArray[np.bool_]:
        out: NDArray[np.bool_] = self.count == 0
        return out


def prepare_reliability(summary: CalibrationSummary, name: str | None = None) -> ReliabilityData:
    """The per-bin numbers of a summary, ready to draw."""
    b = summary.bins
    return ReliabilityData(
        name=name or summary.source,
        lower=b.lower,
        upper=b.upper,
        count=b.count,
        confidence=b.confidence,
        accuracy=b.accuracy,
        ece=summary.ece,
        n=summary.n,
        n_bins=summary.n_bins,
        binning=summary.binning,
    )


def _width_bars(ax: Any, data: ReliabilityData, color: str) -> None:
    width = data.upper - data.lower
    filled = ~data.empty
    ax.bar(
        data.lower[filled],
        data.accuracy[filled],
        width=width[filled],
        align="edge",
        color=color,
        alpha=0.85,
        edgecolor="white",
        lw=0.6,
        zorder=2,
        label="accuracy",
    )
    # the gap between the bin's accuracy and its mean confidence
    gap_lo = np.minimum(data.accuracy, data.confidence)[filled]
    gap_h = np.abs(data.accuracy - data.confidence)[filled]
    ax.bar(
        data.lower[filled],
        gap_h,
        bottom=gap_lo,
        width=width[filled],
        align="edge",
        color="0.35",
        alpha=0.3,
        edgecolor="0.15",
        hatch="//",
        lw=0.6,
        zorder=3,
        label="gap to confidence",
    )


def _mass_points(ax: Any, data: ReliabilityData, color: str) -> None:
    filled = ~data.empty
    conf, acc = data.confidence[filled], data.accuracy[filled]
    ax.vlines(
        conf,
        np.minimum(conf, acc),
        np.maximum(conf, acc),
        color="0.25",
        lw=2,
        alpha=0.5,
        zorder=2,
        label="gap to confidence",
    )
    ax.plot(conf, acc, "o-", color=color, ms=5, lw=1.4, zorder=3, label="accuracy")


def _smooth_curve(ax: Any, smooth: Any) -> None:
    """The smoothed reliability curve of smooth ECE (Błasiok & Nakkiran 2023), where the
    kernel density of confidences is not negligible."""
    keep = smooth.density > 0.02 * smooth.density.max()
    curve = np.where(keep, smooth.curve, np.nan)
    ax.plot(smooth.t, curve, color="black", lw=1.6, zorder=4, label="smoothed reliability")


#: Above this many bins, each run of empty bins gets one outline and the histogram has a bar
#: only for the non-empty bins: every bar is a matplotlib artist, and 10 000 of them take a
#: minute to draw.
MANY_BINS = 100


def _empty_outlines(data: ReliabilityData) -> list[tuple[float, float]]:
    """``(left, width)`` of each empty-bin outline: one per bin, or one per run of them."""
    if data.n_bins <= MANY_BINS:
        return [
            (float(lo), float(hi - lo))
            for lo, hi in zip(data.lower[data.empty], data.upper[data.empty], strict=True)
        ]
    empty = np.concatenate(([False], data.empty, [False]))
    starts = np.flatnonzero(empty[1:-1] & ~empty[:-2])
    ends = np.flatnonzero(empty[1:-1] & ~empty[2:])
    return [
        (float(data.lower[a]), float(data.upper[b] - data.lower[a]))
        for a, b in zip(starts, ends, strict=True)
    ]


def _panel(ax: Any, hist_ax: Any, data: ReliabilityData, color: str, smooth: Any = None) -> None:
    from matplotlib.patches import Rectangle

    width = data.upper - data.lower
    ax.plot([0, 1], [0, 1], ls="--", color="0.45", lw=1, zorder=1, label="perfect calibration")
    if data.binning == "mass":
        _mass_points(ax, data, color)
    else:
        _width_bars(ax, data, color)
    for lo, w in _empty_outlines(data):
        ax.add_patch(Rectangle((lo, 0), w, 1, fill=False, ls=":", lw=0.6, ec="0.75", zorder=0))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("auto")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.25, zorder=0)
    ax.set_title(data.name, fontsize=10)
    label = f"ECE = {data.ece:.4f}\nN = {data.n}"
    if smooth is not None:
        _smooth_curve(ax, smooth)
        label = f"ECE = {data.ece:.4f}\nsmECE = {smooth.value:.4f}\nN = {data.n}"
    ax.text(
        0.03,
        0.96,
        label,
        transform=ax.transAxes,
        va="top",
        fontsize=9,
        bbox={"boxstyle": "round", "fc": "white", "ec": "0.8", "alpha": 0.9},
    )
    hist_ax.set_xlim(0, 1)
    hist_ax.set_xlabel("confidence")
    hist_ax.grid(alpha=0.25)
    if data.binning == "mass":
        # equal-count bins: the counts say nothing, where the edges fall says everything
        hist_ax.vlines(data.upper, 0, 1, color=color, lw=1)
        hist_ax.set_ylim(0, 1)
        hist_ax.set_yticks([])
        hist_ax.set_ylabel("bin edges")
        per_bin = data.n / max(data.n_bins, 1)
        hist_ax.text(
            0.02,
            0.5,
            f"~{per_bin:.0f} rows per bin",
            transform=hist_ax.transAxes,
            va="center",
            fontsize=8,
            color="0.3",
        )
        return
    shown = np.ones(data.n_bins, dtype=bool) if data.n_bins <= MANY_BINS else ~data.empty
    hist_ax.bar(
        data.lower[shown],
        data.count[shown],
        width=width[shown],
        align="edge",
        color=color,
        alpha=0.7,
        edgecolor="white",
        lw=0.6,
    )
    hist_ax.set_ylabel("count")


def plot_reliability(
    summaries: Mapping[str, CalibrationSummary | None] | Sequence[CalibrationSummary],
    *,
    overlay: bool = False,
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
    ax: Any = None,
    ncols: int | None = None,
    smooth: Mapping[str, Any] | None = None,
) -> Any:
    """Reliability diagram(s); returns the matplotlib Figure.

    ``summaries`` maps model names to summaries (or is a sequence, named by source); a ``None``
    value leaves its grid slot blank, with the name as a note. With
    ``overlay=True`` (or an ``ax`` given) all models share one axes: lines with markers at each
    non-empty bin's (mean confidence, accuracy). Otherwise a grid with a reliability panel and a
    count histogram per model, sharing axes. ``smooth`` maps names to
    :class:`~calibkit.metrics.estimators.SmoothECE` results whose smoothed reliability curves are
    drawn over the panels (and instead of the binned lines when overlaid).
    """
    from matplotlib.figure import Figure

    if not isinstance(summaries, Mapping):
        summaries = {s.source: s for s in summaries}
    slots = [
        (name, prepare_reliability(s, name) if s is not None else None)
        for name, s in summaries.items()
    ]
    data = [d for _, d in slots if d is not None]
    palette = dict(colors or model_colors([d.name for d in data]))
    if overlay or ax is not None:
        return _overlay(data, palette, title, ax, smooth or {})
    n = len(slots)
    cols = ncols or min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.2 * cols, 4.9 * rows), layout="constrained")
    grid = fig.add_gridspec(2 * rows, cols, height_ratios=[3, 1] * rows)
    first = None
    for i, (name, d) in enumerate(slots):
        r, c = divmod(i, cols)
        if d is None:
            blank = fig.add_subplot(grid[2 * r : 2 * r + 2, c])
            blank.axis("off")
            blank.text(0.5, 0.5, name, ha="center", va="center", fontsize=9, color="0.4")
            continue
        top = fig.add_subplot(grid[2 * r, c], sharex=first, sharey=first)
        bottom = fig.add_subplot(grid[2 * r + 1, c], sharex=top)
        first = first or top
        _panel(top, bottom, d, palette[d.name], (smooth or {}).get(name))
        top.tick_params(labelbottom=False)
        if c:
            top.set_ylabel("")
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    fig.suptitle(title or f"reliability ({data[0].n_bins} {data[0].binning} bins)")
    return fig


def _overlay(
    data: list[ReliabilityData],
    palette: Mapping[str, str],
    title: str | None,
    ax: Any,
    smooth: Mapping[str, Any],
) -> Any:
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(6.4, 6.6), layout="constrained")
        grid = fig.add_gridspec(2, 1, height_ratios=[3, 1])
        ax = fig.add_subplot(grid[0])
        hist = fig.add_subplot(grid[1], sharex=ax)
    else:
        fig, hist = ax.figure, None
    ax.plot([0, 1], [0, 1], ls="--", color="0.45", lw=1, label="perfect calibration")
    for d in data:
        filled = ~d.empty
        sm = smooth.get(d.name)
        if sm is not None:
            keep = sm.density > 0.02 * sm.density.max()
            ax.plot(
                sm.t,
                np.where(keep, sm.curve, np.nan),
                lw=1.8,
                color=palette[d.name],
                label=f"{d.name} (smECE {sm.value:.4f}, N {d.n})",
            )
            continue
        ax.plot(
            d.confidence[filled],
            d.accuracy[filled],
            marker="o",
            ms=4,
            lw=1.6,
            color=palette[d.name],
            label=f"{d.name} (ECE {d.ece:.4f}, N {d.n})",
        )
        if hist is not None:
            edges = np.append(d.lower, d.upper[-1])
            hist.stairs(d.count, edges, color=palette[d.name], lw=1.4)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")
    if hist is not None:
        ax.tick_params(labelbottom=False)
        hist.set_xlabel("confidence (bin mean)")
        hist.set_ylabel("count")
        hist.grid(alpha=0.25)
    else:
        ax.set_xlabel("confidence (bin mean)")
    ax.set_title(title or f"reliability ({data[0].n_bins} {data[0].binning} bins)")
    return fig
