"""Numbers at the edges: huge logits, half precision, many classes, ties and bin edges.

Every test runs with warnings turned into errors (``warnings.simplefilter("error")``), so an
overflow or invalid-value ``RuntimeWarning`` anywhere in numpy fails it, worker threads included
(the filters are process-wide).

References are independent of calibkit's single-pass softmax:

* :func:`decimal_nll`: ``logsumexp(z) - z_y`` per row in 50-digit :mod:`decimal` arithmetic from
  the exact binary values of the logits, far more precise than float64;
* :func:`reference_metrics`: ``scipy.special.log_softmax`` in float64 and a plain per-bin loop.

Tolerance: relative ``1e-12`` (calibkit sums rows in float64, in another order), absolute
``1e-15`` for values near zero; counts and accuracy exactly.
"""

from __future__ import annotations

import decimal
import json
import math
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import numpy as np
import pytest
from scipy.special import log_softmax
from typer.testing import CliRunner

import calibkit
from calibkit.calibrators import fit_temperature
from calibkit.cli import app
from calibkit.errors import ConvergenceWarning
from calibkit.metrics import summarize
from calibkit.metrics.summary import CalibrationSummary
from calibkit.sources.predictions import ConfidenceRows

REL, ABS = 1e-12, 1e-15
OUTPUTS = ("ece", "mce", "rmsce", "nll", "brier", "accuracy", "mean_confidence")


@pytest.fixture(autouse=True)
def warnings_are_errors() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_warnings_are_errors_here_and_in_threads() -> None:
    """Control for the fixture above: an overflow fails, in a worker thread too."""
    with pytest.raises(RuntimeWarning, match="overflow"):
        np.exp(np.float64(1000.0))
    with ThreadPoolExecutor(1) as pool, pytest.raises(RuntimeWarning, match="overflow"):
        pool.submit(np.exp, np.float32(1000.0)).result()


def close(a: float, b: float) -> bool:
    return a == pytest.approx(b, rel=REL, abs=ABS)


def assert_no_nan(summary: CalibrationSummary) -> None:
    for name in OUTPUTS:
        assert not math.isnan(getattr(summary, name)), name


def decimal_nll(z: np.ndarray, labels: np.ndarray) -> float:
    """Mean ``-log softmax(z)_y`` in 50-digit decimals: ``(max - z_y) + ln sum_k e^(z_k - max)``.

    Every float converts to a Decimal exactly and the differences are correct to 50 digits;
    ``exp`` of a very negative number underflows to 0, which is what it is to 50 digits.
    """
    with decimal.localcontext() as ctx:
        ctx.prec = 50
        total = Decimal(0)
        for row, y in zip(z.astype(np.float64).tolist(), labels.tolist(), strict=True):
            top = Decimal(max(row))
            lse = sum((Decimal(v) - top).exp() for v in row).ln()
            total += (top - Decimal(row[y])) + lse
        return float(total / len(labels))


def reference_bins(
    conf: np.ndarray, outcome: np.ndarray, n_bins: int
) -> tuple[list[int], float, float, float]:
    """Counts, ECE, MCE and RMSCE with bin ``b`` holding ``(b-1)/M < c <= b/M`` (c = 0 in bin 1)."""
    idx = [expected_bin(float(c), n_bins) for c in conf]
    counts, ece, mce, ms = [0] * n_bins, 0.0, 0.0, 0.0
    n = len(conf)
    for b in range(n_bins):
        members = [i for i, j in enumerate(idx) if j == b]
        counts[b] = len(members)
        if not members:
            continue
        gap = abs(math.fsum(outcome[members]) - math.fsum(conf[members])) / len(members)
        ece += len(members) / n * gap
        ms += len(members) / n * gap * gap
        mce = max(mce, gap)
    return counts, ece, mce, math.sqrt(ms)


def expected_bin(c: float, n_bins: int) -> int:
    """0-based bin of confidence ``c``, from the rule in :mod:`calibkit.metrics.binning`: bin
    ``b`` (1-based) holds ``(b-1)/M < c <= b/M``, each edge being the double nearest ``b/M``
    (Python's correctly rounded ``b / n_bins``); a confidence of 0 falls in bin 1."""
    return next(b for b in range(1, n_bins + 1) if c <= b / n_bins) - 1


