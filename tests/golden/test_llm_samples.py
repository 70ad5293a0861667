"""Golden numbers on the SYNTHETIC LLM samples (sample_data/llm/, sample_data/make_llm_samples.py).

The reference here reads the files with ``json`` and computes every number question by question
with plain numpy (each question over its own choices; no padding), independently of calibkit's
readers and passes; the pinned values were computed by this reference, not copied from calibkit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.optimize import brentq

from calibkit.calibrators.temperature import fit_temperature
from calibkit.loaders import ReadOptions, read_predictions
from calibkit.metrics.summary import summarize

LLM = Path(__file__).resolve().parents[2] / "sample_data" / "llm"
LM_EVAL = LLM / "lm_eval_synthetic"


def _questions(path: Path, norm: bool = False) -> tuple[list[np.ndarray], list[int]]:
    rows, labels = [], []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        z = np.array([float(pair[0]) for pair in rec["filtered_resps"]])
        if norm:  # lm-eval's acc_norm: divided by len(choice) in characters
            z = z / np.array([len(c) for c in rec["doc"]["choices"]])
        rows.append(z)
        labels.append(int(rec["target"]))
    return rows, labels


def _all(norm: bool = False) -> tuple[list[np.ndarray], list[int]]:
    rows: list[np.ndarray] = []
    labels: list[int] = []
    for path in sorted(LM_EVAL.glob("samples_*.jsonl")):
        r, y = _questions(path, norm)
        rows += r
        labels += y
    return rows, labels


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()  # type: ignore[no-any-return]


def _ece(conf: np.ndarray, hit: np.ndarray, n_bins: int = 15) -> float:
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        m = (conf > lo) & (conf <= hi) if b else (conf <= hi)
        if m.any():
            total += m.sum() / len(conf) * abs(conf[m].mean() - hit[m].mean())
    return total


def _reference(rows: list[np.ndarray], labels: list[int]) -> dict[str, float]:
    conf, hit, nll, brier = [], [], [], []
    for z, y in zip(rows, labels, strict=True):
        p = _softmax(z)
        conf.append(p.max())
        hit.append(float(p.argmax() == y))
        nll.append(-math.log(p[y]))
        brier.append(float(((p - np.eye(len(z))[y]) ** 2).sum()))
    c, h = np.array(conf), np.array(hit)
    return {
        "n": len(rows),
        "accuracy": float(h.mean()),
        "ece": _ece(c, h),
        "nll": float(np.mean(nll)),
        "brier": float(np.mean(brier)),
    }


def _temperature(rows: list[np.ndarray], labels: list[int]) -> float:
    def grad(beta: float) -> float:
        return float(
            np.mean([_softmax(beta * z) @ z - z[y] for z, y in zip(rows, labels, strict=True)])
        )

    return 1.0 / brentq(grad, 0.05, 20.0, xtol=1e-15, rtol=1e-15)


#: Pinned by the reference above (``python -c`` on this module's helpers).
PINNED = {
    "n": 1065,
    "accuracy": 0.6507042253521127,
    "ece": 0.041352860869480194,
    "nll": 0.8855629498756554,
    "brier": 0.46882600555765747,
}
PINNED_T = 1.2485764714684058


def test_reference_matches_its_pinned_numbers() -> None:
    ref = _reference(*_all())
    for name, value in PINNED.items():
        assert ref[name] == pytest.approx(value, rel=1e-12), name
    assert _temperature(*_all()) == pytest.approx(PINNED_T, rel=1e-12)


def test_calibkit_matches_the_per_question_reference() -> None:
    rows, labels = _all()
    got = summarize(read_predictions(LM_EVAL))
    ref = _reference(rows, labels)
    assert got.n == ref["n"]
    for name in ("accuracy", "ece", "nll", "brier"):
        assert getattr(got, name) == pytest.approx(ref[name], rel=1e-9, abs=1e-12), name


def test_temperature_matches_the_per_question_reference() -> None:
    rows, labels = _all()
    t = fit_temperature(read_predictions(LM_EVAL)).temperature
    assert t == pytest.approx(_temperature(rows, labels), rel=1e-9)


def test_length_normalized_matches_acc_norm() -> None:
    rows, labels = _all(norm=True)
    got = summarize(read_predictions(LM_EVAL, ReadOptions(length_normalize="char")))
    ref = _reference(rows, labels)
    assert got.accuracy == pytest.approx(ref["accuracy"], abs=1e-15)
    # and that accuracy is lm-eval's own acc_norm, as the records say
    acc_norm = [
        json.loads(line)["acc_norm"]
        for path in sorted(LM_EVAL.glob("samples_*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert got.accuracy == pytest.approx(float(np.mean(acc_norm)), abs=1e-15)
    assert got.nll == pytest.approx(ref["nll"], rel=1e-9)


@pytest.mark.parametrize("path", sorted(LM_EVAL.glob("samples_*.jsonl")), ids=lambda p: p.name[:30])
def test_each_subject(path: Path) -> None:
    rows, labels = _questions(path)
    got = summarize(read_predictions(path))
    ref = _reference(rows, labels)
    assert got.ece == pytest.approx(ref["ece"], rel=1e-9, abs=1e-12)
    assert got.accuracy == pytest.approx(ref["accuracy"])
    # lm-eval's own acc agrees with the argmax of the log-likelihoods
    acc = [json.loads(line)["acc"] for line in path.read_text().splitlines()]
    assert got.accuracy == pytest.approx(float(np.mean(acc)), abs=1e-15)


def test_subject_sizes_straddle_helm_300() -> None:
    sizes = [len(_questions(p)[0]) for p in sorted(LM_EVAL.glob("samples_*.jsonl"))]
    assert min(sizes) < 300 < max(sizes)


_VERBAL = {".6": 0.6, "70 %": 0.7, "80%": 0.8, "0.9": 0.9, "9/10": 0.9, "95%": 0.95, "100%": 1.0}


def test_verbalized_confidence_matches_reference() -> None:
    recs = [
        json.loads(line) for line in (LLM / "verbalized_confidence.jsonl").read_text().splitlines()
    ]
    conf = np.array([_VERBAL[r["confidence"]] for r in recs])
    hit = np.array([float(r["correct"]) for r in recs])
    got = summarize(
        read_predictions(LLM / "verbalized_confidence.jsonl", ReadOptions(parse_confidence=True))
    )
    assert got.n == len(recs) == 400
    assert got.accuracy == pytest.approx(hit.mean())
    assert got.mean_confidence == pytest.approx(conf.mean(), rel=1e-12)
    assert got.ece == pytest.approx(_ece(conf, hit), rel=1e-9)


def test_topk_matches_reference() -> None:
    recs: list[dict[str, Any]] = [
        json.loads(line) for line in (LLM / "topk_logprobs.jsonl").read_text().splitlines()
    ]
    first = [r["choices"][0]["logprobs"]["content"][0] for r in recs]
    conf = np.array([math.exp(t["logprob"]) for t in first])
    hit = np.array(
        [float(t["token"].strip() == r["target"]) for t, r in zip(first, recs, strict=True)]
    )
    got = summarize(read_predictions(LLM / "topk_logprobs.jsonl"))
    assert got.n == 300
    assert got.accuracy == pytest.approx(hit.mean())
    assert got.ece == pytest.approx(_ece(conf, hit), rel=1e-9)
    sentinels = sum(any(e["logprob"] == -9999.0 for e in t["top_logprobs"]) for t in first)
    assert sentinels == 30
