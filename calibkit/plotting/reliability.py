"""Reliability diagrams (Guo et al. 2017): accuracy per confidence bin against the diagonal.

:func:`prepare_reliability` turns a :class:`~calibkit.metrics.summary.CalibrationSummary` into
plain arrays; :func:`plot_reliability` draws one panel per model, or all models overlaid as lines
with markers.

A panel of equal-width bins draws, per non-empty bin, a solid bar in the model's colour whose top
is the bin's accuracy, and the gap to the bin's mean confidence as an outlined, hatched band
between the two (:data:`~calibkit.plotting.style.GAP_STYLE`): above the bar where the model is
over-confident, over the bar's top where it is under-confident (the bar's colour shows through),
so the band looks the same both ways. Empty bins are pale dashed boxes, never zero accuracy. Under
it, a histogram of the counts on a log axis, with each count printed for up to
:data:`COUNT_LABELS_ALL` bins (above that, the small ones), so a loud bar of two examples is
seen to be two examples. ``intervals="wilson"`` adds per-bin Wilson score intervals on the
accuracy (:func:`~calibkit.metrics.intervals.wilson_interval`).

Equal-mass bins are marked at (mean confidence, accuracy); a confident model's equal-mass bins
crowd at confidence ≈ 1, so their x axis is by default in ``-log10(1 - confidence)`` with ticks
labelled as confidences (0.5, 0.9, 0.99, ...), which gives each decade of ``1 - confidence`` the
same room. In ``--binary positive`` mode the axes read "predicted p(y = 1)" and "observed
frequency of class 1".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.errors import UsageError
from calibkit.metrics.intervals import check_level, wilson_interval
from calibkit.metrics.summary import CalibrationSummary
from calibkit.plotting.style import EMPTY_STYLE, GAP_STYLE, INTERVAL_STYLE, model_colors

__all__ = [
    "CONFIDENCE_SCALES",
    "INTERVAL_METHODS",
    "ReliabilityData",
    "axis_labels",
    "plot_reliability",
    "prepare_reliability",
]

#: ``x`` axis of the confidence: ``auto`` is ``tail`` for equal-mass bins, else ``linear``;
#: ``tail`` is an axis in ``-log10(1 - confidence)``.
CONFIDENCE_SCALES = ("auto", "linear", "tail")
#: Per-bin intervals on the accuracy that :func:`plot_reliability` can draw.
INTERVAL_METHODS = ("wilson",)

#: Up to this many bins every non-empty bin's count is printed over its histogram bar.
COUNT_LABELS_ALL = 20
#: Up to this many bins the counts of small bins (under :data:`SMALL_BIN` examples) are printed.
COUNT_LABELS_SMALL = 50
SMALL_BIN = 30
#: The ``tail`` axis ends at ``1 - 10**-k`` for the smallest ``k`` in [2, 15] that holds every
#: confidence below 1 drawn; confidences beyond (an exact 1.0 among them) sit on its right edge.
TAIL_MIN_DECADES = 2
TAIL_MAX_DECADES = 15


@dataclass(kw_only=True, frozen=True, eq=False)
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
    #: the summary's binary mode: ``"positive"`` bins p(y = 1) against the frequency of class 1
    binary_mode: str | None = None
    #: per-bin interval on the accuracy (NaN for empty bins), when one was asked for
    interval_lower: NDArray[np.float64] | None = None
    interval_upper: NDArray[np.float64] | None = None
    interval_label: str = ""

    @property
    def empty(self) -> NDArray[np.bool_]:
        out: NDArray[np.bool_] = self.count == 0
        return out


def _percent(level: float) -> str:
    text = f"{level * 100:.4g}"
    if float(text) >= 100:  # (0.99999 would read "100%")
        text = f"{level * 100:.10g}"
    return f"{text}%"


def _edge_width(data: ReliabilityData) -> float:
    """Bars' white edges; none above :data:`MANY_BINS` bins, where an edge is wider than a bar
    and would hide it."""
    return 0.6 if data.n_bins <= MANY_BINS else 0.0


def prepare_reliability(
    summary: CalibrationSummary,
    name: str | None = None,
    *,
    intervals: str | None = None,
    ci: float = 0.95,
) -> ReliabilityData:
    """The per-bin numbers of a summary, ready to draw; ``intervals="wilson"`` adds each bin's
    Wilson score interval at level ``ci`` on its accuracy."""
    b = summary.bins
    lower = upper = None
    label = ""
    if intervals is not None:
        if intervals not in INTERVAL_METHODS:
            raise UsageError(f"intervals must be one of {', '.join(INTERVAL_METHODS)}")
        level = check_level(ci)
        # clipped: float sums of 0/1 outcomes can exceed their count by rounding only
        successes = np.clip(b.sum_outcome, 0.0, b.count.astype(np.float64))
        lower, upper = wilson_interval(successes, b.count, level)
        label = f"{_percent(level)} Wilson interval"
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
        binary_mode=summary.binary_mode,
        interval_lower=lower,
        interval_upper=upper,
        interval_label=label,
    )


def axis_labels(binary_mode: str | None) -> dict[str, str]:
    """What the axes and marks of a panel are called: in ``positive`` binary mode the bins are of
    the predicted p(y = 1) and their height is the observed frequency of class 1.

    >>> axis_labels("positive")["y"]
    'observed frequency of class 1'
    """
    if binary_mode == "positive":
        return {
            "y": "observed frequency of class 1",
            "x": "predicted p(y = 1)",
            "bar": "frequency of class 1",
            "gap": "gap to mean p(y = 1)",
            "x_symbol": "p",
        }
    return {
        "y": "accuracy",
        "x": "confidence",
        "bar": "accuracy",
        "gap": "gap to confidence",
        "x_symbol": "confidence",
    }


# --------------------------------------------------------------------------------------------
# the confidence axis


def _x_label(names: Mapping[str, str], scale: str) -> str:
    if scale == "tail":
        # minus signs and subscript digits, as escapes
        return f"{names['x']} (axis in \u2212log\u2081\u2080(1 \u2212 {names['x_symbol']}))"
    return names["x"]


def _tail_decades(data: Sequence[ReliabilityData]) -> int:
    """The ``k`` of the ``tail`` axis: room for every bin's mean confidence below 1 (bin edges
    beyond it are drawn on the right edge)."""
    values = [d.confidence[~d.empty] for d in data]
    v = np.concatenate(values) if values else np.zeros(0)
    v = v[np.isfinite(v) & (v < 1)]
    if v.size == 0:
        return TAIL_MIN_DECADES
    top = float(-np.log10(1 - v.max()))
    return int(min(max(math.ceil(top + 0.05), TAIL_MIN_DECADES), TAIL_MAX_DECADES))


def _tail_tick_label(k: int) -> str:
    return f"0.{'9' * k}" if k <= 3 else rf"$1-10^{{-{k}}}$"


def _set_tail_scale(ax: Any, decades: int) -> None:
    """``ax``'s x axis in ``-log10(1 - confidence)`` up to ``1 - 10**-decades``."""
    from matplotlib.ticker import FixedFormatter, FixedLocator

    floor = 10.0**-decades

    def forward(x: Any) -> Any:
        gap = np.clip(1 - np.asarray(x, dtype=np.float64), floor, None)
        return -np.log10(gap)

    def inverse(u: Any) -> Any:
        return 1 - 10.0 ** -np.asarray(u, dtype=np.float64)

    ax.set_xscale("function", functions=(forward, inverse))
    ax.set_xlim(0, 1)
    stride = 1 if decades <= 5 else 2 if decades <= 10 else 3
    ks = list(range(1, decades + 1))
    major = [k for k in ks if k == 1 or k % stride == 0]
    low = [(0.0, "0"), (0.5, "0.5")] if decades <= 3 else [(0.5, "0.5")] if decades <= 5 else []
    ticks = [t for t, _ in low] + [1 - 10.0**-k for k in major]
    labels = [lab for _, lab in low] + [_tail_tick_label(k) for k in major]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FixedFormatter(labels))
    ax.xaxis.set_minor_locator(FixedLocator([1 - 10.0**-k for k in ks if k not in major]))
    ax.tick_params(axis="x", labelsize=8)


