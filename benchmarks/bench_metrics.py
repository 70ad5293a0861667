"""Benchmark: the one-pass metrics (ECE, MCE, RMSCE, NLL, Brier, accuracy) at several sizes.

Run:  python benchmarks/bench_metrics.py            (all sizes; about 2 minutes on 2 cores)
      python benchmarks/bench_metrics.py --quick    (the two smallest sizes)

For each size of synthetic float32 logits it prints the median time (of ``--repeats``, run
round-robin so that a busy moment on the machine hits every method alike) of
- numpy floor: one plain single-threaded float64 numpy pass over the whole array computing the
  same metrics (softmax, max, argmax, 15-bin ECE, NLL, Brier) — what a careful user would write;
- calibkit: ``calibkit.metrics.summarize`` (chunked single pass, a thread per core), and the
  same on one thread (the gain from the cores);
- calibkit's torch backend on each ``--device`` asked for (``summarize(..., device=...)``,
  float64 accumulation on the device; default: ``cuda`` when torch sees a GPU, else none);
- torchmetrics ``MulticlassCalibrationError`` (15 bins, l1), if installed (a benchmark-only
  extra: ``pip install torchmetrics``);
and the peak memory each used on top of the input (RSS sampled every 2 ms in a thread; device
memory is not counted). Temperature fitting and sweeps: ``benchmarks/bench_temperature.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

SIZES = [(10_000, 10), (50_000, 100), (50_000, 1000), (200_000, 1000), (1_000_000, 10)]


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _timed(fn: Callable[[], Any]) -> tuple[float, int, Any]:
    """Seconds, peak extra RSS (bytes) and result of one call."""
    base = rss()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - t0
    done.set()
    t.join()
    return elapsed, peak[0] - base, result


def measure_round_robin(
    fns: dict[str, Callable[[], Any]], repeats: int
) -> dict[str, tuple[float, float, Any]]:
    """Per method: median seconds, peak extra RSS over the runs, last result."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    peaks = dict.fromkeys(fns, 0)
    results: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            elapsed, extra, results[name] = _timed(fn)
            times[name].append(elapsed)
            peaks[name] = max(peaks[name], extra)
    return {name: (statistics.median(times[name]), peaks[name], results[name]) for name in fns}


def numpy_pass(z: np.ndarray, y: np.ndarray, n_bins: int = 15) -> dict[str, float]:
    a = z.astype(np.float64)
    a -= a.max(axis=1, keepdims=True)
    e = np.exp(a)
    s = e.sum(axis=1)
    p = e / s[:, None]
    rows = np.arange(len(y))
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    correct = (pred == y).astype(np.float64)
    idx = np.clip(np.ceil(conf * n_bins).astype(int), 1, n_bins) - 1
    gap = np.abs(np.bincount(idx, correct, n_bins) - np.bincount(idx, conf, n_bins))
    return {
        "ece": float(gap.sum() / len(y)),
        "nll": float(np.mean(np.log(s) - a[rows, y])),
        "brier": float(np.mean((p * p).sum(axis=1) - 2 * p[rows, y] + 1)),
        "accuracy": float(correct.mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--device",
        action="append",
        help="also time calibkit's torch backend on this device (repeatable: cpu, cuda, cuda:1)",
    )
    args = ap.parse_args()

    import calibkit
    from calibkit.engine.executors import default_workers
    from calibkit.metrics import summarize
    from calibkit.sources.predictions import Predictions

    try:
        import torch
    except ImportError:
        torch = None
    try:
        from torchmetrics.classification import MulticlassCalibrationError
    except ImportError:
        MulticlassCalibrationError = None
    devices = args.device
    if devices and torch is None:
        raise SystemExit("--device needs torch: pip install -e '.[torch]'")
    if devices is None:
        devices = ["cuda"] if torch is not None and torch.cuda.is_available() else []
    print(
        f"calibkit {calibkit.__version__}, numpy {np.__version__}, {os.cpu_count()} cores, "
        f"{default_workers()} calibkit threads; medians of {args.repeats}, round-robin; "
        "memory = peak RSS on top of the input"
    )
    if devices:
        names = [torch.cuda.get_device_name(d) if d.startswith("cuda") else d for d in devices]
        print(f"devices: {', '.join(names)} (torch {torch.__version__})")
    print(f"{'N x K':>14} {'method':24} {'time s':>8} {'vs numpy':>9} {'extra MB':>9}  check")
    for n, k in SIZES[:2] if args.quick else SIZES:
        rng = np.random.default_rng(0)
        z = (rng.normal(size=(n, k)) * 3).astype(np.float32)
        y = rng.integers(0, k, n)
        preds = Predictions.from_arrays(z, y)
        fns: dict[str, Callable[[], Any]] = {
            "numpy float64 pass": lambda z=z, y=y: numpy_pass(z, y),
            "calibkit": lambda p=preds: summarize(p),
            "calibkit, 1 thread": lambda p=preds: summarize(p, workers=1),
        }
        for device in devices:
            fns[f"calibkit --device {device}"] = lambda p=preds, d=device: summarize(p, device=d)
        if torch is not None and MulticlassCalibrationError is not None:
            zt, yt = torch.from_numpy(z), torch.from_numpy(y)

            def tm(zt: Any = zt, yt: Any = yt, k: int = k) -> float:
                metric = MulticlassCalibrationError(num_classes=k, n_bins=15, norm="l1")
                return float(metric(torch.softmax(zt, dim=1), yt))

            fns["torchmetrics"] = tm
        for name in fns:  # warm-up: first calls pay for imports, thread pools, CUDA context
            if name != "numpy float64 pass" or n * k <= 10**6:
                fns[name]()
        timed = measure_round_robin(fns, args.repeats)
        t_np, _, ref = timed["numpy float64 pass"]
        label = f"{n}x{k}"
        for name, (t, extra, result) in timed.items():
            if name == "numpy float64 pass":
                check = ""
            elif name == "torchmetrics":
                check = f"ECE {result:.6f} vs {ref['ece']:.6f}"
            else:
                rel = max(
                    abs(result.ece - ref["ece"]),
                    abs(result.nll - ref["nll"]) / abs(ref["nll"]),
                    abs(result.brier - ref["brier"]) / abs(ref["brier"]),
                )
                check = f"max diff {rel:.1e} (ECE abs, NLL/Brier rel)"
            print(f"{label:>14} {name:24} {t:8.3f} {t_np / t:9.2f} {extra / 2**20:9.0f}  {check}")
        if "calibkit" in timed and "torchmetrics" in timed:
            ratio = timed["torchmetrics"][0] / timed["calibkit"][0]
            cores = timed["calibkit, 1 thread"][0] / timed["calibkit"][0]
            print(
                f"{'':>14} torchmetrics time / calibkit time: {ratio:.2f}; "
                f"calibkit 1 thread / {default_workers()} threads: {cores:.2f}"
            )


if __name__ == "__main__":
    main()
