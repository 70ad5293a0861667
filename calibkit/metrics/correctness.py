"""Metrics of (confidence, correctness) pairs: HELM's calibration numbers and selective prediction.

Every input calibkit reads gives, per row ``i``, a top-label confidence ``c_i`` in [0, 1] and a
correctness ``y_i`` (1 if the top label is right, else 0; confidence rows may give a fraction).
These functions take those two arrays (no I/O; :func:`calibkit.stats.selective.selective_metrics`
extracts them from a prediction source). ``N`` rows, natural logarithms. Every number:

``ece_10_bin`` (HELM; Kumar's ``calibration.get_ece_em(c, y, num_bins=10)``)
    Equal-mass ECE with HELM's bins (:func:`helm_mass_edges`): the sorted confidences are cut
    into 10 runs of consecutive ranks like ``numpy.array_split`` (the first ``N mod 10`` runs
    one longer), and bin ``b`` holds the confidences in ``(u_{b-1}, u_b]`` with ``u_b`` the last
    confidence of run ``b``. ``ECE = sum_b |B_b|/N |mean_b y - mean_b c|``. A confidence
    belongs to one bin by its value, so **equal confidences are never split**; with ties some
    bins hold more than ``N/10`` rows and some none (``ece_10_bin_nonempty`` counts the filled
    ones, ``ece_10_bin_collapsed`` says that fewer than ``min(10, N)`` are filled). Kumar's code
    puts each edge halfway between the last value of a run and the first of the next and
    assigns by value as well, so it bins every row the same way (ties included; it only drops
    duplicate edges). calibkit's own ``--binning mass`` (:mod:`calibkit.metrics.binning`) cuts
    at ranks ``ceil(b N / M) - 1`` instead (the longer runs last), so its 10-bin equal-mass ECE
    differs from this one when ``N`` is not a multiple of 10.
``ece_1_bin`` (HELM; ``get_ece(c, y, num_bins=1)``)
    ``|mean c - mean y|``.
``ece`` (equal width, ``n_bins`` bins, 15 by default) and ``smooth_ece``
    calibkit's :mod:`calibkit.metrics.calibration` and
    :func:`calibkit.metrics.estimators.smooth_ece` of the same pairs.
``brier``
    ``mean (c - y)^2``: the binary Brier score of the *correctness event*, not the K-way Brier
    of ``calibkit ece`` (which sums over every class).
``nll``
    Binary log loss of the correctness event, ``-mean[y log c + (1 - y) log(1 - c)]``. For
    logits ``log c`` and ``log(1 - c)`` come from the logits themselves (exact however confident
    the row: :func:`calibkit.stats.selective.selective_metrics` passes them); otherwise
    ``1 - c`` is taken in float64. An exact 0 (of ``c`` or ``1 - c``, or a log of ``-inf``) is
    read as the smallest positive float64 (:func:`~calibkit.engine.sums.prob_floor`, as calibkit
    reads stored probabilities: 744.4 nats), counted in ``nll_floored_rows``: such a row's term
    is a lower bound.
``auroc``
    Area under the ROC curve of the confidence as a score for "correct": the probability that a
    random correct row has a higher confidence than a random wrong one, ties counting 1/2
    (Mann-Whitney with mid-ranks; equals ``sklearn.metrics.roc_auc_score(y, c)``). ``None``
    with a reason when every row is correct, every row is wrong, or a correctness is fractional.

Selective prediction. Sort the rows by confidence, highest first, and group **equal confidences
together**: groups ``g = 1..G`` end at ``n_g`` rows. Answering only the ``k`` most confident
rows has coverage ``k/N`` and selective risk ``E(k)/k``, with ``E(k)`` the errors (``sum 1 - y``)
among them. Within a tie group the order is arbitrary, so ``E(k)`` for ``k`` inside a group is
its **expectation over the orders of the tied rows**: linear between the group's ends,
``E(k) = E(n_{g-1}) + (k - n_{g-1}) e_g`` with ``e_g`` the group's mean error. Nothing then
depends on the row order (and with no ties it is the plain cumulative count).

``risk_coverage``
    The curve's points ``(n_g/N, E(n_g)/n_g)`` at the ends of the tie groups.
``aurc``
    **Mean-over-k convention** (Geifman et al. 2019): ``AURC = (1/N) sum_{k=1..N} E(k)/k``, the
    mean selective risk over the coverages ``1/N, 2/N, ..., 1`` (the left Riemann sum of the
    curve over coverage; not the trapezoid of the group-end points). ``aurc_oracle`` is that
    of the best possible order (least error first; with 0/1 correctness all correct rows
    first), ``e_aurc = aurc - aurc_oracle >= 0``, and ``aurc_random = 1 - accuracy`` that of
    a random order (a flat curve at the overall risk).
``selective_cov_acc_area`` (HELM; ``get_selective_stats(c, y)[0]``)
    Kumar's area under the coverage-*accuracy* curve, ``mean_k (1 - E(k)/k) = 1 - aurc``.
``selective_acc@10`` (HELM; ``get_selective_stats(c, y)[1]``)
    Kumar's ``accs[int(0.1 N)]``: the accuracy ``1 - E(k)/k`` of the ``k = int(0.1 N) + 1`` most
    confident rows (one more than 10 % when ``0.1 N`` is whole), ``E(k)`` as above.
``accuracy_at_coverage``
    For each asked coverage ``q`` (10 %, 50 %, 90 % by default) the target is
    ``k* = ceil(q N)`` rows. When row ``k*`` lies inside a tie group, the **whole tie group is
    taken**: the rows used are ``n_g`` for the first group end ``n_g >= k*``, and the entry
    reports that ``coverage = n_g / N`` (>= ``q``), the rows and their accuracy.

Recalibrated ECE. ``x = logit(clip(c, 1e-12, 1 - 1e-12))`` (the clip of HELM / Kumar's
``get_platt_scaler``).

``platt_ece_10_bin_cv``, ``platt_ece_1_bin_cv`` (cross-fitted; calibkit's, not in HELM)
    Platt scaling ``sigmoid(a x + b)``, ``(a, b)`` the unregularised maximum-likelihood logistic
    regression of ``y`` on ``x`` (:func:`fit_platt`, Newton's method), **cross-fitted**: the
    rows are split into ``folds`` folds (10 by default) by
    :func:`calibkit.sources.folds.fold_of` (a hash of the row number and ``seed``), each fold is
    scored by the map fitted on the other folds, and ``ece_10_bin`` / ``ece_1_bin`` are taken
    over every row's held-out score. ``None`` with a reason when a fold has fewer than 2 rows or
    a training set is all correct or all wrong.
``ts_ece_10_bin_cv`` (cross-fitted)
    The same with temperature scaling: for K-way logits or probabilities calibkit's
    :func:`~calibkit.calibrators.temperature.fit_temperature` on the training folds applied to
    the held-out fold (computed by :func:`calibkit.stats.selective.selective_metrics`); for
    confidence rows the binary temperature ``sigmoid(x / T)`` (:func:`fit_binary_temperature`).
``platt_ece_10_bin``, ``platt_ece_1_bin``, ``platt_coef``, ``platt_intercept`` (HELM)
    HELM's numbers under HELM's names: Platt fitted and evaluated on the same rows (in-sample,
    optimistic), so a join of HELM's and calibkit's outputs by key compares the same quantity.
    When every row is correct or every row is wrong HELM stores 0.0; here they are ``None``
    with that reason. The cross-fitted values carry the ``_cv`` suffix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibkit.engine.sums import prob_floor
from calibkit.errors import InputError, Param, UsageError
from calibkit.metrics.binning import check_n_bins
from calibkit.metrics.calibration import BinTable, bin_table
from calibkit.metrics.estimators import smooth_ece
from calibkit.sources.folds import fold_of

__all__ = [
    "DEFAULT_COVERAGES",
    "DEFAULT_FOLDS",
    "PLATT_EPS",
    "CorrectnessMetrics",
    "CoverageAccuracy",
    "RiskCoverage",
    "aurc_of",
    "auroc_correct",
    "check_coverages",
    "collapse_message",
    "correctness_metrics",
    "cross_fit",
    "fit_binary_temperature",
    "fit_platt",
    "helm_ece",
    "helm_mass_bins",
    "helm_mass_edges",
    "helm_mass_table",
    "oracle_curve",
    "platt_map",
    "risk_coverage",
    "target_rows",
]

#: Coverages of ``accuracy_at_coverage`` unless others are asked.
DEFAULT_COVERAGES: tuple[float, ...] = (0.1, 0.5, 0.9)
#: Folds of the cross-fitted recalibrated ECE unless others are asked.
DEFAULT_FOLDS = 10
#: HELM / Kumar's clip of confidences before their logit.
PLATT_EPS = 1e-12


def _pairs(
    confidence: ArrayLike, correct: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    c = np.asarray(confidence, dtype=np.float64).ravel()
    y = np.asarray(correct, dtype=np.float64).ravel()
    if c.shape != y.shape:
        raise InputError("<array>", f"{c.size} confidences but {y.size} correctness values")
    if c.size == 0:
        raise InputError("<array>", "no rows: the predictions are empty")
    if not np.isfinite(c).all() or c.min() < 0 or c.max() > 1:
        raise InputError("<array>", "confidences must be finite and lie in [0, 1]")
    if not np.isfinite(y).all() or y.min() < 0 or y.max() > 1:
        raise InputError("<array>", "correctness must be finite and lie in [0, 1]")
    return c, y


# --- HELM's equal-mass bins ------------------------------------------------------------------


def helm_mass_edges(confidence: ArrayLike, n_bins: int = 10) -> NDArray[np.float64]:
    """Upper edges of HELM's (Kumar's) equal-mass bins: the last confidence of each of the
    ``numpy.array_split`` runs of the sorted confidences (the first ``N mod M`` runs one longer;
    with ``N < M`` the last edge repeats). See the module docstring.

    >>> helm_mass_edges([0.1, 0.2, 0.3, 0.4, 0.5], 2).tolist()  # runs [.1 .2 .3] [.4 .5]
    [0.3, 0.5]
    """
    m = check_n_bins(n_bins)
    c = np.sort(np.asarray(confidence, dtype=np.float64).ravel())
    if c.size == 0:
        return np.ones(m, dtype=np.float64)
    n = c.size
    q, r = divmod(n, m)
    b = np.arange(1, m + 1, dtype=np.int64)
    last = np.minimum(b * q + np.minimum(b, r) - 1, n - 1)
    last = np.maximum(last, 0)
    edges: NDArray[np.float64] = c[last] + 0.0
    return edges


def helm_mass_bins(confidence: ArrayLike, n_bins: int = 10) -> NDArray[np.intp]:
    """The 0-based HELM equal-mass bin of each confidence: the first edge ``>=`` it (by value,
    so equal confidences share a bin).

    >>> helm_mass_bins([0.5, 0.5, 0.5, 0.9], 2).tolist()  # runs [.5 .5] [.5 .9]: the tie stays
    [0, 0, 0, 1]
    """
    c = np.asarray(confidence, dtype=np.float64).ravel()
    upper = helm_mass_edges(c, n_bins)
    idx: NDArray[np.intp] = np.minimum(np.searchsorted(upper, c, side="left"), upper.size - 1)
    return idx


def helm_mass_table(confidence: ArrayLike, outcome: ArrayLike, n_bins: int = 10) -> BinTable:
    """The per-bin sums of HELM's equal-mass bins (a :class:`BinTable` of ``binning="mass"``)."""
    c, y = _pairs(confidence, outcome)
    upper = helm_mass_edges(c, n_bins)
    idx = helm_mass_bins(c, n_bins)
    m = upper.size
    return BinTable(
        lower=np.concatenate(([0.0], upper[:-1])),
        upper=upper,
        count=np.bincount(idx, minlength=m).astype(np.int64),
        sum_confidence=np.bincount(idx, weights=c, minlength=m).astype(np.float64),
        sum_outcome=np.bincount(idx, weights=y, minlength=m).astype(np.float64),
        binning="mass",
    )