def _resolve_scale(confidence_scale: str, data: Sequence[ReliabilityData]) -> str:
    if confidence_scale not in CONFIDENCE_SCALES:
        raise UsageError(f"confidence_scale must be one of {', '.join(CONFIDENCE_SCALES)}")
    if confidence_scale != "auto":
        return confidence_scale
    return "tail" if any(d.binning == "mass" for d in data) else "linear"


def _diagonal(ax: Any, scale: str, **kw: Any) -> Any:
    if scale == "linear":
        xs = np.array([0.0, 1.0])
    else:  # a straight line only in linear coordinates: sample it along the axis
        xs = 1 - 10.0 ** -np.linspace(0, TAIL_MAX_DECADES, 600)
    (line,) = ax.plot(xs, xs, ls="--", color="0.45", lw=1, label="perfect calibration", **kw)
    return line


def _centres(ax: Any, lower: NDArray[np.float64], upper: NDArray[np.float64]) -> Any:
    """Midpoints of ``[lower, upper]`` as drawn on ``ax``'s (possibly non-linear) x axis."""
    t = ax.xaxis.get_transform()
    mid = (t.transform(lower) + t.transform(upper)) / 2
    return t.inverted().transform(mid)


# --------------------------------------------------------------------------------------------
# a panel


def _width_bars(ax: Any, data: ReliabilityData, color: str, names: Mapping[str, str]) -> None:
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
        lw=_edge_width(data),
        zorder=2,
        label=names["bar"],
    )
    # the gap between the bin's accuracy and its mean confidence, the same band both ways
    gap_lo = np.minimum(data.accuracy, data.confidence)[filled]
    gap_h = np.abs(data.accuracy - data.confidence)[filled]
    ax.bar(
        data.lower[filled],
        gap_h,
        bottom=gap_lo,
        width=width[filled],
        align="edge",
        zorder=3,
        label=names["gap"],
        **{**GAP_STYLE, "linewidth": GAP_STYLE["linewidth"] if data.n_bins <= MANY_BINS else 0},
    )


