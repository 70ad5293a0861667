"""The linear calibrators: an affine map of per-row features, then the softmax.

``vector`` (:mod:`~calibkit.calibrators.vector`), ``matrix`` and ``matrix-odir``
(:mod:`~calibkit.calibrators.matrix`) and ``dirichlet-odir``
(:mod:`~calibkit.calibrators.dirichlet`) all calibrate a row of features ``x`` (``K`` numbers)
to the logits

    u = w ⊙ x + b          (vector: ``2K`` parameters)
    u = W x + b            (matrix: ``K² + K`` parameters)

with ``x`` the logits ``z`` (``log p`` of stored probabilities, as temperature scaling reads
them) for vector and matrix scaling, and ``log softmax(z)`` (or ``log p``) for Dirichlet
calibration. The fit minimises, in float64,

    f(θ) = (1/N) Σ_i [ logsumexp(u_i) - u_{i,y_i} ]  +  Σ_j c_j θ_j²

(soft labels ``t``: ``m_i logsumexp(u_i) - t_i · u_i`` with ``m_i = Σ_k t_ik``), where the
penalty weights ``c`` are 0 for the unregularised methods and, for ODIR (Kull et al. 2019,
Eq. in Sec. 4, their ``reg_norm`` form)

    λ / (K (K - 1)) · Σ_{i ≠ j} W_ij²  +  μ / K · Σ_j b_j²

(the diagonal of ``W`` is free; the sums of squares are divided by the number of off-diagonal
entries and of intercepts, so λ and μ mean the same at every ``K``; the NLL is the *mean*).

Every value, gradient, Hessian and Hessian-vector product is one streaming pass
(:func:`~calibkit.engine.passes.run_pass`) whose chunk work is a few matrix products (BLAS);
memory is O(parameters + one chunk): the Hessian is assembled only when the parameters are few
(:data:`NEWTON_MAX_PARAMS`), otherwise the fit is truncated Newton with Hessian-vector passes
(:mod:`~calibkit.calibrators.optimize`). The start is the temperature-scaling solution
(``W = I / T``, ``w = 1 / T``, ``b = 0``), which the exact temperature fit gives in a few passes.

The objective is convex. Without a penalty it may have no minimum: when one affine map
separates the classes the NLL falls to 0 as the weights grow (unregularised matrix scaling at
``K = 100`` on 5000 rows). The fit then stops at ``max_iter`` iterations (or ``max_passes``)
and its :class:`~calibkit.calibrators.outcome.FitOutcome` says so: ``converged`` false, the
message ``"stopped at max_iter ...: no minimum ..."``.

The map is invariant to adding one vector to every row of ``W`` (and one constant to every
``b_j``) when ``λ = 0`` (``μ = 0``): those directions are removed from every step, so the fit is
one well-defined point (and equal across chunk sizes).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal, Self

import numpy as np
from numpy.typing import NDArray

from calibkit._version import __version__
from calibkit.calibrators.base import (
    CALIBRATOR_FORMAT,
    CalibratorBase,
    Hyperparameter,
    check_document,
    document_input,
    require_scores,
)
from calibkit.calibrators.outcome import FitOutcome
from calibkit.engine.passes import Chunk, run_pass
from calibkit.errors import InputError, Param, UsageError
from calibkit.sources.predictions import PredictionSource, ScoreKind, refuse_ragged

__all__ = [
    "NEWTON_MAX_PARAMS",
    "LinearCalibrator",
    "LinearProblem",
    "fit_linear",
]

Structure = Literal["vector", "matrix"]
Feature = Literal["logits", "log_probs"]
F64 = NDArray[np.float64]

#: Newton's method with the exact Hessian up to this many parameters; truncated Newton above.
NEWTON_MAX_PARAMS = 300
#: Float64 elements of the per-chunk work arrays of a Hessian assembly (rows are blocked).
HESSIAN_BLOCK_ELEMENTS = 1 << 22
#: Largest block-diagonal preconditioner (``K (K+1)²`` float64, twice: the blocks and their
#: inverses) of a truncated-Newton fit; above it the plain diagonal of the Hessian is used.
PRECONDITIONER_MAX_BYTES = 256 << 20
DEFAULT_MAX_ITER = 100
DEFAULT_MAX_PASSES = 500


def _max_iter() -> Hyperparameter:
    return Hyperparameter(
        "max_iter",
        int,
        "most Newton iterations; a fit without a minimum (separable data) stops here",
        default=DEFAULT_MAX_ITER,
        minimum=1,
    )


def _max_passes() -> Hyperparameter:
    return Hyperparameter(
        "max_passes",
        int,
        "most passes over the data (value/gradient, Hessian or Hessian-vector evaluations)",
        default=DEFAULT_MAX_PASSES,
        minimum=1,
    )


# -- the problem: features, the map, its objective in passes ------------------------------------


@dataclass(frozen=True, eq=False)
class LinearProblem:
    """One linear-calibration objective over a source (see the module docstring).

    ``penalty`` holds the per-parameter weights ``c`` (``None``: none); ``floor`` the
    probability that replaces exact zeros of ``log p`` for ``"log_probs"`` features (``None``:
    zeros are refused).
    """

    structure: Structure
    n_classes: int
    feature: Feature
    lam: float = 0.0
    mu: float = 0.0
    regularised: bool = False
    floor: float | None = None
    source_name: str = "<scores>"

    @property
    def n_params(self) -> int:
        k = self.n_classes
        return 2 * k if self.structure == "vector" else k * (k + 1)

    def penalty(self) -> F64 | None:
        """The weights ``c`` of the penalty ``Σ c_j θ_j²`` (``None`` without one)."""
        if not self.regularised:
            return None
        k = self.n_classes
        c = np.zeros((k, k + 1))
        if k > 1:
            c[:, :k] = self.lam / (k * (k - 1))
            c[np.arange(k), np.arange(k)] = 0.0
        c[:, k] = self.mu / k
        return c.ravel()

    # -- features and the map --

    def features(self, scores: NDArray[Any], kind: str) -> F64:
        """Float64 features of a validated ``(n, K)`` chunk (see the module docstring)."""
        from calibkit.calibrators.temperature import as_logits
        from calibkit.metrics.softmax import log_softmax

        if self.feature == "logits":
            return as_logits(scores, kind)
        if kind == "logits":
            out: F64 = log_softmax(scores)
            return out
        p = np.asarray(scores, dtype=np.float64)
        if self.floor is None:
            if (p == 0).any():
                row = int(np.argmax((p == 0).any(axis=1)))
                raise InputError(
                    self.source_name,
                    f"Dirichlet calibration needs log p: the probabilities hold exact zeros "
                    f"(first in row {row} of a chunk); save logits, or give "
                    + Param("params").entry("floor")
                    + "=VALUE (e.g. 1e-12) to read 0 as that probability",
                )
            return np.log(p)
        return np.log(np.maximum(p, self.floor))

    def split(self, theta: F64) -> tuple[F64, F64]:
        """``(w or W, b)`` views of a parameter vector."""
        k = self.n_classes
        if self.structure == "vector":
            return theta[:k], theta[k:]
        a = theta.reshape(k, k + 1)
        return a[:, :k], a[:, k]

    def join(self, weights: F64, bias: F64) -> F64:
        if self.structure == "vector":
            return np.concatenate([weights, bias]).astype(np.float64)
        return np.hstack([weights, bias[:, None]]).ravel().astype(np.float64)

    def apply(self, x: F64, theta: F64) -> F64:
        """The calibrated logits ``u`` of features ``x`` (``(n, K)``)."""
        w, b = self.split(theta)
        u: F64 = x * w if self.structure == "vector" else x @ w.T
        u += b
        return u

    def project(self, d: F64) -> F64:
        """``d`` without the directions the objective does not depend on (module docstring)."""
        k = self.n_classes
        if self.structure == "vector":
            if not (self.regularised and self.mu > 0):
                d[k:] -= d[k:].mean()
            return d
        a = d.reshape(k, k + 1)
        if not (self.regularised and self.lam > 0):
            a[:, :k] -= a[:, :k].mean(axis=0)
        if not (self.regularised and self.mu > 0):
            a[:, k] -= a[:, k].mean()
        return d

    # -- chunk kernels (sums over the chunk's rows) --

    def _probs(self, u: F64, labels: NDArray[Any]) -> tuple[float, F64, F64, F64 | None]:
        """``(NLL sum, P, R = m P - T, m)`` for logits ``u`` (``m``: soft labels' row mass)."""
        n = u.shape[0]
        m = u.max(axis=1, keepdims=True)
        e = u - m
        np.exp(e, out=e)
        s = e.sum(axis=1, keepdims=True)
        e /= s
        p = e
        log_s = np.log(s[:, 0])
        if labels.ndim == 1:
            rows = np.arange(n)
            nll = float((log_s + (m[:, 0] - u[rows, labels])).sum())
            r = p.copy()
            r[rows, labels] -= 1.0
            return nll, p, r, None
        t = labels.astype(np.float64, copy=False)
        mass = t.sum(axis=1)
        nll = float((mass * (log_s + m[:, 0]) - np.einsum("ij,ij->i", t, u)).sum())
        r = p * mass[:, None] - t
        return nll, p, r, mass

    def _grad(self, x: F64, r: F64) -> F64:
        if self.structure == "vector":
            return np.concatenate([np.einsum("ij,ij->j", r, x), r.sum(axis=0)])
        return np.hstack([r.T @ x, r.sum(axis=0)[:, None]]).ravel()

    def chunk_value_grad(self, chunk: Chunk, kind: str, theta: F64) -> tuple[float, F64]:
        x = self.features(chunk.scores, kind)
        nll, _, r, _ = self._probs(self.apply(x, theta), chunk.labels)
        return nll, self._grad(x, r)

    def chunk_hessp(self, chunk: Chunk, kind: str, theta: F64, v: F64) -> F64:
        x = self.features(chunk.scores, kind)
        _, p, _, mass = self._probs(self.apply(x, theta), chunk.labels)
        du = self.apply(x, v)
        du *= p
        du -= p * du.sum(axis=1, keepdims=True)  # dP = (diag p - p p^T) du, row by row
        if mass is not None:
            du *= mass[:, None]
        return self._grad(x, du)

    def block_preconditioner(self) -> bool:
        """Whether the truncated-Newton preconditioner is the per-class block diagonal of the
        Hessian (else its diagonal; :data:`PRECONDITIONER_MAX_BYTES`)."""
        k = self.n_classes
        return self.structure == "vector" or 2 * 8 * k * (k + 1) ** 2 <= PRECONDITIONER_MAX_BYTES

    def chunk_hess_blocks(self, chunk: Chunk, kind: str, theta: F64) -> F64:
        """The chunk's sum of the Hessian's per-class diagonal blocks: for class ``k``,
        ``Σ_i m_i p_ik (1 - p_ik) x̃ x̃ᵀ`` over the class's parameters (matrix: ``x̃ = [x; 1]``,
        ``(K, K+1, K+1)``; vector: ``x̃ = [x_k, 1]``, ``(K, 2, 2)``), or only their diagonals
        (``(K, K+1)``) when the blocks are too large (:meth:`block_preconditioner`)."""
        x = self.features(chunk.scores, kind)
        _, p, _, mass = self._probs(self.apply(x, theta), chunk.labels)
        wgt = p * (1.0 - p)
        if mass is not None:
            wgt *= mass[:, None]
        k = self.n_classes
        if self.structure == "vector":
            out = np.empty((k, 2, 2))
            wx = wgt * x
            out[:, 0, 0] = np.einsum("ij,ij->j", wx, x)
            out[:, 0, 1] = out[:, 1, 0] = wx.sum(axis=0)
            out[:, 1, 1] = wgt.sum(axis=0)
            return out
        n = x.shape[0]
        xt = np.hstack([x, np.ones((n, 1))])
        if not self.block_preconditioner():
            diag: F64 = wgt.T @ (xt * xt)
            return diag
        blocks = np.zeros((k * (k + 1), k + 1))
        step = max(1, HESSIAN_BLOCK_ELEMENTS // (k * (k + 1)))
        for start in range(0, n, step):
            sl = slice(start, min(n, start + step))
            wb = (wgt[sl][:, :, None] * xt[sl][:, None, :]).reshape(-1, k * (k + 1))
            blocks += wb.T @ xt[sl]  # one GEMM: sum_i w_ik x_ij x_il
        return blocks.reshape(k, k + 1, k + 1)

    def chunk_value_grad_hess(self, chunk: Chunk, kind: str, theta: F64) -> tuple[float, F64, F64]:
        x = self.features(chunk.scores, kind)
        nll, p, r, mass = self._probs(self.apply(x, theta), chunk.labels)
        g = self._grad(x, r)
        k = self.n_classes
        d = self.n_params
        h = np.zeros((d, d))
        n = x.shape[0]
        sq = None if mass is None else np.sqrt(mass)[:, None]
        pm = p if mass is None else p * mass[:, None]
        if self.structure == "vector":
            q = p * x
            qm = q if mass is None else q * mass[:, None]
            qs, ps = (q, p) if sq is None else (q * sq, p * sq)
            idx = np.arange(k)
            h[:k, :k] = -(qs.T @ qs)
            h[:k, k:] = -(qs.T @ ps)
            h[k:, k:] = -(ps.T @ ps)
            h[idx, idx] += np.einsum("ij,ij->j", qm, x)
            h[idx, k + idx] += qm.sum(axis=0)
            h[k + idx, k + idx] += pm.sum(axis=0)
            h[k:, :k] = h[:k, k:].T
            return nll, g, h
        xt = np.hstack([x, np.ones((n, 1))])
        block = max(1, HESSIAN_BLOCK_ELEMENTS // d)
        h4 = h.reshape(k, k + 1, k, k + 1)
        idx = np.arange(k)
        for start in range(0, n, block):
            sl = slice(start, min(n, start + block))
            xb = xt[sl]
            mb = (p[sl] if sq is None else p[sl] * sq[sl])[:, :, None] * xb[:, None, :]
            flat = mb.reshape(-1, d)
            h -= flat.T @ flat
            yb = (pm[sl][:, :, None] * xb[:, None, :]).reshape(-1, d)
            diag = (yb.T @ xb).reshape(k, k + 1, k + 1)  # one GEMM: sum_i pm_ia x_ij x_il
            h4[idx, :, idx, :] += diag
        return nll, g, h

    # -- passes --

    def _pass(
        self,
        source: PredictionSource,
        fn: Callable[[Chunk], Any],
        chunk_rows: int | None,
    ) -> tuple[list[Any], int]:
        parts: list[Any] = []
        total: list[Any] = []
        rows = [0]

        def work(chunk: Chunk) -> tuple[int, Any]:
            return chunk.rows, fn(chunk)

        def merge(part: tuple[int, Any]) -> None:
            n, value = part
            rows[0] += n
            if not total:
                total.extend(value if isinstance(value, tuple) else (value,))
                return
            vals = value if isinstance(value, tuple) else (value,)
            for i, v in enumerate(vals):
                total[i] = total[i] + v

        run_pass(source, work, merge, chunk_rows=chunk_rows)
        del parts
        if rows[0] == 0:
            raise InputError(self.source_name, "no rows to fit on")
        return total, rows[0]

    def evaluators(
        self, source: PredictionSource, chunk_rows: int | None
    ) -> tuple[
        Callable[[F64], tuple[float, F64]],
        Callable[[F64], tuple[float, F64, F64]],
        Callable[[F64, F64], F64],
        list[int],
    ]:
        """``(value_grad, value_grad_hess, hessp, n)`` of the mean objective (each call one
        pass; ``n`` filled with the row count by the first)."""
        kind = source.kind
        c = self.penalty()
        n_rows: list[int] = []

        def finish(total: list[Any], n: int, theta: F64) -> tuple[float, F64]:
            if not n_rows:
                n_rows.append(n)
            f = float(total[0]) / n
            g = total[1] / n
            if c is not None:
                f += float(c @ (theta * theta))
                g = g + 2.0 * c * theta
            return f, g

        def value_grad(theta: F64) -> tuple[float, F64]:
            total, n = self._pass(
                source, lambda ch: self.chunk_value_grad(ch, kind, theta), chunk_rows
            )
            return finish(total, n, theta)

        def value_grad_hess(theta: F64) -> tuple[float, F64, F64]:
            total, n = self._pass(
                source, lambda ch: self.chunk_value_grad_hess(ch, kind, theta), chunk_rows
            )
            f, g = finish(total, n, theta)
            h = total[2] / n
            if c is not None:
                h[np.diag_indices_from(h)] += 2.0 * c
            return f, g, h

        def hessp(theta: F64, v: F64) -> F64:
            total, n = self._pass(
                source, lambda ch: self.chunk_hessp(ch, kind, theta, v), chunk_rows
            )
            hv: F64 = total[0] / n
            if c is not None:
                hv = hv + 2.0 * c * v
            return hv

        return value_grad, value_grad_hess, hessp, n_rows

    def preconditioner(
        self, source: PredictionSource, chunk_rows: int | None
    ) -> Callable[[F64], Callable[[F64], F64]]:
        """``theta ↦ (v ↦ M⁻¹ v)``: one pass assembles the per-class diagonal blocks of the
        mean objective's Hessian at ``theta`` (:meth:`chunk_hess_blocks`), factorised once."""
        kind = source.kind
        c = self.penalty()

        def build(theta: F64) -> Callable[[F64], F64]:
            total, n = self._pass(
                source, lambda ch: self.chunk_hess_blocks(ch, kind, theta), chunk_rows
            )
            return self._inverse_blocks(total[0] / n, c)

        return build

    def _inverse_blocks(self, blocks: F64, c: F64 | None) -> Callable[[F64], F64]:
        """``v ↦ M⁻¹ v`` for the mean per-class blocks (or diagonals) of the Hessian plus the
        penalty's ``2 c`` (a ridge of ``1e-8`` times the largest diagonal keeps ``M`` positive
        definite; a block that Cholesky still refuses falls back to its diagonal)."""
        k = self.n_classes
        vector = self.structure == "vector"
        pen = None if c is None else (c.reshape(2, k).T if vector else c.reshape(k, k + 1))
        if blocks.ndim == 2:  # diagonals only
            dg = blocks if pen is None else blocks + 2.0 * pen
            dg = dg + 1e-8 * float(np.max(dg, initial=0.0)) + 1e-300
            inv_d = 1.0 / dg

            def apply_diag(v: F64) -> F64:
                return (v.reshape(k, k + 1) * inv_d).ravel()

            return apply_diag
        m = blocks.copy()
        size = m.shape[1]
        idx = np.arange(size)
        if pen is not None:
            m[:, idx, idx] += 2.0 * pen
        m[:, idx, idx] += 1e-8 * float(np.max(m[:, idx, idx], initial=0.0)) + 1e-300
        inv = np.empty_like(m)
        for j in range(k):  # K small factorisations (at most K (K+1)³ flops, once per iteration)
            try:
                chol = np.linalg.cholesky(m[j])
                ic = np.linalg.inv(chol)
                inv[j] = ic.T @ ic
            except np.linalg.LinAlgError:
                inv[j] = np.diag(1.0 / np.diag(m[j]))

        def apply_blocks(v: F64) -> F64:
            vb = v.reshape(2, k).T if vector else v.reshape(k, k + 1)
            out: F64 = np.matmul(inv, vb[:, :, None])[:, :, 0]
            res: F64 = (out.T if vector else out).ravel()
            return res

        return apply_blocks


def _initial(
    problem: LinearProblem, source: PredictionSource, chunk_rows: int | None
) -> tuple[F64, int]:
    """The temperature-scaling solution as parameters, and the passes it took."""
    from calibkit.calibrators.temperature import fit_temperature

    k = problem.n_classes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its own fit's remarks (clamped, zeros) are not ours
        ts = fit_temperature(source, chunk_rows=chunk_rows)
    beta = 1.0 / ts.temperature
    weights = np.full(k, beta) if problem.structure == "vector" else np.eye(k) * beta
    passes = ts.fit.passes if ts.fit is not None else 0
    return problem.join(weights, np.zeros(k)), passes


def fit_linear(
    problem: LinearProblem,
    source: PredictionSource,
    *,
    chunk_rows: int | None = None,
    max_iter: int = DEFAULT_MAX_ITER,
    max_passes: int = DEFAULT_MAX_PASSES,
    solver: str | None = None,
    init: F64 | None = None,
) -> tuple[F64, F64, FitOutcome]:
    """Minimise ``problem``'s objective on ``source``: ``(weights, bias, outcome)``.

    ``solver``: ``"newton"`` (exact Hessian) or ``"newton-cg"`` (Hessian-vector passes);
    by default Newton up to :data:`NEWTON_MAX_PARAMS` parameters. ``init``: the start
    (default: the temperature-scaling solution, whose passes are counted).
    """
    from calibkit.calibrators.optimize import minimize

    vg, vgh, hvp, n_rows = problem.evaluators(source, chunk_rows)
    extra = 0
    if init is None:
        x0, extra = _initial(problem, source, chunk_rows)
    else:
        x0 = np.array(init, dtype=np.float64)
    use = solver or ("newton" if problem.n_params <= NEWTON_MAX_PARAMS else "newton-cg")
    if use not in ("newton", "newton-cg"):
        raise UsageError(f"unknown solver {use!r} (newton, newton-cg)")
    res = minimize(
        x0,
        value_grad=vg,
        value_grad_hess=vgh if use == "newton" else None,
        hessp=hvp if use == "newton-cg" else None,
        preconditioner=problem.preconditioner(source, chunk_rows) if use == "newton-cg" else None,
        max_iter=max_iter,
        max_passes=max(1, max_passes - extra),
        project=problem.project,
    )
    gnorm = res.gradient_norm
    theta = res.x
    if res.reason == "converged" or (
        res.reason == "no progress" and gnorm <= 1e-8 * max(1.0, abs(res.f))
    ):
        message = "converged"
    elif res.reason in ("max_iter", "max_passes"):
        limit = max_iter if res.reason == "max_iter" else max_passes
        message = f"stopped at {res.reason}={limit}"
        if not problem.regularised:
            size = float(np.max(np.abs(theta)))
            message += (
                f" before the gradient tolerance (NLL {res.f:.4g}, largest |parameter| "
                f"{size:.3g}); unregularised scaling has no minimum when one map separates the "
                "classes (the NLL keeps falling as the weights grow, the parameters overfit): "
                "raise max_iter/max_passes to see whether it converges, or use the ODIR method"
            )
    elif res.reason == "non-finite":
        message = "stopped: the objective or its gradient is not finite"
    else:
        message = "stopped: no further decrease in float64 before the gradient tolerance"
    outcome = FitOutcome(
        objective=res.f,
        gradient_norm=gnorm,
        iterations=res.iterations,
        passes=res.passes + extra,
        solver=res.solver,
        message=message,
        n=n_rows[0] if n_rows else None,
    )
    w, b = problem.split(theta)
    return w.copy(), b.copy(), outcome


# -- the calibrator ------------------------------------------------------------------------------


def _number(name: str, value: Any, *, minimum: float = 0.0, integer: bool = False) -> Any:
    where = Param("params").entry(name)
    if integer:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise UsageError(where + f": must be an integer >= 1; got {value!r}")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(where + f": must be a finite number; got {value!r}")
    if value < minimum:
        raise UsageError(where + f": must be >= {minimum:g}; got {value!r}")
    return float(value)


@dataclass(frozen=True, eq=False)
class LinearCalibrator(CalibratorBase):
    """A fitted linear calibrator (see the module docstring): ``weights`` (``w``, shape
    ``(K,)``, or ``W``, ``(K, K)``) and ``bias`` (``b``, ``(K,)``).

    Subclasses set ``method``, the titles, ``structure`` and ``feature``, ``regularised``.
    """

    structure: ClassVar[Structure] = "matrix"
    feature: ClassVar[Feature] = "logits"
    regularised: ClassVar[bool] = False
    weights_key: ClassVar[str] = "W"
    changes_argmax: ClassVar[bool] = True
    output_kind: ClassVar[ScoreKind] = "logits"
    #: a weight (or a row of weights) per class: refused on ragged inputs
    class_wise: ClassVar[bool] = True

    weights: F64
    bias: F64
    n_classes: int | None = None
    fit: FitOutcome | None = None
    fitted_on: str | None = None
    input_kind: ScoreKind | None = None
    lam: float | None = None
    mu: float | None = None
    floor: float | None = None
    cv: dict[str, Any] | None = None
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    calibkit_version: str = __version__

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.float64)
        b = np.asarray(self.bias, dtype=np.float64)
        problem = _shape_problem(type(self), w, b)
        if problem:
            raise UsageError(f"{self.title}: {problem}")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "bias", b)
        if self.n_classes is None:
            object.__setattr__(self, "n_classes", int(b.shape[0]))

    # -- the problem --

    @classmethod
    def problem(
        cls,
        n_classes: int,
        *,
        lam: float = 0.0,
        mu: float = 0.0,
        floor: float | None = None,
        source_name: str = "<scores>",
    ) -> LinearProblem:
        return LinearProblem(
            structure=cls.structure,
            n_classes=n_classes,
            feature=cls.feature,
            lam=lam,
            mu=mu,
            regularised=cls.regularised,
            floor=floor,
            source_name=source_name,
        )

    def _problem(self) -> LinearProblem:
        k = int(self.bias.shape[0])
        return self.problem(k, lam=self.lam or 0.0, mu=self.mu or 0.0, floor=self.floor)

    @property
    def theta(self) -> F64:
        return self._problem().join(self.weights, self.bias)

    # -- the Calibrator protocol --

    @classmethod
    def fit_source(
        cls,
        source: PredictionSource,
        *,
        chunk_rows: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> Self:
        """Fit on ``source`` (``device`` is not used: numpy/BLAS on the CPU). ``options``:
        the :attr:`hyperparameters` (``lambda``/``lam``, ``mu`` for ODIR; ``floor`` for
        Dirichlet; ``max_iter``, ``max_passes``; ``folds``, ``seed`` for the
        cross-validation) and ``solver`` (``"newton"``/``"newton-cg"``, for benchmarks)."""
        opts = cls._options(options)
        require_scores(source, cls.title)
        refuse_ragged(source, cls.title)  # a weight (or row of weights) per class
        k = int(source.n_classes)
        if k < 2:
            raise InputError(source.source, f"{cls.title} needs at least 2 classes")
        floor = opts.get("floor")
        if cls.feature == "log_probs" and source.kind == "probs" and floor is None:
            _refuse_zero_probs(cls, source, chunk_rows)
        lam = opts.get("lambda", 0.0)
        mu = opts.get("mu", 0.0)
        cv_doc: dict[str, Any] | None = None
        if cls.regularised and ("lambda" not in opts or "mu" not in opts):
            from calibkit.calibrators.cv import cross_validate, odir_grid

            grid = odir_grid(k, lambda_=opts.get("lambda"), mu=opts.get("mu"))
            fixed = {
                key: opts[key]
                for key in ("max_iter", "max_passes", "floor", "solver")
                if key in opts
            }
            cv = cross_validate(
                cls,
                source,
                grid,
                folds=opts.get("folds", 5),
                seed=opts.get("seed", 0),
                chunk_rows=chunk_rows,
                **fixed,
            )
            lam, mu = float(cv.chosen["lambda"]), float(cv.chosen["mu"])
            cv_doc = cv.to_dict()
        problem = cls.problem(k, lam=lam, mu=mu, floor=floor, source_name=source.source)
        w, b, outcome = fit_linear(
            problem,
            source,
            chunk_rows=chunk_rows,
            max_iter=opts.get("max_iter", DEFAULT_MAX_ITER),
            max_passes=opts.get("max_passes", DEFAULT_MAX_PASSES),
            solver=opts.get("solver"),
        )
        return cls(
            w,
            b,
            n_classes=k,
            fit=outcome,
            fitted_on=source.source,
            input_kind=source.kind if source.kind in ("logits", "probs") else None,
            lam=lam if cls.regularised else None,
            mu=mu if cls.regularised else None,
            floor=floor,
            cv=cv_doc,
        )

    @classmethod
    def _options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        specs = {s.name: s for s in cls.hyperparameters}
        aliases = {a: s.name for s in cls.hyperparameters for a in s.aliases}
        out: dict[str, Any] = {}
        for name, value in options.items():
            key = aliases.get(name, name)
            if key == "solver":
                if value not in (None, "newton", "newton-cg"):
                    raise UsageError(f"unknown solver {value!r} (newton, newton-cg)")
                if value is not None:
                    out["solver"] = value
                continue
            if key not in specs:
                known = ", ".join(specs) or "none"
                raise UsageError(
                    Param("params").entry(name)
                    + f": {cls.method!r} has no parameter {name!r} (its parameters: {known})"
                )
            if value is None:
                continue
            if key in out:
                raise UsageError(Param("params").entry(key) + ": given twice")
            spec = specs[key]
            if isinstance(value, str):
                value = spec.parse(value)
            if spec.kind is int:
                out[key] = _number(key, value, integer=True)
            elif key == "floor":
                v = _number(key, value)
                if not 0 < v < 1:
                    raise UsageError(Param("params").entry(key) + f": must be in (0, 1); got {v!r}")
                out[key] = v
            else:
                out[key] = _number(key, value)
        return out

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, float]) -> Self:
        raise UsageError(
            f"{cls.title} has array parameters ({cls.weights_key} and b): read it from its "
            "calibrator JSON (the one its fit wrote)"
        )

    def parameters(self) -> dict[str, float]:
        out = {"n_parameters": float(self.weights.size + self.bias.size)}
        if self.regularised:
            out["lambda"] = float(self.lam if self.lam is not None else math.nan)
            out["mu"] = float(self.mu if self.mu is not None else math.nan)
        return out

    def calibrated_logits(self, scores: NDArray[Any], kind: str) -> F64:
        """``w ⊙ x + b`` or ``W x + b`` of the chunk's features, float64."""
        s = np.asarray(scores)
        if s.ndim != 2 or s.shape[1] != self.bias.shape[0]:
            raise UsageError(
                f"{self.title} was fitted on {self.bias.shape[0]} classes; "
                f"got scores of shape {s.shape}"
            )
        problem = self._problem()
        return problem.apply(problem.features(s, kind), self.theta)

    def fit_details(self) -> dict[str, Any]:
        return {
            **self.parameters(),
            "fitted_on": self.fitted_on,
            "fit": self.fit.to_dict() if self.fit is not None else None,
            "cv": self.cv,
            "floor": self.floor,
        }

    # -- the JSON document --

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "calibkit_calibrator": CALIBRATOR_FORMAT,
            "method": self.method,
            "n_classes": self.n_classes,
            "input": self.input_kind,
            "fitted_on": self.fitted_on,
            "n": self.fit.n if self.fit is not None else None,
            self.weights_key: self.weights.tolist(),
            "b": self.bias.tolist(),
        }
        if self.regularised:
            doc["lambda"], doc["mu"] = self.lam, self.mu
        if self.feature == "log_probs":
            doc["floor"] = self.floor
        doc["fit"] = self.fit.to_dict() if self.fit is not None else None
        doc["cv"] = self.cv
        doc["created"] = self.created
        doc["calibkit_version"] = self.calibkit_version
        return doc

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<calibrator>") -> Self:
        check_document(doc, source, cls.method)
        k = doc.get("n_classes")
        if type(k) is not int or k < 2:
            raise InputError(source, f"n_classes must be an integer >= 2; got {k!r}")
        w = _read_array(doc, cls.weights_key, (k,) if cls.structure == "vector" else (k, k), source)
        b = _read_array(doc, "b", (k,), source)
        lam = mu = floor = None
        if cls.regularised:
            lam = _read_scalar(doc, "lambda", source, optional=False)
            mu = _read_scalar(doc, "mu", source, optional=False)
        if cls.feature == "log_probs":
            floor = _read_scalar(doc, "floor", source, optional=True)
            if floor is not None and not 0 < floor < 1:
                raise InputError(source, f"floor must be in (0, 1); got {floor!r}")
        kind = document_input(doc, source)
        cv = doc.get("cv")
        if cv is not None and not isinstance(cv, dict):
            raise InputError(source, "its 'cv' must be a JSON object")
        fitted_on = doc.get("fitted_on")
        return cls(
            w,
            b,
            n_classes=k,
            fit=FitOutcome.from_dict(doc.get("fit"), source=source),
            fitted_on=fitted_on if isinstance(fitted_on, str) else None,
            input_kind=kind,
            lam=lam,
            mu=mu,
            floor=floor,
            cv=cv,
            created=str(doc.get("created", "")),
            calibkit_version=str(doc.get("calibkit_version", "")),
        )


