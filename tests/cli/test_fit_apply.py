"""`calibkit fit` and `calibkit apply`: any registered method, through the protocol only.

Three methods go through them: ``temperature`` (logit output), ``ets`` (probability output)
and ``prior-shift``, a probability-output calibrator defined in this module only (it reweights
the classes by their frequency over their mean predicted probability, raised to a
``--param strength``, so it can change the argmax): fit + apply round trips on npz and parquet,
``ece`` on the written file equal to the calibrated view, ``--eval``, the accuracy row when
the accuracy moves, ``--param`` errors, ``--out`` over an input, and the ``fit --json`` schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _cli import assert_ok, assert_one_line_error, invoke, run_json
from numpy.typing import NDArray
from typer.testing import CliRunner

from calibkit.calibrators import registry
from calibkit.calibrators.base import (
    CALIBRATOR_FORMAT,
    CalibratedPredictions,
    CalibratorBase,
    Hyperparameter,
    check_document,
)
from calibkit.engine.passes import Chunk, run_pass
from calibkit.errors import InputError
from calibkit.loaders import read_predictions
from calibkit.metrics.summary import summarize
from calibkit.sources.predictions import PredictionSource, ScoreKind


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _probs(scores: np.ndarray, kind: str) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    return s.copy() if kind == "probs" else _softmax(s)


@dataclass(frozen=True)
class PriorShift(CalibratorBase):
    """``p_k * r_k^s`` renormalised, ``r_k`` = class frequency / mean predicted ``p_k``."""

    method: ClassVar[str] = "prior-shift"
    title: ClassVar[str] = "prior shift"
    abbreviation: ClassVar[str] = "PS"
    calibrated_as: ClassVar[str] = "prior-shifted"
    symbols: ClassVar[Mapping[str, str]] = {"strength": "s"}
    changes_argmax: ClassVar[bool] = True
    output_kind: ClassVar[ScoreKind] = "probs"
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = (
        Hyperparameter("strength", float, "exponent of the ratios", default=1.0, minimum=0.0),
    )

    ratios: tuple[float, ...]
    strength: float = 1.0
    fitted_on: str | None = None
    n_classes: int | None = None

    @classmethod
    def fit_source(
        cls,
        source: PredictionSource,
        *,
        chunk_rows: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> PriorShift:
        k = source.n_classes
        totals = np.zeros(2 * k)

        def sums(chunk: Chunk) -> NDArray[np.float64]:
            counts = np.bincount(chunk.labels, minlength=k).astype(np.float64)
            return np.concatenate([counts, _probs(chunk.scores, source.kind).sum(axis=0)])

        def merge(part: NDArray[np.float64]) -> None:
            totals[:] += part

        run_pass(source, sums, merge, chunk_rows=chunk_rows)
        ratios = tuple(float(r) for r in totals[:k] / totals[k:])
        return cls(ratios, float(options.get("strength", 1.0)), source.source, k)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, float]) -> PriorShift:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<calibrator>") -> PriorShift:
        if check_document(doc, source) != cls.method:
            raise InputError(source, "not a prior-shift calibrator")
        return cls(tuple(doc["ratios"]), doc["strength"], doc.get("fitted_on"), doc["n_classes"])

    def parameters(self) -> dict[str, float]:
        return {"strength": self.strength}

    def calibrated_scores(self, scores: np.ndarray, kind: str) -> np.ndarray:
        p = _probs(scores, kind) * np.asarray(self.ratios) ** self.strength
        out: np.ndarray = p / p.sum(axis=1, keepdims=True)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibkit_calibrator": CALIBRATOR_FORMAT,
            "method": self.method,
            "ratios": list(self.ratios),
            "strength": self.strength,
            "fitted_on": self.fitted_on,
            "n_classes": self.n_classes,
        }


@pytest.fixture(autouse=True, scope="module")
def _registered() -> Iterator[None]:
    registry.register(PriorShift.method, PriorShift)
    yield
    registry.unregister(PriorShift.method)


def _data(seed: int, n: int = 600, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident logits that under-predict class 0 (so the prior shift moves argmaxes)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k)) * 2.5 + 3.0 * np.eye(k)[y]
    z[:, 0] -= 1.5
    return z, y


def _files(tmp_path: Path, fmt: str) -> tuple[Path, Path]:
    paths = []
    for name, seed in (("val", 1), ("test", 2)):
        z, y = _data(seed)
        path = tmp_path / f"{name}.{fmt}"
        if fmt == "npz":
            np.savez(path, logits=z, labels=y, row_id=np.arange(len(y)))
        else:
            cols = {f"logit_{k}": z[:, k] for k in range(z.shape[1])}
            pq.write_table(pa.table({**cols, "label": y, "row_id": np.arange(len(y))}), path)
        paths.append(path)
    return paths[0], paths[1]


METHODS = ["temperature", "ets", "prior-shift"]

#: The keys every `fit --json` has, and those of each data set.
HEAD_KEYS = {
    "method",
    "title",
    "output_kind",
    "changes_argmax",
    "parameters",
    "symbols",
    "fitted_on",
    "n_bins",
    "binning",
    "calibkit_version",
    "options",
    "eval",
}
PER_DATA_KEYS = {
    "source",
    "n",
    "input",
    "input_reason",
    "zero_prob_rows",
    "accuracy",
    "accuracy_after",
    "accuracy_changed",
    *(
        f"{m}_{w}"
        for m in ("nll", "ece", "mce", "brier", "classwise_ece")
        for w in ("before", "after")
    ),
}


@pytest.mark.parametrize("fmt", ["npz", "parquet"])
@pytest.mark.parametrize("method", METHODS)
def test_fit_then_apply_then_ece(runner: CliRunner, tmp_path: Path, fmt: str, method: str) -> None:
    val, test = _files(tmp_path, fmt)
    cal_path = tmp_path / "cal.json"
    report = run_json(
        runner, "fit", val, "--method", method, "--eval", test, "--out", cal_path,
        quiet=False,
    )  # fmt: skip
    assert report["method"] == method
    cal = registry.load(cal_path)
    assert type(cal) is registry.get(method)
    out = tmp_path / f"out.{fmt}"
    result = invoke(runner, "apply", test, "--calibrator", cal_path, "--out", out)
    assert_ok(result)
    assert result.stderr.startswith(f"calibkit: wrote {out} ({method}: ")
    # what `ece` reads back is the calibrated predictions, as the view streams them
    src = read_predictions(test)
    expected = summarize(CalibratedPredictions(src, cal))
    back = run_json(runner, "ece", out, quiet=False)
    assert back["input"] == cal.output_kind
    for key in ("accuracy", "ece", "mce", "nll", "brier"):
        assert back[key] == pytest.approx(getattr(expected, key), rel=1e-9, abs=1e-12), key
        assert report["eval"][f"{key}_after" if key != "accuracy" else "accuracy_after"] == (
            pytest.approx(getattr(expected, key), rel=1e-9, abs=1e-12)
        )
    if cal.output_kind == "probs":
        assert "probabilities" in result.stderr
        if fmt == "npz":
            with np.load(out) as f:
                assert sorted(f.files) == ["labels", "probs", "row_id"]
        else:
            names = pq.read_schema(out).names
            assert names == ["prob_0", "prob_1", "prob_2", "prob_3", "label", "row_id"]
    else:
        reference = tmp_path / f"ref.{fmt}"
        assert_ok(invoke(runner, "apply-temp", test, "--calibrator", cal_path, "--out", reference))
        if fmt == "npz":
            with np.load(out) as a, np.load(reference) as b:
                assert a.files == b.files
                for name in a.files:
                    np.testing.assert_array_equal(a[name], b[name])
        else:
            assert pq.read_table(out).equals(pq.read_table(reference))


def test_fit_temperature_gives_the_fit_temp_temperature(runner: CliRunner, tmp_path: Path) -> None:
    val, test = _files(tmp_path, "npz")
    new = run_json(runner, "fit", val, "--eval", test)
    old = run_json(runner, "fit-temp", val, "--eval", test)
    assert new["temperature"] == old["temperature"]
    assert new["parameters"] == {"temperature": old["temperature"]}
    for key in ("nll_after", "ece_after", "brier_after", "accuracy"):
        assert new[key] == old[key] and new["eval"][key] == old["eval"][key]
    assert new["changes_argmax"] is False and new["accuracy_changed"] is False


@pytest.mark.parametrize("method", METHODS)
def test_fit_json_schema(runner: CliRunner, tmp_path: Path, method: str) -> None:
    val, test = _files(tmp_path, "npz")
    report = run_json(runner, "fit", val, "--method", method, "--eval", test)
    assert set(report) >= HEAD_KEYS | PER_DATA_KEYS
    assert set(report["eval"]) >= PER_DATA_KEYS
    cls = registry.get(method)
    assert report["changes_argmax"] is cls.changes_argmax
    assert report["output_kind"] == cls.output_kind
    assert report["symbols"] == dict(cls.symbols)
    assert list(report["parameters"]) == list(cls.symbols)
    for part in (report, report["eval"]):
        assert part["accuracy_changed"] is (part["accuracy_after"] != part["accuracy"])
    if method == "ets":
        fit = report["fit"]
        assert fit["converged"] is True and fit["solver"] == "active-set"
        assert {"objective", "gradient_norm", "iterations", "passes"} <= set(fit)
        assert sum(report["weights"]) == pytest.approx(1.0)
    assert json.loads(json.dumps(report)) == report


def test_the_table_says_when_the_accuracy_moves(runner: CliRunner, tmp_path: Path) -> None:
    val, test = _files(tmp_path, "npz")
    report = run_json(runner, "fit", val, "--method", "prior-shift", "--eval", test)
    assert report["accuracy_changed"] and report["eval"]["accuracy_changed"]
    result = invoke(runner, "fit", val, "--method", "prior-shift", "--eval", test)
    assert_ok(result)
    text = result.stdout
    assert text.count("accuracy (!)") == 2 and text.count("CHANGED") == 2
    acc, after = report["eval"]["accuracy"], report["eval"]["accuracy_after"]
    assert (
        f"warning: the calibrated predictions change the accuracy on evaluation ({test}): "
        f"{acc:.4f} -> {after:.4f}"
    ) in text
    assert "prior shift (prior-shift): s = 1" in text
    # a method that keeps it says so
    kept = invoke(runner, "fit", val, "--method", "ets", "--eval", test)
    assert_ok(kept)
    assert "CHANGED" not in kept.stdout and kept.stdout.count("unchanged") == 2
    assert "ensemble temperature scaling (ets): T = " in kept.stdout
    assert "converged (active-set)" in kept.stdout


def test_param_is_passed_to_the_fit(runner: CliRunner, tmp_path: Path) -> None:
    val, _ = _files(tmp_path, "npz")
    report = run_json(runner, "fit", val, "--method", "prior-shift", "--param", "strength=0.5")
    assert report["parameters"] == {"strength": 0.5} and report["options"] == {"strength": 0.5}
    result = invoke(runner, "fit", val, "--method", "ets", "--param", "t_max=1.5", "--json")
    assert_ok(result)
    ets = json.loads(result.stdout)
    assert ets["temperature"] == 1.5 and ets["options"] == {"t_max": 1.5}
    assert ets["temperature_fit"]["clamped"] == "t_max"
    assert "temperature clamped to 1.5" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "strength"], "--param expects NAME=VALUE; got 'strength'"),
        (["--param", "=1"], "--param expects NAME=VALUE; got '=1'"),
        (
            ["--param", "alpha=1"],
            "--param alpha: 'prior-shift' has no parameter 'alpha' (its parameters: strength)",
        ),
        (["--param", "strength=abc"], "--param strength: 'abc' is not a number"),
        (["--param", "strength=-1"], "--param strength: must be >= 0; got -1"),
        (["--param", "strength=1", "--param", "strength=2"], "--param strength: given twice"),
    ],
)
def test_param_errors_are_one_line(
    runner: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    val, _ = _files(tmp_path, "npz")
    result = invoke(runner, "fit", val, "--method", "prior-shift", *args)
    assert_one_line_error(result, message)


def test_an_unknown_method_lists_the_known_ones(runner: CliRunner, tmp_path: Path) -> None:
    val, _ = _files(tmp_path, "npz")
    result = invoke(runner, "fit", val, "--method", "nope")
    known = ", ".join(repr(n) for n in registry.names())
    assert_one_line_error(
        result, f"unknown calibration method 'nope'; the known methods are {known}"
    )
    assert "'temperature'" in known and "'ets'" in known


def test_outputs_never_replace_an_input(runner: CliRunner, tmp_path: Path) -> None:
    val, test = _files(tmp_path, "npz")
    before = val.read_bytes()
    result = invoke(runner, "fit", val, "--eval", test, "--out", test)
    assert_one_line_error(result, f"{test}: is also an input; refusing to overwrite it")
    cal = tmp_path / "cal.json"
    assert_ok(invoke(runner, "fit", val, "--method", "ets", "--out", cal))
    for target in (test, cal):
        result = invoke(runner, "apply", test, "--calibrator", cal, "--out", target)
        assert_one_line_error(result, f"{target}: is also an input; refusing to overwrite it")
    assert val.read_bytes() == before and registry.load(cal).method == "ets"


def test_apply_errors_are_one_line(runner: CliRunner, tmp_path: Path) -> None:
    val, test = _files(tmp_path, "npz")
    cal = tmp_path / "cal.json"
    assert_ok(invoke(runner, "fit", val, "--method", "ets", "--out", cal))
    z, y = _data(3, k=3)
    three = tmp_path / "three.npz"
    np.savez(three, logits=z, labels=y)
    result = invoke(runner, "apply", three, "--calibrator", cal, "--out", tmp_path / "o.npz")
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "4 classes" in result.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"calibkit_calibrator": 1, "method": "ets", "weights": [1]}))
    result = invoke(runner, "apply", test, "--calibrator", bad, "--out", tmp_path / "o.npz")
    assert_one_line_error(result, f"{bad}: weights must be a list of 3 numbers; got [1]")
    result = invoke(runner, "apply", test, "--calibrator", cal, "--out", tmp_path / "o.parquet")
    assert result.exit_code == 2 and "must have the input's extension '.npz'" in result.stderr
