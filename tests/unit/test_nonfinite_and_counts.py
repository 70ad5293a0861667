"""Non-finite arithmetic is refused, not reported (#12, item 6); counts come from the rows read,
never from a file's metadata (#12, item 7). Every input is crafted in the test.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _cli import invoke as run
from numpy.typing import NDArray
from typer.testing import CliRunner, Result

import calibkit
from calibkit.calibrators import fit_temperature, sweep_temperatures
from calibkit.calibrators.report import scaling_report
from calibkit.comparison import compare_models
from calibkit.errors import InputError
from calibkit.metrics import summarize
from calibkit.sources.predictions import Predictions, SourceView

LONG_DOUBLE_IS_WIDER = np.finfo(np.longdouble).max > np.finfo(np.float64).max


def one_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("calibkit: error: "), result.stderr
    return lines[0]


class Unvalidated(SourceView):
    """Chunks that bypass validation, as a buggy or hostile source could hand them over."""

    def __init__(self, scores: NDArray[np.float64], labels: NDArray[np.int64]) -> None:
        self.base = Predictions(scores, labels, "logits", "<unvalidated>")

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[Any, Any]]:
        yield self.base.scores, self.base.labels


class Forged(SourceView):
    """Metadata that claims 10**10 rows over a source that holds far fewer."""

    def __init__(self, base: Predictions) -> None:
        self.base = base

    @property
    def n_rows(self) -> int:
        return 10**10


# --------------------------------------------------------------------------------------------
# long double beyond float64's range


@pytest.mark.skipif(not LONG_DOUBLE_IS_WIDER, reason="long double is float64 here")
def test_long_double_logits_beyond_float64_are_refused(runner: CliRunner, tmp_path: Path) -> None:
    z = np.zeros((4, 3), dtype=np.longdouble)
    z[2, 1] = np.longdouble("1e400")
    with pytest.raises(InputError, match=r"logits hold 1e\+400 at row 2, beyond float64's range"):
        calibkit.evaluate(z, [0, 1, 2, 0])
    path = tmp_path / "ld.npz"
    np.savez(path, logits=z, labels=np.array([0, 1, 2, 0]))
    for command in ("ece", "fit-temp"):
        assert one_error(run(runner, command, path)) == (
            f"calibkit: error: {path}: logits hold 1e+400 at row 2, beyond float64's range "
            "(calibkit computes in float64)"
        )


@pytest.mark.skipif(not LONG_DOUBLE_IS_WIDER, reason="long double is float64 here")
def test_long_double_logits_within_float64_are_computed() -> None:
    z = np.array([[1e300, -1e300, 0.0], [1.0, 2.0, 3.0]], dtype=np.longdouble)
    s = calibkit.evaluate(z, [0, 2])
    assert math.isfinite(s.nll) and math.isfinite(s.ece) and s.n == 2


# --------------------------------------------------------------------------------------------
# logits whose row differences overflow float64


@pytest.mark.parametrize("dtype", [np.float64, np.longdouble])
def test_logits_spanning_more_than_float64_are_refused(dtype: type) -> None:
    z = np.array([[0.0, 1.0], [1e308, -1e308], [2.0, 0.0]], dtype=dtype)
    with pytest.raises(InputError, match=r"logits at row 1 span -1e\+308 \.\. 1e\+308"):
        Predictions.from_arrays(z, [0, 1, 0])
    ok = np.array([[1e308, 0.0], [-1e308, 0.0]], dtype=dtype)  # differences fit: fine
    assert math.isfinite(calibkit.evaluate(ok, [0, 1]).nll)


@pytest.mark.parametrize("command", ["ece", "fit-temp", "sweep-temp", "compare"])
def test_cli_refuses_logits_beyond_float64_differences(
    runner: CliRunner, tmp_path: Path, command: str
) -> None:
    path = tmp_path / "big.npz"
    np.savez(path, logits=np.array([[0.0, 1.0], [1e308, -1e308]]), labels=np.array([1, 1]))
    assert one_error(run(runner, command, path)) == (
        f"calibkit: error: {path}: logits at row 1 span -1e+308 .. 1e+308, a difference beyond "
        "float64's range; softmax needs the differences of logits (rescale them)"
    )


def test_fit_never_reports_convergence_on_a_non_finite_gradient() -> None:
    """Before #12: T = 1e4, "converged": true, gradient NaN."""
    source = Unvalidated(np.array([[1e308, -1e308], [0.0, 1.0]]), np.array([1, 1]))
    with pytest.raises(InputError, match="the NLL or its derivatives are not finite at T = 1"):
        fit_temperature(source)


def test_fit_refuses_an_nll_that_overflows_in_the_sum() -> None:
    """Each row's difference fits in float64, but their NLL sum does not."""
    z = np.array([[1e308, -7e307], [1e308, -7e307], [1e308, -7e307]])
    preds = Predictions.from_arrays(z, [1, 1, 1])  # valid: each row spans 1.7e308
    with pytest.raises(InputError, match="not finite"):
        fit_temperature(preds)
    with pytest.raises(InputError, match="the NLL overflows float64"):
        summarize(preds)


def test_sweep_refuses_a_temperature_at_which_the_nll_overflows(
    runner: CliRunner, tmp_path: Path
) -> None:
    z = np.array([[1e300, 0.0], [0.0, 1.0]])
    preds = Predictions.from_arrays(z, [1, 1])
    with pytest.raises(InputError, match=r"at T = 1e-10 the NLL overflows float64"):
        sweep_temperatures(preds, [1.0, 1e-10])
    path = tmp_path / "z.npz"
    np.savez(path, logits=z, labels=np.array([1, 1]))
    line = one_error(run(runner, "sweep-temp", path, "--temps", "1,1e-10"))
    assert line.startswith(f"calibkit: error: {path}: at T = 1e-10 the NLL overflows float64")


# --------------------------------------------------------------------------------------------
# counts come from the rows read


@pytest.fixture
def forged() -> Forged:
    rng = np.random.default_rng(2)
    z = rng.normal(size=(100, 3)) * 3
    return Forged(Predictions.from_arrays(z, rng.integers(0, 3, 100), kind="logits"))


def test_fit_records_the_rows_it_read(forged: Forged) -> None:
    scaler = fit_temperature(forged)
    assert scaler.fit is not None and scaler.fit.n == 100
    assert json.loads(scaler.to_json())["n"] == 100
    report = scaling_report(scaler, forged, forged)
    assert report["n"] == 100 and report["eval"]["n"] == 100


def test_summary_sweep_and_compare_count_the_rows_read(forged: Forged) -> None:
    assert summarize(forged).n == 100
    assert sweep_temperatures(forged, [1.0, 2.0]).n == 100
    comp = compare_models({"m": forged}, val={"m": forged}, check_labels=False)
    assert comp.models[0].summary.n == 100
    assert comp.models[0].ts_fit is not None and comp.models[0].ts_fit.n == 100
