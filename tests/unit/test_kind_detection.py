"""Probabilities are not read as logits (#12, item 2), and ``--binary positive`` means
``p(y = 1)`` for every two-class input (#12, item 3).

Rule (:func:`calibkit.sources.predictions.choose_kind`): unless ``kind=`` / ``--input`` forces a
reading
or the key's name says probabilities, rows that all lie in [0, 1] and sum to 1 are read as
probabilities; the output says which reading was used and why, and a key named like logits that
holds probabilities gets one warning. Every input is crafted in the test.
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _cli import invoke as run
from _cli import run_json as _run_json
from scipy.special import log_softmax
from typer.testing import CliRunner, Result

import calibkit
from calibkit.calibrators import fit_temperature
from calibkit.errors import InputError, UsageError
from calibkit.metrics import summarize
from calibkit.metrics.summary import collect_example_stats
from calibkit.sources.predictions import (
    DETECTED_PROBS,
    Predictions,
    choose_kind,
    default_chunk_rows,
)

AMBIGUOUS = " (ambiguous with 2 classes: logits such as [0.3, 0.7] pass too; force logits)"

#: these commands may warn on stderr (kind detection): only stdout is checked
run_json = functools.partial(_run_json, quiet=False)


def warning_lines(result: Result) -> list[str]:
    return [x for x in result.stderr.splitlines() if x.startswith("calibkit: warning: ")]


def one_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("calibkit: error: "), result.stderr
    return lines[0]


def fitted_model(k: int = 3, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """``(predict_proba(X), y)`` of a scikit-learn logistic regression (or an equivalent)."""
    rng = np.random.default_rng(k)
    x = rng.normal(size=(n, 4))
    w = rng.normal(size=(4, k)) * 2
    y = (np.exp(log_softmax(x @ w, axis=1)).cumsum(1) > rng.random((n, 1))).argmax(1)
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:  # the same kind of numbers without scikit-learn
        return np.exp(log_softmax(x @ w, axis=1)), y
    return LogisticRegression(max_iter=1000).fit(x, y).predict_proba(x), y


# --------------------------------------------------------------------------------------------
# the pure rule


def test_choose_kind_detects_probability_rows() -> None:
    p = np.array([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]])
    assert choose_kind(p) == choose_kind(p, named="logits", key="logits").__class__(
        "probs", DETECTED_PROBS, None
    )
    named = choose_kind(p, named="logits", key="logits", forced_by="--input")
    assert (named.kind, named.reason) == ("probs", DETECTED_PROBS)
    assert named.warning == (
        "key 'logits' holds probabilities (every row in [0, 1] sums to 1): read as "
        "probabilities; --input logits reads them as logits"
    )


@pytest.mark.parametrize(
    ("scores", "why"),
    [
        ([[0.2, 0.5, 0.3], [1.5, -0.2, -0.3]], "row 1 has 1.5, outside [0, 1]"),
        ([[0.2, 0.5, 0.3], [0.2, 0.2, 0.2]], "row 1 sums to 0.6"),
        ([[0.2, 0.5, np.nan]], "row 0 has nan, outside [0, 1]"),
        ([[0.0, 0.0]], "row 0 sums to 0"),
    ],
)
def test_choose_kind_says_why_scores_are_logits(scores: list[list[float]], why: str) -> None:
    choice = choose_kind(np.array(scores))
    assert (choice.kind, choice.reason, choice.warning) == (
        "logits",
        f"detected: not probabilities ({why})",
        None,
    )
    named = choose_kind(np.array(scores), named="logits", key="z")
    assert (named.kind, named.reason) == ("logits", "named: key 'z'")


def test_forced_and_named_readings() -> None:
    p = np.array([[0.3, 0.7]])
    assert choose_kind(p, forced="logits").reason == "forced: kind='logits'"
    forced = choose_kind(p, forced="logits", forced_by="--input", named="probs", key="probs")
    assert (forced.kind, forced.reason, forced.warning) == (
        "logits",
        "forced: --input logits",
        None,
    )
    named = choose_kind(np.array([[5.0, -1.0]]), named="probs", key="probs")
    assert (named.kind, named.reason) == ("probs", "named: key 'probs'")  # validation refuses


def test_two_classes_summing_to_one_are_ambiguous_and_say_so() -> None:
    choice = choose_kind(np.array([[0.3, 0.7], [0.5, 0.5]]))
    assert (choice.kind, choice.reason) == ("probs", DETECTED_PROBS + AMBIGUOUS)


def test_one_score_per_row_in_the_unit_interval_stays_a_logit_with_a_warning() -> None:
    col = np.array([0.1, 0.9, 0.4])
    choice = choose_kind(col, named="logits", key="logit", forced_by="--input")
    assert (choice.kind, choice.reason) == ("logits", "named: key 'logit'")
    assert choice.warning == (
        "key 'logit' holds one score per row, all in [0, 1]: read as logits of a binary model; "
        "if they are probabilities p(y = 1), give --input probs"
    )
    assert "kind='probs'" in str(choose_kind(col[:, None]).warning)
    assert choose_kind(np.array([-2.0, 3.0])).warning is None  # plainly logits: no warning


def test_integer_and_half_precision_rows() -> None:
    assert choose_kind(np.array([[0, 1, 0], [1, 0, 0]])).kind == "probs"  # one-hot integers
    assert choose_kind(np.array([[0, 2, 0]])).kind == "logits"
    half = np.array([[0.333, 0.333, 0.333]], dtype=np.float16)  # sums to 0.999: float16 atol
    assert choose_kind(half).kind == "probs"
    assert choose_kind(half.astype(np.float64)).kind == "logits"  # 1e-4 for float64
    assert choose_kind(np.array([["a", "b"]])).kind == "logits"  # validation refuses strings


# --------------------------------------------------------------------------------------------
# the library: the default detects


def test_ece_of_predict_proba_is_the_probability_answer() -> None:
    proba, y = fitted_model()
    detected = calibkit.ece(proba, y)
    assert detected == calibkit.ece(proba, y, kind="probs")
    assert detected != calibkit.ece(proba, y, kind="logits")  # forcing logits stays possible
    s = calibkit.evaluate(proba, y)
    assert (s.kind, s.input_reason) == ("probs", DETECTED_PROBS)
    assert calibkit.nll(proba, y) == calibkit.nll(proba, y, kind="probs")
    assert calibkit.brier(proba, y) == calibkit.brier(proba, y, kind="probs")
    assert calibkit.evaluate(proba, y, kind="logits").input_reason == "forced: kind='logits'"


def test_predictions_and_fit_temperature_detect_too() -> None:
    proba, y = fitted_model(k=4)
    preds = Predictions.from_arrays(proba, y)
    assert (preds.kind, preds.kind_reason) == ("probs", DETECTED_PROBS)
    detected = fit_temperature(proba, y)
    assert detected.input_kind == "probs"
    assert detected.temperature == fit_temperature(proba, y, kind="probs").temperature
    assert fit_temperature(proba, y, kind="logits").input_kind == "logits"


def test_logits_are_still_logits() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = calibkit.evaluate(z, rng.integers(0, 3, 50))
    assert s.kind == "logits" and s.input_reason.startswith("detected: not probabilities (row ")


def test_a_probs_reading_of_non_probabilities_is_still_an_error() -> None:
    with pytest.raises(InputError, match=r"probability rows must sum to 1; row 0 sums to 1\.4"):
        calibkit.evaluate([[0.5, 0.9]], [0], kind="probs")


# --------------------------------------------------------------------------------------------
# the command line: npz, pt, parquet


@pytest.fixture
def proba() -> tuple[np.ndarray, np.ndarray]:
    return fitted_model()


def test_npz_logits_key_holding_probabilities(
    runner: CliRunner, tmp_path: Path, proba: tuple[np.ndarray, np.ndarray]
) -> None:
    p, y = proba
    wrong, right = tmp_path / "wrong.npz", tmp_path / "right.npz"
    np.savez(wrong, logits=p, labels=y)
    np.savez(right, probs=p, labels=y)
    result = run(runner, "ece", wrong, "--json")
    assert result.exit_code == 0, result.output
    assert warning_lines(result) == [
        f"calibkit: warning: {wrong}: key 'logits' holds probabilities (every row in [0, 1] "
        "sums to 1): read as probabilities; --input logits reads them as logits"
    ]
    doc, ref = json.loads(result.stdout), run_json(runner, "ece", right)
    assert (doc["input"], doc["input_reason"]) == ("probs", DETECTED_PROBS)
    assert (ref["input"], ref["input_reason"]) == ("probs", "named: key 'probs'")
    for key in ("ece", "mce", "nll", "brier", "accuracy", "mean_confidence"):
        assert doc[key] == ref[key], key
    table = run(runner, "ece", wrong, "--no-bins").stdout
    assert any("input" in x and "probs" in x and DETECTED_PROBS in x for x in table.splitlines())
    # forcing logits stays possible, and is reported as forced
    forced = run(runner, "ece", wrong, "--json", "--input", "logits")
    assert warning_lines(forced) == []
    fdoc = json.loads(forced.stdout)
    assert (fdoc["input"], fdoc["input_reason"]) == ("logits", "forced: --input logits")
    assert fdoc["ece"] == calibkit.ece(p, y, kind="logits") != doc["ece"]


def test_fit_temp_on_a_logits_key_holding_probabilities(
    runner: CliRunner, tmp_path: Path, proba: tuple[np.ndarray, np.ndarray]
) -> None:
    p, y = proba
    path = tmp_path / "val.npz"
    np.savez(path, logits=p, labels=y)
    doc = run_json(runner, "fit-temp", path)
    assert doc["temperature"] == pytest.approx(fit_temperature(p, y, kind="probs").temperature)
    assert (doc["input"], doc["input_reason"]) == ("probs", DETECTED_PROBS)
    table = run(runner, "fit-temp", path).stdout
    assert f"validation input: probs ({DETECTED_PROBS})" in table
    out = tmp_path / "cal.json"
    assert run(runner, "fit-temp", path, "--out", out).exit_code == 0
    assert json.loads(out.read_text())["input"] == "probs"
    sweep = run_json(runner, "sweep-temp", f"m={path}", "--temps", "1,2")
    assert (sweep["models"][0]["input"], sweep["models"][0]["input_reason"]) == (
        "probs",
        DETECTED_PROBS,
    )
    compare = run_json(runner, "compare", f"m={path}")
    assert compare["models"][0]["input"] == "probs"


def test_logits_key_option_names_and_detection_still_applies(
    runner: CliRunner, tmp_path: Path, proba: tuple[np.ndarray, np.ndarray]
) -> None:
    p, y = proba
    path = tmp_path / "c.npz"
    np.savez(path, scores=p, gold=y)
    result = run(runner, "ece", path, "--logits-key", "scores", "--labels-key", "gold", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["input"] == "probs"
    assert len(warning_lines(result)) == 1 and "key 'scores' holds probabilities" in result.stderr
    named = run_json(runner, "ece", path, "--probs-key", "scores", "--labels-key", "gold")
    assert (named["input"], named["input_reason"]) == ("probs", "named: key 'scores'")


def test_probs_key_holding_logits_stays_an_error(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "p.npz"
    np.savez(path, probs=np.array([[2.0, -1.0], [0.5, 0.5]]), labels=np.array([0, 1]))
    line = one_error(run(runner, "ece", path))
    assert line == (
        f"calibkit: error: {path}: probabilities must lie in [0, 1]; row 0 has 2 "
        "(use --input logits if these are logits)"
    )


def test_pt_logits_key_holding_probabilities(
    runner: CliRunner, tmp_path: Path, proba: tuple[np.ndarray, np.ndarray]
) -> None:
    torch = pytest.importorskip("torch")
    p, y = proba
    path = tmp_path / "p.pt"
    torch.save({"logits": torch.tensor(p, dtype=torch.float32), "labels": torch.tensor(y)}, path)
    result = run(runner, "ece", path, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["input"], doc["input_reason"]) == ("probs", DETECTED_PROBS)
    assert [x for x in warning_lines(result) if "holds probabilities" in x] == [
        f"calibkit: warning: {path}: key 'logits' holds probabilities (every row in [0, 1] "
        "sums to 1): read as probabilities; --input logits reads them as logits"
    ]
    assert doc["ece"] == pytest.approx(calibkit.ece(p.astype(np.float32), y, kind="probs"))


@pytest.mark.parametrize("layout", ["wide", "list"])
def test_parquet_logits_columns_holding_probabilities(
    runner: CliRunner, tmp_path: Path, proba: tuple[np.ndarray, np.ndarray], layout: str
) -> None:
    p, y = proba
    path = tmp_path / "p.parquet"
    if layout == "wide":
        cols: dict[str, Any] = {f"logit_{k}": p[:, k] for k in range(p.shape[1])}
    else:
        cols = {"logits": pa.FixedSizeListArray.from_arrays(pa.array(p.reshape(-1)), p.shape[1])}
    pq.write_table(pa.table({**cols, "label": y}), path, row_group_size=64)
    result = run(runner, "ece", path, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["input"], doc["input_reason"]) == ("probs", DETECTED_PROBS)
    assert len(warning_lines(result)) == 1 and "holds probabilities" in result.stderr
    assert doc["ece"] == pytest.approx(calibkit.ece(p, y, kind="probs"), rel=1e-12)
    forced = run_json(runner, "ece", path, "--input", "logits")
    assert forced["ece"] == pytest.approx(calibkit.ece(p, y, kind="logits"), rel=1e-12)


def test_parquet_later_batches_must_agree_with_the_first(runner: CliRunner, tmp_path: Path) -> None:
    """Detection reads the first batch (``default_chunk_rows(K)`` rows); a later row that is
    not a probability is an error that says why the rows were read as probabilities."""
    k = 4
    rows = default_chunk_rows(k)
    scores = np.tile(np.array([[0.25, 0.25, 0.25, 0.25]], dtype=np.float32), (rows + 40, 1))
    scores[rows + 3] = [1.5, -2.0, 0.3, 0.2]
    path = tmp_path / "mixed.parquet"
    column = pa.FixedSizeListArray.from_arrays(pa.array(scores.reshape(-1)), k)
    labels = np.zeros(rows + 40, dtype=np.int64)
    pq.write_table(pa.table({"logits": column, "label": labels}), path)
    result = run(runner, "ece", path)
    assert result.exit_code == 2 and result.stdout == "" and "Traceback" not in result.output
    assert result.stderr.splitlines() == [  # the warning came from the first batch, at open
        f"calibkit: warning: {path}: key 'logits' holds probabilities (every row in [0, 1] "
        "sums to 1): read as probabilities; --input logits reads them as logits",
        f"calibkit: error: {path}: probabilities must lie in [0, 1]; row {rows + 3} has 1.5 "
        "(the first rows were read as probabilities, since every one of them lies in [0, 1] "
        "and sums to 1, and later rows must agree; use --input logits if these are logits)",
    ]
    assert run(runner, "ece", path, "--input", "logits").exit_code == 0


def test_npz_warning_only_for_a_valid_file(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, logits=np.array([[0.2, 0.8], [0.5, 0.5]]), labels=np.array([0, 7]))
    line = one_error(run(runner, "ece", path))  # no warning line before the error
    assert line == (f"calibkit: error: {path}: label 7 at row 1 is outside [0, 2) for 2 classes")


def test_binary_logit_column_in_the_unit_interval_warns(runner: CliRunner, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    p1 = rng.random(100)
    y = (rng.random(100) < p1).astype(np.int64)
    path = tmp_path / "b.npz"
    np.savez(path, logit=p1, labels=y)
    result = run(runner, "ece", path, "--json")
    assert result.exit_code == 0, result.output
    assert warning_lines(result) == [
        f"calibkit: warning: {path}: key 'logit' holds one score per row, all in [0, 1]: read "
        "as logits of a binary model; if they are probabilities p(y = 1), give --input probs"
    ]
    doc = json.loads(result.stdout)
    assert (doc["input"], doc["input_reason"]) == ("logits", "named: key 'logit'")
    probs = run_json(runner, "ece", path, "--input", "probs")
    assert probs["input"] == "probs"
    assert probs["nll"] == pytest.approx(calibkit.nll(p1, y, kind="probs"))


def test_two_class_logits_that_sum_to_one(runner: CliRunner, tmp_path: Path) -> None:
    z = np.array([[0.3, 0.7], [0.6, 0.4], [0.5, 0.5]])
    path = tmp_path / "k2.npz"
    np.savez(path, logits=z, labels=np.array([1, 0, 1]))
    doc = run_json(runner, "ece", path)
    assert (doc["input"], doc["input_reason"]) == ("probs", DETECTED_PROBS + AMBIGUOUS)
    forced = run_json(runner, "ece", path, "--input", "logits")
    assert forced["input"] == "logits"
    assert forced["nll"] == pytest.approx(calibkit.nll(z, [1, 0, 1], kind="logits"))


# --------------------------------------------------------------------------------------------
# --binary positive: p(y = 1) for (N, 2) inputs too; a usage error with more classes


@pytest.fixture
def binary_probs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    p1 = rng.random(300)
    return p1, (rng.random(300) < p1**2).astype(np.int64)


def test_positive_mode_on_two_columns_equals_one_column(
    binary_probs: tuple[np.ndarray, np.ndarray],
) -> None:
    p1, y = binary_probs
    two = Predictions.from_arrays(np.stack([1 - p1, p1], axis=1), y, kind="probs")
    one = Predictions.from_arrays(p1, y, kind="probs")
    a = summarize(two, binary_mode="positive", n_bins=10)
    b = summarize(one, binary_mode="positive", n_bins=10)
    assert a.binary_mode == b.binary_mode == "positive"
    assert a.bins.count.tolist() == b.bins.count.tolist()
    assert a.ece == pytest.approx(b.ece, abs=1e-15)
    top = summarize(two, n_bins=10)
    assert top.binary_mode == "top-label" and top.ece != a.ece
    # p(y = 1) is binned: every confidence is p1, every outcome y
    st = collect_example_stats(two, binary_mode="positive")
    assert st.confidence.tolist() == pytest.approx(p1.tolist(), abs=1e-15)
    assert st.outcome.tolist() == y.astype(float).tolist()


def test_cli_binary_positive_on_a_predict_proba_matrix(
    runner: CliRunner, tmp_path: Path, binary_probs: tuple[np.ndarray, np.ndarray]
) -> None:
    p1, y = binary_probs
    two, one = tmp_path / "two.npz", tmp_path / "one.npz"
    np.savez(two, probs=np.stack([1 - p1, p1], axis=1), labels=y)
    np.savez(one, probs=p1, labels=y)
    a = run_json(runner, "ece", two, "--binary", "positive")
    b = run_json(runner, "ece", one, "--binary", "positive")
    assert a["binary_mode"] == "positive"
    assert [x["count"] for x in a["bins"]] == [x["count"] for x in b["bins"]]
    assert a["ece"] == pytest.approx(b["ece"], abs=1e-15)
    full = run_json(runner, "ece", two, "--binary", "positive", "--all", "--bootstrap", "100")
    assert full["smece"] == pytest.approx(
        run_json(runner, "ece", one, "--binary", "positive", "--all", "--bootstrap", "100")[
            "smece"
        ],
        abs=1e-12,
    )
    check = run(runner, "check", two, "--binary", "positive", "--max-ece", "1", "--json")
    assert check.exit_code == 0, check.output
    value = json.loads(check.stdout)["checks"][0]["value"]
    assert value == pytest.approx(a["ece"], abs=1e-15)
    fig = tmp_path / "d.png"
    assert run(runner, "diagram", f"m={two}", "--binary", "positive", "--out", fig).exit_code == 0


def test_json_baseline_of_a_two_column_model_made_before_still_pairs(
    runner: CliRunner, tmp_path: Path, binary_probs: tuple[np.ndarray, np.ndarray]
) -> None:
    p1, y = binary_probs
    path, base = tmp_path / "two.npz", tmp_path / "base.json"
    np.savez(path, probs=np.stack([1 - p1, p1], axis=1), labels=y)
    doc = run_json(runner, "ece", path)
    doc["binary_mode"] = None  # what (N, 2) inputs reported before #12
    base.write_text(json.dumps(doc))
    result = run(runner, "check", path, "--baseline", base, "--max-increase", "ece=0.01")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("command", ["ece", "diagram", "check"])
def test_binary_positive_with_more_classes_is_a_usage_error(
    runner: CliRunner, tmp_path: Path, command: str
) -> None:
    path = tmp_path / "k3.npz"
    np.savez(path, logits=np.random.default_rng(0).normal(size=(20, 3)), labels=np.zeros(20, int))
    extra = {
        "ece": [],
        "diagram": ["--out", tmp_path / "d.png"],
        "check": ["--max-ece", "1"],
    }[command]
    target = f"m={path}" if command == "diagram" else path
    line = one_error(run(runner, command, target, "--binary", "positive", *extra))
    assert line == (
        f"calibkit: error: {path}: --binary positive (p(y = 1)) needs a binary model with 2 "
        "classes; this one has 3 classes"
    )
    assert not (tmp_path / "d.png").exists()


def test_library_positive_mode_with_more_classes_raises() -> None:
    preds = Predictions.from_arrays(np.eye(3) * 2.0, [0, 1, 2], kind="logits")
    with pytest.raises(UsageError, match="needs a binary model with 2 classes; this one has 3"):
        summarize(preds, binary_mode="positive")
    with pytest.raises(UsageError, match="needs a binary model"):
        collect_example_stats(preds, binary_mode="positive")
