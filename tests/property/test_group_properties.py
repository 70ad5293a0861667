"""Properties of per-group summaries (:func:`calibkit.stats.groups.summarize_groups`).

* permuting the rows leaves every group's numbers unchanged (to float64 summation order; the
  bin counts exactly);
* where a group's rows lie in the file does not matter: moving other groups' rows around
  (each group's rows kept in their order) changes nothing, not even the bootstrap intervals
  (a row's weight depends on its position within its group);
* the chunk size does not matter;
* micro is the pooled summary and macro the mean of the groups, whatever the data.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from calibkit.metrics import summarize
from calibkit.sources.groups import MemoryColumns
from calibkit.sources.predictions import Predictions
from calibkit.stats.groups import GroupedSummary, summarize_groups

METRICS = ("ece", "mce", "rmsce", "nll", "brier", "accuracy")


def _data(seed: int, n: int, k: int, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * rng.uniform(0.5, 4)
    y = rng.integers(0, k, n)
    groups = rng.integers(0, g, n).astype(str)
    return z, y, groups


def _summ(z: np.ndarray, y: np.ndarray, groups: np.ndarray, **kw: object) -> GroupedSummary:
    p = dataclasses.replace(Predictions.from_arrays(z, y), columns=MemoryColumns({"g": groups}))
    return summarize_groups(p, ["g"], **kw)  # type: ignore[arg-type]


def _by_key(gs: GroupedSummary) -> dict[tuple[str, ...], object]:
    return {g.key: g for g in gs.groups}


def _same(a: GroupedSummary, b: GroupedSummary, *, exact_order: bool = True) -> None:
    if exact_order:
        assert [g.key for g in a.groups] == [g.key for g in b.groups] or _tied(a)
    ka, kb = _by_key(a), _by_key(b)
    assert set(ka) == set(kb)
    for key, ga in ka.items():
        gb = kb[key]
        assert ga.n == gb.n and ga.small == gb.small  # type: ignore[attr-defined]
        assert np.array_equal(ga.summary.bins.count, gb.summary.bins.count)  # type: ignore[attr-defined]
        for m in METRICS:
            va, vb = getattr(ga.summary, m), getattr(gb.summary, m)  # type: ignore[attr-defined]
            assert np.isclose(va, vb, rtol=1e-11, atol=1e-14), (key, m, va, vb)


def _tied(gs: GroupedSummary) -> bool:
    """Whether two groups' ECEs are within summation noise (their order may then differ)."""
    eces = sorted(g.summary.ece for g in gs.groups)
    return any(abs(a - b) <= 1e-12 for a, b in itertools.pairwise(eces))


CASES = st.tuples(
    st.integers(0, 2**32 - 1), st.integers(1, 120), st.integers(2, 5), st.integers(1, 5)
)


@settings(max_examples=40, deadline=None)
@given(CASES, st.integers(0, 2**32 - 1), st.sampled_from(["width", "mass"]))
def test_permuting_the_rows_changes_no_group(case: tuple[int, int, int, int], perm_seed: int,
                                              binning: str) -> None:  # fmt: skip
    z, y, groups = _data(*case)
    order = np.random.default_rng(perm_seed).permutation(len(y))
    a = _summ(z, y, groups, n_bins=7, binning=binning)
    b = _summ(z[order], y[order], groups[order], n_bins=7, binning=binning)
    _same(a, b)
    for m in METRICS:
        assert np.isclose(a.macro[m], b.macro[m], rtol=1e-11, atol=1e-14)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(CASES, st.integers(0, 2**32 - 1))
def test_where_the_groups_lie_in_the_file_does_not_matter(
    case: tuple[int, int, int, int], seed: int
) -> None:
    z, y, groups = _data(*case)
    # a new interleaving of the groups, each group's rows in their order: a stable sort on a
    # random rank per group value
    values = np.unique(groups)
    rank = dict(zip(values, np.random.default_rng(seed).permutation(len(values)), strict=True))
    order = np.argsort(np.array([rank[v] for v in groups]), kind="stable")
    kw = {"n_bins": 5, "ci": 0.8, "bootstrap": 20, "seed": 1}
    a = _summ(z, y, groups, **kw)
    b = _summ(z[order], y[order], groups[order], **kw)
    _same(a, b)
    ka, kb = _by_key(a), _by_key(b)
    for key, ga in ka.items():
        ci_a, ci_b = ga.ci, kb[key].ci  # type: ignore[attr-defined]
        assert ci_a.keys() == ci_b.keys()
        for m in ci_a:
            assert np.allclose(ci_a[m], ci_b[m], rtol=1e-10, atol=1e-13, equal_nan=True), m


@settings(max_examples=30, deadline=None)
@given(CASES, st.integers(1, 50), st.sampled_from(["width", "mass"]))
def test_the_chunk_size_does_not_matter(
    case: tuple[int, int, int, int], chunk_rows: int, binning: str
) -> None:
    z, y, groups = _data(*case)
    a = _summ(z, y, groups, n_bins=6, binning=binning)
    b = _summ(z, y, groups, n_bins=6, binning=binning, chunk_rows=chunk_rows)
    _same(a, b)


@settings(max_examples=30, deadline=None)
@given(CASES)
def test_micro_is_pooled_and_macro_is_the_mean(case: tuple[int, int, int, int]) -> None:
    z, y, groups = _data(*case)
    gs = _summ(z, y, groups, n_bins=8)
    pooled = summarize(Predictions.from_arrays(z, y), n_bins=8)
    assert sum(g.n for g in gs.groups) == pooled.n == gs.micro.n
    for m in METRICS:
        assert getattr(gs.micro, m) == getattr(pooled, m)
        mean = np.mean([getattr(g.summary, m) for g in gs.groups])
        assert np.isclose(gs.macro[m], mean, rtol=1e-12, atol=1e-15)  # type: ignore[arg-type]
    eces = [g.summary.ece for g in gs.groups]
    assert eces == sorted(eces, reverse=True)
