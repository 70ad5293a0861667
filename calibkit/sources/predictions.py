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
  ``[0, 1]``, rows summing to 1 within :data:`PROB_SUM_ATOL`). Unless the caller forces it or
  the key's name says ``probs``, it is decided by :func:`choose_kind`: rows that all lie in
  ``[0, 1]`` and sum to 1 are probabilities in practice (``kind_reason`` says which rule
  applied).
* Every value must fit in float64, where calibkit computes, and each row of logits must span
  less than float64's range (``max - min`` finite): softmax works with differences of logits.
* ``labels`` has shape ``(N,)`` of integers in ``[0, K)`` or, for soft labels, shape ``(N, K)``
  of non-negative rows summing to 1 (annotator distributions, distillation targets).
* Ragged ``K`` (multiple-choice questions with different numbers of choices, such as the
  samples an LLM evaluation harness writes): one padded ``(N, K_max)`` logits array whose absent
  choices hold :data:`RAGGED_PAD`, built by :meth:`Predictions.from_ragged`, with the number of
  real choices of each row in ``n_choices``. A pad's softmax probability is exactly 0 at every
  temperature calibkit fits (``exp(-1e12 / T)`` underflows to 0 for ``T <= 1e8``), so the
  top-label confidence, the accuracy, NLL, Brier (a pad adds ``(0 - 0)**2``) and temperature
  scaling are exact for the real choices. Class-wise quantities are not (class ``k`` is a
  different thing in each question): they call :func:`refuse_ragged`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibkit.errors import InputError, Param
from calibkit.sources.partitions import Part, Plan, aligned_ranges, plan_of

