"""Distillation from saved teacher outputs: Hinton's soft targets and what a teacher passes on.

Soft targets (Hinton, Vinyals & Dean 2015) are the teacher's probabilities at temperature
``T``::

    p(T) = softmax(z / T)                 (logits z)
    p(T) = softmax(log p / T)             (probabilities p; an exact 0 stays 0: 0^(1/T) = 0)

computed with the float64 log-sum-exp of :mod:`calibkit.metrics.softmax` (each row centred on
its maximum, so ``|z| = 1e4`` cannot overflow). :class:`SoftTargetScaler` is that map in the
shape of a probability-output calibrator, so :func:`calibkit.report.rewrite.write_calibrated`
(what ``calibkit apply`` uses) writes them, and every calibkit command reads the file as the
teacher's predictions at ``T``.

What a teacher at ``T`` passes on (Müller, Kornblith & Hinton 2019, §3), per example ``i`` with
soft targets ``p_i(T)`` over ``K`` classes and label ``y_i`` (one-hot, or a soft-label row):

* entropy ``H_i(T) = -sum_k p_ik log p_ik`` in nats, in ``[0, log K]``;
* top-1 mass ``max_k p_ik(T)``, in ``[1/K, 1]``;
* wrong-class mass ``w_i(T) = sum_k (1 - y_ik) p_ik(T)`` (hard labels: ``1 - p_i,y_i``).

:func:`teacher_curves` reports their means over the ``N`` examples and the paper's equivalent
smoothing ``gamma(T) = mean_i w_i(T) * K / (K - 1)``: a label-smoothed target at ``alpha``
(``(1 - alpha) one_hot + alpha / K``) has ``w = alpha (K - 1) / K``, so its ``gamma`` is
``alpha``, which makes ``gamma`` comparable to an LS ``alpha``. ``gamma`` lies in
``[0, K / (K - 1)]``: above 1 when the teacher puts more than the uniform share ``1 - 1/K`` on
wrong classes (misclassified examples). As ``T -> inf`` every ``p_i -> 1/K`` and ``gamma -> 1``.
``H`` rises and the top-1 mass falls with ``T``; ``gamma`` rises with ``T`` on every correctly
classified example (its label is the top class), but not necessarily on a misclassified one.

One read of the data serves every temperature (as the temperature sweep does,
:mod:`calibkit.calibrators.sweep`): each chunk is centred once and, for each ``T``, one
multiply, one ``exp`` and three row sums give ``s = sum_k e_k``, ``sum_k e_k a_k`` and the
wrong-class sum (``a = zc / T``, ``e = exp(a)``): ``H = log s - sum_k e_k a_k / s``, top-1
mass ``1 / s``. Each row's numbers depend on that row alone, and the sums over rows are exact
(Python integers in units of ``2^-1080``, :func:`exact_sums`), each mean rounded to float64
once, so every result is the same, bit for bit, whatever the chunk size.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from calibkit.calibrators.base import require_scores
from calibkit.calibrators.temperature import TemperatureScaler
from calibkit.engine.passes import Chunk, run_pass
from calibkit.errors import UsageError
from calibkit.metrics.examples import log_probs
from calibkit.metrics.softmax import softmax
from calibkit.sources.predictions import PredictionSource, ScoreKind, refuse_ragged

__all__ = [
    "SoftTargetScaler",
    "SoftTargetSummary",
    "TeacherCurve",
    "check_temperature",
    "exact_mean",
    "exact_sums",
    "soft_target_summary",
    "soft_targets",
    "teacher_curves",
]


def check_temperature(t: Any, what: str = "temperature") -> float:
    """``t`` as a float, refused unless it is a finite number > 0 whose inverse is finite."""
    if isinstance(t, bool) or not isinstance(t, (int, float, np.floating, np.integer)):
        raise UsageError(f"{what} must be a finite number > 0; got {t!r}")
    value = float(t)
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"{what} must be a finite number > 0; got {t!r}")
    if not math.isfinite(1.0 / value):  # below ~5.6e-309: z / T would be inf or nan
        raise UsageError(
            f"{what} must be at least {1 / sys.float_info.max:.3g} (1/T overflows float64 "
            f"below it); got {t!r}"
        )
    return value


def _logits(scores: NDArray[Any], kind: str) -> NDArray[np.float64]:
    """Float64 logits of a chunk: the scores, or ``log p`` with exact zeros as ``-inf`` (their
    soft target is exactly 0, whatever ``T``)."""
    if kind == "logits":
        return np.asarray(scores, dtype=np.float64)
    z = log_probs(scores)
    z[scores == 0] = -np.inf  # every valid row has a positive entry, so its max stays finite
    return z


def soft_targets(
    scores: ArrayLike, temperature: float, kind: str = "logits"
) -> NDArray[np.float64]:
    """Hinton's soft targets of ``(N, K)`` scores at ``temperature``, float64, rows summing to 1.

    >>> soft_targets([[0.0, np.log(3.0)]], 1.0).round(12).tolist()
    [[0.25, 0.75]]
    >>> soft_targets([[2.0, 0.0]], 2.0).round(6).tolist()
    [[0.731059, 0.268941]]
    >>> soft_targets([[0.8, 0.2, 0.0]], 2.0, kind="probs").round(4).tolist()
    [[0.6667, 0.3333, 0.0]]
    """
    t = check_temperature(temperature)
    z = _logits(np.asarray(scores), kind)
    if z.ndim != 2:
        raise UsageError(f"soft targets need (N, K) scores; got shape {z.shape}")
    out: NDArray[np.float64] = softmax(z / t, overwrite=True)  # z / t: the caller's array stays
    return out


@dataclass(frozen=True)
class SoftTargetScaler(TemperatureScaler):
    """The soft-target map ``softmax(z / T)`` as a probability-output calibrator, for the
    writer of calibrated predictions (:func:`calibkit.report.rewrite.write_calibrated`): it is
    given, never fitted, and never saved."""

    method: ClassVar[str] = "soft-targets"
    title: ClassVar[str] = "soft targets"
    calibrated_as: ClassVar[str] = "soft targets"
    output_kind: ClassVar[ScoreKind] = "probs"

    def transform(self, scores: ArrayLike, kind: str = "logits") -> NDArray[np.float64]:
        """:func:`soft_targets` of ``(N, K)`` scores of ``kind``."""
        return soft_targets(scores, self.temperature, kind)

    def calibrated_scores(self, scores: NDArray[Any], kind: str) -> NDArray[np.float64]:
        return self.transform(scores, kind)


def _row_values(
    z: NDArray[np.float64], labels: NDArray[Any], betas: Sequence[float]
) -> Iterator[NDArray[np.float64]]:
    """For each ``beta = 1 / T`` in turn, the ``(3, n)`` per-row values of a chunk of float64
    logits: entropy (nats), top-1 mass and wrong-class mass of ``softmax(beta z)``. Each row's
    values depend on that row alone (row-wise operations only). Memory: a few ``(n, K)`` work
    arrays, whatever the number of temperatures."""
    n, k = z.shape
    zc = z - z.max(axis=1, keepdims=True)  # each row's maximum is 0: exp cannot overflow
    soft = labels.ndim == 2
    rows = np.arange(n)
    others = 1.0 - labels if soft else None  # (1 - y_k): class k's weight in the wrong mass
    log_k = math.log(k)
    a = np.empty_like(zc)
    e = np.empty_like(zc)
    out = np.empty((3, n))
    for beta in betas:
        np.multiply(zc, beta, out=a)
        np.exp(a, out=e)
        s = e.sum(axis=1)  # >= 1: the maximum contributes exp(0)
        with np.errstate(invalid="ignore"):  # 0 * -inf, set to 0 below
            ea = e * a
        ea[e == 0] = 0.0  # p log p -> 0 (also where a = -inf: a stored probability of 0)
        entropy = np.log(s) - ea.sum(axis=1) / s
        np.clip(entropy, 0.0, log_k, out=out[0])  # the true value lies there (rounding)
        np.divide(1.0, s, out=out[1])
        if others is not None:
            wrong = np.einsum("ij,ij->i", e, others)
        else:
            e[rows, labels] = 0.0  # summed directly, not as 1 - p_y (no cancellation)
            wrong = e.sum(axis=1)
        np.divide(wrong, s, out=out[2])
        yield out


#: Bits per limb of the exact sums (:func:`exact_sums`), and the limbs that reach below the
#: smallest float64 (2^-1074): 36 x 30 = 1080 bits after the binary point.
_LIMB_BITS = 30
_LIMBS = 36
_FRACTION_BITS = _LIMB_BITS * _LIMBS


#: Rows whose limbs one int64 sum adds: below 2^24 rows of values below 2^8 (limbs below
#: 2^38), no sum reaches 2^63.
_SUM_ROWS = 1 << 24


def exact_sums(values: NDArray[np.float64]) -> list[int]:
    """The exact sums over the last axis of ``(R, n)`` non-negative float64 values below
    ``2**8`` (entropies below ``log K``, masses below 1), as Python integers in units of
    ``2^-1080`` (every float64 is a whole number of those). Each value is cut into 30-bit limbs
    by exact float64 operations (scale by ``2^30``, take the whole part, keep the rest), the
    limbs are summed as int64 over at most :data:`_SUM_ROWS` rows at a time (exact) and the
    limb sums combined as Python integers; the loop stops once no value has bits left. Exact
    sums add up exactly, so the total over a file does not depend on how it was cut into
    chunks.

    >>> exact_sums(np.array([[0.5, 0.25, 2.0**-1074]])) == [(3 << 1078) + (1 << 6)]
    True
    """
    scale = float(2**_LIMB_BITS)
    totals = [0] * values.shape[0]
    for start in range(0, values.shape[-1], _SUM_ROWS):
        x = values[..., start : start + _SUM_ROWS] * scale
        for i in range(_LIMBS):
            whole = np.floor(x)
            shift = _FRACTION_BITS - _LIMB_BITS * (i + 1)
            for r, part in enumerate(whole.astype(np.int64).sum(axis=-1).tolist()):
                totals[r] += part << shift
            x -= whole
            if not x.any():
                break
            x *= scale
    return totals


def exact_mean(total: int, n: int) -> float:
    """``total * 2^-1080 / n`` (an :func:`exact_sums` total over ``n`` rows), rounded once."""
    return total / (n << _FRACTION_BITS) if n else math.nan


def _chunk_sums(
    z: NDArray[np.float64], labels: NDArray[Any], betas: Sequence[float]
) -> list[list[int]]:
    """``[3][S]``: the exact sums (:func:`exact_sums`) of the three per-row values at each
    temperature."""
    per_t = [exact_sums(values) for values in _row_values(z, labels, betas)]
    if z.shape[0] == 0:
        per_t = [[0, 0, 0] for _ in betas]
    return [[per_t[j][i] for j in range(len(betas))] for i in range(3)]


def _means(
    source: PredictionSource,
    temperatures: NDArray[np.float64],
    chunk_rows: int | None,
    description: str,
    extra: Any = None,
) -> tuple[int, NDArray[np.float64]]:
    """``(n, (3, S) means)`` of the per-row values of :func:`_row_values` over ``source``; one
    read. The sums are exact (:func:`exact_sums`) and each mean is rounded once, so they are the
    same bit for bit for every chunk size. ``extra(part, z)``, when given, is called on every
    chunk too (in the map) and its result handed to ``extra.merge`` in chunk order."""
    betas = (1.0 / temperatures).tolist()
    kind = source.kind
    totals = [[0] * len(betas) for _ in range(3)]  # Python integers: exact, never overflow
    n = 0

    def chunk(part: Chunk) -> tuple[int, list[list[int]], Any]:
        z = _logits(part.scores, kind)
        return part.rows, _chunk_sums(z, part.labels, betas), (extra(part, z) if extra else None)

    def merge(result: tuple[int, list[list[int]], Any]) -> None:
        nonlocal n
        n += result[0]
        for i, row in enumerate(result[1]):
            for j, value in enumerate(row):
                totals[i][j] += value
        if extra is not None:
            extra.merge(result[2])

    run_pass(source, chunk, merge, chunk_rows=chunk_rows, description=description)
    return n, np.array([[exact_mean(t, n) for t in row] for row in totals])


@dataclass(frozen=True, eq=False)
class TeacherCurve:
    """What one teacher passes on at each temperature (arrays of shape ``(S,)``; module
    docstring)."""

    name: str
    source: str
    kind: str
    n: int
    n_classes: int
    soft_labels: bool
    temperatures: NDArray[np.float64]
    entropy: NDArray[np.float64]
    top1: NDArray[np.float64]
    gamma: NDArray[np.float64]

    def rows(self) -> list[dict[str, float]]:
        """One ``{"temperature", "entropy", "top1", "gamma"}`` per temperature."""
        return [
            {"temperature": float(t), "entropy": float(h), "top1": float(m), "gamma": float(g)}
            for t, h, m, g in zip(
                self.temperatures, self.entropy, self.top1, self.gamma, strict=True
            )
        ]


def _temperatures(temperatures: Sequence[float] | NDArray[np.float64]) -> NDArray[np.float64]:
    values = np.asarray(temperatures, dtype=object).reshape(-1).tolist()
    if not values:
        raise UsageError("give at least one temperature")
    return np.array([check_temperature(t) for t in values], dtype=np.float64)


def teacher_curve(
    source: PredictionSource,
    temperatures: Sequence[float] | NDArray[np.float64],
    *,
    name: str | None = None,
    chunk_rows: int | None = None,
) -> TeacherCurve:
    """Mean entropy, mean top-1 mass and ``gamma(T)`` of ``source``'s soft targets at every
    temperature; one read of the data.

    >>> from calibkit.sources.predictions import Predictions
    >>> p = Predictions.from_arrays([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [0, 2])
    >>> c = teacher_curve(p, [1.0])
    >>> round(float(c.gamma[0]), 6)  # ((1 - e^2/(e^2+2)) + (1 - 1/(e+2))) / 2 * 3/2
    0.750804
    """
    require_scores(source, "a teacher diagnostic")
    refuse_ragged(source, "a teacher diagnostic")  # gamma scales by K / (K - 1)
    temps = _temperatures(temperatures)
    description = f"{source.source}: teacher at {temps.size} T"
    n, mean = _means(source, temps, chunk_rows, description)
    return _curve(source, name or source.source, n, temps, mean)


def _curve(
    source: PredictionSource,
    name: str,
    n: int,
    temps: NDArray[np.float64],
    mean: NDArray[np.float64],
) -> TeacherCurve:
    k = source.n_classes
    return TeacherCurve(
        name=name,
        source=source.source,
        kind=source.kind,
        n=n,
        n_classes=k,
        soft_labels=bool(source.soft_labels),
        temperatures=temps,
        entropy=mean[0],
        top1=mean[1],
        gamma=mean[2] * k / (k - 1),
    )


def teacher_curves(
    sources: dict[str, PredictionSource],
    temperatures: Sequence[float] | NDArray[np.float64],
    *,
    chunk_rows: int | None = None,
) -> list[TeacherCurve]:
    """:func:`teacher_curve` of every named teacher, in the order given."""
    return [
        teacher_curve(src, temperatures, name=name, chunk_rows=chunk_rows)
        for name, src in sources.items()
    ]


@dataclass(frozen=True, eq=False)
class SoftTargetSummary:
    """The soft targets at ``temperature`` as :func:`soft_target_summary` found them: the
    teacher's numbers at that ``T`` (:class:`TeacherCurve`, float64) and how many rows' argmax
    differs, once the targets are rounded to ``dtype``, from the teacher's argmax (that of its
    stored scores: ``argmax_changed``; each ``np.argmax``, the first maximum on ties)."""

    curve: TeacherCurve
    dtype: str
    argmax_changed: int
    examples: tuple[int, ...] = field(default=())

    @property
    def temperature(self) -> float:
        return float(self.curve.temperatures[0])


def soft_target_summary(
    source: PredictionSource,
    temperature: float,
    *,
    dtype: DTypeLike = np.float64,
    chunk_rows: int | None = None,
) -> SoftTargetSummary:
    """Mean entropy, top-1 mass and ``gamma`` of the soft targets at ``temperature``, and the
    rows whose argmax the rounding to ``dtype`` changes (the first few in ``examples``); one
    read of the data.

    >>> from calibkit.sources.predictions import Predictions
    >>> p = Predictions.from_arrays([[1.0, 1.0 + 1e-9, 0.0]], [1])
    >>> s = soft_target_summary(p, 1.0, dtype=np.float32)
    >>> s.argmax_changed, s.examples  # 1e-9 apart: one float32 number, class 0 wins the tie
    (1, (0,))
    """
    t = check_temperature(temperature)
    out_dtype = np.dtype(dtype)
    if out_dtype.kind != "f" or out_dtype.itemsize not in (4, 8):
        raise UsageError(f"soft targets can be written as float32 or float64; got {out_dtype}")
    require_scores(source, "soft targets")
    refuse_ragged(source, "soft targets")  # gamma scales by K / (K - 1)
    changed = _ArgmaxChanges(t, out_dtype)
    description = f"{source.source}: soft targets at T = {t:g}"
    n, mean = _means(source, np.array([t]), chunk_rows, description, extra=changed)
    curve = _curve(source, source.source, n, np.array([t]), mean)
    return SoftTargetSummary(curve, out_dtype.name, changed.count, tuple(changed.examples))


class _ArgmaxChanges:
    """Counts the rows whose argmax, once the soft targets are rounded to ``dtype``, differs
    from that of the stored scores (the first :data:`_EXAMPLES` rows kept)."""

    def __init__(self, temperature: float, dtype: np.dtype[Any]) -> None:
        self.temperature, self.dtype = temperature, dtype
        self.count = 0
        self.examples: list[int] = []

    def __call__(self, part: Chunk, z: NDArray[np.float64]) -> NDArray[np.int64]:
        stored = np.argmax(part.scores, axis=1)  # the teacher's own prediction
        written = np.argmax(soft_targets(z, self.temperature).astype(self.dtype), axis=1)
        return part.start + np.flatnonzero(written != stored)

    def merge(self, rows: NDArray[np.int64]) -> None:
        self.count += int(rows.size)
        self.examples.extend(int(i) for i in rows[: max(0, _EXAMPLES - len(self.examples))])


#: Rows whose argmax changed that a summary names.
_EXAMPLES = 5
