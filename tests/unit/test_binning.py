"""Bin assignment: the edge rules written in calibkit.metrics.binning, checked by hand."""

from fractions import Fraction

import numpy as np
import pytest

from calibkit.errors import UsageError
from calibkit.metrics.binning import (
    assign_bins,
    assign_mass_bins,
    assign_width_bins,
    mass_bin_edges,
    width_bin_edges,
)


@pytest.mark.parametrize(
    ("conf", "n_bins", "expected"),
    [
        (0.0, 10, 0),  # exactly 0 falls in bin 1
        (1e-300, 10, 0),
        (0.1, 10, 0),  # 1/M exactly (as typed) is the upper edge of bin 1
        (np.nextafter(0.1, 1), 10, 1),
        (0.7, 10, 6),  # linspace would put the edge at 0.7000000000000001
        (np.nextafter(0.7, 1), 10, 7),
        (1 / 15, 15, 0),
        (2 / 15, 15, 1),
        (14 / 15, 15, 13),
        (np.nextafter(14 / 15, 1), 15, 14),
        (1.0, 15, 14),  # exactly 1 falls in bin M
        (0.5, 1, 0),
        (1.0, 1, 0),
    ],
)
def test_width_bins_on_and_near_edges(conf: float, n_bins: int, expected: int) -> None:
    assert assign_width_bins([conf], n_bins).tolist() == [expected]


@pytest.mark.parametrize("n_bins", [1, 2, 3, 7, 10, 15, 20, 30, 100, 1000])
def test_width_bins_agree_with_exact_rationals_off_the_edges(n_bins: int) -> None:
    rng = np.random.default_rng(n_bins)
    edges = width_bin_edges(n_bins)
    conf = np.concatenate(
        [rng.random(500), np.nextafter(edges, 2.0), np.nextafter(edges, -1.0), edges]
    )
    conf = conf[(conf >= 0) & (conf <= 1)]
    got = assign_width_bins(conf, n_bins)
    for c, b in zip(conf.tolist(), got.tolist(), strict=True):
        if c in edges:
            # on an edge (the double nearest b/M): belongs to the bin it closes
            k = int(np.flatnonzero(edges == c)[0])
            assert b == max(k, 1) - 1
        else:
            exact = Fraction(c) * n_bins
            assert b == max(1, -(-exact.numerator // exact.denominator)) - 1


def test_edges_are_correctly_rounded_not_linspace() -> None:
    edges = width_bin_edges(10)
    assert edges[7] == 0.7
    assert np.linspace(0, 1, 11)[7] != 0.7  # the reason for doing it this way
    assert edges[0] == 0.0 and edges[-1] == 1.0


def test_mass_bins_split_evenly_and_keep_ties_together() -> None:
    conf = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    upper = mass_bin_edges(conf, 3)
    assert upper.tolist() == [0.2, 0.4, 0.6]
    assert assign_mass_bins(conf, upper).tolist() == [0, 0, 1, 1, 2, 2]
    tied = np.array([0.5, 0.5, 0.5, 0.9])
    idx, _, _ = assign_bins(tied, 2, "mass")
    assert idx.tolist() == [0, 0, 0, 1]  # ties never straddle a boundary


def test_mass_bins_more_bins_than_rows() -> None:
    idx, lower, upper = assign_bins([0.3, 0.8], 5, "mass")
    assert idx.tolist() == [0, 2]
    assert upper.tolist() == [0.3, 0.3, 0.8, 0.8, 0.8]
    assert lower[0] == 0.0


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_bad_bin_counts_are_refused(bad: object) -> None:
    with pytest.raises(UsageError, match="n_bins"):
        assign_width_bins([0.5], bad)  # type: ignore[arg-type]


def test_unknown_binning() -> None:
    with pytest.raises(UsageError, match="binning"):
        assign_bins([0.5], 3, "quantile")  # type: ignore[arg-type]
