"""Assigning confidences to bins.

Two binnings are supported, both over [0, 1]:

``width`` (Guo et al. 2017)
    ``M`` equal-width bins. Bin ``b`` (1-based) holds ``(b-1)/M < conf <= b/M``; a confidence of
    exactly 0 falls in bin 1. The edges are the float64 values nearest to ``b/M``, each computed by
    one correctly rounded division (``b / M``), never accumulated as ``numpy.linspace`` does
    (``linspace(0, 1, 11)[7]`` is ``0.7000000000000001``). For every float64 confidence this gives
    the same bin as comparing with the exact rational edges, except that the double nearest to
    ``b/M`` (what a user types as ``0.7``) *is* taken to be the edge, and so belongs to bin ``b``.

``mass`` (adaptive binning, Nixon et al. 2019)
    ``M`` bins holding (nearly) equal numbers of examples. With the confidences sorted, the upper
    edge of bin ``b`` is the confidence of rank ``ceil(b*N/M) - 1`` (0-based); bin ``b`` holds the
    confidences in ``(upper_{b-1}, upper_b]``. Equal confidences are never split between bins, so
    the result does not depend on the order of the rows; with many ties, some bins hold more than
    ``N/M`` examples and some none. An edge of zero is ``+0.0`` (a confidence of ``-0.0`` equals
    it). On a cluster the edges are found exactly without sorting, by radix selection in a few
    extra passes (:func:`calibkit.metrics.selection.mass_edges`): the same edges, bit for bit.

Either binning takes ``1 <= M <=`` :data:`MAX_BINS` (10 000) bins. More bins than that leave
a handful of examples per bin for any realistic ``N``, so a binned estimate is noise, while every
per-bin output (the bin table, the JSON, a diagram, the bootstrap's per-bin sums) grows with ``M``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibkit.errors import UsageError
from calibkit.limits import MAX_BINS

__all__ = [
    "BINNINGS",
    "MAX_BINS",
    "Binning",
    "assign_bins",
    "assign_mass_bins",
    "assign_width_bins",
    "check_binning",
    "check_n_bins",
    "mass_bin_edges",
    "mass_ranks",
    "width_bin_edges",
]

Binning = Literal["width", "mass"]
BINNINGS: tuple[Binning, ...] = ("width", "mass")


def check_n_bins(n_bins: int) -> int:
    """Validate a bin count (an integer from 1 to :data:`MAX_BINS`), returning it as an int.

    >>> check_n_bins(10**6)
    Traceback (most recent call last):
    ...
    calibkit.errors.UsageError: n_bins must be an integer from 1 to 10000; got 1000000
    """
    integer = isinstance(n_bins, (int, np.integer)) and not isinstance(n_bins, bool)
    if not integer or not 1 <= n_bins <= MAX_BINS:
        got = str(n_bins) if integer else repr(n_bins)
        raise UsageError(f"n_bins must be an integer from 1 to {MAX_BINS}; got {got}")
    return int(n_bins)


def check_binning(binning: str) -> Binning:
    if binning not in BINNINGS:
        raise UsageError(f"binning must be one of {', '.join(BINNINGS)}; got {binning!r}")
    return binning


def width_bin_edges(n_bins: int) -> NDArray[np.float64]:
    """The ``M + 1`` edges ``b/M``, each the float64 nearest to the rational.

    >>> float(width_bin_edges(10)[7])
    0.7
    """
    m = check_n_bins(n_bins)
    return np.arange(m + 1, dtype=np.float64) / m


def assign_width_bins(confidences: ArrayLike, n_bins: int) -> NDArray[np.intp]:
    """0-based equal-width bin index of each confidence (see the module docstring).

    >>> assign_width_bins([0.0, 0.1, 0.10000000000000002, 0.7, 1.0], 10).tolist()
    [0, 0, 1, 6, 9]
    """
    conf = np.asarray(confidences, dtype=np.float64)
    edges = width_bin_edges(n_bins)
    # ceil(c*M) is right except within an ulp of an edge; one comparison on each side fixes that.
    idx = np.ceil(conf * n_bins).astype(np.intp)
    np.clip(idx, 1, n_bins, out=idx)
    idx += conf > edges[idx]
    idx -= conf <= edges[idx - 1]
    np.clip(idx, 1, n_bins, out=idx)
    idx -= 1
    return idx


def mass_ranks(n: int, n_bins: int) -> NDArray[np.int64]:
    """The 0-based ranks ``ceil(b*N/M) - 1`` (``b = 1..M``) of the sorted confidences that are
    the upper edges of equal-mass bins (none for ``N = 0``).

    >>> mass_ranks(10, 4).tolist()
    [2, 4, 7, 9]
    """
    m = check_n_bins(n_bins)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ranks = -(-np.arange(1, m + 1, dtype=np.int64) * n // m) - 1  # exact integer arithmetic
    return np.clip(ranks, 0, n - 1)


def mass_bin_edges(confidences: ArrayLike, n_bins: int) -> NDArray[np.float64]:
    """Upper edges of equal-mass bins: ``M`` values, the last one the largest confidence (all
    1.0 without confidences); an edge of zero is ``+0.0``.

    >>> mass_bin_edges([0.9, 0.2, 0.4, 0.6], 2).tolist()
    [0.4, 0.9]
    """
    m = check_n_bins(n_bins)
    conf = np.sort(np.asarray(confidences, dtype=np.float64).ravel())
    if conf.size == 0:
        return np.ones(m, dtype=np.float64)
    edges: NDArray[np.float64] = conf[mass_ranks(conf.size, m)] + 0.0  # -0.0 reads as +0.0
    return edges


def assign_mass_bins(confidences: ArrayLike, upper_edges: ArrayLike) -> NDArray[np.intp]:
    """0-based bin of each confidence, given the upper edges from :func:`mass_bin_edges`.

    >>> assign_mass_bins([0.9, 0.2, 0.4, 0.6], [0.4, 0.9]).tolist()
    [1, 0, 0, 1]
    """
    conf = np.asarray(confidences, dtype=np.float64)
    upper = np.asarray(upper_edges, dtype=np.float64)
    idx = np.searchsorted(upper, conf, side="left")
    return np.minimum(idx, upper.size - 1).astype(np.intp)


def assign_bins(
    confidences: ArrayLike, n_bins: int, binning: Binning = "width"
) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
    """Bin index of each confidence plus the ``(lower, upper)`` edges of every bin.

    For ``mass`` binning the lower edge of bin 1 is 0 and of bin ``b`` the upper edge of ``b-1``.
    """
    check_binning(binning)
    conf = np.asarray(confidences, dtype=np.float64)
    if binning == "width":
        edges = width_bin_edges(n_bins)
        return assign_width_bins(conf, n_bins), edges[:-1].copy(), edges[1:].copy()
    upper = mass_bin_edges(conf, n_bins)
    lower = np.concatenate(([0.0], upper[:-1]))
    return assign_mass_bins(conf, upper), lower, upper
