"""Ensemble temperature scaling (Zhang, Kailkhura & Han 2020, "Mix-n-Match", ICML), fitted exactly.

ETS mixes three predictions of the same logits ``z`` with weights ``w`` on the simplex::

    p = w1 * softmax(z / T) + w2 * softmax(z) + w3 / K,      w >= 0,  w1 + w2 + w3 = 1

(the temperature-scaled prediction, the original one, and the uniform one). Probability
inputs are read as ``z = log p`` (an exact 0 as the log of the stored dtype's smallest
positive number, as everywhere in calibkit), so ``softmax(z) = p``.

**The fit, as in the paper.** ``T`` is the temperature of temperature scaling on the same data
(:func:`~calibkit.calibrators.temperature.fit_temperature`: the exact NLL optimum, as Guo et al.
fit it), then ``w`` minimises the squared error of the mixture on the simplex. The squared
error is what the authors' reference code minimises for ``w`` (their ``mse_w``, the mean over
the ``N x K`` entries; here the Brier score, ``K`` times that mean, which has the same
minimiser). Their code fits ``T`` by squared error too, inside ``[0.05, 5]``; calibkit keeps
the NLL temperature of its ``temperature`` method, so ETS's ``T`` is exactly TS's.

**Exactly.** The squared error is a quadratic in ``w``: with ``P_j`` the three predictions,
``Brier(w) = w' A w - 2 b' w + c``, where ``A_jl = mean_i <P_ij, P_il>``, ``b_j = mean_i <P_ij,
t_i>`` and ``c = mean_i |t_i|^2`` (``t`` the one-hot or soft label). One streamed pass (after
the temperature fit's) gives the 3 x 3 ``A``, ``b`` and ``c`` in float64; the minimum on the
simplex is then found exactly by trying every face of it (the 7 non-empty supports: on each,
the equality-constrained quadratic is one small linear solve) and keeping the best feasible
point. How the fit ended is a :class:`~calibkit.calibrators.outcome.FitOutcome` (``solver``
``"active-set"``), whose ``gradient_norm`` is the **KKT residual** of the simplex constraint,
not the raw gradient (which need not vanish at a constrained optimum): with ``g = 2 (A w - b)``
and ``lam`` the mean of ``g`` over the support ``w_j > 0``, the larger of ``max |g_j - lam|``
over the support and ``max(0, lam - g_j)`` off it (zero exactly at the optimum).

**Argmax.** ``softmax(z / T)`` and ``softmax(z)`` rank the classes as ``z`` does (``T > 0``),
so a non-negative mixture of them plus a constant keeps the argmax: ``changes_argmax`` is
false. Two exceptions, both visible in ``calibkit fit``'s accuracy row: ``w3 = 1`` (every row
uniform, which the fit gives only for predictions no better than chance) and float64 rounding
that makes two nearly equal probabilities exactly equal.

The output is a probability (``output_kind = "probs"``), not a logit: ``calibkit apply`` writes
it under ``probs`` / ``prob_0 .. prob_{K-1}``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import NDArray

from calibkit._version import __version__
from calibkit.calibrators import registry
from calibkit.calibrators.base import (
    CALIBRATOR_FORMAT,
    Calibrator,
    CalibratorBase,
    Hyperparameter,
    check_document,
    document_input,
    require_scores,
)
from calibkit.calibrators.outcome import FitOutcome
from calibkit.calibrators.temperature import as_logits, fit_temperature
from calibkit.engine.passes import Chunk, run_pass
from calibkit.errors import InputError, UsageError
from calibkit.metrics.softmax import softmax
from calibkit.sources.predictions import PredictionSource, ScoreKind, refuse_ragged

__all__ = ["EnsembleTemperatureScaler", "fit_ets", "kkt_residual", "quadratic", "simplex_qp"]

#: The names of the three weights, in the order of ``w``.
WEIGHTS = ("w_scaled", "w_original", "w_uniform")
#: How far from 1 the stored weights may sum (they are written to 17 digits).
_SUM_TOLERANCE = 1e-9


def _components(
    scores: NDArray[Any], kind: str, beta: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``softmax(beta * z)`` and ``softmax(z)`` of a chunk (float64; ``z = log p`` for
    probabilities)."""
    z = as_logits(scores, kind)
    original = softmax(z)
    z *= beta
    scaled = softmax(z, overwrite=True)
    return scaled, original


