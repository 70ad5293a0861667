"""The calibrator protocol and registry (#14): a method is one module plus one registration.

The proof: ``ClassBias`` below, defined in this test module only, adds a fitted constant ``b``
to the logit of class 0 (a one-parameter prior correction that can change the argmax). It is
registered here and then goes through everything that handles calibrators, with no library
code aware of it: the fit, the view, the rewriter (``.npz`` and ``.parquet``), ``apply-temp
--calibrator``, ``fit_and_report``, ``compare_models`` with its table, Markdown, JSON, frame and
report folder, and the JSON document round trip. Also: the registry's errors, and today's
temperature JSON still read (and written byte for byte as before).
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
from numpy.typing import NDArray
from typer.testing import CliRunner

from calibkit.calibrators import registry
from calibkit.calibrators.base import (
    CALIBRATOR_FORMAT,
    CalibratedPredictions,
    Calibrator,
    CalibratorBase,
    check_document,
)
from calibkit.calibrators.report import fit_and_report
from calibkit.calibrators.temperature import ScaledPredictions, TemperatureFit, TemperatureScaler
from calibkit.cli import app
from calibkit.comparison import compare_models, with_sweeps
from calibkit.engine.passes import Chunk, run_pass
from calibkit.errors import InputError, UsageError
from calibkit.loaders import read_predictions
from calibkit.metrics.summary import summarize
from calibkit.report.compare_report import (
    comparison_markdown,
    comparison_table,
    write_report_dir,
)
from calibkit.report.rewrite import write_calibrated
from calibkit.sources.predictions import Predictions, PredictionSource

# --------------------------------------------------------------------------------------------
# a calibrator that exists only in this test module


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _logits(scores: np.ndarray, kind: str) -> np.ndarray:
    z = np.asarray(scores, dtype=np.float64)
    return np.log(np.maximum(z, np.finfo(np.float64).tiny)) if kind == "probs" else z.copy()


@dataclass(frozen=True)
class ClassBias(CalibratorBase):
    """``z_0 + b``: ``b = log(count of class 0 / sum of p_0)``, fitted in one streamed pass."""

    method: ClassVar[str] = "class-bias"
    title: ClassVar[str] = "class-0 bias"
    abbreviation: ClassVar[str] = "CB"
    calibrated_as: ClassVar[str] = "bias-corrected"
    symbols: ClassVar[Mapping[str, str]] = {"bias": "b"}
    changes_argmax: ClassVar[bool] = True

    bias: float
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
    ) -> ClassBias:
        totals = np.zeros(2)  # count of class 0, probability mass on class 0

        def sums(chunk: Chunk) -> NDArray[np.float64]:
            labels = chunk.labels
            p = _softmax(_logits(chunk.scores, source.kind))
            count = labels[:, 0].sum() if labels.ndim == 2 else (labels == 0).sum()
            return np.array([float(count), float(p[:, 0].sum())])

        def merge(part: NDArray[np.float64]) -> None:
            totals[:] += part

        run_pass(source, sums, merge, chunk_rows=chunk_rows, description="class-bias fit")
        return cls(float(np.log(totals[0] / totals[1])), source.source, source.n_classes)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, float]) -> ClassBias:
        return cls(float(parameters["bias"]))

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<calibrator>") -> ClassBias:
        if check_document(doc, source) != cls.method:
            raise InputError(source, "not a class-bias calibrator")
        return cls(float(doc["bias"]), doc.get("fitted_on"), doc.get("n_classes"))

    def parameters(self) -> dict[str, float]:
        return {"bias": self.bias}

    def calibrated_logits(self, scores: np.ndarray, kind: str) -> np.ndarray:
        z = _logits(scores, kind)
        z[:, 0] += self.bias
        return z

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibkit_calibrator": CALIBRATOR_FORMAT,
            "method": self.method,
            "bias": self.bias,
            "fitted_on": self.fitted_on,
            "n_classes": self.n_classes,
        }


@pytest.fixture(autouse=True, scope="module")
def _registered() -> Iterator[None]:
    registry.register(ClassBias.method, ClassBias)
    yield
    registry.unregister(ClassBias.method)


def _data(seed: int, n: int = 400, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Logits that under-predict class 0 (so the fitted bias is clearly positive)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, size=n)
    z = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[labels]
    z[:, 0] -= 1.0
    return z, labels


def _bias_by_hand(z: np.ndarray, labels: np.ndarray) -> float:
    return float(np.log((labels == 0).sum() / _softmax(z)[:, 0].sum()))


# --------------------------------------------------------------------------------------------
# the registry


def test_the_registry_knows_both_methods() -> None:
    assert registry.names()[0] == "temperature"
    assert "class-bias" in registry.names()
    assert registry.get("temperature") is TemperatureScaler
    assert registry.get("class-bias") is ClassBias
    assert isinstance(ClassBias(0.5), Calibrator) and isinstance(TemperatureScaler(2.0), Calibrator)


def test_an_unknown_method_is_one_error_naming_the_known_ones() -> None:
    with pytest.raises(UsageError) as info:
        registry.get("no-such-method")
    message = str(info.value)
    assert message.startswith("unknown calibration method 'no-such-method'")
    assert "'temperature'" in message and "'class-bias'" in message
    with pytest.raises(UsageError, match="unknown calibration method 'no-such-method'"):
        compare_models({"m": Predictions.from_arrays(*_data(0))}, method="no-such-method")


def test_a_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="'temperature' is already registered"):
        registry.register("temperature", ClassBias)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("class-bias", ClassBias)
    with pytest.raises(ValueError, match="method is 'class-bias', not 'other'"):
        registry.register("other", ClassBias)
    assert registry.get("temperature") is TemperatureScaler  # untouched
    assert "other" not in registry.names()


# --------------------------------------------------------------------------------------------
# fit, transform, the view


def test_fit_streams_the_source() -> None:
    z, y = _data(1)
    src = Predictions.from_arrays(z, y, kind="logits")
    cal = registry.get("class-bias").fit_source(src, chunk_rows=37)
    assert isinstance(cal, ClassBias)
    assert cal.bias == pytest.approx(_bias_by_hand(z, y), rel=1e-12)
    assert cal.bias > 0.3 and cal.fitted_on == src.source and cal.n_classes == 3


def test_the_view_applies_any_calibrator() -> None:
    z, y = _data(2)
    src = Predictions.from_arrays(z, y, kind="logits")
    cal = ClassBias(0.75)
    view = CalibratedPredictions(src, cal)
    got = np.concatenate([c for c, _ in view.chunks(50)])
    expected = z.copy()
    expected[:, 0] += 0.75
    np.testing.assert_array_equal(got, expected)
    assert view.kind == "logits" and view.n_rows == 400 and view.n_classes == 3
    assert view.kind_reason.startswith("bias-corrected logits")
    assert summarize(view).accuracy != summarize(src).accuracy  # the argmax moved


def test_the_view_of_a_temperature_equals_scaled_predictions_bit_for_bit() -> None:
    z, y = _data(3)
    for kind, scores in (("logits", z), ("probs", _softmax(z))):
        src = Predictions.from_arrays(scores, y, kind=kind)
        ts = TemperatureScaler(1.7)
        a = np.concatenate([c for c, _ in CalibratedPredictions(src, ts).chunks(64)])
        b = np.concatenate([c for c, _ in ScaledPredictions(src, ts.beta).chunks(64)])
        np.testing.assert_array_equal(a, b)
        assert (
            CalibratedPredictions(src, ts).kind_reason
            == ScaledPredictions(src, ts.beta).kind_reason
        )


def test_transform_keeps_the_kind() -> None:
    z, _ = _data(4, n=20)
    cal = ClassBias(0.4)
    p = cal.transform(_softmax(z), "probs")
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    expected = z.copy()
    expected[:, 0] += 0.4
    np.testing.assert_allclose(p, _softmax(expected), rtol=1e-12)
    np.testing.assert_array_equal(cal.transform(z), expected)


# --------------------------------------------------------------------------------------------
# apply: the rewriter and apply-temp


def test_the_rewriter_writes_npz_and_parquet(tmp_path: Path) -> None:
    z, y = _data(5, n=120)
    cal = ClassBias(0.6)
    expected = z.copy()
    expected[:, 0] += 0.6

    src = tmp_path / "in.npz"
    np.savez(src, logits=z, labels=y, extra=np.arange(3))
    out = write_calibrated(read_predictions(src), cal, tmp_path / "out.npz", chunk_rows=50)
    with np.load(out, allow_pickle=False) as f:
        np.testing.assert_array_equal(f["logits"], expected)
        np.testing.assert_array_equal(f["labels"], y)
        np.testing.assert_array_equal(f["extra"], np.arange(3))

    psrc = tmp_path / "in.parquet"
    p = _softmax(z)
    pq.write_table(pa.table({**{f"prob_{k}": p[:, k] for k in range(3)}, "label": y}), psrc)
    pout = write_calibrated(read_predictions(psrc), cal, tmp_path / "out.parquet", chunk_rows=50)
    table = pq.read_table(pout)
    got = np.stack([table.column(f"prob_{k}").to_numpy() for k in range(3)], axis=1)
    np.testing.assert_allclose(
        got, _softmax(_logits(p, "probs") + np.array([0.6, 0, 0])), rtol=1e-12
    )
    assert table.column("label").to_pylist() == y.tolist()


def test_apply_temp_reads_a_calibrator_of_any_registered_method(tmp_path: Path) -> None:
    z, y = _data(6, n=60)
    src = tmp_path / "in.npz"
    np.savez(src, logits=z, labels=y)
    cal = tmp_path / "cal.json"
    cal.write_text(ClassBias(0.25, n_classes=3).to_json(), encoding="utf-8")
    out = tmp_path / "out.npz"
    result = CliRunner().invoke(
        app, ["apply-temp", str(src), "--out", str(out), "--calibrator", str(cal)]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == f"calibkit: wrote {out} (b = 0.25)\n"
    with np.load(out) as f:
        np.testing.assert_array_equal(f["logits"], z + np.array([0.25, 0, 0]))


# --------------------------------------------------------------------------------------------
# compare and its report


def test_compare_fits_and_reports_the_method(tmp_path: Path) -> None:
    zv, yv = _data(7)
    zt, yt = _data(8)
    val = Predictions.from_arrays(zv, yv, kind="logits", source="val")
    test = Predictions.from_arrays(zt, yt, kind="logits", source="test")
    other = Predictions.from_arrays(zt * 0.5, yt, kind="logits", source="other")
    comp = compare_models({"m": test, "o": other}, val={"m": val}, method="class-bias")
    m, o = comp.models
    assert m.parameters == {"bias": pytest.approx(_bias_by_hand(zv, yv), rel=1e-12)}
    assert m.fitted_where == "val" and m.fit_source == "val" and o.calibrator is None
    assert m.temperature is None  # the old name reads the temperature only
    expected = summarize(CalibratedPredictions(test, ClassBias(m.parameters["bias"])))
    assert m.calibrated is not None
    assert m.calibrated.nll == pytest.approx(expected.nll, rel=1e-12)
    assert m.calibrated.accuracy == expected.accuracy != m.summary.accuracy

    d = m.to_dict()
    assert "temperature" not in d and "ts" not in d
    assert d["bias"] == m.parameters["bias"] and o.to_dict()["bias"] is None
    assert (d["cb_fitted_on"], d["cb_source"], d["cb_ci"]) == ("val", "val", None)
    metrics = ("accuracy", "ece", "mce", "nll", "brier")
    assert {k: d["cb"][k] for k in metrics} == {k: getattr(m.calibrated, k) for k in metrics}
    diagnostics = ["median_logit_gap", "implied_ls_alpha", "label_distribution"]  # #16
    assert list(d["cb"]) == [*metrics, *diagnostics]
    assert json.loads(json.dumps(comp.to_dict()))["models"][0]["bias"] == d["bias"]

    md = comparison_markdown(comp)
    head = md.splitlines()[0]
    assert head == (
        "| model | N | accuracy | ECE | MCE | NLL | Brier | b | CB accuracy | CB ECE | CB MCE "
        "| CB NLL | CB Brier |"
    )
    row = next(line for line in md.splitlines() if line.startswith("| m | 400 |"))
    assert f"{m.summary.accuracy:.4f}" in row and f"{m.calibrated.accuracy:.4f}" in row
    assert f"| {m.parameters['bias']:.3f} |" in md
    assert "CB = class-0 bias with b fitted on each model's validation data" in md
    assert "CB accuracy is that of the calibrated predictions." in md
    assert f"`m`: b = {m.parameters['bias']:.4f} fitted on `val`" in md
    headers = [c.header for c in comparison_table(comp).columns]
    assert headers[7:9] == ["b", "CB accuracy"]

    frame = comp.to_frame()
    assert {"bias", "cb_fitted_on", "cb_accuracy", "cb_ece"} <= set(frame.columns)

    with pytest.raises(UsageError, match="temperature sweeps"):
        write_report_dir(comp, tmp_path / "no-sweeps")
    swept = with_sweeps(comp, {"m": test, "o": other}, grid=[0.5, 1.0, 2.0])
    assert swept.sweeps is not None and [s.name for s in swept.sweeps] == ["m", "o"]
    written = write_report_dir(swept, tmp_path / "rep")
    assert sorted(p.name for p in written) == sorted(
        ["reliability.png", "sweep.png", "report.json", "report.md"]
    )
    written_json = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert written_json == json.loads(json.dumps(comp.to_dict()))
    assert "CB = class-0 bias" in (tmp_path / "rep" / "report.md").read_text()


def test_fit_and_report_through_the_protocol() -> None:
    zv, yv = _data(9)
    zt, yt = _data(10)
    val = Predictions.from_arrays(zv, yv, kind="logits")
    test = Predictions.from_arrays(zt, yt, kind="logits")
    cal, report = fit_and_report(val, test, method="class-bias", n_bins=10)
    assert isinstance(cal, ClassBias)
    assert list(report)[:2] == ["bias", "fitted_on"]
    after = summarize(CalibratedPredictions(test, cal), n_bins=10)
    assert report["eval"]["nll_after"] == after.nll
    assert report["eval"]["accuracy_after"] == after.accuracy


# --------------------------------------------------------------------------------------------
# the JSON document


def test_the_json_document_round_trips_through_the_registry(tmp_path: Path) -> None:
    cal = ClassBias(0.125, fitted_on="val.npz", n_classes=3)
    back = registry.from_json(cal.to_json())
    assert back == cal and type(back) is ClassBias
    path = tmp_path / "cal.json"
    path.write_text(cal.to_json(), encoding="utf-8")
    assert registry.load(path) == cal
    with pytest.raises(InputError, match="holds a 'class-bias' calibrator, not a temperature one"):
        TemperatureScaler.load(path)


def test_todays_temperature_json_is_read_unchanged(tmp_path: Path) -> None:
    """A document as fit-temp --out wrote it before the protocol (and one older still, whose
    fit lacks the keys added later) reads back as a TemperatureScaler through the registry."""
    doc = {
        "calibkit_calibrator": 1,
        "method": "temperature",
        "temperature": 2.923,
        "fitted_on": "val.npz",
        "n": 449,
        "n_classes": 10,
        "input": "logits",
        "created": "2025-01-01T00:00:00+00:00",
        "calibkit_version": "0.9.0",
        "objective": "nll",
        "grid": None,
        "fit": {
            "temperature": 2.923,
            "nll_before": 0.5,
            "nll_after": 0.4,
            "gradient": 1e-12,
            "passes": 4,
            "converged": True,
            "clamped": None,
            "n": 449,
            "t_min": 1e-4,
            "t_max": 1e4,
        },
    }
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    for cal in (registry.load(path), TemperatureScaler.load(path)):
        assert type(cal) is TemperatureScaler
        assert cal.temperature == 2.923 and cal.n_classes == 10 and cal.fitted_on == "val.npz"
        assert isinstance(cal.fit, TemperatureFit) and cal.fit.passes == 4
        assert cal.created == doc["created"] and cal.calibkit_version == "0.9.0"
    for bad, message in (
        ([], "a calibrator must be a JSON object"),
        ({"calibkit_calibrator": 2}, "not a calibkit calibrator of format 1"),
        ({"calibkit_calibrator": 1, "method": "nosuch"}, "unknown calibration method 'nosuch'"),
    ):
        with pytest.raises(InputError, match=message):
            registry.from_dict(bad, source="c.json")


def test_the_temperature_document_is_written_as_before() -> None:
    """Byte for byte the document of the exact fit's era: no new key."""
    ts = TemperatureScaler(
        2.5, fitted_on="v.npz", n_classes=3, input_kind="logits", created="C", calibkit_version="V"
    )
    assert ts.to_json() == (
        '{\n  "calibkit_calibrator": 1,\n  "method": "temperature",\n  "temperature": 2.5,\n'
        '  "fitted_on": "v.npz",\n  "n": null,\n  "n_classes": 3,\n  "input": "logits",\n'
        '  "created": "C",\n  "calibkit_version": "V",\n  "fit": null\n}\n'
    )
