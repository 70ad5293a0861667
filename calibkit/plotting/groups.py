"""Reliability diagrams per group of rows (``calibkit diagram --group-by COLUMN``).

One panel per group (:func:`plot_group_reliability`): the panels of
:func:`~calibkit.plotting.reliability.plot_reliability`, titled with the group's label, with its
ECE and N in the corner, on shared axes (the count histograms share their scale too, so a
small group's bars are seen to be small). The largest groups come first
(:func:`largest_groups`), at most ``max_groups`` of them; the figure's title says how many were
left out. With several models, each row of the grid is a group and each column a model (a
model without rows in a group leaves its slot blank, with a note). ``overlay=True`` draws every
group of one model on one axes instead, a line per group.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from calibkit.errors import Param, UsageError
from calibkit.metrics.summary import CalibrationSummary
from calibkit.plotting.reliability import plot_reliability
from calibkit.plotting.style import PALETTE, model_colors

__all__ = ["DEFAULT_MAX_GROUPS", "TITLE_WIDTH", "largest_groups", "plot_group_reliability"]

#: Panels drawn by default (``--max-groups``): a 4 x 3 grid.
DEFAULT_MAX_GROUPS = 12
#: A panel's title is wrapped at this many characters (a cross product's labels are long).
TITLE_WIDTH = 38


def largest_groups(counts: Mapping[str, int], max_groups: int) -> tuple[list[str], int]:
    """The labels of the ``max_groups`` largest groups, largest first (ties in the given
    order), and how many were left out.

    >>> largest_groups({"a": 5, "b": 9, "c": 5}, 2)
    (['b', 'a'], 1)
    """
    if isinstance(max_groups, bool) or not isinstance(max_groups, int) or max_groups < 1:
        raise UsageError(Param("max_groups") + f" must be an integer >= 1; got {max_groups!r}")
    labels = list(counts)
    order = sorted(range(len(labels)), key=lambda i: -int(counts[labels[i]]))
    kept = [labels[i] for i in order[:max_groups]]
    return kept, max(0, len(labels) - max_groups)


def _title(label: str) -> str:
    """The label wrapped at :data:`TITLE_WIDTH`, with ``$`` escaped (not read as mathtext)."""
    wrapped = "\n".join(textwrap.wrap(label, TITLE_WIDTH)) or label
    return wrapped.replace("$", r"\$")


def plot_group_reliability(
    panels: Mapping[str, Mapping[str, CalibrationSummary | None]],
    *,
    by: Sequence[str],
    left_out: int = 0,
    title: str | None = None,
    overlay: bool = False,
    smooth: Mapping[str, Mapping[str, Any]] | None = None,
    smooth_range: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
    intervals: str | None = None,
    ci: float = 0.95,
) -> Any:
    """Reliability panels per group; returns the matplotlib Figure.

    ``panels`` maps each group's label (in drawing order) to ``{model: summary}`` (``None``
    where the model has no rows in the group); ``smooth`` / ``smooth_range`` are keyed the same
    way. ``by`` names the grouping columns (for the title), ``left_out`` the groups not drawn.
    """
    if not panels:
        raise UsageError("a reliability diagram needs at least one group")
    models = list(dict.fromkeys(m for per in panels.values() for m in per))
    several = len(models) > 1
    if overlay and several:
        raise UsageError("groups are overlaid for one model only; draw several models in panels")
    slots: dict[str, CalibrationSummary | None] = {}
    colors: dict[str, str] = {}
    curves: dict[str, Any] = {}
    spans: dict[str, tuple[float, float]] = {}
    model_color = model_colors(models)
    for i, (label, per) in enumerate(panels.items()):
        for model in models:
            name = f"{model} · {label}" if several else label
            name = name.replace("$", r"\$") if overlay else _title(name)  # a legend entry
            slots[name] = per.get(model)
            colors[name] = model_color[model] if several or not overlay else PALETTE[i % 16]
            curve = (smooth or {}).get(label, {}).get(model)
            if curve is not None:
                curves[name] = curve
            span = (smooth_range or {}).get(label, {}).get(model)
            if span is not None:
                spans[name] = span
    first = next(s for s in slots.values() if s is not None)
    columns = ", ".join(by)
    bins = f"{first.n_bins} {first.binning} bins"
    heading = title or f"reliability by {columns} ({bins})"
    if left_out:
        shown = "the largest" if len(panels) == 1 else f"the {len(panels)} largest"
        heading += (
            f"\n{shown} of {len(panels) + left_out} groups shown; {left_out} smaller left out"
        )
    n = len(slots)
    ncols = len(models) if several else (4 if n > 9 else min(n, 3))
    return plot_reliability(
        slots,
        overlay=overlay,
        title=heading,
        colors=colors,
        ncols=ncols,
        smooth=curves or None,
        smooth_range=spans,
        intervals=intervals,
        ci=ci,
    )
