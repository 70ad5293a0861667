"""Several calibration methods in one comparison (#15): ``compare_models(methods=...)``.

The methods are temperature scaling and the toy methods of ``tests/_toy_calibrators.py``
(registered for each test by the ``toys`` fixture): ``toy-bias`` (logits, changes the argmax),
``toy-mix`` (probability output), ``toy-binary`` (refuses K > 2). Every number is checked
against an independent computation: ``summarize`` of the calibrated view, ``class_statistics``
for the class-wise ECE, the one-method comparison for today's ``ts_*`` keys.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _toy_calibrators import ToyBias, ToyMix, toys  # noqa: F401 (the fixture)

from calibkit.calibrators import registry
from calibkit.calibrators.base import CalibratedPredictions
from calibkit.calibrators.temperature import TemperatureScaler
from calibkit.comparison import (
    UNCALIBRATED,
    compare_models,
    long_metrics,
    method_options,
    parse_methods,
    summarize_with_classwise,
    with_sweeps,
)
from calibkit.errors import InputError, UsageError
from calibkit.metrics.classwise import class_statistics
from calibkit.metrics.summary import summarize
from calibkit.report.compare_report import (
    CHANGED,
    comparison_markdown,
    comparison_table,
    write_report_dir,
)
from calibkit.sources.predictions import ConfidenceRows, Predictions, PredictionSource

pytestmark = pytest.mark.usefixtures("toys")


def _data(seed: int, n: int = 600, k: int = 4, scale: float = 2.5) -> tuple[Any, Any]:
    """Logits whose class 0 is often a close second (so toy-bias moves some argmaxes)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    z = rng.normal(size=(n, k)) + scale * np.eye(k)[y]
    return z, y


def _src(seed: int, name: str, **kw: Any) -> Predictions:
    z, y = _data(seed, **kw)
    return Predictions.from_arrays(z, y, kind="logits", source=name)


@dataclass(frozen=True, eq=False)
class Counted(PredictionSource):
    """A source that counts its reads (``chunks()`` calls)."""

    base: PredictionSource
    reads: list[int]

    @property
    def source(self) -> str:
        return self.base.source

    @property
    def kind(self) -> Any:
        return self.base.kind

    @property
    def kind_reason(self) -> str:
        return getattr(self.base, "kind_reason", "")

    @property
    def n_classes(self) -> int:
        return self.base.n_classes

    @property
    def n_rows(self) -> int | None:
        return getattr(self.base, "n_rows", None)

    @property
    def soft_labels(self) -> bool:
        return bool(getattr(self.base, "soft_labels", False))

    def chunks(self, chunk_rows: int | None = None) -> Iterator[Any]:
        self.reads.append(1)
        yield from self.base.chunks(chunk_rows)


# --------------------------------------------------------------------------------------------
# one pass: the summary and the class-wise ECE


@pytest.mark.parametrize("binning", ["width", "mass"])
@pytest.mark.parametrize("kind", ["logits", "probs"])
def test_one_pass_gives_the_summary_and_the_classwise_ece(kind: str, binning: str) -> None:
    z, y = _data(1, n=517, k=5)
    scores = z if kind == "logits" else np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    src = Predictions.from_arrays(scores, y, kind=kind)
    got, classwise = summarize_with_classwise(src, n_bins=12, binning=binning, chunk_rows=97)
    want = summarize(src, n_bins=12, binning=binning, chunk_rows=97)
    for f in ("n", "accuracy", "ece", "mce", "rmsce", "nll", "brier", "mean_confidence"):
        assert getattr(got, f) == getattr(want, f), f
    assert got.kind == want.kind and got.input_reason == want.input_reason
    # class_statistics bins each p_k in equal-width bins whatever the top-label binning is
    expected = class_statistics(src, n_bins=12).classwise_ece
    assert classwise == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # by hand: mean over classes of sum over bins |sum p_k - count(y = k)| / N
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    by_hand = []
    for k in range(5):
        b = np.minimum((p[:, k] * 12).astype(int), 11)
        by_hand.append(
            sum(abs(p[b == j, k].sum() - (y[b == j] == k).sum()) for j in range(12)) / len(y)
        )
    assert classwise == pytest.approx(float(np.mean(by_hand)), rel=1e-9)


