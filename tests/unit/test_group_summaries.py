"""Per-group summaries (:mod:`calibkit.stats.groups`) against an independent pandas groupby.

The reference computes each group's top-label ECE, accuracy, NLL and Brier from the logits with
plain numpy and ``pandas.cut`` bins (``(lo, hi]``, the first bin closed at 0), not through
calibkit's summarize; micro is the pooled file, macro the mean of the groups.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from calibkit.api import compare, evaluate
from calibkit.errors import UsageError
from calibkit.metrics import summarize
from calibkit.sources.groups import MISSING, MemoryColumns
from calibkit.sources.predictions import ConfidenceRows, Predictions
from calibkit.stats.bootstrap import bootstrap_metrics
from calibkit.stats.groups import summarize_groups

M = 15


def _data(n: int = 900, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    subject = rng.choice(["bio", "art", "law", "math"], n, p=[0.4, 0.3, 0.2, 0.1])
    scale = np.where(subject == "law", 4.0, 1.5)  # one over-confident subject
    z = rng.normal(size=(n, 5)) * scale[:, None]
    y = rng.integers(0, 5, n)
    y = np.where(rng.random(n) < 0.5, z.argmax(axis=1), y)
    return z, y, {"subject": subject, "level": rng.integers(1, 3, n)}


def _preds(z: np.ndarray, y: np.ndarray, cols: dict[str, np.ndarray]) -> Predictions:
    return dataclasses.replace(Predictions.from_arrays(z, y), columns=MemoryColumns(cols))


def _reference_frame(z: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(float)
    onehot = np.eye(p.shape[1])[y]
    return pd.DataFrame(
        {
            "conf": conf,
            "correct": correct,
            "nll": -np.log(p[np.arange(len(y)), y]),
            "brier": ((p - onehot) ** 2).sum(axis=1),
            "bin": pd.cut(conf, np.linspace(0, 1, M + 1), include_lowest=True, right=True),
        }
    )


def _ece(frame: pd.DataFrame) -> float:
    per_bin = frame.groupby("bin", observed=True).agg(
        conf=("conf", "mean"), acc=("correct", "mean"), count=("conf", "size")
    )
    return float((per_bin["count"] * (per_bin["conf"] - per_bin["acc"]).abs()).sum() / len(frame))


def _reference(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    def one(g: pd.DataFrame) -> pd.Series:
        return pd.Series(
            {
                "n": len(g),
                "ece": _ece(g),
                "accuracy": g["correct"].mean(),
                "nll": g["nll"].mean(),
                "brier": g["brier"].mean(),
            }
        )

    return frame.groupby(by).apply(one, include_groups=False)


def test_each_group_matches_a_pandas_groupby() -> None:
    z, y, cols = _data()
    grouped = summarize_groups(_preds(z, y, cols), ["subject"], n_bins=M)
    frame = _reference_frame(z, y).assign(subject=cols["subject"])
    ref = _reference(frame, ["subject"])
    assert sorted(g.key[0] for g in grouped.groups) == sorted(ref.index)
    for g in grouped.groups:
        want = ref.loc[g.key[0]]
        assert g.n == want["n"]
        for metric in ("ece", "accuracy", "nll", "brier"):
            assert g.value(metric) == pytest.approx(want[metric], rel=1e-10, abs=1e-13), metric


def test_micro_is_the_pooled_file_and_macro_the_mean_of_groups() -> None:
    z, y, cols = _data()
    grouped = summarize_groups(_preds(z, y, cols), ["subject"], n_bins=M)
    pooled = summarize(Predictions.from_arrays(z, y), n_bins=M)
    assert grouped.micro.n == len(y)
    for metric in ("ece", "mce", "rmsce", "nll", "brier", "accuracy"):
        assert getattr(grouped.micro, metric) == getattr(pooled, metric)
    frame = _reference_frame(z, y).assign(subject=cols["subject"])
    ref = _reference(frame, ["subject"])
    for metric in ("ece", "accuracy", "nll", "brier"):
        assert grouped.macro[metric] == pytest.approx(ref[metric].mean(), rel=1e-10)
    # and the macro is the plain mean of the groups' own values
    for metric in ("mce", "rmsce"):
        values = [g.value(metric) for g in grouped.groups]
        assert grouped.macro[metric] == pytest.approx(sum(values) / len(values), rel=1e-12)


def test_the_worst_group_comes_first() -> None:
    z, y, cols = _data()
    p = _preds(z, y, cols)
    by_ece = summarize_groups(p, ["subject"], n_bins=M)
    eces = [g.summary.ece for g in by_ece.groups]
    assert eces == sorted(eces, reverse=True)
    assert by_ece.groups[0].key == ("law",)  # the over-confident subject
    by_acc = summarize_groups(p, ["subject"], n_bins=M, order_by="accuracy")
    accs = [g.summary.accuracy for g in by_acc.groups]
    assert accs == sorted(accs)  # higher is better: the lowest first


def test_ties_go_to_the_larger_group_then_the_key() -> None:
    z, y, _ = _data(n=40)
    # groups b and a are the same rows (equal metrics, equal N); c is those rows twice
    zz, yy = np.concatenate([z, z, z, z]), np.concatenate([y, y, y, y])
    subject = np.array(["b"] * 40 + ["a"] * 40 + ["c"] * 80)
    grouped = summarize_groups(_preds(zz, yy, {"subject": subject}), ["subject"], n_bins=M)
    assert [g.key for g in grouped.groups] == [("c",), ("a",), ("b",)]
    assert len({round(g.summary.ece, 12) for g in grouped.groups}) == 1


def test_small_groups_are_flagged_not_dropped() -> None:
    z, y, cols = _data()
    grouped = summarize_groups(_preds(z, y, cols), ["subject"], n_bins=M)
    counts = {g.key[0]: g.n for g in grouped.groups}
    assert {g.key[0] for g in grouped.small_groups} == {k for k, n in counts.items() if n < 300}
    assert sum(counts.values()) == len(y)
    none_small = summarize_groups(_preds(z, y, cols), ["subject"], n_bins=M, min_rows=1)
    assert none_small.small_groups == ()


def test_a_cross_product_of_two_columns() -> None:
    z, y, cols = _data()
    grouped = summarize_groups(_preds(z, y, cols), ["subject", "level"], n_bins=M)
    frame = _reference_frame(z, y).assign(subject=cols["subject"], level=cols["level"].astype(str))
    ref = _reference(frame, ["subject", "level"])
    assert sorted(g.key for g in grouped.groups) == sorted(ref.index)
    for g in grouped.groups:
        assert g.summary.ece == pytest.approx(ref.loc[g.key]["ece"], rel=1e-10, abs=1e-13)
        assert g.n == ref.loc[g.key]["n"]
    assert grouped.to_dict()["groups"][0]["group"] == dict(
        zip(("subject", "level"), grouped.groups[0].key, strict=True)
    )


def test_missing_values_are_a_group_of_their_own() -> None:
    z, y, cols = _data(n=300)
    subject = cols["subject"].astype(object)
    subject[::7] = None
    subject[3::11] = ""
    grouped = summarize_groups(_preds(z, y, {"subject": subject}), ["subject"], n_bins=M)
    missing = next(g for g in grouped.groups if g.key == (MISSING,))
    mask = np.array([v is None or v == "" for v in subject])
    ref = summarize(Predictions.from_arrays(z[mask], y[mask]), n_bins=M)
    assert missing.n == int(mask.sum())
    assert missing.summary.ece == pytest.approx(ref.ece, rel=1e-12)
    assert sum(g.n for g in grouped.groups) == 300


def test_null_metrics_give_a_null_macro() -> None:
    rng = np.random.default_rng(3)
    conf = rng.uniform(0.3, 1, 400)
    correct = (rng.random(400) < conf).astype(int)
    rows = dataclasses.replace(
        ConfidenceRows.from_arrays(conf, correct),
        columns=MemoryColumns({"task": rng.choice(["x", "y"], 400)}),
    )
    grouped = summarize_groups(rows, ["task"], n_bins=10)
    assert grouped.macro["nll"] is None and grouped.macro["brier"] is None  # no classes
    assert grouped.macro["ece"] is not None
    doc = grouped.to_dict()
    json.dumps(doc, allow_nan=False)  # JSON-safe: NaN is null
    assert all(g["nll"] is None for g in doc["groups"])


def test_to_dict_carries_every_group() -> None:
    z, y, cols = _data()
    grouped = summarize_groups(_preds(z, y, cols), ["subject"], n_bins=M, ci=0.9, bootstrap=50)
    doc = json.loads(json.dumps(grouped.to_dict(), allow_nan=False))
    assert doc["columns"] == ["subject"] and doc["n_groups"] == 4
    assert [g["group"] for g in doc["groups"]] == [{"subject": g.key[0]} for g in grouped.groups]
    for entry, g in zip(doc["groups"], grouped.groups, strict=True):
        assert entry["n"] == g.n and entry["ece"] == g.summary.ece
        assert entry["small"] == (g.n < 300)
        assert sum(b["count"] for b in entry["bins"]) == g.n
        lo, hi = entry["ci"]["ece"]
        assert lo <= hi
    assert doc["micro"]["n"] == len(y) and doc["micro"]["ci"]["ece"][0] <= doc["micro"]["ece"]
    assert doc["macro"]["n_groups"] == 4 and doc["ci_level"] == 0.9 and doc["bootstrap"] == 50


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_intervals_are_the_bootstrap_of_the_group_alone(binning: str) -> None:
    z, y, cols = _data()
    grouped = summarize_groups(
        _preds(z, y, cols), ["subject"], n_bins=10, binning=binning, ci=0.8, bootstrap=60, seed=5
    )
    for g in grouped.groups:
        m = cols["subject"] == g.key[0]
        alone = bootstrap_metrics(
            Predictions.from_arrays(z[m], y[m]), n_bins=10, binning=binning, replicates=60, seed=5
        )
        assert g.ci is not None
        for metric in ("ece", "nll", "accuracy"):
            assert g.ci[metric] == pytest.approx(alone.interval(metric, 0.8), rel=1e-9)


def test_an_unknown_order_metric_is_refused() -> None:
    z, y, cols = _data(n=50)
    with pytest.raises(UsageError, match="order_by='bogus' is not a headline metric"):
        summarize_groups(_preds(z, y, cols), ["subject"], order_by="bogus")


def test_the_api_groups_arrays_and_files(tmp_path: object) -> None:
    z, y, cols = _data()
    grouped = evaluate(z, y, n_bins=M, group_by=cols["subject"])
    assert grouped.columns == ("group",)
    direct = summarize_groups(_preds(z, y, {"group": cols["subject"]}), ["group"], n_bins=M)
    assert [(g.key, g.summary.ece) for g in grouped.groups] == [
        (g.key, g.summary.ece) for g in direct.groups
    ]
    two = evaluate(z, y, group_by={"subject": cols["subject"], "level": cols["level"]})
    assert two.columns == ("subject", "level") and len(two.groups) == 8
    frame = compare({"a": _preds(z, y, cols), "b": _preds(z * 0.5, y, cols)}, group_by="subject")
    assert list(frame.index.names) == ["name", "subject"] and len(frame) == 8
    assert frame.loc[("a", "law"), "ece"] == pytest.approx(
        next(g.summary.ece for g in direct.groups if g.key == ("law",))
    )
    with pytest.raises(UsageError, match="fits no calibrator"):
        compare({"a": _preds(z, y, cols)}, val={"a": _preds(z, y, cols)}, group_by="subject")


def test_a_metric_is_nan_safe_in_the_order() -> None:
    # order_by a metric that is null in every group (confidence rows: no NLL): key order
    rows = dataclasses.replace(
        ConfidenceRows.from_arrays([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 1]),
        columns=MemoryColumns({"t": ["b", "a", "b", "a"]}),
    )
    grouped = summarize_groups(rows, ["t"], order_by="nll", n_bins=2)
    assert [g.key for g in grouped.groups] == [("a",), ("b",)]
    assert all(math.isnan(g.summary.nll) for g in grouped.groups)
