"""Labels compared by a digest taken during the metrics pass: `check` and `compare` read once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import calibkit.loaders
from calibkit.comparison import compare_models
from calibkit.errors import InputError
from calibkit.gate.baseline import load_baseline
from calibkit.gate.checks import GateConfig
from calibkit.loaders import ReadOptions, read_predictions
from calibkit.metrics.summary import collect_example_stats, summarize
from calibkit.sources.digest import LabelDigest, same_labels
from calibkit.sources.predictions import Predictions

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


class Counting:
    """A source that counts its passes."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.passes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def chunks(self, chunk_rows: int | None = None) -> Iterator[Any]:
        self.passes += 1
        yield from self.base.chunks(chunk_rows)


def _digest(source: Any, chunk_rows: int | None = None) -> LabelDigest:
    d = LabelDigest(source)
    for _ in d.chunks(chunk_rows):
        pass
    return d


def _preds(labels: Any, k: int = 4, seed: int = 0) -> Predictions:
    labels = np.asarray(labels)
    z = np.random.default_rng(seed).normal(size=(len(labels), k))
    return Predictions.from_arrays(z, labels)


def test_digest_ignores_chunking_format_and_integer_width() -> None:
    y = np.random.default_rng(1).integers(0, 4, 1000)
    ref = _digest(_preds(y), chunk_rows=1000).digest
    for rows in (1, 7, 333):
        assert _digest(_preds(y), chunk_rows=rows).digest == ref
    assert _digest(_preds(y.astype(np.int16), seed=3)).digest == ref  # scores do not matter
    npz = _digest(read_predictions(str(SAMPLE / "digits_hard_test.npz"), ReadOptions()))
    pq = _digest(read_predictions(str(SAMPLE / "digits_hard_test.parquet"), ReadOptions()))
    assert npz.digest == pq.digest and npz.rows == pq.rows == 450


def test_digest_sees_one_changed_label_order_and_layout() -> None:
    y = np.arange(100) % 4
    ref = _digest(_preds(y)).digest
    changed = y.copy()
    changed[57] = (changed[57] + 1) % 4
    assert _digest(_preds(changed)).digest != ref
    assert _digest(_preds(y[::-1].copy())).digest != ref
    assert _digest(_preds(y[:99])).digest != ref
    soft = np.eye(4)[y]
    assert _digest(Predictions.from_arrays(np.zeros((100, 4)), soft)).digest != ref


def test_negative_zero_in_soft_labels_is_zero() -> None:
    soft = np.array([[0.0, 1.0], [0.5, 0.5]])
    negative = soft.copy()
    negative[0, 0] = -0.0
    z = np.zeros((2, 2))
    a = _digest(Predictions.from_arrays(z, soft))
    b = _digest(Predictions.from_arrays(z, negative))
    assert a.digest == b.digest


def test_compare_names_only_models_whose_labels_really_differ() -> None:
    y = np.arange(60) % 3
    soft = np.eye(3)[y]
    negative = soft.copy()
    negative[negative == 0] = -0.0
    other = soft[::-1].copy()
    z = np.zeros((60, 3))
    result = compare_models(
        {
            "a": Predictions.from_arrays(z, soft),
            "b": Predictions.from_arrays(z, negative),
            "c": Predictions.from_arrays(z, other),
        }
    )
    assert len(result.warnings) == 1 and result.warnings[0].startswith("'c' and 'a'")


def test_no_digest_until_a_pass_ends() -> None:
    d = LabelDigest(_preds(np.arange(20) % 4))
    it = d.chunks(chunk_rows=5)
    next(it)
    assert d.digest is None
    assert same_labels(d, d) is None
    list(it)
    assert d.digest is not None and same_labels(d, d) is True
    assert same_labels(_preds([0, 1]), d) is None  # not a digested source: unknown


def test_check_baseline_is_read_once_and_paired(monkeypatch) -> None:
    path = str(SAMPLE / "digits_ls10_test.npz")
    opened: list[Counting] = []

    def counting_read(p: str, options: ReadOptions) -> Counting:
        src = Counting(read_predictions(p, options))
        opened.append(src)
        return src

    monkeypatch.setattr(calibkit.loaders, "read_predictions", counting_read)
    cand_src = Counting(read_predictions(str(SAMPLE / "digits_hard_test.npz"), ReadOptions()))
    candidate = LabelDigest(cand_src)
    collect_example_stats(candidate)
    _, paired, notes = load_baseline(path, candidate, GateConfig(), ReadOptions())
    assert paired and notes == []
    assert cand_src.passes == 1 and [s.passes for s in opened] == [1]


def test_check_baseline_with_other_labels_is_unpaired(monkeypatch) -> None:
    y = np.arange(450) % 10
    candidate = LabelDigest(_preds(y, k=10))
    collect_example_stats(candidate)
    _, paired, notes = load_baseline(
        str(SAMPLE / "digits_hard_test.npz"),
        candidate,
        GateConfig(),
        ReadOptions(),
        unpaired=True,  # other labels: an unpaired test only on request
    )
    assert not paired and "different examples" in notes[0]
    with pytest.raises(InputError, match=r"but other labels .* give unpaired=True "):
        load_baseline(str(SAMPLE / "digits_hard_test.npz"), candidate, GateConfig(), ReadOptions())


def test_compare_reads_each_model_once_when_labels_agree() -> None:
    y = np.arange(200) % 4
    a, b = Counting(_preds(y, seed=1)), Counting(_preds(y, seed=2))
    result = compare_models({"a": a, "b": b})
    assert result.warnings == ()
    assert a.passes == b.passes == 1


def test_compare_still_explains_different_labels() -> None:
    y = np.arange(200) % 4
    other = y.copy()
    other[[3, 9]] = (other[[3, 9]] + 1) % 4
    result = compare_models({"a": _preds(y), "b": _preds(other)})
    assert len(result.warnings) == 1
    assert "2 rows differ, first at row 3" in result.warnings[0]


@pytest.mark.parametrize("chunk_rows", [None, 13])
def test_digesting_changes_no_metric(chunk_rows: int | None) -> None:
    p = _preds(np.arange(300) % 4)
    plain = summarize(p, chunk_rows=chunk_rows)
    digested = summarize(LabelDigest(p), chunk_rows=chunk_rows)
    for name in ("n", "accuracy", "ece", "mce", "rmsce", "nll", "brier", "missing_classes"):
        assert getattr(plain, name) == getattr(digested, name), name
    np.testing.assert_array_equal(plain.bins.count, digested.bins.count)
