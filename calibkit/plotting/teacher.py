"""What a teacher passes on against the temperature (``calibkit teacher --plot``).

Two panels side by side sharing the temperature axis: the equivalent smoothing ``gamma(T)``
and the mean entropy of the soft targets (nats), one line per teacher in its model colour
(:func:`calibkit.plotting.style.model_colors`), a marker at each grid temperature. Reference
lines only where they belong to the data or the user: ``gamma = 1`` and ``log K`` (the limits as
``T -> inf``, dotted grey) and, for a teacher given its training alpha
(``--ls-alpha NAME=ALPHA``), a dashed horizontal line at that alpha in its colour on the
``gamma`` panel. The legend sits under
the panels, where it covers no curve.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from calibkit.diagnostics.distillation import TeacherCurve
from calibkit.plotting.style import model_colors

__all__ = ["plot_teacher"]

_LEGEND_COLUMNS = 6


def plot_teacher(
    curves: Sequence[TeacherCurve], *, alphas: Mapping[str, float] | None = None
) -> Any:
    """The figure (a new :class:`~matplotlib.figure.Figure`) of ``gamma(T)`` and the mean
    entropy against ``T`` for every teacher; see the module docstring."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    alphas = alphas or {}
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    ax_g, ax_h = fig.subplots(1, 2, sharex=True)
    colors = model_colors([c.name for c in curves])
    for c in curves:
        order = np.argsort(c.temperatures, kind="stable")
        t = c.temperatures[order]
        style = {"color": colors[c.name], "lw": 1.8, "marker": "o", "ms": 4.5}
        ax_g.plot(t, c.gamma[order], **style)
        ax_h.plot(t, c.entropy[order], **style)
        if c.name in alphas:
            ax_g.axhline(alphas[c.name], color=colors[c.name], ls="--", lw=1.1, alpha=0.9)
    ax_g.axhline(1.0, color="0.45", ls=":", lw=1)
    for k in sorted({c.n_classes for c in curves}):
        ax_h.axhline(math.log(k), color="0.45", ls=":", lw=1)
    top_g = max([1.0, *[float(np.nanmax(c.gamma)) for c in curves], *alphas.values()])
    ax_g.set_ylim(0, top_g * 1.05)
    top_h = max(math.log(c.n_classes) for c in curves)
    ax_h.set_ylim(0, top_h * 1.05)
    ax_g.set_title(r"equivalent smoothing $\gamma(T)$")
    ax_g.set_ylabel(r"$\gamma(T)$ = mean wrong-class mass $\times\ K/(K-1)$")
    ax_h.set_title("entropy of the soft targets softmax(z / T)")
    ax_h.set_ylabel("mean entropy (nats)")
    for ax in (ax_g, ax_h):
        ax.set_xlabel("temperature T")
        ax.grid(alpha=0.3)
    handles: list[Any] = [
        Line2D([], [], color=colors[c.name], lw=1.8, marker="o", ms=4.5, label=c.name)
        for c in curves
    ]
    limit = r"limit as $T \to \infty$ ($\gamma = 1$, $\log K$)"
    handles.append(Line2D([], [], color="0.45", ls=":", label=limit))
    if any(c.name in alphas for c in curves):
        handles.append(Line2D([], [], color="0.3", ls="--", label=r"training $\alpha$ (given)"))
    rows = math.ceil(len(handles) / _LEGEND_COLUMNS)
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=math.ceil(len(handles) / rows),
        fontsize=8.5,
        frameon=False,
    )
    return fig
