"""The sweep's batched kernel gives the numbers of one softmax pass per temperature.

Issue #13 rewrote ``sweep_temperatures`` for speed: per temperature and row block only a
multiply, an ``exp`` and two row reductions, everything else batched over the temperatures.
The reference here is the route it replaced, spelled out with the library's one-temperature
pieces (``center_logits``, ``logit_stats``, ``MetricAccumulator``): ECE, MCE and NLL agree bit
for bit, the Brier score to 1e-14 (its sum of squares is a BLAS dot product now).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from calibkit.calibrators import sweep as sweep_module
from calibkit.calibrators.kernels import batch_sums, centre_chunk, exp_rows
from calibkit.calibrators.sweep import sweep_temperatures
from calibkit.calibrators.temperature import as_logits
from calibkit.metrics.examples import center_logits, logit_stats
from calibkit.metrics.summary import MetricAccumulator, chunk_sums
from calibkit.sources.predictions import Predictions

GRID = np.concatenate([np.linspace(0.05, 4.0, 23), [1.0, 0.7311]])


def reference_sweep(src: Any, temps: np.ndarray, *, n_bins: int, binning: str, chunk_rows: Any):
    """One softmax pass per chunk and temperature, as sweep_temperatures did before."""
    accs = [
        MetricAccumulator(src.n_classes, n_bins=n_bins, binning=binning, kind="logits")  # type: ignore[arg-type]
        for _ in temps
    ]
    for scores, labels in src.chunks(chunk_rows):
        zc, pred = center_logits(as_logits(scores, src.kind), return_argmax=True)
        for acc, t in zip(accs, temps, strict=True):
            acc.update_stats(logit_stats(zc, labels, beta=1.0 / t, pred=pred), labels)
    return [acc.result() for acc in accs]


def inputs(kind: str, labels: str, seed: int = 0, n: int = 1500, k: int = 12) -> Predictions:
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=3.0, size=(n, k))
    z[:4] *= 300  # rows that saturate at small T
    if labels == "soft":
        y: Any = rng.dirichlet(np.ones(k) * 0.3, size=n)
    else:
        y = rng.integers(0, k, n)
    if kind == "probs":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        return Predictions.from_arrays(p.astype(np.float32), y, kind="probs")
    return Predictions.from_arrays(z.astype(np.float32), y, kind="logits")


@pytest.mark.parametrize("kind", ["logits", "probs"])
@pytest.mark.parametrize("labels", ["hard", "soft"])
@pytest.mark.parametrize("binning", ["width", "mass"])
def test_sweep_equals_one_pass_per_temperature(kind, labels, binning) -> None:
    src = inputs(kind, labels)
    sw = sweep_temperatures(src, GRID, n_bins=10, binning=binning, chunk_rows=400)
    ref = reference_sweep(src, GRID, n_bins=10, binning=binning, chunk_rows=400)
    assert sw.ece.tolist() == [r.ece for r in ref]
    assert sw.mce.tolist() == [r.mce for r in ref]
    assert sw.nll.tolist() == [r.nll for r in ref]
    np.testing.assert_allclose(sw.brier, [r.brier for r in ref], rtol=1e-14, atol=0)
    assert sw.accuracy == ref[0].accuracy and sw.n == ref[0].n == 1500


def test_sweep_is_independent_of_threads_blocks_and_chunks(monkeypatch) -> None:
    src = inputs("logits", "hard", seed=1, n=4000, k=300)
    base = sweep_temperatures(src, GRID)
    monkeypatch.setenv("CALIBKIT_THREADS", "1")
    one = sweep_temperatures(src, GRID)
    monkeypatch.setattr(sweep_module, "BLOCK_ELEMENTS", 1)  # a block per row
    rows = sweep_temperatures(src, GRID)
    for m in ("ece", "mce", "nll", "brier"):
        assert getattr(one, m).tolist() == getattr(base, m).tolist(), m
        assert getattr(rows, m).tolist() == getattr(base, m).tolist(), m
    for chunk_rows in (7, 1000, 10**6):  # only the order of the chunks' partial sums changes
        other = sweep_temperatures(src, GRID, chunk_rows=chunk_rows)
        for m in ("ece", "mce", "nll", "brier"):
            np.testing.assert_allclose(getattr(other, m), getattr(base, m), rtol=1e-14, atol=1e-17)


class Counted:
    def __init__(self, base: Any) -> None:
        self.base, self.calls = base, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[Any, Any]]:
        self.calls += 1
        yield from self.base.chunks(chunk_rows)


def test_a_sweep_reads_the_data_once() -> None:
    src = Counted(inputs("logits", "hard"))
    sweep_temperatures(src, GRID)
    assert src.calls == 1


@pytest.mark.parametrize("labels", ["hard", "soft"])
def test_kernel_sums_equal_chunk_sums_of_logit_stats(labels) -> None:
    src = inputs("logits", labels, seed=2, n=300)
    scores, y = next(src.chunks())
    for beta in (1.0, 0.37, 5.0):
        c = centre_chunk(scores.astype(np.float64), y, n_classes=src.n_classes)
        s, q, e_y = (np.empty((1, c.n)) for _ in range(3))
        exp_rows(c, beta, np.empty(c.zc.shape), s[0], q[0], e_y[0])  # q as logit_stats does
        got = batch_sums(c, np.full(1, beta), s, q, e_y, n_bins=15, binning="width").chunk_sums(0)
        zc, pred = center_logits(scores, return_argmax=True)
        want = chunk_sums(
            logit_stats(zc, y, beta=beta, pred=pred), y, n_classes=12, n_bins=15, binning="width"
        )
        for f in ("n", "n_correct", "n_saturated", "sum_log_prob", "sum_brier", "sum_confidence"):
            assert getattr(got, f) == getattr(want, f), f
        for f in ("class_mass", "count", "bin_confidence", "bin_outcome"):
            assert getattr(got, f).tolist() == getattr(want, f).tolist(), f
