"""k-fold cross-validation of hyper-parameters (:mod:`calibkit.calibrators.cv`) (#15).

Toy methods registered here: ``toy-temperature`` (a temperature given as its one
hyper-parameter, nothing fitted) and ``toy-shrunk-bias`` (per-class log-frequency biases of
the training rows, shrunk by ``1 / (1 + shrink)``), so the held-out NLL of each grid point can be
recomputed independently in numpy from the fold hash; the chosen point must be its argmin.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import numpy as np
import pytest
from numpy.typing import NDArray

from calibkit.calibrators import registry
from calibkit.calibrators.base import CalibratorBase, Hyperparameter
from calibkit.calibrators.cv import (
    CVResult,
    choose,
    cross_validate,
    odir_grid,
)
from calibkit.engine.passes import run_pass
from calibkit.errors import InputError, UsageError
from calibkit.metrics.softmax import log_softmax
from calibkit.sources.folds import fold_of
from calibkit.sources.predictions import Predictions, PredictionSource


class ToyTemperature(CalibratorBase):
    method: ClassVar[str] = "toy-temperature"
    title: ClassVar[str] = "toy temperature"
    abbreviation: ClassVar[str] = "TT"
    calibrated_as: ClassVar[str] = "toy-scaled"
    symbols: ClassVar[Mapping[str, str]] = {"temperature": "T"}
    changes_argmax: ClassVar[bool] = False
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = (
        Hyperparameter("temperature", float, "the temperature", minimum=0, exclusive_minimum=True),
    )
    seen: ClassVar[list[int]] = []

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature

    @classmethod
    def fit_source(
        cls,
        source: PredictionSource,
        *,
        chunk_rows: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> Any:
        cls.seen.append(source.n_rows)
        return cls(float(options["temperature"]))

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, float]) -> Any:
        return cls(parameters["temperature"])

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<calibrator>") -> ToyTemperature:
        return cls(doc["temperature"])

    def parameters(self) -> dict[str, float]:
        return {"temperature": self.temperature}

    def calibrated_logits(self, scores: NDArray[Any], kind: str) -> NDArray[np.float64]:
        return np.asarray(scores, dtype=np.float64) / self.temperature

    def to_dict(self) -> dict[str, Any]:
        return {"calibkit_calibrator": 1, "method": self.method, "temperature": self.temperature}


class ToyShrunkBias(ToyTemperature):
    """Adds ``log(class frequency on the training rows) / (1 + shrink)`` to the logits."""

    method: ClassVar[str] = "toy-shrunk-bias"
    symbols: ClassVar[Mapping[str, str]] = {"shrink": "s"}
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = (
        Hyperparameter("shrink", float, "shrinkage", minimum=0),
    )

    def __init__(self, bias: NDArray[np.float64], shrink: float) -> None:
        self.bias, self.shrink = bias, shrink

    @classmethod
    def fit_source(
        cls,
        source: PredictionSource,
        *,
        chunk_rows: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> Any:
        counts = np.zeros(source.n_classes)

        def add(c: NDArray[np.float64]) -> None:
            counts[:] += c

        run_pass(
            source,
            lambda ch: np.bincount(ch.labels, minlength=source.n_classes).astype(float),
            add,
            chunk_rows=chunk_rows,
        )
        assert counts.sum() == source.n_rows  # the view's n_rows is what it streams
        return cls(np.log(counts / counts.sum()), float(options["shrink"]))

    def parameters(self) -> dict[str, float]:
        return {"shrink": self.shrink}

    def calibrated_logits(self, scores: NDArray[Any], kind: str) -> NDArray[np.float64]:
        return np.asarray(scores, dtype=np.float64) + self.bias / (1 + self.shrink)


@pytest.fixture(autouse=True)
def _toys() -> Iterator[None]:
    for cls in (ToyTemperature, ToyShrunkBias):
        registry.register(cls.method, cls)
    yield
    for cls in (ToyTemperature, ToyShrunkBias):
        registry.unregister(cls.method)


def _tempered(n: int, k: int, temperature: float, seed: int = 0) -> Predictions:
    """Logits whose labels are drawn from softmax(z / temperature): that temperature is right."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 3
    p = np.exp(log_softmax(z / temperature))
    y = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return Predictions.from_arrays(z, y)


def _independent_curve(
    z: NDArray[Any], y: NDArray[Any], temps: list[float], folds: int, seed: int
) -> NDArray[np.float64]:
    fold = fold_of(np.arange(len(y)), folds=folds, seed=seed)
    out = []
    for t in temps:
        nll = -log_softmax(z / t)[np.arange(len(y)), y]
        out.append(np.mean([nll[fold == f].mean() for f in range(folds)]))
    return np.asarray(out)


