"""Metrics as a function of the temperature, each chunk read once for every temperature.

For a grid of temperatures ``T_1 .. T_S``, :func:`sweep_temperatures` reads each chunk of
logits once and, for every ``T_s``, runs the single softmax pass of
:func:`~calibkit.metrics.examples.example_stats` on ``z / T_s`` into that temperature's float64
accumulators. Cost: about one ``exp`` per temperature
(centring, argmax and label logits are shared across temperatures); memory: a few chunks plus
``O(S * bins)``.
Accuracy does not depend on ``T`` and is reported once; ``n`` counts the rows read. A
temperature at which a metric overflows float64 (a tiny ``T`` on logits far apart) is refused
with a message naming it, rather than reported as ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit import progress
from calibkit.calibrators.temperature import as_logits, require_scores
from calibkit.errors import InputError, UsageError
from calibkit.metrics.binning import Binning
from calibkit.metrics.examples import center_logits, logit_stats
from calibkit.metrics.summary import ChunkSums, MetricAccumulator
from calibkit.parallel import map_chunks, scratch
from calibkit.predictions import PredictionSource

__all__ = ["TemperatureSweep", "sweep_temperatures", "temperature_grid"]


def temperature_grid(
    t_min: float = 0.5, t_max: float = 3.0, steps: int = 51
) -> NDArray[np.float64]:
    """``steps`` evenly spaced temperatures from ``t_min`` to ``t_max`` (both included).

    >>> temperature_grid(0.5, 1.5, 3).tolist()
    [0.5, 1.0, 1.5]
    """
    if not (0 < t_min <= t_max) or not math.isfinite(t_max):
        raise UsageError(f"need 0 < t_min <= t_max; got t_min={t_min}, t_max={t_max}")
    if steps < 1 or (steps == 1 and t_min != t_max):
        raise UsageError(f"steps must be >= 2 for a range (>= 1 when t_min == t_max); got {steps}")
    return np.linspace(t_min, t_max, steps)


@dataclass(frozen=True, eq=False)
class TemperatureSweep:
    """ECE, MCE, NLL and Brier of one model at each temperature (arrays of shape ``(S,)``)."""

    name: str
    temperatures: NDArray[np.float64]
    ece: NDArray[np.float64]
    mce: NDArray[np.float64]
    nll: NDArray[np.float64]
    brier: NDArray[np.float64]
    accuracy: float
    n: int
    n_bins: int
    binning: Binning

    def best(self, metric: str) -> tuple[float, float]:
        """``(temperature, value)`` with the lowest ``metric`` on the grid (first on ties)."""
        values: NDArray[np.float64] = getattr(self, metric)
        i = int(np.argmin(values))
        return float(self.temperatures[i]), float(values[i])

    def at(self, temperature: float, metric: str) -> float | None:
        """The value at a grid temperature, or ``None`` if it is not on the grid."""
        hits = np.flatnonzero(np.isclose(self.temperatures, temperature, rtol=0, atol=1e-12))
        return float(getattr(self, metric)[hits[0]]) if hits.size else None


def sweep_temperatures(
    source: PredictionSource,
    temperatures: Sequence[float] | NDArray[np.float64],
    *,
    name: str | None = None,
    n_bins: int = 15,
    binning: Binning = "width",
    chunk_rows: int | None = None,
) -> TemperatureSweep:
    """Metrics of ``softmax(z / T)`` for every ``T`` in ``temperatures``; one read of the data.

    >>> from calibkit.predictions import Predictions
    >>> p = Predictions.from_arrays([[2.0, 0.0], [0.0, 2.0]], [0, 0])
    >>> sw = sweep_temperatures(p, [1.0, 2.0], n_bins=10)
    >>> [round(x, 4) for x in sw.nll.tolist()]
    [1.1269, 0.8133]
    """
    require_scores(source)
    temps = np.asarray(temperatures, dtype=np.float64).reshape(-1)
    if temps.size == 0 or not np.isfinite(temps).all() or (temps <= 0).any():
        raise UsageError("temperatures must be finite numbers > 0")
    accs = [
        MetricAccumulator(source.n_classes, n_bins=n_bins, binning=binning, kind="logits")
        for _ in temps
    ]
    betas = (1.0 / temps).tolist()
    kind = source.kind

    def chunk(part: tuple[NDArray[np.floating], NDArray[Any]]) -> list[ChunkSums]:
        scores, labels = part
        z = as_logits(scores, kind, out=scratch("logits", scores.shape))  # this thread's
        zc, pred = center_logits(z, return_argmax=True, out=z)  # (no temperature changes pred)
        buffer = scratch("work", zc.shape)
        return [
            acc.sums(logit_stats(zc, labels, beta=beta, pred=pred, buffer=buffer), labels)
            for acc, beta in zip(accs, betas, strict=True)
        ]

    with progress.task(f"{source.source}: sweep of {temps.size} T", total=source.n_rows) as bar:
        for sums in map_chunks(chunk, source.chunks(chunk_rows)):
            for acc, part in zip(accs, sums, strict=True):
                acc.merge(part)
            bar.advance(sums[0].n)
    results = []
    for acc, t in zip(accs, temps.tolist(), strict=True):
        try:
            results.append(acc.result(source=source.source))
        except InputError as err:
            if acc.n == 0:
                raise
            raise InputError(
                source.source,
                f"at T = {t:g} the NLL overflows float64 (logits too far apart for so small a "
                "temperature); choose larger temperatures",
            ) from err
    return TemperatureSweep(
        name=name or source.source,
        temperatures=temps,
        ece=np.array([r.ece for r in results]),
        mce=np.array([r.mce for r in results]),
        nll=np.array([r.nll for r in results]),
        brier=np.array([r.brier for r in results]),
        accuracy=results[0].accuracy,
        n=results[0].n,
        n_bins=n_bins,
        binning=binning,
    )
