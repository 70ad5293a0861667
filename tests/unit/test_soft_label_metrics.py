"""Metrics against soft labels (calibkit.metrics.soft_labels; ``ece`` and ``compare``).

Hand-checked values, a direct numpy formula written here (softmax, entropies, KL, the binned
ECEs), hypothesis properties (KL >= 0, KL = 0 when p = t, 0 log 0 = 0), chunk-size invariance,
agreement with calibkit's NLL and ECE for soft labels, and golden numbers on the bundled vote
files, recomputed from the raw arrays here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from _cli import ece_json, invoke, run_json
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from calibkit.loaders import ReadOptions, read_predictions
from calibkit.metrics import summarize
from calibkit.metrics.soft_labels import soft_label_metrics
from calibkit.sources.predictions import Predictions

DATA = Path(__file__).resolve().parents[2] / "sample_data"
MODELS = ("hard", "ls05", "ls10", "ls20")


def direct(p: np.ndarray, t: np.ndarray, n_bins: int = 15) -> dict[str, float]:
    """The definitions written out, for probabilities ``p`` (no zeros where t > 0) and labels
    ``t``; width bins ``((b-1)/M, b/M]`` (the first closed at 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        tlogt = np.where(t > 0, t * np.log(t), 0.0)
        plogp = np.where(p > 0, p * np.log(p), 0.0)
        tlogp = np.where(t > 0, t * np.log(p), 0.0)
    conf = p.max(axis=1)
    pred = p.argmax(axis=1)
    hit = (pred == t.argmax(axis=1)).astype(float)
    mass = t[np.arange(len(t)), pred]
    idx = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = {}
    for name, outcome in (("argmax", hit), ("mass", mass)):
        total = 0.0
        for b in range(n_bins):
            sel = idx == b
            total += abs(conf[sel].sum() - outcome[sel].sum())
        ece[name] = total / len(p)
    return {
        "cross_entropy": float(-tlogp.sum(axis=1).mean()),
        "kl_divergence": float((tlogt - tlogp).sum(axis=1).mean()),
        "entropy_predictions": float(-plogp.sum(axis=1).mean()),
        "entropy_labels": float(-tlogt.sum(axis=1).mean()),
        "ece_label_argmax": ece["argmax"],
        "ece_label_mass": ece["mass"],
    }


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def random_case(seed: int, n: int = 80, k: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2
    counts = rng.integers(0, 4, size=(n, k))
    counts[:, 0] += 1  # no empty row
    return z, counts / counts.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------------------------
# hand-checked values


def test_two_classes_by_hand() -> None:
    # p = (1/4, 3/4) from logits (0, log 3); t = (1/2, 1/2)
    p = Predictions.from_arrays(np.array([[0.0, math.log(3.0)]]), np.array([[0.5, 0.5]]))
    m = soft_label_metrics(p, n_bins=10)
    ce = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert m.cross_entropy == pytest.approx(ce, rel=1e-14)
    assert m.entropy_labels == pytest.approx(math.log(2.0), rel=1e-14)
    assert m.kl_divergence == pytest.approx(ce - math.log(2.0), rel=1e-12)
    assert m.entropy_predictions == pytest.approx(
        -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), rel=1e-14
    )
    # argmax t = 0 (first index of the tie), predicted 1: outcome 0, label mass 1/2
    assert m.ece_label_argmax == pytest.approx(0.75, rel=1e-14)
    assert m.ece_label_mass == pytest.approx(0.25, rel=1e-14)
    assert m.tied_label_argmax == 1


def test_zero_label_mass_counts_as_0_log_0() -> None:
    p = Predictions.from_arrays(np.array([[0.5, 0.5, 0.0]]), np.array([[1.0, 0.0, 0.0]]))
    m = soft_label_metrics(p)
    assert m.entropy_labels == 0.0
    assert m.kl_divergence == pytest.approx(math.log(2.0), rel=1e-15)
    assert m.entropy_predictions == pytest.approx(math.log(2.0), rel=1e-15)


# --------------------------------------------------------------------------------------------
# the formula written out, and calibkit's own numbers


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["logits", "probs"])
def test_the_metrics_follow_the_definitions(seed: int, kind: str) -> None:
    z, t = random_case(seed)
    p = softmax(z)
    preds = Predictions.from_arrays(z if kind == "logits" else p, t, kind=kind)  # type: ignore[arg-type]
    m = soft_label_metrics(preds)
    want = direct(p, t)
    for key, value in want.items():
        assert getattr(m, key) == pytest.approx(value, rel=1e-10, abs=1e-14), key
    assert m.kl_divergence == pytest.approx(m.cross_entropy - m.entropy_labels, abs=1e-12)


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_cross_entropy_is_the_nll_and_the_argmax_ece_is_the_ece(binning: str) -> None:
    z, t = random_case(7, n=300)
    preds = Predictions.from_arrays(z, t)
    m = soft_label_metrics(preds, n_bins=12, binning=binning)  # type: ignore[arg-type]
    s = summarize(preds, n_bins=12, binning=binning)  # type: ignore[arg-type]
    assert m.cross_entropy == s.nll  # the same per-example terms, summed the same way
    assert m.ece_label_argmax == s.ece  # top-label mode: the same bins and outcomes


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 50))
def test_the_result_does_not_depend_on_the_chunk_size(seed: int, rows: int) -> None:
    z, t = random_case(seed, n=70)
    preds = Predictions.from_arrays(z, t)
    whole = soft_label_metrics(preds)
    part = soft_label_metrics(preds, chunk_rows=rows)
    for key, value in whole.to_dict().items():
        if isinstance(value, str):
            assert part.to_dict()[key] == value
            continue
        assert part.to_dict()[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
    mass = soft_label_metrics(preds, binning="mass", chunk_rows=rows)
    assert mass.ece_label_mass == pytest.approx(
        soft_label_metrics(preds, binning="mass").ece_label_mass, rel=1e-12, abs=1e-15
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0.0, 50.0), min_size=2, max_size=8),
    st.lists(st.floats(-30.0, 30.0), min_size=2, max_size=8),
)
def test_kl_is_never_negative(counts: list[float], logits: list[float]) -> None:
    k = min(len(counts), len(logits))
    c = np.array(counts[:k])
    if c.sum() <= 0:
        c[0] = 1.0
    t = (c / c.sum())[None, :]
    preds = Predictions.from_arrays(np.array(logits[:k])[None, :], t)
    m = soft_label_metrics(preds)
    assert m.kl_divergence >= 0.0
    assert m.entropy_labels >= 0.0 and m.entropy_predictions >= -1e-15


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 50.0), min_size=2, max_size=8))
def test_kl_is_zero_when_the_prediction_is_the_label(counts: list[float]) -> None:
    c = np.array(counts)
    if c.sum() <= 0:
        c[0] = 1.0
    t = (c / c.sum())[None, :]
    m = soft_label_metrics(Predictions.from_arrays(t, t, kind="probs"))
    assert m.kl_divergence == pytest.approx(0.0, abs=1e-15)
    assert m.cross_entropy == pytest.approx(m.entropy_labels, abs=1e-14)
    assert m.entropy_predictions == pytest.approx(m.entropy_labels, abs=1e-14)