def helm_ece(confidence: ArrayLike, outcome: ArrayLike, n_bins: int = 10) -> float:
    """HELM's equal-mass ECE (``get_ece_em``); ``n_bins=1`` is ``|mean c - mean y|``.

    >>> helm_ece([0.9, 0.8, 0.3, 0.2], [1, 0, 1, 0], 2)  # bins {.2,.3}: .25-.5, {.8,.9}: .85-.5
    0.3
    """
    return helm_mass_table(confidence, outcome, n_bins).ece()


def collapse_message(nonempty: int, n_bins: int, n: int, distinct: int | None = None) -> str | None:
    """The warning text when equal-mass bins collapse (fewer than ``min(n_bins, n)`` bins hold
    rows because tied confidences are never split), else ``None``; ``distinct``: the number of
    distinct confidences, when known.

    >>> collapse_message(3, 10, 500, 3).split(" (")[0]
    'equal-mass bins collapsed: 3 of 10 bins hold rows'
    >>> collapse_message(4, 10, 4) is None  # 4 rows can fill 4 bins at most
    True
    """
    if nonempty >= min(n_bins, n):
        return None
    values = (
        ""
        if distinct is None
        else f"{distinct} distinct confidence{'s' if distinct != 1 else ''}; "
    )
    return (
        f"equal-mass bins collapsed: {nonempty} of {n_bins} bins hold rows ({values}tied "
        "confidences are never split between bins, so the ECE is that of fewer, larger bins)"
    )


