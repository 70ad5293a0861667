"""How many times a temperature fit reads its data, and that reading less changed no number.

Issue #13: ``fit-temp`` read the validation data 8 times for the fit plus twice for the
before/after metrics. Now the first pass (at T = 1) carries the metrics before scaling and the
gradient's limits and keeps every k-th row in memory for a warm start; every later pass carries
the metrics at its own T, so the last one gives those at the reported T; ``--eval`` data is read
once. The sources here count their reads (calls of ``chunks()`` and rows yielded), so
``fit.passes`` is checked against what really happened; the data is generated in the tests.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.optimize import brentq
from typer.testing import CliRunner

import calibkit.loaders
from calibkit.calibrators import temperature as temperature_module
from calibkit.calibrators.report import fit_and_report
from calibkit.calibrators.temperature import (
    ScaledPredictions,
    TemperatureScaler,
    before_after_summaries,
    fit_temperature,
    fit_temperature_with_metrics,
    nll_gradient_hessian,
)
from calibkit.cli import app
from calibkit.errors import ConvergenceWarning
from calibkit.metrics.summary import CalibrationSummary, summarize
from calibkit.sources.predictions import Predictions

FIELDS = ("n", "accuracy", "ece", "mce", "rmsce", "nll", "brier", "mean_confidence",
          "saturated_fraction", "zero_prob_rows")  # fmt: skip


class Counted:
    """A prediction source that counts the passes made over it."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.calls = 0  # chunks() calls: passes started
        self.rows = 0  # rows handed out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[Any, Any]]:
        self.calls += 1
        for scores, labels in self.base.chunks(chunk_rows):
            self.rows += len(labels)
            yield scores, labels

    @property
    def full_passes(self) -> float:
        return self.rows / self.base.n_rows


def overconfident(
    seed: int, n: int, k: int, *, scale: float = 4.0, true_t: float = 2.5
) -> tuple[np.ndarray, np.ndarray]:
    """float32 logits whose labels are drawn from softmax(z / true_t), as in the benchmark."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=scale, size=(n, k)).astype(np.float32)
    a = z.astype(np.float64) / true_t
    p = np.exp(a - a.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.minimum((rng.random((n, 1)) > p.cumsum(axis=1)).sum(axis=1), k - 1)
    return z, y


def reference_temperature(source: Any) -> float:
    """The root of the exact gradient by bracketing (brentq): no Newton, no warm start."""

    def grad(beta: float) -> float:
        return nll_gradient_hessian(source, beta)[1]

    return 1.0 / brentq(grad, 1e-2, 1e2, xtol=1e-15, rtol=1e-15, maxiter=500)


def assert_same_summary(a: CalibrationSummary, b: CalibrationSummary) -> None:
    for f in FIELDS:
        assert getattr(a, f) == getattr(b, f), f
    assert a.bins.count.tolist() == b.bins.count.tolist()
    assert a.bins.sum_confidence.tolist() == b.bins.sum_confidence.tolist()


def assert_close_summary(a: CalibrationSummary, b: CalibrationSummary, rel: float) -> None:
    for f in FIELDS:
        assert getattr(a, f) == pytest.approx(getattr(b, f), rel=rel, abs=1e-15), f
    assert a.bins.count.tolist() == b.bins.count.tolist()


@pytest.fixture(scope="module")
def big() -> Predictions:
    """Benchmark-like logits large enough that the warm start keeps a subsample (every 3rd
    row: 30 000 x 200 is 6e6 numbers, the warm start keeps at most 2**21)."""
    z, y = overconfident(1, 30_000, 200)
    return Predictions.from_arrays(z, y, kind="logits")


# --------------------------------------------------------------------------------------------
# the library


def test_fit_passes_are_counted_honestly_and_are_few(big: Predictions) -> None:
    src = Counted(big)
    ts = fit_temperature(src)
    fit = ts.fit
    assert fit is not None and fit.converged and abs(fit.gradient) <= 1e-10
    assert src.calls == fit.passes and src.full_passes == fit.passes  # only full passes
    assert fit.passes <= 4  # 1 at T = 1, the warm start, then Newton (the old route: 6)
    # the warm start is reported separately: its rows are every 3rd row, held in memory
    assert fit.warm_start_rows == 10_000 and fit.warm_start_evaluations >= 2
    assert ts.temperature == pytest.approx(reference_temperature(big), rel=1e-10)


def test_fit_with_metrics_reads_no_more_and_matches_the_old_route(big: Predictions) -> None:
    src = Counted(big)
    ts, before, after = fit_temperature_with_metrics(src, n_bins=15)
    assert ts.fit is not None
    assert src.calls == src.full_passes == ts.fit.passes <= 4  # the old route: 6 + 2
    assert ts.fit.passes == fit_temperature(big).fit.passes  # the same path as without metrics
    assert ts.temperature == fit_temperature(big).temperature
    # before: summarize() of the data, bit for bit; after: the data scaled by the reported T
    assert_same_summary(before, summarize(big))
    assert_close_summary(after, summarize(ScaledPredictions(big, ts.beta)), rel=1e-12)
    assert after.nll == pytest.approx(ts.fit.nll_after, rel=1e-14)
    assert before.nll == pytest.approx(ts.fit.nll_before, rel=1e-14)
    assert after.kind == "logits" and after.input_reason.startswith("temperature-scaled logits")


def test_a_small_subsample_still_fits_in_few_passes(
    big: Predictions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The regime of the 5e4 x 1000 benchmark: a few percent of the rows in memory."""
    monkeypatch.setattr(temperature_module, "WARM_START_ELEMENTS", 1 << 18)  # 1 row in 23
    src = Counted(big)
    ts = fit_temperature(src)
    assert ts.fit is not None and ts.fit.converged
    assert src.full_passes == ts.fit.passes <= 5
    assert ts.fit.warm_start_rows == math.ceil(30_000 / 23)
    assert ts.temperature == pytest.approx(reference_temperature(big), rel=1e-10)