def _mass_points(ax: Any, data: ReliabilityData, color: str, names: Mapping[str, str]) -> None:
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
        label=names["gap"],
    )
    # values lie in [0, 1]: unclipped, a marker at 0 or 1 shows whole over the frame
    ax.plot(conf, acc, "o-", color=color, ms=5, lw=1.4, zorder=3, clip_on=False, label=names["bar"])


def _interval_bars(ax: Any, data: ReliabilityData, x: Any, **style: Any) -> None:
    if data.interval_lower is None or data.interval_upper is None:
        return
    filled = ~data.empty
    acc = data.accuracy[filled]
    lo, hi = data.interval_lower[filled], data.interval_upper[filled]
    ax.errorbar(
        x,
        acc,
        yerr=np.vstack([np.maximum(acc - lo, 0), np.maximum(hi - acc, 0)]),
        fmt="none",
        zorder=6,
        label=data.interval_label,
        **{**INTERVAL_STYLE, **style},
    )


def _smooth_range(data: ReliabilityData, given: tuple[float, float] | None) -> tuple[float, float]:
    """Where the smoothed curve is drawn: the span of the confidences (``given``), else the span
    of the non-empty bins."""
    if given is not None:
        return float(given[0]), float(given[1])
    filled = np.flatnonzero(~data.empty)
    if filled.size == 0:
        return 0.0, -1.0  # nothing to draw
    return float(data.lower[filled[0]]), float(data.upper[filled[-1]])


def _smooth_xy(smooth: Any, span: tuple[float, float]) -> tuple[Any, Any]:
    t = np.asarray(smooth.t, dtype=np.float64)
    curve = np.clip(np.asarray(smooth.curve, dtype=np.float64), 0.0, 1.0)
    keep = (t >= span[0]) & (t <= span[1]) & np.isfinite(curve)
    return t[keep], curve[keep]


def _smooth_curve(ax: Any, smooth: Any, span: tuple[float, float]) -> None:
    """The smoothed reliability curve of smooth ECE (Błasiok & Nakkiran 2023), over the range
    of confidences that holds data."""
    x, y = _smooth_xy(smooth, span)
    ax.plot(
        x,
        y,
        color="black",
        lw=1.6,
        zorder=4,
        clip_on=False,  # clipped to [0, 1] already: a stretch at 1 shows over the frame
        label="smoothed reliability (smooth ECE)",
    )


