"""A metric or calibrator registered outside the library reaches every output, or is refused.

The trial of #14 that added an ``overconfidence`` metric (mean confidence - accuracy) and a
calibrator through the registries found gaps; each test here fails on the code before the fix:

* a metric with ``from_sums`` and an ``ece --all`` row gets a point value beside its interval
  (it had an interval but no value, so no row);
* a ``summary`` / ``compare`` / ``fit_rank`` metric is read through ``from_summary`` by the
  headline JSON, the ``ece`` tables, ``compare`` (JSON, table, best) and fit-temp's keys (they
  read ``CalibrationSummary.<name>`` and crashed); one without a way to get its value is refused
  when its record is made;
* :attr:`Metric.flag` names ``--max NAME`` for a metric with no flag of its own;
* a calibrator whose parameters or abbreviation would overwrite a model key of ``compare`` is
  refused before any work;
* compare's in-sample warning names the parameter ``ts_on_test=True`` in the library's words;
* :class:`ScaledPredictions` is the calibrated view, its chunks those of a temperature scaler.

The metrics are registered in fixtures and unregistered after.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from calibkit.calibrators import registry
from calibkit.calibrators.base import CalibratedPredictions, CalibratedView
from calibkit.calibrators.report import before_after
from calibkit.calibrators.temperature import ScaledPredictions, TemperatureScaler
from calibkit.cli import app
from calibkit.cli._common import flags
from calibkit.comparison import compare_models, model_keys
from calibkit.errors import UsageError
from calibkit.loaders import read_predictions
from calibkit.metrics import table
from calibkit.metrics.summary import CalibrationSummary, summarize
from calibkit.metrics.table import ExtendedRow, Metric
from calibkit.report.compare_report import comparison_markdown, comparison_table
from calibkit.report.summary_json import summary_to_dict
from calibkit.report.tables import extended_table, metrics_table
from calibkit.stats.extended import extended_metrics

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
HARD = SAMPLE / "digits_hard_test.npz"
LS10 = SAMPLE / "digits_ls10_test.npz"
HARD_VAL = SAMPLE / "digits_hard_val.npz"


def _overconfidence_sums(s: table.ResampledSums) -> Any:
    return (s.confidence.sum(axis=1) - s.correct) / s.total


def _overconfidence(s: CalibrationSummary) -> float:
    return s.mean_confidence - s.accuracy


#: Bootstrapped, shown in ``ece --all`` (rank 75: after class-wise ECE, before MCE).
OVERCONF = Metric(
    name="overconfidence", label="overconfidence", from_sums=_overconfidence_sums,
    extended=ExtendedRow(label="overconfidence", what="mean confidence - accuracy", rank=75),
)  # fmt: skip
#: The same as a headline, compare and fit-temp metric, read from the summary.
HEADLINE_OVERCONF = Metric(
    name="overconfidence", label="overconf.", from_sums=_overconfidence_sums, summary=True,
    compare=True, fit_rank=5, from_summary=_overconfidence,
)  # fmt: skip


def _registered(metric: Metric) -> Iterator[Metric]:
    table.register(metric)
    try:
        yield metric
    finally:
        table.unregister(metric.name)


@pytest.fixture
def overconf() -> Iterator[Metric]:
    yield from _registered(OVERCONF)


@pytest.fixture
def headline_overconf() -> Iterator[Metric]:
    yield from _registered(HEADLINE_OVERCONF)


def _json(*args: object) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _text(renderable: Any) -> list[str]:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text().splitlines()


# --------------------------------------------------------------------------------------------
# ece --all: a point value from the bootstrap's sums


def test_a_registered_metric_has_a_point_value_and_interval_in_ece_all(overconf: Metric) -> None:
    summary = summarize(read_predictions(HARD))
    expected = summary.mean_confidence - summary.accuracy
    doc = _json("ece", HARD, "--all", "--bootstrap", "200", "--json")
    assert doc["overconfidence"] == pytest.approx(expected, rel=1e-9)
    lo, hi = doc["ci"]["overconfidence"]
    assert lo <= doc["overconfidence"] <= hi
    assert list(doc["ci"])[-1] == "overconfidence"
    assert "ece_over" in doc and "accuracy" in doc  # the built-ins are still there

    result = CliRunner().invoke(app, ["ece", str(HARD), "--all", "--bootstrap", "200"])
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.stdout.splitlines() if "mean confidence - accuracy" in line]
    assert f"{expected:.4f}" in row and f"{lo:.4f} .. {hi:.4f}" in row


def test_a_registered_metric_on_confidence_only_rows(overconf: Metric, tmp_path: Path) -> None:
    conf = np.array([0.9, 0.8, 0.6, 0.7])
    path = tmp_path / "conf.npz"
    np.savez(path, confidence=conf, correct=np.array([1.0, 0.0, 1.0, 1.0]))
    src = read_predictions(path)
    extra = extended_metrics(src, summarize(src), bootstrap=100)
    assert extra["overconfidence"] == pytest.approx(conf.mean() - 0.75, abs=1e-12)
    assert "overconfidence" in extra["ci"]


def test_built_in_ece_all_keys_are_unchanged_by_the_point_values() -> None:
    preds = read_predictions(HARD)
    summary = summarize(preds)
    extra = extended_metrics(preds, summary, bootstrap=100)
    assert "overconfidence" not in extra
    assert not {"accuracy", "ece", "mce", "rmsce", "nll", "brier"} & set(extra)  # headline


# --------------------------------------------------------------------------------------------
# summary / compare / fit_rank metrics read through from_summary


def test_a_headline_metric_reaches_ece_json_and_tables(headline_overconf: Metric) -> None:
    summary = summarize(read_predictions(HARD))
    expected = summary.mean_confidence - summary.accuracy
    doc = _json("ece", HARD, "--json")
    keys = list(doc)
    assert keys[keys.index("brier") + 1] == "overconfidence"  # after the built-in headline
    assert doc["overconfidence"] == pytest.approx(expected, rel=1e-12)
    assert summary_to_dict(summary)["overconfidence"] == pytest.approx(expected, rel=1e-12)

    lines = _text(metrics_table(summary))
    at = next(i for i, line in enumerate(lines) if line.lstrip("│ ").startswith("Brier"))
    assert "overconf." in lines[at + 1] and f"{expected:.4f}" in lines[at + 1]

    doc = _json("ece", HARD, "--all", "--bootstrap", "100", "--json")
    assert doc["overconfidence"] == pytest.approx(expected, rel=1e-12)  # the summary's value
    extra = extended_metrics(read_predictions(HARD), summary, bootstrap=100)
    extended_table(summary, extra)  # no AttributeError


def test_a_compare_metric_reaches_compare(headline_overconf: Metric) -> None:
    doc = _json("compare", f"hard={HARD}", f"ls10={LS10}", "--val", f"hard={HARD_VAL}", "--json")
    hard, ls10 = doc["models"]
    keys = list(hard)
    assert keys[keys.index("brier") + 1] == "overconfidence"
    for model, path in ((hard, HARD), (ls10, LS10)):
        s = summarize(read_predictions(path))
        assert model["overconfidence"] == pytest.approx(s.mean_confidence - s.accuracy, rel=1e-12)
    assert list(hard["ts"]) == [
        "ece", "mce", "nll", "brier", "overconfidence",
        "median_logit_gap", "implied_ls_alpha", "label_distribution",  # the diagnostics (#16)
    ]  # fmt: skip
    assert ls10["ts"] is None

    comp = compare_models(
        {"hard": read_predictions(HARD), "ls10": read_predictions(LS10)},
        val={"hard": read_predictions(HARD_VAL)},
        ci=0.9,
        bootstrap=100,
    )
    best = comp.best("overconfidence")
    assert best == min(comp.models, key=lambda m: _overconfidence(m.summary)).name
    assert "overconfidence" in comp.models[0].ci  # type: ignore[operator]
    header = next(line for line in _text(comparison_table(comp)) if "model" in line)
    assert "Brier ┃     overconf. ┃     T ┃" in header and header.endswith("TS overconf. ┃")
    heads = comparison_markdown(comp).splitlines()[0].strip("| ").split(" | ")
    assert heads[heads.index("Brier") + 1] == "overconf." and heads[-1] == "TS overconf."


def test_a_fit_rank_metric_reaches_fit_temp_keys(headline_overconf: Metric) -> None:
    src = read_predictions(HARD_VAL)
    scaler = TemperatureScaler(1.7)
    out = before_after(scaler, src)
    before, after = scaler.summaries(src)
    assert out["overconfidence_before"] == _overconfidence(before)
    assert out["overconfidence_after"] == _overconfidence(after)


@pytest.mark.parametrize(
    ("marks", "shown"),
    [
        ({"summary": True}, "summary"),
        ({"compare": True}, "compare"),
        ({"fit_rank": 9}, "fit_rank"),
        ({"summary": True, "compare": True}, "summary and compare"),
    ],
)
def test_a_shown_metric_without_from_summary_is_refused(marks: dict[str, Any], shown: str) -> None:
    message = (
        f"sharpness: a metric with {shown} is read from a CalibrationSummary, which has no "
        "field 'sharpness': give it from_summary"
    )
    with pytest.raises(ValueError, match=f"^{message}$"):
        table.register(Metric(name="sharpness", label="sharpness", **marks))
    assert "sharpness" not in table.names(table.metrics())


def test_a_summary_field_needs_no_from_summary() -> None:
    metric = Metric(name="mean_confidence", label="confidence", summary=True)
    table.register(metric)
    try:
        summary = summarize(read_predictions(HARD))
        assert metric.summary_value(summary) == summary.mean_confidence
        assert summary_to_dict(summary)["mean_confidence"] == summary.mean_confidence
    finally:
        table.unregister("mean_confidence")


# --------------------------------------------------------------------------------------------
# flags


def test_only_built_in_limits_have_a_flag_of_their_own() -> None:
    assert table.get("ece").flag == "--max-ece"
    assert table.get("accuracy").flag == "--min-accuracy"
    assert table.get("ece_over").flag == "--max ece_over"
    assert table.get("smece").flag is None  # not gated
    keyed = Metric(name="ece_sq", label="x", from_sums=_overconfidence_sums, limit_key="max_ece_sq")
    higher = Metric(name="sharp", label="x", direction="higher", from_sums=_overconfidence_sums)
    assert (keyed.flag, higher.flag) == ("--max ece_sq", "--min sharp")
    assert "max_values[ece_sq]" not in flags()


# --------------------------------------------------------------------------------------------
# a calibrator's keys in compare's JSON


@dataclass(frozen=True)
class _ShadowsN(TemperatureScaler):
    """A temperature scaler whose parameter would be written over the model's ``n``."""

    method: ClassVar[str] = "shadows-n"
    symbols: ClassVar[Mapping[str, str]] = {"n": "T"}