def test_the_classwise_ece_does_not_depend_on_the_chunk_size() -> None:
    src = _src(2, "s", n=333, k=7)
    values = {summarize_with_classwise(src, chunk_rows=c)[1] for c in (1, 10, 333, None)}
    assert max(values) - min(values) < 1e-15


def test_soft_labels_and_confidence_rows() -> None:
    z, y = _data(3, n=200, k=3)
    soft = np.full((200, 3), 0.05)
    soft[np.arange(200), y] = 0.9
    src = Predictions.from_arrays(z, soft, kind="logits")
    assert summarize_with_classwise(src)[1] == pytest.approx(
        class_statistics(src).classwise_ece, rel=1e-12
    )
    conf = ConfidenceRows.from_arrays(np.full(50, 0.7), np.ones(50))
    summary, classwise = summarize_with_classwise(conf)
    assert classwise is None and summary.ece == summarize(conf).ece


# --------------------------------------------------------------------------------------------
# --method and --param


def test_methods_are_comma_lists_repeatable_and_checked() -> None:
    assert parse_methods("temperature,toy-bias") == ("temperature", "toy-bias")
    assert parse_methods(["toy-mix", "temperature, toy-bias"]) == (
        "toy-mix",
        "temperature",
        "toy-bias",
    )
    with pytest.raises(UsageError, match="unknown calibration method 'nope'"):
        parse_methods("temperature,nope")
    with pytest.raises(UsageError, match="'temperature' is given twice"):
        parse_methods(["temperature", "temperature"])
    with pytest.raises(UsageError, match="empty method name"):
        parse_methods("temperature,")


def test_params_go_to_the_methods_that_declare_them() -> None:
    methods = ("temperature", "toy-bias", "toy-mix")
    assert method_options(methods, ["strength=0.5", "w=0.3"]) == {
        "temperature": {},
        "toy-bias": {"strength": 0.5},
        "toy-mix": {"weight": 0.3},
    }
    # METHOD.NAME wins over NAME for its method; values are parsed by the method's spec
    got = method_options(methods, ["weight=0.3", "toy-mix.weight=0.25", "converge=no"])
    assert got["toy-mix"] == {"weight": 0.25} and got["toy-bias"] == {"converge": "no"}


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["lambda=1"], "params['lambda']: no method compared has a parameter 'lambda'"),
        (["toy-mix.weight=1", "toy-mix.weight=2"], "given twice"),
        (["vectorx.weight=1"], "'vectorx' is not one of the methods compared"),
        (["weight"], "is not NAME=VALUE or METHOD.NAME=VALUE"),
        (["toy-mix.weight=abc"], "'abc' is not a number"),
        (["toy-mix.weight=-1"], "must be >= 0"),
        (["toy-mix.strength=1"], "'toy-mix' has no parameter 'strength'"),
        (["toy-bias.converge=maybe"], "'maybe' is not one of yes, no"),
    ],
)
def test_bad_params_are_usage_errors(specs: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("(", r"\(")):
        method_options(("temperature", "toy-bias", "toy-mix"), specs)


def test_a_param_of_a_method_not_compared_is_refused() -> None:
    with pytest.raises(UsageError, match="'toy-bias' is not one of the methods compared"):
        method_options(("temperature",), ["toy-bias.strength=1"])
    with pytest.raises(UsageError, match="is not one of the methods compared"):
        compare_models(
            {"m": _src(1, "t")}, val={"m": _src(2, "v")}, methods=["temperature"],
            params={"toy-bias": {"strength": 1.0}},
        )  # fmt: skip
    with pytest.raises(UsageError, match="has no parameter 'nope'"):
        compare_models(
            {"m": _src(1, "t")}, val={"m": _src(2, "v")}, methods=["toy-mix"],
            params={"toy-mix": {"nope": 1.0}},
        )  # fmt: skip


