"""Saving figures atomically, format chosen by extension.

Figures go through :func:`calibkit.io.atomic.atomic_path`: a regular (or new) file is
replaced atomically, a symbolic link's target is replaced (the link stays), and a FIFO or
character device named ``*.png`` / ``*.svg`` / ``*.pdf`` receives the finished file's bytes
(matplotlib writes a temporary file first, so no format needs to seek on the device).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from calibkit.errors import UsageError
from calibkit.io.atomic import atomic_path

__all__ = ["FIGURE_SUFFIXES", "check_figure_path", "save_figure"]

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def check_figure_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise UsageError(
            f"{path}: figure format must be one of {', '.join(FIGURE_SUFFIXES)} (by extension)"
        )
    return path


def save_figure(fig: Any, path: str | Path, *, inputs: Iterable[str | Path] = ()) -> Path:
    """Write ``fig`` to ``path`` (PNG at 150 dpi, SVG or PDF) via a temporary file; refused
    when ``path`` is one of ``inputs`` (see :func:`calibkit.io.atomic.plan_output`)."""
    import matplotlib

    path = check_figure_path(path)
    if getattr(fig, "get_layout_engine", lambda: None)() is not None:
        # solve the layout once and freeze it: saving the same figure again gives the same file
        fig.draw_without_rendering()
        fig.set_layout_engine("none")
    # a fixed salt makes SVG element ids (and so the file) reproducible
    with matplotlib.rc_context({"svg.hashsalt": "calibkit"}), atomic_path(path, inputs) as tmp:
        fig.savefig(tmp, format=path.suffix.lower()[1:], dpi=150, metadata=_metadata(path))
    return path


def _metadata(path: Path) -> dict[str, str | None]:
    # no timestamps, so the same data gives the same file
    suffix = path.suffix.lower()
    if suffix == ".png":
        return {"Software": "calibkit"}
    if suffix == ".svg":
        return {"Date": None}
    return {"CreationDate": None, "Creator": "calibkit"}