@dataclass(frozen=True)
class _AbbreviatedCI(TemperatureScaler):
    """Its abbreviation ``CI`` gives the key ``ci``: the model's intervals."""

    method: ClassVar[str] = "abbreviated-ci"
    abbreviation: ClassVar[str] = "CI"


@dataclass(frozen=True)
class _ShadowsMetric(TemperatureScaler):
    method: ClassVar[str] = "shadows-ece"
    symbols: ClassVar[Mapping[str, str]] = {"ece": "E"}


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (_ShadowsN, "'n' would be both a fact of the model and a parameter of the calibrator"),
        (_AbbreviatedCI, "'ci' would be both a key from the abbreviation 'CI' and the intervals"),
        (_ShadowsMetric, "'ece' would be both a metric and a parameter of the calibrator"),
    ],
)
def test_a_calibrator_whose_keys_collide_is_refused(cls: type[Any], message: str) -> None:
    registry.register(cls.method, cls)
    try:
        with pytest.raises(UsageError) as info:
            compare_models({"a": read_predictions(HARD)}, ts_on_test=True, method=cls.method)
        assert str(info.value) == (
            f"calibration method {cls.method!r} cannot be compared: {message} in a model's "
            "JSON; rename the parameter or change the abbreviation"
        )
    finally:
        registry.unregister(cls.method)


