"""Metrics as a function of the temperature, each chunk read once for every temperature.

For a grid of temperatures ``T_1 .. T_S``, :func:`sweep_temperatures` reads each chunk of
logits once, centres it once (argmax, label logits and class counts are shared across
temperatures) and then, block of rows by block of rows (:data:`BLOCK_ELEMENTS`, so that the
block stays in the core's cache), for every ``T_s``: one multiply, one ``exp`` and two row
reductions (``s = sum_k e`` and ``q = sum_k e^2`` with ``e = exp(zc / T_s)``) plus the label's
``e_y``. Everything else is per row and batched over the temperatures
(:mod:`calibkit.calibrators.kernels`): confidence ``1 / s`` (the centred maximum is 0), log
probability of the label ``zc_y / T - log s``, Brier ``q / s^2 - 2 e_y / s + 1``. The numbers
are those of :func:`~calibkit.metrics.examples.logit_stats` at each temperature: ECE, MCE and
NLL bit for bit, the Brier score to ~1e-16 (``q`` is a BLAS dot product). Cost: about 1.2
``exp`` passes per temperature (issue #13 measured the ratio with
``benchmarks/bench_temperature.py --sweep-only``); memory: a few chunks plus ``O(S * bins)``.
Accuracy does not depend on ``T`` and is reported once; ``n`` counts the rows read. A
temperature at which a metric overflows float64 (a tiny ``T`` on logits far apart) is refused
with a message naming it, rather than reported as ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from calibkit.calibrators.kernels import (
    BLOCK_ELEMENTS,
    BatchAccumulator,
    BatchSums,
    batch_sums,
    centre_chunk,
    exp_rows,
)
from calibkit.calibrators.temperature import as_logits, require_scores
from calibkit.engine.executors import scratch
from calibkit.engine.passes import Chunk, run_pass
from calibkit.errors import InputError, UsageError
from calibkit.metrics.binning import Binning, check_binning, check_n_bins
from calibkit.metrics.selection import refuse_distributed
from calibkit.sources.predictions import PredictionSource

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


@dataclass(kw_only=True, frozen=True, eq=False)
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

    >>> from calibkit.sources.predictions import Predictions
    >>> p = Predictions.from_arrays([[2.0, 0.0], [0.0, 2.0]], [0, 0])
    >>> sw = sweep_temperatures(p, [1.0, 2.0], n_bins=10)
    >>> [round(x, 4) for x in sw.nll.tolist()]
    [1.1269, 0.8133]
    """
    require_scores(source)
    temps = np.asarray(temperatures, dtype=np.float64).reshape(-1)
    if temps.size == 0 or not np.isfinite(temps).all() or (temps <= 0).any():
        raise UsageError("temperatures must be finite numbers > 0")
    n_bins = check_n_bins(n_bins)
    binning = check_binning(binning)
    if binning == "mass":  # every temperature's bins need its own edges
        refuse_distributed(
            f"{source.source}: a sweep's equal-mass bins keep every row's confidence at every "
            "temperature"
        )
    betas = 1.0 / temps
    beta_list = betas.tolist()
    kind = source.kind
    n_classes = source.n_classes

    def chunk(part: Chunk) -> BatchSums:
        scores, labels = part.scores, part.labels
        z = as_logits(scores, kind, out=scratch("logits", scores.shape))  # this thread's
        c = centre_chunk(z, labels, n_classes=n_classes)  # (no temperature changes the argmax)
        n, k = z.shape
        step = max(1, BLOCK_ELEMENTS // k)
        e_all = scratch("work", (min(n, step), k))
        shape = (len(beta_list), n)
        s, q, e_y = np.empty(shape), np.empty(shape), np.empty(shape)
        for start in range(0, n, step):  # row blocks that stay in the core's cache
            stop = min(n, start + step)
            block, e = c.rows(start, stop), e_all[: stop - start]
            for j, beta in enumerate(beta_list):
                exp_rows(
                    block,
                    beta,
                    e,
                    s[j, start:stop],
                    q[j, start:stop],
                    e_y[j, start:stop],
                    dot_q=True,
                )
        return batch_sums(c, betas, s, q, e_y, n_bins=n_bins, binning=binning)

    acc = BatchAccumulator(len(beta_list), n_classes, n_bins=n_bins, binning=binning)
    run_pass(
        source,
        chunk,
        acc.merge,
        chunk_rows=chunk_rows,
        description=f"{source.source}: sweep of {temps.size} T",
    )
    results = []
    for j, t in enumerate(temps.tolist()):
        try:
            results.append(acc.accumulator(j).result(source=source.source))
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
