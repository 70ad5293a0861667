"""Isotonic regression (Zadrozny & Elkan 2002): the non-decreasing map of the confidence that
minimises the squared error to the targets, by pool-adjacent-violators (PAV, scipy's
:func:`scipy.optimize.isotonic_regression`).

The fit is scikit-learn's ``IsotonicRegression(out_of_bounds="clip")`` exactly: the validation
scores are sorted, equal scores pooled (their targets averaged, weighted by their count), PAV
run on the pooled points, and of every constant run only its first and last point kept. The map
is then the **step function of the PAV blocks, joined linearly**: constant over each block's
range of scores, linear between the last score of one block and the first of the next (what
``np.interp`` does between the kept points), and clipped outside the validation range (a score
below the smallest validation score takes the first block's value, one above the largest the
last one's). Its display parameter ``steps`` counts the blocks (all maps together).

The outputs of the maps are combined by the reduction (:mod:`calibkit.calibrators.reductions`).
The fit holds every validation row's (score, target) in memory, O(N) numbers (O(N K) for
``ova``): PAV needs them sorted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from calibkit.calibrators import registry
from calibkit.calibrators.base import Calibrator, Hyperparameter
from calibkit.calibrators.reductions import (
    Columns,
    ReducedCalibrator,
    collect_columns,
    float_list,
    reduction_hyperparameter,
)
from calibkit.errors import InputError
from calibkit.sources.predictions import PredictionSource

__all__ = ["IsotonicRegression", "fit_isotonic_map"]

Knots = tuple[NDArray[np.float64], NDArray[np.float64]]


def fit_isotonic_map(x: NDArray[np.float64], t: NDArray[np.float64]) -> Knots:
    """The kept points ``(x, y)`` of the isotonic fit of ``t`` on ``x`` (module docstring)."""
    from scipy.optimize import isotonic_regression

    ux, inverse = np.unique(x, return_inverse=True)
    weight = np.bincount(inverse, minlength=ux.size).astype(np.float64)
    mean = np.bincount(inverse, weights=t, minlength=ux.size) / weight
    y = np.asarray(isotonic_regression(mean, weights=weight, increasing=True).x, dtype=np.float64)
    keep = np.ones(y.size, dtype=bool)
    if y.size > 2:
        keep[1:-1] = (y[1:-1] != y[:-2]) | (y[1:-1] != y[2:])
    return ux[keep].astype(np.float64), np.clip(y[keep], 0.0, 1.0)


def apply_isotonic_map(knots: Knots, x: NDArray[np.float64]) -> NDArray[np.float64]:
    kx, ky = knots
    out: NDArray[np.float64] = np.interp(x, kx, ky)  # constant beyond the ends: the clip
    return out


def _steps(knots: Knots) -> int:
    y = knots[1]
    return int(1 + np.count_nonzero(np.diff(y) != 0))


@dataclass(frozen=True, eq=False)
class IsotonicRegression(ReducedCalibrator):
    """Isotonic regression (method ``"isotonic"``; see the module docstring).

    Its display parameter is ``steps``; each map's kept points are in its JSON document.
    """

    method: ClassVar[str] = "isotonic"
    title: ClassVar[str] = "isotonic regression"
    abbreviation: ClassVar[str] = "IR"
    calibrated_as: ClassVar[str] = "isotonic-calibrated"
    symbols: ClassVar[Mapping[str, str]] = {"steps": "steps"}
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = (reduction_hyperparameter(),)

    @classmethod
    def fit_source(
        cls,
        source: PredictionSource,
        *,
        chunk_rows: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> IsotonicRegression:
        """PAV on the (score, target) pairs of ``source`` by the reduction (``device``: unused)."""
        reduction, _ = cls.prepare(source, options)
        x, t = collect_columns(source, reduction, chunk_rows=chunk_rows)
        maps = tuple(fit_isotonic_map(x[:, m], t[:, m]) for m in range(x.shape[1]))
        return cls(
            maps=maps,
            reduction=reduction,
            n_classes=source.n_classes,
            fitted_on=source.source,
            input_kind="probs" if source.kind == "probs" else "logits",
            n=int(x.shape[0]),
        )

    def parameters(self) -> dict[str, float]:
        return {"steps": sum(_steps(k) for k in self.maps)}

    def map_values(self, cols: Columns) -> NDArray[np.float64]:
        out = np.empty_like(cols.p)
        for m, knots in enumerate(self.maps):  # one map (top, binary) or one per class (ova)
            out[:, m] = apply_isotonic_map(knots, cols.p[:, m])
        return out

    def maps_to_json(self) -> list[Any]:
        return [{"x": x.tolist(), "y": y.tolist()} for x, y in self.maps]

    @classmethod
    def maps_from_json(cls, maps: list[Any], source: str) -> Any:
        out = []
        for i, m in enumerate(maps):
            if not isinstance(m, dict):
                raise InputError(source, f"maps[{i}] must be a JSON object")
            x = float_list(m.get("x"), source, f"maps[{i}].x", low=0, high=1)
            y = float_list(m.get("y"), source, f"maps[{i}].y", low=0, high=1, size=x.size)
            if (np.diff(x) <= 0).any():
                raise InputError(source, f"maps[{i}].x must be strictly increasing")
            if (np.diff(y) < 0).any():
                raise InputError(source, f"maps[{i}].y must be non-decreasing")
            out.append((x, y))
        return tuple(out)


registry.register(IsotonicRegression.method, IsotonicRegression)
_IS_A_CALIBRATOR: type[Calibrator] = IsotonicRegression  # mypy checks the protocol here
