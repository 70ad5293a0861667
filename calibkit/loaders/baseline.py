"""Reading a JSON baseline (the output of ``calibkit ece --json``) for ``calibkit check``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from calibkit.errors import InputError
from calibkit.gate import GateConfig
from calibkit.label_digest import LabelDigest, same_labels
from calibkit.loaders.keys import ReadOptions
from calibkit.metrics.examples import BinaryMode, ExampleStats
from calibkit.predictions import PredictionSource

__all__ = ["load_baseline", "read_baseline_json", "same_examples"]


def read_baseline_json(
    path: str | Path,
    metrics: list[str],
    *,
    n_bins: int,
    binning: str,
    binary_mode: str | None = None,
) -> dict[str, float]:
    """Point values of ``metrics`` from a ``calibkit ece --json`` file.

    The file must have been made with the same bins: an ECE with 10 bins is not comparable with
    one with 15.
    """
    from calibkit.textfile import load_json

    path = Path(path)
    source = str(path)
    doc: Any = load_json(path, "a JSON baseline")  # a regular file or pipe, at most 16 MiB
    if not isinstance(doc, dict):
        raise InputError(source, "a JSON baseline must be an object (from calibkit ece --json)")
    if "n_bins" in doc and (doc.get("n_bins"), doc.get("binning")) != (n_bins, binning):
        raise InputError(
            source,
            f"made with {doc.get('n_bins')} {doc.get('binning')} bins, but the check "
            f"uses {n_bins} {binning} bins; recompute it with the same --bins/--binning",
        )
    if "binary_mode" in doc and doc.get("binary_mode") != binary_mode:
        raise InputError(
            source,
            f"made with binary mode {doc.get('binary_mode')!r}, but the check uses "
            f"{binary_mode!r}; recompute it with the same --binary",
        )
    out = {}
    for m in metrics:
        value = doc.get(m)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise InputError(source, f"has no numeric {m!r} (from calibkit ece --json)")
        out[m] = float(value)
    return out


def same_examples(a: PredictionSource, b: PredictionSource) -> bool:
    """Whether two prediction sources hold the same label vector (so a paired test applies)."""
    import numpy as np

    if a.n_rows != b.n_rows:
        return False
    for (_, la), (_, lb) in zip(a.chunks(), b.chunks(), strict=False):
        if la.shape != lb.shape or not np.array_equal(la, lb):
            return False
    return True


def load_baseline(
    path: str,
    candidate: PredictionSource,
    config: GateConfig,
    options: ReadOptions,
    *,
    binary_mode: BinaryMode | None = "top-label",
    chunk_rows: int | None = None,
) -> tuple[ExampleStats | dict[str, float], bool, list[str]]:
    """The baseline for ``calibkit check``: ``(per-example stats or point values, paired, notes)``.

    A ``.json`` file gives point values (see :func:`read_baseline_json`); any predictions file
    gives per-example statistics, paired with the candidate when both hold the same examples.
    """
    from calibkit.loaders import read_predictions
    from calibkit.metrics.summary import collect_example_stats

    if Path(path).suffix.lower() == ".json":
        values = read_baseline_json(
            path,
            list(config.max_increase),
            n_bins=config.n_bins,
            binning=config.binning,
            binary_mode=binary_mode,
        )
        return values, False, []
    source: PredictionSource = read_predictions(path, options)
    if isinstance(candidate, LabelDigest) and candidate.digest is not None:
        source = LabelDigest(source)  # labels compared by digest: no second read of either
    stats = collect_example_stats(
        source, binary_mode=binary_mode or "top-label", chunk_rows=chunk_rows
    )
    same = same_labels(candidate, source)
    if same is None:
        same = same_examples(candidate, source)
    if same:
        return stats, True, []
    return (
        stats,
        False,
        [
            "baseline and candidate hold different examples (N or labels differ): unpaired "
            "bootstrap, much less sensitive than a paired one"
        ],
    )
