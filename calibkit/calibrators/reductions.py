"""Binary calibration maps on multiclass predictions: the reductions shared by ``histogram``,
``isotonic``, ``platt`` and ``beta``.

Each of those methods fits a map ``f: [0, 1] -> [0, 1]`` (or, for Platt and beta, a map of the
binary log-odds) on pairs (score, target); a *reduction* says which pairs a ``K``-class model
gives and how the maps' outputs become a distribution again. It is the hyper-parameter
``reduction``:

``binary`` (the default for ``K = 2``)
    One map of the positive class: fitted on ``(p_1, [y = 1])``, applied as
    ``(1 - f(p_1), f(p_1))``. Only for ``K = 2`` (on ``K > 2`` a one-line error). A map that
    crosses 1/2 elsewhere than the identity does can change the argmax.
``top`` (top-versus-all; the default for ``K > 2``: it keeps the accuracy)
    One map fitted on ``(c, correct)`` with ``c = max_k p_k`` the top-label confidence and
    ``correct`` whether the top class is the label. Applied to each row: the top class gets
    ``q = f(c)``, the other classes share ``1 - q`` in proportion to their probabilities. The
    argmax never changes, by this rule: ``q`` is raised to at least
    ``q* = p_2 / (1 - p_1 + p_2)`` (``p_1`` the top probability, ``p_2`` the runner-up's), the
    least value at which the top class is still as large as the runner-up after the rescaling
    (``q* >= 1/K`` always: the runner-up is at least the mean of the others); when the top class
    then equals (in float64) the largest other class, it is set to the next float64 above that
    one, so the original argmax is the *unique* maximum of every output row (``np.argmax``
    picks it whatever the ties of the input; the row sum moves by at most an ulp). A row whose
    other classes are all exactly 0 shares ``1 - q`` among them equally (then ``q* = 1/K``).
    The calibrated confidence of a raised row is ``q*``, not ``f(c)``: a confidence below
    ``q*`` cannot be the top-label probability of a distribution with this argmax.
``ova`` (one-versus-all)
    One map per class ``k`` fitted on ``(p_k, [y = k])``, applied to every class and the row
    renormalised: ``q_k / sum_j q_j``. It can change the argmax (Guo et al. 2017 note that it
    hurts accuracy); a row where every map gives 0 becomes uniform (``1/K`` each: no class has
    any evidence left, and a uniform row is the distribution of maximum entropy).

With soft labels the targets are the label's probability mass (of the top class, of class 1,
of class ``k``) instead of 0/1 indicators.

The scores the maps see, from a chunk of logits ``z`` or probabilities ``p`` (float64):

* ``p`` of the column (the softmax of the logits; probabilities as stored);
* ``log p`` (log-softmax ``z_k - logsumexp(z)``; for probabilities ``log`` of the stored value);
* ``log(1 - p)``: for logits ``logsumexp(z_others) - logsumexp(z)`` for the top class (no
  cancellation however close ``p`` is to 1: ``|z| = 1e4`` is fine) and ``log1p(-p)`` for the
  others (``p <= 1/2`` there); for probabilities ``log`` of the sum of the other classes for the
  top class and ``log1p(-p)`` for the others. An exact 0 (a probability of 0, or a top class
  whose others are all 0) is read as the smallest positive number of the stored dtype
  (:func:`~calibkit.engine.sums.prob_floor`, as everywhere in calibkit), so its log is finite
  (``-744.4`` for float64, ``-103.3`` for float32);
* the binary log-odds ``log p - log(1 - p)`` (what Platt scaling is fitted on).

Confidence-only inputs (``kind = "confidence"``) are refused with a one-line error: the
methods' outputs are ``(n, K)`` distributions, which such rows cannot give.

:func:`fit_logistic` is the exact fit of the two logistic methods: Newton's method, damped
(Levenberg-Marquardt: a step that does not lower the NLL enough is refused and the next one is
damped towards a short gradient step, so saturated features such as the probability floor's
``+-744`` cannot make it diverge), on every map at once (the maps are independent problems),
each iteration one
streaming pass (:func:`~calibkit.engine.passes.run_pass`) that sums the mean NLL, its gradient
and its Hessian in float64, so memory is O(parameters + one chunk) and the result does not
depend on the chunk size beyond float64 rounding of the sums.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

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
from calibkit.calibrators.outcome import GRADIENT_TOLERANCE, FitOutcome
from calibkit.engine.executors import is_distributed
from calibkit.engine.passes import Chunk, run_pass
from calibkit.engine.sums import prob_floor
from calibkit.errors import InputError, Param, UsageError
from calibkit.metrics.selection import refuse_distributed
from calibkit.sources.predictions import PredictionSource, ScoreKind, refuse_ragged

__all__ = [
    "REDUCTIONS",
    "Columns",
    "ReducedCalibrator",
    "Reduction",
    "check_options",
    "collect_columns",
    "columns",
    "combine",
    "fit_logistic",
    "float_list",
    "reduction_hyperparameter",
    "resolve_reduction",
]

Reduction = Literal["binary", "top", "ova"]
REDUCTIONS: tuple[Reduction, ...] = ("binary", "top", "ova")


def reduction_hyperparameter() -> Hyperparameter:
    """The ``reduction`` fit option of the four binary methods."""
    return Hyperparameter(
        "reduction",
        str,
        "how a K-class model is reduced to binary maps: 'top' (top-versus-all: one map of the "
        "top-label confidence, the other classes rescaled; never changes the argmax), 'ova' "
        "(one map per class, renormalised; can change the argmax), 'binary' (the positive "
        "class of a K = 2 model); default 'binary' for K = 2, 'top' for K > 2",
        default=None,
        choices=REDUCTIONS,
    )


def resolve_reduction(value: Any, n_classes: int, title: str) -> Reduction:
    """The reduction to use on ``n_classes`` classes (``None``: the default, which keeps the
    accuracy: ``binary`` for K = 2, ``top`` otherwise); ``binary`` on K > 2 is a
    :class:`~calibkit.errors.UsageError`."""
    if value is None:
        return "binary" if n_classes == 2 else "top"
    if value not in REDUCTIONS:
        raise UsageError(
            Param("params").entry("reduction")
            + f": {value!r} is not one of {', '.join(REDUCTIONS)}"
        )
    if value == "binary" and n_classes != 2:
        raise UsageError(
            Param("params").entry("reduction")
            + f": {title} with reduction 'binary' needs K = 2 classes; these predictions have "
            f"K = {n_classes} (use reduction=top or reduction=ova)"
        )
    out: Reduction = value
    return out


def check_options(cls: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """The fit options of ``cls`` (its :attr:`hyperparameters`), defaults filled in; an unknown
    name or a bad value is a :class:`~calibkit.errors.UsageError` (``--param NAME``)."""
    specs: tuple[Hyperparameter, ...] = cls.hyperparameters
    by_name = {s.name: s for s in specs}
    unknown = sorted(set(options) - set(by_name))
    if unknown:
        known = ", ".join(by_name) or "none"
        raise UsageError(
            Param("params").entry(unknown[0])
            + f": {cls.method!r} has no parameter {unknown[0]!r} (its parameters: {known})"
        )
    out: dict[str, Any] = {}
    for spec in specs:
        value = options.get(spec.name, spec.default)
        if value is not None:
            where = Param("params").entry(spec.name)
            if spec.kind is str:
                if not isinstance(value, str):
                    raise UsageError(where + f": must be a string; got {value!r}")
                spec.parse(value)  # the choices
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UsageError(where + f": must be a number; got {value!r}")
            elif spec.kind is int and not isinstance(value, int):
                if not float(value).is_integer():
                    raise UsageError(where + f": must be an integer; got {value!r}")
                value = int(value)
                spec.parse(str(value))
            else:
                value = spec.parse(str(value))  # the range checks
        out[spec.name] = value
    return out


# -- the scores of the maps ----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Columns:
    """What the maps of one chunk see: one column per map (``M`` = 1 for ``top`` and
    ``binary``, ``K`` for ``ova``), each an ``(n, M)`` float64 array.

    ``probs`` is the chunk's ``(n, K)`` float64 distribution, ``top`` its argmax (first index on
    ties, of the logits for logit inputs, as the metrics read it); ``target`` the labels' mass
    on each column's class (``None`` without labels).
    """

    reduction: Reduction
    probs: NDArray[np.float64]
    top: NDArray[np.intp]
    p: NDArray[np.float64]
    log_p: NDArray[np.float64]
    log_1mp: NDArray[np.float64]
    target: NDArray[np.float64] | None = None

    @property
    def logit(self) -> NDArray[np.float64]:
        """The binary log-odds ``log p - log(1 - p)`` of each column."""
        out: NDArray[np.float64] = self.log_p - self.log_1mp
        return out


def _masked_logsumexp(z: NDArray[np.float64], rows: NDArray[np.intp], top: NDArray[np.intp]) -> Any:
    """``logsumexp`` of each row of ``z`` without its ``top`` entry."""
    w = z.copy()
    w[rows, top] = -np.inf
    m = w.max(axis=1)
    np.subtract(w, m[:, None], out=w)
    np.exp(w, out=w)
    return m + np.log(w.sum(axis=1))


def columns(
    scores: NDArray[Any], labels: NDArray[Any] | None, kind: str, reduction: Reduction
) -> Columns:
    """The :class:`Columns` of a validated ``(n, K)`` chunk of ``kind`` scores (see the module
    docstring for the logs and their floor)."""
    n, k = scores.shape
    rows = np.arange(n)
    if kind == "logits":
        z = scores.astype(np.float64)
        top = np.asarray(z.argmax(axis=1), dtype=np.intp)
        m = z[rows, top]
        e = np.exp(z - m[:, None])
        s = e.sum(axis=1)
        lse = m + np.log(s)
        probs = e / s[:, None]
        log_p_all = z - lse[:, None]
        top_1mp = _masked_logsumexp(z, rows, top) - lse
    else:
        floor = prob_floor(scores.dtype)
        probs = scores.astype(np.float64)
        top = np.asarray(probs.argmax(axis=1), dtype=np.intp)
        log_p_all = np.log(np.maximum(probs, floor))
        others = probs.copy()
        others[rows, top] = 0.0
        top_1mp = np.log(np.maximum(others.sum(axis=1), floor))
    if reduction == "ova":
        cls = None
        p = probs
        log_p = log_p_all
        with np.errstate(divide="ignore"):
            log_1mp = np.log1p(-np.minimum(p, 0.5))
        log_1mp[rows, top] = top_1mp
        if kind != "logits":
            floor = prob_floor(scores.dtype)
            big = p > 0.5
            log_1mp[big] = np.log(np.maximum(1.0 - p[big], floor))
            log_1mp[rows, top] = top_1mp
    else:
        cls = top if reduction == "top" else np.ones(n, dtype=np.intp)
        p = probs[rows, cls][:, None]
        log_p = log_p_all[rows, cls][:, None]
        if reduction == "top":
            log_1mp = top_1mp[:, None]
        else:
            is_top = top == 1
            lo = np.log1p(-np.minimum(p[:, 0], 0.5))
            if kind != "logits":
                lo = np.log(np.maximum(1.0 - p[:, 0], prob_floor(scores.dtype)))
                lo = np.where(p[:, 0] <= 0.5, np.log1p(-np.minimum(p[:, 0], 0.5)), lo)
            log_1mp = np.where(is_top, top_1mp, lo)[:, None]
    target = None
    if labels is not None:
        if labels.ndim == 1:
            if cls is None:
                target = (labels[:, None] == np.arange(k)[None, :]).astype(np.float64)
            else:
                target = (labels == cls).astype(np.float64)[:, None]
        else:
            t = labels.astype(np.float64)
            target = t if cls is None else t[rows, cls][:, None]
    return Columns(reduction, probs, top, p, log_p, log_1mp, target)


def combine(cols: Columns, q: NDArray[np.float64]) -> NDArray[np.float64]:
    """The ``(n, K)`` calibrated distribution from the maps' outputs ``q`` (``(n, M)``, clipped
    to [0, 1]), by the reduction's rule (module docstring)."""
    q = np.clip(q, 0.0, 1.0)
    probs = cols.probs
    n, k = probs.shape
    out: NDArray[np.float64]
    if cols.reduction == "binary":
        out = np.empty((n, 2))
        out[:, 1] = q[:, 0]
        out[:, 0] = 1.0 - q[:, 0]
        return out
    if cols.reduction == "ova":
        s = q.sum(axis=1)
        dead = s == 0
        out = q / np.where(dead, 1.0, s)[:, None]
        out[dead] = 1.0 / k
        return out
    rows = np.arange(n)
    top = cols.top
    others = probs.copy()
    others[rows, top] = 0.0
    r = others.sum(axis=1)
    empty = r == 0
    if empty.any():
        others[empty] = 1.0
        others[empty, top[empty]] = 0.0
        r = np.where(empty, k - 1.0, r)
    share = others / r[:, None]  # each other class's share of the rest (r may be subnormal)
    s2 = share.max(axis=1)  # the runner-up's: p_2 / (1 - p_1)
    q_star = s2 / (1.0 + s2)  # = p_2 / (1 - p_1 + p_2)
    qt = np.maximum(q[:, 0], q_star)
    out = share * (1.0 - qt)[:, None]
    rest = out.max(axis=1)  # the top entry is 0 here
    qt = np.where(qt > rest, qt, np.nextafter(rest, 2.0))
    out[rows, top] = qt
    return out