#: Above this many bins the histogram has a bar only for the non-empty bins: every bar is a
#: matplotlib artist, and 10 000 of them take a minute to draw.
MANY_BINS = 100


def _empty_outlines(data: ReliabilityData) -> list[tuple[float, float]]:
    """``(left, width)`` of each empty-bin box: one per run of adjacent empty bins (inner edges
    between empty bins would read as gridlines)."""
    empty = np.concatenate(([False], data.empty, [False]))
    starts = np.flatnonzero(empty[1:-1] & ~empty[:-2])
    ends = np.flatnonzero(empty[1:-1] & ~empty[2:])
    return [
        (float(data.lower[a]), float(data.upper[b] - data.lower[a]))
        for a, b in zip(starts, ends, strict=True)
    ]


def _short_count(n: int) -> str:
    """A count in at most four characters: ``386``, ``4.5k``, ``12k``, ``1.2M``.

    >>> [_short_count(n) for n in (7, 999, 4512, 12_345, 999_600, 1_234_567)]
    ['7', '999', '4.5k', '12k', '1.0M', '1.2M']
    """
    if n < 1000:
        return str(n)
    v = float(n)
    for unit in ("k", "M", "G", "T"):
        v /= 1000
        if v < 9.95:
            return f"{v:.1f}{unit}"
        if v < 999.5:
            return f"{v:.0f}{unit}"
    return f"{v:.0f}T"


def _count_histogram(hist_ax: Any, data: ReliabilityData, color: str, top: int) -> None:
    width = data.upper - data.lower
    shown = np.ones(data.n_bins, dtype=bool) if data.n_bins <= MANY_BINS else ~data.empty
    hist_ax.bar(
        data.lower[shown],
        data.count[shown],
        width=width[shown],
        align="edge",
        color=color,
        alpha=0.7,
        edgecolor="white",
        lw=_edge_width(data),
    )
    hist_ax.set_yscale("log")
    if data.n_bins <= COUNT_LABELS_ALL:
        labelled = ~data.empty
    elif data.n_bins <= COUNT_LABELS_SMALL:
        labelled = ~data.empty & (data.count < SMALL_BIN)
    else:
        labelled = np.zeros(data.n_bins, dtype=bool)
    rotate = data.n_bins > COUNT_LABELS_ALL
    xs = _centres(hist_ax, data.lower[labelled], data.upper[labelled])
    for x, c in zip(xs, data.count[labelled], strict=True):
        hist_ax.text(
            x,
            c * 1.15,
            _short_count(int(c)),
            ha="center",
            va="bottom",
            fontsize=6.5,
            color="0.15",
            rotation=90 if rotate else 0,
            gid="bin-count",
        )
    hist_ax.set_ylim(0.7, max(top, 1) * (12 if labelled.any() else 2))
    _log_count_axis(hist_ax)


