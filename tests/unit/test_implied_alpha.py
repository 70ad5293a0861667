"""The implied label smoothing (calibkit.metrics.implied; ``ece --all`` and ``compare``).

Hand-checked values, a direct numpy formula written here, hypothesis properties (alpha in
(0, 1], decreasing in the gap, the inverse of the smoothing gap), chunk-size invariance, the
stable form at |logit| = 1e4, the null results with a reason, and golden numbers on the bundled
models (alphas 0, 0.05, 0.10, 0.20), each recomputed from the raw arrays by the formula here.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _cli import ece_json, invoke, run_json
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from calibkit.comparison import compare_models
from calibkit.engine.sums import prob_floor
from calibkit.loaders import read_predictions
from calibkit.metrics.implied import (
    correct_gaps,
    implied_alpha,
    implied_smoothing,
    smoothing_gap,
)
from calibkit.sources.predictions import ConfidenceRows, Predictions
from calibkit.stats.extended import extended_metrics

DATA = Path(__file__).resolve().parents[2] / "sample_data"
MODELS = {"hard": 0.0, "ls05": 0.05, "ls10": 0.10, "ls20": 0.20}


def direct_alpha(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float, int]:
    """The definition, written out: gap = z_y - mean of the other logits over the rows whose
    argmax is the label; alpha = K / (exp(median gap) + K - 1)."""
    z = logits.astype(np.float64)
    n, k = z.shape
    y = labels if labels.ndim == 1 else labels.argmax(axis=1)
    right = z.argmax(axis=1) == y
    zy = z[np.arange(n), y]
    others = (z.sum(axis=1) - zy) / (k - 1)
    gap = float(np.median((zy - others)[right]))
    return gap, k / (math.exp(gap) + k - 1), int(right.sum())


# --------------------------------------------------------------------------------------------
# hand-checked values


def test_the_smoothing_gap_and_its_inverse_by_hand() -> None:
    # K = 10, alpha = 0.1: t_y = 0.91, t_k = 0.01, gap = log 91
    assert smoothing_gap(0.1, 10) == pytest.approx(math.log(91.0), rel=1e-15)
    assert implied_alpha(math.log(91.0), 10) == pytest.approx(0.1, rel=1e-13)
    # K = 2, alpha = 0.2: t = (0.9, 0.1), gap = log 9
    assert smoothing_gap(0.2, 2) == pytest.approx(math.log(9.0), rel=1e-15)
    assert implied_alpha(math.log(9.0), 2) == pytest.approx(0.2, rel=1e-13)
    assert implied_alpha(0.0, 7) == 1.0  # every logit equal: alpha = 1 (uniform target)
    assert float(smoothing_gap(1.0, 5)) == 0.0


def test_the_gap_is_to_the_mean_of_the_other_logits() -> None:
    z = np.array([[3.0, 1.0, -1.0, 0.0], [0.0, 2.0, 0.0, 0.0], [5.0, 5.0, 0.0, 0.0]])
    # row 0: 3 - (1 - 1 + 0)/3 = 3; row 1 wrong (argmax 1, label 0); row 2: a tie, the first
    # index is the prediction: 5 - (5 + 0 + 0)/3
    gaps = correct_gaps(z, np.array([0, 0, 0]), "logits")
    assert gaps.tolist() == pytest.approx([3.0, 5.0 - 5.0 / 3.0], rel=1e-15)


def test_probabilities_use_the_log_with_the_floor_for_exact_zeros() -> None:
    p = np.array([[0.5, 0.25, 0.25], [0.8, 0.2, 0.0]])
    gaps = correct_gaps(p, np.array([0, 0]), "probs")
    floor = prob_floor(p.dtype)
    assert gaps[0] == pytest.approx(math.log(2.0), rel=1e-15)
    expected = math.log(0.8) - (math.log(0.2) + math.log(floor)) / 2
    assert gaps[1] == pytest.approx(expected, rel=1e-15)


def test_soft_labels_take_the_argmax_of_the_label_distribution() -> None:
    z = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    t = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]])  # row 1: argmax t = 0, predicted 1
    assert correct_gaps(z, t, "logits").tolist() == [2.0]
    soft = implied_smoothing(Predictions.from_arrays(z, t))
    assert (soft.n_correct, soft.median_gap) == (1, 2.0)


def test_binary_models_work() -> None:
    # one logit per row is expanded to [0, z]: the gap is |z| for a correct row
    p = Predictions.from_arrays(np.array([2.0, -1.0, 3.0]), np.array([1, 0, 0]))
    got = implied_smoothing(p)
    assert (got.n_classes, got.n_correct, got.median_gap) == (2, 2, 1.5)
    assert got.alpha == pytest.approx(2.0 / (math.exp(1.5) + 1.0), rel=1e-15)


def test_the_median_is_exact() -> None:
    z = np.zeros((4, 3))
    z[:, 0] = [1.0, 2.0, 10.0, 100.0]  # gaps 1, 2, 10, 100: median (2 + 10) / 2
    got = implied_smoothing(Predictions.from_arrays(z, np.zeros(4, dtype=int)))
    assert got.median_gap == 6.0


# --------------------------------------------------------------------------------------------
# extremes and nothing to measure


def test_logits_of_1e4_do_not_overflow() -> None:
    z = np.array([[1e4, -1e4, 0.0], [0.0, 1e4, -1e4]])
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        got = implied_smoothing(Predictions.from_arrays(z, np.array([0, 1])))
        alpha = implied_alpha(np.array([1e4, 800.0, 30.0]), 10)
    assert got.median_gap == 1.5e4 and got.alpha == 0.0
    assert alpha[0] == 0.0 and alpha[1] == 0.0
    assert alpha[2] == pytest.approx(10.0 / (math.exp(30.0) + 9.0), rel=1e-14)


def test_no_correct_example_gives_none_with_a_reason() -> None:
    z = np.array([[0.0, 1.0], [1.0, 0.0]])
    got = implied_smoothing(Predictions.from_arrays(z, np.array([0, 1])))
    assert got.alpha is None and got.median_gap is None and got.n_correct == 0
    assert got.reason == "no correctly classified example: no gap to measure"
    assert got.to_dict()["implied_ls_reason"] == got.reason


def test_confidence_only_rows_give_none_with_a_reason() -> None:
    rows = ConfidenceRows.from_arrays(np.array([0.9, 0.6]), np.array([1, 0]))
    got = implied_smoothing(rows)
    assert got.alpha is None and "confidence-only" in got.reason


# --------------------------------------------------------------------------------------------
# properties


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0.0, 700.0),
    st.floats(0.0, 700.0),
    st.integers(2, 1000),
)
def test_alpha_lies_in_0_1_and_decreases_with_the_gap(g1: float, g2: float, k: int) -> None:
    a1, a2 = float(implied_alpha(g1, k)), float(implied_alpha(g2, k))
    assert 0.0 < a1 <= 1.0 and 0.0 < a2 <= 1.0
    if g1 < g2:
        assert a1 >= a2
        if g2 - g1 > 1e-9 * max(1.0, g2):
            assert a1 > a2


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-6, 1.0), st.integers(2, 1000))
def test_the_implied_alpha_inverts_the_smoothing_gap(alpha: float, k: int) -> None:
    assert float(implied_alpha(smoothing_gap(alpha, k), k)) == pytest.approx(alpha, rel=1e-9)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40))
def test_the_result_does_not_depend_on_the_chunk_size(seed: int, rows: int) -> None:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(60, 5)) * 3
    y = rng.integers(0, 5, size=60)
    p = Predictions.from_arrays(z, y)
    whole = implied_smoothing(p)
    assert implied_smoothing(p, chunk_rows=rows) == whole
    gap, alpha, n_right = direct_alpha(z, y)
    if n_right:
        assert whole.median_gap == pytest.approx(gap, rel=1e-12)
        assert whole.alpha == pytest.approx(alpha, rel=1e-10)


def test_a_temperature_divides_the_gap() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(200, 10)) * 4
    y = rng.integers(0, 10, size=200)
    before = implied_smoothing(Predictions.from_arrays(z, y))
    after = implied_smoothing(Predictions.from_arrays(z / 2.5, y))
    assert after.median_gap == pytest.approx(before.median_gap / 2.5, rel=1e-12)
    assert after.n_correct == before.n_correct


# --------------------------------------------------------------------------------------------
# the bundled models: golden numbers, each checked by the formula above


@pytest.mark.parametrize("split", ["val", "test"])
@pytest.mark.parametrize("model", list(MODELS))
def test_golden_implied_alpha_of_the_sample_models(model: str, split: str) -> None:
    path = DATA / f"digits_{model}_{split}.npz"
    with np.load(path, allow_pickle=False) as f:
        gap, alpha, n_right = direct_alpha(f["logits"], f["labels"])
    got = implied_smoothing(read_predictions(path))
    assert got.n_correct == n_right
    assert got.median_gap == pytest.approx(gap, rel=1e-12)
    assert got.alpha == pytest.approx(alpha, rel=1e-9)


GOLDEN_TEST = {"hard": 2.5486e-10, "ls05": 0.068198, "ls10": 0.134125, "ls20": 0.257377}


def test_the_implied_alpha_orders_the_models_as_their_training_alpha() -> None:
    got = {m: implied_smoothing(read_predictions(DATA / f"digits_{m}_test.npz")) for m in MODELS}
    for model, alpha in GOLDEN_TEST.items():
        assert got[model].alpha == pytest.approx(alpha, rel=1e-4), model
    alphas = [got[m].alpha for m in MODELS]
    assert alphas == sorted(alphas)  # hard < ls05 < ls10 < ls20
    assert got["hard"].alpha is not None and got["hard"].alpha < 1e-6
    for model in ("ls05", "ls10", "ls20"):  # within a factor 1.2 .. 1.6 of the training alpha
        ratio = (got[model].alpha or 0.0) / MODELS[model]
        assert 1.2 < ratio < 1.6, (model, ratio)


# --------------------------------------------------------------------------------------------
# where it is reported


def test_ece_all_reports_it_in_the_json_and_the_table() -> None:
    path = DATA / "digits_ls10_test.npz"
    doc = ece_json(CliRunner(), path, "--all", "--bootstrap", "100")
    with np.load(path, allow_pickle=False) as f:
        gap, alpha, n_right = direct_alpha(f["logits"], f["labels"])
    assert doc["median_logit_gap"] == pytest.approx(gap, rel=1e-12)
    assert doc["implied_ls_alpha"] == pytest.approx(alpha, rel=1e-9)
    assert doc["implied_ls_correct"] == n_right and doc["implied_ls_reason"] is None
    assert "implied_ls_alpha" not in doc["ci"]
    table = invoke(CliRunner(), "ece", path, "--all", "--bootstrap", "100").stdout
    row = next(line for line in table.splitlines() if "implied LS alpha" in line)
    assert f"{alpha:.4f}" in row
    assert "median logit gap" in table


def test_ece_all_of_confidence_rows_gives_null_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "conf.npz"
    np.savez(path, confidence=np.array([0.9, 0.6, 0.7]), correct=np.array([1, 0, 1]))
    rows = read_predictions(path)
    from calibkit.metrics import summarize

    extra = extended_metrics(rows, summarize(rows), bootstrap=100)
    assert extra["implied_ls_alpha"] is None and "confidence-only" in extra["implied_ls_reason"]


def test_ece_without_all_keeps_its_keys() -> None:
    doc = ece_json(CliRunner(), DATA / "digits_hard_test.npz")
    assert "implied_ls_alpha" not in doc and "label_distribution" not in doc


def test_compare_reports_it_before_and_after_temperature_scaling() -> None:
    args = [f"{m}={DATA / f'digits_{m}_test.npz'}" for m in ("hard", "ls20")]
    args += ["--val", f"hard={DATA / 'digits_hard_val.npz'}"]
    doc = run_json(CliRunner(), "compare", *args)
    hard, ls20 = doc["models"]
    for model, name in ((hard, "hard"), (ls20, "ls20")):
        with np.load(DATA / f"digits_{name}_test.npz", allow_pickle=False) as f:
            gap, alpha, _ = direct_alpha(f["logits"], f["labels"])
        assert model["median_logit_gap"] == pytest.approx(gap, rel=1e-12)
        assert model["implied_ls_alpha"] == pytest.approx(alpha, rel=1e-9)
        assert model["label_distribution"] is None
    t = hard["temperature"]
    ts_gap = hard["ts"]["median_logit_gap"]
    assert ts_gap == pytest.approx(hard["median_logit_gap"] / t, rel=1e-9)
    assert hard["ts"]["implied_ls_alpha"] == pytest.approx(10 / (math.exp(ts_gap) + 9), rel=1e-9)
    assert ls20["ts"] is None
    table = invoke(CliRunner(), "compare", *args).stdout
    assert "implied label smoothing" in table and "TS LS alpha" in table


def test_the_comparison_frame_has_the_columns() -> None:
    comp = compare_models(
        {"hard": read_predictions(DATA / "digits_hard_test.npz")},
        val={"hard": read_predictions(DATA / "digits_hard_val.npz")},
    )
    frame = comp.to_frame()
    row: Any = frame.loc["hard"]
    assert row["implied_ls_alpha"] == comp.models[0].implied.alpha  # type: ignore[union-attr]
    assert row["ts_implied_ls_alpha"] == pytest.approx(
        comp.models[0].calibrated_implied.alpha,  # type: ignore[union-attr]
        rel=1e-15,
    )
    json.dumps(comp.to_dict())  # JSON-ready
