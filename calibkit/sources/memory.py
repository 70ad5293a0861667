"""The memory that turning arrays into predictions costs, so that oversized inputs are refused
up front (the limit itself, :func:`available_memory` and :func:`check_fits`, is
:mod:`calibkit.readers.memory`'s, re-exported here).

What an input needs is estimated from the shapes and dtypes the file DECLARES (``.npy`` headers,
the zip directory, tensor metadata), never from its size on disk, which a compressed member or an
expanded (stride-0) tensor view makes arbitrarily small: the arrays the reader holds in memory
plus the whole-array copies :meth:`calibkit.sources.predictions.Predictions.from_arrays` makes
(:func:`prediction_copies`). The per-chunk work of validation and of the metrics is bounded
(chunks of :data:`calibkit.sources.predictions.CHUNK_ELEMENTS` numbers) and not counted.
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING

# the generic part lives with the readers, which check what a file declares; re-exported here
from calibkit.readers.memory import available_memory, check_fits, format_bytes

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "available_memory",
    "check_fits",
    "confidence_copies",
    "format_bytes",
    "prediction_copies",
]


def prediction_copies(
    scores_shape: tuple[int, ...],
    scores_dtype: np.dtype,
    labels_shape: tuple[int, ...],
    labels_dtype: np.dtype,
) -> int:
    """Bytes that ``Predictions.from_arrays`` allocates on top of the arrays it is given.

    Mirrors its whole-array steps: non-float scores become a float64 copy; one score per row is
    expanded to two columns; labels become int64 (or float64 soft labels), with masks for the
    range checks. Shapes the reader would refuse are estimated as if accepted.

    >>> import numpy as np
    >>> prediction_copies((10**6, 10), np.dtype("int8"), (10**6,), np.dtype("int64"))
    83000000
    """
    n = scores_shape[0] if scores_shape else 1
    numel = prod(scores_shape)
    binary = len(scores_shape) == 1 or (len(scores_shape) == 2 and scores_shape[1] == 1)
    widened = scores_dtype.kind != "f"
    size = 8 if widened else scores_dtype.itemsize
    total = numel * 8 if widened else 0
    if binary:
        total += 3 * n * size  # a temporary column, then the (N, 2) stack
    n_classes = 2 if binary else (scores_shape[1] if len(scores_shape) == 2 else 0)
    m = labels_shape[0] if labels_shape else 1
    y_numel = prod(labels_shape)
    if len(labels_shape) == 2 and labels_shape[1] == n_classes and n_classes >= 2:  # soft labels
        copy = 0 if labels_dtype.kind == "f" and labels_dtype.itemsize == 8 else y_numel * 8
        return total + copy + 2 * y_numel + 8 * m  # the copy, two masks, the row sums
    if labels_dtype.kind == "b":
        total += 8 * y_numel  # bool -> int64 first
    elif labels_dtype.kind == "f":
        total += y_numel * (labels_dtype.itemsize + 2)  # np.round and its mask
    widen = labels_dtype.kind != "i" or labels_dtype.itemsize != 8
    return total + 3 * y_numel + (8 * y_numel if widen else 0)  # range masks, the int64 labels


def confidence_copies(n_rows: int) -> int:
    """Bytes that ``ConfidenceRows.from_arrays`` allocates on top of its two input arrays.

    >>> confidence_copies(1000)
    20000
    """
    return n_rows * (2 * 8 + 4)  # two float64 copies, range masks