def _shape_problem(cls: type[LinearCalibrator], w: F64, b: F64) -> str | None:
    if b.ndim != 1 or b.shape[0] < 2:
        return f"b must be a vector of K >= 2 numbers; got shape {b.shape}"
    k = b.shape[0]
    want = (k,) if cls.structure == "vector" else (k, k)
    if w.shape != want:
        return f"{cls.weights_key} must have shape {want}; got {w.shape}"
    if not (np.isfinite(w).all() and np.isfinite(b).all()):
        return "the parameters must be finite"
    return None


def _read_array(doc: dict[str, Any], key: str, shape: tuple[int, ...], source: str) -> F64:
    value = doc.get(key)
    if value is None:
        raise InputError(source, f"{key!r} is missing")

    def ok(v: Any, dims: tuple[int, ...]) -> bool:
        if not dims:
            return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
        return isinstance(v, list) and len(v) == dims[0] and all(ok(e, dims[1:]) for e in v)

    if not ok(value, shape):
        want = " x ".join(str(s) for s in shape)
        raise InputError(
            source, f"{key!r} must be a {want} array of finite numbers (n_classes = {shape[0]})"
        )
    return np.asarray(value, dtype=np.float64)


def _read_scalar(doc: dict[str, Any], key: str, source: str, *, optional: bool) -> float | None:
    v = doc.get(key)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise InputError(source, f"{key} must be a finite number >= 0; got {v!r}")
    return float(v)


def _refuse_zero_probs(
    cls: type[LinearCalibrator], source: PredictionSource, chunk_rows: int | None
) -> None:
    """One cheap pass: stored probabilities of exactly 0 have no log (a one-line error)."""
    found: list[tuple[int, int]] = []

    def work(chunk: Chunk) -> tuple[int, int]:
        zero = (chunk.scores == 0).any(axis=1)
        return int(zero.sum()), (chunk.start + int(np.argmax(zero))) if zero.any() else -1

    def merge(part: tuple[int, int]) -> None:
        found.append(part)

    run_pass(source, work, merge, chunk_rows=chunk_rows)
    rows = sum(c for c, _ in found)
    if rows:
        first = next(r for c, r in found if c)
        raise InputError(
            source.source,
            f"{cls.title} takes log p, and {rows} rows hold probabilities of exactly 0 (first: "
            f"row {first}); save logits, or give "
            + Param("params").entry("floor")
            + "=VALUE (e.g. 1e-12) to read 0 as that probability",
        )