def test_large_logits_do_not_overflow() -> None:
    z = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]])
    t = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        m = soft_label_metrics(Predictions.from_arrays(z, t))
    assert m.cross_entropy == pytest.approx(0.5 * 1e4 / 2, rel=1e-12)  # row 0: 0.5 * 1e4
    assert m.entropy_predictions == 0.0


def test_hard_labels_are_refused() -> None:
    from calibkit.errors import InputError

    with pytest.raises(InputError, match="label distributions"):
        soft_label_metrics(Predictions.from_arrays(np.zeros((2, 3)), np.array([0, 1])))


# --------------------------------------------------------------------------------------------
# the bundled vote files: golden numbers, each recomputed from the arrays here

GOLDEN_KL = {"hard": 0.745027, "ls05": 0.298921, "ls10": 0.356626, "ls20": 0.465976}


@pytest.mark.parametrize("model", MODELS)
def test_golden_numbers_of_the_vote_files(model: str) -> None:
    path = DATA / f"digits_{model}_test_votes.npz"
    with np.load(path, allow_pickle=False) as f:
        z, votes = f["logits"].astype(np.float64), f["labels"]
    t = votes / votes.sum(axis=1, keepdims=True)
    want = direct(softmax(z), t)
    m = soft_label_metrics(read_predictions(path, ReadOptions(labels_from_counts=True)))
    for key, value in want.items():
        assert getattr(m, key) == pytest.approx(value, rel=1e-9), key
    assert m.kl_divergence == pytest.approx(GOLDEN_KL[model], rel=1e-5)
    assert m.n == 450


def test_ece_reports_them_for_soft_labels_only() -> None:
    path = DATA / "digits_ls10_test_votes.npz"
    doc = ece_json(CliRunner(), path, "--labels-from-counts")
    soft = doc["label_distribution"]
    m = soft_label_metrics(read_predictions(path, ReadOptions(labels_from_counts=True)))
    assert soft == m.to_dict()
    assert soft["cross_entropy"] == doc["nll"]
    table = invoke(CliRunner(), "ece", path, "--labels-from-counts").stdout
    assert "against the label distribution" in table and "KL(t || p)" in table
    hard = invoke(CliRunner(), "ece", DATA / "digits_ls10_test.npz").stdout
    assert "against the label distribution" not in hard


def test_compare_reports_them_before_and_after_temperature_scaling() -> None:
    paths = {m: DATA / f"digits_{m}_test_votes.npz" for m in ("hard", "ls20")}
    doc = run_json(
        CliRunner(),
        "compare",
        *(f"{m}={p}" for m, p in paths.items()),
        "--val",
        f"hard={DATA / 'digits_hard_val.npz'}",
        "--labels-from-counts",
        "--different-labels",
    )
    hard, ls20 = doc["models"]
    for model, name in ((hard, "hard"), (ls20, "ls20")):
        want = soft_label_metrics(
            read_predictions(paths[name], ReadOptions(labels_from_counts=True))
        )
        assert model["label_distribution"] == want.to_dict()
    with np.load(paths["hard"], allow_pickle=False) as f:
        z, votes = f["logits"].astype(np.float64), f["labels"]
    t = votes / votes.sum(axis=1, keepdims=True)
    after = direct(softmax(z / hard["temperature"]), t)
    got = hard["ts"]["label_distribution"]
    assert got["kl_divergence"] == pytest.approx(after["kl_divergence"], rel=1e-9)
    assert got["entropy_predictions"] == pytest.approx(after["entropy_predictions"], rel=1e-9)
    assert ls20["ts"] is None