@pytest.mark.parametrize("chunk_rows", [None, 97])
def test_cv_chooses_the_argmin_of_the_held_out_nll(chunk_rows: int | None) -> None:
    preds = _tempered(3000, 5, temperature=2.0)
    temps = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0]
    ToyTemperature.seen.clear()
    res = cross_validate(
        registry.get("toy-temperature"),
        preds,
        [{"temperature": t} for t in temps],
        folds=4,
        seed=3,
        chunk_rows=chunk_rows,
    )
    want = _independent_curve(preds.scores, preds.labels, temps, 4, 3)
    got = np.array([p["nll"] for p in res.curve])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert res.chosen == {"temperature": temps[int(np.argmin(want))]} == {"temperature": 2.0}
    assert [p["temperature"] for p in res.curve] == temps
    assert all(len(p["nll_folds"]) == 4 for p in res.curve)
    assert res.curve[0]["std"] == pytest.approx(np.std(res.curve[0]["nll_folds"]))
    sizes = np.bincount(fold_of(np.arange(3000), folds=4, seed=3), minlength=4)
    assert res.fold_rows == tuple(sizes.tolist()) and sum(res.fold_rows) == 3000
    # every fit saw the training rows of one fold: 6 points x 4 folds
    assert ToyTemperature.seen == [3000 - s for _ in temps for s in sizes]


def test_cv_fits_on_the_training_rows_only_and_does_not_depend_on_chunks() -> None:
    rng = np.random.default_rng(1)
    n, k = 2000, 4
    z = rng.normal(size=(n, k))
    y = rng.choice(k, size=n, p=[0.55, 0.25, 0.15, 0.05])  # a strong prior the bias learns
    preds = Predictions.from_arrays(z, y)
    grid = [{"shrink": s} for s in (0.0, 1.0, 10.0, 1000.0)]
    res = cross_validate(ToyShrunkBias, preds, grid, folds=5, seed=11)
    fold = fold_of(np.arange(n), folds=5, seed=11)
    for point, entry in zip(grid, res.curve, strict=True):
        per = []
        for f in range(5):
            train = y[fold != f]
            bias = np.log(np.bincount(train, minlength=k) / len(train)) / (1 + point["shrink"])
            held = fold == f
            per.append(-log_softmax(z[held] + bias)[np.arange(held.sum()), y[held]].mean())
        np.testing.assert_allclose(entry["nll_folds"], per, rtol=1e-12)
    assert res.chosen == {"shrink": 0.0}
    other = cross_validate(ToyShrunkBias, preds, grid, folds=5, seed=11, chunk_rows=37)
    for a, b in zip(res.curve, other.curve, strict=True):
        np.testing.assert_allclose(a["nll_folds"], b["nll_folds"], rtol=1e-12)


def test_ties_go_to_the_stronger_regularisation() -> None:
    curve = [
        {"lambda": 1.0, "mu": 5.0, "nll": 0.5},
        {"lambda": 10.0, "mu": 1.0, "nll": 0.5 * (1 + 1e-14)},
        {"lambda": 10.0, "mu": 0.1, "nll": 0.5},
        {"lambda": 0.1, "mu": 0.1, "nll": 0.7},
        {"lambda": 100.0, "mu": 100.0, "nll": math.nan},
    ]
    assert choose(curve, ["lambda", "mu"]) == 1
    assert choose([{"lambda": 1.0, "nll": 0.5}, {"lambda": 2.0, "nll": 0.50001}], ["lambda"]) == 0
    assert choose([{"lambda": 1.0, "nll": math.inf}], ["lambda"]) == -1
    # a parameter that changes nothing: every point ties exactly, the largest wins
    preds = _tempered(200, 3, temperature=1.0)
    grid = [{"temperature": 1.0, "strength": s} for s in (0.1, 10.0, 1.0)]
    res = cross_validate(_Ignoring, preds, grid, folds=2)
    assert len({p["nll"] for p in res.curve}) == 1
    assert res.chosen == {"temperature": 1.0, "strength": 10.0}


class _Ignoring(ToyTemperature):
    """Accepts a ``strength`` that changes nothing."""


