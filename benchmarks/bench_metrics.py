"""Benchmark: the one-pass metrics (ECE, MCE, RMSCE, NLL, Brier, accuracy) at several sizes.

Run:  python benchmarks/bench_metrics.py            (all sizes; about 2 minutes on 2 cores)
      python benchmarks/bench_metrics.py --quick    (the two smallest sizes)

For each size of synthetic float32 logits it prints the median time (of ``--repeats``) of
- calibkit: ``calibkit.metrics.summarize`` (chunked single pass, threads);
- numpy floor: one plain single-threaded float64 numpy pass over the whole array computing the
  same metrics (softmax, max, argmax, 15-bin ECE, NLL, Brier) — what a careful user would write;
- torchmetrics ``MulticlassCalibrationError`` (15 bins, l1), if installed (a benchmark-only
  extra: ``pip install torchmetrics``);
and the peak memory each used on top of the input (RSS sampled every 2 ms in a thread).
Temperature fitting and sweeps: ``benchmarks/bench_temperature.py``.
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


def measure(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Median seconds, peak extra RSS (bytes) over the runs, and the last result."""
    times, peak_extra, result = [], 0, None
    for _ in range(repeats):
        base = rss()
        peak = [base]
        done = threading.Event()

        def sample(peak: list[int] = peak, done: threading.Event = done) -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss())
                time.sleep(0.002)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        done.set()
        t.join()
        peak_extra = max(peak_extra, peak[0] - base)
    return statistics.median(times), peak_extra, result


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
    args = ap.parse_args()

    import calibkit
    from calibkit.metrics import summarize
    from calibkit.parallel import default_workers
    from calibkit.predictions import Predictions

    try:
        import torch
        from torchmetrics.classification import MulticlassCalibrationError
    except ImportError:
        torch = None
    print(
        f"calibkit {calibkit.__version__}, numpy {np.__version__}, {os.cpu_count()} cores, "
        f"{default_workers()} calibkit threads; medians of {args.repeats}; "
        "memory = peak RSS on top of the input"
    )
    head = f"{'N x K':>14} {'method':22} {'time s':>8} {'vs numpy':>9} {'extra MB':>9}  check"
    print(head)
    for n, k in SIZES[:2] if args.quick else SIZES:
        rng = np.random.default_rng(0)
        z = (rng.normal(size=(n, k)) * 3).astype(np.float32)
        y = rng.integers(0, k, n)
        preds = Predictions.from_arrays(z, y)
        t_np, m_np, ref = measure(lambda z=z, y=y: numpy_pass(z, y), args.repeats)
        t_ck, m_ck, s = measure(lambda p=preds: summarize(p), args.repeats)
        diff = max(abs(s.ece - ref["ece"]), abs(s.nll - ref["nll"]), abs(s.brier - ref["brier"]))
        label = f"{n}x{k}"
        print(f"{label:>14} {'numpy float64 pass':22} {t_np:8.3f} {1.0:9.2f} {m_np / 2**20:9.0f}")
        print(
            f"{label:>14} {'calibkit':22} {t_ck:8.3f} {t_np / t_ck:9.2f} {m_ck / 2**20:9.0f}"
            f"  max |diff| {diff:.1e}"
        )
        if torch is not None:
            zt, yt = torch.from_numpy(z), torch.from_numpy(y)

            def tm(zt: Any = zt, yt: Any = yt, k: int = k) -> float:
                metric = MulticlassCalibrationError(num_classes=k, n_bins=15, norm="l1")
                return float(metric(torch.softmax(zt, dim=1), yt))

            t_tm, m_tm, v = measure(tm, args.repeats)
            print(
                f"{label:>14} {'torchmetrics':22} {t_tm:8.3f} {t_np / t_tm:9.2f} "
                f"{m_tm / 2**20:9.0f}  ECE {v:.6f} vs {s.ece:.6f}"
            )


if __name__ == "__main__":
    main()
