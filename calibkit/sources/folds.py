"""k-fold views of a prediction source, with fold membership fixed by the row number alone.

Cross-validation (:mod:`calibkit.calibrators.cv`) fits on all folds but one and scores on the
one left out. The folds are streaming views (:class:`FoldView`): they read the source chunk by
chunk and keep the rows of their fold (held out) or of every other fold (training), so no copy
of the data is made.

**Fold membership** is a counter-based hash of ``(seed, row number)``: row ``i`` (counted from 0
over the whole source) is in fold ``x_i mod folds``, where ``x_i`` is output ``i`` of a
splitmix64 generator whose state starts at ``splitmix64(seed)`` (:func:`fold_of`; output ``i``
is computed directly from ``i``, no generator is run). It depends on nothing else: not on the
chunk size, not on how the rows are split into files or shards, nor on the order in which
pieces are read, so a machine that holds rows ``a:b`` of a distributed data set knows their
folds without seeing the others. The folds
are not stratified by label (that needs the labels of every row before the first fold can be
formed); their sizes are binomial, ``N / folds`` give or take a few ``sqrt(N / folds)``.

>>> fold_of(range(8), folds=3, seed=0).tolist()
[0, 2, 2, 0, 2, 2, 2, 2]
>>> import numpy as np
>>> from calibkit.sources.predictions import Predictions
>>> p = Predictions.from_arrays(np.zeros((8, 2)), np.zeros(8, dtype=int))
>>> held, train = FoldView.held_out(p, 0, folds=3), FoldView.training(p, 0, folds=3)
>>> held.n_rows, train.n_rows
(2, 6)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.errors import Param, UsageError
from calibkit.sources.partitions import Part, Plan, plan_of
from calibkit.sources.predictions import PredictionSource, SourceView

__all__ = ["FoldView", "check_folds", "fold_of", "fold_sizes", "splitmix64"]

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
#: Row numbers hashed per block when counting fold sizes (8 MiB of uint64).
_BLOCK = 1 << 20


def splitmix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """The splitmix64 output function of the states ``x`` (advanced once by the golden gamma),
    element-wise in wrapping uint64 arithmetic: a bijection of 64-bit words whose outputs pass
    the usual tests of randomness for consecutive inputs.

    >>> hex(int(splitmix64(np.zeros(1, dtype=np.uint64))[0]))
    '0xe220a8397b1dcdaf'
    """
    z = np.asarray(x, dtype=np.uint64) + _GAMMA
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    out: NDArray[np.uint64] = z ^ (z >> np.uint64(31))
    return out


def _key(seed: int) -> np.uint64:
    return np.uint64(splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0])


def fold_of(rows: Iterable[int] | NDArray[Any], *, folds: int, seed: int = 0) -> NDArray[np.int64]:
    """The fold (``0 .. folds - 1``) of each row number in ``rows`` (see the module docstring)."""
    index = np.asarray(rows if isinstance(rows, np.ndarray) else list(rows), dtype=np.uint64)
    h = splitmix64(_key(seed) + index * _GAMMA)  # output i of splitmix64 seeded with the key
    return (h % np.uint64(folds)).astype(np.int64)


def _fold_range(start: int, stop: int, folds: int, seed: int) -> NDArray[np.int64]:
    return fold_of(np.arange(start, stop, dtype=np.uint64), folds=folds, seed=seed)


def fold_sizes(n_rows: int, *, folds: int, seed: int = 0, first_row: int = 0) -> tuple[int, ...]:
    """The number of rows in each fold of a source of ``n_rows`` rows, numbered from
    ``first_row`` (no data read: the fold of a row depends only on its number)."""
    counts = np.zeros(folds, dtype=np.int64)
    end = first_row + n_rows
    for start in range(first_row, end, _BLOCK):
        stop = min(end, start + _BLOCK)
        counts += np.bincount(_fold_range(start, stop, folds, seed), minlength=folds)
    return tuple(int(c) for c in counts)


def check_folds(source: PredictionSource, *, folds: int, seed: int = 0) -> tuple[int, ...]:
    """:func:`fold_sizes` of ``source``, after checking that ``folds`` is an integer >= 2 and
    that every fold holds at least 2 rows (else a :class:`~calibkit.errors.UsageError`)."""
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise UsageError(
            Param("params").entry("folds") + f": must be an integer >= 2; got {folds!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise UsageError(Param("params").entry("seed") + f": must be an integer; got {seed!r}")
    sizes = fold_sizes(source.n_rows, folds=int(folds), seed=int(seed))
    small = min(sizes)
    if small < 2:
        fold = sizes.index(small)
        raise UsageError(
            f"{source.source}: too few rows for {folds}-fold cross-validation: "
            f"fold {fold} of {source.n_rows} rows gets {small} (each needs at least 2; "
            "give fewer folds or the hyper-parameters)"
        )
    return sizes


@dataclass(frozen=True, eq=False)
class FoldView(SourceView):
    """The rows of ``base`` in fold ``fold`` (``held_out`` true) or in every other fold
    (``held_out`` false), of ``folds`` folds hashed with ``seed``; build it with
    :meth:`held_out` or :meth:`training`. It streams ``base``'s chunks, each cut to the rows
    it keeps (chunks left with no row are skipped), so it holds no more than one chunk."""

    base: PredictionSource
    fold: int
    folds: int
    seed: int = 0
    keep_fold: bool = True
    #: The number of ``base``'s first row in the whole data set (a part of it on a cluster).
    first_row: int = 0
    _n_rows: int = field(default=-1, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.fold < self.folds:
            raise ValueError(f"fold {self.fold} is not in [0, {self.folds})")
        if self._n_rows < 0:
            n = self.base.n_rows
            size = fold_sizes(n, folds=self.folds, seed=self.seed, first_row=self.first_row)
            object.__setattr__(
                self, "_n_rows", size[self.fold] if self.keep_fold else n - size[self.fold]
            )

    def partitions(self, chunk_rows: int | None, hint: int) -> Plan | None:
        """The kept rows of each part of ``base``; a part's ``start`` counts the kept rows
        before it (see :mod:`calibkit.sources.partitions`)."""
        plan = plan_of(self.base, chunk_rows, hint)
        if plan is None:
            return None
        parts, start = [], 0
        for part in plan.parts:
            view = FoldView(
                part.source,
                self.fold,
                self.folds,
                self.seed,
                self.keep_fold,
                self.first_row + part.start,
            )
            parts.append(Part(start, view.n_rows, view))
            start += view.n_rows
        return Plan(tuple(parts), plan.finish)

    @classmethod
    def held_out(cls, base: PredictionSource, fold: int, *, folds: int, seed: int = 0) -> FoldView:
        """The rows of fold ``fold``."""
        return cls(base, fold, folds, seed, True)

    @classmethod
    def training(cls, base: PredictionSource, fold: int, *, folds: int, seed: int = 0) -> FoldView:
        """The rows of every fold but ``fold``."""
        return cls(base, fold, folds, seed, False)

    @property
    def n_rows(self) -> int:
        return self._n_rows

    @property
    def source(self) -> str:
        return self.base.source

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]:
        start = self.first_row
        for scores, labels in self.base.chunks(chunk_rows):
            n = int(labels.shape[0])
            in_fold = _fold_range(start, start + n, self.folds, self.seed) == self.fold
            start += n
            keep = in_fold if self.keep_fold else ~in_fold
            if keep.all():
                yield scores, labels
            elif keep.any():
                yield scores[keep], labels[keep]