# --- AUROC -----------------------------------------------------------------------------------


def _mid_ranks(x: NDArray[np.float64]) -> NDArray[np.float64]:
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts = np.flatnonzero(np.concatenate(([True], xs[1:] != xs[:-1])))
    ends = np.concatenate((starts[1:], [xs.size]))
    mid = (starts + ends + 1) / 2.0  # 1-based ranks starts+1 .. ends: their mean
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(mid, ends - starts)
    return ranks


def auroc_correct(confidence: ArrayLike, correct: ArrayLike) -> tuple[float | None, str | None]:
    """``(AUROC, None)`` of the confidence as a score of being correct, or ``(None, reason)``.

    >>> auroc_correct([0.9, 0.8, 0.8, 0.1], [1, 1, 0, 0])  # pairs: 1, 1, 1/2, 1 of 4
    (0.875, None)
    """
    c, y = _pairs(confidence, correct)
    if ((y != 0) & (y != 1)).any():
        return None, "undefined for fractional correctness"
    pos = y == 1
    n_pos = int(pos.sum())
    n_neg = y.size - n_pos
    if n_neg == 0:
        return None, "undefined: every row is correct"
    if n_pos == 0:
        return None, "undefined: every row is wrong"
    ranks = _mid_ranks(c)
    u = float(ranks[pos].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg), None


