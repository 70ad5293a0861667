"""A limit in the wrong direction would invert the gate: refused, like a repeated metric.

``--max accuracy=0.9`` passes every model whose accuracy is at most 0.9 (a worse model passes,
a better one fails); ``--min ece=0.1`` rewards bad calibration. Both are refused with the flag
that says it the right way, in the CLI and (in parameter words) in the library; a metric given
twice in one option would silently keep the last value, so it is refused too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from calibkit.errors import UsageError
from calibkit.gate.checks import GateConfig
from tests._cli import assert_ok, assert_one_line_error, invoke, write_npz


@pytest.fixture
def pred(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 3)) * 3
    return write_npz(tmp_path / "p.npz", logits=logits, labels=rng.integers(0, 3, 200))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--max", "accuracy=0.9"),
            "--max accuracy: higher is better for accuracy, so its limit is a minimum "
            "(--min-accuracy)",
        ),
        (
            ("--min", "ece=0.1"),
            "--min ece: lower is better for ECE, so its limit is a maximum (--max-ece)",
        ),
        (
            ("--min", "ece_over=0.0"),
            "--min ece_over: lower is better for ECE (over-confident part), so its limit is a "
            "maximum (--max ece_over)",
        ),
        (("--max", "ece=0.5,ece=0.01"), "--max: 'ece' is given twice"),
        (("--max", "ece=0.5,ECE=0.01"), "--max: 'ece' is given twice"),
    ],
)
def test_wrong_direction_or_repeated_limit_is_refused(
    runner: CliRunner, pred: Path, args: tuple[str, ...], message: str
) -> None:
    assert_one_line_error(invoke(runner, "check", pred, *args), message)


def test_the_right_direction_passes(runner: CliRunner, pred: Path) -> None:
    assert_ok(invoke(runner, "check", pred, "--min", "accuracy=0", "--max", "ece=1,nll=100"))


def test_repeated_tolerance_is_refused(runner: CliRunner, pred: Path) -> None:
    result = invoke(runner, "check", pred, "--baseline", pred, "--max-increase", "ece=1,ece=2")
    assert_one_line_error(result, "--max-increase: 'ece' is given twice")


def test_library_words() -> None:
    with pytest.raises(UsageError) as err:
        GateConfig(max_values={"accuracy": 0.9})
    assert str(err.value) == (
        "max_values['accuracy']: higher is better for accuracy, so its limit is a minimum "
        "(min_values['accuracy'])"
    )
    with pytest.raises(UsageError):
        GateConfig(min_values={"nll": 0.1})
    GateConfig(min_values={"accuracy": 0.5}, max_values={"nll": 1.0})  # the right way round
