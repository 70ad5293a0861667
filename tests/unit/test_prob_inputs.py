"""Probability inputs are used as stored: ``-log p_y`` in float64, no epsilon floor (#12, item 1).

Only an exact 0 needs a rule: it is read as the smallest positive (subnormal) number of the
stored dtype, counted (``zero_prob_rows``), and named in a warning. scikit-learn's clipped
``log_loss`` stays available under ``--convention sklearn`` and is checked against
``sklearn.metrics.log_loss`` itself.

The over-confident model below is crafted here: float32 softmax outputs of random logits, with
a few labels put on the least likely class so that the smallest label probability is about
1e-13, far below float32's epsilon (1.2e-7) but far above its smallest normal number.
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _cli import invoke as run
from _cli import run_json as _run_json
from scipy.special import log_softmax
from typer.testing import CliRunner

import calibkit
from calibkit.calibrators import fit_temperature
from calibkit.calibrators.temperature import TemperatureScaler
from calibkit.metrics import summarize
from calibkit.metrics.conventions import sklearn_log_loss
from calibkit.metrics.examples import prob_floor
from calibkit.sources.predictions import Predictions

SUB32 = float(np.finfo(np.float32).smallest_subnormal)  # 2**-149
SUB64 = float(np.finfo(np.float64).smallest_subnormal)  # 2**-1074
EPS32 = float(np.finfo(np.float32).eps)

#: these commands may warn on stderr (kind detection): only stdout is checked
run_json = functools.partial(_run_json, quiet=False)


def overconfident(n: int = 2000, k: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(logits32, probs32, labels)``: a model over-confident by a factor of about 3 in T."""
    rng = np.random.default_rng(12)
    z = rng.normal(size=(n, k)) * 3.0
    z[np.arange(n), rng.integers(0, k, n)] += 14.0
    true = np.exp(log_softmax(z / 3.0, axis=1))  # labels drawn from the tempered model
    labels = (true.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    z32 = z.astype(np.float32)
    p32 = np.exp(log_softmax(z32.astype(np.float64), axis=1)).astype(np.float32)
    worst = np.argsort(p32.min(axis=1))[:4]
    labels[worst] = p32[worst].argmin(axis=1)  # mislabelled rows: the least likely class
    return z32, p32, labels


@pytest.fixture(scope="module")
def model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z32, p32, labels = overconfident()
    label_p = p32[np.arange(len(labels)), labels]
    assert 1e-14 < label_p.min() < 1e-12  # the regime of the issue: ~1e-13
    assert (label_p < EPS32).sum() >= 4 and (p32 > 0).all()  # below eps, and no exact zero
    return z32, p32, labels


def old_eps_nll(p32: np.ndarray, labels: np.ndarray) -> float:
    """The NLL calibkit used to report: probabilities floored at the dtype's epsilon."""
    label_p = p32[np.arange(len(labels)), labels].astype(np.float64)
    return float(-np.log(np.maximum(label_p, EPS32)).mean())


# --------------------------------------------------------------------------------------------
# the over-confident float32 model: probabilities give the numbers of the logits


def test_nll_of_float32_probabilities_equals_nll_of_the_logits(model: Any) -> None:
    z32, p32, labels = model
    from_logits = calibkit.evaluate(z32, labels, kind="logits").nll
    from_probs = calibkit.evaluate(p32, labels, kind="probs")
    assert from_probs.nll == pytest.approx(from_logits, rel=1e-6)
    assert from_probs.zero_prob_rows == 0
    # the epsilon floor capped the mislabelled rows at 15.9 nats instead of ~30:
    assert abs(old_eps_nll(p32, labels) / from_logits - 1) > 1e-3


def test_fit_temp_on_float32_probabilities_equals_the_fit_on_logits(model: Any) -> None:
    z32, p32, labels = model
    t_logits = fit_temperature(z32, labels, kind="logits").temperature
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no exact zero here: no warning either
        t_probs = fit_temperature(p32, labels, kind="probs").temperature
    assert 2.5 < t_logits < 3.5
    assert t_probs == pytest.approx(t_logits, rel=1e-5)  # float32 rounding of the softmax
    eps_logits = np.log(np.maximum(p32.astype(np.float64), EPS32))  # the old floor
    t_old = fit_temperature(eps_logits, labels, kind="logits").temperature
    assert abs(t_old / t_logits - 1) > 1e-3


def test_cli_ece_and_fit_temp_on_a_float32_probs_file(
    runner: CliRunner, tmp_path: Path, model: Any
) -> None:
    z32, p32, labels = model
    probs_path, logits_path = tmp_path / "p.npz", tmp_path / "z.npz"
    np.savez(probs_path, probs=p32, labels=labels)
    np.savez(logits_path, logits=z32, labels=labels)
    p_doc, z_doc = run_json(runner, "ece", probs_path), run_json(runner, "ece", logits_path)
    assert (p_doc["input"], p_doc["input_reason"]) == ("probs", "named: key 'probs'")
    assert p_doc["zero_prob_rows"] == 0
    assert p_doc["nll"] == pytest.approx(z_doc["nll"], rel=1e-6)
    p_fit = run_json(runner, "fit-temp", probs_path)
    z_fit = run_json(runner, "fit-temp", logits_path)
    assert p_fit["temperature"] == pytest.approx(z_fit["temperature"], rel=1e-5)
    assert p_fit["nll_before"] == pytest.approx(z_fit["nll_before"], rel=1e-6)
    assert p_fit["nll_after"] == pytest.approx(z_fit["nll_after"], rel=1e-6)


def test_parquet_probability_columns_give_the_same_nll(tmp_path: Path, model: Any) -> None:
    z32, p32, labels = model
    path = tmp_path / "p.parquet"
    cols = {f"prob_{k}": p32[:, k] for k in range(p32.shape[1])}
    pq.write_table(pa.table({**cols, "label": labels}), path, row_group_size=500)
    s = summarize(calibkit.read_predictions(path))
    assert s.kind == "probs" and s.nll == pytest.approx(
        calibkit.evaluate(z32, labels, kind="logits").nll, rel=1e-6
    )


def test_torch_backend_uses_the_stored_probabilities(model: Any) -> None:
    pytest.importorskip("torch")
    _, p32, labels = model
    preds = Predictions.from_arrays(p32, labels, kind="probs")
    assert summarize(preds, device="cpu").nll == pytest.approx(summarize(preds).nll, rel=1e-12)
    t_cpu = fit_temperature(preds, device="cpu").temperature
    assert t_cpu == pytest.approx(fit_temperature(preds).temperature, rel=1e-9)


@pytest.mark.parametrize("soft", [False, True])
def test_torch_backend_counts_and_floors_exact_zeros(soft: bool) -> None:
    pytest.importorskip("torch")
    p = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    labels: Any = np.array([0, 2, 1])
    if soft:
        labels = np.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]])
    preds = Predictions.from_arrays(p, labels, kind="probs")
    with pytest.warns(UserWarning, match="2 rows give"):
        on_numpy = summarize(preds)
    with pytest.warns(UserWarning, match="2 rows give"):
        on_torch = summarize(preds, device="cpu")
    assert on_numpy.zero_prob_rows == on_torch.zero_prob_rows == 2
    assert on_torch.nll == pytest.approx(on_numpy.nll, rel=1e-15)