def _log_count_axis(ax: Any) -> None:
    """A log count axis labelled 1, 10, 100, ... (not 10^0, 10^3)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.yaxis.set_major_locator(LogLocator(base=10, numticks=12))
    ax.yaxis.set_major_formatter(
        FuncFormatter(lambda v, _: f"{v:g}" if v < 1e5 else _short_count(round(v)))
    )
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis="y", labelsize=8)
    ax.set_ylabel("count (log)")


def _panel(
    ax: Any,
    hist_ax: Any,
    data: ReliabilityData,
    color: str,
    smooth: Any = None,
    *,
    scale: str = "linear",
    decades: int = TAIL_MIN_DECADES,
    span: tuple[float, float] | None = None,
    count_top: int | None = None,
) -> None:
    from matplotlib.patches import Rectangle

    names = axis_labels(data.binary_mode)
    if scale == "tail":
        _set_tail_scale(ax, decades)
    _diagonal(ax, scale, zorder=1)
    if data.binning == "mass":
        _mass_points(ax, data, color, names)
        _interval_bars(ax, data, data.confidence[~data.empty])
    else:
        _width_bars(ax, data, color, names)
        filled = ~data.empty
        _interval_bars(ax, data, _centres(ax, data.lower[filled], data.upper[filled]))
    for i, (lo, w) in enumerate(_empty_outlines(data)):
        ax.add_patch(
            Rectangle(
                (lo, 0),
                w,
                1,
                zorder=0.5,
                gid="empty-bin",
                label="empty bin (no data)" if i == 0 else "_nolegend_",
                **EMPTY_STYLE,
            )
        )
    if scale == "linear":
        ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("auto")
    ax.set_ylabel(names["y"])
    ax.grid(alpha=0.25, zorder=0)
    ax.set_title(data.name, fontsize=10, pad=8)
    label = f"ECE = {data.ece:.4f}\nN = {data.n}"
    if smooth is not None:
        _smooth_curve(ax, smooth, _smooth_range(data, span))
        label = f"ECE = {data.ece:.4f}\nsmECE = {smooth.value:.4f}\nN = {data.n}"
    tail = scale == "tail"  # there the high-accuracy markers fill the top left
    ax.text(
        0.97 if tail else 0.03,
        0.04 if tail else 0.96,
        label,
        transform=ax.transAxes,
        va="bottom" if tail else "top",
        ha="right" if tail else "left",
        fontsize=9,
        bbox={"boxstyle": "round", "fc": "white", "ec": "0.8", "alpha": 0.9},
        zorder=3.5,  # over the bars, under the smoothed curve and the intervals
    )
    if scale == "linear":
        hist_ax.set_xlim(0, 1)
    hist_ax.set_xlabel(_x_label(names, scale))
    hist_ax.grid(alpha=0.25)
    if data.binning == "mass":
        # equal-count bins: the counts say nothing, where the edges fall says everything
        hist_ax.vlines(data.upper, 0, 1, color=color, lw=1)
        hist_ax.set_ylim(0, 1)
        hist_ax.set_yticks([])
        hist_ax.set_ylabel("bin edges")
        per_bin = data.n / max(data.n_bins, 1)
        hist_ax.text(
            0.98 if tail else 0.02,
            0.5,
            f"~{per_bin:.0f} rows per bin",
            transform=hist_ax.transAxes,
            va="center",
            ha="right" if tail else "left",
            fontsize=8,
            color="0.3",
            bbox={"boxstyle": "round", "fc": "white", "ec": "none", "alpha": 0.9},
        )
        return
    top = int(data.count.max(initial=0)) if count_top is None else count_top
    _count_histogram(hist_ax, data, color, top)


def _figure_legend(fig: Any, tops: Sequence[Any], bar_label: str, ncols: int) -> None:
    """One legend for the grid: each entry once, the bar swatch in every panel's colour."""
    from matplotlib.legend_handler import HandlerTuple

    handles: dict[str, Any] = {}
    bar_handles: list[Any] = []
    seen_colors: set[str] = set()
    for ax in tops:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab == bar_label:
                color = _handle_color(h)
                if color not in seen_colors:
                    seen_colors.add(color)
                    bar_handles.append(h)
                handles.setdefault(lab, None)
            else:
                handles.setdefault(lab, h)
    if bar_label in handles:
        handles[bar_label] = tuple(bar_handles)
    gap_label = next((lab for lab in handles if lab.startswith("gap to")), "")
    known = ["perfect calibration", bar_label, gap_label]
    order = sorted(handles, key=lambda lab: known.index(lab) if lab in known else len(known))
    fig.legend(
        [handles[lab] for lab in order],
        order,
        loc="outside lower center",
        ncols=ncols,
        fontsize=8,
        frameon=False,
        handler_map={tuple: HandlerTuple(ndivide=None, pad=0.0)},
    )


def _handle_color(h: Any) -> str:
    from matplotlib.colors import to_hex

    if hasattr(h, "patches"):  # a BarContainer
        return to_hex(h.patches[0].get_facecolor()[:3]) if h.patches else ""
    return to_hex(h.get_color())


