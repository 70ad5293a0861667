"""Properties of the k-fold views (:mod:`calibkit.sources.folds`) (#15).

A row's fold is a function of its number and the seed only: the rows a fold view streams do
not depend on the chunk size, the held-out folds partition the rows, each training view is the
complement of its fold, and a slice of rows gets the folds of the same rows in the whole.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from calibkit.engine.passes import run_pass
from calibkit.sources.folds import FoldView, check_folds, fold_of, fold_sizes
from calibkit.sources.predictions import Predictions


def _indexed(n: int) -> Predictions:
    """Predictions whose first score is the row number (so a view's rows can be read back)."""
    scores = np.zeros((n, 3))
    scores[:, 0] = np.arange(n)
    return Predictions.from_arrays(scores, np.arange(n) % 3, kind="logits")


def _rows(view: FoldView, chunk_rows: int) -> np.ndarray:
    seen: list[np.ndarray] = []
    run_pass(view, lambda c: c.scores[:, 0].astype(np.int64), seen.append, chunk_rows=chunk_rows)
    return np.concatenate(seen) if seen else np.zeros(0, dtype=np.int64)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 400),
    folds=st.integers(2, 7),
    seed=st.integers(0, 2**64 - 1),
    chunk_a=st.integers(1, 450),
    chunk_b=st.integers(1, 450),
)
def test_fold_rows_do_not_depend_on_the_chunk_size(
    n: int, folds: int, seed: int, chunk_a: int, chunk_b: int
) -> None:
    preds = _indexed(n)
    want = fold_of(np.arange(n), folds=folds, seed=seed)
    held_all = []
    for f in range(folds):
        held = FoldView.held_out(preds, f, folds=folds, seed=seed)
        train = FoldView.training(preds, f, folds=folds, seed=seed)
        a, b = _rows(held, chunk_a), _rows(held, chunk_b)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, np.flatnonzero(want == f))
        np.testing.assert_array_equal(_rows(train, chunk_a), np.flatnonzero(want != f))
        np.testing.assert_array_equal(_rows(train, chunk_b), np.flatnonzero(want != f))
        assert held.n_rows == len(a) and train.n_rows == n - len(a)
        held_all.append(a)
    np.testing.assert_array_equal(np.sort(np.concatenate(held_all)), np.arange(n))  # partition
    assert sum(fold_sizes(n, folds=folds, seed=seed)) == n


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(0, 2**40),
    n=st.integers(1, 300),
    cut=st.integers(0, 300),
    folds=st.integers(2, 11),
    seed=st.integers(-(2**63), 2**64 - 1),
)
def test_a_slice_of_rows_has_the_folds_of_the_whole(
    start: int, n: int, cut: int, folds: int, seed: int
) -> None:
    """What a machine holding rows ``start:start + n`` computes equals the whole's slice."""
    rows = np.arange(start, start + n, dtype=np.uint64)
    whole = fold_of(rows, folds=folds, seed=seed)
    cut = min(cut, n)
    parts = np.concatenate(
        [fold_of(rows[:cut], folds=folds, seed=seed), fold_of(rows[cut:], folds=folds, seed=seed)]
    )
    np.testing.assert_array_equal(parts, whole)
    assert whole.min() >= 0 and whole.max() < folds


@settings(max_examples=40, deadline=None)
@given(folds=st.integers(2, 10), seed=st.integers(0, 2**32), extra=st.integers(0, 500))
def test_every_fold_has_rows_when_there_are_enough(folds: int, seed: int, extra: int) -> None:
    """With 60 rows a fold on average, a fold below 2 rows has probability < 1e-20."""
    n = 60 * folds + extra
    sizes = check_folds(_indexed(n), folds=folds, seed=seed)
    assert len(sizes) == folds and min(sizes) >= 2 and sum(sizes) == n


def test_the_hash_is_splitmix64_and_the_seed_changes_the_folds() -> None:
    """Output 0 of splitmix64 seeded with 0 is the published 0xe220a8397b1dcdaf; the fold of a
    row is that stream, keyed by the seed."""
    from calibkit.sources.folds import splitmix64

    assert int(splitmix64(np.zeros(1, dtype=np.uint64))[0]) == 0xE220A8397B1DCDAF
    a = fold_of(np.arange(1000), folds=5, seed=0)
    b = fold_of(np.arange(1000), folds=5, seed=1)
    assert (a != b).mean() > 0.5
    np.testing.assert_array_equal(a, fold_of(np.arange(1000), folds=5, seed=0))
    counts = np.bincount(fold_of(np.arange(100_000), folds=5, seed=7), minlength=5)
    assert np.abs(counts - 20_000).max() < 800  # about 5 standard deviations
