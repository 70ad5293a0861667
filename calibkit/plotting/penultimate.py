"""The figure of Müller et al. (2019), Fig. 1: penultimate-layer activations of three classes
projected onto the plane of their templates, one panel per model (columns) and split (rows:
train above test when both are given).

Each class has its colour (Okabe-Ito, colour-blind safe) and marker; its template is a hollow
star outlined in the class's colour cased in black, drawn under the points (so a tight cluster
next to it stays visible); the panel's corner says its tightness and
equidistance CV (:mod:`calibkit.diagnostics.penultimate`). Axes are shared across all panels by
default, so the sizes of the clusters compare directly; ``shared=False`` gives each model (column)
axes of its own, shared by its train and test panels (they lie in the same plane), so a model
whose activations span a smaller region is not squashed into a corner. Units are equal on both
axes of every panel, so distances read the same in every direction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from calibkit.diagnostics.penultimate import Projection
from calibkit.plotting.style import PALETTE

__all__ = ["plot_penultimate"]

_MARKERS = ("o", "s", "^")
_SPLIT_ORDER = ("train", "test")
#: Templates are drawn under the example points (the points of a small cluster next to its
#: template stay visible), as hollow stars of the class's colour.
_TEMPLATE_Z, _POINTS_Z = 2, 3
_STAR_SIZE = 95


def plot_penultimate(
    results: Mapping[str, Mapping[str, Projection]],
    *,
    class_names: Sequence[str],
    shared: bool = True,
    title: str | None = None,
) -> Any:
    """A :class:`~matplotlib.figure.Figure`: ``results[model][split]`` in a grid."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    models = list(results)
    splits = [s for s in _SPLIT_ORDER if any(s in results[m] for m in models)]
    rows, cols = len(splits), len(models)
    fig = Figure(figsize=(3.2 * cols + 0.4, 3.1 * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    every = _limits([p for m in models for p in results[m].values()])
    colors = PALETTE[:3]
    for i, split in enumerate(splits):
        for j, model in enumerate(models):
            ax = axes[i][j]
            p = results[model].get(split)
            if p is None:
                ax.set_axis_off()
                continue
            for k in range(3):
                pts = p.coords[k]
                ax.scatter(pts[:, 0], pts[:, 1], s=9, alpha=0.55, color=colors[k],
                           marker=_MARKERS[k], linewidths=0, rasterized=True,
                           zorder=_POINTS_Z)  # fmt: skip
            tc = p.template_coords
            for k in range(3):
                # hollow and below the points: a cluster sitting on its template stays visible
                # a coloured outline (which class) cased in black (visible on its cluster)
                for edge, width in (("black", 1.9), (colors[k], 0.9)):
                    ax.scatter([tc[k, 0]], [tc[k, 1]], s=_STAR_SIZE, marker="*",
                               facecolors="none", edgecolors=edge, linewidths=width,
                               zorder=_TEMPLATE_Z)  # fmt: skip
            s = p.plane_stats
            ax.text(
                0.03, 0.97, f"tightness {s.tightness:.3f}\nequidist. CV {s.equidistance_cv:.3f}",
                transform=ax.transAxes, va="top", ha="left", fontsize=8,
                bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "alpha": 0.8,
                      "edgecolor": "0.7"},
            )  # fmt: skip
            ax.set_title(f"{model} ({split})", fontsize=10)
            ax.grid(True, linewidth=0.4, alpha=0.4)
            # the same square in every panel, or in the panels of one model (one plane)
            limits = every if shared else _limits(list(results[model].values()))
            ax.set_xlim(limits[0])
            ax.set_ylim(limits[1])
            ax.set_aspect("equal", adjustable="box")
            if i == rows - 1:
                ax.set_xlabel("plane axis 1 (towards template b)", fontsize=8)
            if j == 0:
                ax.set_ylabel("plane axis 2", fontsize=8)
            ax.tick_params(labelsize=7)
    handles = [
        Line2D([], [], linestyle="", marker=_MARKERS[k], color=colors[k], markersize=6,
               label=f"class {class_names[k]}")
        for k in range(3)
    ] + [Line2D([], [], linestyle="", marker="*", markerfacecolor="none", markeredgecolor="black",
                markeredgewidth=1.2, markersize=10, label="template [w_k; b_k]")]  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    fig.suptitle(
        title or "Penultimate-layer activations on the plane of three class templates",
        fontsize=11,
    )
    return fig


def _limits(projections: Sequence[Projection]) -> tuple[tuple[float, float], tuple[float, float]]:
    """x and y limits holding every point and template of ``projections``, 5 % margin, as a
    square (equal units on both axes)."""
    import numpy as np

    pts = np.concatenate([np.concatenate([*p.coords, p.template_coords]) for p in projections])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre, half = (lo + hi) / 2, float(max(hi - lo)) / 2 * 1.05 or 1.0
    return (
        (float(centre[0] - half), float(centre[0] + half)),
        (float(centre[1] - half), float(centre[1] + half)),
    )
