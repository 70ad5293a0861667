"""``.npz`` predictions: the archive's named arrays (:mod:`calibkit.readers.npz`) validated into
:class:`~calibkit.sources.predictions.Predictions` or
:class:`~calibkit.sources.predictions.ConfidenceRows`.

The reader opens the archive (never unpickling), describes its members from their headers and
memory-maps uncompressed ones after their CRC-32 check; here the keys are chosen
(:mod:`calibkit.loaders.keys`), the memory the validation's copies need is checked up front, and
the arrays are validated.
"""

from __future__ import annotations

from math import prod
from pathlib import Path

from calibkit.loaders.keys import ReadOptions, choose_keys, confidence_keys, keyed_predictions
from calibkit.readers.memory import STREAMING_HINT, check_fits
from calibkit.readers.npz import NpzMember, check_declared, held_bytes, open_npz
from calibkit.sources.memory import confidence_copies, prediction_copies
from calibkit.sources.predictions import ConfidenceRows, PredictionSource

__all__ = ["read_npz"]


def read_npz(path: Path, options: ReadOptions, source: str) -> PredictionSource:
    with open_npz(path, source) as archive:
        pair = confidence_keys(archive.keys, options)
        if pair is not None:
            members = archive.members(pair)
            _check_size(source, members[pair[0]], members[pair[1]], confidence=True)
            return ConfidenceRows.from_arrays(
                archive.load(pair[0]), archive.load(pair[1]), source=source
            )
        keys = choose_keys(archive.keys, options, source)
        scores_key, labels_key, _ = keys
        members = archive.members([scores_key, labels_key])
        _check_size(source, members[scores_key], members[labels_key])
        scores = archive.mapped(members[scores_key])
        if scores is None:
            scores = archive.load(scores_key)
        labels = archive.load(labels_key)
    return keyed_predictions(scores, labels, keys, options, source)


def _check_size(
    source: str,
    first: NpzMember | None,
    second: NpzMember | None,
    *,
    confidence: bool = False,
) -> None:
    """Refuse an input whose arrays and their copies will not fit in memory.

    Sizes come from the declared shapes and dtypes: the members read into memory (compressed
    ones, labels, anything that cannot be mapped) plus the copies the validation makes, such as
    the float64 copy of integer logits. A memory-mapped member costs page cache, not memory.
    """
    for member in (first, second):
        check_declared(member, source)
    mapped = not confidence and first is not None and first.mappable
    needed = held_bytes(first, mapped) + held_bytes(second, False)
    scores = first.loaded_as if first is not None else None
    labels = second.loaded_as if second is not None else None
    if scores is not None and labels is not None:
        shape, dtype = scores
        y_shape, y_dtype = labels
        if confidence:
            needed += confidence_copies(max(prod(shape), prod(y_shape)))
        else:
            needed += prediction_copies(shape, dtype, y_shape, y_dtype)
    else:  # a header numpy will refuse or read in its own way: its size, with room for copies
        needed = needed * 3 // 2
    check_fits(source, needed, hint=STREAMING_HINT)
