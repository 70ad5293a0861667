"""`calibkit ece --all`: every estimator with bootstrap intervals, through Typer's runner.

The JSON must hold the documented keys with exactly the numbers of
:func:`calibkit.stats.extended.extended_metrics` (whose numbers are checked against hand values
and direct formulas in ``tests/unit/test_extended_metrics.py``); the table output must show the
estimators with their intervals, the bin sensitivity and the worst classes. Inputs: the bundled
sample data, and confidence-only and one-logit binary files generated in ``tmp_path``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _cli import assert_one_line_error, ece_json, invoke
from typer.testing import CliRunner, Result

from calibkit.cli import app
from calibkit.loaders import read_predictions
from calibkit.metrics import summarize
from calibkit.metrics.estimators import smooth_ece
from calibkit.metrics.table import BUILTIN
from calibkit.stats.extended import extended_metrics

HARD = Path(__file__).resolve().parents[2] / "sample_data" / "digits_hard_test.npz"

ALL_KEYS = {
    "ece_debiased",
    "rmsce_debiased",
    "smece",
    "smece_bandwidth",
    "classwise_ece",
    "worst_classes",
    "top_k_accuracy",
    "brier_reliability",
    "brier_resolution",
    "brier_uncertainty",
    "brier_within_bin_variance",
    "brier_within_bin_covariance",
    "brier_binning",
    "ece_over",
    "ece_under",
    "bin_sensitivity",
    "ci",
    "ci_level",
    "bootstrap",
    "seed",
}
CLASS_KEYS = {k for k in ALL_KEYS if k.startswith("brier_")} | {
    "classwise_ece",
    "worst_classes",
    "top_k_accuracy",
}
HEADLINE = ("accuracy", "ece", "mce", "rmsce", "nll", "brier")
#: The built-in bootstrapped metrics, by name (a metric registered at import is left out).
METRICS = (*HEADLINE, "ece_over", "ece_under", "ece_debiased")
CLOSE = {"rel": 1e-12, "abs": 1e-15}


# --------------------------------------------------------------------------------------------
# helpers


def run_ece(*args: str | Path) -> Result:
    return invoke(CliRunner(), "ece", *args)


def run_json(*args: str | Path) -> dict[str, Any]:
    out: dict[str, Any] = ece_json(CliRunner(), *args)
    return out


def expected_extras(
    path: Path, *, ci: float = 0.95, bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """What ``--all`` should add: the library's :func:`extended_metrics`, called directly."""
    preds = read_predictions(path)
    return extended_metrics(preds, summarize(preds), ci=ci, bootstrap=bootstrap, seed=seed)


def assert_matches_library(doc: dict[str, Any], want: dict[str, Any]) -> None:
    assert set(want) <= set(doc)
    for key, value in want.items():
        if isinstance(value, float):
            assert doc[key] == pytest.approx(value, **CLOSE), key
        elif key == "ci":
            assert set(doc["ci"]) == set(value)
            for metric, (lo, hi) in value.items():
                assert doc["ci"][metric] == pytest.approx([lo, hi], **CLOSE), metric
        elif key in ("bin_sensitivity", "worst_classes"):
            assert len(doc[key]) == len(value), key
            for got, exp in zip(doc[key], value, strict=True):
                assert got.keys() == exp.keys()
                for field, x in exp.items():
                    assert got[field] == (pytest.approx(x, **CLOSE) if isinstance(x, float) else x)
        elif key == "top_k_accuracy":
            assert doc[key] == pytest.approx(value, **CLOSE)
        else:
            assert doc[key] == value, key


def brier_parts(doc: dict[str, Any]) -> float:
    return (
        doc["brier_reliability"]
        - doc["brier_resolution"]
        + doc["brier_uncertainty"]
        + doc["brier_within_bin_variance"]
        - 2 * doc["brier_within_bin_covariance"]
    )


@pytest.fixture(scope="module")
def hard_all() -> dict[str, Any]:
    return run_json(HARD, "--all")


@pytest.fixture
def confidence_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    conf = rng.uniform(0.3, 1.0, 400)
    path = tmp_path / "conf.npz"
    np.savez(path, confidence=conf, correct=(rng.random(400) < conf - 0.05).astype(np.float64))
    return path


@pytest.fixture
def binary_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(6)
    z = rng.normal(scale=2.0, size=300)
    path = tmp_path / "binary.npz"
    np.savez(path, logits=z, labels=(rng.random(300) < 1 / (1 + np.exp(-0.7 * z))).astype(int))
    return path


