"""k-fold cross-validation of a calibrator's hyper-parameters on the held-out NLL.

:func:`cross_validate` fits a method at each point of a grid on all folds but one and scores
the mean NLL (:func:`calibkit.metrics.summary.summarize`) of the calibrated held-out fold; the
chosen point has the lowest mean over the folds. The folds are the streaming views of
:mod:`calibkit.sources.folds` (fold membership hashed from the row number and the seed, so it
does not depend on the chunk size or on how the rows are stored), and each fit streams its
training view through the method's own ``fit_source``: memory stays one chunk plus the
method's parameters, whatever the grid.

**Selection.** The score of a point is the unweighted mean over the folds of each fold's mean
held-out NLL (as scikit-learn's ``GridSearchCV`` averages its folds); ``std`` is their standard
deviation (``ddof = 0``). A point whose held-out NLL is not finite is never chosen. Points
whose scores are equal within a relative ``1e-12`` count as a tie, resolved towards the
stronger regularisation: the point whose values, read in the grid's key order (``lambda``
before ``mu``), are largest (a larger penalty gives the simpler map).

**The ODIR grid** (:func:`odir_grid`) follows Kull et al. 2019 (Dirichlet calibration,
NeurIPS), whose experiments add the ODIR penalty to the *mean* log-loss with a per-entry
normalisation, ``λ / (K (K - 1)) · Σ_{i≠j} W_ij² + μ / K · Σ_j b_j²`` (so the same λ means the
same pull per off-diagonal weight at every K; the penalty itself is the fitting method's, see
``matrix-odir``), and choose λ and μ by 5-fold cross-validation on the log-loss over a joint
grid: λ at 1, 2.5 and 5 times each power of ten from 10^-5 (K = 10) or 10^-2 (K = 100) to
10^6, μ at each power of ten over the same range, every pair tried (432 points for K = 10, 243
for K = 100, each fitted 5 times). That is 2 160 and 1 215 fits before the final one; calibkit's
default keeps the range but searches along the diagonal μ = λ, one point per power of ten
(:data:`ODIR_DECADES`: 12 points for K < 100, 9 for 100 <= K < 1000), and every other power
of ten for K >= 1000 (5 points, 10^-2 .. 10^6: each fit there has 10^6 parameters). A value
given for one of λ, μ fixes that axis and the other is searched over its powers of ten; both
given, the grid is that one point (no cross-validation is needed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from calibkit.calibrators.base import CalibratedPredictions
from calibkit.errors import InputError, Param, UsageError
from calibkit.metrics.summary import summarize
from calibkit.sources.folds import FoldView, check_folds
from calibkit.sources.predictions import PredictionSource

__all__ = ["ODIR_DECADES", "TIE_RTOL", "CVResult", "choose", "cross_validate", "odir_grid"]

#: Relative difference of mean held-out NLLs below which two grid points tie.
TIE_RTOL = 1e-12

#: ``(K at least, first power of ten, last power of ten, step)`` of the default ODIR grid.
ODIR_DECADES: tuple[tuple[int, int, int, int], ...] = (
    (0, -5, 6, 1),  # Kull et al. 2019's range for K = 10
    (100, -2, 6, 1),  # and for K = 100
    (1000, -2, 6, 2),  # coarser: every fit has K^2 + K >= 10^6 parameters
)


def _decades(n_classes: int) -> list[float]:
    first, last, step = next(
        (lo, hi, st) for k, lo, hi, st in reversed(ODIR_DECADES) if n_classes >= k
    )
    return [float(10.0**e) for e in range(first, last + 1, step)]


def _check_value(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(Param("params").entry(name) + f": must be a number; got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise UsageError(Param("params").entry(name) + f": must be finite and >= 0; got {value}")
    return float(value)


def odir_grid(
    n_classes: int, *, lambda_: float | None = None, mu: float | None = None
) -> list[dict[str, float]]:
    """The ``{"lambda": .., "mu": ..}`` points to cross-validate for an ODIR method on
    ``n_classes`` classes (see the module docstring), strongest regularisation last.

    >>> [p["lambda"] for p in odir_grid(10)][:3], len(odir_grid(10)), len(odir_grid(100))
    ([1e-05, 0.0001, 0.001], 12, 9)
    >>> odir_grid(1000)[0], len(odir_grid(1000))
    ({'lambda': 0.01, 'mu': 0.01}, 5)
    >>> odir_grid(10, lambda_=0.5)[:2]
    [{'lambda': 0.5, 'mu': 1e-05}, {'lambda': 0.5, 'mu': 0.0001}]
    >>> odir_grid(10, lambda_=0.5, mu=2)
    [{'lambda': 0.5, 'mu': 2.0}]
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise UsageError(f"an ODIR grid needs at least 2 classes; got {n_classes!r}")
    lam, m = _check_value("lambda", lambda_), _check_value("mu", mu)
    values = _decades(n_classes)
    if lam is not None and m is not None:
        return [{"lambda": lam, "mu": m}]
    if lam is not None:
        return [{"lambda": lam, "mu": v} for v in values]
    if m is not None:
        return [{"lambda": v, "mu": m} for v in values]
    return [{"lambda": v, "mu": v} for v in values]