# --- selective prediction --------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RiskCoverage:
    """The risk-coverage curve at the ends of the tie groups (module docstring): ``rows[g]`` rows
    answered (``n_g``), ``errors[g]`` their summed error ``E(n_g)``, ``confidence[g]`` the
    group's confidence; ``n`` rows in all."""

    n: int
    rows: NDArray[np.int64]
    errors: NDArray[np.float64]
    confidence: NDArray[np.float64]

    @property
    def coverage(self) -> NDArray[np.float64]:
        return self.rows / self.n

    @property
    def risk(self) -> NDArray[np.float64]:
        out: NDArray[np.float64] = self.errors / self.rows
        return out

    def cumulative_errors(self) -> NDArray[np.float64]:
        """``E(k)`` for ``k = 1..N``, linear within each tie group (its expectation over the
        orders of the tied rows)."""
        k = np.arange(1, self.n + 1, dtype=np.float64)
        if self.rows.size == self.n:  # no ties: E(k) is the error count of the k first rows
            return self.errors.astype(np.float64, copy=True)
        # linear between the ends of the tie groups (0 errors at 0 rows): one interpolation
        out: NDArray[np.float64] = np.interp(
            k,
            np.concatenate(([0.0], self.rows.astype(np.float64))),
            np.concatenate(([0.0], self.errors)),
        )
        return out

    def selective_risk(self) -> NDArray[np.float64]:
        """``E(k)/k`` for ``k = 1..N``: the curve at every coverage ``k/N``."""
        return self.cumulative_errors() / np.arange(1, self.n + 1, dtype=np.float64)


def risk_coverage(confidence: ArrayLike, correct: ArrayLike) -> RiskCoverage:
    """The risk-coverage curve, ties kept together (module docstring).

    >>> rc = risk_coverage([0.9, 0.7, 0.7, 0.2], [1, 1, 0, 0])
    >>> rc.rows.tolist(), rc.errors.tolist()  # groups {.9}, {.7, .7}, {.2}
    ([1, 3, 4], [0.0, 1.0, 2.0])
    """
    c, y = _pairs(confidence, correct)
    # any order of equal confidences gives the same group ends, so no stable sort is needed
    order = np.argsort(-c)
    cs = c[order]
    err = np.cumsum(1.0 - y[order])
    last = np.flatnonzero(np.concatenate((cs[1:] != cs[:-1], [True])))
    return RiskCoverage(
        n=int(c.size),
        rows=(last + 1).astype(np.int64),
        errors=err[last].astype(np.float64),
        confidence=cs[last].astype(np.float64),
    )


def aurc_of(curve: RiskCoverage) -> float:
    """AURC, mean-over-k convention: ``(1/N) sum_k E(k)/k`` (module docstring).

    >>> aurc_of(risk_coverage([0.9, 0.7, 0.7, 0.2], [1, 1, 0, 0]))  # (0 + 1/4 + 1/3 + 1/2) / 4
    0.2708333333333333
    """
    return float(curve.selective_risk().mean())


def oracle_curve(correct: ArrayLike) -> RiskCoverage:
    """The risk-coverage curve of the best possible order (least error first; with 0/1
    correctness every correct row first), a point per row (``confidence`` is NaN: the order is
    not the model's).

    >>> oracle_curve([0, 1, 1, 0]).errors.tolist()
    [0.0, 0.0, 1.0, 2.0]
    """
    y = np.asarray(correct, dtype=np.float64).ravel()
    err = np.cumsum(np.sort(1.0 - y))
    n = int(y.size)
    return RiskCoverage(
        n=n,
        rows=np.arange(1, n + 1, dtype=np.int64),
        errors=err.astype(np.float64),
        confidence=np.full(n, np.nan),
    )


