"""The baseline of ``calibkit check``: a predictions file, or the JSON of ``calibkit ece --json``.

A regression check compares two models on one task, so a baseline must have the candidate's
number of classes: anything else is refused, whatever the flags. It should also hold the same
examples (the same N and the same label vector, in order), which makes the bootstrap paired; a
baseline of other examples is refused too unless the caller allows an unpaired comparison
(``unpaired=True``, ``calibkit check --unpaired``), which is much less sensitive. A JSON baseline
holds point values only: its ``n_classes`` must match, and so must its ``n`` unless
``unpaired`` (its labels are not stored, so the same N is all that can be checked; a JSON
without ``n``/``n_classes`` — written by hand — cannot be checked and is used as it is).
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calibkit.errors import InputError, Message, Param
from calibkit.gate.checks import GateConfig
from calibkit.loaders.keys import ReadOptions
from calibkit.metrics.examples import BinaryMode
from calibkit.sources.checks import check_class_count, same_examples
from calibkit.sources.digest import LabelDigest
from calibkit.sources.predictions import PredictionSource

if TYPE_CHECKING:
    from calibkit.stats.bootstrap import ModelSums

__all__ = [
    "UNPAIRED_NOTE",
    "baseline_stats",
    "load_baseline",
    "open_baseline",
    "read_baseline_json",
    "same_examples",
]


def read_baseline_json(
    path: str | Path,
    metrics: list[str],
    *,
    n_bins: int,
    binning: str,
    binary_mode: str | None = None,
    n_rows: int | None = None,
    n_classes: int | None = None,
    unpaired: bool = False,
    candidate: str = "predictions",
) -> dict[str, float]:
    """Point values of ``metrics`` from a ``calibkit ece --json`` file.

    The file must have been made with the same bins: an ECE with 10 bins is not comparable with
    one with 15. Given the candidate's ``n_classes`` (and ``n_rows``), the file's must match
    (``n_rows`` only unless ``unpaired``); see the module docstring.
    """
    from calibkit.io.textfile import load_json

    path = Path(path)
    source = str(path)
    doc: Any = load_json(path, "a JSON baseline")  # a regular file or pipe, at most 16 MiB
    if not isinstance(doc, dict):
        raise InputError(source, "a JSON baseline must be an object (from calibkit ece --json)")
    _check_json_task(doc, source, n_rows, n_classes, unpaired=unpaired, candidate=candidate)
    if "n_bins" in doc and (doc.get("n_bins"), doc.get("binning")) != (n_bins, binning):
        raise InputError(
            source,
            f"made with {doc.get('n_bins')} {doc.get('binning')} bins, but the check "
            f"uses {n_bins} {binning} bins; recompute it with the same "
            + Param("n_bins")
            + "/"
            + Param("binning"),
        )
    if doc.get("binary_mode") is None and doc.get("n_classes") == 2 and binary_mode == "top-label":
        doc = {**doc, "binary_mode": binary_mode}  # older files said null for (N, 2) inputs
    if "binary_mode" in doc and doc.get("binary_mode") != binary_mode:
        raise InputError(
            source,
            f"made with binary mode {doc.get('binary_mode')!r}, but the check uses "
            f"{binary_mode!r}; recompute it with the same " + Param("binary_mode"),
        )
    out = {}
    for m in metrics:
        value = doc.get(m)
        number = math.nan
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            with contextlib.suppress(OverflowError):  # an integer of hundreds of digits
                number = float(value)
        if not math.isfinite(number):
            raise InputError(source, f"has no numeric {m!r} (from calibkit ece --json)")
        out[m] = number
    return out


UNPAIRED_HINT = (
    "give "
    + Param("unpaired", True)
    + " (or unpaired = true in [tool.calibkit.check]) to compare them anyway, "
    "with an unpaired bootstrap, much less sensitive"
)
UNPAIRED_NOTE = (
    "baseline and candidate hold different examples (N or labels differ): unpaired "
    "bootstrap, much less sensitive than a paired one"
)


def _json_count(doc: dict[str, Any], key: str, source: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(source, f"{key!r} must be a count (from calibkit ece --json)")
    return value


def _same_classes(source: str, base_k: int | None, cand_k: int | None, candidate: str) -> None:
    """The baseline's classes must be the candidate's; 0 (confidence-only rows) is unknown."""
    check_class_count(
        source,
        base_k or None,
        f"the candidate {candidate}",
        cand_k or None,
        why="a regression check needs two models of the same task",
    )


def _other_rows(base_n: int, cand_n: int, candidate: str) -> Message:
    return (
        f"holds {base_n} examples but the candidate {candidate} holds {cand_n}: not a baseline "
        "of the same examples; " + UNPAIRED_HINT
    )


def _check_json_task(
    doc: dict[str, Any],
    source: str,
    n_rows: int | None,
    n_classes: int | None,
    *,
    unpaired: bool,
    candidate: str,
) -> None:
    """A JSON baseline must count the candidate's classes, and its rows unless ``unpaired``.

    0 classes (confidence-only predictions) is unknown and not compared.
    """
    base_k = _json_count(doc, "n_classes", source)
    base_n = _json_count(doc, "n", source)
    _same_classes(source, base_k, n_classes, candidate)
    if n_rows is not None and base_n is not None and base_n != n_rows and not unpaired:
        raise InputError(source, _other_rows(base_n, n_rows, candidate))


def open_baseline(
    path: str,
    candidate: PredictionSource,
    config: GateConfig,
    options: ReadOptions,
    *,
    binary_mode: BinaryMode | None = "top-label",
    unpaired: bool = False,
) -> PredictionSource | dict[str, float]:
    """Open a baseline and check it against the candidate's layout, before any data is read.

    Returns the point values of a ``.json`` baseline, or the opened predictions. Refuses another
    number of classes, and another number of examples unless ``unpaired``.
    """
    from calibkit.loaders import read_predictions

    if Path(path).suffix.lower() == ".json":
        return read_baseline_json(
            path,
            list(config.max_increase),
            n_bins=config.n_bins,
            binning=config.binning,
            binary_mode=binary_mode,
            n_rows=candidate.n_rows,
            n_classes=candidate.n_classes,
            unpaired=unpaired,
            candidate=candidate.source,
        )
    source = read_predictions(path, options)
    _same_classes(path, source.n_classes, candidate.n_classes, candidate.source)
    if source.n_rows != candidate.n_rows and not unpaired:
        raise InputError(path, _other_rows(source.n_rows, candidate.n_rows, candidate.source))
    return source


def baseline_stats(
    baseline: PredictionSource | dict[str, float],
    candidate: PredictionSource,
    *,
    config: GateConfig | None = None,
    binary_mode: BinaryMode | None = "top-label",
    chunk_rows: int | None = None,
    unpaired: bool = False,
) -> tuple[ModelSums | dict[str, float], bool, list[str]]:
    """``(bootstrap sums or point values, paired, notes)`` of a baseline from
    :func:`open_baseline`, once the candidate has been streamed (its label digest is used).

    The baseline is streamed once (:func:`calibkit.stats.bootstrap.model_sums`, with the
    ``bootstrap`` replicates, ``seed`` and bins of ``config``): with the candidate's weights
    (stream 0) when it may hold the same examples, which its label digest then confirms. If it
    turns out to hold other examples and ``unpaired`` allows that, it is streamed a second time
    with independent weights (stream 1); a baseline of another N gets those at once.
    """
    from calibkit.stats.bootstrap import model_sums

    if isinstance(baseline, dict):
        return baseline, False, []
    config = config or GateConfig()
    source = baseline
    if isinstance(candidate, LabelDigest) and candidate.digest is not None:
        source = LabelDigest(source)  # labels compared by digest: no second read of either

    def sums(stream: int) -> ModelSums:
        return model_sums(
            source,
            n_bins=config.n_bins,
            binning=config.binning,
            replicates=config.bootstrap if config.max_increase else 0,
            seed=config.seed,
            stream=stream,
            binary_mode=binary_mode or "top-label",
            chunk_rows=chunk_rows,
            warn=stream == 0 or other_n,
        )

    other_n = source.n_rows != candidate.n_rows  # open_baseline allowed it: unpaired
    if other_n:
        return sums(1), False, [UNPAIRED_NOTE]
    first = sums(0)
    if same_examples(candidate, source):
        return first, True, []
    if not unpaired:
        raise InputError(
            baseline.source,
            f"holds as many examples as the candidate {candidate.source} ({candidate.n_rows}) "
            "but other labels (other examples, or the same in another order); " + UNPAIRED_HINT,
        )
    return sums(1), False, [UNPAIRED_NOTE]


def load_baseline(
    path: str,
    candidate: PredictionSource,
    config: GateConfig,
    options: ReadOptions,
    *,
    binary_mode: BinaryMode | None = "top-label",
    chunk_rows: int | None = None,
    unpaired: bool = False,
) -> tuple[ModelSums | dict[str, float], bool, list[str]]:
    """The baseline for ``calibkit check``: ``(bootstrap sums or point values, paired, notes)``.

    :func:`open_baseline` then :func:`baseline_stats`. A ``.json`` file gives point values (see
    :func:`read_baseline_json`); any predictions file gives bootstrap sums, paired with
    the candidate when both hold the same examples. A baseline with another number of classes
    is refused; one of other examples (another N, or other labels) is refused unless
    ``unpaired`` allows an unpaired bootstrap.
    """
    opened = open_baseline(
        path, candidate, config, options, binary_mode=binary_mode, unpaired=unpaired
    )
    return baseline_stats(
        opened,
        candidate,
        config=config,
        binary_mode=binary_mode,
        chunk_rows=chunk_rows,
        unpaired=unpaired,
    )