def test_the_model_keys_of_temperature_scaling() -> None:
    assert model_keys(TemperatureScaler) == (
        "name", "source", "n", "input", "input_reason", "zero_prob_rows", "accuracy", "ece",
        "mce", "nll", "brier", "median_logit_gap", "implied_ls_alpha", "implied_ls_correct",
        "implied_ls_reason", "label_distribution", "temperature", "ts_fitted_on", "ts_source",
        "ts", "ci", "ts_ci",
    )  # fmt: skip
    comp = compare_models({"a": read_predictions(HARD)}, ts_on_test=True)
    assert tuple(comp.models[0].to_dict()) == model_keys(TemperatureScaler)


# --------------------------------------------------------------------------------------------
# the in-sample warning names a parameter


def test_the_in_sample_warning_names_the_parameter() -> None:
    comp = compare_models({"a": read_predictions(HARD)}, ts_on_test=True)
    tail = "fitted on the evaluated data itself ({}): the TS columns are in-sample and optimistic"
    assert comp.warning_texts() == ("temperature " + tail.format("ts_on_test=True"),)
    assert comp.warning_texts(flags()) == ("temperature " + tail.format("--ts-on-test"),)
    assert comp.to_dict()["warnings"] == list(comp.warning_texts())
    assert comp.to_dict(flags())["warnings"] == list(comp.warning_texts(flags()))
    assert "(ts_on_test=True)" in comparison_markdown(comp)
    assert "(--ts-on-test)" in comparison_markdown(comp, flags())


# --------------------------------------------------------------------------------------------
# one calibrated view


def test_scaled_predictions_is_the_calibrated_view() -> None:
    src = read_predictions(HARD)
    scaler = TemperatureScaler(1.3)
    scaled = ScaledPredictions(src, scaler.beta)
    calibrated = CalibratedPredictions(src, scaler)
    assert isinstance(scaled, CalibratedView) and isinstance(calibrated, CalibratedView)
    for (a, la), (b, lb) in zip(scaled.chunks(97), calibrated.chunks(97), strict=True):
        assert a.dtype == b.dtype == np.float64
        assert a.tobytes() == b.tobytes() and la.tobytes() == lb.tobytes()
    assert scaled.kind == "logits" and scaled.kind_reason == calibrated.kind_reason
    assert scaled.kind_reason.startswith("temperature-scaled logits")
    assert not math.isnan(summarize(scaled).ece)
