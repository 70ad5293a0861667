"""Benchmark: temperature fit and a 100-temperature sweep, calibkit vs naive baselines.

Run:  python benchmarks/bench_temperature.py            (50 000 x 1 000 float32, as in issue #3)
      python benchmarks/bench_temperature.py --n 5000 --k 100   (quick)
      python benchmarks/bench_temperature.py --sweep-only       (the sweep against its floor)

Baselines
- fit: the public ``temperature_scaling`` recipe (PyTorch LBFGS, lr 0.01, max_iter 50, T0 = 1.5,
  one ``optimizer.step``), scipy's ``minimize_scalar`` (bounded, on T) over a float64 numpy NLL,
  and scikit-learn's temperature scaling (the calibrator behind
  ``CalibratedClassifierCV(method="temperature")``, fitted on the logits directly); reference
  optimum: brentq on the exact gradient.
- fit passes: ``passes`` counts full reads of the data; the warm start's in-memory work is
  shown as evaluations x rows and in passes' worth of arithmetic. The ``fit-temp`` route
  (:func:`calibkit.calibrators.temperature.fit_temperature_with_metrics`: fit plus the metrics
  before and after) is timed and its passes over the data are counted.
- sweep: the floor is ``--steps`` float64 ``numpy.exp`` passes over the logits, in the same
  chunks and on the same threads as the sweep (per chunk: one float64 copy, then one
  ``exp`` per temperature, nothing else); floor and sweep run interleaved, ``--repeats`` times
  each, and the ratio of their medians is printed with the load average. Baselines: a chunked
  float64 torch loop (softmax, ECE, NLL, Brier per chunk and temperature; when torch is
  installed) and a numpy loop over the whole array per temperature.
With ``--device`` (or a GPU that torch sees) the fit also runs on calibkit's torch backend.
Times are the median of ``--repeats`` runs (wall clock, ``time.perf_counter``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def make_logits(
    n: int, k: int, seed: int = 0, true_t: float = 2.5
) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident synthetic logits: labels drawn from softmax(z / true_t)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=4.0, size=(n, k)).astype(np.float32)
    labels = np.empty(n, dtype=np.int64)
    for start in range(0, n, 5000):  # chunked to keep float64 temporaries small
        part = z[start : start + 5000].astype(np.float64) / true_t
        part -= part.max(axis=1, keepdims=True)
        p = np.exp(part)
        p /= p.sum(axis=1, keepdims=True)
        u = rng.random((len(p), 1))
        labels[start : start + 5000] = np.minimum((p.cumsum(axis=1) < u).sum(axis=1), k - 1)
    return z, labels


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def numpy_nll(z: np.ndarray, y: np.ndarray, t: float) -> float:
    a = z.astype(np.float64) / t
    a -= a.max(axis=1, keepdims=True)
    lse = np.log(np.exp(a).sum(axis=1))
    return float(np.mean(lse - a[np.arange(len(y)), y]))


def numpy_metrics(z: np.ndarray, y: np.ndarray, t: float, n_bins: int = 15) -> tuple[float, ...]:
    """The naive float64 pass over the whole array: softmax, ECE, NLL, Brier."""
    a = z.astype(np.float64) / t
    a -= a.max(axis=1, keepdims=True)
    e = np.exp(a)
    p = e / e.sum(axis=1, keepdims=True)
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    correct = (pred == y).astype(np.float64)
    idx = np.clip(np.ceil(conf * n_bins).astype(int), 1, n_bins) - 1
    cnt = np.bincount(idx, minlength=n_bins)
    gap = np.abs(np.bincount(idx, correct, n_bins) - np.bincount(idx, conf, n_bins)).sum()
    rows = np.arange(len(y))
    nll = float(np.mean(-np.log(p[rows, y])))
    brier = float(np.mean((p * p).sum(axis=1) - 2 * p[rows, y] + 1))
    return gap / cnt.sum(), nll, brier


def exp_floor(preds: Any, steps: int) -> None:
    """``steps`` float64 exp passes over the logits, in the sweep's chunks and threads."""
    from calibkit.engine.executors import map_chunks, scratch

    def chunk(part: tuple[np.ndarray, np.ndarray]) -> int:
        scores, _ = part
        z = scratch("logits", scores.shape)
        np.copyto(z, scores)
        w = scratch("work", scores.shape)
        for _ in range(steps):
            np.exp(z, out=w)
        return 0

    for _ in map_chunks(chunk, preds.chunks(None)):
        pass


