"""The linear calibrators (vector, matrix, matrix-odir, dirichlet-odir): streaming derivatives
against finite differences, chunk-size invariance, the JSON document and its refusals, the
honest stop without a minimum, inputs that must be refused or survive (#15)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from calibkit.calibrators import registry
from calibkit.calibrators.base import read_hyperparameters
from calibkit.calibrators.dirichlet import DirichletCalibrator
from calibkit.calibrators.linear import LinearCalibrator, fit_linear
from calibkit.calibrators.matrix import MatrixScaler, OdirMatrixScaler
from calibkit.calibrators.outcome import FitOutcome
from calibkit.calibrators.vector import VectorScaler
from calibkit.errors import InputError, UsageError
from calibkit.sources.predictions import Predictions

METHODS: list[tuple[type[LinearCalibrator], dict[str, Any]]] = [
    (VectorScaler, {}),
    (MatrixScaler, {}),
    (OdirMatrixScaler, {"lambda": 0.5, "mu": 0.2}),
    (DirichletCalibrator, {"lambda": 0.5, "mu": 0.2}),
]
IDS = [cls.method for cls, _ in METHODS]


def _data(n: int, k: int, seed: int = 0, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy logits: labels drawn from a softmax of a distorted version (not separable)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2.0
    true = 0.6 * z + rng.normal(size=(1, k)) * 0.3
    p = np.exp(true - true.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    return z * scale, y


def _problem(cls: type[LinearCalibrator], k: int, opts: dict[str, Any]) -> Any:
    return cls.problem(k, lam=opts.get("lambda", 0.0), mu=opts.get("mu", 0.0))


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize(("cls", "opts"), METHODS, ids=IDS)
def test_streaming_gradient_hessian_match_finite_differences(
    cls: type[LinearCalibrator], opts: dict[str, Any], soft: bool
) -> None:
    k, n = 4, 60
    z, y = _data(n, k, seed=1)
    labels: Any = y
    if soft:
        rng = np.random.default_rng(5)
        t = rng.dirichlet(np.ones(k), size=n)
        labels = t
    src = Predictions.from_arrays(z, labels, kind="logits")
    problem = _problem(cls, k, opts)
    vg, vgh, hvp, _ = problem.evaluators(src, 7)
    rng = np.random.default_rng(2)
    theta = rng.normal(size=problem.n_params) * 0.5
    f, g = vg(theta)
    eps = 1e-6
    num = np.array(
        [(vg(theta + eps * e)[0] - vg(theta - eps * e)[0]) / (2 * eps) for e in np.eye(theta.size)]
    )
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)
    f2, g2, h = vgh(theta)
    assert f2 == pytest.approx(f, rel=1e-14)
    np.testing.assert_allclose(g2, g, rtol=1e-13, atol=1e-15)
    v = rng.normal(size=theta.size)
    hv = hvp(theta, v)
    num_hv = (vg(theta + eps * v)[1] - vg(theta - eps * v)[1]) / (2 * eps)
    np.testing.assert_allclose(hv, num_hv, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(h @ v, hv, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h, h.T, atol=1e-14)


@pytest.mark.parametrize(("cls", "opts"), METHODS, ids=IDS)
@pytest.mark.parametrize("solver", ["newton", "newton-cg"])
def test_fit_converges_and_is_chunk_size_invariant(
    cls: type[LinearCalibrator], opts: dict[str, Any], solver: str
) -> None:
    z, y = _data(400, 5, seed=3)
    src = Predictions.from_arrays(z, y, kind="logits")
    fits = [cls.fit_source(src, chunk_rows=c, solver=solver, **opts) for c in (7, 1000, None)]
    for fit in fits:
        assert fit.fit is not None and fit.fit.converged, fit.fit
        assert fit.fit.solver == solver
        assert fit.fit.n == 400
    ref = fits[-1].theta
    for fit in fits[:-1]:
        np.testing.assert_allclose(fit.theta, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize(("cls", "opts"), METHODS, ids=IDS)
def test_json_round_trip_through_the_registry(
    cls: type[LinearCalibrator], opts: dict[str, Any], tmp_path: Path
) -> None:
    z, y = _data(300, 3, seed=4)
    cal = cls.fit_source(Predictions.from_arrays(z, y, kind="logits"), **opts)
    path = tmp_path / "cal.json"
    path.write_text(cal.to_json())
    back = registry.load(path)
    assert type(back) is cls
    np.testing.assert_array_equal(back.transform(z), cal.transform(z))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(back.transform(p, "probs"), cal.transform(p, "probs"))
    assert back.parameters() == cal.parameters()
    details = cal.fit_details()
    assert FitOutcome.from_dict(details["fit"]) == cal.fit
    assert back.fit == cal.fit
    assert list(cal.parameters()) == list(cal.symbols)
    assert cal.changes_argmax is True and cal.output_kind == "logits"
    assert cal.parameters()["n_parameters"] == (6 if cls is VectorScaler else 12)
    if cls.regularised:
        assert cal.parameters()["lambda"] == 0.5 and cal.parameters()["mu"] == 0.2


def _doc(cls: type[LinearCalibrator]) -> dict[str, Any]:
    z, y = _data(200, 3, seed=6)
    opts = {"lambda": 1.0, "mu": 1.0} if cls.regularised else {}
    return cls.fit_source(Predictions.from_arrays(z, y, kind="logits"), **opts).to_dict()


BAD_EDITS: list[tuple[str, Any]] = [
    ("n_classes", 1),
    ("n_classes", "3"),
    ("b", [0.0, 1.0]),
    ("b", [0.0, "x", 1.0]),
    ("b", [0.0, 1e400, 1.0]),
    ("b", None),
    ("weights", [[1.0, 0.0], [0.0, 1.0]]),
    ("weights", "identity"),
    ("fit", {"objective": 1.0}),
    ("fit", [1]),
    ("input", "confidences"),
    ("cv", [1, 2]),
]


@pytest.mark.parametrize(("key", "value"), BAD_EDITS)
@pytest.mark.parametrize("cls", [VectorScaler, MatrixScaler, DirichletCalibrator], ids=str)
def test_bad_documents_are_input_errors_naming_the_file(
    cls: type[LinearCalibrator], key: str, value: Any, tmp_path: Path
) -> None:
    doc = _doc(cls)
    doc[cls.weights_key if key == "weights" else key] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))  # 1e400 becomes Infinity in the text
    with pytest.raises(InputError) as err:
        registry.load(path)
    assert str(err.value).startswith(str(path) + ": ")
    assert "\n" not in str(err.value)


def test_odir_documents_need_lambda_and_mu_and_methods_are_not_mixed(tmp_path: Path) -> None:
    doc = _doc(OdirMatrixScaler)
    for key, value in (("lambda", None), ("mu", -1.0)):
        bad = dict(doc, **{key: value})
        with pytest.raises(InputError, match=key):
            OdirMatrixScaler.from_dict(bad, source="x.json")
    with pytest.raises(InputError, match="not a matrix one"):
        MatrixScaler.from_dict(doc, source="x.json")
    with pytest.raises(UsageError, match="calibrator JSON"):
        MatrixScaler.from_parameters({"n_parameters": 12.0})


def test_unregularised_matrix_without_a_minimum_stops_and_says_so() -> None:
    # 40 rows, 20 classes: one affine map separates them (no minimum of the NLL)
    rng = np.random.default_rng(0)
    k, n = 20, 40
    z = rng.normal(size=(n, k))
    y = rng.integers(0, k, n)
    src = Predictions.from_arrays(z, y, kind="logits")
    cal = MatrixScaler.fit_source(src, max_iter=6)
    assert cal.fit is not None
    assert cal.fit.converged is False
    assert cal.fit.iterations == 6
    assert "stopped at max_iter=6" in cal.fit.message and "no minimum" in cal.fit.message
    assert np.isfinite(cal.weights).all()
    cal2 = MatrixScaler.fit_source(src, max_passes=15)
    assert cal2.fit is not None and cal2.fit.converged is False
    assert cal2.fit.passes <= 15 and "max_passes" in cal2.fit.message
    # the same data with ODIR has a minimum
    odir = OdirMatrixScaler.fit_source(src, **{"lambda": 1.0, "mu": 1.0})
    assert odir.fit is not None and odir.fit.converged


def test_dirichlet_refuses_exact_zero_probabilities_unless_floored(tmp_path: Path) -> None:
    p = np.array([[0.7, 0.3, 0.0], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2]] * 10)
    y = np.array([0, 1, 2, 1] * 10)
    path = tmp_path / "val.npz"
    np.savez(path, probs=p, labels=y)
    from calibkit.loaders import read_predictions

    src = read_predictions(path)
    assert src.kind == "probs"
    with pytest.raises(InputError) as err:
        DirichletCalibrator.fit_source(src, **{"lambda": 1.0, "mu": 1.0})
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and "floor" in msg and "\n" not in msg
    cal = DirichletCalibrator.fit_source(src, **{"lambda": 1.0, "mu": 1.0, "floor": 1e-12})
    assert cal.fit is not None and cal.fit.converged and cal.floor == 1e-12
    out = cal.transform(p, "probs")
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    back = DirichletCalibrator.from_json(cal.to_json())
    assert back.floor == 1e-12
    np.testing.assert_array_equal(back.transform(p, "probs"), out)
    # a calibrator without a floor refuses zeros at apply time too
    no_floor = DirichletCalibrator(cal.weights, cal.bias, lam=1.0, mu=1.0)
    with pytest.raises(InputError, match="floor"):
        no_floor.transform(p, "probs")
    # vector/matrix scaling read log p as temperature scaling does (no refusal)
    assert VectorScaler.fit_source(src).fit is not None


def test_huge_logits_give_finite_results() -> None:
    z, y = _data(200, 4, seed=7)
    big = np.sign(z) * 1e4
    big[::3] = z[::3]
    for cls, opts in METHODS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cal = cls.fit_source(Predictions.from_arrays(big, y, kind="logits"), **opts)
        assert cal.fit is not None and np.isfinite(cal.fit.objective)
        assert np.isfinite(cal.weights).all() and np.isfinite(cal.bias).all()
        out = cal.transform(big, "logits")
        assert np.isfinite(out).all()
        probs = cal.transform(np.exp(big - big.max(axis=1, keepdims=True)) + 1e-300, "probs")
        assert np.isfinite(probs).all()


def test_binary_models_with_one_score_per_row() -> None:
    rng = np.random.default_rng(8)
    s = rng.normal(size=300) * 3
    y = (rng.random(300) < 1 / (1 + np.exp(-0.5 * s))).astype(int)
    src = Predictions.from_arrays(s, y)
    assert src.binary and src.n_classes == 2
    for cls, opts in METHODS:
        cal = cls.fit_source(src, **opts)
        assert cal.fit is not None and cal.fit.converged
        assert cal.n_classes == 2


def test_hyperparameters_parse_with_aliases_and_refuse_unknown_names() -> None:
    got = read_hyperparameters(OdirMatrixScaler, {"lam": "0.1", "mu": "2", "max_iter": "5"})
    assert got == {"lambda": 0.1, "mu": 2.0, "max_iter": 5}
    assert {h.name for h in DirichletCalibrator.hyperparameters} >= {
        "lambda",
        "mu",
        "folds",
        "seed",
        "max_iter",
        "floor",
    }
    with pytest.raises(UsageError):
        read_hyperparameters(VectorScaler, {"lambda": "1"})
    z, y = _data(50, 3)
    src = Predictions.from_arrays(z, y, kind="logits")
    with pytest.raises(UsageError, match="no parameter"):
        VectorScaler.fit_source(src, lam=1.0)
    with pytest.raises(UsageError, match="max_iter"):
        VectorScaler.fit_source(src, max_iter=0)
    with pytest.raises(UsageError, match="given twice"):
        OdirMatrixScaler.fit_source(src, lam=1.0, **{"lambda": 1.0, "mu": 1.0})


def test_fit_linear_from_identity_reaches_the_same_optimum() -> None:
    z, y = _data(300, 4, seed=9)
    src = Predictions.from_arrays(z, y, kind="logits")
    problem = VectorScaler.problem(4)
    w0, _, out0 = fit_linear(problem, src)
    w1, _, out1 = fit_linear(problem, src, init=problem.join(np.ones(4), np.zeros(4)))
    assert out0.converged and out1.converged
    np.testing.assert_allclose(w1, w0, rtol=1e-8)


def _block_diagonal(problem: Any, h: np.ndarray) -> np.ndarray:
    """The per-class diagonal blocks of a full Hessian (zero elsewhere)."""
    k = problem.n_classes
    keep = np.zeros_like(h, dtype=bool)
    for j in range(k):
        idx = [j, k + j] if problem.structure == "vector" else range(j * (k + 1), (j + 1) * (k + 1))
        keep[np.ix_(list(idx), list(idx))] = True
    return np.where(keep, h, 0.0)


@pytest.mark.parametrize("blocks", [True, False], ids=["blocks", "diagonal"])
@pytest.mark.parametrize(("cls", "opts"), METHODS, ids=IDS)
def test_preconditioner_inverts_the_hessians_per_class_blocks(
    cls: type[LinearCalibrator], opts: dict[str, Any], blocks: bool, monkeypatch: Any
) -> None:
    import calibkit.calibrators.linear as linear

    if not blocks:
        if cls.structure == "vector":
            pytest.skip("vector always uses its 2 x 2 blocks")
        monkeypatch.setattr(linear, "PRECONDITIONER_MAX_BYTES", 0)
    k = 4
    z, y = _data(80, k, seed=3)
    src = Predictions.from_arrays(z, y, kind="logits")
    problem = _problem(cls, k, opts)
    _, vgh, _, _ = problem.evaluators(src, 9)
    theta = np.random.default_rng(4).normal(size=problem.n_params) * 0.3
    h = vgh(theta)[2]
    m = _block_diagonal(problem, h) if blocks else np.diag(np.diag(h))
    minv = problem.preconditioner(src, 13)(theta)  # chunk size must not matter
    v = np.random.default_rng(5).normal(size=problem.n_params)
    np.testing.assert_allclose(m @ minv(v), v, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("cls", "opts"), METHODS, ids=IDS)
def test_preconditioned_newton_cg_reaches_newtons_optimum_in_fewer_passes(
    cls: type[LinearCalibrator], opts: dict[str, Any]
) -> None:
    from calibkit.calibrators.optimize import minimize

    k = 6
    z, y = _data(400, k, seed=11)
    z = z * np.geomspace(0.05, 20.0, k)  # badly scaled classes: an ill-conditioned Hessian
    src = Predictions.from_arrays(z, y, kind="logits")
    problem = _problem(cls, k, opts)
    vg, vgh, hvp, _ = problem.evaluators(src, None)
    x0 = problem.join(np.ones(k) if problem.structure == "vector" else np.eye(k), np.zeros(k))
    exact = minimize(x0, value_grad=vg, value_grad_hess=vgh, project=problem.project)
    common: dict[str, Any] = {"value_grad": vg, "hessp": hvp, "project": problem.project}
    plain = minimize(x0, **common, max_passes=5000)
    pcg = minimize(x0, **common, max_passes=5000, preconditioner=problem.preconditioner(src, None))
    assert exact.reason == plain.reason == pcg.reason == "converged"
    assert pcg.f <= exact.f + 1e-12
    assert pcg.passes < plain.passes
