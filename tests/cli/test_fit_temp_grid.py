"""`calibkit fit-temp --objective ece|nll --grid START:STOP:STEP` through Typer's runner.

Inputs are generated in ``tmp_path``. The chosen temperature is checked against the library
(:func:`~calibkit.calibrators.grid.fit_temperature_grid`) and against a direct float64 computation
of the validation ECE at every grid point; the calibrator it writes must record the objective
and grid and still be read by ``apply-temp``. Bad grids and contradicting flags end with exit 2
and exactly one ``calibkit: error:`` line, before any input is read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _cli import invoke as run
from _cli import one_error_line
from typer.testing import CliRunner, Result

from calibkit.api import evaluate
from calibkit.calibrators.grid import fit_temperature_grid, parse_grid
from calibkit.loaders import read_predictions


def ok_json(result: Result) -> dict[str, Any]:
    assert "Traceback" not in result.output
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


@pytest.fixture
def model(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, Path]:
    """An over-confident 5-class model: validation and test files."""
    paths = []
    for split, n in (("val", 2000), ("test", 3000)):
        z = rng.normal(scale=5.0, size=(n, 5))
        y = np.where(rng.random(n) < 0.6, z.argmax(axis=1), rng.integers(0, 5, n))
        path = tmp_path / f"{split}.npz"
        np.savez(path, logits=z.astype(np.float32), labels=y)
        paths.append(path)
    return paths[0], paths[1]


def _ece_by_hand(path: Path, t: float, n_bins: int = 15) -> float:
    with np.load(path) as f:
        z, y = f["logits"].astype(np.float64) / t, f["labels"]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    conf, hit = p.max(axis=1), (p.argmax(axis=1) == y)
    b = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)  # (lo, hi] bins
    return float(
        sum(abs(conf[b == i].sum() - hit[b == i].sum()) for i in range(n_bins)) / conf.size
    )


def test_ece_grid_json(runner: CliRunner, model: tuple[Path, Path]) -> None:
    val, test = model
    doc = ok_json(
        run(
            runner,
            "fit-temp",
            val,
            "--eval",
            test,
            "--objective",
            "ece",
            "--grid",
            "0.5:5:0.1",
            "--json",
        )
    )
    grid = parse_grid("0.5:5:0.1")
    by_hand = [_ece_by_hand(val, t) for t in grid.values]
    assert doc["temperature"] == grid.values[int(np.argmin(by_hand))]
    np.testing.assert_allclose(doc["grid"]["values"], by_hand, rtol=0, atol=1e-12)
    assert doc["objective"] == "ece"
    assert {k: doc["grid"][k] for k in ("spec", "start", "stop", "step", "size")} == {
        "spec": "0.5:5:0.1",
        "start": 0.5,
        "stop": 5.0,
        "step": 0.1,
        "size": 46,
    }
    assert (doc["grid"]["n_bins"], doc["grid"]["binning"], doc["grid"]["ties"]) == (15, "width", 1)
    assert doc["gradient"] is None and doc["passes"] == 1 and doc["clamped"] is None
    lib = fit_temperature_grid(read_predictions(val), grid="0.5:5:0.1", objective="ece")
    assert doc["temperature"] == lib.temperature
    # the before/after metrics are those of the chosen T, on VAL and on TEST
    after = evaluate(
        np.load(test)["logits"].astype(np.float64) / doc["temperature"], np.load(test)["labels"]
    )
    assert doc["eval"]["ece_after"] == pytest.approx(after.ece, abs=1e-12)
    assert doc["ece_after"] == pytest.approx(doc["grid"]["best"], abs=1e-12)


def test_bins_and_binning_are_the_objectives(runner: CliRunner, model: tuple[Path, Path]) -> None:
    val, _ = model
    doc = ok_json(
        run(
            runner,
            "fit-temp",
            val,
            "--objective",
            "ece",
            "--grid",
            "0.5:5:0.1",
            "--bins",
            "5",
            "--binning",
            "mass",
            "--json",
        )
    )
    lib = fit_temperature_grid(
        read_predictions(val),
        grid="0.5:5:0.1",
        objective="ece",
        n_bins=5,
        binning="mass",
    )
    assert doc["temperature"] == lib.temperature
    assert (doc["grid"]["n_bins"], doc["grid"]["binning"]) == (5, "mass")
    assert doc["grid"]["values"] == list(lib.values)


def test_nll_grid_and_exact_default(runner: CliRunner, model: tuple[Path, Path]) -> None:
    val, _ = model
    exact = ok_json(run(runner, "fit-temp", val, "--json"))
    assert exact["objective"] == "nll" and exact["grid"] is None
    assert isinstance(exact["gradient"], float)
    on_grid = ok_json(run(runner, "fit-temp", val, "--grid", "0.5:5:0.5", "--json"))
    assert on_grid["objective"] == "nll"
    assert on_grid["grid"]["n_bins"] is None
    values = parse_grid("0.5:5:0.5").values
    # the NLL is convex in 1/T: the grid's best is one of the two points around the optimum
    t_star = exact["temperature"]
    below = max(v for v in values if v <= t_star)
    above = min(v for v in values if v >= t_star)
    assert on_grid["temperature"] in (below, above)
    assert on_grid["nll_after"] == pytest.approx(min(on_grid["grid"]["values"]), abs=1e-12)
    assert on_grid["nll_after"] >= exact["nll_after"] - 1e-12


def test_calibrator_records_the_grid_and_apply_temp_reads_it(
    runner: CliRunner, model: tuple[Path, Path], tmp_path: Path
) -> None:
    val, test = model
    cal = tmp_path / "cal.json"
    result = run(runner, "fit-temp", val, "--objective", "ece", "--grid", "0.5:5:0.1", "--out", cal)
    assert result.exit_code == 0, result.output
    doc = json.loads(cal.read_text())
    assert doc["calibkit_calibrator"] == 1 and doc["method"] == "temperature"
    assert doc["objective"] == "ece" and doc["grid"]["spec"] == "0.5:5:0.1"
    assert doc["grid"]["size"] == 46 and doc["fit"]["t_max"] == 5.0
    out = tmp_path / "scaled.npz"
    result = run(runner, "apply-temp", test, "--calibrator", cal, "--out", out)
    assert result.exit_code == 0, result.output
    with np.load(out) as f, np.load(test) as g:
        np.testing.assert_allclose(
            f["logits"], g["logits"].astype(np.float64) / doc["temperature"], rtol=1e-6
        )


def test_exact_fit_calibrator_says_nll(
    runner: CliRunner, model: tuple[Path, Path], tmp_path: Path
) -> None:
    val, _ = model
    cal = tmp_path / "cal.json"
    assert run(runner, "fit-temp", val, "--out", cal).exit_code == 0
    doc = json.loads(cal.read_text())
    assert doc["objective"] == "nll" and doc["grid"] is None


def test_text_output_names_the_grid(runner: CliRunner, model: tuple[Path, Path]) -> None:
    val, _ = model
    result = run(runner, "fit-temp", val, "--objective", "ece", "--grid", "0.5:5:0.1")
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith("T = ")
    assert "lowest validation ECE, 15 width bins" in first
    assert "46 temperatures on grid 0.5:5:0.1" in first
    assert "dNLL" not in first


def test_minimum_at_the_grid_end_warns_once(runner: CliRunner, model: tuple[Path, Path]) -> None:
    val, _ = model  # over-confident: on 0.1..0.5 the ECE keeps falling to the last point
    result = run(runner, "fit-temp", val, "--objective", "ece", "--grid", "0.1:0.5:0.1", "--json")
    doc = ok_json(result)
    assert doc["temperature"] == 0.5 and doc["clamped"] == "t_max"
    warnings = [line for line in result.stderr.splitlines() if line.startswith("calibkit: warn")]
    assert len(warnings) == 1 and "largest temperature T = 0.5" in warnings[0]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--objective", "ece"], "--objective ece needs --grid START:STOP:STEP"),
        (["--grid", "0.1:10:0.1", "--t-min", "0.5"], "--t-min applies to the exact fit only"),
        (["--grid", "0.1:10:0.1", "--t-max", "5"], "--t-max applies to the exact fit only"),
        (["--grid", "0.1:10:0.1", "--device", "cpu"], "--device applies to the exact fit only"),
        (["--grid", "0.1:10"], "grid '0.1:10': expected START:STOP:STEP"),
        (["--grid", "0:10:0.1"], "START must be > 0"),
        (["--grid", "0.1:10:-0.1"], "STEP must be a decimal number"),
        (["--grid", "0.1:1:0.4"], "not START plus a whole number of steps"),
        (["--grid", "1:20000:1"], "20000 temperatures; at most 10000"),
        (["--grid", "1:10000:1", "--bins", "1001"], "per-bin sums"),
        (["--objective", "brier", "--grid", "1:2:1"], "--objective must be nll or ece"),
    ],
)
def test_refusals_are_one_line(
    runner: CliRunner, args: list[str], problem: str, tmp_path: Path
) -> None:
    missing = tmp_path / "not-there.npz"  # the refusal comes before any read
    result = run(runner, "fit-temp", missing, *args)
    message = one_error_line(result)
    assert problem in message
    assert "not-there" not in message
