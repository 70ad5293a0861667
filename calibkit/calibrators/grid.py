"""Temperature scaling by grid search: the grid temperature with the lowest validation ECE or NLL.

Some published results chose ``T`` this way rather than by the NLL optimum; Mukhoti et al. (2020)
kept the ``T`` of ``0.1, 0.2, ..., 10.0`` with the lowest validation ECE (15 equal-width bins).
:func:`fit_temperature_grid` reproduces that recipe for any grid, objective (``"ece"`` or
``"nll"``) and binning:

- The grid is ``START:STOP:STEP`` with both ends included (:func:`parse_grid`). It is parsed as
  exact decimals, so ``0.1:10:0.1`` holds exactly the 100 points ``0.1, 0.2, ..., 10`` (each the
  float nearest to its decimal value: ``0.3``, not ``0.30000000000000004``), the last point is
  never lost to rounding, and a ``STOP`` that is not ``START`` plus a whole number of steps is
  refused rather than silently moved.
- One read of the data evaluates every grid temperature
  (:func:`~calibkit.calibrators.sweep.sweep_temperatures`); ``T = 1`` rides along for the
  "before" NLL when it is not on the grid. Probability inputs take one more read, counting the
  stored zeros (``passes`` says 2).
- Ties go to the first minimum, the smallest tied ``T``, as a strict ``<`` scan would choose; the
  number of tied points is kept (``ties``). A minimum at either end of a grid of two or more
  points is flagged (``clamped``) and warned about: the best ``T`` may lie beyond it.
- The ECE is an estimate on finitely many examples and is not smooth in ``T``, so the NLL
  optimum (:func:`~calibkit.calibrators.temperature.fit_temperature`, exact Newton) stays the
  default everywhere; the grid is for matching a recipe or a paper.

The result is a :class:`GridTemperatureScaler`: a :class:`TemperatureScaler` (so ``apply-temp``
and :meth:`TemperatureScaler.load` read its JSON) whose document also records ``objective`` and
``grid``.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from calibkit.calibrators.base import Calibrator
from calibkit.calibrators.sweep import sweep_temperatures
from calibkit.calibrators.temperature import (
    TemperatureFit,
    TemperatureScaler,
    _as_source,
    require_scores,
)
from calibkit.engine.passes import Chunk, run_pass
from calibkit.errors import ConvergenceWarning, InputError, UsageError
from calibkit.limits import MAX_SWEEP_CELLS, MAX_TEMPERATURES
from calibkit.metrics.binning import Binning, check_binning, check_n_bins
from calibkit.sources.predictions import PredictionSource, ScoreKind

__all__ = [
    "OBJECTIVES",
    "GridObjective",
    "GridTemperatureScaler",
    "TemperatureGrid",
    "calibrator_json",
    "check_grid_cells",
    "fit_temperature_grid",
    "parse_grid",
]

GridObjective = Literal["ece", "nll"]
OBJECTIVES: tuple[GridObjective, ...] = ("ece", "nll")

# a plain decimal: digits with an optional fraction and an optional (short) exponent; no sign
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?")


@dataclass(frozen=True)
class TemperatureGrid:
    """The temperatures ``START, START + STEP, ..., STOP`` (both ends included).

    ``spec`` is the grid as written; ``values`` are the floats nearest to the exact decimal
    points ``START + i * STEP``.

    >>> g = parse_grid("0.1:1:0.1")
    >>> g.size, g.values[2], g.values[-1]
    (10, 0.3, 1.0)
    """

    spec: str
    start: float
    stop: float
    step: float
    values: tuple[float, ...]

    @property
    def size(self) -> int:
        return len(self.values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "start": self.start,
            "stop": self.stop,
            "step": self.step,
            "size": self.size,
        }


def _decimal(part: str, name: str, spec: str) -> Fraction:
    if not _NUMBER.fullmatch(part):
        raise UsageError(
            f"grid {spec!r}: {name} must be a decimal number such as 0.1 or 1e-2; got {part!r}"
        )
    try:
        return Fraction(Decimal(part))
    except (InvalidOperation, ValueError):  # pragma: no cover - the pattern admits only numbers
        raise UsageError(f"grid {spec!r}: {name} must be a decimal number; got {part!r}") from None


def _float(x: Fraction, name: str, spec: str) -> float:
    try:
        value = float(x)
    except OverflowError:
        value = math.inf
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"grid {spec!r}: {name} is outside the range of positive float64 numbers")
    return value


def parse_grid(spec: str, *, max_size: int = MAX_TEMPERATURES) -> TemperatureGrid:
    """Parse ``START:STOP:STEP`` into a :class:`TemperatureGrid`, exactly (see the module
    docstring). Refused with a :class:`~calibkit.errors.UsageError` naming the problem: not
    three numbers, ``START <= 0``, ``STEP <= 0``, ``STOP < START``, ``STOP`` not on the grid,
    more than ``max_size`` points (default :data:`calibkit.limits.MAX_TEMPERATURES`), or a step
    too fine for float64 to tell neighbouring points apart.

    >>> parse_grid("0.1:10:0.1").size
    100
    >>> parse_grid("0.5:2:0.5").values
    (0.5, 1.0, 1.5, 2.0)
    >>> parse_grid("0.1:1:0.4")
    Traceback (most recent call last):
    ...
    calibkit.errors.UsageError: grid '0.1:1:0.4': STOP is not START plus a whole number of \