def collect_columns(
    source: PredictionSource, reduction: Reduction, *, chunk_rows: int | None, logs: bool = False
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Every row's ``(p, target)`` of ``source`` (``(N, M)`` each; with ``logs`` the log-odds
    instead of ``p``): the in-memory data of the binning methods (O(N M) memory); refused on a
    cluster (:func:`~calibkit.engine.executors.is_distributed`)."""
    refuse_distributed(
        f"{source.source}: the binning calibrators (isotonic, histogram) fit on every row's "
        "score and target in memory"
    )
    parts: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []

    def work(chunk: Chunk) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        c = columns(chunk.scores, chunk.labels, source.kind, reduction)
        assert c.target is not None
        return (c.logit if logs else c.p), c.target

    run_pass(
        source,
        work,
        parts.append,
        chunk_rows=chunk_rows,
        description=f"{source.source}: binning fit",
    )
    if not parts:
        raise InputError(source.source, "no rows: the predictions are empty")
    return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])


# -- the exact logistic fit (platt, beta) --------------------------------------------------------

#: Most float64 numbers (features and targets of every row) a logistic fit keeps in memory
#: (32 MiB): within it, one pass reads them and Newton's method runs on them in memory (the
#: same sums, so the same optimum); beyond it, every iteration is a streaming pass.
IN_MEMORY_ELEMENTS = 1 << 22
#: A map whose mean NLL ends below this separates its data (said in the fit's message).
SEPARABLE_NLL = 1e-8
#: Newton iterations (each one pass) before a logistic fit gives up.
MAX_ITERATIONS = 100
#: A problem stops once its gradient is this far below the convergence rule's tolerance.
_INNER = 1e-2


@dataclass(frozen=True)
class Problem:
    """One logistic problem: the map of column ``column`` with the parameters ``free`` (the
    others held at 0, the bound of beta calibration's constraint), started at ``start``."""

    column: int
    free: tuple[bool, ...]
    start: tuple[float, ...]


@dataclass
class _State:
    theta: NDArray[np.float64]  # (P, d)
    f: NDArray[np.float64]
    g: NDArray[np.float64]  # (P, d), the gradient of the free parameters (0 elsewhere)
    g_full: NDArray[np.float64]
    h: NDArray[np.float64]  # (P, d, d)


def _softplus(s: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = np.logaddexp(0.0, s)
    return out


def _sums(
    x: NDArray[np.float64], t: NDArray[np.float64], theta: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Sums over the rows of the NLL, its gradient and Hessian for every problem: ``x`` is
    ``(n, P, d)``, ``t`` ``(n, P)``, ``theta`` ``(P, d)``; BLAS products, no loop."""
    s = np.einsum("npd,pd->np", x, theta)
    nll = _softplus(s) - t * s
    sig = np.exp(-_softplus(-s))  # sigmoid(s), stable both ways
    w = sig * (1.0 - sig)
    xt = x.transpose(1, 0, 2)  # (P, n, d)
    grad = np.matmul((sig - t).T[:, None, :], xt)[:, 0, :]
    hess = np.matmul((xt * w.T[:, :, None]).transpose(0, 2, 1), xt)
    return nll.sum(axis=0), grad, hess


def fit_logistic(
    source: PredictionSource,
    reduction: Reduction,
    design: Callable[[Columns], NDArray[np.float64]],
    problems: Sequence[Problem],
    *,
    chunk_rows: int | None,
    description: str,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], int, int, int]:
    """Minimise, for each problem, the mean NLL of ``sigmoid(x . theta)`` against the targets of
    its column (``x = design(columns)[:, column, :]``), by damped Newton (Levenberg-Marquardt);
    all problems share the passes.

    Data of at most :data:`IN_MEMORY_ELEMENTS` feature numbers are read once and fitted in
    memory (``passes`` is then 1). Returns ``(theta (P, d), objective (P,), projected gradient
    inf-norm (P,), iterations, passes, rows)``: the projected gradient is the free parameters'
    gradient and, for a parameter held at 0, ``max(0, -dNLL/dtheta)`` (the KKT residual of
    ``theta >= 0``).
    """
    n_prob = len(problems)
    cols_idx = np.array([p.column for p in problems], dtype=np.intp)
    free = np.array([p.free for p in problems], dtype=bool)
    d = free.shape[1]
    passes = 0
    rows = 0

    kept: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
    try:
        size = int(source.n_rows) * n_prob * (d + 1)
    except (TypeError, ValueError):  # pragma: no cover - every source says
        size = IN_MEMORY_ELEMENTS + 1
    # small: one pass keeps the features, the fit runs in memory (never on a cluster, whose
    # passes send back sums only: there every iteration is a pass)
    if size <= IN_MEMORY_ELEMENTS and not is_distributed():
        parts: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []

        def keep(chunk: Chunk) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
            c = columns(chunk.scores, chunk.labels, source.kind, reduction)
            assert c.target is not None
            return design(c)[:, cols_idx, :], c.target[:, cols_idx]

        run_pass(
            source,
            keep,
            parts.append,
            chunk_rows=chunk_rows,
            description=f"{source.source}: {description}",
        )
        passes, rows = 1, sum(len(t) for _, t in parts)
        if rows == 0:
            raise InputError(source.source, "no rows: the predictions are empty")
        kept = (np.concatenate([x for x, _ in parts]), np.concatenate([t for _, t in parts]))
        del parts

    def evaluate(theta: NDArray[np.float64]) -> tuple[Any, Any, Any]:
        nonlocal passes, rows
        if kept is not None:  # the same sums, over the rows in memory (row order: exact)
            f, g, h = _sums(kept[0], kept[1], theta)
            return f / rows, g / rows, h / rows
        tot_f = np.zeros(n_prob)
        tot_g = np.zeros((n_prob, d))
        tot_h = np.zeros((n_prob, d, d))
        count = 0

        def work(chunk: Chunk) -> tuple[int, Any, Any, Any]:
            c = columns(chunk.scores, chunk.labels, source.kind, reduction)
            assert c.target is not None
            f, g, h = _sums(design(c)[:, cols_idx, :], c.target[:, cols_idx], theta)
            return chunk.rows, f, g, h

        def merge(part: tuple[int, Any, Any, Any]) -> None:
            nonlocal count
            count += part[0]
            tot_f.__iadd__(part[1])
            tot_g.__iadd__(part[2])
            tot_h.__iadd__(part[3])

        run_pass(
            source,
            work,
            merge,
            chunk_rows=chunk_rows,
            description=f"{source.source}: {description}",
        )
        passes += 1
        rows = count
        if count == 0:
            raise InputError(source.source, "no rows: the predictions are empty")
        return tot_f / count, tot_g / count, tot_h / count

    theta = np.array([p.start for p in problems], dtype=np.float64) * free
    f, g_all, h = evaluate(theta)
    iterations = 0
    damping = np.zeros(n_prob)  # Levenberg-Marquardt: 0 is Newton's step
    stalled = np.zeros(n_prob, dtype=bool)
    eye = np.eye(d)[None, :, :]

    def residual(g_all: Any) -> Any:
        held = np.maximum(0.0, -g_all) * ~free
        return np.abs(np.where(free, g_all, held)).max(axis=1)

    def done(f: Any, g_all: Any) -> Any:
        free_g = np.abs(np.where(free, g_all, 0.0)).max(axis=1)
        return (free_g <= GRADIENT_TOLERANCE * _INNER * np.maximum(1.0, np.abs(f))) | stalled

    while iterations < MAX_ITERATIONS:
        finished = done(f, g_all)
        if finished.all():
            break
        iterations += 1
        g = np.where(free, g_all, 0.0)
        hm = np.where(free[:, :, None] & free[:, None, :], h, 0.0)
        scale = np.abs(np.diagonal(hm, axis1=1, axis2=2)).max(axis=1) + np.abs(g).max(axis=1)
        lam = (damping * scale + 1e-13 * scale + 1e-300)[:, None, None]
        system = hm + eye * (~free)[:, :, None] + lam * eye * free[:, :, None]
        delta = -np.linalg.solve(system, g[:, :, None])[:, :, 0]
        delta = np.where(np.isfinite(delta), delta, 0.0) * free
        delta[finished] = 0.0
        trial = theta + delta
        f_t, g_t, h_t = evaluate(trial)
        slope = np.einsum("pd,pd->p", g, delta)
        ok = np.isfinite(f_t) & (f_t <= f + 1e-4 * slope) & ~finished
        theta = np.where(ok[:, None], trial, theta)
        f = np.where(ok, f_t, f)
        g_all = np.where(ok[:, None], g_t, g_all)
        h = np.where(ok[:, None, None], h_t, h)
        # a rejected step: damp (towards a short gradient step); an accepted one: undamp
        damping = np.where(ok, damping / 10, np.maximum(damping * 10, 1e-6))
        damping[damping < 1e-9] = 0.0
        stalled |= damping > 1e12  # no decrease even along a tiny gradient step: float64's end
    return theta, f, residual(g_all), iterations, passes, rows


# -- the calibrators' common part ----------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _ArgmaxFlag:
    """``changes_argmax``: on the class, ``True`` (some reduction can change the argmax); on an
    instance, whether its own reduction can (``top`` never does)."""

    def __get__(self, obj: Any, owner: Any = None) -> bool:
        if obj is None:
            return True
        return bool(obj.reduction != "top")


@dataclass(frozen=True, eq=False)
class ReducedCalibrator(CalibratorBase):
    """A calibrator made of binary maps and a reduction (see the module docstring).

    ``changes_argmax`` is ``True`` on the class (a one-versus-all or binary map can change the
    argmax) and, on an instance, says the truth for its reduction: ``False`` for ``top``.
    A subclass defines the maps: :meth:`map_values` (their outputs on a chunk's
    :class:`Columns`), :meth:`maps_to_json` and :meth:`maps_from_json`, :meth:`parameters`.
    """

    if TYPE_CHECKING:
        changes_argmax: ClassVar[bool]
    else:
        changes_argmax = _ArgmaxFlag()
    output_kind: ClassVar[ScoreKind] = "probs"

    maps: Any = None
    reduction: Reduction = "top"
    n_classes: int | None = None
    fitted_on: str | None = None
    input_kind: ScoreKind | None = None
    n: int | None = None
    outcome: FitOutcome | None = None
    created: str = field(default_factory=_now)
    calibkit_version: str = __version__

    @property
    def class_wise(self) -> bool:
        """Whether it holds a map per class (``ova``): refused on ragged inputs."""
        return self.reduction == "ova"

    # -- what a subclass gives --------------------------------------------------------------------

    def map_values(self, cols: Columns) -> NDArray[np.float64]:
        """The maps' outputs, ``(n, M)``, on a chunk's columns."""
        raise NotImplementedError

    def maps_to_json(self) -> list[Any]:
        raise NotImplementedError

    @classmethod
    def maps_from_json(cls, maps: list[Any], source: str) -> Any:
        raise NotImplementedError

    def extra_json(self) -> dict[str, Any]:
        """The method's own scalar keys of its document (e.g. ``bins``)."""
        return {}

    @classmethod
    def extra_from_json(cls, doc: dict[str, Any], source: str) -> dict[str, Any]:
        return {}

    # -- the protocol ----------------------------------------------------------------------------

    @classmethod
    def prepare(
        cls, source: PredictionSource, options: Mapping[str, Any]
    ) -> tuple[Reduction, dict[str, Any]]:
        """The checked options and the reduction for ``source`` (refusing confidence-only
        rows)."""
        require_scores(source, cls.title)
        opts = check_options(cls, options)
        reduction = resolve_reduction(opts.get("reduction"), source.n_classes, cls.title)
        if reduction == "ova":  # one map per class: class k is another thing in each question
            refuse_ragged(source, f"{cls.title} with reduction 'ova'")
        return reduction, opts

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, float]) -> Self:
        raise UsageError(
            f"{cls.title} is not given by scalar parameters (its maps are arrays): fit it, or "
            "read its calibrator JSON"
        )

    @property
    def n_maps(self) -> int:
        return int(self.n_classes or 0) if self.reduction == "ova" else 1

    def calibrated_scores(self, scores: NDArray[Any], kind: str) -> NDArray[np.float64]:
        """The calibrated ``(n, K)`` float64 probabilities (rows summing to 1) of a chunk."""
        scores = np.asarray(scores)
        if scores.ndim != 2 or scores.shape[1] < 2:
            raise UsageError(
                f"{self.title} needs (n, K) scores with K >= 2; got shape {scores.shape}"
            )
        k = scores.shape[1]
        if self.n_classes is not None and k != self.n_classes:
            raise UsageError(
                f"this {self.title} calibrator was fitted on K = {self.n_classes} classes; "
                f"these predictions have K = {k}"
            )
        if self.reduction == "binary" and k != 2:
            raise UsageError(f"{self.title} with reduction 'binary' needs K = 2; got K = {k}")
        cols = columns(scores, None, kind, self.reduction)
        return combine(cols, self.map_values(cols))

    def fit_details(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.parameters(),
            "reduction": self.reduction,
            "changes_argmax": self.changes_argmax,
            "fitted_on": self.fitted_on,
            "n": self.n,
        }
        if self.outcome is not None:
            out["fit"] = self.outcome.to_dict()
        return out

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "calibkit_calibrator": CALIBRATOR_FORMAT,
            "method": self.method,
            "reduction": self.reduction,
            **self.extra_json(),
            "parameters": self.parameters(),
            "fitted_on": self.fitted_on,
            "n": self.n,
            "n_classes": self.n_classes,
            "input": self.input_kind,
            "created": self.created,
            "calibkit_version": self.calibkit_version,
            "maps": self.maps_to_json(),
        }
        if self.outcome is not None:
            doc["fit"] = self.outcome.to_dict()
        return doc

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<calibrator>") -> Self:
        check_document(doc, source, cls.method)
        reduction = doc.get("reduction")
        if reduction not in REDUCTIONS:
            raise InputError(
                source, f"reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}"
            )
        k = doc.get("n_classes")
        if type(k) is not int or k < 2:
            raise InputError(source, f"n_classes must be an integer >= 2; got {k!r}")
        if reduction == "binary" and k != 2:
            raise InputError(source, f"reduction 'binary' needs n_classes = 2; got {k}")
        maps = doc.get("maps")
        want = k if reduction == "ova" else 1
        if not isinstance(maps, list) or len(maps) != want:
            got = len(maps) if isinstance(maps, list) else type(maps).__name__
            raise InputError(
                source,
                f"'maps' must be a list of {want} map(s) (reduction {reduction!r}); got {got}",
            )
        n = doc.get("n")
        if n is not None and (type(n) is not int or n < 0):
            raise InputError(source, f"n must be a non-negative integer; got {n!r}")
        kind = document_input(doc, source)
        fitted_on = doc.get("fitted_on")
        if fitted_on is not None and not isinstance(fitted_on, str):
            raise InputError(source, f"fitted_on must be a string; got {fitted_on!r}")
        return cls(
            maps=cls.maps_from_json(maps, source),
            reduction=reduction,
            n_classes=k,
            fitted_on=fitted_on,
            input_kind=kind,
            n=n,
            outcome=FitOutcome.from_dict(doc.get("fit"), source=source),
            created=str(doc.get("created", "")),
            calibkit_version=str(doc.get("calibkit_version", "")),
            **cls.extra_from_json(doc, source),
        )


