"""The one in-memory form of a classifier's saved predictions, and its validation.

Every reader (``.npz``, ``.parquet``, ``.pt``) and every Python entry point ends in a
:class:`Predictions` object or, for inputs streamed from disk, in an object with the same
attributes and :meth:`~Predictions.chunks` method (see :class:`PredictionSource`). Validation
lives here, once, and every problem is an :class:`~calibkit.errors.InputError` whose message starts
with the source name.

Conventions
-----------
* ``scores`` has shape ``(N, K)`` with ``K >= 2``. A binary model saved with one score per row
  (shape ``(N,)`` or ``(N, 1)``) is the positive class; it is expanded to two classes, logits
  ``[0, z]`` (so the softmax is the sigmoid) or probabilities ``[1 - p, p]``, and ``binary`` is set.
* ``kind`` says what the scores are: ``"logits"`` (any real numbers) or ``"probs"`` (each in
  ``[0, 1]``, rows summing to 1 within :data:`PROB_SUM_ATOL`).
* ``labels`` has shape ``(N,)`` of integers in ``[0, K)`` or, for soft labels, shape ``(N, K)``
  of non-negative rows summing to 1 (annotator distributions, distillation targets).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibkit.errors import InputError

__all__ = [
    "CONFIDENCE",
    "PROB_SUM_ATOL",
    "ConfidenceRows",
    "PredictionSource",
    "Predictions",
    "ScoreKind",
    "SourceView",
    "default_chunk_rows",
    "expand_binary",
    "validate_confidence",
    "validate_labels",
    "validate_scores",
]

ScoreKind = Literal["logits", "probs"]
SCORE_KINDS: tuple[ScoreKind, ...] = ("logits", "probs")
#: The kind of a :class:`ConfidenceRows` source: only a confidence and a correctness per row.
CONFIDENCE: Literal["confidence"] = "confidence"
SourceKind = Literal["logits", "probs", "confidence"]

#: Tolerance on ``|sum_k p_k - 1|`` for probability rows (and soft-label rows), by input dtype.
#: Wide enough for float32 softmax outputs, narrow enough to catch unnormalised scores.
PROB_SUM_ATOL = {"float16": 1e-2, "bfloat16": 1e-2, "float32": 1e-4, "float64": 1e-4}

#: Elements per chunk when streaming: a float64 chunk is 2**19 * 8 B = 4 MiB (larger chunks
#: amortise the per-chunk Python work that holds the GIL; smaller ones scale worse on threads).
CHUNK_ELEMENTS = 1 << 19


def default_chunk_rows(n_classes: int) -> int:
    """Rows per chunk so that one float64 chunk holds about :data:`CHUNK_ELEMENTS` numbers."""
    return max(1, CHUNK_ELEMENTS // max(1, n_classes))


class PredictionSource(Protocol):
    """What the metrics need from predictions: shape facts and a stream of validated chunks."""

    @property
    def source(self) -> str: ...
    @property
    def kind(self) -> SourceKind: ...
    @property
    def n_classes(self) -> int: ...
    @property
    def n_rows(self) -> int: ...
    @property
    def binary(self) -> bool: ...
    @property
    def soft_labels(self) -> bool: ...

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]: ...


class SourceView:
    """A prediction source that streams another one, :attr:`base`, passing on its shape facts.

    Subclasses (temperature-scaled views, label digests) override :meth:`chunks`, and ``kind``
    when they change what the scores are.
    """

    base: PredictionSource

    @property
    def source(self) -> str:
        return self.base.source

    @property
    def kind(self) -> SourceKind:
        return self.base.kind

    @property
    def n_classes(self) -> int:
        return self.base.n_classes

    @property
    def n_rows(self) -> int:
        return self.base.n_rows

    @property
    def binary(self) -> bool:
        return self.base.binary

    @property
    def soft_labels(self) -> bool:
        return self.base.soft_labels

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]:
        return self.base.chunks(chunk_rows)


def _is_real_dtype(dtype: np.dtype) -> bool:
    return dtype.kind in "fiu"


def _first_bad_row(mask: NDArray[np.bool_]) -> int:
    rows = mask if mask.ndim == 1 else mask.any(axis=tuple(range(1, mask.ndim)))
    return int(np.argmax(rows))


def expand_binary(scores: NDArray[np.floating], kind: ScoreKind) -> NDArray[np.floating]:
    """Turn one positive-class score per row into two columns (see the module docstring)."""
    col = scores.reshape(-1)
    if kind == "logits":
        return np.stack([np.zeros_like(col), col], axis=1)
    return np.stack([1 - col, col], axis=1)


def validate_scores(
    scores: NDArray[Any],
    kind: ScoreKind,
    source: str,
    *,
    row_offset: int = 0,
    sum_atol: float | None = None,
) -> None:
    """Raise :class:`InputError` unless ``scores`` (already 2-D) are finite valid ``kind``."""
    name = "logits" if kind == "logits" else "probabilities"
    if not _is_real_dtype(scores.dtype):
        raise InputError(source, f"{name} must be real numbers; found dtype {scores.dtype}")
    if scores.dtype.kind != "f":
        if kind == "logits":
            return  # integers are finite logits
        scores = scores.astype(np.float64)  # integer probabilities still need the range checks
    finite = np.isfinite(scores)
    if not finite.all():
        bad = ~finite
        row = _first_bad_row(bad)
        value = scores[row][bad[row]][0]
        raise InputError(source, f"{name} contain {value} at row {row + row_offset}")
    if kind == "probs":
        out = (scores < 0) | (scores > 1)
        if out.any():
            row = _first_bad_row(out)
            raise InputError(
                source,
                f"probabilities must lie in [0, 1]; row {row + row_offset} has "
                f"{scores[row][out[row]][0]:g} (use --input logits if these are logits)",
            )
        if scores.shape[1] >= 2:
            atol = sum_atol or PROB_SUM_ATOL.get(str(scores.dtype), 1e-4)
            sums = scores.sum(axis=1, dtype=np.float64)
            off = np.abs(sums - 1) > atol
            if off.any():
                row = int(np.argmax(off))
                raise InputError(
                    source,
                    f"probability rows must sum to 1; row {row + row_offset} sums to "
                    f"{sums[row]:.6g} (use --input logits if these are logits)",
                )


def validate_labels(
    labels: NDArray[Any], n_classes: int, source: str, *, row_offset: int = 0
) -> NDArray[Any]:
    """Validate labels and return them as int64 ``(n,)`` or float64 ``(n, K)`` soft labels."""
    if labels.dtype == np.bool_:
        labels = labels.astype(np.int64)
    if not _is_real_dtype(labels.dtype):
        raise InputError(source, f"labels must be numbers; found dtype {labels.dtype}")
    if labels.ndim == 2 and labels.shape[1] == n_classes and n_classes >= 2:
        soft = labels.astype(np.float64, copy=False)
        if not np.isfinite(soft).all():
            row = _first_bad_row(~np.isfinite(soft))
            raise InputError(source, f"soft labels contain NaN or inf at row {row + row_offset}")
        if (soft < 0).any():
            row = _first_bad_row(soft < 0)
            raise InputError(source, f"soft labels are negative at row {row + row_offset}")
        sums = soft.sum(axis=1)
        off = np.abs(sums - 1) > 1e-4
        if off.any():
            row = int(np.argmax(off))
            raise InputError(
                source,
                f"soft-label rows must sum to 1; row {row + row_offset} sums to {sums[row]:.6g}",
            )
        return soft
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels.reshape(-1)
    if labels.ndim != 1:
        raise InputError(
            source,
            f"labels must have shape (N,) or (N, {n_classes}) for soft labels; "
            f"found shape {labels.shape}",
        )
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all():
            row = int(np.argmax(~np.isfinite(labels)))
            raise InputError(source, f"labels contain {labels[row]} at row {row + row_offset}")
        frac = labels != np.round(labels)
        if frac.any():
            row = int(np.argmax(frac))
            raise InputError(
                source, f"labels must be integers; row {row + row_offset} has {labels[row]:g}"
            )
    bad = (labels < 0) | (labels >= n_classes)
    if bad.any():
        row = int(np.argmax(bad))
        value = labels[row]
        shown = f"{value:g}" if labels.dtype.kind == "f" else str(value)
        raise InputError(
            source,
            f"label {shown} at row {row + row_offset} is outside [0, {n_classes}) "
            f"for {n_classes} classes",
        )
    return labels.astype(np.int64, copy=False)


@dataclass(frozen=True, eq=False)
class Predictions:
    """Validated predictions held in memory; build them with :meth:`from_arrays`.

    >>> p = Predictions.from_arrays([[2.0, 0.0], [0.0, 1.0]], [0, 0])
    >>> p.n_rows, p.n_classes, p.kind
    (2, 2, 'logits')
    """

    scores: NDArray[np.floating]
    labels: NDArray[Any]
    kind: ScoreKind = "logits"
    source: str = "<array>"
    binary: bool = False
    score_key: str | None = field(default=None, compare=False)
    label_key: str | None = field(default=None, compare=False)

    @classmethod
    def from_arrays(
        cls,
        scores: ArrayLike,
        labels: ArrayLike,
        *,
        kind: ScoreKind = "logits",
        source: str = "<array>",
        score_key: str | None = None,
        label_key: str | None = None,
        sum_atol: float | None = None,
    ) -> Predictions:
        """Validate ``scores`` and ``labels`` and build :class:`Predictions`.

        ``sum_atol`` overrides the tolerance on probability row sums (for inputs whose original
        dtype, such as bfloat16, is coarser than the array's).
        """
        if kind not in SCORE_KINDS:
            raise InputError(source, f"kind must be 'logits' or 'probs'; got {kind!r}")
        s = np.asarray(scores)
        y = np.asarray(labels)
        if s.dtype == object or y.dtype == object:
            raise InputError(source, "object arrays are not supported (they would need pickle)")
        if s.ndim == 0 or s.ndim > 2:
            raise InputError(
                source, f"scores must have shape (N, K) or (N,); found shape {s.shape}"
            )
        if s.shape[0] == 0:
            raise InputError(source, "no rows: the predictions are empty")
        binary = s.ndim == 1 or s.shape[1] == 1
        if not binary and s.shape[1] < 2:
            raise InputError(source, f"need at least 2 classes; found shape {s.shape}")
        flat = s.reshape(len(s), -1)
        step = default_chunk_rows(flat.shape[1])
        for start in range(0, len(flat), step):  # in chunks: no N x K temporary masks
            validate_scores(
                flat[start : start + step], kind, source, row_offset=start, sum_atol=sum_atol
            )
        if s.dtype.kind != "f":
            s = s.astype(np.float64)
        if binary:
            s = expand_binary(s, kind)
        if y.ndim == 0 or len(y) != len(s):
            raise InputError(source, f"{len(s)} rows of scores but labels have shape {y.shape}")
        y = validate_labels(y, s.shape[1], source)
        return cls(s, y, kind, source, binary, score_key, label_key)

    @property
    def n_rows(self) -> int:
        return int(self.scores.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.scores.shape[1])

    @property
    def soft_labels(self) -> bool:
        return self.labels.ndim == 2

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]:
        """Consecutive ``(scores, labels)`` slices of at most ``chunk_rows`` rows (views)."""
        step = chunk_rows or default_chunk_rows(self.n_classes)
        for start in range(0, self.n_rows, step):
            yield self.scores[start : start + step], self.labels[start : start + step]


def validate_confidence(
    confidence: NDArray[Any], correct: NDArray[Any], source: str, *, row_offset: int = 0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validate confidence-only rows; returns float64 ``(confidence, correct)``."""
    for name, arr in (("confidence", confidence), ("correct", correct)):
        if arr.dtype != np.bool_ and not _is_real_dtype(arr.dtype):
            raise InputError(source, f"{name} must be numbers; found dtype {arr.dtype}")
        if arr.ndim != 1:
            raise InputError(source, f"{name} must have shape (N,); found shape {arr.shape}")
    if confidence.shape != correct.shape:
        raise InputError(
            source, f"{confidence.shape[0]} confidences but {correct.shape[0]} correctness values"
        )
    conf = confidence.astype(np.float64)
    hit = correct.astype(np.float64)
    for name, arr in (("confidence", conf), ("correct", hit)):
        bad = ~np.isfinite(arr) | (arr < 0) | (arr > 1)
        if bad.any():
            row = int(np.argmax(bad))
            raise InputError(
                source, f"{name} must lie in [0, 1]; row {row + row_offset} has {arr[row]:g}"
            )
    return conf, hit


@dataclass(frozen=True, eq=False)
class ConfidenceRows:
    """Predictions reduced to a top-label confidence and a correctness flag per row.

    The form token-level evaluations of language models are often saved in: no ``K``, no
    logits. ECE, MCE, RMSCE, accuracy, diagrams and the gate work on it; NLL, Brier and
    temperature scaling need the full distribution and are not available (reported as null).
    ``correct`` may be fractional (the share of annotators who agree, say).

    >>> rows = ConfidenceRows.from_arrays([0.9, 0.6], [1, 0])
    >>> rows.n_rows, rows.kind
    (2, 'confidence')
    """

    confidence: NDArray[np.float64]
    correct: NDArray[np.float64]
    source: str = "<array>"

    kind: ClassVar[SourceKind] = CONFIDENCE
    n_classes: ClassVar[int] = 0
    binary: ClassVar[bool] = False
    soft_labels: ClassVar[bool] = False

    @classmethod
    def from_arrays(
        cls, confidence: ArrayLike, correct: ArrayLike, *, source: str = "<array>"
    ) -> ConfidenceRows:
        conf, hit = validate_confidence(np.asarray(confidence), np.asarray(correct), source)
        if conf.size == 0:
            raise InputError(source, "no rows: the predictions are empty")
        return cls(conf, hit, source)

    @property
    def n_rows(self) -> int:
        return int(self.confidence.size)

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]:
        step = chunk_rows or CHUNK_ELEMENTS
        for start in range(0, self.n_rows, step):
            yield self.confidence[start : start + step], self.correct[start : start + step]