def plot_reliability(
    summaries: Mapping[str, CalibrationSummary | None] | Sequence[CalibrationSummary],
    *,
    overlay: bool = False,
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
    ax: Any = None,
    ncols: int | None = None,
    smooth: Mapping[str, Any] | None = None,
    smooth_range: Mapping[str, tuple[float, float]] | None = None,
    intervals: str | None = None,
    ci: float = 0.95,
    confidence_scale: str = "auto",
) -> Any:
    """Reliability diagram(s); returns the matplotlib Figure.

    ``summaries`` maps model names to summaries (or is a sequence, named by source); a ``None``
    value leaves its grid slot blank, with the name as a note. With
    ``overlay=True`` (or an ``ax`` given) all models share one axes: lines with markers at each
    non-empty bin's (mean confidence, accuracy). Otherwise a grid with a reliability panel and a
    count histogram per model, sharing axes. ``smooth`` maps names to
    :class:`~calibkit.metrics.estimators.SmoothECE` results whose smoothed reliability curves are
    drawn over the panels (and over the binned markers when overlaid), each only over
    ``smooth_range[name]`` (the smallest and largest confidence; default: the span of the
    non-empty bins). ``intervals="wilson"`` draws each bin's Wilson score interval at level
    ``ci`` on its accuracy. ``confidence_scale`` is the x axis (:data:`CONFIDENCE_SCALES`).
    """
    from matplotlib.figure import Figure

    if not isinstance(summaries, Mapping):
        summaries = {s.source: s for s in summaries}
    slots = [
        (name, prepare_reliability(s, name, intervals=intervals, ci=ci) if s is not None else None)
        for name, s in summaries.items()
    ]
    data = [d for _, d in slots if d is not None]
    if not data:
        raise UsageError("a reliability diagram needs at least one model")
    palette = dict(colors or model_colors([d.name for d in data]))
    scale = _resolve_scale(confidence_scale, data)
    ranges = smooth_range or {}
    if overlay or ax is not None:
        return _overlay(data, palette, title, ax, smooth or {}, ranges, scale)
    n = len(slots)
    cols = ncols or min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.2 * cols, 4.9 * rows), layout="constrained")
    grid = fig.add_gridspec(2 * rows, cols, height_ratios=[3, 1] * rows)
    # a tail axis fits each panel's own decades: one model's bins at 1 - 1e-10 would squeeze
    # another's, that end at 0.99, into a fifth of the width
    shared_x = scale == "linear"
    count_top = max(int(d.count.max(initial=0)) for d in data)
    first = None
    tops = []
    for i, (name, d) in enumerate(slots):
        r, c = divmod(i, cols)
        if d is None:
            blank = fig.add_subplot(grid[2 * r : 2 * r + 2, c])
            blank.axis("off")
            blank.text(0.5, 0.5, name, ha="center", va="center", fontsize=9, color="0.4")
            continue
        top = fig.add_subplot(grid[2 * r, c], sharex=first if shared_x else None, sharey=first)
        bottom = fig.add_subplot(grid[2 * r + 1, c], sharex=top)
        first = first or top
        sm = (smooth or {}).get(name)
        _panel(
            top,
            bottom,
            d,
            palette[d.name],
            sm,
            scale=scale,
            decades=_tail_decades([d]),
            span=ranges.get(name),
            count_top=count_top,
        )
        top.tick_params(labelbottom=False)
        if c:
            top.set_ylabel("")
        tops.append(top)
    _figure_legend(fig, tops, axis_labels(data[0].binary_mode)["bar"], 2 if cols == 1 else 3)
    fig.suptitle(title or f"reliability ({data[0].n_bins} {data[0].binning} bins)")
    return fig


