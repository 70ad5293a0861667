"""One colour per model, the same in every figure calibkit draws."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["PALETTE", "model_colors"]

#: Okabe-Ito colour-blind-safe palette (black moved last), then tab10 for more models.
PALETTE = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000",
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
)  # fmt: skip


def model_colors(names: Sequence[str]) -> dict[str, str]:
    """Colour of each model by its position in the command line (cycling after 16).

    >>> model_colors(["hard", "ls"])
    {'hard': '#0072B2', 'ls': '#D55E00'}
    """
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
