"""calibkit.plotting and the text chart, on matplotlib objects (no pyplot, no files but saves).

The sample digits models give the summaries; every drawn number (bar heights, ECE labels, line
data, colours) is compared with the summary it came from. Some tests pin bugs found
(and fixed) while this module was written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from calibkit.calibrators import sweep_temperatures
from calibkit.calibrators.sweep import temperature_grid
from calibkit.errors import OutputError, UsageError
from calibkit.loaders import read_predictions
from calibkit.metrics import BinTable, summarize
from calibkit.metrics.summary import CalibrationSummary
from calibkit.plotting.reliability import ReliabilityData, plot_reliability, prepare_reliability
from calibkit.plotting.save import FIGURE_SUFFIXES, save_figure
from calibkit.plotting.style import PALETTE, model_colors
from calibkit.plotting.sweep import plot_sweep
from calibkit.report.text_chart import reliability_text

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
MODELS = ("hard", "ls05", "ls10", "ls20")


def sample(model: str, split: str = "test") -> Path:
    return SAMPLE / f"digits_{model}_{split}.npz"


@pytest.fixture(scope="module")
def summaries() -> dict[str, CalibrationSummary]:
    return {m: summarize(read_predictions(sample(m))) for m in MODELS}


@pytest.fixture(scope="module")
def sweeps() -> list[Any]:
    grid = temperature_grid(0.5, 3.0, 11)
    return [sweep_temperatures(read_predictions(sample(m)), grid, name=m) for m in MODELS]


def bars(ax: Any) -> list[BarContainer]:
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def panels(fig: Any) -> tuple[list[Any], list[Any]]:
    """(reliability panels, histograms): each model adds its panel, then its histogram."""
    return fig.axes[0::2], fig.axes[1::2]


def empty_runs(lower: Any, upper: Any, empty: Any) -> list[tuple[float, float]]:
    """``(start, end)`` of each run of adjacent empty bins."""
    runs: list[tuple[float, float]] = []
    for i in np.flatnonzero(empty):
        if runs and i > 0 and empty[i - 1]:
            runs[-1] = (runs[-1][0], float(upper[i]))
        else:
            runs.append((float(lower[i]), float(upper[i])))
    return runs


def png_bytes(fig: Any, path: Path) -> bytes:
    save_figure(fig, path)
    return path.read_bytes()


# --------------------------------------------------------------------------------------------
# prepare_reliability


def test_prepare_reliability_is_the_summary_bins(summaries: dict[str, Any]) -> None:
    s = summaries["hard"]
    data = prepare_reliability(s)
    assert isinstance(data, ReliabilityData)
    assert data.name == s.source == str(sample("hard"))
    assert prepare_reliability(s, "mine").name == "mine"
    b = s.bins
    np.testing.assert_array_equal(data.lower, b.lower)
    np.testing.assert_array_equal(data.upper, b.upper)
    np.testing.assert_array_equal(data.count, b.count)
    np.testing.assert_array_equal(data.confidence, b.confidence)  # NaN where empty, both
    np.testing.assert_array_equal(data.accuracy, b.accuracy)
    np.testing.assert_array_equal(data.empty, b.count == 0)
    assert (data.ece, data.n, data.n_bins, data.binning) == (s.ece, 450, 15, "width")
    assert int(data.empty.sum()) == 6  # hard: no top-label confidence below 0.4
    assert np.isnan(data.accuracy[data.empty]).all()
    assert not np.isnan(data.accuracy[~data.empty]).any()


# --------------------------------------------------------------------------------------------
# plot_reliability


def test_plot_reliability_four_models(summaries: dict[str, Any]) -> None:
    fig = plot_reliability(summaries)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 8
    tops, hists = panels(fig)
    colors = model_colors(list(MODELS))
    for ax, hist, name in zip(tops, hists, MODELS, strict=True):
        s = summaries[name]
        b = s.bins
        filled = b.count > 0
        assert ax.get_title() == name
        acc_bars, gap_bars = bars(ax)
        # only non-empty bins get an accuracy bar, at the bin's left edge and width
        assert len(acc_bars) == int(filled.sum())
        heights = [p.get_height() for p in acc_bars]
        np.testing.assert_allclose(heights, b.accuracy[filled], rtol=0, atol=1e-15)
        np.testing.assert_allclose([p.get_x() for p in acc_bars], b.lower[filled])
        np.testing.assert_allclose(
            [p.get_width() for p in acc_bars], (b.upper - b.lower)[filled], atol=1e-15
        )
        # the gap bar spans accuracy..confidence
        assert len(gap_bars) == int(filled.sum())
        lo = np.minimum(b.accuracy, b.confidence)[filled]
        hi = np.maximum(b.accuracy, b.confidence)[filled]
        np.testing.assert_allclose([p.get_y() for p in gap_bars], lo, atol=1e-15)
        np.testing.assert_allclose([p.get_y() + p.get_height() for p in gap_bars], hi, atol=1e-12)
        # empty bins are pale boxes (#13: one per run of adjacent empty bins, so their inner
        # edges do not read as gridlines), covering exactly the empty bins, never a zero bar
        boxes = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_gid() == "empty-bin"]
        drawn = sorted((p.get_x(), p.get_x() + p.get_width()) for p in boxes)
        np.testing.assert_allclose(drawn, empty_runs(b.lower, b.upper, ~filled), atol=1e-12)
        # the ECE box
        [text] = ax.texts
        assert text.get_text().splitlines() == [f"ECE = {s.ece:.4f}", "N = 450"]
        # the histogram: every bin's count
        [hist_bars] = bars(hist)
        assert [p.get_height() for p in hist_bars] == b.count.tolist()
        # the model's colour
        for p in (*acc_bars, *hist_bars):
            assert to_hex(p.get_facecolor()[:3]) == colors[name].lower()
    assert fig.get_suptitle() == "reliability (15 width bins)"


def test_plot_reliability_layout_and_names() -> None:
    s = summarize(read_predictions(sample("ls10")))
    fig = plot_reliability([s], title="one model")  # a sequence: named by source
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title() == str(sample("ls10"))
    assert fig.get_suptitle() == "one model"
    fig2 = plot_reliability({"a": s, "b": s, "c": s}, ncols=2)
    assert len(fig2.axes) == 6
    assert [ax.get_subplotspec().colspan.start for ax in fig2.axes[0::2]] == [0, 1, 0]


def test_colours_agree_between_reliability_and_sweep(
    summaries: dict[str, Any], sweeps: list[Any]
) -> None:
    colors = model_colors(list(MODELS))
    assert list(colors.values()) == list(PALETTE[:4])
    rel = plot_reliability(summaries)
    sw = plot_sweep(sweeps, fitted={"hard": 2.9})
    rel_colors = {
        name: to_hex(bars(ax)[0][0].get_facecolor()[:3])
        for ax, name in zip(panels(rel)[0], MODELS, strict=True)
    }
    for ax in sw.axes:
        lines = {
            ln.get_label(): to_hex(ln.get_color()) for ln in ax.lines if ln.get_label() in MODELS
        }
        assert lines == rel_colors
    assert rel_colors == {k: v.lower() for k, v in colors.items()}
    overlay = plot_reliability(summaries, overlay=True)
    ov = {ln.get_label().split(" (")[0]: to_hex(ln.get_color()) for ln in overlay.axes[0].lines[1:]}
    assert ov == rel_colors


def test_plot_reliability_colors_argument(summaries: dict[str, Any]) -> None:
    fig = plot_reliability({"hard": summaries["hard"]}, colors={"hard": "#123456"})
    assert to_hex(bars(fig.axes[0])[0][0].get_facecolor()[:3]) == "#123456"


def test_plot_reliability_onto_existing_axes(summaries: dict[str, Any]) -> None:
    fig = Figure()
    ax = fig.add_subplot()
    picked = {m: summaries[m] for m in ("hard", "ls20")}
    out = plot_reliability(picked, ax=ax, title="on my axes")
    assert out is fig
    assert fig.axes == [ax]  # no histogram added
    assert ax.get_title() == "on my axes"
    diagonal, *lines = ax.lines
    np.testing.assert_array_equal(diagonal.get_xdata(), [0, 1])
    assert [ln.get_label() for ln in lines] == [
        f"{m} (ECE {picked[m].ece:.4f}, N 450)" for m in picked
    ]
    for ln, m in zip(lines, picked, strict=True):
        b = picked[m].bins
        filled = b.count > 0
        np.testing.assert_array_equal(ln.get_xdata(), b.confidence[filled])
        np.testing.assert_array_equal(ln.get_ydata(), b.accuracy[filled])


def test_plot_reliability_overlay_has_a_histogram(summaries: dict[str, Any]) -> None:
    fig = plot_reliability(summaries, overlay=True)
    assert len(fig.axes) == 2
    steps = fig.axes[1].patches
    assert len(steps) == len(MODELS)
    for st, m in zip(steps, MODELS, strict=True):
        np.testing.assert_array_equal(st.get_data().values, summaries[m].bins.count)


def test_mass_bins_are_drawn_at_their_mean_confidence() -> None:
    # equal-mass bins crowd near 1 for a confident model; bars there would be slivers, so the
    # panel marks each bin at (mean confidence, accuracy) instead
    s = summarize(read_predictions(sample("hard")), binning="mass")
    fig = plot_reliability({"hard": s})
    (line,) = [ln for ln in fig.axes[0].lines if ln.get_label() == "accuracy"]
    filled = s.bins.count > 0
    np.testing.assert_allclose(line.get_xdata(), s.bins.confidence[filled])
    np.testing.assert_allclose(line.get_ydata(), s.bins.accuracy[filled])


# --------------------------------------------------------------------------------------------
# plot_sweep


def test_plot_sweep_lines_are_the_sweep(sweeps: list[Any]) -> None:
    fig = plot_sweep(sweeps, fitted={"hard": 2.9}, title="sweep")
    assert isinstance(fig, Figure)
    ax_ece, ax_nll = fig.axes
    assert fig.get_suptitle() == "sweep"
    for ax, metric in ((ax_ece, "ece"), (ax_nll, "nll")):
        lines = {ln.get_label(): ln for ln in ax.lines}
        for sw in sweeps:
            ln = lines[sw.name]
            np.testing.assert_array_equal(ln.get_xdata(), sw.temperatures)
            np.testing.assert_array_equal(ln.get_ydata(), getattr(sw, metric))
        xs = [np.asarray(ln.get_xdata(), dtype=float) for ln in ax.lines]
        vertical = [x[0] for x in xs if x.size == 2 and x[0] == x[1]]
        assert 1.0 in vertical and 2.9 in vertical
    (box,) = fig.legends  # a figure legend, under the panels (issue #13)
    legend = [t.get_text() for t in box.get_texts()]
    assert legend == [*MODELS, "T = 1", "lowest on grid", "T fitted on validation"]


def test_plot_sweep_onto_existing_axes(sweeps: list[Any]) -> None:
    fig = Figure()
    a1, a2, a3 = fig.subplots(1, 3)
    out = plot_sweep(sweeps[:2], axes=(a1, a3))
    assert out is fig
    assert len(fig.axes) == 3
    assert not a2.lines
    assert {ln.get_label() for ln in a1.lines} >= {"hard", "ls05"}
    assert {ln.get_label() for ln in a3.lines} >= {"hard", "ls05"}
    assert a1.get_ylabel() == "ECE (15 width bins)" and a3.get_ylabel() == "NLL (nats)"


# --------------------------------------------------------------------------------------------
# reliability_text


def hand_table(binning: str = "width") -> BinTable:
    return BinTable(
        lower=np.array([0.0, 1 / 3, 2 / 3]),
        upper=np.array([1 / 3, 2 / 3, 1.0]),
        count=np.array([0, 2, 4]),
        sum_confidence=np.array([0.0, 1.0, 3.2]),  # mean 0.5 and 0.8
        sum_outcome=np.array([0.0, 1.0, 4.0]),  # accuracy 0.5 and 1.0
        binning=binning,  # type: ignore[arg-type]
    )


def test_reliability_text_hand_table() -> None:
    text = reliability_text(hand_table(), width=10, title="my model").plain
    assert text.splitlines() == [
        "my model",
        "reliability: bar = accuracy, | = mean confidence",
        "bin range         count  0 ........ 1",
        "  1 [0.00,0.33]       0  empty",
        "  2 (0.33,0.67]       2  █████|      acc 0.500 conf 0.500",
        "  3 (0.67,1.00]       4  ████████|█  acc 1.000 conf 0.800",
    ]
    assert not text.endswith("\n")


def test_reliability_text_defaults_and_mass_bins() -> None:
    lines = reliability_text(hand_table("mass")).plain.splitlines()
    assert lines[0].startswith("reliability:")
    assert lines[1] == "bin range         count  0 " + "." * 28 + " 1"
    assert lines[2] == "  1 (0.00,0.33]       0  empty"  # mass bins: no closed first bin
    assert (
        lines[3]
        == "  2 (0.33,0.67]       2  " + "█" * 15 + "|" + " " * 14 + "  acc 0.500 conf 0.500"
    )
    assert (
        lines[4]
        == "  3 (0.67,1.00]       4  " + "█" * 24 + "|" + "█" * 5 + "  acc 1.000 conf 0.800"
    )
    assert max(len(line) for line in lines) <= 80


def test_reliability_text_confidence_one_marks_the_last_column() -> None:
    table = BinTable(
        lower=np.array([0.0, 0.5]),
        upper=np.array([0.5, 1.0]),
        count=np.array([1, 3]),
        sum_confidence=np.array([0.0, 3.0]),
        sum_outcome=np.array([0.0, 0.0]),
    )
    lines = reliability_text(table, width=8).plain.splitlines()
    assert lines[2] == "  1 [0.00,0.50]       1  |         acc 0.000 conf 0.000"
    assert lines[3] == "  2 (0.50,1.00]       3         |  acc 0.000 conf 1.000"


# --------------------------------------------------------------------------------------------
# save_figure


def small_figure() -> Any:
    fig = Figure(figsize=(3, 2))
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [1, 0, 1], label="x")
    ax.bar([0, 1], [1, 2], hatch="//")
    ax.set_title("small")
    return fig


@pytest.mark.parametrize("suffix", FIGURE_SUFFIXES)
def test_save_figure_writes_atomically(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"fig{suffix}"
    assert save_figure(small_figure(), path) == path
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    first = path.read_bytes()
    signature = {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF"}[suffix]
    assert first.startswith(signature)
    save_figure(small_figure(), str(path))  # over an existing file; a str is fine too
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_save_figure_upper_case_suffix(tmp_path: Path) -> None:
    path = tmp_path / "fig.PNG"
    save_figure(small_figure(), path)
    assert path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("name", ["fig.jpg", "fig", "fig.png.bak", "fig.eps"])
def test_save_figure_refuses_other_formats(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(UsageError) as err:
        save_figure(small_figure(), path)
    assert str(err.value) == f"{path}: figure format must be one of .png, .svg, .pdf (by extension)"
    assert list(tmp_path.iterdir()) == []


def test_save_figure_refuses_an_input_and_a_missing_directory(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(b"input")
    with pytest.raises(OutputError, match="is also an input"):
        save_figure(small_figure(), src, inputs=[src])
    assert src.read_bytes() == b"input"
    with pytest.raises(OutputError, match="does not exist"):
        save_figure(small_figure(), tmp_path / "no" / "f.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_save_figure_failure_leaves_no_temp_file(tmp_path: Path) -> None:
    class Broken:
        def savefig(self, *a: Any, **k: Any) -> None:
            Path(a[0]).write_bytes(b"partial")
            raise RuntimeError("boom")

    target = tmp_path / "f.png"
    with pytest.raises(RuntimeError, match="boom"):
        save_figure(Broken(), target)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# determinism


def test_png_and_pdf_are_deterministic(tmp_path: Path, summaries: dict[str, Any]) -> None:
    """A figure built twice from the same data saves to the same bytes (no timestamps)."""
    picked = {m: summaries[m] for m in ("hard", "ls20")}
    for suffix in ("png", "pdf"):
        save_figure(plot_reliability(picked), tmp_path / f"a.{suffix}")
        save_figure(plot_reliability(picked), tmp_path / f"b.{suffix}")
        a, b = ((tmp_path / f"{x}.{suffix}").read_bytes() for x in "ab")
        assert a == b, suffix


def test_same_figure_saved_twice_gives_the_same_png(
    tmp_path: Path, summaries: dict[str, Any]
) -> None:
    fig = plot_reliability({m: summaries[m] for m in ("hard", "ls20")})
    assert png_bytes(fig, tmp_path / "a.png") == png_bytes(fig, tmp_path / "b.png")


def test_svg_is_deterministic(tmp_path: Path, summaries: dict[str, Any]) -> None:
    fig = plot_reliability({"hard": summaries["hard"]})
    save_figure(fig, tmp_path / "a.svg")
    save_figure(fig, tmp_path / "b.svg")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()