# --------------------------------------------------------------------------------------------
# the long comparison


@pytest.fixture
def three() -> dict[str, Any]:
    models = {"a": _src(10, "a_test"), "b": _src(11, "b_test", scale=1.5), "c": _src(12, "c")}
    val = {"a": _src(20, "a_val"), "b": _src(21, "b_val", scale=1.5)}
    methods = ("temperature", "toy-bias", "toy-mix")
    params = method_options(methods, ["strength=1.0"])
    comp = compare_models(models, val=val, methods=methods, params=params)
    return {"models": models, "val": val, "comp": comp, "methods": methods}


def test_a_row_per_model_and_method_after_the_uncalibrated_row(three: dict[str, Any]) -> None:
    comp = three["comp"]
    assert comp.long and comp.methods == three["methods"]
    got = [(r.model.name, r.method) for r in comp.rows()]
    assert got == [
        ("a", UNCALIBRATED), ("a", "temperature"), ("a", "toy-bias"), ("a", "toy-mix"),
        ("b", UNCALIBRATED), ("b", "temperature"), ("b", "toy-bias"), ("b", "toy-mix"),
        ("c", UNCALIBRATED),  # no validation data: no calibrated row
    ]  # fmt: skip
    assert long_metrics() == ("accuracy", "ece", "classwise_ece", "mce", "nll", "brier")


def test_every_calibrated_row_is_the_summary_of_the_calibrated_view(
    three: dict[str, Any],
) -> None:
    comp, models = three["comp"], three["models"]
    for row in comp.rows():
        if row.result is None:
            want, cw = (
                summarize(models[row.model.name]),
                class_statistics(models[row.model.name]).classwise_ece,
            )
        else:
            view = CalibratedPredictions(models[row.model.name], row.result.calibrator)
            want, cw = summarize(view), class_statistics(view).classwise_ece
        for m in ("accuracy", "ece", "mce", "nll", "brier"):
            assert row.value(m) == getattr(want, m), (row.method, m)
        assert row.value("classwise_ece") == pytest.approx(cw, rel=1e-12)
    # the fits: the temperature is the one-method comparison's; the options reached the fit
    a = comp.models[0]
    ts = TemperatureScaler.fit_source(three["val"]["a"])
    assert a.calibrations[0].parameters == {"temperature": ts.temperature}
    assert a.calibrations[1].parameters == {"strength": 1.0}
    assert a.calibrations[1].options == {"strength": 1.0}
    assert a.calibrations[2].calibrator.output_kind == "probs"


def test_accuracy_changes_are_flagged_from_the_data(three: dict[str, Any]) -> None:
    comp = three["comp"]
    for row in comp.rows():
        if row.result is None:
            assert not row.accuracy_changed
            continue
        moved = row.summary.accuracy != row.model.summary.accuracy
        assert row.accuracy_changed is moved
        assert row.result.changes_argmax is type(row.result.calibrator).changes_argmax
    bias = [r for r in comp.rows() if r.method == "toy-bias"]
    assert all(r.accuracy_changed for r in bias)  # class 0 pushed up: predictions move
    assert not any(r.accuracy_changed for r in comp.rows() if r.method != "toy-bias")