# --------------------------------------------------------------------------------------------
# exact zeros: the smallest subnormal of the stored dtype, counted and warned about


def test_prob_floor_is_the_smallest_subnormal_of_the_stored_dtype() -> None:
    assert prob_floor(np.dtype(np.float32)) == SUB32 == 2.0**-149
    assert prob_floor(np.dtype(np.float64)) == SUB64 == 2.0**-1074
    assert prob_floor(np.dtype(np.float16)) == 2.0**-24
    assert prob_floor(np.dtype(np.int64)) == SUB64  # integers are read as float64


def test_an_exact_zero_on_the_label_by_hand() -> None:
    """Rows ``[0.5, 0.5]`` (label 0) and ``[1, 0]`` (label 1), float32:
    NLL = (log 2 + 149 log 2) / 2 = 75 log 2, the second term a lower bound."""
    p = np.array([[0.5, 0.5], [1.0, 0.0]], dtype=np.float32)
    with pytest.warns(UserWarning, match=r"<array>: 1 row gives the label a probability of"):
        s = calibkit.evaluate(p, [0, 1], kind="probs")
    assert s.nll == pytest.approx(75 * math.log(2), rel=1e-15)
    assert s.zero_prob_rows == 1
    with pytest.warns(UserWarning, match="1 row gives"):
        s64 = calibkit.evaluate(p.astype(np.float64), [0, 1], kind="probs")
    assert s64.nll == pytest.approx((1 + 1074) / 2 * math.log(2), rel=1e-15)
    with pytest.warns(UserWarning, match="1 row gives"):
        s_int = calibkit.evaluate(np.array([[1, 0], [0, 1]]), [1, 1], kind="probs")
    assert s_int.nll == pytest.approx(1074 / 2 * math.log(2), rel=1e-15)