__all__ = [
    "CONFIDENCE",
    "PROB_SUM_ATOL",
    "RAGGED_PAD",
    "ConfidenceRows",
    "KindChoice",
    "PredictionSource",
    "Predictions",
    "ScoreKind",
    "SourceView",
    "choose_kind",
    "counts_to_distributions",
    "default_chunk_rows",
    "expand_binary",
    "input_reason",
    "not_probabilities",
    "ragged_range",
    "refuse_ragged",
    "resolve_kind",
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


#: The logit of an absent choice in a ragged input (:meth:`Predictions.from_ragged`): its
#: softmax probability is exactly 0 for every temperature up to 1e8 (``exp(-1e4)`` is 0 in
#: float64 and float32), and no real log-likelihood may come near it (each must exceed
#: :data:`RAGGED_FLOOR`). Chunks do not carry ``n_choices``: a score ``<= RAGGED_PAD / 2`` is a
#: pad.
RAGGED_PAD = -1e12
#: Every real score of a ragged input must exceed this, so that it is never taken for a pad.
RAGGED_FLOOR = -1e11


def default_chunk_rows(n_classes: int) -> int:
    """Rows per chunk so that one float64 chunk holds about :data:`CHUNK_ELEMENTS` numbers."""
    return max(1, CHUNK_ELEMENTS // max(1, n_classes))


class PredictionSource(Protocol):
    """What the metrics need from predictions: shape facts and a stream of validated chunks.

    A source whose rows have different numbers of classes (ragged K, module docstring) also
    says ``ragged`` (true); read it as ``getattr(source, "ragged", False)``: sources that do
    not say are not ragged. Views pass their base's on (:attr:`SourceView.ragged`).
    """

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

    @property
    def ragged(self) -> bool:
        """Whether the base has questions with different numbers of choices."""
        return bool(getattr(self.base, "ragged", False))

    @property
    def kind_reason(self) -> str:
        return input_reason(self.base)

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]:
        return self.base.chunks(chunk_rows)

    def partitions(self, chunk_rows: int | None, hint: int) -> Plan | None:
        """The parts of :attr:`base`, each re-wrapped by :meth:`rebase` (see
        :mod:`calibkit.sources.partitions`); ``None`` when the base cannot be split."""
        plan = plan_of(self.base, chunk_rows, hint)
        return None if plan is None else plan.rebased(self.rebase)

    def rebase(self, part: Part) -> Part:
        """This view over one part of its base. A dataclass view whose chunks depend on nothing
        but the base's rows is copied with ``base`` replaced; other views override this."""
        if not dataclasses.is_dataclass(self):
            raise TypeError(f"{type(self).__name__} does not say how to split itself")
        return Part(part.start, part.rows, dataclasses.replace(self, base=part.source))


def ragged_range(source: Any) -> tuple[int, int] | None:
    """The fewest and most real choices per row of a ragged ``source`` (or of the source a
    chain of views reads, through their ``base``); ``None`` when it is not ragged."""
    seen = 0
    while source is not None and seen < 64:
        counts = getattr(source, "n_choices", None)
        if counts is not None:
            return int(np.min(counts)), int(np.max(counts))
        source = getattr(source, "base", None)
        seen += 1
    return None


def refuse_ragged(source: Any, what: str) -> None:
    """Refuse ``what`` (a class-wise quantity, such as ``"class-wise ECE"``) on a ragged
    ``source`` with one :class:`~calibkit.errors.InputError`; nothing on other sources."""
    if not getattr(source, "ragged", False):
        return
    span = ragged_range(source)
    between = (
        ""
        if span is None
        else f"; this input has between {span[0]} and {span[1]} choices per question"
    )
    raise InputError(
        source.source,
        f"{what} needs the same classes in every row{between} (top-label metrics, temperature "
        "scaling and the gate work on it)",
    )


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


def input_reason(source: Any) -> str:
    """Why ``source``'s scores were read as its ``kind`` (``""`` when it does not say)."""
    reason = getattr(source, "kind_reason", "")
    return reason if isinstance(reason, str) else ""


def _sum_atol(dtype: np.dtype, sum_atol: float | None) -> float:
    return sum_atol or PROB_SUM_ATOL.get(str(dtype), 1e-4)


def not_probabilities(
    scores: NDArray[Any], *, sum_atol: float | None = None, row_offset: int = 0
) -> str | None:
    """``None`` when every row of the 2-D ``scores`` lies in ``[0, 1]`` and sums to 1 (within
    :data:`PROB_SUM_ATOL` of the dtype, or ``sum_atol``); else why not, naming the first row.

    With one column only the range is checked (a lone probability ``p(y = 1)`` has no sum).

    >>> not_probabilities(np.array([[0.2, 0.8], [0.5, 0.5]])) is None
    True
    >>> not_probabilities(np.array([[0.2, 0.8], [1.5, -0.5]]))
    'row 1 has 1.5, outside [0, 1]'
    >>> not_probabilities(np.array([[0.2, 0.3]]))
    'row 0 sums to 0.5'
    """
    if not _is_real_dtype(scores.dtype):
        return f"dtype {scores.dtype} is not real numbers"
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)
    found = _first_non_probability(scores, sum_atol)
    if found is None:
        return None
    what, row, value = found
    if what == "range":
        return f"row {row + row_offset} has {value:g}, outside [0, 1]"
    return f"row {row + row_offset} sums to {value:.6g}"


def _first_non_probability(
    scores: NDArray[Any], sum_atol: float | None
) -> tuple[Literal["range", "sum"], int, Any] | None:
    """The first row of the 2-D float ``scores`` that is not a probability row: ``("range",
    row, the first value outside [0, 1])`` (NaN is outside too) or ``("sum", row, its sum)``;
    ``None`` when every row is one. The one test behind :func:`not_probabilities` (detection)
    and :func:`validate_scores` (validation)."""
    with np.errstate(invalid="ignore"):
        out = ~((scores >= 0) & (scores <= 1))  # NaN is outside too
    if out.any():
        row = _first_bad_row(out)
        return "range", row, scores[row][out[row]][0]
    if scores.shape[1] >= 2:
        sums = scores.sum(axis=1, dtype=np.float64)
        off = np.abs(sums - 1) > _sum_atol(scores.dtype, sum_atol)
        if off.any():
            row = int(np.argmax(off))
            return "sum", row, sums[row]
    return None


#: The reason given when detection reads scores as probabilities.
DETECTED_PROBS = "detected: every row in [0, 1] sums to 1"


@dataclass(frozen=True)
class KindChoice:
    """What :func:`choose_kind` decided: the ``kind``, the ``reason`` (shown in every output,
    e.g. ``"detected: every row in [0, 1] sums to 1"``) and a ``warning`` for the user, if any."""

    kind: ScoreKind
    reason: str
    warning: str | None = None


