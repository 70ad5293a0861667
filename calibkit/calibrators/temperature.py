"""Temperature scaling (Guo et al. 2017), fitted exactly.

Temperature scaling divides every logit by one scalar ``T > 0``; the argmax, and so the accuracy,
never changes. ``T`` is chosen to minimise the mean NLL on held-out data. Writing ``beta = 1/T``
and ``t`` for the (one-hot or soft) label,

    NLL(beta)   = mean_i [ logsumexp_k(beta z_ik) - beta sum_k t_ik z_ik ]
    NLL'(beta)  = mean_i [ E_p[z_i] - sum_k t_ik z_ik ]          (p = softmax(beta z_i))
    NLL''(beta) = mean_i [ Var_p[z_i] ]  >= 0

so the NLL is convex in ``beta`` and one pass over the data gives value, gradient and Hessian.
:func:`fit_temperature` runs Newton's method on ``beta`` inside a shrinking bracket (falling back
to geometric bisection when a Newton step would leave it), to ``|NLL'(beta)| <= 1e-10`` or until
the bracket is as narrow as float64 allows; typically 4-8 passes.

``T`` is kept in ``[t_min, t_max]`` (default ``[1e-4, 1e4]``). When the optimum lies outside,
the fit stops at the bound and says so (``clamped``): every prediction right (the NLL keeps falling
as ``T -> 0``) or predictions no better than chance (``T -> infinity``).

Probability inputs are fitted on their logarithms (``softmax(log p) = p``): ``log p`` of the
stored value in float64, as for the NLL; an exact 0 (whose log is ``-inf``) is read as the
smallest positive number of the stored dtype (:func:`~calibkit.metrics.examples.prob_floor`),
and the fit warns with the count of such zeros. Saturated probabilities (exactly 0 or 1) carry
no information about how confident the model was, so a temperature fitted on them is biased:
save logits when you can.

The fit never reports convergence on a non-finite NLL, gradient or Hessian: such a pass (which
only float64 overflow can produce) is refused with an :class:`~calibkit.errors.InputError`.
``TemperatureFit.n`` counts the rows the passes read, never a file's metadata.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibkit import progress
from calibkit._version import __version__
from calibkit.errors import ConvergenceWarning, InputError, UsageError
from calibkit.metrics.examples import center_logits, log_probs
from calibkit.parallel import map_chunks, scratch
from calibkit.predictions import (
    Predictions,
    PredictionSource,
    ScoreKind,
    SourceView,
    input_reason,
)

__all__ = [
    "CALIBRATOR_FORMAT",
    "ScaledPredictions",
    "TemperatureFit",
    "TemperatureScaler",
    "as_logits",
    "fit_temperature",
    "nll_gradient_hessian",
]

#: Version of the calibrator JSON document written by :meth:`TemperatureScaler.to_json`.
CALIBRATOR_FORMAT = 1
DEFAULT_T_MIN = 1e-4
DEFAULT_T_MAX = 1e4
GRADIENT_TOL = 1e-10


def as_logits(
    scores: NDArray[np.floating], kind: str, *, out: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """Float64 logits of a chunk: the scores themselves, or ``log p`` for probabilities.

    ``log p`` is the log of the stored value; an exact 0 is read as the smallest positive number
    of the stored dtype (:func:`~calibkit.metrics.examples.log_probs`). Written to ``out`` when
    given (a work array of the chunk's shape), else to a new array.
    """
    if kind != "logits":
        return log_probs(scores, out=out)
    z: NDArray[np.float64] = scores.astype(np.float64) if out is None else out
    if out is not None:
        np.copyto(z, scores)
    return z


def _label_logit(zc: NDArray[np.float64], labels: NDArray[Any]) -> NDArray[np.float64]:
    out: NDArray[np.float64]
    if labels.ndim == 1:
        out = zc[np.arange(zc.shape[0]), labels]
    else:
        out = np.einsum("ij,ij->i", labels.astype(np.float64), zc)
    return out


def _chunk_terms(
    scores: NDArray[np.floating], labels: NDArray[Any], kind: str, beta: float
) -> tuple[float, float, float, float, float]:
    """Chunk sums of NLL, dNLL/dbeta, d2NLL/dbeta2 and the gradient's limits (0+ and inf).

    With ``zc = z - max_k z`` (the shift cancels in every term), ``e = exp(beta * zc)`` and
    ``s = sum_k e``: NLL = ``log s - beta zc_y``, gradient ``E_p[zc] - zc_y`` with
    ``E_p[zc] = sum_k e zc / s``, Hessian ``Var_p[zc] = sum_k e zc^2 / s - E_p[zc]^2``;
    ``g(0+) = mean_k zc - zc_y`` and ``g(inf) = -zc_y`` (``E_p[z]`` tends to the row max).
    """
    z = as_logits(scores, kind, out=scratch("logits", scores.shape))  # this thread's work arrays
    zc = center_logits(z, out=z)
    zc_y = _label_logit(zc, labels)
    mass = labels.sum(axis=1) if labels.ndim == 2 else 1.0  # soft labels: ~1, kept exact
    # float64 overflow (beta * zc -> -inf, whose exp is 0; or a sum -> inf) is silent here:
    # _pass refuses a non-finite NLL, gradient or Hessian
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.multiply(zc, beta, out=scratch("work", zc.shape))
        np.exp(e, out=e)
        s = e.sum(axis=1)
        ez = np.einsum("ij,ij->i", e, zc)
        e *= zc
        ez2 = np.einsum("ij,ij->i", e, zc)
        mean_z = ez / s
        var_z = np.maximum(ez2 / s - mean_z * mean_z, 0.0)
        nll = np.log(s) * mass - beta * zc_y
        grad = mean_z * mass - zc_y
        return (
            float(nll.sum()),
            float(grad.sum()),
            float((var_z * mass).sum()),
            float((zc.mean(axis=1) * mass - zc_y).sum()),
            float((-zc_y).sum()),
        )


def _pass(
    source: PredictionSource, beta: float, chunk_rows: int | None, device: Any = None
) -> tuple[float, float, float, float, float, int]:
    """Means of :func:`_chunk_terms` over the data, and the rows read: one (multi-threaded) pass.

    A non-finite NLL, gradient or Hessian (float64 overflow) is an :class:`InputError`.
    """
    totals = np.zeros(5)
    n = 0

    def terms(chunk: tuple[NDArray[np.floating], NDArray[Any]]) -> tuple[int, Any]:
        scores, labels = chunk
        if device is not None:
            from calibkit.backends.torch_backend import torch_temperature_terms

            return len(labels), torch_temperature_terms(scores, labels, source.kind, beta, device)
        return len(labels), _chunk_terms(scores, labels, source.kind, beta)

    workers = 1 if device is not None else None
    with progress.task(f"{source.source}: temperature fit", total=source.n_rows) as bar:
        for rows, t in map_chunks(terms, source.chunks(chunk_rows), workers=workers):
            totals += t  # in chunk order: independent of the thread count
            n += rows
            bar.advance(rows)
    if n == 0:
        raise InputError(source.source, "no rows: the predictions are empty")
    f, g, h, g0, ginf = (totals / n).tolist()
    if not (math.isfinite(f) and math.isfinite(g) and math.isfinite(h)):
        raise InputError(
            source.source,
            f"the NLL or its derivatives are not finite at T = {1.0 / beta:.6g} (float64 "
            "overflow: label logits too far below their row's maximum); temperature scaling "
            "cannot be fitted on these values",
        )
    return f, g, h, g0, ginf, n


def nll_gradient_hessian(
    source: PredictionSource, beta: float, *, chunk_rows: int | None = None, device: Any = None
) -> tuple[float, float, float]:
    """Mean NLL of ``softmax(beta * z)`` and its first two derivatives in ``beta``; one pass.

    >>> p = Predictions.from_arrays([[0.0, 1.0]], [1], kind="logits")
    >>> f, g, h = nll_gradient_hessian(p, 1.0)
    >>> round(f, 6), round(g, 6), round(h, 6)  # log(1+e^-1), -(1-sigmoid(1)), s(1)(1-s(1))
    (0.313262, -0.268941, 0.196612)
    """
    f, g, h, _, _, _ = _pass(source, beta, chunk_rows, device)
    return f, g, h


@dataclass(frozen=True)
class TemperatureFit:
    """How a temperature was fitted.

    ``nll_before`` is the NLL at ``T = 1``, ``nll_after`` at the fitted ``T``; ``gradient`` is
    ``dNLL/dbeta`` there; ``passes`` counts passes over the data; ``clamped`` is ``"t_min"`` or
    ``"t_max"`` when the optimum lies outside the allowed range, else ``None``; ``n`` is the
    number of rows read; ``zero_probs`` (probability inputs) counts the stored probabilities
    that are exactly 0, whose log is read as the dtype's smallest positive number.
    """

    temperature: float
    nll_before: float
    nll_after: float
    gradient: float
    passes: int
    converged: bool
    clamped: Literal["t_min", "t_max"] | None
    n: int
    t_min: float
    t_max: float
    message: str = ""
    zero_probs: int = 0


@dataclass(frozen=True)
class TemperatureScaler:
    """A fitted temperature: divides logits by ``temperature``.

    >>> ts = TemperatureScaler(2.0)
    >>> ts.transform(np.array([[2.0, 4.0]])).tolist()
    [[1.0, 2.0]]
    >>> TemperatureScaler.from_json(ts.to_json()).temperature
    2.0
    """

    temperature: float
    fit: TemperatureFit | None = None
    fitted_on: str | None = None
    n_classes: int | None = None
    input_kind: ScoreKind | None = None
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    calibkit_version: str = __version__

    def __post_init__(self) -> None:
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise UsageError(f"temperature must be a finite number > 0; got {t!r}")

    @property
    def beta(self) -> float:
        return 1.0 / self.temperature

    def transform(self, logits: ArrayLike) -> NDArray[np.float64]:
        """``logits / T`` in float64 (any shape: one logit per row for binary models works)."""
        return np.asarray(logits, dtype=np.float64) / self.temperature

    def transform_probs(self, probs: ArrayLike) -> NDArray[np.float64]:
        """``softmax(log p / T)`` row-wise, for probability inputs of shape ``(N, K)``.

        An exact 0 stays exactly 0 (``0^(1/T) = 0``); no log of it is needed here.

        >>> TemperatureScaler(2.0).transform_probs([[0.8, 0.2, 0.0]]).round(4).tolist()
        [[0.6667, 0.3333, 0.0]]
        """
        p = np.asarray(probs)
        zero = p == 0
        z = as_logits(p, "probs") / self.temperature
        z[zero] = -np.inf  # every valid row has a positive entry, so its max stays finite
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        out: NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibkit_calibrator": CALIBRATOR_FORMAT,
            "method": "temperature",
            "temperature": self.temperature,
            "fitted_on": self.fitted_on,
            "n": self.fit.n if self.fit else None,
            "n_classes": self.n_classes,
            "input": self.input_kind,
            "created": self.created,
            "calibkit_version": self.calibkit_version,
            "fit": _json_safe(asdict(self.fit)) if self.fit else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<calibrator>") -> TemperatureScaler:
        if not isinstance(doc, dict):
            raise InputError(source, "a calibrator must be a JSON object")
        version = doc.get("calibkit_calibrator")
        if type(version) is not int or version != CALIBRATOR_FORMAT:
            raise InputError(
                source,
                f"not a calibkit calibrator of format {CALIBRATOR_FORMAT} "
                f"(calibkit_calibrator = {version!r})",
            )
        if doc.get("method") != "temperature":
            raise InputError(source, f"unknown calibration method {doc.get('method')!r}")
        t = doc.get("temperature")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise InputError(source, f"temperature must be a finite number > 0; got {t!r}")
        n_classes = doc.get("n_classes")
        if n_classes is not None and (type(n_classes) is not int or n_classes < 2):
            raise InputError(source, f"n_classes must be an integer >= 2; got {n_classes!r}")
        fit = doc.get("fit")
        return cls(
            float(t),
            fit=TemperatureFit(**fit) if isinstance(fit, dict) and _fit_keys_ok(fit) else None,
            fitted_on=doc.get("fitted_on"),
            n_classes=n_classes,
            input_kind=doc.get("input"),
            created=str(doc.get("created", "")),
            calibkit_version=str(doc.get("calibkit_version", "")),
        )

    @classmethod
    def from_json(cls, text: str, *, source: str = "<calibrator>") -> TemperatureScaler:
        from calibkit.textfile import parse_json

        return cls.from_dict(parse_json(text, source), source=source)

    @classmethod
    def load(cls, path: str | Path) -> TemperatureScaler:
        """Read a calibrator JSON (a regular file or pipe of at most 16 MiB)."""
        from calibkit.textfile import read_small_text

        return cls.from_json(read_small_text(path, "a calibrator JSON"), source=str(path))


def _fit_keys_ok(fit: dict[str, Any]) -> bool:
    """Every field of :class:`TemperatureFit`, except those with defaults that older
    calibrators did not write (``message``, ``zero_probs``)."""
    known = set(TemperatureFit.__dataclass_fields__)
    optional = {"message", "zero_probs"}
    return known - optional <= set(fit) <= known


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


@dataclass(frozen=True, eq=False)
class ScaledPredictions(SourceView):
    """A view of predictions with logits multiplied by ``beta = 1/T`` (probabilities: ``log p``).

    It streams chunks like its source, so metrics after temperature scaling cost one pass.
    """

    base: PredictionSource
    beta: float

    @property
    def kind(self) -> ScoreKind:
        return "logits"

    @property
    def kind_reason(self) -> str:
        base = input_reason(self.base)
        return f"temperature-scaled {self.base.kind}" + (f" ({base})" if base else "")

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]:
        for scores, labels in self.base.chunks(chunk_rows):
            z = as_logits(scores, self.base.kind)
            z *= self.beta
            yield z, labels


def require_scores(source: PredictionSource) -> None:
    """Temperature scaling needs logits or probabilities, not confidence-only rows."""
    if source.kind not in ("logits", "probs"):
        raise UsageError(
            f"{source.source}: temperature scaling needs logits or probabilities; this file "
            "holds only confidences and correctness"
        )


def _check_range(t_min: float, t_max: float) -> None:
    if not (0 < t_min < t_max < math.inf):
        raise UsageError(f"need 0 < t_min < t_max < inf; got t_min={t_min}, t_max={t_max}")


@progress.counts_passes("temperature fit")
def fit_temperature(
    predictions: PredictionSource | ArrayLike,
    labels: ArrayLike | None = None,
    *,
    kind: ScoreKind | None = None,
    t_min: float = DEFAULT_T_MIN,
    t_max: float = DEFAULT_T_MAX,
    tol: float = GRADIENT_TOL,
    max_passes: int = 100,
    chunk_rows: int | None = None,
    device: str | None = None,
) -> TemperatureScaler:
    """Fit ``T`` minimising the mean NLL of ``softmax(z / T)`` (see the module docstring).

    Pass a :class:`~calibkit.predictions.PredictionSource` (e.g. from
    :func:`calibkit.read_predictions`) or arrays ``(scores, labels)``; for arrays, ``kind``
    forces their reading, and by default probabilities are detected
    (:func:`~calibkit.predictions.choose_kind`).

    >>> z = np.array([[3.0, 0.0], [3.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    >>> ts = fit_temperature(z, [0, 0, 1, 1])  # 1 of 4 wrong: soften to p = 3/4
    >>> round(ts.temperature, 6), round(3 / math.log(3), 6)
    (2.730718, 2.730718)
    """
    _check_range(t_min, t_max)
    if labels is not None:
        scores: Any = predictions
        source: PredictionSource = Predictions.from_arrays(scores, labels, kind=kind)
    elif hasattr(predictions, "chunks"):
        source = predictions  # type: ignore[assignment]
    else:
        raise UsageError("fit_temperature needs labels when given an array of scores")
    require_scores(source)
    dev = None
    if device is not None:
        from calibkit.backends.torch_backend import check_device

        dev = check_device(device)
    zero_probs = _warn_about_probabilities(source, chunk_rows) if source.kind == "probs" else 0

    lo, hi = 1.0 / t_max, 1.0 / t_min
    beta = min(max(1.0, lo), hi)
    f, g, h, g_zero, g_inf, n_read = _pass(source, beta, chunk_rows, dev)
    nll_before = (
        f
        if beta == 1.0
        else nll_gradient_hessian(source, 1.0, chunk_rows=chunk_rows, device=dev)[0]
    )
    passes = 1 if beta == 1.0 else 2
    lo_known = hi_known = False  # whether g(lo) < 0 < g(hi) has been observed
    converged = False
    clamped: Literal["t_min", "t_max"] | None = None
    message = ""
    # The gradient is increasing in beta, from g(0+) to g(inf) = mean(max_k z - z_y) >= 0. When
    # a limit has the wrong sign the optimum is at a bound; deciding it here avoids creeping
    # towards it while the gradient underflows below the tolerance.
    if g_inf <= 0 and h > 0:
        beta = 1.0 / t_min
    elif g_zero >= 0 and h > 0:
        beta = 1.0 / t_max
    if beta != min(max(1.0, lo), hi):
        f, g, h = nll_gradient_hessian(source, beta, chunk_rows=chunk_rows, device=dev)
        passes += 1
    while True:
        if beta == 1.0 / t_min and g <= 0 and (g < 0 or g_inf <= 0):
            clamped, converged = "t_min", True
            message = "the NLL keeps falling as T -> 0 (predictions are right and confident)"
            break
        if beta == 1.0 / t_max and g >= 0 and (g > 0 or g_zero >= 0):
            clamped, converged = "t_max", True
            message = "the NLL keeps falling as T grows (predictions no better than uniform)"
            break
        if abs(g) <= tol:
            converged = True
            break
        if g > 0:
            hi, hi_known = beta, True
        else:
            lo, lo_known = beta, True
        if hi <= lo * (1 + 4 * np.finfo(float).eps):
            converged = True
            message = "stopped at float64 resolution of T"
            break
        if passes >= max_passes:
            break
        step = beta - g / h if h > 0 else math.nan
        if math.isfinite(step) and lo < step < hi:
            new = step
        elif lo_known and hi_known:
            new = math.sqrt(lo * hi)
        else:
            # not bracketed yet on that side: jump to the bound (cheap, decides clamping)
            new = hi if g < 0 else lo
            if not (lo <= new <= hi) or new == beta:
                new = math.sqrt(lo * hi)
        beta = new
        f, g, h = nll_gradient_hessian(source, beta, chunk_rows=chunk_rows, device=dev)
        passes += 1
    if not converged:
        warnings.warn(
            f"{source.source}: temperature fit stopped after {passes} passes with "
            f"gradient {g:.3g} (tolerance {tol:g})",
            ConvergenceWarning,
            stacklevel=2,
        )
    if clamped:
        bound = t_min if clamped == "t_min" else t_max
        warnings.warn(
            f"{source.source}: {message}; temperature clamped to {bound:g}",
            ConvergenceWarning,
            stacklevel=2,
        )
    fit = TemperatureFit(
        temperature=1.0 / beta,
        nll_before=nll_before,
        nll_after=f,
        gradient=g,
        passes=passes,
        converged=converged,
        clamped=clamped,
        n=n_read,
        t_min=t_min,
        t_max=t_max,
        message=message,
        zero_probs=zero_probs,
    )
    return TemperatureScaler(
        1.0 / beta,
        fit=fit,
        fitted_on=source.source,
        n_classes=source.n_classes,
        input_kind="probs" if source.kind == "probs" else "logits",
    )


def _warn_about_probabilities(source: PredictionSource, chunk_rows: int | None) -> int:
    """Warn about exact zeros (read as the dtype's smallest positive number when their log is
    taken) and about saturation; return the number of exact zeros."""
    saturated = n = zeros = zero_rows = 0
    for scores, _ in source.chunks(chunk_rows):
        is_zero = scores == 0
        zeros += int(np.count_nonzero(is_zero))
        zero_rows += int(is_zero.any(axis=1).sum())
        saturated += int((is_zero | (scores == 1)).any(axis=1).sum())
        n += len(scores)
    if zeros:
        warnings.warn(
            f"{source.source}: {zeros} probabilit{'ies are' if zeros != 1 else 'y is'} exactly "
            f"0 (in {zero_rows} row{'s' if zero_rows != 1 else ''}); the fit takes log 0 as the "
            "log of the smallest positive number of the stored dtype",
            UserWarning,
            stacklevel=3,
        )
    if n and saturated / n > 0.01:
        warnings.warn(
            f"{source.source}: {saturated / n:.1%} of rows have a probability of exactly 0 or 1; "
            "a temperature fitted on saturated probabilities is biased (save logits instead)",
            UserWarning,
            stacklevel=3,
        )
    return zeros