def test_the_json_shape(three: dict[str, Any]) -> None:
    comp, models, val = three["comp"], three["models"], three["val"]
    doc = json.loads(json.dumps(comp.to_dict(), allow_nan=False))
    assert doc["methods"] == list(three["methods"]) and doc["classwise_bins"] == "width"
    a, _, c = doc["models"]
    keys = list(a)
    assert keys[keys.index("ece") + 1] == "classwise_ece"
    # today's keys are kept when temperature is compared, with today's values
    legacy = compare_models(models, val=val).to_dict()["models"]
    for key in ("temperature", "ts_fitted_on", "ts_source", "ts", "ts_ci", "ci", "nll"):
        assert a[key] == legacy[0][key] and c[key] == legacy[2][key], key
    assert [r["method"] for r in a["calibrated"]] == list(three["methods"])
    assert c["calibrated"] == []
    bias = a["calibrated"][1]
    assert bias["changes_argmax"] is True and bias["accuracy_changed"] is True
    assert bias["options"] == {"strength": 1.0} and bias["parameters"] == {"strength": 1.0}
    assert bias["fit_details"]["fit"]["solver"] == "toy" and bias["converged"] is True
    assert bias["fitted_on"] == "val" and bias["fit_source"] == "a_val"
    assert set(bias["metrics"]) == set(long_metrics())
    ts = a["calibrated"][0]
    assert ts["changes_argmax"] is False and ts["fit_details"]["converged"] is True
    assert ts["metrics"]["nll"] == a["ts"]["nll"]
    # best: every (model, method) reaching the best value; an uncalibrated row is null
    rows = list(comp.rows())
    best_acc = max(r.value("accuracy") for r in rows)
    assert doc["best"]["accuracy"] == [
        [r.model.name, r.result.method if r.result else None]
        for r in rows
        if r.value("accuracy") == best_acc
    ]


def test_ties_are_all_marked() -> None:
    comp = compare_models(
        {"m": _src(1, "t")}, val={"m": _src(2, "v")}, methods=["temperature", "toy-mix"]
    )
    assert comp.best_rows("accuracy") == {0, 1, 2}  # the argmax-keeping methods tie
    assert comp.to_dict()["best"]["accuracy"] == [
        ["m", None],
        ["m", "temperature"],
        ["m", "toy-mix"],
    ]
    single = compare_models({"m": _src(1, "t")}, methods=["temperature"])
    assert single.best_rows("nll") == set()  # one row: nothing to mark


def test_without_temperature_there_are_no_ts_keys() -> None:
    comp = compare_models(
        {"m": _src(1, "t")}, val={"m": _src(2, "v")}, methods=["toy-mix", "toy-bias"]
    )
    (doc,) = comp.to_dict()["models"]
    assert not {"temperature", "ts", "ts_fitted_on", "ts_source", "ts_ci"} & set(doc)
    assert [r["method"] for r in doc["calibrated"]] == ["toy-mix", "toy-bias"]
    assert comp.sweep_method is None


def test_a_fit_that_did_not_converge_is_a_warning() -> None:
    comp = compare_models(
        {"m": _src(1, "t")},
        val={"m": _src(2, "v")},
        methods=["toy-bias"],
        params={"toy-bias": {"converge": "no"}},
    )
    assert comp.warning_texts() == (
        "model 'm', method 'toy-bias': the fit did not converge (iteration limit)",
    )
    assert comp.to_dict()["models"][0]["calibrated"][0]["converged"] is False
    assert "**did not converge** (1 iteration, 1 pass, gradient 1, iteration limit)" in (
        comparison_markdown(comp)
    )


def test_each_fit_is_one_fit_and_each_row_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    fits: list[str] = []
    real = ToyMix.fit_source.__func__  # type: ignore[attr-defined]

    def counting(cls: Any, source: Any, **kw: Any) -> Any:
        fits.append(source.source)
        return real(cls, source, **kw)

    monkeypatch.setattr(ToyMix, "fit_source", classmethod(counting))
    reads: list[int] = []
    test = Counted(_src(1, "t"), reads)
    methods = ["toy-mix", "toy-bias"]
    compare_models({"m": test}, val={"m": _src(2, "v")}, methods=methods, check_labels=False)
    assert fits == ["v"]
    assert len(reads) == 1 + len(methods)  # the model, then one pass per method
    reads.clear()
    compare_models(
        {"m": test}, val={"m": _src(2, "v")}, methods=methods, check_labels=False, ci=0.9,
        bootstrap=20,
    )  # fmt: skip
    assert len(reads) == 2 * (1 + len(methods))  # --ci: one more pass per row, as for TS


