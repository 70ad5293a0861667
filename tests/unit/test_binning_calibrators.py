"""histogram, isotonic, platt, beta and their reductions (#15): errors, the JSON document and
its validation, changes_argmax, chunk-size invariance, extreme inputs, identity on calibrated
data."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from calibkit.calibrators import registry
from calibkit.calibrators.base import CalibratedPredictions, read_hyperparameters
from calibkit.calibrators.beta import BetaCalibration
from calibkit.calibrators.histogram import HistogramBinning
from calibkit.calibrators.isotonic import IsotonicRegression
from calibkit.calibrators.platt import PlattScaler
from calibkit.comparison import calibrated_metrics
from calibkit.errors import InputError, UsageError
from calibkit.metrics import summarize
from calibkit.sources.predictions import ConfidenceRows, Predictions

METHODS = (HistogramBinning, IsotonicRegression, PlattScaler, BetaCalibration)


def _data(seed: int = 0, n: int = 1500, k: int = 4) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2.5
    p = np.exp(z * 0.5)
    p /= p.sum(axis=1, keepdims=True)
    y = np.minimum((rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1), k - 1)
    return z, y


@pytest.mark.parametrize("cls", METHODS)
def test_binary_reduction_on_three_classes_is_one_usage_error(cls: Any) -> None:
    z, y = _data(k=3)
    with pytest.raises(UsageError) as info:
        cls.fit_source(Predictions.from_arrays(z, y), reduction="binary")
    msg = str(info.value)
    assert "\n" not in msg and "needs K = 2" in msg and "K = 3" in msg


@pytest.mark.parametrize("cls", METHODS)
def test_confidence_only_rows_are_one_usage_error(cls: Any) -> None:
    rows = ConfidenceRows.from_arrays([0.9, 0.6, 0.7], [1, 0, 1], source="conf.parquet")
    with pytest.raises(UsageError, match=r"^conf\.parquet: .* needs logits or probabilities"):
        cls.fit_source(rows)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"reduction": "pairs"}, "'pairs' is not one of binary, top, ova"),
        ({"bins": 0}, "must be >= 1"),
        ({"bins": 2.5}, "must be an integer"),
        ({"bins": True}, "must be a number"),
        ({"binning": "quantile"}, "'quantile' is not one of width, mass"),
        ({"lambda": 1.0}, "'histogram' has no parameter 'lambda'"),
    ],
)
def test_bad_options_are_usage_errors(options: dict[str, Any], message: str) -> None:
    z, y = _data()
    with pytest.raises(UsageError, match=message):
        HistogramBinning.fit_source(Predictions.from_arrays(z, y), **options)


def test_params_from_text_reach_the_fit() -> None:
    values = read_hyperparameters(HistogramBinning, {"bins": "7", "binning": "mass"})
    z, y = _data()
    h = HistogramBinning.fit_source(Predictions.from_arrays(z, y), **values)
    assert h.bins == 7 and h.binning == "mass" and len(h.maps[0][0]) <= 7
    values = read_hyperparameters(PlattScaler, {"reduction": "ova"})
    assert PlattScaler.fit_source(Predictions.from_arrays(z, y), **values).reduction == "ova"


def test_default_reduction_keeps_accuracy() -> None:
    z, y = _data(k=4)
    assert PlattScaler.fit_source(Predictions.from_arrays(z, y)).reduction == "top"
    z2, y2 = _data(k=2)
    assert PlattScaler.fit_source(Predictions.from_arrays(z2, y2)).reduction == "binary"


def test_changes_argmax_class_and_instances() -> None:
    z, y = _data()
    src = Predictions.from_arrays(z, y)
    for cls in METHODS:
        assert cls.changes_argmax is True  # some reduction (ova, binary) can change it
        top, ova = cls.fit_source(src), cls.fit_source(src, reduction="ova")
        assert top.changes_argmax is False and ova.changes_argmax is True
        assert "accuracy" not in calibrated_metrics(top)
        assert "accuracy" in calibrated_metrics(ova) and "accuracy" in calibrated_metrics(cls)
        assert top.fit_details()["changes_argmax"] is False


@pytest.mark.parametrize("cls", METHODS)
@pytest.mark.parametrize("reduction", ["top", "ova"])
def test_outputs_are_probabilities_and_the_view_streams_them(cls: Any, reduction: str) -> None:
    z, y = _data()
    src = Predictions.from_arrays(z, y)
    cal = cls.fit_source(src, reduction=reduction)
    assert cls.output_kind == "probs"
    out = cal.calibrated_scores(z, "logits")
    assert out.shape == z.shape and out.dtype == np.float64
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)
    view = CalibratedPredictions(src, cal)
    assert view.kind == "probs"
    after = summarize(view)
    assert np.isfinite(after.nll) and after.nll < summarize(src).nll  # the data are overconfident
    with pytest.raises(UsageError, match="fitted on K = 4 classes"):
        cal.calibrated_scores(z[:, :3], "logits")


@pytest.mark.parametrize("cls", [PlattScaler, BetaCalibration])
@pytest.mark.parametrize("reduction", ["top", "ova"])
def test_logistic_fits_do_not_depend_on_the_chunk_size_or_the_memory_path(
    cls: Any, reduction: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from calibkit.calibrators import reductions

    z, y = _data(n=700)
    src = Predictions.from_arrays(z, y)
    whole = cls.fit_source(src, reduction=reduction)  # small: one pass, fitted in memory
    parts = cls.fit_source(src, reduction=reduction, chunk_rows=37)
    assert whole.outcome.passes == parts.outcome.passes <= 2  # beta: 2 when a face is fitted
    np.testing.assert_array_equal(whole.maps, parts.maps)  # the same rows in memory: exact
    monkeypatch.setattr(reductions, "IN_MEMORY_ELEMENTS", 0)  # every iteration a pass
    streamed = cls.fit_source(src, reduction=reduction, chunk_rows=37)
    np.testing.assert_allclose(streamed.maps, whole.maps, rtol=1e-9, atol=1e-11)
    assert whole.outcome.converged and streamed.outcome.converged
    assert streamed.outcome.passes >= streamed.outcome.iterations + 1


def test_extreme_logits_do_not_overflow() -> None:
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 1e4], [1.0, 0.0, 0.0]] * 20)
    y = np.array([0, 0, 2, 1] * 20)
    src = Predictions.from_arrays(z, y, kind="logits")
    for cls in METHODS:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # no overflow, no invalid value
            warnings.simplefilter("ignore", UserWarning)
            for reduction in ("top", "ova"):
                cal = cls.fit_source(src, reduction=reduction)
                out = cal.transform(z)
                assert np.isfinite(out).all()
                np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.filterwarnings("ignore:.*separate their data")
def test_probabilities_with_exact_zeros_and_ones_use_the_floor() -> None:
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.0, 0.0, 1.0]] * 10)
    y = np.array([0, 1, 2, 0] * 10)
    src = Predictions.from_arrays(p, y, kind="probs")
    for cls in (PlattScaler, BetaCalibration):
        cal = cls.fit_source(src, reduction="ova")
        assert np.isfinite(cal.maps).all()
        assert np.isfinite(cal.transform(p, kind="probs")).all()


def test_soft_labels_are_targets() -> None:
    z, y = _data(n=600, k=3)
    soft = np.eye(3)[y] * 0.8 + 0.2 / 3
    cal = IsotonicRegression.fit_source(Predictions.from_arrays(z, soft))
    hard = IsotonicRegression.fit_source(Predictions.from_arrays(z, y))
    assert cal.parameters()["steps"] >= 1
    # top-vs-all on soft labels: the target is the label's mass on the top class
    assert max(cal.maps[0][1]) <= 0.8 + 0.2 / 3 + 1e-12 < max(hard.maps[0][1]) + 1e-12


def test_platt_on_calibrated_data_is_about_the_identity() -> None:
    rng = np.random.default_rng(3)
    s = rng.normal(size=40_000) * 2
    y = (rng.random(s.size) < 1 / (1 + np.exp(-s))).astype(int)
    src = Predictions.from_arrays(s, y, kind="logits")
    a, b = PlattScaler.fit_source(src).maps[0]
    assert a == pytest.approx(1.0, abs=0.05) and b == pytest.approx(0.0, abs=0.05)
    a, b, c = BetaCalibration.fit_source(src).maps[0]
    assert (a, b, c) == pytest.approx((1.0, 1.0, 0.0), abs=0.06)
    z = np.column_stack([np.zeros_like(s), s])
    p = 1 / (1 + np.exp(-s))
    for cls in (HistogramBinning, IsotonicRegression):
        q = cls.fit_source(src).transform(z)[:, 1]
        assert np.mean(np.abs(q - p)) < 0.03


def test_parameters_and_symbols_agree() -> None:
    z, y = _data()
    src = Predictions.from_arrays(z, y)
    for cls in METHODS:
        for reduction in ("top", "ova"):
            cal = cls.fit_source(src, reduction=reduction)
            assert list(cal.parameters()) == list(cls.symbols)
            assert all(isinstance(v, (int, float)) for v in cal.parameters().values())
            json.dumps(cal.to_dict(), allow_nan=False)
        with pytest.raises(UsageError, match="not given by scalar parameters"):
            cls.from_parameters({"a": 1.0})


def _doc(tmp_path: Path, cls: Any = PlattScaler, **changes: Any) -> Path:
    z, y = _data(n=300, k=3)
    doc = cls.fit_source(Predictions.from_arrays(z, y)).to_dict()
    for key, value in changes.items():
        if value is KeyError:
            doc.pop(key)
        else:
            doc[key] = value
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    ("cls", "changes", "message"),
    [
        (PlattScaler, {"reduction": "pairs"}, "reduction must be one of"),
        (PlattScaler, {"reduction": "binary"}, "reduction 'binary' needs n_classes = 2"),
        (PlattScaler, {"n_classes": 1}, "n_classes must be an integer >= 2"),
        (PlattScaler, {"n_classes": KeyError}, "n_classes must be an integer >= 2"),
        (PlattScaler, {"maps": []}, "'maps' must be a list of 1 map"),
        (PlattScaler, {"reduction": "ova"}, "'maps' must be a list of 3 map"),
        (PlattScaler, {"maps": [{"a": 1.0}]}, r"maps\[0\] must be a JSON object with keys a, b"),
        (PlattScaler, {"maps": [{"a": 1.0, "b": "x"}]}, r"maps\[0\] must hold numbers only"),
        (BetaCalibration, {"maps": [{"a": 1, "b": 1, "c": 1e400}]}, "finite"),
        (PlattScaler, {"fit": {"objective": 1.0}}, "fit.iterations must be an integer"),
        (PlattScaler, {"input": "confidence"}, "input must be 'logits' or 'probs'"),
        (HistogramBinning, {"bins": 0}, r"bins must be an integer in \[1, "),
        (HistogramBinning, {"binning": "q"}, "binning must be 'width' or 'mass'"),
        (
            HistogramBinning,
            {"maps": [{"upper_edges": [0.5, 0.4], "values": [0.1, 0.2]}]},
            "upper_edges must be strictly increasing",
        ),
        (
            HistogramBinning,
            {"maps": [{"upper_edges": [0.5, 1.0], "values": [0.1]}]},
            r"values must hold 2 numbers",
        ),
        (
            HistogramBinning,
            {"maps": [{"upper_edges": [0.5, 1.0], "values": [0.1, 1.5]}]},
            r"must lie in \[0, 1\]",
        ),
        (
            IsotonicRegression,
            {"maps": [{"x": [0.1, 0.2], "y": [0.5, 0.4]}]},
            "y must be non-decreasing",
        ),
        (IsotonicRegression, {"maps": [[0.1]]}, r"maps\[0\] must be a JSON object"),
        (IsotonicRegression, {"method": "temperature"}, "temperature"),
    ],
)
def test_bad_documents_are_one_input_error_naming_the_file(
    tmp_path: Path, cls: Any, changes: dict[str, Any], message: str
) -> None:
    path = _doc(tmp_path, cls, **changes)
    with pytest.raises(InputError, match=message) as info:
        (registry.load(path) if "method" not in changes else cls.load(path))
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_histogram_empty_bins_take_their_midpoint() -> None:
    p1 = np.array([0.05, 0.95, 0.96])
    y = np.array([0, 1, 1])
    h = HistogramBinning.fit_source(
        Predictions.from_arrays(np.column_stack([1 - p1, p1]), y, kind="probs"), bins=10
    )
    values = h.maps[0][1]
    np.testing.assert_allclose(values[1:9], (np.arange(1, 9) + 0.5) / 10)
    assert values[0] == 0.0 and values[9] == 1.0


def test_separable_data_are_said_to_be_separable() -> None:
    s = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    y = np.array([0, 0, 0, 1, 1, 1])
    from calibkit.errors import ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match="separate their data"):
        cal = PlattScaler.fit_source(Predictions.from_arrays(s, y, kind="logits"))
    assert cal.outcome is not None and cal.outcome.objective < 1e-8
    assert "no minimum" in cal.to_dict()["fit"]["message"] and cal.maps[0, 0] > 10
    assert np.isfinite(cal.transform(np.column_stack([np.zeros(6), s]))).all()


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_histogram_vectorised_maps_equal_one_search_per_column(binning: str) -> None:
    from calibkit.calibrators.histogram import apply_histogram_map
    from calibkit.calibrators.reductions import columns

    z, y = _data(n=900, k=5)
    h = HistogramBinning.fit_source(
        Predictions.from_arrays(z, y), reduction="ova", bins=6, binning=binning
    )
    zt, _ = _data(seed=1, n=400, k=5)
    cols = columns(zt, None, "logits", "ova")
    p = cols.p.copy()
    first = np.array([0.0, 1 / 6, 0.5, 1.0, 1 / 3])  # edges and ends in class 0
    p[:5, 0] = first
    p[:5, 1:] = ((1 - first) / 4)[:, None]
    cols = columns(p, None, "probs", "ova")
    want = np.column_stack([apply_histogram_map(h.maps[m], cols.p[:, m]) for m in range(5)])
    np.testing.assert_array_equal(h.map_values(cols), want)
