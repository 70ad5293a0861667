"""``calibkit ece`` warns about saturated rows only where the input lost something.

A stored probability of exactly 1 has lost how sure the model was (beyond the stored
precision); temperature scaling cannot bring it back. Logits lose nothing: when the softmax of
a row rounds to 1 in float64 (a margin above about 37), every metric is still computed from
the logits themselves, so there is nothing to warn about. ``saturated_fraction`` in the JSON
reports the share either way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from calibkit.cli import app

LOGITS = np.array([[50.0, 0.0, 0.0], [0.0, 1.0, 2.0], [0.0, 40.0, 0.0], [0.0, 0.0, 3.0]])
LABELS = np.array([0, 2, 1, 1])


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _ece(runner: CliRunner, path: Path, *extra: str):
    result = runner.invoke(app, ["ece", str(path), "--json", *extra], prog_name="calibkit")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


@pytest.mark.parametrize("convention", ["calibkit", "guo"])
def test_logits_whose_softmax_rounds_to_one_are_not_a_warning(
    runner: CliRunner, tmp_path: Path, convention: str
) -> None:
    path = tmp_path / "logits.npz"
    np.savez(path, logits=LOGITS, labels=LABELS)
    doc, stderr = _ece(runner, path, "--convention", convention)
    assert doc["saturated_fraction"] == 0.5  # reported, rows 0 and 2
    assert stderr == ""


def test_saturated_stored_probabilities_are_a_warning(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "probs.npz"
    np.savez(path, probs=_softmax(LOGITS).astype(np.float32), labels=LABELS)
    doc, stderr = _ece(runner, path)
    assert doc["saturated_fraction"] == 0.5
    assert stderr == (
        f"calibkit: warning: {path}: 50.0% of rows have a top probability of exactly 1 "
        "(saturated): how sure the model was is lost in the stored precision; save logits to "
        "keep it\n"
    )


def test_unsaturated_probabilities_are_no_warning(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "probs.npz"
    np.savez(path, probs=_softmax(LOGITS / 20), labels=LABELS)
    doc, stderr = _ece(runner, path)
    assert doc["saturated_fraction"] == 0.0 and stderr == ""
