"""The risk-coverage curve of selective prediction (``calibkit selective --plot``).

One panel: coverage (the share of rows answered, the most confident first) on x, selective risk
(the error rate among them) on y. The model's curve (its colour,
:func:`calibkit.plotting.style.model_colors`) is drawn at every coverage ``k/N`` (thinned to
:data:`MAX_POINTS` points), tied confidences at their expectation over the orders of the tied
rows (:mod:`calibkit.metrics.correctness`), with a dot at the end of each tie group when there
are few; for reference the **oracle** curve (the best possible order: every correct row first;
dashed black) and the **random** order (a flat line at the overall error rate; dotted grey).
The legend, under the panel, gives each curve's AURC (mean-over-k convention). The asked coverages
(``accuracy_at_coverage``) are marked on the model's curve at the coverage actually used.
"""

from __future__ import annotations

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
    for a in m.accuracy_at_coverage:
        ax.plot(
            [a.coverage], [1.0 - a.accuracy], "D", color=color, ms=5, mec="white", mew=0.8, zorder=4
        )
        used = "" if a.coverage == a.target else f" (tie group: {a.coverage:.0%})"
        right = a.coverage > 0.4  # the curve rises to the right: write on its left
        ax.annotate(
            f"{a.target:.0%}{used}: acc {a.accuracy:.3f}",
            (a.coverage, 1.0 - a.accuracy),
            textcoords="offset points",
            xytext=(-6, 10) if right else (6, 10),
            ha="right" if right else "left",
            fontsize=8,
            color="0.25",
            bbox={"fc": "white", "ec": "none", "alpha": 0.6, "pad": 1},
        )
    top = min(1.0, max(float(np.nanmax(y)), m.aurc_random, 1e-3) * 1.1)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02 * top, top)
    ax.set_xlabel("coverage (share of rows answered, most confident first)")
    ax.set_ylabel("selective risk (error rate of the answered rows)")
    ax.set_title(f"risk-coverage, N = {m.n}, accuracy {m.accuracy:.3f}", fontsize=11)
    ax.grid(True, color="0.9", lw=0.6)
    # under the panel, where it covers no curve
    fig.legend(loc="outside lower center", ncols=1, fontsize=9, frameon=False)
    return fig