# --------------------------------------------------------------------------------------------
# JSON on the sample data


def test_all_json_has_every_key(hard_all) -> None:
    assert set(hard_all) >= ALL_KEYS
    assert {m for m in hard_all["ci"] if m in BUILTIN} == set(METRICS)
    for lo, hi in hard_all["ci"].values():
        assert lo <= hi
    assert hard_all["ci_level"] == 0.95
    assert hard_all["bootstrap"] == 1000
    assert hard_all["seed"] == 0
    assert hard_all["brier_binning"] == "15 equal-width bins of each class probability"
    assert set(hard_all["top_k_accuracy"]) == {"1", "5"}
    assert len(hard_all["worst_classes"]) == 10


def test_all_json_intervals_contain_the_point_values(hard_all) -> None:
    for metric in (*HEADLINE, "ece_over", "ece_under", "ece_debiased"):
        lo, hi = hard_all["ci"][metric]
        assert lo <= hard_all[metric] <= hi, (metric, lo, hard_all[metric], hi)


def test_all_json_numbers_equal_the_library(hard_all) -> None:
    assert_matches_library(hard_all, expected_extras(HARD))


def test_all_json_is_consistent(hard_all) -> None:
    assert brier_parts(hard_all) == pytest.approx(hard_all["brier"], abs=1e-12)
    assert hard_all["ece_over"] + hard_all["ece_under"] == pytest.approx(hard_all["ece"], **CLOSE)
    assert hard_all["top_k_accuracy"]["1"] == pytest.approx(hard_all["accuracy"], abs=1e-15)
    assert hard_all["rmsce_debiased"] == pytest.approx(
        math.sqrt(max(hard_all["ece_debiased"], 0.0)), **CLOSE
    )
    width15 = [r for r in hard_all["bin_sensitivity"] if r["binning"] == "width"][2]
    assert width15["n_bins"] == 15 and width15["ece"] == pytest.approx(hard_all["ece"], **CLOSE)
    classwise = [row["ece"] for row in hard_all["worst_classes"]]
    assert classwise == sorted(classwise, reverse=True)
    assert hard_all["classwise_ece"] == pytest.approx(np.mean(classwise), **CLOSE)  # K = 10


def test_ci_bootstrap_seed_are_reflected_and_reproducible() -> None:
    args = (HARD, "--all", "--ci", "0.9", "--bootstrap", "200", "--seed", "3", "--json")
    first, second = run_ece(*args), run_ece(*args)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert first.stdout == second.stdout
    doc = json.loads(first.stdout)
    assert (doc["ci_level"], doc["bootstrap"], doc["seed"]) == (0.9, 200, 3)
    want = expected_extras(HARD, ci=0.9, bootstrap=200, seed=3)
    for metric, interval in want["ci"].items():
        assert doc["ci"][metric] == pytest.approx(list(interval), **CLOSE), metric
    other = run_json(HARD, "--all", "--ci", "0.9", "--bootstrap", "200", "--seed", "4")
    assert other["ci"] != doc["ci"]
    assert other["smece"] == doc["smece"]  # only the intervals depend on the seed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--ci", "1.5"), "--ci must lie in (0, 1); got 1.5"),
        (("--ci", "0"), "--ci must lie in (0, 1); got 0.0"),
        (("--ci", "1"), "--ci must lie in (0, 1); got 1.0"),
        (("--bootstrap", "10"), "--bootstrap must be >= 100 replicates; got 10"),
    ],
)
def test_bad_ci_and_bootstrap_are_one_line_errors(args, message) -> None:
    assert_one_line_error(run_ece(HARD, "--all", *args), message)


# --------------------------------------------------------------------------------------------
# table output


