"""The numbers of ``calibkit penultimate``: one table row and one JSON entry per model and split.

The numbers are defined in :mod:`calibkit.diagnostics.penultimate` (spread = RMS distance of a
class's points to their centre; distances between the centres; tightness = mean spread / mean
distance; equidistance CV = std / mean of the three distances), in the plane of the three
templates and in the full ``(D + 1)``-dimensional space of ``x~ = [x; 1]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from calibkit.diagnostics.penultimate import Projection
from calibkit.report.tables import fmt

__all__ = ["penultimate_doc", "penultimate_table"]

#: split name -> projection, per model name
Results = Mapping[str, Mapping[str, Projection]]


def _split_doc(p: Projection) -> dict[str, Any]:
    return {
        "available": list(p.available),
        "sampled": list(p.plane_stats.counts),
        "plane": p.plane_stats.to_dict(),
        "full": p.full_stats.to_dict(),
        "templates": [[float(v) for v in row] for row in p.template_coords],
    }


def penultimate_doc(
    results: Results,
    *,
    classes: Sequence[int],
    class_names: Sequence[str],
    per_class: int,
    seed: int,
    sources: Mapping[str, Mapping[str, str]],
) -> dict[str, Any]:
    """The ``--json`` document: the classes, the sampling, and per model and split the numbers
    (``sources``: per model and split, the file it came from)."""
    return {
        "classes": [
            {"index": int(k), "name": n} for k, n in zip(classes, class_names, strict=True)
        ],
        "per_class": per_class,
        "seed": seed,
        "models": [
            {
                "name": name,
                "splits": {
                    split: {"file": sources[name][split], **_split_doc(p)}
                    for split, p in splits.items()
                },
            }
            for name, splits in results.items()
        ],
    }


def penultimate_table(results: Results, *, class_names: Sequence[str]) -> Table:
    """Per model and split: examples, spreads, centre distances, tightness and CV (plane), and
    tightness and CV in the full space."""
    a, b, c = class_names
    t = Table(
        title=f"penultimate-layer clusters of classes {a}, {b}, {c} (plane of their templates)",
        title_justify="left",
        header_style="bold",
    )
    t.add_column("model")
    t.add_column("split")
    t.add_column("n per class", justify="right")
    t.add_column(f"spread {a} / {b} / {c}", justify="right")
    t.add_column(f"centre dist {a}-{b} / {a}-{c} / {b}-{c}", justify="right")
    t.add_column("tightness", justify="right")
    t.add_column("equidist CV", justify="right")
    t.add_column("full tightness", justify="right")
    t.add_column("full CV", justify="right")
    for name, splits in results.items():
        for split, p in splits.items():
            s, f = p.plane_stats, p.full_stats
            t.add_row(
                name,
                split,
                "/".join(str(n) for n in s.counts),
                " / ".join(fmt(v, 3) for v in s.spread),
                " / ".join(fmt(v, 3) for v in s.distances),
                fmt(s.tightness, 3),
                fmt(s.equidistance_cv, 3),
                fmt(f.tightness, 3),
                fmt(f.equidistance_cv, 3),
            )
    return t