def test_intervals_for_every_row(three: dict[str, Any]) -> None:
    comp = compare_models(
        three["models"], val=three["val"], methods=three["methods"], ci=0.9, bootstrap=50
    )
    for row in comp.rows():
        assert row.ci is not None and set(row.ci) == {"accuracy", "ece", "mce", "nll", "brier"}
        for lo, hi in row.ci.values():
            assert lo <= hi
    legacy = compare_models(three["models"], val=three["val"], ci=0.9, bootstrap=50)
    assert comp.models[0].calibrations[0].calibrated_ci == legacy.models[0].calibrated_ci
    assert comp.models[0].ci == legacy.models[0].ci


def test_in_sample_fits_with_ts_on_test() -> None:
    comp = compare_models({"m": _src(1, "t")}, methods=["toy-mix"], ts_on_test=True)
    (r,) = comp.models[0].calibrations
    assert r.fitted_where == "test" and r.fit_source == "t"
    assert "in-sample" in comp.warning_texts({"ts_on_test": "--ts-on-test"})[0]
    assert "--ts-on-test" in comp.warning_texts({"ts_on_test": "--ts-on-test"})[0]
    assert "| m | toy-mix (in-sample) |" in comparison_markdown(comp)


def test_a_method_that_does_not_apply_is_one_error_naming_file_and_method() -> None:
    with pytest.raises(UsageError) as err:
        compare_models(
            {"m": _src(1, "t")}, val={"m": _src(2, "the_val.npz")}, methods=["toy-binary"]
        )
    assert str(err.value) == (
        "the_val.npz: method 'toy-binary' cannot be fitted for model 'm': toy binary-only "
        "needs 2 classes; this input has 4"
    )
    # an error in applying it names the evaluated file
    z, y = _data(3)
    bad = Predictions.from_arrays(z, y, kind="logits", source="test.npz")

    class Exploding(ToyMix):
        method = "toy-explode"

        def calibrated_scores(self, scores: Any, kind: str) -> Any:
            raise InputError("test.npz", "cannot be calibrated")

    registry.register("toy-explode", Exploding)
    try:
        with pytest.raises(InputError) as ierr:
            compare_models({"m": bad}, val={"m": _src(2, "v")}, methods=["toy-explode"])
    finally:
        registry.unregister("toy-explode")
    assert str(ierr.value) == (
        "test.npz: method 'toy-explode' cannot be applied for model 'm': cannot be calibrated"
    )


def test_the_frame_has_a_row_per_model_and_method(three: dict[str, Any]) -> None:
    frame = three["comp"].to_frame()
    assert list(frame.index) == [(r.model.name, r.method) for r in three["comp"].rows()]
    assert frame.loc[("a", "toy-bias"), "accuracy_changed"]
    assert frame.loc[("a", "toy-bias"), "changes_argmax"]
    assert {"classwise_ece", "fit_source", "converged"} <= set(frame.columns)


# --------------------------------------------------------------------------------------------
# the tables and the report