@dataclass(frozen=True)
class CoverageAccuracy:
    """Accuracy at an asked coverage (module docstring): ``target`` asked, ``coverage`` used
    (a whole tie group more when the target falls inside one), ``rows`` answered;
    ``target_rows`` is ``k* = ceil(target N)``, exact (so ``rows > target_rows`` only when a
    tie group was taken whole: :attr:`whole_tie_group`)."""

    target: float
    coverage: float
    rows: int
    accuracy: float
    target_rows: int = 0

    @property
    def whole_tie_group(self) -> bool:
        """Whether more rows than ``ceil(target N)`` were taken (the target row is tied)."""
        return self.rows > self.target_rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "coverage": self.coverage,
            "rows": self.rows,
            "accuracy": self.accuracy,
        }


def check_coverages(coverages: Sequence[float]) -> tuple[float, ...]:
    """Coverages as floats in (0, 1], at least one (else a :class:`~calibkit.errors.UsageError`)."""
    out = tuple(float(q) for q in coverages)
    if not out or any(not (0.0 < q <= 1.0) or math.isnan(q) for q in out):
        raise UsageError(
            Param("coverage") + f": coverages must lie in (0, 1]; got {', '.join(map(str, out))}"
        )
    return out


def target_rows(q: float, n: int) -> int:
    """``k* = ceil(q n)``, at least 1, in exact arithmetic on the coverage as written (its
    shortest decimal form: 0.1 is 1/10, not the binary float just above it).

    >>> target_rows(0.1, 1065), target_rows(0.1, 1000), target_rows(0.07, 100)
    (107, 100, 7)
    """
    return max(1, math.ceil(Fraction(repr(float(q))) * n))


def _accuracy_at(curve: RiskCoverage, q: float) -> CoverageAccuracy:
    target = target_rows(q, curve.n)
    g = int(np.searchsorted(curve.rows, target, side="left"))
    rows = int(curve.rows[g])
    return CoverageAccuracy(
        q, rows / curve.n, rows, 1.0 - float(curve.errors[g]) / rows, target_rows=target
    )


# --- Platt and binary temperature --------------------------------------------------------------


def _logit(c: NDArray[np.float64]) -> NDArray[np.float64]:
    p = np.clip(c, PLATT_EPS, 1.0 - PLATT_EPS)
    out: NDArray[np.float64] = np.log(p / (1.0 - p))
    return out


def _log_sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = -np.logaddexp(0.0, -z)
    return out