def test_zeros_that_the_label_does_not_see_are_not_counted() -> None:
    p = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # p_y > 0 on every row: no warning
        s = calibkit.evaluate(p, [0, 1], kind="probs")
    assert s.zero_prob_rows == 0 and s.nll == pytest.approx(math.log(2) / 2)
    soft = np.array([[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])  # row 0 puts mass on a zero
    with pytest.warns(UserWarning, match="1 row gives"):
        s_soft = calibkit.evaluate(p, soft, kind="probs")
    assert s_soft.zero_prob_rows == 1
    assert s_soft.nll == pytest.approx((0.5 * math.log(2) + 0.5 * 149 * math.log(2)) / 2)


def test_cli_reports_the_zero_count_in_json_table_and_warning(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "z.npz"
    p = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    np.savez(path, probs=p, labels=np.array([0, 2, 1]))
    result = run(runner, "ece", path, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["zero_prob_rows"] == 2
    assert doc["nll"] == pytest.approx((math.log(2) + 2 * 149 * math.log(2)) / 3)
    assert (
        f"calibkit: warning: {path}: 2 rows give the label a probability of exactly 0; "
        "-log 0 is taken at the smallest positive number of the stored dtype, so the NLL is a "
        "lower bound (save logits when you can)"
    ) in result.stderr.splitlines()
    table = run(runner, "ece", path, "--no-bins")
    line = next(x for x in table.stdout.splitlines() if "p(label) = 0" in x)
    assert " 2 " in line and "lower bounds" in line


def test_fit_temp_reads_zeros_as_the_subnormal_and_counts_them(
    runner: CliRunner, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(300, 4)) * 4
    p = np.exp(log_softmax(z, axis=1)).astype(np.float32)
    p[:20, 0] += p[:20, 3]
    p[:20, 3] = 0.0  # exact zeros, their mass moved to class 0
    labels = rng.integers(0, 3, 300)
    with pytest.warns(UserWarning, match=r"20 probabilities are exactly 0 \(in 20 rows\)"):
        scaler = fit_temperature(p, labels, kind="probs")
    assert scaler.fit is not None and scaler.fit.zero_probs == 20
    # the rule, applied by hand: log p of the stored value, log 0 read as log(2**-149)
    by_hand = np.log(np.where(p > 0, p.astype(np.float64), SUB32))
    expected = fit_temperature(by_hand, labels, kind="logits").temperature
    assert scaler.temperature == pytest.approx(expected, rel=1e-12)
    path = tmp_path / "p.npz"
    np.savez(path, probs=p, labels=labels)
    doc = run_json(runner, "fit-temp", path)
    assert doc["zero_probs"] == 20 and doc["temperature"] == pytest.approx(expected, rel=1e-12)
    calibrator = json.loads(scaler.to_json())
    assert calibrator["fit"]["zero_probs"] == 20
    assert TemperatureScaler.from_json(scaler.to_json()).fit == scaler.fit


def test_older_calibrators_without_zero_probs_still_load() -> None:
    scaler = fit_temperature(np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]]), [0, 1, 1])
    doc = json.loads(scaler.to_json())
    del doc["fit"]["zero_probs"]
    loaded = TemperatureScaler.from_dict(doc)
    assert loaded.fit is not None and loaded.fit.zero_probs == 0


def test_temperature_scaled_probabilities_keep_exact_zeros() -> None:
    out = TemperatureScaler(3.0).transform_probs(np.array([[0.9, 0.1, 0.0]], dtype=np.float32))
    assert out[0, 2] == 0.0
    expected = np.array([0.9, 0.1]) ** (1 / 3)
    assert out[0, :2] == pytest.approx(expected / expected.sum(), rel=1e-6)


def test_long_double_probabilities_keep_their_true_log() -> None:
    """A probability too small for float64 keeps its log (taken in long double)."""
    if np.finfo(np.longdouble).tiny >= np.finfo(np.float64).tiny:
        pytest.skip("long double is float64 on this platform")
    tiny = np.longdouble("1e-400")
    p = np.array([[1 - tiny, tiny], [0.5, 0.5]], dtype=np.longdouble)
    s = calibkit.evaluate(p, [1, 0], kind="probs")
    assert s.zero_prob_rows == 0
    assert s.nll == pytest.approx((400 * math.log(10) + math.log(2)) / 2, rel=1e-12)