def reference_metrics(z: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> dict[str, float]:
    logp = log_softmax(z.astype(np.float64), axis=1)
    p = np.exp(logp)
    rows = np.arange(len(labels))
    pred = z.argmax(axis=1)
    conf = p[rows, pred]
    correct = (pred == labels).astype(np.float64)
    onehot = np.eye(z.shape[1])[labels]
    _, ece, mce, rmsce = reference_bins(conf, correct, n_bins)
    return {
        "accuracy": float(correct.mean()),
        "nll": float(-logp[rows, labels].mean()),
        "brier": float(((p - onehot) ** 2).sum(axis=1).mean()),
        "mean_confidence": float(conf.mean()),
        "ece": ece,
        "mce": mce,
        "rmsce": rmsce,
    }


# --------------------------------------------------------------------------------------------
# huge logits


@pytest.mark.parametrize(
    ("scale", "dtype"),
    [
        (1e4, np.float32),
        (1e4, np.float64),
        (1e30, np.float32),
        (1e30, np.float64),
        (1e300, np.float64),
    ],
)
@pytest.mark.parametrize("k", [2, 10])
def test_huge_logits_give_exact_nll_and_no_nan(scale: float, dtype: type, k: int) -> None:
    rng = np.random.default_rng(11)
    z = (rng.normal(size=(200, k)) * scale).astype(dtype)
    labels = rng.integers(0, k, size=200)
    summary = calibkit.evaluate(z, labels)
    assert_no_nan(summary)
    assert math.isfinite(summary.nll)
    assert summary.nll == pytest.approx(decimal_nll(z, labels), rel=REL)
    ref = reference_metrics(z, labels)
    assert summary.accuracy == ref["accuracy"]
    for name in ("brier", "mean_confidence", "ece", "mce", "rmsce"):
        assert close(getattr(summary, name), ref[name]), (name, getattr(summary, name), ref[name])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_with_right_labels_have_zero_nll(dtype: type) -> None:
    """Gaps of ~1e30 between the label's logit and the rest: p_y = 1 exactly, NLL 0."""
    z = np.array([[1e30, -1e30, 0.0], [-3e30, 2e30, 1e29]], dtype=dtype)
    summary = calibkit.evaluate(z, [0, 1])
    assert (summary.nll, summary.brier, summary.ece, summary.accuracy) == (0.0, 0.0, 0.0, 1.0)
    assert decimal_nll(z, np.array([0, 1])) == 0.0


# --------------------------------------------------------------------------------------------
# half precision


def _same(a: CalibrationSummary, b: CalibrationSummary) -> None:
    for name in OUTPUTS:
        assert getattr(a, name) == getattr(b, name), name
    assert a.bins.count.tolist() == b.bins.count.tolist()
    assert a.bins.sum_confidence.tolist() == b.bins.sum_confidence.tolist()


@pytest.mark.parametrize("scale", [1.0, 8.0, 6e4])
def test_float16_logits_equal_float64_of_the_same_values(scale: float) -> None:
    rng = np.random.default_rng(5)
    z16 = np.clip(rng.normal(size=(300, 7)) * scale, -65504, 65504).astype(np.float16)
    labels = rng.integers(0, 7, size=300)
    _same(calibkit.evaluate(z16, labels), calibkit.evaluate(z16.astype(np.float64), labels))


def test_float16_probabilities_equal_float64_of_the_same_values() -> None:
    """Binary fractions sum to 1 exactly in both widths; all are above float16's epsilon."""
    p16 = np.array(
        [[0.5, 0.25, 0.25], [0.75, 0.125, 0.125], [0.625, 0.375, 0.0], [2**-8, 0.5, 0.49609375]],
        dtype=np.float16,
    )
    labels = np.array([0, 2, 1, 0])
    _same(
        calibkit.evaluate(p16, labels, kind="probs"),
        calibkit.evaluate(p16.astype(np.float64), labels, kind="probs"),
    )


def test_float16_zero_probability_is_read_as_the_float16_smallest_subnormal() -> None:
    """The one documented difference (``prob_floor``): p_y = 0 counts as the stored dtype's
    smallest positive (subnormal) number (#12; it was the dtype's epsilon)."""
    p = np.array([[1.0, 0.0]])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*1 row gives the label a probability of exactly 0")
        nll16 = calibkit.evaluate(p.astype(np.float16), [1], kind="probs").nll
        nll64 = calibkit.evaluate(p, [1], kind="probs").nll
    assert nll16 == -math.log(float(np.finfo(np.float16).smallest_subnormal))
    assert nll64 == -math.log(float(np.finfo(np.float64).smallest_subnormal))


# --------------------------------------------------------------------------------------------
# number of classes


@pytest.mark.parametrize("k", [2, 10_000])
@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_k_classes_match_scipy_log_softmax(k: int, scale: float) -> None:
    rng = np.random.default_rng(k)
    z = rng.normal(size=(50, k)) * scale
    z[:, 0] += 2.0 * scale  # some rows right, some confident
    labels = rng.integers(0, min(k, 3), size=50)
    ref = reference_metrics(z, labels)
    summary = calibkit.evaluate(z, labels)
    assert_no_nan(summary)
    assert summary.n_classes == k
    assert summary.accuracy == ref["accuracy"]
    for name in ("nll", "brier", "mean_confidence", "ece", "mce", "rmsce"):
        assert close(getattr(summary, name), ref[name]), (name, getattr(summary, name), ref[name])
    if k == 2:  # 50 x 10 000 decimal exponentials take seconds: scipy is the reference there
        assert summary.nll == pytest.approx(decimal_nll(z, labels), rel=REL)


# --------------------------------------------------------------------------------------------
# ties


@pytest.mark.parametrize("k", [2, 3, 10, 1000])
@pytest.mark.parametrize(
    ("value", "dtype"),
    [(0.0, np.float64), (-7.25, np.float32), (1e4, np.float32), (1e30, np.float64)],
)
def test_identical_logits(k: int, value: float, dtype: type) -> None:
    labels = np.random.default_rng(k).integers(0, k, size=40)
    labels[:3] = 0  # class 0 (the argmax of a tie) is right on some rows
    z = np.full((40, k), value, dtype=dtype)
    summary = calibkit.evaluate(z, labels)
    accuracy = float(np.mean(labels == 0))  # ties go to the first index
    assert summary.accuracy == accuracy
    assert summary.mean_confidence == pytest.approx(1 / k, rel=REL)
    assert summary.nll == pytest.approx(math.log(k), rel=REL)
    assert summary.ece == pytest.approx(abs(accuracy - 1 / k), rel=REL, abs=ABS)
    assert summary.mce == pytest.approx(summary.ece, rel=REL, abs=ABS)
    assert summary.rmsce == pytest.approx(summary.ece, rel=REL, abs=ABS)
    assert summary.brier == pytest.approx(1 - 1 / k, rel=REL)
    assert summary.bins.count.tolist() == [
        40 if b == expected_bin(1 / k, 15) else 0 for b in range(15)
    ]


# --------------------------------------------------------------------------------------------
# confidences on bin edges


def _edge_confidences() -> np.ndarray:
    """``b/M`` for every M <= 30 and b <= M, ``b/15``, 0.7, 0.8, and their float64 neighbours."""
    exact = {b / m for m in range(1, 31) for b in range(1, m + 1)}
    exact |= {b / 15 for b in range(1, 16)} | {0.7, 0.8}
    near = {float(np.nextafter(c, 0.0)) for c in exact} | {
        float(np.nextafter(c, 1.0)) for c in exact if c < 1.0
    }
    return np.array(sorted(exact | near))


def _rows_with_confidence(conf: np.ndarray, k: int = 64) -> np.ndarray:
    """Probability rows whose largest entry is exactly ``conf`` (needs conf > 1/k)."""
    assert conf.min() > 1 / k
    rest = (1.0 - conf) / (k - 1)
    return np.column_stack([conf, np.repeat(rest[:, None], k - 1, axis=1)])


EDGES = _edge_confidences()
TWO_CLASS = np.array([[0.7, 0.3], [0.2, 0.8], [0.3, 0.7], [0.5, 0.5], [1.0, 0.0], [0.4, 0.6]])


def test_two_class_edge_values_keep_their_confidence() -> None:
    conf = TWO_CLASS.max(axis=1)
    assert conf.tolist() == [0.7, 0.8, 0.7, 0.5, 1.0, 0.6]
    assert [expected_bin(c, 10) for c in conf] == [6, 7, 6, 4, 9, 5]  # 0.7 in (0.6, 0.7]


@pytest.mark.parametrize("n_bins", range(1, 31))
def test_edge_confidences_land_in_the_documented_bin(n_bins: int) -> None:
    probs = _rows_with_confidence(EDGES)
    labels = np.arange(len(EDGES)) % 2  # right on even rows
    expected, ece, mce, rmsce = reference_bins(EDGES, (labels == 0).astype(float), n_bins)

    summary = calibkit.evaluate(probs, labels, kind="probs", n_bins=n_bins)
    assert summary.bins.count.tolist() == expected
    assert close(summary.ece, ece) and close(summary.mce, mce) and close(summary.rmsce, rmsce)

    rows = ConfidenceRows.from_arrays(EDGES, (labels == 0).astype(float))
    assert summarize(rows, n_bins=n_bins).bins.count.tolist() == expected

    pair = calibkit.evaluate(TWO_CLASS, [0, 1, 1, 0, 0, 1], kind="probs", n_bins=n_bins)
    expected_pair = [0] * n_bins
    for c in TWO_CLASS.max(axis=1):
        expected_pair[expected_bin(c, n_bins)] += 1
    assert pair.bins.count.tolist() == expected_pair


@pytest.fixture(scope="module")
def edge_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, np.ndarray]:
    path = tmp_path_factory.mktemp("edges") / "edges.npz"
    np.savez(path, probs=_rows_with_confidence(EDGES), labels=np.arange(len(EDGES)) % 2)
    return str(path), EDGES