def test_small_data_is_fitted_in_memory_and_confirmed_by_one_pass() -> None:
    z, y = overconfident(2, 3000, 10)
    src = Counted(Predictions.from_arrays(z, y, kind="logits"))
    ts = fit_temperature(src)
    assert ts.fit is not None
    assert ts.fit.passes == src.calls == 2 and ts.fit.warm_start_rows == 3000
    assert ts.temperature == pytest.approx(reference_temperature(src.base), rel=1e-10)


def test_without_a_warm_start_the_fit_is_the_old_newton(
    big: Predictions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(temperature_module, "WARM_START_ELEMENTS", 0)
    ts = fit_temperature(big)
    assert ts.fit is not None and ts.fit.warm_start_rows == ts.fit.warm_start_evaluations == 0
    assert ts.fit.passes >= 5
    assert ts.temperature == pytest.approx(fit_temperature(big).temperature, rel=1e-10)


def test_threads_chunks_and_blocks_do_not_change_the_fit(
    big: Predictions, monkeypatch: pytest.MonkeyPatch
) -> None:
    ts, before, after = fit_temperature_with_metrics(big)
    monkeypatch.setenv("CALIBKIT_THREADS", "1")
    ts1, before1, after1 = fit_temperature_with_metrics(big)
    assert ts1.temperature == ts.temperature and ts1.fit == ts.fit  # bit for bit
    assert_same_summary(before1, before)
    assert_same_summary(after1, after)
    monkeypatch.setattr(temperature_module, "BLOCK_ELEMENTS", 1)  # one row per block
    ts2, _, after2 = fit_temperature_with_metrics(big)
    assert ts2.temperature == ts.temperature
    assert_same_summary(after2, after)
    ts3, before3, after3 = fit_temperature_with_metrics(big, chunk_rows=777)
    assert ts3.temperature == pytest.approx(ts.temperature, rel=1e-12)
    assert ts3.fit is not None and ts3.fit.warm_start_rows == 10_000  # the same rows
    assert_close_summary(before3, before, rel=1e-13)
    assert_close_summary(after3, after, rel=1e-11)


def test_probabilities_zeros_and_warnings_come_from_the_first_pass() -> None:
    z, y = overconfident(3, 4000, 50, scale=6.0)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(3), y[:3]] = 0.0  # three labels with probability exactly 0
    p[:3] /= p[:3].sum(axis=1, keepdims=True)
    base = Predictions.from_arrays(p, y, kind="probs")
    src = Counted(base)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ts, before, after = fit_temperature_with_metrics(src)
    messages = [str(w.message) for w in caught]
    assert any("3 probabilities are exactly 0 (in 3 rows)" in m for m in messages), messages
    assert any("3 rows give the label a probability of exactly 0" in m for m in messages)
    assert ts.fit is not None and ts.fit.zero_probs == 3
    assert src.calls == ts.fit.passes  # no separate pass to count the zeros
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_same_summary(before, summarize(base))
        assert_close_summary(after, summarize(ScaledPredictions(base, ts.beta)), rel=1e-12)
        assert ts.temperature == fit_temperature(base).temperature


def test_a_range_without_t_1_still_reports_the_nll_and_metrics_at_t_1(big: Predictions) -> None:
    src = Counted(big)
    with pytest.warns(ConvergenceWarning, match="clamped to 3"):
        ts, before, after = fit_temperature_with_metrics(src, t_min=3.0, t_max=4.0)
    assert ts.fit is not None and ts.fit.clamped == "t_min" and src.calls == ts.fit.passes
    assert_same_summary(before, summarize(big))
    assert ts.fit.nll_before == pytest.approx(before.nll, rel=1e-14)
    assert_close_summary(after, summarize(ScaledPredictions(big, ts.beta)), rel=1e-12)


