"""Benchmark: temperature fit and a 100-temperature sweep, calibkit vs naive baselines.

Run:  python benchmarks/bench_temperature.py            (50 000 x 1 000 float32, as in issue #3)
      python benchmarks/bench_temperature.py --n 5000 --k 100   (quick)

Baselines
- fit: the public ``temperature_scaling`` recipe (PyTorch LBFGS, lr 0.01, max_iter 50, T0 = 1.5,
  one ``optimizer.step``), scipy's ``minimize_scalar`` (bounded, on T) over a float64 numpy NLL,
  and scikit-learn's temperature scaling (the calibrator behind
  ``CalibratedClassifierCV(method="temperature")``, fitted on the logits directly); reference
  optimum: brentq on the exact gradient.
- sweep: a loop that, for each temperature, computes softmax, ECE, NLL and Brier over the whole
  array in float64 numpy.
With ``--device`` (or a GPU that torch sees) the fit also runs on calibkit's torch backend.
Times are the median of ``--repeats`` runs (wall clock, ``time.perf_counter``).
"""

from __future__ import annotations

import argparse
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
    from calibkit.predictions import Predictions

    z, y = make_logits(args.n, args.k)
    preds = Predictions.from_arrays(z, y)
    print(
        f"calibkit {calibkit.__version__} | numpy {np.__version__} | {platform.machine()}"
        f" | {args.n} x {args.k} float32 logits | median of {args.repeats}"
    )

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
            f"{ts.fit.passes} passes",
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
                f"{ts_dev.fit.passes} passes",
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

    grid = np.linspace(0.5, 3.0, args.steps)
    t_sw, sw = timed(lambda: sweep_temperatures(preds, grid), 1)
    print(f"\n{args.steps}-temperature sweep")
    print(f"{'calibkit sweep (each chunk read once)':38s} {t_sw:9.3f} {1.0:8.1f}")
    if not args.skip_slow:
        t_loop, loop = timed(lambda: [numpy_metrics(z, y, t) for t in grid], 1)
        err = max(
            abs(loop[i][0] - sw.ece[i]) + abs(loop[i][1] - sw.nll[i]) for i in range(len(grid))
        )
        print(
            f"{'numpy float64 pass per temperature':38s} {t_loop:9.3f} {t_loop / t_sw:8.1f}"
            f"   (max |diff| vs calibkit: {err:.1e})"
        )


if __name__ == "__main__":
    main()
