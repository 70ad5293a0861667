"""``calibkit selective``: the JSON keys, the table, --out / --plot (atomic, never over an input),
the collapse warning (and ``calibkit ece --binning mass``'s), and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _cli import assert_ok, invoke, one_error_line, run_json, write_npz
from typer.testing import CliRunner

HELM_KEYS = {
    "ece_10_bin",
    "ece_1_bin",
    "max_prob",
    "selective_cov_acc_area",
    "selective_acc@10",
    "platt_ece_10_bin_cv",
    "platt_ece_1_bin_cv",
    "platt_ece_10_bin",
    "platt_ece_1_bin",
    "platt_coef",
    "platt_intercept",
    "ts_ece_10_bin_cv",
}
OWN_KEYS = {
    "n",
    "accuracy",
    "ece",
    "smooth_ece",
    "brier_correct",
    "nll_correct",
    "auroc_correct",
    "aurc",
    "aurc_oracle",
    "aurc_random",
    "e_aurc",
    "accuracy_at_coverage",
    "risk_coverage",
    "ece_10_bin_nonempty",
    "ece_10_bin_collapsed",
    "warnings",
    "reasons",
    "folds",
    "seed",
}


def _logits(tmp_path: Path, n: int = 200, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3)) * 2
    y = rng.integers(0, 3, n)
    y[: n // 2] = z[: n // 2].argmax(axis=1)
    return write_npz(tmp_path / "pred.npz", logits=z, labels=y)


def _verbalised(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    c = rng.choice([0.6, 0.8, 0.9], 150)
    hit = (rng.uniform(size=150) < c * 0.9).astype(np.float64)
    return write_npz(tmp_path / "verbal.npz", confidence=c, correct=hit)


def test_json_has_helms_names_and_ours(runner: CliRunner, tmp_path: Path) -> None:
    doc = run_json(runner, "selective", _logits(tmp_path))
    assert doc.keys() >= HELM_KEYS | OWN_KEYS
    assert doc["n"] == 200 and doc["folds"] == 10 and doc["ts_method"] == "softmax"
    assert [a["target"] for a in doc["accuracy_at_coverage"]] == [0.1, 0.5, 0.9]
    assert doc["selective_cov_acc_area"] == pytest.approx(1 - doc["aurc"], abs=1e-15)


def test_options_reach_the_result(runner: CliRunner, tmp_path: Path) -> None:
    doc = run_json(
        runner,
        "selective",
        _logits(tmp_path),
        "--bins",
        "7",
        "--folds",
        "4",
        "--seed",
        "3",
        "--coverage",
        "0.25, 1",
    )
    assert (doc["n_bins"], doc["folds"], doc["seed"]) == (7, 4, 3)
    assert [a["target"] for a in doc["accuracy_at_coverage"]] == [0.25, 1.0]
    assert doc["accuracy_at_coverage"][1]["rows"] == 200


def test_the_table_names_the_metrics(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "selective", _logits(tmp_path))
    assert_ok(result)
    for word in ("ece_10_bin", "platt_ece_10_bin_cv", "AURC", "selective_acc@10", "accuracy @ 50%"):
        assert word in result.stdout
    assert result.stderr == ""


def test_verbalised_confidences_warn_that_the_bins_collapsed(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = _verbalised(tmp_path)
    result = invoke(runner, "selective", path, "--json")
    assert_ok(result)
    lines = result.stderr.splitlines()
    assert lines == [
        f"calibkit: warning: {path}: ece_10_bin: equal-mass bins collapsed: 3 of 10 bins hold "
        "rows (3 distinct confidences; tied confidences are never split between bins, so the "
        "ECE is that of fewer, larger bins)"
    ]
    doc = json.loads(result.stdout)
    assert doc["ece_10_bin_collapsed"] is True and doc["ece_10_bin_nonempty"] == 3
    assert doc["ts_method"] == "binary"
    # the 10 % target lies inside the top tie group (.9): the whole group is used
    first = doc["accuracy_at_coverage"][0]
    top = int(np.sum(np.load(path)["confidence"] == 0.9))
    assert first["coverage"] > 0.1 and first["rows"] == top


def test_ece_mass_binning_warns_when_bins_collapse(runner: CliRunner, tmp_path: Path) -> None:
    path = _verbalised(tmp_path)
    result = invoke(runner, "ece", path, "--binning", "mass", "--bins", "10", "--json")
    assert_ok(result)
    assert (
        f"calibkit: warning: {path}: equal-mass bins collapsed: 3 of 10 bins hold rows"
        in result.stderr
    )
    # equal-width bins, or equal-mass bins that all fill, say nothing of it
    for args in (["--binning", "width"], ["--binning", "mass", "--bins", "2"]):
        quiet = invoke(runner, "ece", path, *args, "--json")
        assert_ok(quiet)
        assert "collapsed" not in quiet.stderr


def test_out_and_plot_are_written(runner: CliRunner, tmp_path: Path) -> None:
    pred = _logits(tmp_path)
    out, fig = tmp_path / "m.json", tmp_path / "rc.png"
    result = invoke(runner, "selective", pred, "--out", out, "--plot", fig)
    assert_ok(result)
    assert result.stderr == f"calibkit: wrote {out}\ncalibkit: wrote {fig}\n"
    assert json.loads(out.read_text())["n"] == 200
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "pred.npz", "rc.png"]


@pytest.mark.parametrize("suffix", [".svg", ".pdf"])
def test_plot_format_by_suffix(runner: CliRunner, tmp_path: Path, suffix: str) -> None:
    fig = tmp_path / f"rc{suffix}"
    assert_ok(invoke(runner, "selective", _verbalised(tmp_path), "--plot", fig, "--json"))
    head = fig.read_bytes()[:5]
    assert head == (b"%PDF-" if suffix == ".pdf" else head) and fig.stat().st_size > 1000
    if suffix == ".svg":
        assert b"<svg" in fig.read_bytes()


def test_plot_replaces_an_old_file_only_when_done(runner: CliRunner, tmp_path: Path) -> None:
    fig = tmp_path / "rc.png"
    fig.write_bytes(b"old")
    bad = write_npz(tmp_path / "bad.npz", confidence=np.array([0.5, 1.7]), correct=np.ones(2))
    one_error_line(invoke(runner, "selective", bad, "--plot", fig), bad)
    assert fig.read_bytes() == b"old"  # a failed run leaves it as it was
    assert_ok(invoke(runner, "selective", _logits(tmp_path), "--plot", fig, "--json"))
    assert fig.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "pred.npz", "rc.png"]


def test_plot_never_over_the_input(runner: CliRunner, tmp_path: Path) -> None:
    pred = _logits(tmp_path)
    fig = tmp_path / "pred.png"
    pred_png = pred.rename(fig)  # an input that happens to be named .png
    before = pred_png.read_bytes()
    message = one_error_line(invoke(runner, "selective", pred_png, "--plot", pred_png))
    assert "input" in message
    assert pred_png.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--coverage", "0"], "--coverage: coverages must lie in (0, 1]"),
        (["--coverage", "0.5,x"], "--coverage must be comma-separated numbers"),
        (["--coverage", ","], "--coverage is empty"),
        (["--folds", "1"], "--folds"),
        (["--plot", "fig.gif"], "figure format must be one of"),
    ],
)
def test_bad_options_are_one_line(
    runner: CliRunner, tmp_path: Path, args: list[str], needle: str
) -> None:
    pred = _logits(tmp_path)
    fixed = [str(tmp_path / a) if a.endswith(".gif") else a for a in args]
    message = one_error_line(invoke(runner, "selective", pred, *fixed))
    assert needle in message


def test_bad_input_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "missing.npz"
    one_error_line(invoke(runner, "selective", missing), missing)
    nan = write_npz(tmp_path / "nan.npz", confidence=np.array([0.5, np.nan]), correct=np.ones(2))
    one_error_line(invoke(runner, "selective", nan), nan)


def test_too_few_rows_give_nulls_with_reasons(runner: CliRunner, tmp_path: Path) -> None:
    pred = write_npz(
        tmp_path / "tiny.npz", confidence=np.array([0.9, 0.8, 0.3]), correct=np.array([1, 0, 1])
    )
    doc = run_json(runner, "selective", pred)
    assert doc["platt_ece_10_bin_cv"] is None and doc["ts_ece_10_bin_cv"] is None
    assert "too few rows" in doc["reasons"]["platt_ece_10_bin_cv"]
    result = invoke(runner, "selective", pred)
    assert_ok(result)
    assert "too few rows" in result.stdout


def _grouped(tmp_path: Path) -> Path:
    rng = np.random.default_rng(2)
    n = 700
    z = rng.normal(size=(n, 3)) * 2
    y = rng.integers(0, 3, n)
    y[:400] = z[:400].argmax(axis=1)
    task = rng.choice(["big", "small"], n, p=[0.8, 0.2])
    return write_npz(tmp_path / "grouped.npz", logits=z, labels=y, task=task)


def test_group_by_gives_a_row_per_group_worst_first(runner: CliRunner, tmp_path: Path) -> None:
    path = _grouped(tmp_path)
    result = invoke(runner, "selective", path, "--group-by", "task", "--json")
    assert_ok(result)
    pooled = json.loads(result.stdout)
    doc = pooled["group_by"]  # the layout of ece --group-by's document
    assert doc["columns"] == ["task"] and doc["n_groups"] == 2 and doc["small_groups"] == 1
    assert doc["order_by"] == "ece_10_bin" and doc["min_rows"] == 300
    assert pooled["ece_10_bin"] == doc["micro"]["ece_10_bin"]
    assert {g["label"] for g in doc["groups"]} == {"task=big", "task=small"}
    eces = [g["ece_10_bin"] for g in doc["groups"]]
    assert eces == sorted(eces, reverse=True)
    assert doc["micro"]["n"] == 700 and sum(g["n"] for g in doc["groups"]) == 700
    assert doc["macro"]["ece_10_bin"] == pytest.approx(sum(eces) / 2)
    small = [g for g in doc["groups"] if g["small"]]
    assert [g["label"] for g in small] == ["task=small"]
    assert result.stderr.startswith(f"calibkit: warning: {path}: 1 of 2 groups have fewer than 300")
    table = invoke(runner, "selective", path, "--group-by", "task")
    assert_ok(table)
    assert "task=small *" in table.stdout and "micro (all rows)" in table.stdout


def test_group_by_errors_are_one_line(runner: CliRunner, tmp_path: Path) -> None:
    path = _grouped(tmp_path)
    message = one_error_line(invoke(runner, "selective", path, "--group-by", "nope"), path)
    assert "no column 'nope'" in message
    fig = tmp_path / "rc.png"
    message = one_error_line(invoke(runner, "selective", path, "--group-by", "task", "--plot", fig))
    assert "--plot draws one curve" in message
    assert not fig.exists()


def test_a_saturated_wrong_confidence_warns_about_the_nll(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = write_npz(
        tmp_path / "sat.npz", confidence=np.array([1.0, 0.6, 0.7]), correct=np.array([0, 1, 1])
    )
    result = invoke(runner, "selective", path, "--json")
    assert_ok(result)
    assert result.stderr == (
        f"calibkit: warning: {path}: 1 row has a confidence of exactly 1 (or 0) and the other "
        "outcome: the NLL takes -log 0 at the smallest float64 (744.4 nats), so it is a lower "
        "bound\n"
    )
    assert json.loads(result.stdout)["nll_floored_rows"] == 1
