"""``.pt`` / ``.pth`` predictions: the file's dict of tensors (:mod:`calibkit.readers.pt`, loaded
with ``weights_only=True``) validated into :class:`~calibkit.sources.predictions.Predictions` or
:class:`~calibkit.sources.predictions.ConfidenceRows`."""

from __future__ import annotations

from math import prod
from pathlib import Path
from typing import Any

from calibkit.loaders.keys import ReadOptions, choose_keys, confidence_keys, keyed_predictions
from calibkit.readers.memory import STREAMING_HINT, check_fits
from calibkit.readers.pt import declared, is_coarse, load_pt, storage_bytes, to_numpy
from calibkit.sources.memory import confidence_copies, prediction_copies
from calibkit.sources.predictions import ConfidenceRows, PredictionSource

__all__ = ["read_pt"]


def _check_tensors(
    obj: dict[str, Any], keys: tuple[str, str], source: str, *, confidence: bool = False
) -> None:
    """Refuse tensors whose use will not fit in memory, from their declared shapes and dtypes.

    Counts every storage the load holds, each used tensor at its full view size (an expanded,
    stride-0 view is tiny on disk, but every element is touched and copied when converted), the
    float32 copy of bfloat16/float8, and the copies the validation makes.
    """
    needed = storage_bytes(obj)
    specs = []
    for key in keys:
        shape, dtype, extra = declared(obj[key], key, source)
        needed += extra
        specs.append((shape, dtype))
    (shape, dtype), (y_shape, y_dtype) = specs
    if confidence:
        needed += confidence_copies(max(prod(shape), prod(y_shape)))
    else:
        needed += prediction_copies(shape, dtype, y_shape, y_dtype)
    check_fits(source, needed, hint=STREAMING_HINT)


def read_pt(path: Path, options: ReadOptions, source: str) -> PredictionSource:
    obj = load_pt(path, source)
    pair = confidence_keys(list(obj), options)
    if pair is not None:
        _check_tensors(obj, pair, source, confidence=True)
        return ConfidenceRows.from_arrays(
            to_numpy(obj[pair[0]], pair[0], source),
            to_numpy(obj[pair[1]], pair[1], source),
            source=source,
        )
    keys = choose_keys(list(obj), options, source)
    scores_key, labels_key, _ = keys
    _check_tensors(obj, (scores_key, labels_key), source)
    return keyed_predictions(
        to_numpy(obj[scores_key], scores_key, source),
        to_numpy(obj[labels_key], labels_key, source),
        keys,
        options,
        source,
        sum_atol=1e-2 if is_coarse(obj[scores_key]) else None,  # the tensor's own dtype's
    )