def test_the_result_round_trips_through_json() -> None:
    preds = _tempered(600, 3, temperature=1.5, seed=4)
    res = cross_validate(
        ToyTemperature, preds, [{"temperature": t} for t in (1.0, 1.5, 2.0)], folds=3, seed=9
    )
    doc = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert doc["folds"] == 3 and doc["seed"] == 9 and doc["criterion"] == "nll"
    back = CVResult.from_dict(doc, source="cal.json")
    assert back == res
    # a non-finite score is written as null and read back as NaN
    bad = CVResult(
        chosen={"lambda": 1.0},
        curve=({"lambda": 1.0, "nll": 0.3, "nll_folds": [0.3, 0.3], "std": 0.0},
               {"lambda": 2.0, "nll": math.inf, "nll_folds": [math.inf, 0.3], "std": math.nan}),
        folds=2,
        seed=0,
    )  # fmt: skip
    text = json.dumps(bad.to_dict(), allow_nan=False)
    back = CVResult.from_dict(json.loads(text), source="cal.json")
    assert math.isnan(back.curve[1]["nll"]) and math.isnan(back.curve[1]["nll_folds"][0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("curve"), "missing 'curve'"),
        (lambda d: d.update(folds=1), "folds must be an integer >= 2"),
        (lambda d: d.update(folds=True), "folds must be an integer >= 2"),
        (lambda d: d.update(seed="0"), "seed must be an integer"),
        (lambda d: d.update(chosen={"temperature": 7.0}), "is not on the curve"),
        (lambda d: d.update(chosen={"temperature": "x"}), "chosen.temperature must be a finite"),
        (lambda d: d.update(curve=[]), "curve must be a non-empty list"),
        (lambda d: d["curve"][0].pop("nll"), "curve\\[0\\] has no 'nll'"),
        (lambda d: d["curve"][1].update(nll_folds=[1.0]), "curve\\[1\\].nll_folds must be a list"),
        (lambda d: d["curve"][1].update(nll="low"), "curve\\[1\\].nll must be a number or null"),
        (lambda d: d["curve"][1].update(lam=1.0), "curve\\[1\\] has parameters"),
        (lambda d: d.update(fold_rows=[1, 2]), "fold_rows has 2 entries for 3 folds"),
        (lambda d: d.update(criterion="ece"), "criterion must be 'nll'"),
    ],
)
def test_a_bad_cv_record_is_an_input_error_naming_the_file(change: Any, message: str) -> None:
    preds = _tempered(300, 3, temperature=1.0)
    res = cross_validate(ToyTemperature, preds, [{"temperature": t} for t in (1.0, 2.0)], folds=3)
    doc = res.to_dict()
    change(doc)
    with pytest.raises(InputError, match=message) as err:
        CVResult.from_dict(doc, source="cal.json")
    assert str(err.value).startswith("cal.json: cv: ")
    with pytest.raises(InputError, match=r"^cal\.json: cv: must be a JSON object"):
        CVResult.from_dict([1], source="cal.json")


def test_too_few_rows_for_the_folds_is_one_usage_error() -> None:
    preds = Predictions.from_arrays(np.zeros((6, 2)), np.zeros(6, dtype=int), source="val.npz")
    with pytest.raises(UsageError, match=r"^val.npz: too few rows for 5-fold cross-validation: "
                       r"fold \d of 6 rows gets [01] ") as err:  # fmt: skip
        cross_validate(ToyTemperature, preds, [{"temperature": 1.0}], folds=5)
    assert "\n" not in str(err.value)
    for folds in (1, 0, 2.5, True):
        with pytest.raises(UsageError, match=r"params\[.folds.\]: must be an integer >= 2"):
            cross_validate(ToyTemperature, preds, [{"temperature": 1.0}], folds=folds)  # type: ignore[arg-type]


def test_bad_grids_are_usage_errors() -> None:
    preds = _tempered(100, 3, temperature=1.0)
    with pytest.raises(UsageError, match="at least one grid point"):
        cross_validate(ToyTemperature, preds, [])
    with pytest.raises(UsageError, match="must name the same parameters"):
        cross_validate(ToyTemperature, preds, [{"temperature": 1.0}, {"t": 2.0}])
    with pytest.raises(UsageError, match="both fixed and on the grid"):
        cross_validate(ToyTemperature, preds, [{"temperature": 1.0}], temperature=2.0)


class _Diverging(ToyTemperature):
    def calibrated_logits(self, scores: NDArray[Any], kind: str) -> NDArray[np.float64]:
        out = np.zeros(scores.shape)
        out[:, 0] = -np.inf if self.temperature > 0 else 0.0
        return out


def test_an_overflowing_held_out_nll_is_the_metrics_one_line_error() -> None:
    """The held-out NLL is calibkit's own metric, which refuses a non-finite NLL."""
    preds = Predictions.from_arrays(np.zeros((50, 2)), np.zeros(50, dtype=int), source="v.npz")
    with pytest.raises(InputError, match=r"^v\.npz: the NLL overflows float64"):
        cross_validate(_Diverging, preds, [{"temperature": 1.0}], folds=2)


def test_odir_grid_follows_kull_2019_ranges() -> None:
    g10, g100, g1000 = odir_grid(10), odir_grid(100), odir_grid(1000)
    assert [p["lambda"] for p in g10] == [10.0**e for e in range(-5, 7)]
    assert [p["lambda"] for p in g100] == [10.0**e for e in range(-2, 7)]
    assert [p["lambda"] for p in g1000] == [10.0**e for e in range(-2, 7, 2)]
    assert all(p["mu"] == p["lambda"] for p in g10 + g100 + g1000)
    assert odir_grid(2) == g10 and odir_grid(99) == g10 and odir_grid(999) == g100
    fixed = odir_grid(100, lambda_=3.0)
    assert [p["mu"] for p in fixed] == [10.0**e for e in range(-2, 7)]
    assert {p["lambda"] for p in fixed} == {3.0}
    assert {p["mu"] for p in odir_grid(10, mu=0.0)} == {0.0}
    assert odir_grid(10, lambda_=0, mu=0) == [{"lambda": 0.0, "mu": 0.0}]
    for bad in (-1.0, math.inf, math.nan, "1"):
        with pytest.raises(UsageError, match="lambda"):
            odir_grid(10, lambda_=bad)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="at least 2 classes"):
        odir_grid(1)