def test_table_output_shows_estimators_sensitivity_and_worst_classes(hard_all) -> None:
    result = run_ece(HARD, "--all", "--no-bins")
    assert result.exit_code == 0, result.output
    flat = re.sub(r"\s+", " ", result.stdout)
    assert "estimators (15 width bins; 95% bootstrap CI, 1000 replicates)" in flat
    text = result.stdout[result.stdout.index("estimators (") :]  # after the headline table
    header = next(line for line in text.splitlines() if "estimator" in line and "value" in line)
    assert "CI" in header and "what" in header
    lo, hi = hard_all["ci"]["ece"]
    ece_row = next(line for line in text.splitlines() if line.strip("│ ").startswith("ECE "))
    assert f"{hard_all['ece']:.4f}" in ece_row and f"{lo:.4f} .. {hi:.4f}" in ece_row
    for label, key in [
        ("debiased squared L2 CE", "ece_debiased"),
        ("smooth ECE", "smece"),
        ("class-wise ECE", "classwise_ece"),
        ("reliability (REL)", "brier_reliability"),
        ("top-5 accuracy", None),
    ]:
        row = next(line for line in text.splitlines() if label in line)
        if key is not None:
            assert f"{hard_all[key]:.4f}" in row, row
    assert "bin sensitivity of ECE" in flat
    sens_header = next(line for line in text.splitlines() if "M=5" in line)
    for m in (5, 10, 15, 20, 30):
        assert f"M={m}" in sens_header
    mass_row = next(line for line in text.splitlines() if line.strip("│ ").startswith("mass"))
    mass = [r["ece"] for r in hard_all["bin_sensitivity"] if r["binning"] == "mass"]
    assert all(f"{v:.4f}" in mass_row for v in mass)
    assert "worst classes by class-wise ECE" in flat
    worst = hard_all["worst_classes"][0]
    assert re.search(rf"│\s+{worst['class']}\s+│\s+{worst['ece']:.4f}\s+│", text)
    assert result.stderr == ""


def test_table_title_follows_ci_and_bootstrap() -> None:
    result = run_ece(HARD, "--all", "--no-bins", "--ci", "0.9", "--bootstrap", "200")
    assert result.exit_code == 0, result.output
    assert "90% bootstrap CI, 200 replicates" in re.sub(r"\s+", " ", result.stdout)


# --------------------------------------------------------------------------------------------
# confidence-only and binary inputs


def test_confidence_only_input(confidence_file) -> None:
    doc = run_json(confidence_file, "--all")
    assert doc["input"] == "confidence"
    assert not CLASS_KEYS & set(doc)
    assert set(doc) >= (ALL_KEYS - CLASS_KEYS)
    unknown = {"nll", "brier"}  # unknown without the distribution
    assert {m for m in doc["ci"] if m in BUILTIN} == set(METRICS) - unknown
    assert_matches_library(doc, expected_extras(confidence_file))
    assert doc["smece"] > 0 and doc["smece_bandwidth"] > 0


def test_confidence_only_table(confidence_file) -> None:
    result = run_ece(confidence_file, "--all", "--no-bins")
    assert result.exit_code == 0, result.output
    flat = re.sub(r"\s+", " ", result.stdout)
    assert "smooth ECE" in flat and "debiased squared L2 CE" in flat
    assert "bin sensitivity of ECE" in flat
    assert "worst classes" not in flat and "class-wise ECE" not in flat


def test_binary_single_logit(binary_file) -> None:
    doc = run_json(binary_file, "--all")
    assert doc["n_classes"] == 2 and doc["binary_mode"] == "top-label"
    assert set(doc) >= ALL_KEYS
    assert_matches_library(doc, expected_extras(binary_file))
    assert brier_parts(doc) == pytest.approx(doc["brier"], abs=1e-12)
    assert doc["top_k_accuracy"]["1"] == pytest.approx(doc["accuracy"], abs=1e-15)
    assert [row["class"] for row in doc["worst_classes"]] in ([0, 1], [1, 0])


def test_binary_positive_mode_smooths_p1(binary_file) -> None:
    doc = run_json(binary_file, "--all", "--binary", "positive")
    with np.load(binary_file) as data:
        z, y = data["logits"], data["labels"]
    p1 = 1 / (1 + np.exp(-z))
    smooth = smooth_ece(p1, y)
    assert doc["smece"] == pytest.approx(smooth.value, abs=1e-9)
    assert doc["ece_over"] + doc["ece_under"] == pytest.approx(doc["ece"], **CLOSE)


def test_binary_reports_no_trivial_top_k(binary_file) -> None:
    doc = run_json(binary_file, "--all")
    assert all(int(k) < doc["n_classes"] for k in doc["top_k_accuracy"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ci", "0.9"], "--ci, --bootstrap and --seed go with --all"),
        (["--seed", "3"], "--ci, --bootstrap and --seed go with --all"),
        (
            ["--all", "--convention", "guo"],
            "--all uses calibkit's binning; run --convention without --all",
        ),
    ],
)
def test_options_that_need_each_other(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["ece", "sample_data/digits_hard_test.npz", *args])
    assert result.exit_code == 2
    assert result.stderr == f"calibkit: error: {message}\n"
