"""Calibration estimators beyond the plug-in binned ECE.

All are computed from per-bin sums or per-example statistics — no second softmax.

Over/under-confidence split
    ``ECE = ECE_over + ECE_under`` with ``ECE_over = sum_b |B_b|/N * max(conf_b - acc_b, 0)``
    (bins where the model is over-confident) and ``ECE_under`` the rest.

Debiased squared L2 calibration error (Kumar, Liang & Ma 2019, "Verified Uncertainty
Calibration", NeurIPS)
    The plug-in ``sum_b p_b (acc_b - conf_b)^2`` is biased upwards by the sampling variance of
    each bin's accuracy. The debiased estimate subtracts it:
    ``sum_b p_b [(acc_b - conf_b)^2 - acc_b (1 - acc_b) / (n_b - 1)]``, bins with ``n_b < 2``
    contributing 0. It estimates the **squared** L2 error (it can be slightly negative for a
    well-calibrated model); ``rmsce_debiased = sqrt(max(0, .))`` is on the scale of RMSCE. The
    correction assumes 0/1 outcomes (for fractional outcomes it over-corrects). It uses the bins
    of the chosen binning (Kumar et al. recommend equal-mass bins).

Smooth ECE (Błasiok & Nakkiran 2023, "Smooth ECE: Principled Reliability Diagrams via Kernel
Smoothing")
    With residuals ``r_i = y_i - f_i`` and a Gaussian kernel ``K_s`` reflected at 0 and 1,
    ``smECE_s = ∫_0^1 |(1/N) sum_i K_s(t, f_i) r_i| dt``; it decreases in ``s``, and smECE is its
    value at the fixed point ``smECE_s = s`` (found by bisection). Binning-free; the smoothed
    reliability curve is ``t + (sum_i K_s(t, f_i) r_i) / (sum_i K_s(t, f_i))`` with density
    ``(1/N) sum_i K_s(t, f_i)``. Confidences are placed on a grid of 2 000 cells first (error
    below 2.5e-4 in position); the fully reflected kernel is applied exactly by FFT.

Bin sensitivity
    The plug-in ECE for M in {5, 10, 15, 20, 30} with equal-width and equal-mass bins, to see how
    much of a difference between two models is an artefact of binning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibkit.metrics.binning import BINNINGS
from calibkit.metrics.calibration import BinTable, bin_table

__all__ = [
    "SmoothECE",
    "bin_sensitivity",
    "debiased_squared_ce",
    "over_under_confidence",
    "smooth_ece",
]

SENSITIVITY_BINS = (5, 10, 15, 20, 30)


def over_under_confidence(table: BinTable) -> tuple[float, float]:
    """``(ECE_over, ECE_under)``: the parts of ECE from over- and under-confident bins.

    >>> from calibkit.metrics import bin_table
    >>> over_under_confidence(bin_table([0.9, 0.9, 0.2], [1, 0, 1], n_bins=2))
    (0.26666666666666666, 0.26666666666666666)
    """
    n = table.n
    diff = table.sum_confidence - table.sum_outcome  # > 0: over-confident
    return float(np.clip(diff, 0, None).sum() / n), float(np.clip(-diff, 0, None).sum() / n)


def debiased_squared_ce(table: BinTable) -> float:
    """Kumar et al.'s debiased estimate of the squared L2 calibration error (module docstring).

    >>> from calibkit.metrics import bin_table
    >>> t = bin_table([0.5] * 4, [1, 1, 0, 0], n_bins=1)  # acc 0.5 = conf: plug-in 0
    >>> round(debiased_squared_ce(t), 6)  # minus 0.25 / 3
    -0.083333
    """
    n = table.n
    count = table.count.astype(np.float64)
    ok = count >= 2
    acc = table.sum_outcome[ok] / count[ok]
    conf = table.sum_confidence[ok] / count[ok]
    per_bin = (acc - conf) ** 2 - acc * (1 - acc) / (count[ok] - 1)
    return float((count[ok] / n * per_bin).sum())


@dataclass(frozen=True, eq=False)
class SmoothECE:
    """Smooth ECE, its bandwidth, and the smoothed reliability curve on ``t``."""

    value: float
    bandwidth: float
    t: NDArray[np.float64]
    curve: NDArray[np.float64]  # smoothed accuracy at confidence t (NaN where no mass)
    density: NDArray[np.float64]


def _reflected_smooth(values: NDArray[np.float64], s: float) -> NDArray[np.float64]:
    """Convolve grid masses on [0, 1] with a Gaussian of width ``s`` reflected at 0 and 1.

    Reflecting at both ends is a periodic convolution on [-1, 1) of the masses mirrored about 0
    (period 2), done exactly with an FFT; the periodic Gaussian sums enough wraps for s <= 1.
    Returns the smoothed density at the ``G`` cell centres of [0, 1].
    """
    g = values.size
    ext = np.concatenate([values[::-1], values])  # cells of [-1, 0) then [0, 1)
    offsets = np.arange(2 * g, dtype=np.float64)
    offsets[offsets >= g] -= 2 * g  # circular distance in cells
    d = offsets / g
    kernel = np.zeros(2 * g)
    for wrap in range(-4, 5):
        kernel += np.exp(-0.5 * ((d + 2.0 * wrap) / s) ** 2)
    kernel /= s * np.sqrt(2 * np.pi)
    out = np.fft.irfft(np.fft.rfft(ext) * np.fft.rfft(kernel), n=2 * g)
    result: NDArray[np.float64] = out[g:]
    return result


def smooth_ece(
    confidences: ArrayLike, outcomes: ArrayLike, *, grid: int = 2000, rtol: float = 1e-6
) -> SmoothECE:
    """Smooth ECE with its automatic bandwidth (see the module docstring).

    >>> round(smooth_ece([0.7] * 10, [1] * 6 + [0] * 4).value, 3)  # constant miscalibration
    0.1
    >>> round(smooth_ece([0.95] * 100, [1] * 20 + [0] * 80).value, 3)
    0.75
    """
    f = np.asarray(confidences, dtype=np.float64).ravel()
    y = np.asarray(outcomes, dtype=np.float64).ravel()
    n = f.size
    cells = (np.arange(grid) + 0.5) / grid
    idx = np.minimum((f * grid).astype(np.intp), grid - 1)
    mass = np.bincount(idx, minlength=grid) / n
    resid = np.bincount(idx, weights=y - f, minlength=grid) / n

    def sm(s: float) -> float:
        return float(np.abs(_reflected_smooth(resid, s)).mean())

    lo, hi = 1e-4, 1.0
    if sm(hi) >= hi:  # miscalibrated by the whole range: the fixed point is at 1
        lo = hi
    while hi > lo * (1 + rtol):
        mid = np.sqrt(lo * hi)
        if sm(mid) > mid:
            lo = mid
        else:
            hi = mid
    s = float(np.sqrt(lo * hi))
    density = _reflected_smooth(mass, s)
    smoothed = _reflected_smooth(resid, s)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = np.where(density > 1e-12, np.clip(cells + smoothed / density, 0, 1), np.nan)
    return SmoothECE(float(np.abs(smoothed).mean()), s, cells, curve, density)


def bin_sensitivity(
    confidences: ArrayLike,
    outcomes: ArrayLike,
    bins: Sequence[int] = SENSITIVITY_BINS,
) -> list[dict[str, object]]:
    """Plug-in ECE for every bin count in ``bins`` with both binnings.

    >>> [r["n_bins"] for r in bin_sensitivity([0.9, 0.8], [1, 0], bins=(5, 10))]
    [5, 10, 5, 10]
    """
    return [
        {
            "binning": binning,
            "n_bins": m,
            "ece": bin_table(confidences, outcomes, n_bins=m, binning=binning).ece(),
        }
        for binning in BINNINGS
        for m in bins
    ]