@pytest.mark.parametrize("n_bins", range(1, 31))
def test_cli_bins_put_edge_confidences_in_the_documented_bin(
    edge_file: tuple[str, np.ndarray], n_bins: int
) -> None:
    path, conf = edge_file
    result = CliRunner().invoke(app, ["ece", path, "--bins", str(n_bins), "--json"])
    assert result.exit_code == 0, result.output
    counts = [b["count"] for b in json.loads(result.stdout)["bins"]]
    expected = [0] * n_bins
    for c in conf:
        expected[expected_bin(float(c), n_bins)] += 1
    assert counts == expected


# --------------------------------------------------------------------------------------------
# temperature fit on huge logits


@pytest.mark.parametrize("true_t", [3e3, 1e4 / 3])
def test_temperature_fit_on_huge_float32_logits(true_t: float) -> None:
    rng = np.random.default_rng(3)
    z = (rng.normal(size=(2000, 10)) * 1e4).astype(np.float32)
    p = np.exp(log_softmax(z.astype(np.float64) / true_t, axis=1))
    labels = (p.cumsum(axis=1) > rng.random((2000, 1))).argmax(axis=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("error")
        warnings.simplefilter("always", ConvergenceWarning)  # the only warning allowed
        scaler = fit_temperature(z, labels)
    assert all(issubclass(w.category, ConvergenceWarning) for w in caught)
    t = scaler.temperature
    assert math.isfinite(t) and 1e-4 <= t <= 1e4
    assert scaler.fit is not None and math.isfinite(scaler.fit.nll_after)
    assert scaler.fit.nll_after <= scaler.fit.nll_before
    assert t == pytest.approx(true_t, rel=0.25)  # 2000 samples: within a quarter


def test_temperature_fit_on_huge_float32_logits_clamps_with_a_warning() -> None:
    """Labels independent of 1e4-scale logits: the optimum T is beyond t_max."""
    rng = np.random.default_rng(4)
    z = (rng.normal(size=(500, 10)) * 1e4).astype(np.float32)
    labels = rng.integers(0, 10, size=500)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("error")
        warnings.simplefilter("always", ConvergenceWarning)
        scaler = fit_temperature(z, labels)
    assert [w.category for w in caught] == [ConvergenceWarning]
    assert scaler.temperature == 1e4 and scaler.fit is not None
    assert scaler.fit.clamped == "t_max"