def torch_loop(preds: Any, grid: np.ndarray, n_bins: int = 15) -> list[tuple[float, ...]]:
    """A plain chunked float64 torch loop: per chunk and temperature softmax, ECE, NLL, Brier."""
    import torch

    m = len(grid)
    count = torch.zeros(m, n_bins, dtype=torch.float64)
    gap_c = torch.zeros(m, n_bins, dtype=torch.float64)
    gap_o = torch.zeros(m, n_bins, dtype=torch.float64)
    nll = torch.zeros(m, dtype=torch.float64)
    brier = torch.zeros(m, dtype=torch.float64)
    n = 0
    for scores, labels in preds.chunks(None):
        z = torch.from_numpy(np.ascontiguousarray(scores)).to(torch.float64)
        y = torch.from_numpy(labels).long()
        for i, t in enumerate(grid.tolist()):
            logp = torch.log_softmax(z / t, dim=1)
            p = logp.exp()
            conf, pred = p.max(dim=1)
            correct = (pred == y).to(torch.float64)
            idx = torch.clamp(torch.ceil(conf * n_bins).long(), 1, n_bins) - 1
            count[i] += torch.bincount(idx, minlength=n_bins)
            gap_c[i] += torch.bincount(idx, weights=conf, minlength=n_bins)
            gap_o[i] += torch.bincount(idx, weights=correct, minlength=n_bins)
            nll[i] -= logp.gather(1, y[:, None]).sum()
            p_y = p.gather(1, y[:, None]).squeeze(1)
            brier[i] += ((p * p).sum(dim=1) - 2 * p_y + 1).sum()
        n += len(labels)
    ece = (gap_o - gap_c).abs().sum(dim=1) / n
    return [(float(ece[i]), float(nll[i] / n), float(brier[i] / n)) for i in range(m)]