steps (the points before and after it are 0.9 and 1.3)
    """
    if not isinstance(spec, str):
        raise UsageError(f"a grid must be a string START:STOP:STEP; got {spec!r}")
    parts = [p.strip() for p in spec.split(":")]
    if len(parts) != 3:
        raise UsageError(f"grid {spec!r}: expected START:STOP:STEP, e.g. 0.1:10:0.1")
    start, stop, step = (
        _decimal(p, n, spec) for p, n in zip(parts, ("START", "STOP", "STEP"), strict=True)
    )
    if start <= 0:
        raise UsageError(f"grid {spec!r}: START must be > 0 (a temperature); got {parts[0]}")
    if step <= 0:
        raise UsageError(f"grid {spec!r}: STEP must be > 0; got {parts[2]}")
    if stop < start:
        raise UsageError(f"grid {spec!r}: STOP must be >= START")
    steps = (stop - start) / step
    if steps.denominator != 1:
        below = start + math.floor(steps) * step
        raise UsageError(
            f"grid {spec!r}: STOP is not START plus a whole number of steps (the points before "
            f"and after it are {_show(below)} and {_show(below + step)})"
        )
    size = int(steps) + 1
    if size > max_size:
        raise UsageError(f"grid {spec!r}: {size} temperatures; at most {max_size} are allowed")
    first = _float(start, "START", spec)
    last = _float(stop, "STOP", spec)
    values = tuple(float(start + i * step) for i in range(size))
    repeated = next((v for a, v in itertools.pairwise(values) if v <= a), None)
    if repeated is not None:
        raise UsageError(
            f"grid {spec!r}: STEP is too fine for float64 near T = {repeated:g} (two grid points "
            "round to the same number)"
        )
    return TemperatureGrid(":".join(parts), first, last, _float(step, "STEP", spec), values)


def _show(x: Fraction) -> str:
    """A grid point as a short decimal (exact for the decimal grids :func:`parse_grid` takes)."""
    return f"{float(x):.15g}"


@dataclass(frozen=True)
class GridTemperatureScaler(TemperatureScaler):
    """A temperature chosen on a grid: a :class:`TemperatureScaler` that also records how.

    ``objective`` (``"ece"`` or ``"nll"``) was minimised over ``grid`` on the validation data;
    ``n_bins``/``binning`` are the bins of that ECE; ``objective_value`` is its value at the
    chosen ``T``, ``values`` its value at every grid point, ``ties`` how many grid points share
    the minimum (the first is kept). Its JSON adds ``objective`` and ``grid`` to the calibrator
    document; :meth:`TemperatureScaler.load` reads it back as a plain scaler.
    """

    objective: GridObjective = "ece"
    grid: TemperatureGrid | None = None
    n_bins: int = 15
    binning: Binning = "width"
    objective_value: float = math.nan
    values: tuple[float, ...] = ()
    ties: int = 1

    def grid_dict(self) -> dict[str, Any]:
        """The grid, the objective's bins, its value at ``T`` and ties, JSON-ready."""
        out: dict[str, Any] = self.grid.to_dict() if self.grid else {}
        ece = self.objective == "ece"
        out.update(
            {
                "n_bins": self.n_bins if ece else None,
                "binning": self.binning if ece else None,
                "best": _finite(self.objective_value),
                "ties": self.ties,
                "values": [_finite(v) for v in self.values],
            }
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        doc = super().to_dict()
        doc["objective"] = self.objective
        doc["grid"] = self.grid_dict()
        return doc

    def fit_details(self) -> dict[str, Any]:
        """As for the exact fit, with the grid's ``objective`` and ``grid``."""
        details = super().fit_details()
        details["objective"] = self.objective
        details["grid"] = self.grid_dict()
        return details


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def calibrator_json(scaler: Calibrator) -> str:
    """The calibrator document of ``scaler``; a temperature one with its ``objective`` and
    ``grid`` recorded: those of a :class:`GridTemperatureScaler`, else ``"nll"`` and ``null``
    (the exact NLL fit)."""
    import json

    doc = scaler.to_dict()
    if isinstance(scaler, TemperatureScaler):
        doc.setdefault("objective", "nll")
        doc.setdefault("grid", None)
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def check_grid_cells(grid: TemperatureGrid, n_bins: int) -> None:
    """Refuse a grid whose size times ``n_bins`` exceeds :data:`calibkit.limits.MAX_SWEEP_CELLS`
    (the per-bin sums a sweep keeps), as ``sweep-temp`` does."""
    cells = grid.size * n_bins
    if cells > MAX_SWEEP_CELLS:
        raise UsageError(
            f"grid {grid.spec!r}: {grid.size} temperatures x {n_bins} bins is {cells:.2g} "
            f"per-bin sums, above the limit of {MAX_SWEEP_CELLS:.0e}; use fewer temperatures "
            "or bins"
        )


def fit_temperature_grid(
    predictions: PredictionSource | ArrayLike,
    labels: ArrayLike | None = None,
    *,
    grid: TemperatureGrid | str,
    objective: GridObjective = "ece",
    n_bins: int = 15,
    binning: Binning = "width",
    kind: ScoreKind | None = None,
    chunk_rows: int | None = None,
) -> GridTemperatureScaler:
    """The grid temperature with the lowest validation ``objective`` (first minimum on ties).

    ``grid`` is a :class:`TemperatureGrid` or its ``START:STOP:STEP`` text; ``objective`` is
    ``"ece"`` (with ``n_bins`` bins of ``binning``) or ``"nll"``. Predictions are passed as for
    :func:`~calibkit.calibrators.temperature.fit_temperature`. The grid's size times ``n_bins``
    is bounded by :data:`calibkit.limits.MAX_SWEEP_CELLS`, as for a sweep.

    >>> z = np.array([[3.0, 0.0], [3.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    >>> ts = fit_temperature_grid(z, [0, 0, 1, 1], grid="1:4:0.5", objective="nll")
    >>> ts.temperature, ts.objective, ts.grid.size  # the exact NLL optimum is T = 2.73
    (3.0, 'nll', 7)
    """
    if objective not in OBJECTIVES:
        raise UsageError(f"objective must be one of {', '.join(OBJECTIVES)}; got {objective!r}")
    m = check_n_bins(n_bins)
    how = check_binning(binning)
    g = grid if isinstance(grid, TemperatureGrid) else parse_grid(grid)
    check_grid_cells(g, m)
    source = _as_source(predictions, labels, kind)
    require_scores(source)
    zero_probs = _count_zero_probs(source, chunk_rows) if source.kind == "probs" else 0

    temps = list(g.values)
    one = temps.index(1.0) if 1.0 in temps else len(temps)
    if one == len(temps):
        temps.append(1.0)  # the "before" NLL, in the same read
    sweep = sweep_temperatures(
        source, temps, n_bins=m, binning=how, chunk_rows=chunk_rows, name=source.source
    )
    curve = np.asarray(getattr(sweep, objective)[: g.size], dtype=np.float64)
    if not np.isfinite(curve).all():  # the sweep refuses overflow; never pick a NaN
        raise InputError(source.source, f"the {objective.upper()} is not finite on the grid")
    best = int(np.argmin(curve))  # the first minimum
    t = g.values[best]
    ties = int(np.count_nonzero(curve == curve[best]))
    what = f"validation {objective.upper()}"
    message = f"lowest {what} among the {g.size} temperatures of grid {g.spec}"
    if ties > 1:
        message += f"; {ties} grid points tie at the minimum, the smallest T is kept"
    clamped: Literal["t_min", "t_max"] | None = None
    if g.size > 1 and best in (0, g.size - 1):
        clamped = "t_min" if best == 0 else "t_max"
        side = "smallest" if best == 0 else "largest"
        message += f"; at the grid's {side} T, so the best T may lie beyond the grid"
        warnings.warn(
            f"{source.source}: the lowest {what} on grid {g.spec} is at its {side} temperature "
            f"T = {t:g}; the best T may lie beyond it (extend the grid)",
            ConvergenceWarning,
            stacklevel=2,
        )
    fit = TemperatureFit(
        temperature=t,
        nll_before=float(sweep.nll[one]),
        nll_after=float(sweep.nll[best]),
        gradient=math.nan,  # no derivative: a grid search
        passes=2 if source.kind == "probs" else 1,  # (probabilities: the read counting zeros)
        converged=True,
        clamped=clamped,
        n=sweep.n,
        t_min=g.values[0],
        t_max=g.values[-1],
        message=message,
        zero_probs=zero_probs,
    )
    return GridTemperatureScaler(
        t,
        fit=fit,
        fitted_on=source.source,
        n_classes=source.n_classes,
        input_kind="probs" if source.kind == "probs" else "logits",
        objective=objective,
        grid=g,
        n_bins=m,
        binning=how,
        objective_value=float(curve[best]),
        values=tuple(curve.tolist()),
        ties=ties,
    )


def _count_zero_probs(source: PredictionSource, chunk_rows: int | None) -> int:
    """Count (and warn about) stored probabilities of exactly 0, whose log the sweep reads as
    the log of the dtype's smallest positive number."""
    zeros = 0

    def count(chunk: Chunk) -> int:
        return int(np.count_nonzero(chunk.scores == 0))

    def add(part: int) -> None:
        nonlocal zeros
        zeros += part

    run_pass(
        source,
        count,
        add,
        chunk_rows=chunk_rows,
        description=f"{source.source}: counting zero probabilities",
    )
    if zeros:
        warnings.warn(
            f"{source.source}: {zeros} probabilit{'ies are' if zeros != 1 else 'y is'} exactly 0; "
            "the grid search takes log 0 as the log of the smallest positive number of the "
            "stored dtype",
            UserWarning,
            stacklevel=3,
        )
    return zeros