def _overlay(
    data: list[ReliabilityData],
    palette: Mapping[str, str],
    title: str | None,
    ax: Any,
    smooth: Mapping[str, Any],
    ranges: Mapping[str, tuple[float, float]],
    scale: str,
) -> Any:
    from matplotlib.figure import Figure
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.lines import Line2D

    if ax is None:
        fig = Figure(figsize=(6.4, 6.6), layout="constrained")
        grid = fig.add_gridspec(2, 1, height_ratios=[3, 1])
        ax = fig.add_subplot(grid[0])
        hist = fig.add_subplot(grid[1], sharex=ax)
    else:
        fig, hist = ax.figure, None
    names = axis_labels(data[0].binary_mode)
    if scale == "tail":
        _set_tail_scale(ax, _tail_decades(data))
    diagonal = _diagonal(ax, scale)
    handles: list[Any] = [diagonal]
    labels: list[str] = ["perfect calibration"]
    any_smooth = any(d.name in smooth for d in data)
    bins_text = f"{data[0].n_bins} {data[0].binning} bins"
    mass = all(d.binning == "mass" for d in data)
    for row, d in enumerate(data):
        filled = ~d.empty
        color = palette[d.name]
        sm = smooth.get(d.name)
        if sm is None:
            (binned,) = ax.plot(
                d.confidence[filled],
                d.accuracy[filled],
                marker="o",
                ms=4,
                lw=1.6,
                color=color,
                clip_on=False,
                label=f"{d.name} (ECE {d.ece:.4f}, N {d.n})",
            )
            handles.append(binned)
            labels.append(binned.get_label())
        else:
            # the binned markers stay, thin and hollow, under the smoothed curve
            (binned,) = ax.plot(
                d.confidence[filled],
                d.accuracy[filled],
                marker="o",
                ms=4,
                mfc="white",
                mew=1.2,
                ls=":",
                lw=0.9,
                color=color,
                zorder=4,
                clip_on=False,
                label="_binned " + d.name,
            )
            x, y = _smooth_xy(sm, _smooth_range(d, ranges.get(d.name)))
            (curve,) = ax.plot(
                x, y, lw=1.8, color=color, zorder=3, clip_on=False, label="_smooth " + d.name
            )
            handles.append((curve, binned))
            labels.append(f"{d.name} (smECE {sm.value:.4f}, ECE {d.ece:.4f}, N {d.n})")
        _interval_bars(
            ax,
            d,
            d.confidence[filled],
            ecolor=color,
            capsize=2,
            elinewidth=0.9,
            alpha=0.8,
        )
        if hist is not None and mass:  # equal counts: a row of bin edges per model
            hist.vlines(d.upper, row + 0.1, row + 0.9, color=color, lw=1)
        elif hist is not None:
            edges = np.append(d.lower, d.upper[-1])
            hist.stairs(d.count, edges, color=color, lw=1.4)
    if any_smooth:
        handles += [
            Line2D([], [], color="0.3", lw=1.8),
            Line2D([], [], color="0.3", marker="o", mfc="white", ls=":", lw=0.9, ms=4),
        ]
        labels += ["smoothed curve (kernel, no bins)", f"binned: {bins_text}, at mean confidence"]
    if data[0].interval_label:
        handles.append(Line2D([], [], color="0.3", marker="|", ms=8, ls="none", mew=1))
        labels.append(data[0].interval_label)
    if scale == "linear":
        ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel(names["y"])
    ax.grid(alpha=0.25)
    legend = {"handler_map": {tuple: HandlerTuple(ndivide=1)}, "fontsize": 8}
    if hist is not None:  # a figure of its own: the legend goes under it, off the curves
        two = fig.legend(
            handles, labels, loc="outside lower center", ncols=2, frameon=False, **legend
        )
        fig.draw_without_rendering()
        if two.get_window_extent().width > fig.bbox.width:  # long labels (groups): one column
            two.remove()
            fig.legend(
                handles, labels, loc="outside lower center", ncols=1, frameon=False, **legend
            )
    else:
        ax.legend(handles, labels, loc="best", **legend)
    xlabel = _x_label(names, scale)
    if hist is not None:
        ax.tick_params(labelbottom=False)
        hist.set_xlabel(xlabel)
        hist.grid(alpha=0.25)
        if mass:
            hist.set_ylim(len(data), 0)  # first model on top
            hist.set_yticks([])
            hist.set_ylabel("bin edges")
        else:
            hist.set_yscale("log")
            top = max((int(d.count.max(initial=0)) for d in data), default=1)
            hist.set_ylim(0.7, max(top, 1) * 2)
            _log_count_axis(hist)
    else:
        ax.set_xlabel(xlabel if any_smooth else f"{xlabel} (bin mean)")
    if title is None:
        title = (
            f"smoothed reliability, {bins_text} as markers"
            if any_smooth
            else f"reliability ({bins_text})"
        )
    ax.set_title(title)
    return fig