def choose_kind(
    scores: NDArray[Any],
    *,
    forced: ScoreKind | None = None,
    named: ScoreKind | None = None,
    key: str | None = None,
    forced_by: str = "kind",
    sum_atol: float | None = None,
) -> KindChoice:
    """Decide whether ``scores`` (``(N, K)``, or ``(N,)``/``(N, 1)`` for a binary model) are
    logits or probabilities. Pure: reads the values, never raises, warns or changes them.

    Rules, in order:

    1. ``forced`` (``kind=`` in Python, ``--input`` on the command line) wins: ``"forced: ..."``.
    2. A key whose name says probabilities (``named="probs"``) holds probabilities:
       ``"named: key 'probs'"`` (values that are not probabilities are then an error, raised by
       the validation).
    3. Otherwise (a key named like logits, or plain arrays): if every row lies in ``[0, 1]`` and
       sums to 1 within :data:`PROB_SUM_ATOL` of the dtype, the scores are probabilities in
       practice (``"detected: ..."``); a key named like logits then gets a warning. With two
       classes logits such as ``[0.3, 0.7]`` pass this test too; the reason says so, and forcing
       ``logits`` reads them as logits.
    4. Else logits: ``"named: key 'logits'"``, or ``"detected: not probabilities (...)"``.

    One score per row (a binary model) cannot be told apart by its values: ``p(y = 1)`` has no
    row sum, and a logit may lie in ``[0, 1]``. Unless named or forced ``probs`` it is read as a
    logit; when every value lies in ``[0, 1]`` a warning suggests forcing ``probs``.

    ``forced_by`` names the way a kind is forced: ``"--input"`` gives ``"forced: --input probs"``,
    ``"kind"`` gives ``"forced: kind='probs'"``.

    >>> choose_kind(np.array([[0.2, 0.7, 0.1]])).reason
    'detected: every row in [0, 1] sums to 1'
    >>> print(choose_kind(np.array([[0.2, 0.8]]), named="logits", key="logits").reason)
    detected: every row in [0, 1] sums to 1 (ambiguous with 2 classes: logits such as
    [0.3, 0.7] pass too; force logits)
    >>> print(choose_kind(np.array([[1.0, 0.0]]), named="logits", key="z", forced_by="--input")
    ...       .warning)
    key 'z' holds probabilities (every row in [0, 1] sums to 1): read as probabilities;
    --input logits reads them as logits
    >>> c = choose_kind(np.array([[2.0, -1.0, 0.5]]))
    >>> c.kind, c.reason
    ('logits', 'detected: not probabilities (row 0 has 2, outside [0, 1])')
    """
    if forced is not None:
        how = f"{forced_by} {forced}" if forced_by.startswith("-") else f"{forced_by}={forced!r}"
        return KindChoice(forced, f"forced: {how}")
    where = None if key is None else f"columns {key!r}" if key.endswith("_*") else f"key {key!r}"
    if named == "probs":
        return KindChoice("probs", f"named: {where}" if where else "named: probabilities")
    flat = scores.reshape(len(scores), -1) if scores.ndim != 2 else scores
    step = default_chunk_rows(max(1, flat.shape[1]))
    why = None if len(flat) else "no rows"
    for start in range(0, len(flat), step):  # in chunks, stopping at the first row that fails
        why = not_probabilities(flat[start : start + step], sum_atol=sum_atol, row_offset=start)
        if why is not None:
            break
    named_logits = f"named: {where}" if where and named == "logits" else None
    if flat.shape[1] < 2:  # one score per row: probabilities undetectable
        reason = named_logits or "detected: one score per row is read as a logit"
        warning = None
        if why is None:
            what = where or "the scores"
            hint = "--input probs" if forced_by.startswith("-") else "kind='probs'"
            warning = (
                f"{what} holds one score per row, all in [0, 1]: read as logits of a binary "
                f"model; if they are probabilities p(y = 1), give {hint}"
            )
        return KindChoice("logits", reason, warning)
    if why is None:
        reason = DETECTED_PROBS
        if flat.shape[1] == 2:
            reason += (
                " (ambiguous with 2 classes: logits such as [0.3, 0.7] pass too; force logits)"
            )
        warning = None
        if named == "logits":
            hint = "--input logits" if forced_by.startswith("-") else "kind='logits'"
            warning = (
                f"{where or 'the logits'} holds probabilities (every row in [0, 1] sums to 1): "
                f"read as probabilities; {hint} reads them as logits"
            )
        return KindChoice("probs", reason, warning)
    return KindChoice("logits", named_logits or f"detected: not probabilities ({why})")


