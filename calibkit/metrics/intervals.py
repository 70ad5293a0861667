"""Confidence intervals for a proportion, e.g. the accuracy of one reliability-diagram bin.

Wilson score interval (Wilson 1927, "Probable inference, the law of succession, and statistical
inference", JASA 22): the proportions ``p`` that a two-sided score test at level ``level`` does
not reject, i.e. the roots of ``(p_hat - p)^2 = z^2 p (1 - p) / n`` with ``p_hat = k / n`` and
``z`` the ``(1 + level) / 2`` quantile of the standard normal::

    centre = (p_hat + z^2 / (2 n)) / (1 + z^2 / n)
    half   = z / (1 + z^2 / n) * sqrt(p_hat (1 - p_hat) / n + z^2 / (4 n^2))

It stays inside ``[0, 1]``, is never empty at ``k = 0`` or ``k = n`` (unlike the Wald interval
``p_hat ± z sqrt(p_hat (1 - p_hat) / n)``), and its coverage is close to nominal already for a
few examples, which is why small reliability bins use it. ``k`` may be fractional (soft labels:
the bin's summed probability mass of the true class); the formula is then applied to ``k / n``.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibkit.errors import UsageError

__all__ = ["check_level", "normal_quantile", "wilson_interval"]


def check_level(level: float) -> float:
    """``level`` as a float, refused unless it lies in (0, 1).

    >>> check_level(0.95)
    0.95
    """
    value = float(level)
    if not 0 < value < 1:  # NaN fails too
        raise UsageError(f"an interval level must lie in (0, 1); got {level}")
    return value


def normal_quantile(level: float) -> float:
    """The two-sided critical value ``z`` of the standard normal for coverage ``level``.

    >>> round(normal_quantile(0.95), 6)
    1.959964
    """
    return NormalDist().inv_cdf(0.5 + check_level(level) / 2)


def wilson_interval(
    successes: ArrayLike, n: ArrayLike, level: float = 0.95
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Wilson score interval ``(lower, upper)`` for ``successes`` out of ``n``, elementwise.

    ``n == 0`` gives NaN bounds (nothing observed); ``successes == 0`` gives a lower bound of
    exactly 0 and ``successes == n`` an upper bound of exactly 1.

    >>> lo, hi = wilson_interval([0, 5, 10], [10, 10, 10])
    >>> np.round(lo, 4).tolist(), np.round(hi, 4).tolist()
    ([0.0, 0.2366, 0.7225], [0.2775, 0.7634, 1.0])
    """
    z = normal_quantile(level)
    k = np.asarray(successes, dtype=np.float64)
    m = np.asarray(n, dtype=np.float64)
    k, m = np.broadcast_arrays(k, m)
    if not (np.isfinite(k).all() and np.isfinite(m).all()):
        raise UsageError("successes and counts of an interval must be finite")
    if (m < 0).any() or (k < 0).any() or (k > m).any():
        raise UsageError("an interval needs 0 <= successes <= n")
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / m
        z2n = z * z / m
        centre = (p + z2n / 2) / (1 + z2n)
        half = z / (1 + z2n) * np.sqrt(p * (1 - p) / m + z2n / (4 * m))
        lower = np.where(k == 0, 0.0, np.clip(centre - half, 0.0, 1.0))
        upper = np.where(k == m, 1.0, np.clip(centre + half, 0.0, 1.0))
    empty = m == 0
    lower = np.where(empty, np.nan, lower)
    upper = np.where(empty, np.nan, upper)
    return lower.astype(np.float64), upper.astype(np.float64)
