"""Reliability diagrams that do not mislead (issue #13), checked on the matplotlib artists and,
where the reading is about how a region looks, on the rendered pixels.

* the bar's top is always the accuracy and the gap band looks the same both ways;
* the legend's accuracy swatch is in every panel's colour, empty bins have a legend entry;
* small bins are visible (log count axis, printed counts) and Wilson intervals on request;
* ``--overlay --smooth`` keeps the counts and the binned markers, labels smooth curves as such,
  and draws each curve only where there is data;
* equal-mass bins get a ``-log10(1 - confidence)`` axis;
* ``--binary positive`` labels its axes as p(y = 1) and the frequency of class 1.

Plus :func:`calibkit.metrics.intervals.wilson_interval` against hand values, its defining
equation and scipy.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from _cli import one_error_line
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex, to_rgba
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle, StepPatch
from typer.testing import CliRunner

from calibkit.cli import app
from calibkit.errors import UsageError
from calibkit.loaders import read_predictions
from calibkit.metrics import summarize
from calibkit.metrics.estimators import smooth_ece
from calibkit.metrics.intervals import normal_quantile, wilson_interval
from calibkit.metrics.summary import CalibrationSummary, collect_example_stats
from calibkit.plotting import reliability as rel
from calibkit.plotting.reliability import plot_reliability
from calibkit.plotting.style import EMPTY_STYLE, GAP_STYLE, model_colors
from calibkit.sources.predictions import Predictions

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
MODELS = ("hard", "ls05", "ls10", "ls20")


def sample(model: str) -> Path:
    return SAMPLE / f"digits_{model}_test.npz"


@pytest.fixture(scope="module")
def summaries() -> dict[str, CalibrationSummary]:
    return {m: summarize(read_predictions(sample(m))) for m in MODELS}


@pytest.fixture(scope="module")
def mass_summaries() -> dict[str, CalibrationSummary]:
    return {m: summarize(read_predictions(sample(m)), binning="mass") for m in MODELS}


@pytest.fixture(scope="module")
def smooth_inputs() -> tuple[dict[str, Any], dict[str, tuple[float, float]]]:
    curves, spans = {}, {}
    for m in MODELS:
        st = collect_example_stats(read_predictions(sample(m)), warn=False)
        curves[m] = smooth_ece(st.confidence, st.outcome)
        spans[m] = (float(st.confidence.min()), float(st.confidence.max()))
    return curves, spans


def bar_containers(ax: Any) -> list[BarContainer]:
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def rendered(fig: Any) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def modal_colour(img: np.ndarray, ax: Any, x0: float, x1: float, y0: float, y1: float) -> tuple:
    """The commonest pixel colour inside the data rectangle, a few pixels in from its edges."""
    (px0, py0), (px1, py1) = ax.transData.transform([(x0, y0), (x1, y1)])
    h = img.shape[0]
    r0, r1 = sorted((h - py1, h - py0))
    c0, c1 = sorted((px0, px1))
    region = img[int(r0) + 3 : int(r1) - 3, int(c0) + 3 : int(c1) - 3].reshape(-1, 3)
    assert region.size, "region too small to sample"
    return Counter(map(tuple, region)).most_common(1)[0][0]


# --------------------------------------------------------------------------------------------
# Wilson score interval


def test_wilson_hand_values() -> None:
    # z = 1.959964; 0/10: upper = (z^2/n) / (1 + z^2/n) = 0.38415 / 1.38415
    lo, hi = wilson_interval([0, 5, 10, 50], [10, 10, 10, 100])
    np.testing.assert_allclose(lo, [0.0, 0.236593, 0.722467, 0.403832], atol=5e-6)
    np.testing.assert_allclose(hi, [0.277533, 0.763407, 1.0, 0.596168], atol=5e-6)
    assert lo[0] == 0.0 and hi[2] == 1.0  # exact at the ends
    assert normal_quantile(0.95) == pytest.approx(1.959963985, abs=1e-9)
    assert normal_quantile(0.9) == pytest.approx(1.644853627, abs=1e-9)


@pytest.mark.parametrize("level", [0.5, 0.9, 0.95, 0.99])
def test_wilson_bounds_solve_the_score_equation(level: float) -> None:
    """The bounds are the p with (k/n - p)^2 = z^2 p (1 - p) / n: the defining formula."""
    z = normal_quantile(level)
    n = np.array([1, 2, 3, 7, 30, 386, 1000])
    for k_frac in (0.1, 0.5, 0.77):
        k = np.clip(np.round(k_frac * n), 1, n - 1).astype(float)
        ok = (k > 0) & (k < n)
        lo, hi = wilson_interval(k[ok], n[ok], level)
        for p in (lo, hi):
            lhs = (k[ok] / n[ok] - p) ** 2
            rhs = z**2 * p * (1 - p) / n[ok]
            np.testing.assert_allclose(lhs, rhs, rtol=1e-9, atol=1e-15)
        assert (lo < k[ok] / n[ok]).all() and (hi > k[ok] / n[ok]).all()


@pytest.mark.parametrize("level", [0.8, 0.95, 0.999])
def test_wilson_agrees_with_scipy(level: float) -> None:
    stats = pytest.importorskip("scipy.stats")
    for n in (1, 2, 5, 23, 386):
        for k in range(n + 1):
            ref = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
            lo, hi = wilson_interval(k, n, level)
            assert float(lo) == pytest.approx(ref.low, abs=1e-12), (k, n)
            assert float(hi) == pytest.approx(ref.high, abs=1e-12), (k, n)


def test_wilson_edge_cases() -> None:
    lo, hi = wilson_interval([0, 0, 3], [0, 4, 4])
    assert math.isnan(lo[0]) and math.isnan(hi[0])  # an empty bin has no interval
    assert lo[1] == 0.0 and 0 < hi[1] < 1
    # fractional successes (soft labels) lie between their integer neighbours
    mid_lo, mid_hi = wilson_interval(2.5, 4)
    (lo2, lo3), (hi2, hi3) = wilson_interval([2, 3], [4, 4])
    assert lo2 < mid_lo < lo3 and hi2 < mid_hi < hi3


@pytest.mark.parametrize("level", [0, 1, 1.5, -0.1, float("nan")])
def test_wilson_level_outside_zero_one_is_refused(level: float) -> None:
    with pytest.raises(UsageError, match=r"an interval level must lie in \(0, 1\)"):
        wilson_interval(1, 2, level)


@pytest.mark.parametrize(("k", "n"), [(3, 2), (-1, 2), (1, -1), (float("nan"), 2)])
def test_wilson_impossible_counts_are_refused(k: float, n: float) -> None:
    with pytest.raises(UsageError):
        wilson_interval(k, n)


# --------------------------------------------------------------------------------------------
# 1. the bar's top is the accuracy; the gap band is the same both ways


def test_bar_top_is_accuracy_and_gap_band_is_one_style(summaries: dict[str, Any]) -> None:
    s = summaries["ls10"]  # has both under- and over-confident bins
    b = s.bins
    filled = b.count > 0
    gap = (b.accuracy - b.confidence)[filled]
    assert (gap > 0).any() and (gap < 0).any()
    fig = plot_reliability({"ls10": s})
    ax = fig.axes[0]
    acc_bars, gap_bars = bar_containers(ax)
    np.testing.assert_allclose(
        [p.get_y() + p.get_height() for p in acc_bars], b.accuracy[filled], atol=1e-15
    )
    assert all(p.get_y() == 0 for p in acc_bars)
    lo = np.minimum(b.accuracy, b.confidence)[filled]
    hi = np.maximum(b.accuracy, b.confidence)[filled]
    np.testing.assert_allclose([p.get_y() for p in gap_bars], lo, atol=1e-15)
    np.testing.assert_allclose([p.get_y() + p.get_height() for p in gap_bars], hi, atol=1e-12)
    # one style for every gap, whatever its sign, and that style is the legend's swatch
    styles = {(tuple(p.get_facecolor()), tuple(p.get_edgecolor()), p.get_hatch()) for p in gap_bars}
    assert len(styles) == 1
    ((face, edge, hatch),) = styles
    assert face[3] == 0  # transparent: the bar under an under-confident gap keeps its colour
    assert hatch == GAP_STYLE["hatch"]
    assert to_rgba(GAP_STYLE["edgecolor"]) == pytest.approx(edge)
    assert min(p.get_zorder() for p in gap_bars) > max(p.get_zorder() for p in acc_bars)
    legend = fig.legends[0]
    [swatch] = [
        r
        for r in legend.findobj(Rectangle)
        if r.get_hatch() == GAP_STYLE["hatch"] and r.get_facecolor()[3] == 0
    ]
    assert tuple(swatch.get_edgecolor()) == pytest.approx(edge)


def test_under_confident_bar_colour_reaches_the_accuracy_in_pixels(
    summaries: dict[str, Any],
) -> None:
    """Rendered: inside an under-confident gap the commonest colour is the bar's own (the solid
    colour runs up to the accuracy); inside an over-confident gap it is the background."""
    s = summaries["ls10"]
    b = s.bins
    fig = plot_reliability({"ls10": s})
    ax = fig.axes[0]
    img = rendered(fig)
    i_under = 3  # (0.20, 0.27]: accuracy 0.62, confidence 0.23
    i_over = 5  # (0.33, 0.40]: accuracy 0.31, confidence 0.36
    assert b.accuracy[i_under] - b.confidence[i_under] > 0.3
    assert b.confidence[i_over] - b.accuracy[i_over] > 0.03
    lo, hi = b.lower[i_under], b.upper[i_under]
    body = modal_colour(img, ax, lo, hi, 0.02, b.confidence[i_under] - 0.02)
    band = modal_colour(img, ax, lo, hi, b.confidence[i_under] + 0.02, b.accuracy[i_under] - 0.02)
    assert band == body
    assert body != (255, 255, 255)
    over = modal_colour(
        img, ax, b.lower[i_over], b.upper[i_over], b.accuracy[i_over], b.confidence[i_over]
    )
    assert over == (255, 255, 255)


# --------------------------------------------------------------------------------------------
# 2. legend: accuracy in each panel's colour; empty bins in the legend, not like gridlines


def test_legend_accuracy_swatch_has_every_panel_colour(summaries: dict[str, Any]) -> None:
    fig = plot_reliability(summaries)
    [legend] = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts[:3] == ["perfect calibration", "accuracy", "gap to confidence"]
    assert "empty bin (no data)" in texts
    faces = {to_hex(r.get_facecolor()[:3]) for r in legend.findobj(Rectangle)}
    assert {c.lower() for c in model_colors(list(MODELS)).values()} <= faces


def test_single_panel_swatch_is_its_own_colour(summaries: dict[str, Any]) -> None:
    fig = plot_reliability({"ls10": summaries["ls10"]}, colors={"ls10": "#009E73"})
    faces = {to_hex(r.get_facecolor()[:3]) for r in fig.legends[0].findobj(Rectangle)}
    assert "#009e73" in faces and "#0072b2" not in faces


def test_empty_bins_are_pale_boxes_with_a_legend_entry(summaries: dict[str, Any]) -> None:
    s = summaries["hard"]  # bins 1-6 are empty
    fig = plot_reliability({"hard": s})
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if p.get_gid() == "empty-bin"]
    assert len(boxes) == 1  # one run of six empty bins: one box, no inner lines
    (box,) = boxes
    assert (box.get_x(), box.get_width()) == pytest.approx((0.0, s.bins.upper[5]))
    assert box.get_height() == 1
    assert box.get_fill() and box.get_facecolor()[3] > 0  # a filled area, not a line
    assert to_rgba(EMPTY_STYLE["facecolor"]) == pytest.approx(box.get_facecolor())
    assert box.get_label() == "empty bin (no data)"
    assert "empty bin (no data)" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_empty_runs_with_gaps_between(summaries: dict[str, Any]) -> None:
    data = rel.prepare_reliability(summaries["hard"])
    empty = np.zeros(15, dtype=bool)
    empty[[0, 1, 4, 14]] = True
    runs = rel._empty_outlines(
        rel.ReliabilityData(**{**data.__dict__, "count": np.where(empty, 0, 1).astype(np.int64)})
    )
    w = 1 / 15
    np.testing.assert_allclose(runs, [(0, 2 * w), (4 * w, w), (14 * w, w)], atol=1e-12)


# --------------------------------------------------------------------------------------------
# 3. small bins: log counts, printed counts, Wilson intervals


def count_labels(ax: Any) -> list[Any]:
    return [t for t in ax.texts if t.get_gid() == "bin-count"]


def test_histogram_is_log_with_every_count_printed(summaries: dict[str, Any]) -> None:
    s = summaries["hard"]
    b = s.bins
    filled = b.count > 0
    fig = plot_reliability({"hard": s})
    hist = fig.axes[1]
    assert hist.get_yscale() == "log"
    assert hist.get_ylim()[0] < 1  # a bin of one example is a visible bar
    labels = count_labels(hist)
    assert [t.get_text() for t in labels] == [str(c) for c in b.count[filled]]
    centres = (b.lower + b.upper)[filled] / 2
    np.testing.assert_allclose([t.get_position()[0] for t in labels], centres, atol=1e-12)
    assert all(t.get_position()[1] > c for t, c in zip(labels, b.count[filled], strict=True))
    assert {"2", "386"} <= {t.get_text() for t in labels}  # the loud bars of two examples


def test_many_bins_print_only_small_counts_then_none() -> None:
    src = read_predictions(sample("ls20"))
    s40 = summarize(src, n_bins=40)
    hist = plot_reliability({"m": s40}).axes[1]
    small = (s40.bins.count > 0) & (s40.bins.count < rel.SMALL_BIN)
    assert [t.get_text() for t in count_labels(hist)] == [str(c) for c in s40.bins.count[small]]
    assert 0 < small.sum() < (s40.bins.count > 0).sum()
    s80 = summarize(src, n_bins=80)
    assert count_labels(plot_reliability({"m": s80}).axes[1]) == []


def test_short_counts() -> None:
    assert [rel._short_count(n) for n in (0, 999, 1000, 9949, 9950, 12_345, 2_500_000)] == [
        "0",
        "999",
        "1.0k",
        "9.9k",
        "10k",
        "12k",
        "2.5M",
    ]


def errorbar_segments(ax: Any) -> list[np.ndarray]:
    out = []
    for c in ax.containers:
        if isinstance(c, ErrorbarContainer):
            _, _, (segments,) = c.lines
            out.append(np.array([seg for seg in segments.get_segments()]))
    return out


def test_wilson_intervals_are_drawn_on_request(summaries: dict[str, Any]) -> None:
    s = summaries["hard"]
    b = s.bins
    filled = b.count > 0
    assert errorbar_segments(plot_reliability({"hard": s}).axes[0]) == []  # off by default
    fig = plot_reliability({"hard": s}, intervals="wilson", ci=0.9)
    [segs] = errorbar_segments(fig.axes[0])
    lo, hi = wilson_interval(b.sum_outcome[filled], b.count[filled], 0.9)
    np.testing.assert_allclose(segs[:, 0, 0], (b.lower + b.upper)[filled] / 2, atol=1e-12)
    np.testing.assert_allclose(segs[:, 0, 1], lo, atol=1e-12)
    np.testing.assert_allclose(segs[:, 1, 1], hi, atol=1e-12)
    assert "90% Wilson interval" in [t.get_text() for t in fig.legends[0].get_texts()]
    # a bin of two wrong examples: accuracy 0, and an interval reaching past one half (0.575)
    two = np.flatnonzero((b.count == 2) & (b.sum_outcome == 0))
    assert two.size and (hi[np.searchsorted(np.flatnonzero(filled), two)] > 0.5).all()


def test_wilson_intervals_on_mass_and_overlay(
    summaries: dict[str, Any], mass_summaries: dict[str, Any]
) -> None:
    s = mass_summaries["hard"]
    b = s.bins
    filled = b.count > 0
    [segs] = errorbar_segments(plot_reliability({"hard": s}, intervals="wilson").axes[0])
    np.testing.assert_allclose(segs[:, 0, 0], b.confidence[filled])
    lo, hi = wilson_interval(b.sum_outcome[filled], b.count[filled])
    np.testing.assert_allclose(segs[:, 0, 1], lo, atol=1e-12)
    np.testing.assert_allclose(segs[:, 1, 1], hi, atol=1e-12)
    ov = plot_reliability(summaries, overlay=True, intervals="wilson")
    assert len(errorbar_segments(ov.axes[0])) == len(MODELS)
    texts = [t.get_text() for t in ov.legends[0].get_texts()]
    assert texts[-1] == "95% Wilson interval"


def test_bad_interval_requests_are_refused(summaries: dict[str, Any]) -> None:
    with pytest.raises(UsageError, match="intervals must be one of wilson"):
        plot_reliability(summaries, intervals="bootstrap")
    with pytest.raises(UsageError, match=r"must lie in \(0, 1\); got 1.5"):
        plot_reliability(summaries, intervals="wilson", ci=1.5)


# --------------------------------------------------------------------------------------------
# 4. --overlay --smooth


def test_overlay_smooth_keeps_counts_markers_and_honest_labels(
    summaries: dict[str, Any], smooth_inputs: Any
) -> None:
    curves, spans = smooth_inputs
    fig = plot_reliability(summaries, overlay=True, smooth=curves, smooth_range=spans)
    ax, hist = fig.axes
    steps = [p for p in hist.patches if isinstance(p, StepPatch)]
    assert [st.get_data().values.tolist() for st in steps] == [
        summaries[m].bins.count.tolist() for m in MODELS
    ]
    assert hist.get_yscale() == "log"
    colours = model_colors(list(MODELS))
    for m in MODELS:
        b = summaries[m].bins
        filled = b.count > 0
        mine = [ln for ln in ax.lines if to_hex(ln.get_color()) == colours[m].lower()]
        markers = [ln for ln in mine if ln.get_marker() == "o"]
        [curve] = [ln for ln in mine if ln.get_marker() in ("None", None, "")]
        [binned] = markers
        np.testing.assert_array_equal(binned.get_xdata(), b.confidence[filled])
        np.testing.assert_array_equal(binned.get_ydata(), b.accuracy[filled])
        x = np.asarray(curve.get_xdata())
        y = np.asarray(curve.get_ydata())
        lo, hi = spans[m]
        assert x.min() >= lo and x.max() <= hi  # only where there is data
        assert x.min() - lo < 1e-3 and hi - x.max() < 1e-3  # and all of it
        assert np.isfinite(y).all() and (y >= 0).all() and (y <= 1).all()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    model_entries = [t for t in legend if t.split(" (")[0] in MODELS]
    assert len(model_entries) == 4
    assert all("smECE" in t and "bin" not in t for t in model_entries)
    assert "smoothed curve (kernel, no bins)" in legend
    assert "binned: 15 width bins, at mean confidence" in legend
    assert "bin mean" not in hist.get_xlabel() and "bin mean" not in ax.get_xlabel()
    assert ax.get_title().startswith("smoothed reliability")


def test_smooth_curve_defaults_to_the_span_of_the_filled_bins(
    summaries: dict[str, Any], smooth_inputs: Any
) -> None:
    curves, _ = smooth_inputs
    s = summaries["hard"]
    b = s.bins
    filled = np.flatnonzero(b.count > 0)
    fig = plot_reliability({"hard": s}, smooth={"hard": curves["hard"]})
    [curve] = [ln for ln in fig.axes[0].lines if ln.get_label().startswith("smoothed")]
    x = np.asarray(curve.get_xdata())
    assert x.min() >= b.lower[filled[0]] and x.max() <= b.upper[filled[-1]]
    assert b.lower[filled[0]] == pytest.approx(0.4)  # hard: nothing below 0.4, no curve there
    assert (np.asarray(curve.get_ydata()) <= 1).all()


def test_cli_passes_the_confidence_span_and_intervals(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    real = rel.plot_reliability

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(rel, "plot_reliability", spy)
    out = tmp_path / "d.png"
    args = ["diagram", f"ls20={sample('ls20')}", "--overlay", "--smooth"]
    result = runner.invoke(app, [*args, "--intervals", "wilson", "--ci", "0.9", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"calibkit: wrote {out}" in result.stderr
    assert out.read_bytes().startswith(b"\x89PNG")
    st = collect_example_stats(read_predictions(sample("ls20")), warn=False)
    assert seen["smooth_range"] == {"ls20": (st.confidence.min(), st.confidence.max())}
    assert (seen["intervals"], seen["ci"]) == ("wilson", 0.9)
    result = runner.invoke(app, ["diagram", str(sample("ls20")), "--out", str(out)])
    assert result.exit_code == 0
    assert (seen["intervals"], seen["ci"]) == (None, 0.95)


def test_cli_ci_needs_intervals_and_a_level_in_range(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "d.png"
    base = ["diagram", str(sample("hard")), "--out", str(out)]
    result = runner.invoke(app, [*base, "--ci", "0.9"])
    assert one_error_line(result) == "--ci goes with --intervals wilson"
    result = runner.invoke(app, [*base, "--intervals", "wilson", "--ci", "1.5"])
    assert one_error_line(result) == "an interval level must lie in (0, 1); got 1.5"
    result = runner.invoke(app, [*base, "--intervals", "bootstrap"])
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# 5. equal-mass bins: a -log10(1 - confidence) axis


def display_x(ax: Any, xs: Any) -> np.ndarray:
    pts = np.column_stack([xs, np.full(len(xs), 0.5)])
    return np.asarray(ax.transData.transform(pts)[:, 0])


def axes_fraction(ax: Any, xs: Any) -> np.ndarray:
    left, right = display_x(ax, ax.get_xlim())
    return np.asarray((display_x(ax, xs) - left) / (right - left))


def test_mass_bins_get_room_at_high_confidence(mass_summaries: dict[str, Any]) -> None:
    s = mass_summaries["hard"]
    conf = s.bins.confidence[s.bins.count > 0]
    linear = plot_reliability({"hard": s}, confidence_scale="linear").axes[0]
    assert linear.get_xscale() == "linear"
    assert (axes_fraction(linear, conf) > 0.9).sum() >= 11  # the issue: 11 of 15 pile up
    fig = plot_reliability({"hard": s})  # auto: mass binning gets the tail axis
    ax = fig.axes[0]
    assert ax.get_xscale() == "function"
    frac = axes_fraction(ax, conf)
    assert (frac > 0.9).sum() <= 2
    assert np.diff(np.sort(frac)).min() > 0.02  # every marker has room
    # the axis is -log10(1 - c): decades are evenly spaced, ticks read as confidences
    d = display_x(ax, [0.9, 0.99, 0.999])
    assert d[2] - d[1] == pytest.approx(d[1] - d[0], rel=1e-6)
    fmt, ticks = ax.xaxis.get_major_formatter(), ax.xaxis.get_major_locator()()
    labels = [fmt(v, i) for i, v in enumerate(ticks)]
    assert labels[:2] == ["0.9", "0.99"]
    assert "$1-10^{-4}$" in labels
    assert "\u2212log\u2081\u2080(1 \u2212 confidence)" in fig.axes[1].get_xlabel()
    # the marker's data are the summary's, unchanged
    [line] = [ln for ln in ax.lines if ln.get_label() == "accuracy"]
    np.testing.assert_array_equal(line.get_xdata(), conf)


def test_width_bins_stay_linear(summaries: dict[str, Any]) -> None:
    fig = plot_reliability(summaries)
    assert all(ax.get_xscale() == "linear" for ax in fig.axes)
    tail = plot_reliability({"hard": summaries["hard"]}, confidence_scale="tail")
    assert tail.axes[0].get_xscale() == "function"
    with pytest.raises(UsageError, match="confidence_scale must be one of"):
        plot_reliability(summaries, confidence_scale="log")


def test_mass_grid_fits_each_panel_and_overlay_fits_all(mass_summaries: dict[str, Any]) -> None:
    fig = plot_reliability(mass_summaries)
    tops = fig.axes[0::2]
    for ax, m in zip(tops, MODELS, strict=True):
        conf = mass_summaries[m].bins.confidence
        conf = conf[np.isfinite(conf)]
        frac = axes_fraction(ax, conf)
        assert frac.max() < 1.0
        # the panel's own decades: its x axis ends at the first 1 - 10^-k past its last bin
        right = float(ax.xaxis.get_transform().transform([ax.get_xlim()[1]])[0])
        assert right == pytest.approx(math.ceil(-math.log10(1 - conf.max()) + 0.05))
    rights = [float(ax.xaxis.get_transform().transform([ax.get_xlim()[1]])[0]) for ax in tops]
    assert rights == pytest.approx([10, 3, 2, 2])
    ov = plot_reliability(mass_summaries, overlay=True)
    ax = ov.axes[0]
    assert ax.get_xscale() == "function"
    for m in MODELS:
        conf = mass_summaries[m].bins.confidence
        frac = axes_fraction(ax, conf[np.isfinite(conf)])
        assert (frac >= 0).all() and (frac < 1).all()
    assert ov.axes[1].get_ylabel() == "bin edges"


def test_tail_axis_draws_a_confidence_of_exactly_one_on_its_edge(tmp_path: Path) -> None:
    path = tmp_path / "sat.npz"
    probs = np.array([[1.0, 0.0]] * 20 + [[0.3, 0.7]] * 10 + [[0.05, 0.95]] * 10)
    np.savez(path, probs=probs, labels=np.array([0] * 20 + [1] * 20))
    s = summarize(read_predictions(path), binning="mass", n_bins=4)
    assert (s.bins.confidence == 1.0).any()
    fig = plot_reliability({"sat": s})
    ax = fig.axes[0]
    [line] = [ln for ln in ax.lines if ln.get_label() == "accuracy"]
    frac = axes_fraction(ax, np.asarray(line.get_xdata()))
    assert np.isfinite(frac).all()
    assert frac.max() == pytest.approx(1.0)
    rendered(fig)  # draws without error


# --------------------------------------------------------------------------------------------
# 6. --binary positive


@pytest.fixture
def binary_path(tmp_path: Path) -> Path:
    rng = np.random.default_rng(13)
    z = rng.normal(scale=2.0, size=400)
    y = (rng.random(400) < 1 / (1 + np.exp(-0.6 * z))).astype(np.int64)
    path = tmp_path / "binary.npz"
    np.savez(path, logits=z, labels=y)
    return path


def test_binary_positive_axes_are_p1_and_class_1_frequency(binary_path: Path) -> None:
    src = read_predictions(binary_path)
    pos = summarize(src, binary_mode="positive")
    top = summarize(src, binary_mode="top-label")
    assert (pos.binary_mode, top.binary_mode) == ("positive", "top-label")
    fig = plot_reliability({"m": pos}, intervals="wilson")
    ax, hist = fig.axes
    assert ax.get_ylabel() == "observed frequency of class 1"
    assert hist.get_xlabel() == "predicted p(y = 1)"
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "frequency of class 1" in texts and "accuracy" not in texts
    assert "gap to mean p(y = 1)" in texts
    ov = plot_reliability({"m": pos}, overlay=True)
    assert ov.axes[0].get_ylabel() == "observed frequency of class 1"
    assert ov.axes[1].get_xlabel() == "predicted p(y = 1)"
    plain = plot_reliability({"m": top})
    assert plain.axes[0].get_ylabel() == "accuracy"
    assert plain.axes[1].get_xlabel() == "confidence"


def test_binary_positive_through_the_cli(
    runner: CliRunner, binary_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figs: list[Any] = []
    real = rel.plot_reliability

    def spy(*args: Any, **kwargs: Any) -> Any:
        figs.append(real(*args, **kwargs))
        return figs[-1]

    monkeypatch.setattr(rel, "plot_reliability", spy)
    out = tmp_path / "b.svg"
    result = runner.invoke(
        app, ["diagram", f"m={binary_path}", "--binary", "positive", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    [fig] = figs
    assert fig.axes[0].get_ylabel() == "observed frequency of class 1"
    assert fig.axes[1].get_xlabel() == "predicted p(y = 1)"


# --------------------------------------------------------------------------------------------
# the old API still works


def test_old_call_still_works(summaries: dict[str, Any]) -> None:
    fig = plot_reliability(list(summaries.values()), title="t")
    assert fig.get_suptitle() == "t"
    ov = plot_reliability(summaries, overlay=True)
    diagonal, *lines = ov.axes[0].lines
    np.testing.assert_array_equal(diagonal.get_xdata(), [0, 1])
    assert [ln.get_label() for ln in lines] == [
        f"{m} (ECE {summaries[m].ece:.4f}, N 450)" for m in MODELS
    ]
    assert all(isinstance(ln, Line2D) for ln in lines)
    with pytest.raises(UsageError, match="at least one model"):
        plot_reliability({})


def test_many_bins_draw_bars_without_edges_that_hide_them() -> None:
    """Review fix: at hundreds of bins the 0.6 pt white bar edges and the gap band's outline
    were wider than the bars, so the panel showed edges instead of accuracies."""
    from calibkit.plotting.reliability import MANY_BINS

    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 3.0, size=(4000, 10))
    y = rng.integers(0, 10, 4000)
    for n_bins, wide in ((15, True), (MANY_BINS + 100, False)):
        fig = plot_reliability({"m": summarize(Predictions.from_arrays(z, y), n_bins=n_bins)})
        bars = [
            p
            for ax in fig.axes
            for c in ax.containers
            if isinstance(c, BarContainer)
            for p in c.patches
        ]
        widths = {round(p.get_linewidth(), 3) for p in bars}
        assert (max(widths) > 0) is wide, (n_bins, widths)


@pytest.mark.parametrize(
    ("level", "label"), [(0.95, "95%"), (0.9, "90%"), (0.99999, "99.999%"), (0.5, "50%")]
)
def test_interval_level_labels_never_round_up_to_100(level: float, label: str) -> None:
    from calibkit.plotting.reliability import _percent

    assert _percent(level) == label