def resolve_kind(
    scores: NDArray[Any],
    source: str,
    *,
    forced: ScoreKind | None = None,
    named: ScoreKind | None = None,
    key: str | None = None,
    forced_by: str = "kind",
    sum_atol: float | None = None,
) -> KindChoice:
    """:func:`choose_kind`, and its warning (if any) issued as a ``UserWarning`` naming
    ``source``; what every reader and :meth:`Predictions.from_arrays` call."""
    choice = choose_kind(
        scores, forced=forced, named=named, key=key, forced_by=forced_by, sum_atol=sum_atol
    )
    if choice.warning:
        warnings.warn(f"{source}: {choice.warning}", UserWarning, stacklevel=3)
    return choice


_FLOAT64_MAX = float(np.finfo(np.float64).max)


def validate_scores(
    scores: NDArray[Any],
    kind: ScoreKind,
    source: str,
    *,
    row_offset: int = 0,
    sum_atol: float | None = None,
    reason: str = "",
) -> None:
    """Raise :class:`InputError` unless ``scores`` (already 2-D) are finite valid ``kind``.

    ``reason`` is why the scores are read as ``kind`` (:class:`KindChoice`); when probabilities
    were detected on the first batch of a streamed file, a later row that is not a probability
    is reported with that explanation.
    """
    name = "logits" if kind == "logits" else "probabilities"
    if not _is_real_dtype(scores.dtype):
        raise InputError(source, f"{name} must be real numbers; found dtype {scores.dtype}")
    if scores.dtype.kind != "f":
        if kind == "logits":
            return  # integers are finite logits (int64 differences fit in float64)
        scores = scores.astype(np.float64)  # integer probabilities still need the range checks
    if kind == "logits" and scores.size:
        # the common case in two reductions and no mask: NaN propagates through min and max, and
        # a finite float64 range means every value is finite, fits float64 and no row's spread
        # overflows; only a chunk that fails this takes the checks below, which say where
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.float64(scores.max()) - np.float64(scores.min())):
                return
    finite = np.isfinite(scores)
    if not finite.all():
        bad = ~finite
        row = _first_bad_row(bad)
        value = scores[row][bad[row]][0]
        raise InputError(source, f"{name} contain {value} at row {row + row_offset}")
    if scores.dtype.itemsize > 8:  # long double: refuse what float64 cannot hold
        huge = np.abs(scores) > _FLOAT64_MAX
        if huge.any():
            row = _first_bad_row(huge)
            value = np.format_float_scientific(scores[row][huge[row]][0], precision=6, trim="-")
            raise InputError(
                source,
                f"{name} hold {value} at row {row + row_offset}, beyond float64's range "
                "(calibkit computes in float64)",
            )
    if kind == "logits":
        if scores.dtype.itemsize >= 8 and scores.size:
            _check_logit_spread(scores, source, row_offset)
        return
    hint = " (use " + Param("kind", "logits") + " if these are logits)"
    if reason.startswith("detected"):
        hint = (
            " (the first rows were read as probabilities, since every one of them lies in "
            "[0, 1] and sums to 1, and later rows must agree; use "
            + Param("kind", "logits")
            + " if these are logits)"
        )
    found = _first_non_probability(scores, sum_atol)
    if found is None:
        return
    what, row, value = found
    if what == "range":
        raise InputError(
            source,
            f"probabilities must lie in [0, 1]; row {row + row_offset} has {value:g}" + hint,
        )
    raise InputError(
        source,
        f"probability rows must sum to 1; row {row + row_offset} sums to {value:.6g}" + hint,
    )


