"""One colour per model, the same in every figure calibkit draws, and the styles of the parts of
a reliability diagram that are not a model's (gap, empty bins, intervals)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["EMPTY_STYLE", "GAP_STYLE", "INTERVAL_STYLE", "PALETTE", "model_colors"]

#: Okabe-Ito colour-blind-safe palette (black moved last), then tab10 for more models.
PALETTE = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000",
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
)  # fmt: skip

#: The gap between a bin's accuracy and its mean confidence: an outlined, hatched band with a
#: transparent face. Above a bar (over-confident) it lies on white; over a bar (under-confident)
#: the bar's colour shows through it, so the solid colour always ends at the accuracy and the
#: band looks the same in both directions (and in the legend).
GAP_STYLE: dict[str, Any] = {
    "facecolor": "none",
    "edgecolor": "0.2",
    "hatch": "////",
    "linewidth": 0.8,
}

#: A bin without data: a pale full-height box with a dashed edge, unlike a gridline.
EMPTY_STYLE: dict[str, Any] = {
    "facecolor": "0.93",
    "edgecolor": "0.6",
    "linestyle": (0, (3, 2)),
    "linewidth": 0.7,
}

#: Per-bin intervals on the accuracy (``--intervals``).
INTERVAL_STYLE: dict[str, Any] = {
    "ecolor": "black",
    "elinewidth": 1.0,
    "capsize": 2.5,
    "capthick": 1.0,
}


def model_colors(names: Sequence[str]) -> dict[str, str]:
    """Colour of each model by its position in the command line (cycling after 16).

    >>> model_colors(["hard", "ls"])
    {'hard': '#0072B2', 'ls': '#D55E00'}
    """
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
