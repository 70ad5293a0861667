"""A streaming minimiser for smooth convex objectives: Newton's method, exact or truncated.

The linear calibrators (:mod:`calibkit.calibrators.linear`) minimise a mean NLL plus a
quadratic penalty whose value, gradient, Hessian and Hessian-vector products each cost one
streaming pass over the data. :func:`minimize` chooses the solver by what the caller gives:

* ``value_grad_hess`` (one pass: value, gradient and the full Hessian, assembled per chunk with
  BLAS): **Newton's method** with a backtracking line search; used when the parameters are few
  (the Hessian fits in memory and is cheap to assemble). Near the optimum every iteration is one
  pass and the convergence is quadratic.
* ``hessp`` (one pass per Hessian-vector product): **truncated Newton** (Newton-CG): the
  Newton system is solved by conjugate gradients to a relative residual
  ``min(0.5, sqrt(|g|))`` (Eisenstat-Walker forcing, superlinear convergence), stopped on
  non-positive curvature, then a backtracking line search on the value. Memory is a few
  parameter vectors; used for large problems (``matrix`` at ``K = 1000``: 10⁶ parameters).
  With a ``preconditioner`` (one more pass per Newton iteration: the caller's block-diagonal
  or diagonal approximation of the Hessian) the conjugate gradients are preconditioned (PCG),
  which cuts the Hessian-vector passes of an ill-conditioned system many times over.

Both stop when the infinity norm of the gradient is at most ``polish`` times ``max(1, |f|)``
(smaller than the convergence rule of :mod:`calibkit.calibrators.outcome`, so that a converged
fit is also stable to many digits), when a line search cannot decrease ``f`` any more (float64
has been reached), or at ``max_iter`` iterations / ``max_passes`` passes (an objective with no
minimum never converges: the fit says so). Each call of the caller's functions is one pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Minimum", "minimize"]

Vector = NDArray[np.float64]
ValueGrad = Callable[[Vector], tuple[float, Vector]]
ValueGradHess = Callable[[Vector], tuple[float, Vector, NDArray[np.float64]]]
HessVec = Callable[[Vector, Vector], Vector]
Preconditioner = Callable[[Vector], Callable[[Vector], Vector]]

#: Inner tolerance: keep iterating (cheaply, near the optimum) to this relative gradient.
POLISH = 1e-11
#: Armijo's sufficient-decrease constant.
ARMIJO = 1e-4
#: Most halvings of a step in one line search.
MAX_HALVINGS = 40


@dataclass(kw_only=True)
class Minimum:
    """Where :func:`minimize` stopped: ``x``, ``f``, ``gradient`` there, ``iterations``,
    ``passes`` (calls of the caller's functions), ``solver`` and ``reason`` (``"converged"``,
    ``"max_iter"``, ``"max_passes"``, ``"no progress"``)."""

    x: Vector
    f: float
    gradient: Vector
    iterations: int
    passes: int
    solver: str
    reason: str

    @property
    def gradient_norm(self) -> float:
        return float(np.max(np.abs(self.gradient))) if self.gradient.size else 0.0


class _Budget(Exception):
    """The pass budget ran out."""


def minimize(
    x0: Vector,
    *,
    value_grad: ValueGrad,
    value_grad_hess: ValueGradHess | None = None,
    hessp: HessVec | None = None,
    max_iter: int = 100,
    max_passes: int = 2000,
    polish: float = POLISH,
    max_cg: int | None = None,
    project: Callable[[Vector], Vector] | None = None,
    preconditioner: Preconditioner | None = None,
) -> Minimum:
    """Minimise a smooth convex function from ``x0`` (see the module docstring).

    Give ``value_grad_hess`` for Newton's method with the exact Hessian, else ``hessp(x, v)``
    (the Hessian at ``x`` times ``v``) for truncated Newton; ``value_grad`` always.
    ``project`` removes from each step the directions ``f`` does not depend on.
    ``preconditioner(x)`` (truncated Newton only; one pass, counted) returns a function
    applying ``M⁻¹`` (a symmetric positive definite approximation of the inverse Hessian at
    ``x``) to a vector: the conjugate gradients are then preconditioned (PCG), each
    preconditioned residual projected by ``project``.
    """
    passes = 0

    def counted_vg(x: Vector) -> tuple[float, Vector]:
        nonlocal passes
        if passes >= max_passes:
            raise _Budget
        passes += 1
        return value_grad(x)

    x = np.array(x0, dtype=np.float64)
    hess: NDArray[np.float64] | None = None
    if value_grad_hess is not None:
        passes += 1
        f, g, hess = value_grad_hess(x)
        solver = "newton"
    else:
        if hessp is None:
            raise ValueError("minimize needs value_grad_hess or hessp")
        f, g = counted_vg(x)
        solver = "newton-cg"
    iterations = 0
    reason = "max_iter"

    def done(fx: float, gx: Vector) -> bool:
        return bool(np.max(np.abs(gx), initial=0.0) <= polish * max(1.0, abs(fx)))

    try:
        while True:
            if not (math.isfinite(f) and np.isfinite(g).all()):
                reason = "non-finite"
                break
            if done(f, g):
                reason = "converged"
                break
            if iterations >= max_iter:
                reason = "max_iter"
                break
            if passes >= max_passes:
                reason = "max_passes"
                break
            iterations += 1
            if hess is not None:
                d = _newton_direction(hess, g)
            else:
                assert hessp is not None

                def hv(v: Vector, x: Vector = x) -> Vector:
                    nonlocal passes
                    if passes >= max_passes:
                        raise _Budget
                    passes += 1
                    return hessp(x, v)

                minv = None
                if preconditioner is not None:
                    if passes >= max_passes:
                        raise _Budget
                    passes += 1
                    minv = preconditioner(x)
                d = _cg_direction(
                    hv, g, max_cg or max(10, min(x.size, 250)), minv=minv, project=project
                )
            if project is not None:
                d = project(d)
            slope = float(g @ d)
            if not slope < 0:
                d = -g if project is None else project(-g)
                slope = float(g @ d)
                if not slope < 0:
                    reason = "no progress"
                    break
            step = 1.0
            accepted = False
            for _ in range(MAX_HALVINGS):
                x_new = x + step * d
                if value_grad_hess is not None:
                    if passes >= max_passes:
                        raise _Budget
                    passes += 1
                    f_new, g_new, h_new = value_grad_hess(x_new)
                else:
                    f_new, g_new = counted_vg(x_new)
                    h_new = None
                if math.isfinite(f_new) and f_new <= f + ARMIJO * step * slope:
                    accepted = True
                    break
                if (
                    math.isfinite(f_new)
                    and f_new <= f + 8 * np.finfo(float).eps * max(1.0, abs(f))
                    and np.max(np.abs(g_new), initial=0.0) < np.max(np.abs(g), initial=0.0)
                ):  # at float64's resolution of f: a smaller gradient is progress
                    accepted = True
                    break
                step *= 0.5
            if not accepted:
                reason = "no progress"
                break
            x, f, g, hess = x_new, f_new, g_new, h_new
    except _Budget:
        reason = "max_passes"
    return Minimum(
        x=x, f=f, gradient=g, iterations=iterations, passes=passes, solver=solver, reason=reason
    )


def _newton_direction(hess: NDArray[np.float64], g: Vector) -> Vector:
    """Solve ``H d = -g`` for a positive semi-definite ``H`` (singular along the directions the
    objective does not depend on, e.g. adding a constant to every logit): Cholesky of ``H``
    plus a tiny ridge, least squares when that fails."""
    import scipy.linalg

    n = hess.shape[0]
    scale = float(np.max(np.abs(np.diag(hess)), initial=0.0)) or 1.0
    ridge = 1e-12 * scale
    a = hess + ridge * np.eye(n)
    try:
        c = scipy.linalg.cho_factor(a, lower=True, check_finite=False)
        d: Vector = -scipy.linalg.cho_solve(c, g, check_finite=False)
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        d = -np.asarray(np.linalg.lstsq(hess, g, rcond=None)[0], dtype=np.float64)
    return d


def _cg_direction(
    hv: Callable[[Vector], Vector],
    g: Vector,
    max_cg: int,
    *,
    minv: Callable[[Vector], Vector] | None = None,
    project: Callable[[Vector], Vector] | None = None,
) -> Vector:
    """Truncated (preconditioned) conjugate gradients on ``H d = -g`` from ``d = 0``
    (Steihaug's stopping on non-positive curvature; the steepest descent direction if that
    happens at once). ``minv`` applies the preconditioner ``M⁻¹``; its output is projected by
    ``project`` (so the iterates stay off the directions ``f`` does not depend on, where ``H``
    is singular: the preconditioner is then ``P M⁻¹ P``, positive definite on the rest). The
    stopping rule reads the plain residual ``|H d + g|``, preconditioned or not."""
    gnorm = float(np.linalg.norm(g))
    tol = min(0.5, math.sqrt(gnorm)) * gnorm

    def precondition(r: Vector) -> Vector:
        if minv is None:
            return r.copy()
        z = np.asarray(minv(r), dtype=np.float64)
        return project(z) if project is not None else z

    d = np.zeros_like(g)
    r = -g.copy()
    z = precondition(r)
    p = z.copy()
    rz = float(r @ z)
    if not rz > 0:  # a preconditioner that is not positive on r: plain CG
        minv = None
        z = r.copy()
        p = z.copy()
        rz = float(r @ z)
    for _ in range(max_cg):
        hp = hv(p)
        curv = float(p @ hp)
        if curv <= 1e-300 * max(1.0, float(p @ p)):
            return d if d.any() else -g
        alpha = rz / curv
        d += alpha * p
        r -= alpha * hp
        if math.sqrt(float(r @ r)) <= tol:
            break
        z = precondition(r)
        rz_new = float(r @ z)
        if not rz_new > 0:
            break
        p *= rz_new / rz
        p += z
        rz = rz_new
    return d