def _moments_chunk(item: Chunk, kind: str, beta: float, n_classes: int) -> NDArray[np.float64]:
    """Sums over a chunk's rows: ``[n, <P0,P0>, <P0,P1>, <P1,P1>, <P0,t>, <P1,t>, |t|^2, mass]``
    (``P0 = softmax(beta z)``, ``P1 = softmax(z)``; the uniform component's terms follow from
    the rows summing to 1).

    Two exponentials of the centred logits and row dot products of the unnormalised rows,
    divided by the row sums afterwards (no normalised ``N x K`` array is formed)."""
    labels = item.labels
    z = as_logits(item.scores, kind)
    z -= z.max(axis=1, keepdims=True)
    e1 = np.exp(z)
    z *= beta
    e0 = np.exp(z, out=z)
    s0, s1 = e0.sum(axis=1), e1.sum(axis=1)
    d00 = np.einsum("ij,ij->i", e0, e0)
    d01 = np.einsum("ij,ij->i", e0, e1)
    d11 = np.einsum("ij,ij->i", e1, e1)
    if labels.ndim == 1:
        rows = np.arange(labels.shape[0])
        y0, y1 = e0[rows, labels], e1[rows, labels]
        tt = mass = float(labels.shape[0])
    else:
        soft = labels.astype(np.float64)
        y0, y1 = np.einsum("ij,ij->i", e0, soft), np.einsum("ij,ij->i", e1, soft)
        tt = float(np.einsum("ij,ij->", soft, soft))
        mass = float(soft.sum())
    return np.array(
        [
            float(labels.shape[0]),
            float((d00 / (s0 * s0)).sum()),
            float((d01 / (s0 * s1)).sum()),
            float((d11 / (s1 * s1)).sum()),
            float((y0 / s0).sum()),
            float((y1 / s1).sum()),
            tt,
            mass,
        ]
    )


def quadratic(sums: NDArray[np.float64], n_classes: int) -> tuple[NDArray[np.float64], ...]:
    """``(A, b, c)`` of ``Brier(w) = w'Aw - 2b'w + c`` (means over rows) from the pass's sums."""
    n, s00, s01, s11, b0, b1, tt, mass = sums.tolist()
    u = 1.0 / n_classes  # <P_j, uniform> = 1/K (rows sum to 1), <uniform, uniform> = 1/K
    a = np.array([[s00, s01, u * n], [s01, s11, u * n], [u * n, u * n, u * n]]) / n
    b = np.array([b0, b1, u * mass]) / n
    return a, b, np.array(tt / n)


def simplex_qp(
    a: NDArray[np.float64], b: NDArray[np.float64], c: float = 0.0
) -> tuple[NDArray[np.float64], float, float, int]:
    """Minimise ``w'Aw - 2b'w + c`` over the probability simplex, exactly, for a symmetric
    positive semi-definite ``A`` of a few dimensions: ``(w, objective, kkt_residual, faces)``.

    Every non-empty support ``S`` is tried: on it the stationarity conditions ``2(A w - b)_S =
    lam`` and ``sum w_S = 1`` are one linear system (solved in the least-squares sense, so a
    singular ``A`` — e.g. two equal components — still gives a point); the feasible point of
    lowest objective is kept (any feasible stationary point of the convex problem on the right
    face is a minimum). The residual is the KKT residual described in the module docstring.

    >>> w, f, r, _ = simplex_qp(np.eye(3), np.array([1.0, 0.0, 0.0]))
    >>> w.tolist(), round(f, 12), r
    ([1.0, 0.0, 0.0], -1.0, 0.0)
    """
    m = a.shape[0]
    best: tuple[float, NDArray[np.float64]] | None = None
    faces = 0
    for size in range(1, m + 1):
        for support in itertools.combinations(range(m), size):
            faces += 1
            s = list(support)
            k = len(s)
            system = np.zeros((k + 1, k + 1))
            system[:k, :k] = 2.0 * a[np.ix_(s, s)]
            system[:k, k] = -1.0
            system[k, :k] = 1.0
            rhs = np.concatenate([2.0 * b[s], [1.0]])
            sol = np.linalg.lstsq(system, rhs, rcond=None)[0]
            w_s = sol[:k]
            if not np.all(np.isfinite(w_s)) or np.any(w_s < -1e-12):
                continue
            w = np.zeros(m)
            w[s] = np.maximum(w_s, 0.0)
            total = w.sum()
            if total <= 0:
                continue
            w /= total
            f = float(w @ a @ w - 2.0 * b @ w + c)
            if best is None or f < best[0] - 1e-15 * max(1.0, abs(f)):
                best = (f, w)
    assert best is not None  # the vertices are always feasible
    f, w = best
    return w, f, kkt_residual(a, b, w), faces