def test_a_long_double_exact_zero_is_read_as_float64s_smallest_subnormal() -> None:
    """Regression: long double's own subnormal became 0.0 as a Python float, so log(0) = -inf
    and the summary refused the input; the torch path gave 372.57. Both now agree."""
    p = np.array([[1.0, 0.0], [0.5, 0.5]], dtype=np.longdouble)
    with pytest.warns(UserWarning, match="exactly 0"):
        s = calibkit.evaluate(p, [1, 0], kind="probs")
    assert s.zero_prob_rows == 1
    assert s.nll == pytest.approx((1074 * math.log(2) + math.log(2)) / 2, rel=1e-12)


# --------------------------------------------------------------------------------------------
# --convention sklearn: scikit-learn's clipped log_loss, on request


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("k", [2, 5])
def test_sklearn_convention_nll_is_sklearn_log_loss(dtype: type, k: int) -> None:
    log_loss = pytest.importorskip("sklearn.metrics").log_loss
    rng = np.random.default_rng(k)
    p64 = np.exp(log_softmax(rng.normal(size=(400, k)) * 6, axis=1))
    p64[:5] = np.eye(k)[rng.integers(0, k, 5)]  # exact 0 and 1: clipped by sklearn
    p = p64.astype(dtype)
    labels = rng.integers(0, k, 400)
    preds = Predictions.from_arrays(p, labels, kind="probs")
    expected = log_loss(labels, p, labels=list(range(k)))
    rel = 1e-12 if dtype is np.float64 else 2e-6 if dtype is np.float32 else 2e-3
    assert sklearn_log_loss(preds) == pytest.approx(expected, rel=rel)


def test_sklearn_convention_on_logits_is_log_loss_of_their_softmax() -> None:
    log_loss = pytest.importorskip("sklearn.metrics").log_loss
    rng = np.random.default_rng(9)
    z = rng.normal(size=(300, 4)) * 30  # saturated rows: sklearn clips at 1 - eps and eps
    labels = rng.integers(0, 4, 300)
    p = np.exp(log_softmax(z, axis=1))
    preds = Predictions.from_arrays(z, labels, kind="logits")
    assert sklearn_log_loss(preds) == pytest.approx(log_loss(labels, p), rel=1e-12)
    assert summarize(preds).nll > sklearn_log_loss(preds)  # calibkit's own is not capped


def test_cli_convention_sklearn_multiclass_nll_and_bins(runner: CliRunner, tmp_path: Path) -> None:
    """Multiclass is allowed: NLL of log_loss, bins of calibration_curve on the top label."""
    sk = pytest.importorskip("sklearn")
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import log_loss

    assert sk.__version__  # the installed scikit-learn is the reference
    _, p32, labels = overconfident(600, 6)
    path = tmp_path / "p.npz"
    np.savez(path, probs=p32, labels=labels)
    own = run_json(runner, "ece", path)
    doc = run_json(runner, "ece", path, "--convention", "sklearn")
    assert doc["convention"] == "sklearn" and doc["binary_mode"] is None
    assert doc["nll"] == pytest.approx(log_loss(labels, p32), rel=2e-6)
    assert own["nll"] > doc["nll"] * 1.01  # the mislabelled rows are capped at 15.9 nats
    conf = p32.max(axis=1).astype(np.float64)
    correct = (p32.argmax(axis=1) == labels).astype(np.float64)
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=15)
    full = [b for b in doc["bins"] if b["count"]]
    assert [b["accuracy"] for b in full] == pytest.approx(prob_true, abs=1e-12)
    assert [b["confidence"] for b in full] == pytest.approx(prob_pred, abs=1e-12)


def test_cli_convention_sklearn_two_columns_bin_the_positive_class(
    runner: CliRunner, tmp_path: Path
) -> None:
    pytest.importorskip("sklearn")
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(4)
    p1 = rng.random(500)
    y = (rng.random(500) < p1**1.5).astype(np.int64)
    path = tmp_path / "b.npz"
    np.savez(path, probs=np.stack([1 - p1, p1], axis=1), labels=y)
    doc = run_json(runner, "ece", path, "--convention", "sklearn", "--bins", "10")
    assert doc["binary_mode"] == "positive"
    assert doc["nll"] == pytest.approx(log_loss(y, p1), rel=1e-12)
    prob_true, prob_pred = calibration_curve(y, p1, n_bins=10)
    full = [b for b in doc["bins"] if b["count"]]
    assert [b["accuracy"] for b in full] == pytest.approx(prob_true, abs=1e-12)
    assert [b["confidence"] for b in full] == pytest.approx(prob_pred, abs=1e-12)
