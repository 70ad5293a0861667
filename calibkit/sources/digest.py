"""Know whether two prediction files hold the same labels without reading either twice.

``calibkit check`` pairs a candidate with its baseline, and ``calibkit compare`` warns about
models evaluated on different data, when the label vectors are (not) identical. Reading every
file a second time just to compare labels doubles the I/O on a large parquet data set, so
:class:`LabelDigest` wraps a source and hashes its labels as the metrics pass streams them:
SHA-256 over the labels in row order, widened to little-endian int64 (hard labels) or float64
(soft labels, with -0.0 written as 0.0), after a header with the label layout. The digest
depends only on the label values and their order, never on the chunking, the file format or
the integer width, so an ``.npz`` and a ``.parquet`` copy of the same labels match.

>>> import numpy as np
>>> from calibkit.sources.predictions import Predictions
>>> a = LabelDigest(Predictions.from_arrays(np.zeros((4, 3)), np.array([0, 1, 2, 1])))
>>> b = LabelDigest(Predictions.from_arrays(np.ones((4, 3)), np.array([0, 1, 2, 1], np.int8)))
>>> a.digest is None  # nothing streamed yet
True
>>> for src in (a, b):
...     _ = [c for c in src.chunks(chunk_rows=3)]
>>> a.digest == b.digest, a.rows
(True, 4)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.sources.predictions import PredictionSource, SourceView

__all__ = ["LabelDigest", "canonical_labels", "same_labels"]


def canonical_labels(labels: NDArray[Any]) -> NDArray[Any]:
    """Labels as the digest sees them: little-endian int64, or float64 with -0.0 as 0.0."""
    if labels.dtype.kind in "biu":
        return np.ascontiguousarray(labels, dtype="<i8")
    out = np.ascontiguousarray(labels, dtype="<f8")
    return out + 0.0  # -0.0 -> +0.0: equal values, equal bytes (labels are finite, validated)


class LabelDigest(SourceView):
    """A :class:`~calibkit.sources.predictions.PredictionSource` that hashes its labels in passing.

    Chunks go through unchanged. :attr:`digest` is set when a pass has run to the end (and
    reset when another starts), so a pass cut short never yields a digest.
    """

    def __init__(self, base: PredictionSource) -> None:
        self.base = base
        self._digest: str | None = None
        self._rows = 0

    @property
    def digest(self) -> str | None:
        """SHA-256 hex digest of the labels of the last complete pass, else ``None``."""
        return self._digest

    @property
    def rows(self) -> int:
        """Rows seen by the last complete pass."""
        return self._rows

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]:
        self._digest = None
        h = hashlib.sha256()
        rows = 0
        layout: tuple[int, ...] | None = None
        for scores, labels in self.base.chunks(chunk_rows):
            canon = canonical_labels(labels)
            if layout is None:
                layout = canon.shape[1:]
                h.update(f"{canon.dtype.str}{layout}".encode())
            h.update(canon.data)
            rows += canon.shape[0]
            yield scores, labels
        self._digest, self._rows = h.hexdigest(), rows


def same_labels(a: PredictionSource, b: PredictionSource) -> bool | None:
    """Whether two digested sources streamed identical labels; ``None`` if that is not known."""
    if not (isinstance(a, LabelDigest) and isinstance(b, LabelDigest)):
        return None
    if a.digest is None or b.digest is None:
        return None
    return a.digest == b.digest and a.rows == b.rows