def _number(x: float) -> float | None:
    return x if math.isfinite(x) else None


@dataclass(kw_only=True, frozen=True)
class CVResult:
    """What :func:`cross_validate` found: the ``chosen`` point, the ``curve`` (one entry per
    grid point, in grid order: its parameters, ``"nll"`` the mean held-out NLL over the folds,
    ``"nll_folds"`` each fold's, ``"std"`` their standard deviation), the number of ``folds``,
    the ``seed`` of the fold hash and ``fold_rows``, the rows of each fold."""

    chosen: dict[str, float]
    curve: tuple[dict[str, Any], ...]
    folds: int
    seed: int
    fold_rows: tuple[int, ...] = field(default=())
    criterion: str = "nll"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (a non-finite NLL as ``None``)."""
        curve = []
        for point in self.curve:
            entry = {k: v for k, v in point.items() if k not in ("nll", "nll_folds", "std")}
            entry["nll"] = _number(point["nll"])
            entry["std"] = _number(point["std"])
            entry["nll_folds"] = [_number(v) for v in point["nll_folds"]]
            curve.append(entry)
        return {
            "criterion": self.criterion,
            "folds": self.folds,
            "seed": self.seed,
            "fold_rows": list(self.fold_rows),
            "chosen": dict(self.chosen),
            "curve": curve,
        }

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<calibrator>") -> CVResult:
        """Read :meth:`to_dict`'s form back, every problem an :class:`InputError` naming
        ``source``."""

        def bad(problem: str) -> InputError:
            return InputError(source, f"cv: {problem}")

        if not isinstance(doc, dict):
            raise bad("must be a JSON object")
        for key in ("folds", "seed", "chosen", "curve"):
            if key not in doc:
                raise bad(f"missing {key!r}")
        folds, seed = doc["folds"], doc["seed"]
        if type(folds) is not int or folds < 2:
            raise bad(f"folds must be an integer >= 2; got {folds!r}")
        if type(seed) is not int:
            raise bad(f"seed must be an integer; got {seed!r}")
        criterion = doc.get("criterion", "nll")
        if criterion != "nll":
            raise bad(f"criterion must be 'nll'; got {criterion!r}")
        rows = doc.get("fold_rows", [])
        if not isinstance(rows, list) or any(type(r) is not int or r < 0 for r in rows):
            raise bad("fold_rows must be a list of non-negative integers")
        if rows and len(rows) != folds:
            raise bad(f"fold_rows has {len(rows)} entries for {folds} folds")

        def params(d: Any, where: str) -> dict[str, float]:
            if not isinstance(d, dict) or not d:
                raise bad(f"{where} must be a non-empty JSON object of numbers")
            out = {}
            for k, v in d.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise bad(f"{where}.{k} must be a finite number; got {v!r}")
                out[k] = float(v)
            return out

        def score(v: Any, where: str) -> float:
            if v is None:
                return math.nan
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise bad(f"{where} must be a number or null; got {v!r}")
            return float(v)

        chosen = params(doc["chosen"], "chosen")
        curve_doc = doc["curve"]
        if not isinstance(curve_doc, list) or not curve_doc:
            raise bad("curve must be a non-empty list")
        curve = []
        for i, entry in enumerate(curve_doc):
            where = f"curve[{i}]"
            if not isinstance(entry, dict):
                raise bad(f"{where} must be a JSON object")
            for key in ("nll", "nll_folds"):
                if key not in entry:
                    raise bad(f"{where} has no {key!r}")
            point = params(
                {k: v for k, v in entry.items() if k not in ("nll", "nll_folds", "std")}, where
            )
            if set(point) != set(chosen):
                raise bad(f"{where} has parameters {sorted(point)}, not {sorted(chosen)}")
            per_fold = entry["nll_folds"]
            if not isinstance(per_fold, list) or len(per_fold) != folds:
                raise bad(f"{where}.nll_folds must be a list of {folds} numbers")
            curve.append(
                {
                    **point,
                    "nll": score(entry["nll"], f"{where}.nll"),
                    "nll_folds": [score(v, f"{where}.nll_folds") for v in per_fold],
                    "std": score(entry.get("std"), f"{where}.std"),
                }
            )
        if not any(all(p[k] == v for k, v in chosen.items()) for p in curve):
            raise bad(f"the chosen point {chosen} is not on the curve")
        return cls(
            chosen=chosen,
            curve=tuple(curve),
            folds=folds,
            seed=seed,
            fold_rows=tuple(rows),
            criterion=criterion,
        )


def choose(curve: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> int:
    """The index of the point of ``curve`` with the lowest finite ``"nll"``, ties (within
    :data:`TIE_RTOL`) to the largest values of ``keys`` in order (the stronger penalty); -1
    when no point has a finite score."""
    finite = [i for i, p in enumerate(curve) if math.isfinite(p["nll"])]
    if not finite:
        return -1
    best = min(curve[i]["nll"] for i in finite)
    tol = TIE_RTOL * max(1.0, abs(best))
    tied = [i for i in finite if curve[i]["nll"] - best <= tol]
    return max(tied, key=lambda i: tuple(float(curve[i][k]) for k in keys))


def cross_validate(
    cls: Any,
    source: PredictionSource,
    grid: Sequence[Mapping[str, float]],
    *,
    folds: int = 5,
    seed: int = 0,
    chunk_rows: int | None = None,
    **fixed: Any,
) -> CVResult:
    """``folds``-fold cross-validation of the method ``cls`` over ``grid`` (a sequence of
    ``{name: value}`` points with the same names) on ``source``: for each point and fold,
    ``cls.fit_source(training view, chunk_rows=chunk_rows, **fixed, **point)`` and the mean
    NLL of the calibrated held-out fold (see the module docstring for the selection).

    A fold with fewer than 2 rows is a :class:`~calibkit.errors.UsageError`; so is an empty
    grid, points with different names, and a grid on which no fit gave a finite NLL.
    """
    points = [dict(p) for p in grid]
    if not points:
        raise UsageError("cross-validation needs at least one grid point")
    keys = list(points[0])
    for p in points:
        if list(p) != keys:
            raise UsageError(f"grid points must name the same parameters; {p} is not {keys}")
        overlap = set(p) & set(fixed)
        if overlap:
            raise UsageError(f"{sorted(overlap)} are both fixed and on the grid")
    sizes = check_folds(source, folds=folds, seed=seed)
    n = source.n_rows
    views = [  # the sizes are known: the views need not hash the row numbers again
        (
            FoldView(source, f, folds, seed, keep_fold=False, _n_rows=n - sizes[f]),
            FoldView(source, f, folds, seed, keep_fold=True, _n_rows=sizes[f]),
        )
        for f in range(folds)
    ]
    curve: list[dict[str, Any]] = []
    for point in points:
        per_fold = []
        for train, held in views:
            fitted = cls.fit_source(train, chunk_rows=chunk_rows, **fixed, **point)
            after = summarize(CalibratedPredictions(held, fitted), chunk_rows=chunk_rows)
            per_fold.append(float(after.nll))
        scores = np.asarray(per_fold, dtype=np.float64)
        curve.append(
            {
                **point,
                "nll": float(scores.mean()),
                "nll_folds": per_fold,
                "std": float(scores.std()),
            }
        )
    best = choose(curve, keys)
    if best < 0:
        raise UsageError(
            f"{source.source}: cross-validation of {getattr(cls, 'method', cls)!r}: no grid "
            "point gave a finite held-out NLL"
        )
    return CVResult(
        chosen={k: float(curve[best][k]) for k in keys},
        curve=tuple(curve),
        folds=int(folds),
        seed=int(seed),
        fold_rows=sizes,
    )
