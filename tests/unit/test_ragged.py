"""Ragged K: questions with different numbers of choices, padded with RAGGED_PAD.

Every number is checked against a per-question reference computed row by row with plain
numpy (each row's own choices only), never against calibkit's own output.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq, minimize_scalar

from calibkit.calibrators.temperature import fit_temperature
from calibkit.errors import InputError
from calibkit.metrics.classwise import class_statistics
from calibkit.metrics.implied import implied_smoothing
from calibkit.metrics.summary import summarize
from calibkit.sources.predictions import (
    RAGGED_PAD,
    Predictions,
    ragged_range,
    refuse_ragged,
)


def _questions(seed: int = 0, n: int = 400) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for _ in range(n):
        k = int(rng.integers(2, 6))
        y = int(rng.integers(0, k))
        z = rng.normal(-4.0, 1.5, size=k)
        z[y] += rng.normal(1.5, 1.0)  # informative, imperfect
        rows.append(z * 1.7)  # over-confident: T > 1 helps
        labels.append(y)
    return rows, np.array(labels)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()  # type: ignore[no-any-return]


def _reference(rows: list[np.ndarray], labels: np.ndarray, n_bins: int = 15) -> dict[str, float]:
    conf, hit, nll, brier = [], [], [], []
    for z, y in zip(rows, labels, strict=True):
        p = _softmax(z)
        conf.append(p.max())
        hit.append(float(np.argmax(p) == y))
        nll.append(-np.log(p[y]))
        onehot = np.zeros(len(z))
        onehot[y] = 1
        brier.append(((p - onehot) ** 2).sum())
    c, h = np.array(conf), np.array(hit)
    ece = 0.0
    for b in range(n_bins):  # equal-width bins (lo, hi], the first also holding 0
        lo, hi = b / n_bins, (b + 1) / n_bins
        m = (c > lo) & (c <= hi) if b else (c <= hi)
        if m.any():
            ece += m.sum() / len(c) * abs(c[m].mean() - h[m].mean())
    return {
        "accuracy": float(h.mean()),
        "nll": float(np.mean(nll)),
        "brier": float(np.mean(brier)),
        "ece": float(ece),
        "mean_confidence": float(c.mean()),
    }


def _reference_temperature(rows: list[np.ndarray], labels: np.ndarray) -> float:
    """The T minimising the mean over questions of -log softmax(z_i / T)[y_i], each question
    over its own choices: scipy's bounded minimiser to bracket it, then the root of the
    derivative in beta = 1 / T (mean of E_p[z] - z_y), found to float64 precision."""

    def nll(t: float) -> float:
        return float(
            np.mean([-np.log(_softmax(z / t)[y]) for z, y in zip(rows, labels, strict=True)])
        )

    def grad(beta: float) -> float:
        return float(
            np.mean([_softmax(beta * z) @ z - z[y] for z, y in zip(rows, labels, strict=True)])
        )

    t0 = float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)
    beta = brentq(grad, 0.5 / t0, 2.0 / t0, xtol=1e-15, rtol=1e-15)
    return 1.0 / float(beta)


def test_from_ragged_pads_and_counts() -> None:
    p = Predictions.from_ragged([[-1.0, -2.0], [-0.5, -3.0, -1.0, -2.0]], [1, 3], source="x")
    assert p.ragged and p.n_classes == 4
    assert p.n_choices is not None and p.n_choices.tolist() == [2, 4]
    assert p.scores.dtype == np.float64
    assert p.scores[0].tolist() == [-1.0, -2.0, RAGGED_PAD, RAGGED_PAD]
    assert p.labels.tolist() == [1, 3]
    assert ragged_range(p) == (2, 4)
    assert "ragged: 2 to 4 choices" in p.kind_reason


def test_equal_lengths_are_not_ragged() -> None:
    p = Predictions.from_ragged([[-1.0, -2.0, -3.0], [-0.5, -3.0, -1.0]], [0, 2])
    assert not p.ragged and p.n_choices is None
    refuse_ragged(p, "class-wise ECE")  # nothing to refuse


@pytest.mark.parametrize(
    ("rows", "labels", "problem"),
    [
        ([[-1.0, -2.0], [-0.5]], [0, 0], "row 1 has 1 choice; a question needs at least 2"),
        ([[-1.0, np.nan]], [0], "row 0 has a log-likelihood of nan"),
        ([[-1.0, -np.inf]], [0], "row 0 has a log-likelihood of -inf"),
        ([[-1.0, -2e11]], [0], "row 0 has a log-likelihood of -2e+11, at or below -1e+11"),
        ([[-1.0, -2.0], [-1.0, -2.0, -3.0]], [0, 3], "row 1: the label 3 is outside [0, 3)"),
        ([[-1.0, -2.0]], [-1], "row 0: the label -1 is outside [0, 2)"),
        ([[-1.0, -2.0]], [0.5], "row 0: the label 0.5 is not an integer"),
        ([[-1.0, -2.0]], [0, 1], "1 rows of choices but labels have shape (2,)"),
        ([], [], "no rows"),
    ],
)
def test_from_ragged_refuses(rows: list[list[float]], labels: list[float], problem: str) -> None:
    with pytest.raises(InputError) as err:
        Predictions.from_ragged(rows, labels, source="q.jsonl")
    assert str(err.value).startswith("q.jsonl: ")
    assert problem in str(err.value)


def test_row_names_in_messages() -> None:
    with pytest.raises(InputError, match="line 7 has 1 choice"):
        Predictions.from_ragged([[-1.0, -2.0], [-3.0]], [0, 0], row_names=["line 3", "line 7"])


def test_partitions_slice_n_choices() -> None:
    rows, labels = _questions(n=50)
    p = Predictions.from_ragged(rows, labels)
    plan = p.partitions(10, 5)
    parts = plan.parts
    got = np.concatenate([part.source.n_choices for part in parts])
    assert p.n_choices is not None
    assert got.tolist() == p.n_choices.tolist()
    assert all(part.source.ragged for part in parts if part.source.n_choices is not None)


@pytest.mark.parametrize("chunk_rows", [None, 7])
def test_summary_matches_per_question_reference(chunk_rows: int | None) -> None:
    rows, labels = _questions()
    p = Predictions.from_ragged(rows, labels)
    got = summarize(p, chunk_rows=chunk_rows)
    ref = _reference(rows, labels)
    for name, value in ref.items():
        assert getattr(got, name) == pytest.approx(value, rel=1e-12, abs=1e-12), name


def test_summary_differs_from_an_unpadded_guess() -> None:
    # the test can fail: padding with -50 instead of RAGGED_PAD leaves mass on the pads
    rows, labels = _questions(n=60)
    k = max(len(r) for r in rows)
    bad = np.full((len(rows), k), -8.0)
    for i, r in enumerate(rows):
        bad[i, : len(r)] = r
    wrong = summarize(Predictions.from_arrays(bad, labels, kind="logits"))
    assert abs(wrong.nll - _reference(rows, labels)["nll"]) > 1e-6


def test_temperature_matches_per_question_reference() -> None:
    rows, labels = _questions()
    p = Predictions.from_ragged(rows, labels)
    t = fit_temperature(p).temperature
    assert t == pytest.approx(_reference_temperature(rows, labels), rel=1e-9)
    assert t > 1.0


def test_temperature_g0_uses_real_choices_only() -> None:
    # every question is answered wrongly with confidence: T -> t_max. g(0+) over the padded
    # row (pads in the mean) is hugely negative and would hide that bound; over real choices
    # it is positive, and the fit stops at t_max as the per-question model does.
    from calibkit.calibrators.temperature import _real_mean

    zc = np.array([[0.0, -2.0, RAGGED_PAD], [0.0, -1.0, -3.0]])
    assert _real_mean(zc).tolist() == [-1.0, pytest.approx(-4.0 / 3)]
    assert np.mean(zc, axis=1)[0] < -1e11  # what the plain mean would have given


def test_torch_backend_matches() -> None:
    pytest.importorskip("torch")
    rows, labels = _questions(seed=3)
    p = Predictions.from_ragged(rows, labels)
    ref = _reference(rows, labels)
    got = summarize(p, device="cpu")
    for name, value in ref.items():
        assert getattr(got, name) == pytest.approx(value, rel=1e-9, abs=1e-12), name
    t = fit_temperature(p, device="cpu").temperature
    assert t == pytest.approx(_reference_temperature(rows, labels), rel=1e-9)


def test_classwise_refused_with_one_message() -> None:
    rows, labels = _questions(n=30)
    p = Predictions.from_ragged(rows, labels, source="mmlu.jsonl")
    with pytest.raises(InputError) as err:
        class_statistics(p)
    msg = str(err.value)
    assert msg.startswith("mmlu.jsonl: class-wise statistics need")
    assert "between 2 and 5 choices per question" in msg


def test_implied_smoothing_not_available() -> None:
    rows, labels = _questions(n=30)
    p = Predictions.from_ragged(rows, labels)
    got = implied_smoothing(p)
    assert got.alpha is None and "choices" in got.reason


def test_views_pass_ragged_on() -> None:
    from calibkit.sources.predictions import SourceView

    rows, labels = _questions(n=30)
    p = Predictions.from_ragged(rows, labels)

    class V(SourceView):
        def __init__(self, base: Predictions) -> None:
            self.base = base

    assert V(p).ragged
    assert ragged_range(V(p)) == (2, 5)
    with pytest.raises(InputError, match="between 2 and 5"):
        refuse_ragged(V(p), "class-wise ECE")


def test_per_class_calibrators_are_refused_at_fit_and_apply() -> None:
    from calibkit.calibrators import registry
    from calibkit.calibrators.base import CalibratedPredictions

    rows, labels = _questions(n=80)
    ragged = Predictions.from_ragged(rows, labels, source="mc.jsonl")
    rng = np.random.default_rng(1)
    full = Predictions.from_arrays(rng.normal(size=(80, 5)), rng.integers(0, 5, 80))
    for method, options in (
        ("vector", {}),
        ("matrix", {}),
        ("ets", {}),
        ("platt", {"reduction": "ova"}),
        ("histogram", {"reduction": "ova"}),
    ):
        cls = registry.get(method)
        with pytest.raises(InputError, match=r"^mc\.jsonl: .* needs the same classes in every row"):
            cls.fit_source(ragged, **options)
        fitted = cls.fit_source(full, **options)
        with pytest.raises(InputError, match="between 2 and 5 choices per question"):
            CalibratedPredictions(ragged, fitted)
    for method in ("temperature", "platt", "isotonic", "beta", "histogram"):  # top-label: fine
        fitted = registry.get(method).fit_source(ragged)
        got = summarize(CalibratedPredictions(ragged, fitted))
        assert got.n == 80


def test_top_reduction_keeps_pads_at_zero() -> None:
    from calibkit.calibrators import registry

    rows, labels = _questions(n=80)
    ragged = Predictions.from_ragged(rows, labels)
    fitted = registry.get("platt").fit_source(ragged)
    probs = fitted.calibrated_scores(ragged.scores, "logits")
    assert ragged.n_choices is not None
    pads = np.arange(ragged.n_classes)[None, :] >= ragged.n_choices[:, None]
    assert (probs[pads] == 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