def test_eval_data_is_read_once_for_its_before_and_after(big: Predictions) -> None:
    z, y = overconfident(4, 5000, 200)
    test = Counted(Predictions.from_arrays(z, y, kind="logits"))
    val = Counted(big)
    scaler, report = fit_and_report(val, test)
    assert test.calls == 1 and test.full_passes == 1
    assert val.calls == report["passes"] == scaler.fit.passes  # type: ignore[union-attr]
    before, after = summarize(test.base), summarize(ScaledPredictions(test.base, scaler.beta))
    for m in ("nll", "ece", "mce", "brier"):
        assert report["eval"][f"{m}_before"] == getattr(before, m)
        assert report["eval"][f"{m}_after"] == pytest.approx(getattr(after, m), rel=1e-12)
    b2, a2 = before_after_summaries(test.base, scaler.temperature)
    assert_same_summary(b2, before)
    assert a2.ece == report["eval"]["ece_after"]


def test_calibrators_with_and_without_the_warm_start_fields_load(big: Predictions) -> None:
    ts = fit_temperature(big)
    back = TemperatureScaler.from_json(ts.to_json())
    assert back.fit == ts.fit
    doc = json.loads(ts.to_json())
    for key in ("warm_start_rows", "warm_start_evaluations"):
        del doc["fit"][key]  # as written by calibkit before issue #13
    old = TemperatureScaler.from_dict(doc)
    assert old.fit is not None and old.fit.warm_start_rows == 0


# --------------------------------------------------------------------------------------------
# the command line


@pytest.fixture
def counted_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Counted]:
    """Every source the CLI reads, by file name, counting its passes."""
    opened: dict[str, Counted] = {}
    read = calibkit.loaders.read_predictions

    def counting_read(path: Any, *args: Any, **kwargs: Any) -> Any:
        src = Counted(read(path, *args, **kwargs))
        opened[Path(path).name] = src
        return src

    monkeypatch.setattr(calibkit.loaders, "read_predictions", counting_read)
    return opened


def test_fit_temp_reads_its_file_at_most_5_times(
    runner: CliRunner, tmp_path: Path, counted_reads: dict[str, Counted]
) -> None:
    z, y = overconfident(5, 30_000, 200)
    np.savez(tmp_path / "val.npz", logits=z, labels=y)
    z2, y2 = overconfident(6, 4000, 200)
    np.savez(tmp_path / "test.npz", logits=z2, labels=y2)
    result = runner.invoke(
        app, ["fit-temp", str(tmp_path / "val.npz"), "--eval", str(tmp_path / "test.npz"), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    val, test = counted_reads["val.npz"], counted_reads["test.npz"]
    assert val.calls == val.full_passes == out["passes"] <= 4  # fit and metrics: 8 before
    assert test.calls == test.full_passes == 1  # before and after: 2 before
    assert out["warm_start_rows"] == 10_000 and out["warm_start_evaluations"] >= 2
    # the numbers of the old route: before bit for bit, after at the reported T, T itself
    base = val.base
    before = summarize(base)
    after = summarize(ScaledPredictions(base, 1.0 / out["temperature"]))
    for m in ("nll", "ece", "mce", "brier"):
        assert out[f"{m}_before"] == getattr(before, m), m
        assert out[f"{m}_after"] == pytest.approx(getattr(after, m), rel=1e-12, abs=1e-15), m
    assert out["temperature"] == pytest.approx(reference_temperature(base), rel=1e-10)
    assert out["temperature"] == fit_temperature(base).temperature


def test_fit_temp_on_probabilities_reads_no_extra_pass(
    runner: CliRunner, tmp_path: Path, counted_reads: dict[str, Counted]
) -> None:
    z, y = overconfident(7, 20_000, 100)
    a = z.astype(np.float64)
    p = np.exp(a - a.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.savez(tmp_path / "val.npz", probs=p.astype(np.float32), labels=y)
    result = runner.invoke(app, ["fit-temp", str(tmp_path / "val.npz"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    val = counted_reads["val.npz"]
    assert val.calls == out["passes"] <= 4  # the zeros were counted in pass 1 (a pass before)
    assert out["input"] == "probs"
    assert out["ece_before"] == summarize(val.base).ece


def test_device_fit_with_metrics_equals_numpy(big: Predictions) -> None:
    pytest.importorskip("torch")
    src = Counted(big)
    ts, before, after = fit_temperature_with_metrics(src, device="cpu")
    ref, ref_before, ref_after = fit_temperature_with_metrics(big)
    assert ts.fit is not None and ref.fit is not None
    assert src.calls == ts.fit.passes == ref.fit.passes
    assert ts.temperature == pytest.approx(ref.temperature, rel=1e-10)
    assert_close_summary(before, ref_before, rel=1e-12)
    assert_close_summary(after, ref_after, rel=1e-10)
