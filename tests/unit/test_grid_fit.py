"""Temperature by grid search (:mod:`calibkit.calibrators.grid`): the grid parser and the
grid objective.

Small cases are checked by hand: four rows that share one confidence ``sigmoid(2 / T)`` with
three of them right have ECE ``|sigmoid(2 / T) - 3/4|`` in any binning, so the grid point
nearest ``T* = 2 / ln 3 = 1.8205`` in that sense wins.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal

import numpy as np
import pytest

from calibkit.calibrators.grid import (
    GridTemperatureScaler,
    TemperatureGrid,
    calibrator_json,
    fit_temperature_grid,
    parse_grid,
)
from calibkit.calibrators.sweep import sweep_temperatures
from calibkit.calibrators.temperature import TemperatureScaler, fit_temperature
from calibkit.errors import ConvergenceWarning, UsageError
from calibkit.limits import MAX_SWEEP_CELLS, MAX_TEMPERATURES
from calibkit.sources.predictions import ConfidenceRows, Predictions

# --------------------------------------------------------------------------------------------
# the parser


def test_mukhoti_grid_is_exactly_the_hundred_decimals() -> None:
    g = parse_grid("0.1:10:0.1")
    assert g.size == 100
    # every point is the float nearest to k/10, never an accumulated 0.30000000000000004
    assert g.values == tuple(float(Decimal(k) / 10) for k in range(1, 101))
    assert g.values[2] == 0.3 and g.values[-1] == 10.0
    assert (g.start, g.stop, g.step, g.spec) == (0.1, 10.0, 0.1, "0.1:10:0.1")
    # what an accumulating loop (T += 0.1) or arange would give differs: the parser is exact
    acc, t = [], 0.1
    for _ in range(100):
        acc.append(t)
        t += 0.1
    assert acc[2] != 0.3 and acc[-1] != 10.0
    assert np.arange(0.1, 10.0, 0.1).size == 99  # arange drops the last point


@pytest.mark.parametrize(
    ("spec", "values"),
    [
        ("0.3:0.9:0.3", (0.3, 0.6, 0.9)),  # 0.3 + 0.3 + 0.3 > 0.9 in floats; still included
        ("1:1:0.5", (1.0,)),  # one point
        ("1e-1:3e-1:1e-1", (0.1, 0.2, 0.3)),
        (" 0.5 : 2 : 0.5 ", (0.5, 1.0, 1.5, 2.0)),  # spaces around the parts
        ("2:2.75:.25", (2.0, 2.25, 2.5, 2.75)),
        ("0.7:1.3:0.1", (0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3)),
    ],
)
def test_grid_points_include_both_ends(spec: str, values: tuple[float, ...]) -> None:
    g = parse_grid(spec)
    assert g.values == values
    assert g.values[-1] == g.stop


def test_grid_size_bound_is_the_sweep_cap() -> None:
    assert parse_grid(f"1:{MAX_TEMPERATURES}:1").size == MAX_TEMPERATURES
    with pytest.raises(UsageError, match=f"{MAX_TEMPERATURES + 1} temperatures; at most"):
        parse_grid(f"1:{MAX_TEMPERATURES + 1}:1")
    with pytest.raises(UsageError, match="at most"):  # refused before any point is built
        parse_grid("0.000001:1000000:0.000001")


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("", "expected START:STOP:STEP"),
        ("0.1:10", "expected START:STOP:STEP"),
        ("0.1:10:0.1:1", "expected START:STOP:STEP"),
        ("a:10:0.1", "START must be a decimal number"),
        ("0.1:ten:0.1", "STOP must be a decimal number"),
        ("0.1:10:", "STEP must be a decimal number"),
        ("nan:1:0.1", "START must be a decimal number"),
        ("inf:inf:1", "START must be a decimal number"),
        ("-1:1:0.5", "START must be a decimal number"),  # no sign: a temperature is > 0
        ("+1:2:1", "START must be a decimal number"),
        ("0x1:2:1", "START must be a decimal number"),
        ("1_0:20:1", "START must be a decimal number"),
        ("1e1000:1e1000:1", "START must be a decimal number"),  # exponent over 3 digits
        ("0:1:0.1", "START must be > 0"),
        ("0.0:1:0.1", "START must be > 0"),
        ("0.1:1:0", "STEP must be > 0"),
        ("2:1:0.1", "STOP must be >= START"),
        ("0.1:1:0.4", r"not START plus a whole number of steps .* 0.9 and 1.3"),
        ("0.1:10:0.3000001", "not START plus a whole number of steps"),
        ("1e-400:1e-400:1", "START is outside the range of positive float64"),
        ("1e400:1e400:1", "START is outside the range of positive float64"),
        ("1:1.00000000000000000001:1e-20", "too fine for float64"),
    ],
)
def test_bad_grids_are_refused(spec: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem) as err:
        parse_grid(spec)
    assert str(err.value).startswith(f"grid {spec!r}: ")
    assert "\n" not in str(err.value)


def test_grid_must_be_text() -> None:
    with pytest.raises(UsageError, match="must be a string"):
        parse_grid(0.1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# the objective


def _shared_confidence() -> tuple[np.ndarray, np.ndarray]:
    """Four rows of confidence sigmoid(2/T), three right."""
    z = np.array([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    return z, np.array([0, 0, 1, 1])


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_ece_objective_hand_checked() -> None:
    z, y = _shared_confidence()
    ts = fit_temperature_grid(z, y, grid="1:3:0.1", objective="ece", n_bins=15)
    # |sigmoid(2/1.8) - 0.75| = 0.00233 < |sigmoid(2/1.9) - 0.75| = 0.00872
    assert ts.temperature == 1.8
    assert ts.objective_value == pytest.approx(_sigmoid(2 / 1.8) - 0.75, abs=1e-12)
    expected = [abs(_sigmoid(2 / t) - 0.75) for t in parse_grid("1:3:0.1").values]
    np.testing.assert_allclose(ts.values, expected, rtol=0, atol=1e-12)
    assert ts.ties == 1 and ts.fit is not None and ts.fit.clamped is None
    assert ts.fit.nll_before == pytest.approx(
        -(3 * math.log(_sigmoid(2)) + math.log(1 - _sigmoid(2))) / 4, rel=1e-12
    )
    assert ts.fit.n == 4 and ts.fit.passes == 1 and math.isnan(ts.fit.gradient)
    assert (ts.fit.t_min, ts.fit.t_max) == (1.0, 3.0)


def test_nll_objective_is_the_grid_point_of_lowest_nll() -> None:
    z, y = _shared_confidence()
    exact = fit_temperature(z, y).temperature
    assert exact == pytest.approx(2 / math.log(3), rel=1e-9)  # 1.8205
    ts = fit_temperature_grid(z, y, grid="1:3:0.1", objective="nll")
    assert ts.temperature == 1.8
    nll = [
        -(3 * math.log(_sigmoid(2 / t)) + math.log(1 - _sigmoid(2 / t))) / 4
        for t in parse_grid("1:3:0.1").values
    ]
    assert ts.temperature == parse_grid("1:3:0.1").values[int(np.argmin(nll))]
    assert ts.objective_value == pytest.approx(min(nll), rel=1e-12)
    assert ts.fit is not None and ts.fit.nll_after == pytest.approx(min(nll), rel=1e-12)


def test_ties_keep_the_first_minimum() -> None:
    # equal logits: confidence 1/2 at every T, so the ECE is the same at every grid point
    z = np.zeros((6, 2))
    y = np.array([0, 0, 0, 0, 1, 1])
    with pytest.warns(ConvergenceWarning, match="smallest temperature T = 0.5"):
        ts = fit_temperature_grid(z, y, grid="0.5:2:0.5", objective="ece")
    assert ts.temperature == 0.5  # the first of the four tied points
    assert ts.ties == 4
    assert len(set(ts.values)) == 1
    assert ts.fit is not None and "4 grid points tie" in ts.fit.message


def test_saturated_plateau_ties_keep_the_smallest_t() -> None:
    # every row right with a logit gap of 1000: confidence is exactly 1.0, ECE exactly 0
    z = np.array([[1000.0, 0.0, 0.0], [0.0, 1000.0, 0.0]])
    y = np.array([0, 1])
    with pytest.warns(ConvergenceWarning):
        ts = fit_temperature_grid(z, y, grid="1.5:3:0.5", objective="ece")
    assert ts.values == (0.0, 0.0, 0.0, 0.0)
    assert ts.temperature == 1.5 and ts.ties == 4


def test_the_last_point_can_win() -> None:
    # over-confident and right half the time: the ECE falls all the way to T = 10
    z = np.array([[5.0, 0.0]] * 4)
    y = np.array([0, 1, 0, 1])
    with pytest.warns(ConvergenceWarning, match="largest temperature T = 10"):
        ts = fit_temperature_grid(z, y, grid="0.1:10:0.1", objective="ece")
    assert ts.temperature == 10.0
    assert ts.fit is not None and ts.fit.clamped == "t_max"
    assert "beyond the grid" in ts.fit.message


def test_one_point_grid_is_no_edge() -> None:
    z, y = _shared_confidence()
    ts = fit_temperature_grid(z, y, grid="2:2:1")
    assert ts.temperature == 2.0 and ts.fit is not None and ts.fit.clamped is None


def test_agrees_with_the_sweep_on_random_models(rng: np.random.Generator) -> None:
    z = rng.normal(scale=4.0, size=(3000, 7))
    y = np.where(rng.random(3000) < 0.7, z.argmax(axis=1), rng.integers(0, 7, 3000))
    p = Predictions.from_arrays(z, y)
    g = parse_grid("0.2:5:0.2")
    for binning in ("width", "mass"):
        for objective in ("ece", "nll"):
            ts = fit_temperature_grid(p, grid=g, objective=objective, n_bins=10, binning=binning)
            sw = sweep_temperatures(p, g.values, n_bins=10, binning=binning)
            t, value = sw.best(objective)
            assert ts.temperature == t
            assert ts.objective_value == value
            assert ts.values == tuple(getattr(sw, objective).tolist())
            assert (ts.n_bins, ts.binning) == (10, binning)


@pytest.mark.filterwarnings("ignore::calibkit.errors.ConvergenceWarning")
def test_probability_inputs_count_their_zeros() -> None:
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.5, 0.25, 0.25]])
    with pytest.warns(UserWarning, match="2 probabilities are exactly 0"):
        ts = fit_temperature_grid(probs, [0, 1, 2], kind="probs", grid="0.5:2:0.5")
    assert ts.fit is not None and ts.fit.zero_probs == 2
    assert ts.input_kind == "probs"


def test_bad_arguments_are_refused() -> None:
    z, y = _shared_confidence()
    with pytest.raises(UsageError, match="objective must be one of ece, nll"):
        fit_temperature_grid(z, y, grid="1:2:1", objective="brier")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="n_bins"):
        fit_temperature_grid(z, y, grid="1:2:1", n_bins=0)
    with pytest.raises(UsageError, match="needs labels"):
        fit_temperature_grid(z, grid="1:2:1")
    with pytest.raises(UsageError, match="per-bin sums"):
        fit_temperature_grid(z, y, grid="1:10000:1", n_bins=MAX_SWEEP_CELLS // 10000 + 1)
    with pytest.raises(UsageError, match="only confidences"):
        fit_temperature_grid(ConfidenceRows.from_arrays([0.9, 0.6], [1, 0]), grid="1:2:1")


# --------------------------------------------------------------------------------------------
# the calibrator document


def test_calibrator_json_records_objective_and_grid_and_loads_back() -> None:
    z, y = _shared_confidence()
    ts = fit_temperature_grid(z, y, grid="1:3:0.1", objective="ece", n_bins=15)
    assert isinstance(ts, GridTemperatureScaler) and isinstance(ts, TemperatureScaler)
    doc = json.loads(calibrator_json(ts))
    assert doc == json.loads(ts.to_json())
    assert doc["objective"] == "ece"
    grid = doc["grid"]
    assert (grid["spec"], grid["start"], grid["stop"], grid["step"], grid["size"]) == (
        "1:3:0.1",
        1.0,
        3.0,
        0.1,
        21,
    )
    assert (grid["n_bins"], grid["binning"], grid["ties"]) == (15, "width", 1)
    assert len(grid["values"]) == 21 and grid["best"] == ts.objective_value
    assert doc["fit"]["gradient"] is None and doc["fit"]["passes"] == 1
    loaded = TemperatureScaler.from_json(calibrator_json(ts))
    assert loaded.temperature == 1.8 and loaded.n_classes == 2
    assert loaded.fit is not None and loaded.fit.t_max == 3.0


def test_nll_grid_document_has_no_bins() -> None:
    z, y = _shared_confidence()
    doc = json.loads(calibrator_json(fit_temperature_grid(z, y, grid="1:3:0.1", objective="nll")))
    assert doc["objective"] == "nll"
    assert doc["grid"]["n_bins"] is None and doc["grid"]["binning"] is None


def test_exact_fit_document_says_nll_and_no_grid() -> None:
    z, y = _shared_confidence()
    doc = json.loads(calibrator_json(fit_temperature(z, y)))
    assert doc["objective"] == "nll" and doc["grid"] is None
    assert TemperatureScaler.from_json(calibrator_json(fit_temperature(z, y))).fit is not None


def test_grid_dataclass_round_trip() -> None:
    g = parse_grid("0.5:1.5:0.5")
    assert isinstance(g, TemperatureGrid)
    assert g.to_dict() == {"spec": "0.5:1.5:0.5", "start": 0.5, "stop": 1.5, "step": 0.5, "size": 3}


def test_a_probability_grid_fit_counts_its_two_reads() -> None:
    """Review fix: probability inputs take one more read (counting stored zeros), which
    ``passes`` now says; logits take one."""
    from calibkit import progress

    p = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.9, 0.1]])
    y = [0, 1, 1, 0]
    rec = progress.Recorder()
    with progress.reporting(rec):
        ts = fit_temperature_grid(p, y, grid="0.5:2:0.5", objective="nll")
    assert ts.fit.passes == 2
    assert len([t for t in rec.tasks if t.unit == "rows"]) == 2  # each read has its task
    assert fit_temperature_grid(np.log(p), y, grid="0.5:2:0.5", objective="nll").fit.passes == 1
