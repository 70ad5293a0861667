"""Checks between prediction sources: the same examples (label vectors), the same classes.

``calibkit compare`` warns about models evaluated on different data, ``calibkit check`` pairs a
candidate with its baseline only when both hold the same examples, and every command that
reads two files of one task refuses them when their numbers of classes differ. Each of these
questions has one answer here.

Labels are compared as :func:`~calibkit.sources.digest.canonical_labels` gives them (int64, or
float64 without ``-0.0``), in row order, whatever the chunking, file format or integer width:
an ``.npz`` and a ``.parquet`` copy of the same labels are the same examples.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from os import PathLike
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.errors import InputError
from calibkit.sources.digest import canonical_labels, same_labels
from calibkit.sources.predictions import PredictionSource

__all__ = ["check_class_count", "label_mismatches", "labels_of", "same_examples"]


def check_class_count(
    source: str | PathLike[str],
    n_classes: int | None,
    reference: str | PathLike[str],
    reference_classes: int | None,
    *,
    fitted: bool = False,
    why: str | None = None,
) -> None:
    """Refuse ``source`` when its number of classes is not ``reference``'s.

    An :class:`~calibkit.errors.InputError` on ``source``: ``has K classes, but REFERENCE has
    K'`` (``fitted on K classes`` for a calibrator; with ``why``, ``has K classes but REFERENCE
    has K': WHY``). ``None`` is a number not known (a temperature given by hand, confidence-only
    rows where the caller says so): nothing is compared.

    >>> check_class_count("val.npz", 3, "test.npz", 3)
    >>> check_class_count("val.npz", 3, "test.npz", 10)
    Traceback (most recent call last):
    ...
    calibkit.errors.InputError: val.npz: has 3 classes, but test.npz has 10
    """
    if n_classes is None or reference_classes is None or n_classes == reference_classes:
        return
    has = "fitted on" if fitted else "has"
    if why is None:
        problem = f"{has} {n_classes} classes, but {reference} has {reference_classes}"
    else:
        problem = f"{has} {n_classes} classes but {reference} has {reference_classes}: {why}"
    raise InputError(str(source), problem)


def _canonical_chunks(
    source: PredictionSource, *, skip_empty: bool = False
) -> Iterator[NDArray[Any]]:
    for _, labels in source.chunks():
        if len(labels) or not skip_empty:
            yield canonical_labels(labels)


def labels_of(source: PredictionSource) -> NDArray[Any]:
    """The whole label vector, in the digest's canonical form (int64, or float64 without -0.0)."""
    parts = list(_canonical_chunks(source))
    return np.concatenate(parts) if parts else np.empty(0)


def same_examples(a: PredictionSource, b: PredictionSource) -> bool:
    """Whether two sources hold the same label vector, in the same order (so a paired test
    applies). Known from their label digests when both were streamed through
    :class:`~calibkit.sources.digest.LabelDigest`; else both are read, chunk by chunk, and
    compared row by row whatever their chunk sizes."""
    known = same_labels(a, b)
    if known is not None:
        return known
    if a.n_rows != b.n_rows:
        return False
    left, right = _canonical_chunks(a, skip_empty=True), _canonical_chunks(b, skip_empty=True)
    x: NDArray[Any] | None = None
    y: NDArray[Any] | None = None
    while True:
        if x is None:
            x = next(left, None)
        if y is None:
            y = next(right, None)
        if x is None or y is None:
            return x is None and y is None  # both done at the same row
        if x.shape[1:] != y.shape[1:]:
            return False  # hard against soft labels, or soft labels of other widths
        n = min(len(x), len(y))
        if not np.array_equal(x[:n], y[:n]):
            return False
        x = x[n:] if len(x) > n else None
        y = y[n:] if len(y) > n else None


def label_mismatches(models: Mapping[str, PredictionSource]) -> list[str]:
    """Messages naming every model whose labels differ from the first model's (N or values)."""
    names = list(models)
    if len(names) < 2:
        return []
    ref_name = names[0]
    ref = labels_of(models[ref_name])
    out = []
    for name in names[1:]:
        labels = labels_of(models[name])
        if labels.shape != ref.shape:
            out.append(
                f"{name!r} and {ref_name!r} were evaluated on different data: "
                f"{labels.shape[0]} vs {ref.shape[0]} rows"
                + (" (soft vs hard labels)" if labels.ndim != ref.ndim else "")
            )
            continue
        diff = labels != ref
        rows = diff if diff.ndim == 1 else diff.any(axis=1)
        if rows.any():
            out.append(
                f"{name!r} and {ref_name!r} have the same N ({ref.shape[0]}) but different "
                f"labels ({int(rows.sum())} rows differ, first at row {int(np.argmax(rows))})"
            )
    return out