def _bce(z: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """Mean binary cross-entropy of logits ``z`` against targets ``y``:
    ``-[y log s(z) + (1 - y) log s(-z)] = -log s(z) + (1 - y) z`` (``log s(-z) = log s(z) - z``),
    one ``logaddexp`` per row."""
    return float((np.logaddexp(0.0, -z) + (1.0 - y) * z).mean())


def fit_platt(
    confidence: ArrayLike, correct: ArrayLike, *, max_iter: int = 200, tol: float = 1e-12
) -> tuple[float, float]:
    """``(a, b)`` of the maximum-likelihood ``sigmoid(a x + b)``, ``x = logit(clip(c))``:
    Newton's method with step halving (the mean log loss never increases). On data the map
    separates there is no minimum: the fit stops after ``max_iter`` steps with large ``a``.

    >>> a, b = fit_platt([0.9, 0.9, 0.6, 0.6], [1, 0, 1, 0])  # accuracy 1/2 at both: flat
    >>> round(a, 6) + 0.0, round(b, 6) + 0.0
    (0.0, 0.0)
    """
    c, y = _pairs(confidence, correct)
    x = _logit(c)
    ybar = float(y.mean())
    ybar = min(max(ybar, 1e-12), 1 - 1e-12)
    w = np.array([0.0, math.log(ybar / (1 - ybar))])  # the constant model: a safe start
    design = np.stack([x, np.ones_like(x)], axis=1)
    loss = _bce(design @ w, y)
    for _ in range(max_iter):
        z = design @ w
        p = np.exp(_log_sigmoid(z))
        grad = design.T @ (p - y) / y.size
        h = (design * (p * (1 - p))[:, None]).T @ design / y.size
        h += np.eye(2) * 1e-12 * max(1.0, float(np.trace(h)))
        try:
            step = np.linalg.solve(h, grad)
        except np.linalg.LinAlgError:
            break
        t = 1.0
        while t > 1e-10:
            cand = w - t * step
            new = _bce(design @ cand, y)
            if new <= loss:
                break
            t /= 2
        else:
            break
        done = float(np.abs(w - cand).max()) <= tol * max(1.0, float(np.abs(w).max()))
        w, loss = cand, new
        if done or float(np.abs(grad).max()) < 1e-15:
            break
    return float(w[0]), float(w[1])


def platt_map(confidence: ArrayLike, a: float, b: float) -> NDArray[np.float64]:
    """``sigmoid(a logit(clip(c)) + b)``."""
    z = a * _logit(np.asarray(confidence, dtype=np.float64)) + b
    out: NDArray[np.float64] = np.exp(_log_sigmoid(z))
    return out


def fit_binary_temperature(confidence: ArrayLike, correct: ArrayLike) -> float:
    """``T`` minimising the log loss of ``sigmoid(logit(clip(c)) / T)``, in calibkit's range
    ``[1e-4, 1e4]``: Newton's method on ``beta = 1/T``, in which the loss is convex (gradient
    ``mean((s(beta x) - y) x)``, Hessian ``mean(s (1 - s) x^2)``), with step halving so that the
    loss never increases; a minimum beyond the range stops at its bound.

    >>> round(fit_binary_temperature([0.9] * 4, [1, 1, 1, 0]), 6)  # ln 9 / T = ln 3
    2.0
    """
    c, y = _pairs(confidence, correct)
    x = _logit(c)
    lo, hi = 1e-4, 1e4  # beta = 1 / T
    beta = 1.0
    loss = _bce(x, y)
    for _ in range(100):
        p = np.exp(_log_sigmoid(beta * x))
        grad = float(((p - y) * x).mean())
        hess = float((p * (1.0 - p) * x * x).mean())
        if not (math.isfinite(grad) and math.isfinite(hess)) or hess <= 0:
            break
        step = grad / hess
        t = 1.0
        while True:
            cand = min(max(beta - t * step, lo), hi)
            new = _bce(cand * x, y)
            if new <= loss or t < 1e-10:
                break
            t /= 2
        if new > loss:
            break
        moved = abs(cand - beta)
        beta, loss = cand, new
        if moved <= 1e-13 * beta:
            break
    return float(1.0 / beta)


def _binary_ts_map(c: NDArray[np.float64], t: float) -> NDArray[np.float64]:
    out: NDArray[np.float64] = np.exp(_log_sigmoid(_logit(c) / t))
    return out


def cross_fit(n: int, *, folds: int, seed: int) -> tuple[NDArray[np.int64] | None, str | None]:
    """The fold of each of ``n`` rows (:func:`calibkit.sources.folds.fold_of`), or
    ``(None, reason)`` when a fold gets fewer than 2 rows."""
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise UsageError(Param("folds") + f": must be an integer >= 2; got {folds!r}")
    fold = fold_of(np.arange(n, dtype=np.uint64), folds=int(folds), seed=int(seed))
    sizes = np.bincount(fold, minlength=folds)
    if sizes.min() < 2:
        j = int(sizes.argmin())
        return None, (
            f"too few rows for {folds}-fold cross-fitting: fold {j} of {n} rows gets "
            f"{int(sizes[j])} (each needs at least 2)"
        )
    return fold, None


def _one_class(y: NDArray[np.float64]) -> str | None:
    if (y >= 1).all():
        return "every row is correct"
    if (y <= 0).all():
        return "every row is wrong"
    return None


# --- the result ------------------------------------------------------------------------------


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass(kw_only=True, frozen=True, eq=False)
class CorrectnessMetrics:
    """Every metric of the (confidence, correctness) pairs (defined in the module docstring).

    A ``None`` number has its reason in ``reasons`` under the same key.
    """

    n: int
    accuracy: float
    mean_confidence: float
    n_bins: int
    ece_10_bin: float
    ece_10_bin_nonempty: int
    ece_10_bin_collapsed: bool
    collapse_warning: str | None
    distinct_confidences: int
    ece_1_bin: float
    ece: float
    smooth_ece: float
    brier: float
    nll: float
    nll_floored_rows: int
    auroc: float | None
    aurc: float
    aurc_oracle: float
    aurc_random: float
    e_aurc: float
    selective_cov_acc_area: float
    selective_acc_at_10: float
    accuracy_at_coverage: tuple[CoverageAccuracy, ...]
    folds: int
    seed: int
    platt_ece_10_bin_cv: float | None
    platt_ece_1_bin_cv: float | None
    ts_ece_10_bin_cv: float | None
    ts_method: str
    platt_ece_10_bin: float | None
    platt_ece_1_bin: float | None
    platt_coef: float | None
    platt_intercept: float | None
    curve: RiskCoverage
    oracle: RiskCoverage
    fractional: bool = False
    reasons: dict[str, str] = field(default_factory=dict)
    source: str = "<array>"

    #: Most points of the risk-coverage curve written by :meth:`to_dict`.
    CURVE_POINTS = 200

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: HELM's names where HELM has the number; ``None`` for a NaN or an
        undefined number (its reason under ``reasons``)."""
        rows = self.curve.rows
        pick = np.arange(rows.size)
        if rows.size > self.CURVE_POINTS:
            pick = np.unique(np.linspace(0, rows.size - 1, self.CURVE_POINTS).round().astype(int))
        return {
            "source": self.source,
            "n": self.n,
            "accuracy": self.accuracy,
            "max_prob": self.mean_confidence,
            "ece_10_bin": _num(self.ece_10_bin),
            "ece_10_bin_nonempty": self.ece_10_bin_nonempty,
            "ece_10_bin_collapsed": self.ece_10_bin_collapsed,
            "distinct_confidences": self.distinct_confidences,
            "ece_1_bin": _num(self.ece_1_bin),
            "ece": _num(self.ece),
            "n_bins": self.n_bins,
            "smooth_ece": _num(self.smooth_ece),
            "brier_correct": _num(self.brier),
            "nll_correct": _num(self.nll),
            "nll_floored_rows": self.nll_floored_rows,
            "auroc_correct": _num(self.auroc),
            "aurc": _num(self.aurc),
            "aurc_oracle": _num(self.aurc_oracle),
            "aurc_random": _num(self.aurc_random),
            "e_aurc": _num(self.e_aurc),
            "selective_cov_acc_area": _num(self.selective_cov_acc_area),
            "selective_acc@10": _num(self.selective_acc_at_10),
            "accuracy_at_coverage": [a.to_dict() for a in self.accuracy_at_coverage],
            "folds": self.folds,
            "seed": self.seed,
            "platt_ece_10_bin_cv": _num(self.platt_ece_10_bin_cv),
            "platt_ece_1_bin_cv": _num(self.platt_ece_1_bin_cv),
            "ts_ece_10_bin_cv": _num(self.ts_ece_10_bin_cv),
            "ts_method": self.ts_method,
            "platt_ece_10_bin": _num(self.platt_ece_10_bin),
            "platt_ece_1_bin": _num(self.platt_ece_1_bin),
            "platt_coef": _num(self.platt_coef),
            "platt_intercept": _num(self.platt_intercept),
            "fractional_correctness": self.fractional,
            "warnings": [self.collapse_warning] if self.collapse_warning else [],
            "reasons": dict(self.reasons),
            "risk_coverage": {
                "points": int(rows.size),
                "coverage": [float(v) for v in self.curve.coverage[pick]],
                "risk": [float(v) for v in self.curve.risk[pick]],
                "confidence": [float(v) for v in self.curve.confidence[pick]],
            },
        }


def correctness_metrics(
    confidence: ArrayLike,
    correct: ArrayLike,
    *,
    n_bins: int = 15,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    coverages: Sequence[float] = DEFAULT_COVERAGES,
    ts_confidence: ArrayLike | None = None,
    ts_reason: str | None = None,
    ts_method: str = "binary",
    log_confidence: ArrayLike | None = None,
    log_complement: ArrayLike | None = None,
    source: str = "<array>",
) -> CorrectnessMetrics:
    """Every metric of the pairs (module docstring). ``ts_confidence``: each row's held-out
    temperature-scaled confidence when the caller cross-fitted K-way temperature scaling (with
    ``ts_method`` naming it, or ``ts_reason`` why there is none); else the binary temperature is
    cross-fitted here on the same folds as Platt. ``log_confidence`` and ``log_complement``:
    each row's ``log c`` and ``log(1 - c)`` when known more exactly than from ``c`` (logits).

    >>> m = correctness_metrics([0.9, 0.8, 0.3, 0.2], [1, 0, 1, 0], folds=2)
    >>> round(m.ece_1_bin, 6), round(m.brier, 6), m.auroc  # |.55 - .5|, (.01+.64+.49+.04)/4
    (0.05, 0.295, 0.75)
    """
    try:
        c, y = _pairs(confidence, correct)
    except InputError as err:
        raise InputError(source, err.problem) from None
    n_bins = check_n_bins(n_bins)
    qs = check_coverages(coverages)
    n = int(c.size)
    fractional = bool(((y != 0) & (y != 1)).any())
    reasons: dict[str, str] = {}

    table10 = helm_mass_table(c, y, 10)
    nonempty = int(np.count_nonzero(table10.count))
    distinct = int(np.unique(c).size)
    collapse = collapse_message(nonempty, 10, n, distinct)

    log_floor = math.log(prob_floor(np.dtype(np.float64)))
    with np.errstate(divide="ignore"):
        log_c = np.log(c) if log_confidence is None else np.asarray(log_confidence, np.float64)
        log_1mc = (
            np.log(1.0 - c) if log_complement is None else np.asarray(log_complement, np.float64)
        )
    if log_c.shape != c.shape or log_1mc.shape != c.shape:
        raise InputError(source, "one log-confidence per row is needed")
    floored = int(
        np.count_nonzero(((log_c < log_floor) & (y > 0)) | ((log_1mc < log_floor) & (y < 1)))
    )
    log_c = np.maximum(log_c, log_floor)
    log_1mc = np.maximum(log_1mc, log_floor)
    nll = float(-(y * log_c + (1 - y) * log_1mc).mean())
    auroc, why = auroc_correct(c, y)
    if why is not None:
        reasons["auroc_correct"] = why

    curve = risk_coverage(c, y)
    risks = curve.selective_risk()
    aurc = float(risks.mean())
    best = oracle_curve(y)
    oracle = aurc_of(best)
    k10 = min(int(0.1 * n), n - 1)  # Kumar's index accs[int(0.1 * len)]
    acc10 = 1.0 - float(risks[k10])

    # HELM's in-sample Platt
    platt_in: tuple[float | None, float | None, float | None, float | None] = (None,) * 4
    single = _one_class(y)
    if single is not None:
        reasons["platt_in_sample"] = f"undefined: {single} (HELM stores 0.0)"
    else:
        a, b = fit_platt(c, y)
        cal = platt_map(c, a, b)
        platt_in = (helm_ece(cal, y, 10), helm_ece(cal, y, 1), a, b)

    # cross-fitted Platt (and the binary temperature, unless the caller brought K-way TS)
    binary_ts = ts_confidence is None and ts_reason is None
    platt10 = platt1 = ts10 = None
    fold, fold_reason = cross_fit(n, folds=folds, seed=seed)
    held_platt = np.empty(n)
    held_ts = np.empty(n)
    if fold is not None:
        for j in range(folds):
            train = fold != j
            bad = _one_class(y[train])
            if bad is not None:
                fold_reason = f"fold {j}'s training rows are one class only ({bad})"
                break
            a, b = fit_platt(c[train], y[train])
            held_platt[~train] = platt_map(c[~train], a, b)
            if binary_ts:
                t = fit_binary_temperature(c[train], y[train])
                held_ts[~train] = _binary_ts_map(c[~train], t)
        else:
            platt10, platt1 = helm_ece(held_platt, y, 10), helm_ece(held_platt, y, 1)
            if binary_ts:
                ts10 = helm_ece(held_ts, y, 10)
    if fold_reason is not None:
        reasons["platt"] = fold_reason
    if ts_confidence is not None:
        ts10 = helm_ece(ts_confidence, y, 10)
    elif ts_reason is not None:
        reasons["ts_ece_10_bin_cv"] = ts_reason
    elif fold_reason is not None:
        reasons["ts_ece_10_bin_cv"] = fold_reason
    if "platt" in reasons:
        reasons["platt_ece_10_bin_cv"] = reasons["platt_ece_1_bin_cv"] = reasons.pop("platt")
    if "platt_in_sample" in reasons:
        why_in = reasons.pop("platt_in_sample")
        for key in ("ece_10_bin", "ece_1_bin", "coef", "intercept"):
            reasons[f"platt_{key}"] = why_in

    return CorrectnessMetrics(
        n=n,
        accuracy=float(y.mean()),
        mean_confidence=float(c.mean()),
        n_bins=n_bins,
        ece_10_bin=table10.ece(),
        ece_10_bin_nonempty=nonempty,
        ece_10_bin_collapsed=collapse is not None,
        collapse_warning=collapse,
        distinct_confidences=distinct,
        ece_1_bin=abs(float(c.mean()) - float(y.mean())),
        ece=bin_table(c, y, n_bins=n_bins, binning="width").ece(),
        smooth_ece=smooth_ece(c, y).value,
        brier=float(((c - y) ** 2).mean()),
        nll=nll,
        nll_floored_rows=floored,
        auroc=auroc,
        aurc=aurc,
        aurc_oracle=oracle,
        aurc_random=1.0 - float(y.mean()),
        e_aurc=aurc - oracle,
        selective_cov_acc_area=1.0 - aurc,
        selective_acc_at_10=acc10,
        accuracy_at_coverage=tuple(_accuracy_at(curve, q) for q in qs),
        folds=int(folds),
        seed=int(seed),
        platt_ece_10_bin_cv=platt10,
        platt_ece_1_bin_cv=platt1,
        ts_ece_10_bin_cv=ts10,
        ts_method=ts_method,
        platt_ece_10_bin=platt_in[0],
        platt_ece_1_bin=platt_in[1],
        platt_coef=platt_in[2],
        platt_intercept=platt_in[3],
        curve=curve,
        oracle=best,
        fractional=fractional,
        reasons=reasons,
        source=source,
    )
