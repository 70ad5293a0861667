"""matrix-odir and dirichlet-odir choose λ, μ by cross-validation when not given (#15).

Small synthetic data (K = 3), so each of the grid's fits is quick: the chosen values are on
the grid of :func:`~calibkit.calibrators.cv.odir_grid`, the CV record is in the calibrator's
JSON and reads back, the chosen point minimises the recorded curve, a given λ fixes that axis,
and a refit with the chosen values gives the same calibrator.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from calibkit.calibrators import registry
from calibkit.calibrators.cv import CVResult, choose, cross_validate, odir_grid
from calibkit.sources.predictions import Predictions

ODIR = ("matrix-odir", "dirichlet-odir")


def _method(name: str) -> Any:
    cls = registry.lookup(name)
    if cls is None:
        pytest.skip(f"{name} is not registered on this branch")
    return cls


def _data(n: int = 400, k: int = 3, seed: int = 0) -> Predictions:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2.5
    p = np.exp(z / 2 - np.logaddexp.reduce(z / 2, axis=1, keepdims=True))
    y = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return Predictions.from_arrays(z, y, source="val.npz")


@pytest.mark.parametrize("name", ODIR)
def test_without_lambda_and_mu_they_are_chosen_by_cv(name: str) -> None:
    cls = _method(name)
    preds = _data()
    cal = cls.fit_source(preds, folds=3, seed=2)
    doc = json.loads(json.dumps(cal.to_dict(), allow_nan=False))
    assert "cv" in doc and doc["cv"] is not None
    cv = CVResult.from_dict(doc["cv"], source="cal.json")
    assert cv.folds == 3 and cv.seed == 2 and sum(cv.fold_rows) == preds.n_rows
    grid = odir_grid(preds.n_classes)
    assert [{"lambda": p["lambda"], "mu": p["mu"]} for p in cv.curve] == grid
    assert cv.chosen in grid
    assert cv.curve[choose(cv.curve, ["lambda", "mu"])]["lambda"] == cv.chosen["lambda"]
    params = cal.parameters()
    assert params["lambda"] == cv.chosen["lambda"] and params["mu"] == cv.chosen["mu"]
    # the same CV run by hand gives the same curve
    again = cross_validate(cls, preds, grid, folds=3, seed=2)
    assert again.chosen == cv.chosen
    np.testing.assert_allclose(
        [p["nll"] for p in again.curve], [p["nll"] for p in cv.curve], rtol=1e-12
    )
    # and the calibrator read back from its JSON keeps the record
    back = registry.from_dict(doc, source="cal.json")
    assert back.to_dict()["cv"] == doc["cv"]
    # given both, no cross-validation
    fixed = cls.fit_source(preds, **{"lambda": cv.chosen["lambda"], "mu": cv.chosen["mu"]})
    assert fixed.to_dict().get("cv") is None
    np.testing.assert_allclose(
        fixed.transform(preds.scores[:50]), cal.transform(preds.scores[:50]), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize("name", ODIR)
def test_a_given_lambda_fixes_that_axis(name: str) -> None:
    cls = _method(name)
    cal = cls.fit_source(_data(seed=5), folds=2, **{"lambda": 0.5})
    cv = CVResult.from_dict(cal.to_dict()["cv"], source="cal.json")
    assert {p["lambda"] for p in cv.curve} == {0.5}
    assert [p["mu"] for p in cv.curve] == [p["mu"] for p in odir_grid(3, lambda_=0.5)]
    assert cal.parameters()["lambda"] == 0.5 and cv.chosen["lambda"] == 0.5


def test_too_few_rows_for_the_folds_is_a_usage_error() -> None:
    from calibkit.errors import UsageError

    cls = _method("matrix-odir")
    with pytest.raises(UsageError, match="too few rows for 5-fold cross-validation"):
        cls.fit_source(_data(n=7))
