"""The table and the JSON of ``calibkit mutual-info``: one column (one object) per model.

JSON schema (``calibkit mutual-info --json``), logs natural unless said:

``classes`` (``[a, b]``: ``f = z_a - z_b``), ``class_names`` (their names, or ``null``),
``ddof`` (1: the within-example variance divides by ``n (L - 1)``; see
:mod:`calibkit.diagnostics.mutual_info`), ``calibkit_version`` and ``models``: a list, in the
order given, of ``{name, source, logits_key, labels_key, n_examples (N in the file),
n_augmentations (L), n_classes (K), n (examples of a or b used), counts ([n_a, n_b]), sigma2
(within-example variance of f), mutual_info_nats, mutual_info_bits, log_n (the largest value),
log_2, class_entropy (the value when only the class is recoverable: -sum p log p of the shares
n_a / n, n_b / n; log 2 when they are equal)}``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from calibkit._version import __version__
from calibkit.diagnostics.mutual_info import MutualInformation

__all__ = ["ModelEstimate", "mutual_info_json", "mutual_info_table"]


@dataclass(frozen=True)
class ModelEstimate:
    """One model's estimate and where its logits came from."""

    name: str
    source: str
    logits_key: str
    labels_key: str
    #: ``(N, L, K)`` of the file
    shape: tuple[int, int, int]
    estimate: MutualInformation


def _class_label(index: int, names: Sequence[str] | None) -> str:
    return f"{index} ({names[index]})" if names else str(index)


def mutual_info_json(
    rows: Sequence[ModelEstimate], classes: tuple[int, int], names: Sequence[str] | None
) -> dict[str, Any]:
    return {
        "classes": list(classes),
        "class_names": [names[c] for c in classes] if names else None,
        "ddof": rows[0].estimate.ddof if rows else 1,
        "calibkit_version": __version__,
        "models": [
            {
                "name": r.name,
                "source": r.source,
                "logits_key": r.logits_key,
                "labels_key": r.labels_key,
                "n_examples": r.shape[0],
                "n_augmentations": r.shape[1],
                "n_classes": r.shape[2],
                "n": r.estimate.n,
                "counts": list(r.estimate.counts),
                "sigma2": r.estimate.sigma2,
                "mutual_info_nats": r.estimate.nats,
                "mutual_info_bits": r.estimate.bits,
                "log_n": r.estimate.log_n,
                "log_2": math.log(2.0),
                "class_entropy": r.estimate.class_entropy,
            }
            for r in rows
        ],
    }


def mutual_info_table(
    rows: Sequence[ModelEstimate], classes: tuple[int, int], names: Sequence[str] | None
) -> Table:
    a, b = classes
    t = Table(
        title=(
            "mutual information between the input and f = z_a - z_b under augmentations "
            f"(Müller et al. 2019, §4); a = {_class_label(a, names)}, "
            f"b = {_class_label(b, names)}; nats unless said"
        ),
        title_justify="left",
        header_style="bold",
    )
    t.add_column("")
    for r in rows:
        t.add_column(r.name, justify="right")
    lines: list[tuple[str, list[str]]] = [
        (
            "examples of a + b (n)",
            [f"{r.estimate.counts[0]} + {r.estimate.counts[1]}" for r in rows],
        ),
        ("augmentations (L)", [str(r.estimate.n_augmentations) for r in rows]),
        ("within-example variance of f", [f"{r.estimate.sigma2:.4g}" for r in rows]),
        ("mutual information I", [f"{r.estimate.nats:.4f}" for r in rows]),
        ("I in bits", [f"{r.estimate.bits:.4f}" for r in rows]),
        ("log n (largest)", [f"{r.estimate.log_n:.4f}" for r in rows]),
        ("class entropy (class only)", [f"{r.estimate.class_entropy:.4f}" for r in rows]),
        ("log 2", [f"{math.log(2.0):.4f}" for _ in rows]),
    ]
    for label, cells in lines:
        t.add_row(label, *cells)
    return t