def lbfgs_recipe(z: np.ndarray, y: np.ndarray) -> float:
    import torch

    logits, labels = torch.from_numpy(z), torch.from_numpy(y)
    temperature = torch.nn.Parameter(torch.ones(1) * 1.5)
    nll = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.LBFGS([temperature], lr=0.01, max_iter=50)

    def closure() -> Any:
        optimizer.zero_grad()
        loss = nll(logits / temperature, labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(temperature.item())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--k", type=int, default=1_000)
    ap.add_argument("--steps", type=int, default=100, help="temperatures in the sweep")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-slow", action="store_true", help="skip the LBFGS and loop baselines")
    ap.add_argument("--sweep-only", action="store_true", help="only the sweep and its floor")
    ap.add_argument(
        "--device",
        action="append",
        help="also fit with calibkit's torch backend on this device (repeatable; default: cuda "
        "when torch sees a GPU)",
    )
    args = ap.parse_args()
    devices = args.device
    if devices:
        try:
            import torch
        except ImportError:
            raise SystemExit("--device needs torch: pip install -e '.[torch]'") from None

    from scipy.optimize import brentq, minimize_scalar

    import calibkit
    from calibkit.calibrators import fit_temperature, nll_gradient_hessian, sweep_temperatures
    from calibkit.calibrators.temperature import fit_temperature_with_metrics
    from calibkit.engine.executors import default_workers
    from calibkit.sources.predictions import Predictions

    z, y = make_logits(args.n, args.k)
    preds = Predictions.from_arrays(z, y)
    print(
        f"calibkit {calibkit.__version__} | numpy {np.__version__} | {platform.machine()}"
        f" | {args.n} x {args.k} float32 logits | median of {args.repeats}"
        f" | {default_workers()} threads | load average {os.getloadavg()[0]:.2f}"
    )
    if args.sweep_only:
        sweep_vs_floor(args, z, y, preds, sweep_temperatures)
        return

    def ref_grad(beta: float) -> float:
        return nll_gradient_hessian(preds, beta)[1]

    t_ref = 1 / brentq(ref_grad, 1e-3, 1e3, xtol=1e-14, rtol=1e-14)
    nll_ref = numpy_nll(z, y, t_ref)
    rows = []
    t_fit, ts = timed(lambda: fit_temperature(preds), args.repeats)
    rows.append(
        (
            "fit: calibkit (Newton on 1/T)",
            t_fit,
            ts.temperature,
            numpy_nll(z, y, ts.temperature),
            passes_note(ts.fit),
        )
    )
    counted = CountingSource(preds)
    t_cli, (ts_cli, _, _) = timed(lambda: fit_temperature_with_metrics(counted), args.repeats)
    rows.append(
        (
            "fit-temp route (+ before/after metrics)",
            t_cli,
            ts_cli.temperature,
            numpy_nll(z, y, ts_cli.temperature),
            f"{counted.calls // args.repeats} passes over the data in all",
        )
    )
    if devices is None:
        try:
            import torch

            devices = ["cuda"] if torch.cuda.is_available() else []
        except ImportError:
            devices = []
    for device in devices:
        fit_temperature(preds, device=device)  # warm-up: CUDA context, kernels
        t_dev, ts_dev = timed(lambda d=device: fit_temperature(preds, device=d), args.repeats)
        rows.append(
            (
                f"fit: calibkit --device {device}",
                t_dev,
                ts_dev.temperature,
                numpy_nll(z, y, ts_dev.temperature),
                passes_note(ts_dev.fit),
            )
        )
    t_sc, res = timed(
        lambda: minimize_scalar(lambda t: numpy_nll(z, y, t), bounds=(0.05, 20), method="bounded"),
        1 if args.skip_slow else args.repeats,
    )
    rows.append(
        ("fit: scipy minimize_scalar", t_sc, float(res.x), float(res.fun), f"{res.nfev} evals")
    )
    try:  # scikit-learn's temperature scaling (CalibratedClassifierCV(method="temperature"))
        from sklearn.calibration import _TemperatureScaling

        t_sk, sk = timed(lambda: _TemperatureScaling().fit(z, y), args.repeats)
        t_sklearn = 1.0 / float(sk.beta_)
        rows.append(
            ("fit: scikit-learn temperature", t_sk, t_sklearn, numpy_nll(z, y, t_sklearn), "")
        )
    except ImportError:
        print("scikit-learn >= 1.8 not installed: its temperature scaling is skipped")
    if not args.skip_slow:
        try:
            t_lb, t_lbfgs = timed(lambda: lbfgs_recipe(z, y), 1)
            rows.append(
                ("fit: LBFGS recipe (lr .01, 50 it)", t_lb, t_lbfgs, numpy_nll(z, y, t_lbfgs), "")
            )
        except ImportError:
            print("torch not installed: LBFGS baseline skipped")
    print(
        f"\nreference optimum (brentq on the exact gradient): "
        f"T = {t_ref:.10f}, NLL = {nll_ref:.12f}\n"
    )
    print(f"{'method':38s} {'time s':>9s} {'ratio':>8s} {'T':>14s} {'NLL - ref':>11s}  note")
    for name, t, temp, nll, note in rows:
        print(f"{name:38s} {t:9.3f} {t / t_fit:8.1f} {temp:14.10f} {nll - nll_ref:11.2e}  {note}")

    sweep_vs_floor(args, z, y, preds, sweep_temperatures)


def passes_note(fit: Any) -> str:
    """Full passes, and the warm start's in-memory work."""
    if not fit.warm_start_evaluations:
        return f"{fit.passes} passes"
    work = fit.warm_start_evaluations * fit.warm_start_rows / fit.n
    return (
        f"{fit.passes} passes + warm start {fit.warm_start_evaluations} x "
        f"{fit.warm_start_rows} rows (= {work:.2f} passes of arithmetic)"
    )


class CountingSource:
    """A prediction source that counts its passes (``chunks()`` calls)."""

    def __init__(self, base: Any) -> None:
        self.base, self.calls = base, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def chunks(self, chunk_rows: int | None = None) -> Any:
        self.calls += 1
        return self.base.chunks(chunk_rows)


def sweep_vs_floor(
    args: argparse.Namespace, z: np.ndarray, y: np.ndarray, preds: Any, sweep: Any
) -> None:
    grid = np.linspace(0.5, 3.0, args.steps)
    floors, sweeps = [], []
    sw = None
    for _ in range(args.repeats):  # interleaved, so that both see the same machine load
        t0 = time.perf_counter()
        exp_floor(preds, args.steps)
        floors.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sw = sweep(preds, grid)
        sweeps.append(time.perf_counter() - t0)
    assert sw is not None
    t_floor, t_sw = statistics.median(floors), statistics.median(sweeps)
    print(f"\n{args.steps}-temperature sweep (load average {os.getloadavg()[0]:.2f})")
    print(f"{'method':38s} {'time s':>9s} {'ratio':>8s}")
    print(f"{'floor: float64 exp passes, same chunks':38s} {t_floor:9.3f} {1.0:8.2f}")
    print(
        f"{'calibkit sweep (each chunk read once)':38s} {t_sw:9.3f} {t_sw / t_floor:8.2f}"
        f"   (sweep / floor; per repeat: "
        f"{', '.join(f'{s / f:.2f}' for s, f in zip(sweeps, floors, strict=True))})"
    )
    if args.skip_slow:
        return
    try:
        t_torch, loop_t = timed(lambda: torch_loop(preds, grid), 1)
        err = max(
            abs(loop_t[i][0] - sw.ece[i]) + abs(loop_t[i][1] - sw.nll[i]) for i in range(len(grid))
        )
        print(
            f"{'torch float64 loop, same chunks':38s} {t_torch:9.3f} {t_torch / t_floor:8.2f}"
            f"   (max |diff| vs calibkit: {err:.1e})"
        )
    except ImportError:
        print("torch not installed: the torch loop is skipped")
    t_loop, loop = timed(lambda: [numpy_metrics(z, y, t) for t in grid], 1)
    err = max(abs(loop[i][0] - sw.ece[i]) + abs(loop[i][1] - sw.nll[i]) for i in range(len(grid)))
    print(
        f"{'numpy float64 pass per temperature':38s} {t_loop:9.3f} {t_loop / t_floor:8.2f}"
        f"   (max |diff| vs calibkit: {err:.1e})"
    )


if __name__ == "__main__":
    main()
