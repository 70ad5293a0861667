"""Every command that writes a file says so on stderr, ``calibkit: wrote FILE``, once per file
and only once the file is there; stdout (``--json``) carries the results alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _cli import invoke
from typer.testing import CliRunner, Result

from calibkit.cli import app


@pytest.fixture
def preds(tmp_path: Path) -> tuple[Path, Path]:
    """Validation and test logits of a small over-confident 3-class model."""
    rng = np.random.default_rng(13)
    paths = []
    for split in ("val", "test"):
        labels = rng.integers(0, 3, size=300)
        logits = rng.normal(size=(300, 3))
        logits[np.arange(300), labels] += 1.5
        path = tmp_path / f"{split}.npz"
        np.savez(path, logits=logits * 3.0, labels=labels)
        paths.append(path)
    return paths[0], paths[1]


def _run(runner: CliRunner, *args: object) -> Result:
    result = invoke(runner, *args, prog_name="calibkit")
    assert result.exit_code == 0, result.output
    return result


def _wrote(result: Result) -> list[str]:
    return [
        line.removeprefix("calibkit: wrote ")
        for line in result.stderr.splitlines()
        if line.startswith("calibkit: wrote ")
    ]


def _json_only(result: Result) -> None:
    json.loads(result.stdout)
    assert "wrote" not in result.stdout


def test_fit_temp_out(runner: CliRunner, preds, tmp_path: Path) -> None:
    out = tmp_path / "calibrator.json"
    result = _run(runner, "fit-temp", preds[0], "--out", out, "--json")
    assert _wrote(result) == [str(out)] and out.is_file()
    _json_only(result)


def test_ece_out(runner: CliRunner, preds, tmp_path: Path) -> None:
    out = tmp_path / "ece.json"
    result = _run(runner, "ece", preds[1], "--out", out, "--json")
    assert _wrote(result) == [str(out)] and out.is_file()
    _json_only(result)
    assert json.loads(out.read_text()) == json.loads(result.stdout)


def test_ece_without_out_writes_and_says_nothing(runner: CliRunner, preds) -> None:
    assert _wrote(_run(runner, "ece", preds[1], "--json")) == []


def test_sweep_temp_plot_and_csv(runner: CliRunner, preds, tmp_path: Path) -> None:
    plot, csv = tmp_path / "sweep.png", tmp_path / "sweep.csv"
    args = ("sweep-temp", f"m={preds[1]}", "--temps", "0.5,1,2", "--json")
    result = _run(runner, *args, "--plot", plot, "--csv", csv)
    assert _wrote(result) == [str(csv), str(plot)]
    assert plot.stat().st_size > 0 and csv.stat().st_size > 0
    _json_only(result)
    assert _wrote(_run(runner, *args, "--csv", csv)) == [str(csv)]


def test_check_junit(runner: CliRunner, preds, tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    result = _run(runner, "check", preds[1], "--max-ece", "1", "--junit", junit, "--json")
    assert _wrote(result) == [str(junit)] and junit.is_file()
    _json_only(result)


def test_check_junit_of_a_failed_gate(runner: CliRunner, preds, tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    args = ["check", str(preds[1]), "--max-ece", "0", "--junit", str(junit)]
    result = runner.invoke(app, args, prog_name="calibkit")
    assert result.exit_code == 1
    assert _wrote(result) == [str(junit)] and junit.is_file()


def test_apply_temp_out(runner: CliRunner, preds, tmp_path: Path) -> None:
    out = tmp_path / "scaled.npz"
    result = _run(runner, "apply-temp", preds[1], "-t", "2", "--out", out)
    assert _wrote(result) == [f"{out} (T = 2)"] and out.is_file()
    assert result.stdout == ""


def test_compare_out_dir(runner: CliRunner, preds, tmp_path: Path) -> None:
    out_dir = tmp_path / "report"
    result = _run(runner, "compare", f"m={preds[1]}", "--val", f"m={preds[0]}", "--out-dir",
                  out_dir, "--json")  # fmt: skip
    written = _wrote(result)
    assert written and sorted(written) == sorted(str(p) for p in out_dir.iterdir())
    _json_only(result)


def test_diagram_out(runner: CliRunner, preds, tmp_path: Path) -> None:
    out = tmp_path / "reliability.png"
    result = _run(runner, "diagram", f"m={preds[1]}", "--out", out)
    assert _wrote(result) == [str(out)] and out.stat().st_size > 0