def _check_logit_spread(scores: NDArray[Any], source: str, row_offset: int) -> None:
    """Refuse rows whose ``max - min`` overflows float64 (e.g. ``[1e308, -1e308]``).

    Softmax, NLL and temperature scaling all work with differences of logits; such a difference
    is infinite in float64 and no number calibkit reports would be meaningful. Cheap: the
    per-row check runs only when the chunk's own range overflows.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.float64(scores.max()) - np.float64(scores.min())):
            return
        spread = scores.max(axis=1).astype(np.float64) - scores.min(axis=1).astype(np.float64)
    bad = ~np.isfinite(spread)
    if bad.any():
        row = int(np.argmax(bad))
        hi, lo = scores[row].max(), scores[row].min()
        raise InputError(
            source,
            f"logits at row {row + row_offset} span {lo:.6g} .. {hi:.6g}, a difference beyond "
            "float64's range; softmax needs the differences of logits (rescale them)",
        )


def counts_to_distributions(
    counts: NDArray[Any], n_classes: int, source: str, *, row_offset: int = 0
) -> NDArray[np.float64]:
    """``(n, K)`` non-negative finite counts (votes) as float64 rows that sum to 1: each row
    divided by its sum. Labels of another shape, a non-finite or negative count, or a row with
    no votes are an :class:`~calibkit.errors.InputError` naming the row.

    >>> counts_to_distributions(np.array([[3, 1], [0, 2]]), 2, "votes.npz").tolist()
    [[0.75, 0.25], [0.0, 1.0]]
    """
    if counts.dtype == np.bool_:
        counts = counts.astype(np.int64)
    if not _is_real_dtype(counts.dtype):
        raise InputError(source, f"label counts must be numbers; found dtype {counts.dtype}")
    if counts.ndim != 2 or counts.shape[1] != n_classes or n_classes < 2:
        raise InputError(
            source,
            Param("labels_from_counts", True)
            + f" needs labels of shape (N, {n_classes}) (a count per class and row); "
            f"found shape {counts.shape}",
        )
    c = counts.astype(np.float64)  # a copy: the division below must not touch the caller's
    finite = np.isfinite(c)
    if not finite.all():
        row = _first_bad_row(~finite)
        raise InputError(source, f"label counts contain NaN or inf at row {row + row_offset}")
    if (c < 0).any():
        row = _first_bad_row(c < 0)
        raise InputError(source, f"label counts are negative at row {row + row_offset}")
    with np.errstate(over="ignore"):
        sums = c.sum(axis=1)
    if not np.isfinite(sums).all():
        row = int(np.argmax(~np.isfinite(sums)))
        raise InputError(source, f"label counts of row {row + row_offset} overflow float64")
    empty = sums == 0
    if empty.any():
        row = int(np.argmax(empty))
        raise InputError(source, f"row {row + row_offset} has no votes (its label counts sum to 0)")
    c /= sums[:, None]
    return c


def validate_labels(
    labels: NDArray[Any],
    n_classes: int,
    source: str,
    *,
    row_offset: int = 0,
    from_counts: bool = False,
) -> NDArray[Any]:
    """Validate labels and return them as int64 ``(n,)`` or float64 ``(n, K)`` soft labels.

    ``from_counts`` (``--labels-from-counts``): the labels are ``(n, K)`` non-negative finite
    counts (annotator votes, integers or reals), each row divided by its sum in float64; a row
    with no votes, a negative or non-finite count, or labels of shape ``(n,)`` are refused.
    Without it, ``(n, K)`` rows must already sum to 1; whole-number rows that do not are
    refused with a hint at ``from_counts``.
    """
    if labels.dtype == np.bool_:
        labels = labels.astype(np.int64)
    if not _is_real_dtype(labels.dtype):
        raise InputError(source, f"labels must be numbers; found dtype {labels.dtype}")
    if from_counts:
        return counts_to_distributions(labels, n_classes, source, row_offset=row_offset)
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
            problem = (
                f"soft-label rows must sum to 1; row {row + row_offset} sums to {sums[row]:.6g}"
            )
            if labels.dtype.kind in "iu" or bool((soft == np.round(soft)).all()):
                raise InputError(
                    source,
                    problem
                    + " (whole numbers: if they are vote counts, give "
                    + Param("labels_from_counts", True)
                    + ")",
                )
            raise InputError(source, problem)
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
    >>> p.kind_reason
    'detected: not probabilities (row 0 has 2, outside [0, 1])'
    """

    scores: NDArray[np.floating]
    labels: NDArray[Any]
    kind: ScoreKind = "logits"
    source: str = "<array>"
    binary: bool = False
    score_key: str | None = field(default=None, compare=False)
    label_key: str | None = field(default=None, compare=False)
    kind_reason: str = field(default="", compare=False)
    #: the file's other columns, for ``--group-by`` (:mod:`calibkit.sources.groups`)
    columns: Any = field(default=None, compare=False, repr=False)
    #: The number of real choices of each row of a ragged input (:meth:`from_ragged`); ``None``
    #: when every row has all ``n_classes`` classes.
    n_choices: NDArray[np.int64] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_ragged(
        cls,
        choices: Sequence[ArrayLike],
        labels: ArrayLike,
        *,
        source: str = "<array>",
        columns: Any = None,
        reason: str = "named: per-choice log-likelihoods",
        row_names: Sequence[str] | None = None,
    ) -> Predictions:
        """Predictions from one 1-D array of logits (log-likelihoods) per row, rows of any
        lengths ``K_i >= 2``, padded to ``(N, K_max)`` with :data:`RAGGED_PAD` (module
        docstring). ``labels`` are indices in ``[0, K_i)``. Each value must be finite and above
        :data:`RAGGED_FLOOR`. When every row has the same length the result is not ragged.
        ``row_names`` name the rows in messages (``"line 7"``; default ``"row i"``).
        ``columns``: the other columns of the rows (for ``--group-by``).

        >>> p = Predictions.from_ragged([[-1.0, -2.0], [-0.5, -3.0, -1.0]], [0, 2])
        >>> p.n_classes, p.ragged, p.n_choices.tolist()
        (3, True, [2, 3])
        >>> bool(p.scores[0, 2] == RAGGED_PAD)
        True
        """
        n = len(choices)
        if n == 0:
            raise InputError(source, "no rows: the predictions are empty")

        def name(i: int) -> str:
            return row_names[i] if row_names is not None else f"row {i}"

        rows: list[NDArray[np.float64]] = []
        for i, row in enumerate(choices):
            a = np.asarray(row)
            if a.dtype == object or not _is_real_dtype(a.dtype) or a.ndim != 1:
                raise InputError(source, f"{name(i)}: the choices' scores must be 1-D numbers")
            if a.size < 2:
                raise InputError(
                    source,
                    f"{name(i)} has {a.size} choice{'' if a.size == 1 else 's'}; "
                    "a question needs at least 2",
                )
            a = a.astype(np.float64)
            if not np.isfinite(a).all():
                bad = a[~np.isfinite(a)][0]
                raise InputError(source, f"{name(i)} has a log-likelihood of {bad}")
            if (a <= RAGGED_FLOOR).any():
                bad = a[a <= RAGGED_FLOOR][0]
                raise InputError(
                    source,
                    f"{name(i)} has a log-likelihood of {bad:g}, at or below {RAGGED_FLOOR:g} "
                    "(where absent choices are padded)",
                )
            rows.append(a)
        counts = np.array([r.size for r in rows], dtype=np.int64)
        k = int(counts.max())
        scores = np.full((n, k), RAGGED_PAD, dtype=np.float64)
        for i, r in enumerate(rows):
            scores[i, : r.size] = r
        y = np.asarray(labels)
        if y.dtype == object or y.ndim != 1 or len(y) != n:
            raise InputError(source, f"{n} rows of choices but labels have shape {y.shape}")
        if y.dtype == np.bool_ or not _is_real_dtype(y.dtype):
            raise InputError(source, f"labels must be integers; found dtype {y.dtype}")
        if y.dtype.kind == "f":
            whole = np.isfinite(y) & (y == np.round(y))
            if not whole.all():
                i = int(np.argmax(~whole))
                raise InputError(source, f"{name(i)}: the label {y[i]} is not an integer")
        bad = (y < 0) | (y >= counts)
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(
                source,
                f"{name(i)}: the label {int(y[i])} is outside [0, {counts[i]}) "
                f"for its {counts[i]} choices",
            )
        ragged = bool(counts.min() != counts.max())
        lo, hi = int(counts.min()), k
        extra: dict[str, Any] = {} if columns is None else {"columns": columns}
        return cls(
            scores,
            y.astype(np.int64),
            "logits",
            source,
            False,
            None,
            None,
            reason + (f" (ragged: {lo} to {hi} choices per question)" if ragged else ""),
            n_choices=counts if ragged else None,
            **extra,
        )

    @property
    def ragged(self) -> bool:
        """Whether the rows have different numbers of choices (:meth:`from_ragged`)."""
        return self.n_choices is not None

    @classmethod
    def from_arrays(
        cls,
        scores: ArrayLike,
        labels: ArrayLike,
        *,
        kind: ScoreKind | None = None,
        named: ScoreKind | None = None,
        source: str = "<array>",
        score_key: str | None = None,
        label_key: str | None = None,
        sum_atol: float | None = None,
        forced_by: str = "kind",
        labels_from_counts: bool = False,
    ) -> Predictions:
        """Validate ``scores`` and ``labels`` and build :class:`Predictions`.

        ``kind`` forces the reading (``"logits"`` or ``"probs"``); ``None`` (the default) decides
        it with :func:`choose_kind`: probabilities when every row lies in ``[0, 1]`` and sums to
        1, else logits. Readers pass ``named``, what the key's name says (``score_key`` is that
        key), and ``forced_by="--input"``. ``sum_atol`` overrides the tolerance on probability row
        sums (for inputs whose original dtype, such as bfloat16, is coarser than the array's).
        ``labels_from_counts``: the labels are ``(N, K)`` counts, turned into distributions
        (:func:`counts_to_distributions`).

        >>> Predictions.from_arrays([[0.9, 0.1], [0.2, 0.8]], [0, 1]).kind
        'probs'
        >>> Predictions.from_arrays([[0.9, 0.1], [0.2, 0.8]], [0, 1], kind="logits").kind_reason
        "forced: kind='logits'"
        """
        if kind is not None and kind not in SCORE_KINDS:
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
        choice = choose_kind(
            flat, forced=kind, named=named, key=score_key, forced_by=forced_by, sum_atol=sum_atol
        )
        step = default_chunk_rows(flat.shape[1])
        # detected probabilities were checked row by row just now (range, which NaN and inf
        # fail, and row sums): validating them again would be a second pass over the scores
        detected = choice.reason.startswith(DETECTED_PROBS)
        for start in range(0, 0 if detected else len(flat), step):  # chunks: no N x K masks
            validate_scores(
                flat[start : start + step],
                choice.kind,
                source,
                row_offset=start,
                sum_atol=sum_atol,
                reason=choice.reason,
            )
        if s.dtype.kind != "f":
            s = s.astype(np.float64)
        if binary:
            s = expand_binary(s, choice.kind)
        if y.ndim == 0 or len(y) != len(s):
            raise InputError(source, f"{len(s)} rows of scores but labels have shape {y.shape}")
        y = validate_labels(y, s.shape[1], source, from_counts=labels_from_counts)
        if choice.warning:  # only for valid input: a bad file gets its one error line alone
            warnings.warn(f"{source}: {choice.warning}", UserWarning, stacklevel=2)
        return cls(s, y, choice.kind, source, binary, score_key, label_key, choice.reason)

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

    def partitions(self, chunk_rows: int | None, hint: int) -> Plan:
        """About ``hint`` row ranges, each a whole number of chunks (see
        :mod:`calibkit.sources.partitions`); each part holds its rows (views, pickled whole)."""
        step = chunk_rows or default_chunk_rows(self.n_classes)
        return Plan(
            tuple(
                Part(
                    a,
                    b - a,
                    dataclasses.replace(
                        self,
                        scores=self.scores[a:b],
                        labels=self.labels[a:b],
                        n_choices=None if self.n_choices is None else self.n_choices[a:b],
                        columns=None,
                    ),
                )
                for a, b in aligned_ranges(self.n_rows, step, hint)
            )
        )


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
    #: the file's other columns, for ``--group-by`` (:mod:`calibkit.sources.groups`)
    columns: Any = field(default=None, compare=False, repr=False)

    kind: ClassVar[SourceKind] = CONFIDENCE
    n_classes: ClassVar[int] = 0
    binary: ClassVar[bool] = False
    soft_labels: ClassVar[bool] = False
    kind_reason: ClassVar[str] = "named: confidence and correctness only"

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

    def partitions(self, chunk_rows: int | None, hint: int) -> Plan:
        """As :meth:`Predictions.partitions`."""
        step = chunk_rows or CHUNK_ELEMENTS
        return Plan(
            tuple(
                Part(
                    a,
                    b - a,
                    dataclasses.replace(
                        self,
                        confidence=self.confidence[a:b],
                        correct=self.correct[a:b],
                        columns=None,
                    ),
                )
                for a, b in aligned_ranges(self.n_rows, step, hint)
            )
        )