def kkt_residual(a: NDArray[np.float64], b: NDArray[np.float64], w: NDArray[np.float64]) -> float:
    """The KKT residual of ``w`` for ``min w'Aw - 2b'w`` on the simplex (module docstring)."""
    g = 2.0 * (a @ w - b)
    on = w > 0
    lam = float(g[on].mean())
    inside = float(np.max(np.abs(g[on] - lam)))
    off = float(np.max(lam - g[~on], initial=0.0))
    return max(inside, off, 0.0)


@dataclass(frozen=True)
class EnsembleTemperatureScaler(CalibratorBase):
    """``w1 softmax(z/T) + w2 softmax(z) + w3/K`` (see the module docstring).

    >>> ets = EnsembleTemperatureScaler(2.0, (0.5, 0.25, 0.25))  # 0.5 s(-1) + 0.25 s(-2) + 1/8
    >>> ets.transform(np.array([[0.0, 2.0]]), "logits").round(4).tolist()
    [[0.2893, 0.7107]]
    """

    method: ClassVar[str] = "ets"
    title: ClassVar[str] = "ensemble temperature scaling"
    abbreviation: ClassVar[str] = "ETS"
    calibrated_as: ClassVar[str] = "ensemble-temperature-scaled"
    symbols: ClassVar[Mapping[str, str]] = {
        "temperature": "T",
        "w_scaled": "w1",
        "w_original": "w2",
        "w_uniform": "w3",
    }
    changes_argmax: ClassVar[bool] = False
    output_kind: ClassVar[ScoreKind] = "probs"
    #: its uniform component spreads 1/K over every class: refused on ragged inputs
    class_wise: ClassVar[bool] = True
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = (
        Hyperparameter(
            "t_min", float, "smallest T of the temperature fit (default 1e-4)",
            minimum=0.0, exclusive_minimum=True,
        ),
        Hyperparameter(
            "t_max", float, "largest T of the temperature fit (default 1e4)",
            minimum=0.0, exclusive_minimum=True,
        ),
    )  # fmt: skip

    temperature: float
    weights: tuple[float, float, float]
    fit: FitOutcome | None = None
    temperature_fit: dict[str, Any] | None = None
    fitted_on: str | None = None
    n_classes: int | None = None
    input_kind: ScoreKind | None = None
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    calibkit_version: str = __version__

    def __post_init__(self) -> None:
        problem = _check(self.temperature, self.weights)
        if problem:
            raise UsageError(problem)
        object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))

    # -- the Calibrator protocol ---------------------------------------------------------------

    @classmethod
    def fit_source(
        cls,
        source: PredictionSource,
        *,
        chunk_rows: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> EnsembleTemperatureScaler:
        """:func:`fit_ets`; ``options``: ``t_min``, ``t_max`` (of the temperature fit)."""
        return fit_ets(source, chunk_rows=chunk_rows, device=device, **options)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, float]) -> EnsembleTemperatureScaler:
        """From ``temperature`` and the three weights (``w_scaled``, ``w_original``,
        ``w_uniform``)."""
        names = {"temperature", *WEIGHTS}
        if set(parameters) != names:
            raise UsageError(
                f"ensemble temperature scaling has the parameters {', '.join(sorted(names))}; "
                f"got {sorted(parameters)}"
            )
        weights = tuple(float(parameters[k]) for k in WEIGHTS)
        return cls(float(parameters["temperature"]), weights)  # type: ignore[arg-type]

    def parameters(self) -> dict[str, float]:
        return {"temperature": self.temperature, **dict(zip(WEIGHTS, self.weights, strict=True))}

    def calibrated_scores(self, scores: NDArray[Any], kind: str) -> NDArray[np.float64]:
        """The mixture's probabilities (float64) of a validated ``(n, K)`` chunk."""
        w1, w2, w3 = self.weights
        scaled, original = _components(scores, kind, 1.0 / self.temperature)
        scaled *= w1
        original *= w2
        scaled += original
        scaled += w3 / scaled.shape[1]
        return scaled

    def fit_details(self) -> dict[str, Any]:
        """The parameters, ``weights``, how the weight fit ended (``fit``), how the temperature
        fit ended (``temperature_fit``) and ``fitted_on``."""
        return {
            **self.parameters(),
            "weights": list(self.weights),
            "fit": self.fit.to_dict() if self.fit else None,
            "temperature_fit": self.temperature_fit,
            "fitted_on": self.fitted_on,
        }

    # -- the JSON document ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibkit_calibrator": CALIBRATOR_FORMAT,
            "method": self.method,
            "temperature": self.temperature,
            "weights": list(self.weights),
            "fitted_on": self.fitted_on,
            "n_classes": self.n_classes,
            "input": self.input_kind,
            "created": self.created,
            "calibkit_version": self.calibkit_version,
            "fit": self.fit.to_dict() if self.fit else None,
            "temperature_fit": self.temperature_fit,
        }

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<calibrator>") -> Self:
        check_document(doc, source, cls.method)
        t = doc.get("temperature")
        weights = doc.get("weights")
        if not isinstance(weights, list) or len(weights) != 3:
            raise InputError(source, f"weights must be a list of 3 numbers; got {weights!r}")
        problem = _check(t, weights)
        if problem:
            raise InputError(source, problem)
        n_classes = doc.get("n_classes")
        if n_classes is not None and (type(n_classes) is not int or n_classes < 2):
            raise InputError(source, f"n_classes must be an integer >= 2; got {n_classes!r}")
        kind = document_input(doc, source)
        tfit = doc.get("temperature_fit")
        if tfit is not None and not isinstance(tfit, dict):
            raise InputError(source, "its 'temperature_fit' must be a JSON object")
        fitted_on = doc.get("fitted_on")
        return cls(
            float(t),
            tuple(float(w) for w in weights),  # type: ignore[arg-type]
            fit=FitOutcome.from_dict(doc.get("fit"), source=source),
            temperature_fit=tfit,
            fitted_on=fitted_on if isinstance(fitted_on, str) else None,
            n_classes=n_classes,
            input_kind=kind,
            created=str(doc.get("created", "")),
            calibkit_version=str(doc.get("calibkit_version", "")),
        )