def float_list(
    value: Any,
    source: str,
    what: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    size: int | None = None,
) -> NDArray[np.float64]:
    """A JSON list of finite numbers in ``[low, high]`` as float64 (an :class:`InputError`
    naming ``source`` and ``what`` otherwise)."""
    if not isinstance(value, list) or not value:
        raise InputError(source, f"{what} must be a non-empty list of numbers")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        raise InputError(source, f"{what} must hold numbers only")
    arr = np.asarray(value, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise InputError(source, f"{what} must hold finite numbers")
    if (arr < low).any() or (arr > high).any():
        raise InputError(source, f"{what} must lie in [{low:g}, {high:g}]")
    if size is not None and arr.size != size:
        raise InputError(source, f"{what} must hold {size} numbers; got {arr.size}")
    return arr


@dataclass(frozen=True, eq=False)
class LogisticCalibrator(ReducedCalibrator):
    """A reduced calibrator whose maps are ``sigmoid(x . theta)`` of a few features of each
    column (:meth:`design`), fitted exactly by :func:`fit_logistic` (``platt``, ``beta``).

    ``maps`` is a ``(M, d)`` float64 array, one row of :attr:`names` per map; the display
    parameters are those of the one map (``top``, ``binary``) or their means over the classes
    (``ova``; every map is in the JSON document).
    """

    #: The parameters of one map, in the order of :meth:`design`'s features.
    names: ClassVar[tuple[str, ...]] = ()
    #: Where each map's fit starts (the identity map).
    start: ClassVar[tuple[float, ...]] = ()

    @classmethod
    def design(cls, cols: Columns) -> NDArray[np.float64]:
        """The ``(n, M, d)`` features of a chunk's columns."""
        raise NotImplementedError

    @classmethod
    def solve(
        cls, source: PredictionSource, reduction: Reduction, m: int, chunk_rows: int | None
    ) -> tuple[NDArray[np.float64], FitOutcome]:
        """The ``(M, d)`` parameters and how the fit ended (the unconstrained fit)."""
        problems = [Problem(j, (True,) * len(cls.names), cls.start) for j in range(m)]
        theta, f, gnorm, it, passes, rows = fit_logistic(
            source, reduction, cls.design, problems, chunk_rows=chunk_rows, description=cls.title
        )
        return theta, outcome(f, gnorm, it, passes, rows)

    @classmethod
    def fit_source(
        cls,
        source: PredictionSource,
        *,
        chunk_rows: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> Self:
        """The exact fit on ``source`` by the reduction (``device``: unused)."""
        reduction, _ = cls.prepare(source, options)
        m = source.n_classes if reduction == "ova" else 1
        theta, out = cls.solve(source, reduction, m, chunk_rows)
        if out.message:
            import warnings

            from calibkit.errors import ConvergenceWarning

            warnings.warn(
                f"{source.source}: {cls.title} fit: {out.message}", ConvergenceWarning, stacklevel=2
            )
        return cls(
            maps=theta,
            reduction=reduction,
            n_classes=source.n_classes,
            fitted_on=source.source,
            input_kind="probs" if source.kind == "probs" else "logits",
            n=out.n,
            outcome=out,
        )

    def parameters(self) -> dict[str, float]:
        theta = np.asarray(self.maps, dtype=np.float64)
        return {name: float(theta[:, i].mean()) for i, name in enumerate(self.names)}

    def map_values(self, cols: Columns) -> NDArray[np.float64]:
        s = np.einsum("nmd,md->nm", self.design(cols), np.asarray(self.maps, dtype=np.float64))
        out: NDArray[np.float64] = np.exp(-_softplus(-s))
        return out

    def maps_to_json(self) -> list[Any]:
        theta = np.asarray(self.maps, dtype=np.float64)
        return [dict(zip(self.names, row.tolist(), strict=True)) for row in theta]

    @classmethod
    def maps_from_json(cls, maps: list[Any], source: str) -> Any:
        rows = []
        for i, m in enumerate(maps):
            if not isinstance(m, dict) or set(m) != set(cls.names):
                raise InputError(
                    source, f"maps[{i}] must be a JSON object with keys {', '.join(cls.names)}"
                )
            rows.append(float_list([m[k] for k in cls.names], source, f"maps[{i}]"))
        return np.array(rows, dtype=np.float64)


def outcome(
    f: NDArray[np.float64], gnorm: NDArray[np.float64], iterations: int, passes: int, rows: int
) -> FitOutcome:
    """The :class:`FitOutcome` of the maps' fits together: the objective is the sum of their
    mean NLLs (one map: its mean NLL), the gradient the largest of their (projected) gradients."""
    objective = float(np.sum(f))
    g = float(np.max(gnorm)) if gnorm.size else 0.0
    out = FitOutcome(
        objective=objective,
        gradient_norm=g,
        iterations=iterations,
        passes=passes,
        solver="newton",
        n=rows,
    )
    separable = int(np.count_nonzero(f < SEPARABLE_NLL))
    if out.converged and separable:
        msg = (
            f"{separable} of {f.size} map(s) separate their data (mean NLL below "
            f"{SEPARABLE_NLL:g}): the NLL has no minimum, the fit stopped where its gradient "
            "met the rule, at a nearly step-shaped map"
        )
        out = replace(out, message=msg)
    if not out.converged:
        msg = (
            f"stopped after {iterations} Newton iterations with gradient {g:.3g} (the data may "
            "be separable by the map: its NLL then has no minimum)"
        )
        out = replace(out, message=msg)
    return out
