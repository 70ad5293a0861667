"""The risk-coverage curve of selective prediction (``calibkit selective --plot``).

One panel: coverage (the share of rows answered, the most confident first) on x, selective risk
(the error rate among them) on y. The model's curve (its colour,
:func:`calibkit.plotting.style.model_colors`) is drawn at every coverage ``k/N`` (thinned to
:data:`MAX_POINTS` points), tied confidences at their expectation over the orders of the tied
rows (:mod:`calibkit.metrics.correctness`), with a dot at the end of each tie group when there
are few; for reference the **oracle** curve (the best possible order: every correct row first;
dashed black) and the **random** order (a flat line at the overall error rate; dotted grey).
The legend, under the panel, gives each curve's AURC (mean-over-k convention). The asked coverages
(``accuracy_at_coverage``) are marked on the model's curve at the coverage actually used, each
label at the nearest place that covers no curve and no other label (with a leader line when it
had to move away); "(tie group: ...)" only when a tie group was taken whole.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.metrics.correctness import CorrectnessMetrics, RiskCoverage
from calibkit.plotting.style import model_colors

__all__ = ["MAX_POINTS", "plot_risk_coverage"]

#: Most points drawn of a curve (a line through more is the same picture).
MAX_POINTS = 2000
#: Tie groups up to this many get a dot at their end.
_DOTS = 40


def _thin(curve: RiskCoverage) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    risk = curve.selective_risk()
    k = np.arange(1, curve.n + 1)
    if curve.n > MAX_POINTS:
        pick = np.unique(np.linspace(0, curve.n - 1, MAX_POINTS).round().astype(np.intp))
        if curve.rows.size <= MAX_POINTS:  # keep every group end: the curve's kinks
            pick = np.union1d(pick, curve.rows - 1)
        k, risk = k[pick], risk[pick]
    return k / curve.n, risk


def plot_risk_coverage(m: CorrectnessMetrics, *, name: str | None = None) -> Any:
    """The figure (a new :class:`~matplotlib.figure.Figure`) of ``m``'s risk-coverage curve with
    the oracle and random references; see the module docstring."""
    from matplotlib.figure import Figure

    label = name or m.source
    color = model_colors([label])[label]
    fig = Figure(figsize=(6.4, 5.2), layout="constrained")
    ax = fig.subplots()
    x, y = _thin(m.curve)
    ax.plot(x, y, color=color, lw=1.8, zorder=3, label=f"{label}  (AURC {m.aurc:.4f})")
    if m.curve.rows.size <= _DOTS:
        ax.plot(m.curve.coverage, m.curve.risk, "o", color=color, ms=4, label="_ends of tie groups")
    ox, oy = _thin(m.oracle)
    ax.plot(
        ox, oy, color="black", ls="--", lw=1.2, label=f"oracle order  (AURC {m.aurc_oracle:.4f})"
    )
    ax.axhline(
        m.aurc_random,
        color="0.45",
        ls=":",
        lw=1.2,
        label=f"random order  (AURC {m.aurc_random:.4f})",
    )
    marks = []
    for a in m.accuracy_at_coverage:
        ax.plot(
            [a.coverage], [1.0 - a.accuracy], "D", color=color, ms=5, mec="white", mew=0.8, zorder=4
        )
        used = f" (tie group: {a.coverage:.0%})" if a.whole_tie_group else ""
        marks.append((f"{a.target:.0%}{used}: acc {a.accuracy:.3f}", a.coverage, 1.0 - a.accuracy))
    top = min(1.0, max(float(np.nanmax(y)), m.aurc_random, 1e-3) * 1.1)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02 * top, top)
    ax.set_xlabel("coverage (share of rows answered, most confident first)")
    ax.set_ylabel("selective risk (error rate of the answered rows)")
    ax.set_title(f"risk-coverage, N = {m.n}, accuracy {m.accuracy:.3f}", fontsize=11)
    ax.grid(True, color="0.9", lw=0.6)
    # under the panel, where it covers no curve
    fig.legend(loc="outside lower center", ncols=1, fontsize=9, frameon=False)
    _label_marks(fig, ax, marks, [(x, y), (ox, oy), (np.array([0.0, 1.0]), [m.aurc_random] * 2)])
    return fig


#: Offsets (points) tried for a coverage label, nearest first (above left first at each
#: distance); beyond the first ring a leader line joins the label to its marker.
_OFFSETS = tuple(
    (round(r * math.cos(t), 1), round(r * math.sin(t), 1))
    for r in (12, 20, 30, 45, 60, 80, 100, 130, 160, 200, 240)
    for t in (math.radians(a) for a in (120, 60, -60, -120, 150, 30, -30, -150, 90, -90, 180, 0))
)


def _box(text_w: float, text_h: float, at: Any, dx: float, dy: float, scale: float) -> Any:
    """The display box of a label ``(dx, dy)`` points from ``at``, aligned away from it."""
    from matplotlib.transforms import Bbox

    x = at[0] + dx * scale - (text_w if dx < 0 else 0.0 if dx > 0 else text_w / 2)
    y = at[1] + dy * scale - (0.0 if dy > 0 else text_h if dy < 0 else text_h / 2)
    return Bbox.from_bounds(x, y, text_w, text_h)


def _label_marks(
    fig: Any, ax: Any, marks: list[tuple[str, float, float]], lines: list[Any]
) -> None:
    """Write each coverage label where it covers none of the drawn lines, no marker, no earlier
    label, and stays inside the panel: the nearest free place of :data:`_OFFSETS` (else the one
    covering the fewest line points), measured on the laid-out figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()  # type: ignore[no-untyped-call]
    fig.draw_without_rendering()
    grid = np.linspace(0.0, 1.0, 4001)
    pts = [
        np.column_stack([grid, np.interp(grid, np.asarray(lx), np.asarray(ly))]) for lx, ly in lines
    ]
    pts += [np.column_stack([np.asarray(lx), np.asarray(ly)]) for lx, ly in lines]
    pts.append(np.array([(cx, cy) for _, cx, cy in marks]).reshape(-1, 2))
    shown = ax.transData.transform(np.concatenate(pts))
    frame = ax.get_window_extent(renderer)
    scale = fig.dpi / 72.0
    style = {
        "fontsize": 8,
        "color": "0.25",
        "bbox": {"fc": "white", "ec": "none", "alpha": 0.8, "pad": 1},
        "zorder": 5,
    }
    placed: list[Any] = []
    for text, cx, cy in marks:
        probe = ax.annotate(text, (cx, cy), **style)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        w, h = extent.width * 1.06, extent.height * 1.2
        at = ax.transData.transform((cx, cy))
        best: tuple[int, float, float] | None = None
        for dx, dy in _OFFSETS:
            box = _box(w, h, at, dx, dy, scale)
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            hits = int(box.count_contains(shown)) + 1000 * sum(box.overlaps(b) for b in placed)
            hits += 0 if inside else 100_000
            if best is None or hits < best[0]:
                best = (hits, dx, dy)
            if hits == 0:
                break
        assert best is not None
        _, dx, dy = best
        far = math.hypot(dx, dy) > 13
        ax.annotate(
            text,
            (cx, cy),
            textcoords="offset points",
            xytext=(dx, dy),
            ha="right" if dx < 0 else "left" if dx > 0 else "center",
            va="bottom" if dy > 0 else "top" if dy < 0 else "center",
            arrowprops={"arrowstyle": "-", "color": "0.55", "lw": 0.6} if far else None,
            **style,
        )
        placed.append(_box(w, h, at, dx, dy, scale))