def _number(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)


def _check(t: Any, weights: Any) -> str:
    """What is wrong with a temperature and weights (``""``: nothing)."""
    if not _number(t) or t <= 0:
        return f"temperature must be a finite number > 0; got {t!r}"
    try:
        ws = list(weights)
    except TypeError:
        return f"weights must be 3 numbers; got {weights!r}"
    if len(ws) != 3 or not all(_number(w) for w in ws):
        return f"weights must be 3 finite numbers; got {weights!r}"
    if min(ws) < 0 or abs(sum(ws) - 1.0) > _SUM_TOLERANCE:
        return f"weights must be >= 0 and sum to 1; got {ws!r}"
    return ""


def fit_ets(
    source: PredictionSource,
    *,
    chunk_rows: int | None = None,
    device: str | None = None,
    **options: Any,
) -> EnsembleTemperatureScaler:
    """Fit ETS on ``source`` (module docstring): the temperature fit's passes plus one.

    ``options``: ``t_min``, ``t_max``, passed to the temperature fit.
    """
    require_scores(source, EnsembleTemperatureScaler.title)
    refuse_ragged(source, EnsembleTemperatureScaler.title)  # its uniform part is 1/K each class
    unknown = set(options) - {"t_min", "t_max"}
    if unknown:
        raise UsageError(f"ensemble temperature scaling has no option {sorted(unknown)[0]!r}")
    ts = fit_temperature(source, chunk_rows=chunk_rows, device=device, **options)
    beta = ts.beta
    kind, k = source.kind, source.n_classes
    totals = np.zeros(8)

    def work(item: Chunk) -> NDArray[np.float64]:
        return _moments_chunk(item, kind, beta, k)

    def merge(part: NDArray[np.float64]) -> None:
        totals[:] += part  # in chunk order: independent of the executor

    run_pass(
        source, work, merge, chunk_rows=chunk_rows, description=f"{source.source}: ETS weights"
    )
    if totals[0] == 0:
        raise InputError(source.source, "no rows: the predictions are empty")
    if not np.all(np.isfinite(totals)):
        raise InputError(source.source, "the ETS sums are not finite (float64 overflow)")
    a, b, c = quadratic(totals, k)
    w, objective, residual, faces = simplex_qp(a, b, float(c))
    tf = ts.fit
    passes = (tf.passes if tf else 0) + 1
    outcome = FitOutcome(
        objective=objective,
        gradient_norm=residual,
        iterations=faces,
        passes=passes,
        solver="active-set",
        message=(
            "exact minimum of the Brier score over the simplex (every face tried); "
            "gradient_norm is the KKT residual"
        ),
        n=int(totals[0]),
    )
    return EnsembleTemperatureScaler(
        ts.temperature,
        (float(w[0]), float(w[1]), float(w[2])),
        fit=outcome,
        temperature_fit=(
            {
                "converged": tf.converged,
                "passes": tf.passes,
                "gradient": tf.gradient if math.isfinite(tf.gradient) else None,
                "clamped": tf.clamped,
            }
            if tf
            else None
        ),
        fitted_on=source.source,
        n_classes=k,
        input_kind="probs" if kind == "probs" else "logits",
    )


registry.register(EnsembleTemperatureScaler.method, EnsembleTemperatureScaler)
_IS_A_CALIBRATOR: type[Calibrator] = EnsembleTemperatureScaler  # mypy checks the protocol here