def test_markdown_marks_the_best_and_the_changed_accuracy(three: dict[str, Any]) -> None:
    comp = three["comp"]
    md = comparison_markdown(comp)
    lines = md.splitlines()
    assert lines[0] == (
        "| model | method | N | parameters | accuracy | ECE | class-wise ECE | MCE | NLL | Brier |"
    )
    rows = list(comp.rows())
    body = lines[2 : 2 + len(rows)]
    for line, row in zip(body, rows, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == row.model.name and cells[1] == row.method
        for i, m in enumerate(long_metrics()):
            bold = cells[4 + i].startswith("**")
            assert bold is (rows.index(row) in comp.best_rows(m)), (row.method, m)
        assert (CHANGED in cells[4]) is row.accuracy_changed
    assert "the lowest (the highest for accuracy)" in md
    assert f"**{CHANGED}** accuracy changed by calibration" in md
    assert "`toy-bias` = toy class-0 bias (can change the argmax)" in md
    assert "`c`: no validation data, no calibrated rows" in md
    text_table = comparison_table(comp)
    headers = [col.header for col in text_table.columns]
    assert headers[:4] == ["model", "method", "N", "parameters"]
    assert text_table.caption is not None and CHANGED in str(text_table.caption)


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", head[16:24])
    return int(w), int(h)


def test_the_report_folder_has_a_panel_per_model_and_method(
    three: dict[str, Any], tmp_path: Path
) -> None:
    comp = with_sweeps(three["comp"], three["models"], grid=[0.5, 1.0, 2.0])
    written = write_report_dir(comp, tmp_path / "rep")
    names = sorted(p.name for p in written)
    assert names == ["reliability.png", "report.json", "report.md", "sweep.png"]
    w, h = _png_size(tmp_path / "rep" / "reliability.png")
    assert (w, h) == (round(4.2 * 4 * 150), round(4.9 * 3 * 150))  # 3 models x (1 + 3 methods)
    md = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
    assert comparison_markdown(comp) in md and "](sweep.png)" in md
    doc = json.loads((tmp_path / "rep" / "report.json").read_text(encoding="utf-8"))
    assert doc == json.loads(json.dumps(comp.to_dict()))


def test_no_sweep_without_a_method_that_has_a_temperature(tmp_path: Path) -> None:
    models = {"m": _src(1, "t")}
    comp = compare_models(models, val={"m": _src(2, "v")}, methods=["toy-mix", "toy-bias"])
    written = write_report_dir(comp, tmp_path / "rep")  # no sweeps needed
    assert sorted(p.name for p in written) == ["reliability.png", "report.json", "report.md"]
    assert "sweep" not in (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
    assert _png_size(tmp_path / "rep" / "reliability.png") == (
        round(4.2 * 3 * 150),
        round(4.9 * 150),
    )
    with_ts = compare_models(models, val={"m": _src(2, "v")}, methods=["toy-mix", "temperature"])
    assert with_ts.sweep_method == "temperature"
    with pytest.raises(UsageError, match="temperature sweeps"):
        write_report_dir(with_ts, tmp_path / "rep2")


def test_zeros_made_by_a_calibration_are_named_after_it() -> None:
    z, y = _data(4, n=200, k=3)
    z[:5] = 0.0
    z[np.arange(5), (y[:5] + 1) % 3] = 1000.0  # the label's softmax is exactly 0 in 5 rows
    test = Predictions.from_arrays(z, y, kind="logits", source="t.npz")
    with pytest.warns(UserWarning, match="after toy-mix") as seen:
        comp = compare_models(
            {"m": test}, val={"m": _src(2, "v")}, methods=["toy-mix"],
            params={"toy-mix": {"weight": 0.0}},
        )  # fmt: skip
    texts = [str(w.message) for w in seen]
    assert texts == [
        "t.npz: after toy-mix, 5 rows give the label a probability of exactly 0; -log 0 is "
        "taken at the smallest positive float64, so the NLL is a lower bound"
    ]
    (r,) = comp.models[0].calibrations
    assert r.to_dict()["zero_prob_rows"] == 5 and comp.models[0].summary.zero_prob_rows == 0
    assert "5 evaluated rows get a label probability of exactly 0" in comparison_markdown(comp)


def test_api_compare_passes_methods_through() -> None:
    """calibkit.api.compare(methods=...) gives the long frame: a row per (model, method)."""
    from pathlib import Path

    from calibkit import api

    sample = Path(__file__).resolve().parents[2] / "sample_data"
    df = api.compare(
        {"hard": str(sample / "digits_hard_test.npz")},
        val={"hard": str(sample / "digits_hard_val.npz")},
        methods=["temperature", "vector"],
    )
    rows = [("hard", "uncalibrated"), ("hard", "temperature"), ("hard", "vector")]
    assert list(df.index) == rows
    acc = df["accuracy"]
    assert acc[("hard", "temperature")] == acc[("hard", "uncalibrated")]
