"""Binned calibration errors: ECE, MCE and RMS calibration error.

With ``B_b`` the examples in bin ``b`` (see :mod:`calibkit.metrics.binning`), ``conf(B_b)`` their
mean confidence and ``acc(B_b)`` their mean outcome (the share whose top label is right):

* ``ECE   = sum_b |B_b|/N * |acc(B_b) - conf(B_b)|``            (Guo et al. 2017)
* ``MCE   = max_b |acc(B_b) - conf(B_b)|`` over non-empty bins
* ``RMSCE = sqrt(sum_b |B_b|/N * (acc(B_b) - conf(B_b))^2)``

Empty bins weigh 0 and are reported with ``None`` confidence and accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibkit.errors import InputError
from calibkit.metrics.binning import Binning, assign_bins, check_binning, check_n_bins

__all__ = [
    "BinTable",
    "bin_table",
    "expected_calibration_error",
    "maximum_calibration_error",
    "rms_calibration_error",
]


@dataclass(kw_only=True, frozen=True, eq=False)
class BinTable:
    """Per-bin sums; the calibration errors are derived from them.

    ``sum_confidence`` and ``sum_outcome`` are float64 sums over the examples in each bin; they
    (not means) are stored so that tables from separate chunks add up exactly.
    """

    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    count: NDArray[np.int64]
    sum_confidence: NDArray[np.float64]
    sum_outcome: NDArray[np.float64]
    binning: Binning = "width"
    #: rows the errors are averaged over; ``None``: those in the bins. Differs only for rules
    #: that leave some rows out of every bin (Guo et al.'s code skips confidence 0).
    total: int | None = None

    @property
    def n_bins(self) -> int:
        return int(self.count.size)

    @property
    def n(self) -> int:
        return int(self.count.sum()) if self.total is None else self.total

    @property
    def confidence(self) -> NDArray[np.float64]:
        """Mean confidence per bin (NaN for empty bins)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.sum_confidence / self.count, np.nan)

    @property
    def accuracy(self) -> NDArray[np.float64]:
        """Mean outcome per bin (NaN for empty bins)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.sum_outcome / self.count, np.nan)

    @property
    def gap(self) -> NDArray[np.float64]:
        """``accuracy - confidence`` per bin: negative where the model is over-confident."""
        return self.accuracy - self.confidence

    def to_list(self) -> list[dict[str, float | int | None]]:
        """The bins as JSON objects: ``lower``, ``upper``, ``count``, ``confidence`` and
        ``accuracy`` (``None`` for an empty bin's)."""

        def num(x: float) -> float | None:
            x = float(x)
            return None if np.isnan(x) or np.isinf(x) else x

        conf, acc = self.confidence, self.accuracy
        return [
            {
                "lower": float(self.lower[i]),
                "upper": float(self.upper[i]),
                "count": int(self.count[i]),
                "confidence": num(conf[i]),
                "accuracy": num(acc[i]),
            }
            for i in range(self.n_bins)
        ]

    def ece(self) -> float:
        """Expected calibration error (see the module docstring)."""
        n = self.n
        if n == 0:
            return float("nan")
        return float(np.abs(self.sum_outcome - self.sum_confidence).sum() / n)

    def mce(self) -> float:
        """Maximum calibration error over non-empty bins."""
        filled = self.count > 0
        if not filled.any():
            return float("nan")
        return float(np.abs(self.gap[filled]).max())

    def rmsce(self) -> float:
        """Root-mean-square calibration error."""
        n = self.n
        if n == 0:
            return float("nan")
        filled = self.count > 0
        sq = (self.sum_outcome[filled] - self.sum_confidence[filled]) ** 2 / self.count[filled]
        return float(np.sqrt(sq.sum() / n))


def _as_vectors(
    confidences: ArrayLike, outcomes: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    conf = np.asarray(confidences, dtype=np.float64).reshape(-1)
    out = np.asarray(outcomes, dtype=np.float64).reshape(-1)
    if conf.shape != out.shape:
        raise InputError("<array>", f"{conf.size} confidences but {out.size} outcomes")
    if conf.size and (not np.isfinite(conf).all() or conf.min() < 0 or conf.max() > 1):
        raise InputError("<array>", "confidences must be finite and lie in [0, 1]")
    return conf, out


def bin_table(
    confidences: ArrayLike,
    outcomes: ArrayLike,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
) -> BinTable:
    """Bin confidences and sum confidences and outcomes per bin.

    >>> t = bin_table([0.2, 0.3, 0.9], [0, 1, 1], n_bins=2)
    >>> t.count.tolist(), t.accuracy.tolist()
    ([2, 1], [0.5, 1.0])
    """
    check_n_bins(n_bins)
    check_binning(binning)
    conf, out = _as_vectors(confidences, outcomes)
    idx, lower, upper = assign_bins(conf, n_bins, binning)
    return BinTable(
        lower=lower,
        upper=upper,
        count=np.bincount(idx, minlength=n_bins).astype(np.int64),
        sum_confidence=np.bincount(idx, weights=conf, minlength=n_bins).astype(np.float64),
        sum_outcome=np.bincount(idx, weights=out, minlength=n_bins).astype(np.float64),
        binning=binning,
    )


def expected_calibration_error(
    confidences: ArrayLike, outcomes: ArrayLike, *, n_bins: int = 15, binning: Binning = "width"
) -> float:
    """Binned ECE: sum over bins of ``|B|/N * |acc(B) - conf(B)|``.

    Bin ``b`` holds ``(b-1)/M < conf <= b/M`` (see :mod:`calibkit.metrics.binning`).

    >>> expected_calibration_error([0.9, 0.9], [1, 0], n_bins=10)
    0.4
    >>> expected_calibration_error([0.25, 0.75], [0, 1], n_bins=2)  # 1/2*.25 + 1/2*.25
    0.25
    """
    return bin_table(confidences, outcomes, n_bins=n_bins, binning=binning).ece()


def maximum_calibration_error(
    confidences: ArrayLike, outcomes: ArrayLike, *, n_bins: int = 15, binning: Binning = "width"
) -> float:
    """Largest ``|acc(B) - conf(B)|`` over non-empty bins.

    >>> maximum_calibration_error([0.25, 0.75, 0.75], [0, 1, 0], n_bins=2)
    0.25
    """
    return bin_table(confidences, outcomes, n_bins=n_bins, binning=binning).mce()


def rms_calibration_error(
    confidences: ArrayLike, outcomes: ArrayLike, *, n_bins: int = 15, binning: Binning = "width"
) -> float:
    """``sqrt(sum_b |B_b|/N * (acc(B_b) - conf(B_b))^2)``.

    >>> rms_calibration_error([0.9, 0.9], [1, 0], n_bins=10)
    0.4
    """
    return bin_table(confidences, outcomes, n_bins=n_bins, binning=binning).rmsce()
