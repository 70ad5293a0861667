"""One answer each to "the same examples?" and "the same classes?" (#14):
:mod:`calibkit.sources.checks`, used by compare, check, fit-temp and apply-temp."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from calibkit.errors import InputError
from calibkit.sources.checks import check_class_count, label_mismatches, same_examples
from calibkit.sources.digest import LabelDigest
from calibkit.sources.predictions import Predictions, SourceView


class Chunked(SourceView):
    """Streams its base in the chunk sizes given, whatever the caller asks for."""

    def __init__(self, base: Predictions, sizes: list[int]) -> None:
        self.base = base
        self.sizes = sizes
        self.reads = 0

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[Any, Any]]:
        self.reads += 1
        (scores, labels), start = next(iter(self.base.chunks(self.base.n_rows))), 0
        for size in self.sizes:
            yield scores[start : start + size], labels[start : start + size]
            start += size
        assert start == self.base.n_rows


def _preds(labels: Any, k: int = 3) -> Predictions:
    labels = np.asarray(labels)
    return Predictions.from_arrays(np.zeros((len(labels), k)), labels, kind="logits")


def test_class_count_messages_and_type() -> None:
    check_class_count("a.npz", 3, "b.npz", 3)
    check_class_count("a.json", None, "b.npz", 3)  # not known: not compared
    check_class_count("a.json", 3, "b.npz", None)
    with pytest.raises(InputError) as info:
        check_class_count("val.npz", 3, "test.npz", 10)
    assert str(info.value) == "val.npz: has 3 classes, but test.npz has 10"
    assert info.value.source == "val.npz"
    with pytest.raises(InputError, match=r"^cal.json: fitted on 3 classes, but x.npz has 10$"):
        check_class_count("cal.json", 3, "x.npz", 10, fitted=True)
    with pytest.raises(InputError) as info:
        check_class_count("b.npz", 2, "the candidate c.npz", 10, why="not one task")
    assert str(info.value) == "b.npz: has 2 classes but the candidate c.npz has 10: not one task"


def test_the_same_labels_in_other_chunks_are_the_same_examples() -> None:
    """Before #14 the baseline compared chunk i with chunk i, so two files of one label vector
    read in other chunk sizes (an npz against a parquet of other row groups) were refused."""
    labels = np.arange(10) % 3
    a = Chunked(_preds(labels), [3, 3, 4])
    b = Chunked(_preds(labels.astype(np.int8)), [0, 5, 0, 5])
    assert same_examples(a, b)
    assert same_examples(b, a)


@pytest.mark.parametrize(
    ("other", "sizes"),
    [
        ([0, 1, 2, 0, 1, 2, 0, 1, 2, 1], [4, 6]),  # the last label differs
        ([0, 1, 2, 0, 1, 2, 0, 1, 2], [9]),  # one row fewer
        ([1, 0, 2, 0, 1, 2, 0, 1, 2, 0], [10]),  # the first two swapped
    ],
)
def test_other_labels_are_other_examples(other: list[int], sizes: list[int]) -> None:
    a = Chunked(_preds(np.arange(10) % 3), [3, 7])
    assert not same_examples(a, Chunked(_preds(other), sizes))


def test_hard_and_soft_labels_are_other_examples() -> None:
    hard = _preds([0, 1], k=2)
    soft = Predictions.from_arrays(np.zeros((2, 2)), np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert not same_examples(hard, soft)


def test_soft_labels_compare_by_value() -> None:
    t = np.array([[0.5, 0.5], [1.0, 0.0]])
    u = t.copy()
    u[1, 1] = -0.0
    a = Predictions.from_arrays(np.zeros((2, 2)), t)
    b = Predictions.from_arrays(np.zeros((2, 2)), u)
    assert same_examples(a, b)


def test_digests_answer_without_a_second_read() -> None:
    labels = np.arange(10) % 3
    a, b = Chunked(_preds(labels), [10]), Chunked(_preds(labels), [2, 8])
    da, db = LabelDigest(a), LabelDigest(b)
    for d in (da, db):
        for _ in d.chunks():
            pass
    assert same_examples(da, db) and (a.reads, b.reads) == (1, 1)
    other = LabelDigest(Chunked(_preds(labels[::-1]), [10]))
    for _ in other.chunks():
        pass
    assert not same_examples(da, other)


def test_label_mismatches_say_what_differs() -> None:
    models = {
        "a": _preds([0, 1, 2, 1]),
        "b": _preds([0, 1, 2, 1]),
        "c": _preds([0, 2, 2, 0]),
        "d": _preds([0, 1, 2]),
    }
    assert label_mismatches(models) == [
        "'c' and 'a' have the same N (4) but different labels (2 rows differ, first at row 1)",
        "'d' and 'a' were evaluated on different data: 3 vs 4 rows",
    ]
    from calibkit.comparison import label_mismatches as public

    assert public is label_mismatches
