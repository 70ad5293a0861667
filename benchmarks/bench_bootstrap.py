"""Benchmark: paired bootstrap of calibration metrics (``calibkit check``'s regression test).

Run:  python benchmarks/bench_bootstrap.py                 (2 000 replicates, 100 000 examples)
      python benchmarks/bench_bootstrap.py --n 1000000 --replicates 1000

Baseline: the textbook loop that, for each replicate, resamples row indices and recomputes
ECE, NLL and Brier from the per-example statistics of both models (no softmax either way).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--replicates", type=int, default=2000)
    ap.add_argument("--loop-replicates", type=int, default=200, help="replicates for the loop")
    args = ap.parse_args()

    from calibkit.metrics.binning import assign_width_bins
    from calibkit.metrics.summary import collect_example_stats
    from calibkit.sources.predictions import Predictions
    from calibkit.stats.bootstrap import paired_bootstrap

    rng = np.random.default_rng(0)
    z = rng.normal(scale=3.0, size=(args.n, args.k))
    y = rng.integers(0, args.k, args.n)
    a = collect_example_stats(Predictions.from_arrays(z, y))
    b = collect_example_stats(Predictions.from_arrays(z * 1.05, y))

    t0 = time.perf_counter()
    paired_bootstrap(a, b, replicates=args.replicates, seed=0)
    t_ck = time.perf_counter() - t0

    ia, ib = assign_width_bins(a.confidence, 15), assign_width_bins(b.confidence, 15)

    def ece(idx, bins, conf, out):
        c = np.bincount(bins[idx], minlength=15)
        gap = np.abs(np.bincount(bins[idx], out[idx], 15) - np.bincount(bins[idx], conf[idx], 15))
        return gap.sum() / c.sum()

    t0 = time.perf_counter()
    for _ in range(args.loop_replicates):
        idx = rng.integers(0, args.n, args.n)
        ece(idx, ia, a.confidence, a.outcome) - ece(idx, ib, b.confidence, b.outcome)
        (-a.log_prob[idx]).mean() - (-b.log_prob[idx]).mean()
        a.brier[idx].mean() - b.brier[idx].mean()
    t_loop = (time.perf_counter() - t0) * args.replicates / args.loop_replicates

    print(f"paired bootstrap, {args.replicates} replicates x {args.n} examples (6 metrics)")
    print(f"  calibkit (batched weights, threads): {t_ck:8.2f} s")
    print(
        f"  index-resampling loop (3 metrics, extrapolated from {args.loop_replicates}):"
        f" {t_loop:8.2f} s  ({t_loop / t_ck:.1f}x)"
    )


if __name__ == "__main__":
    main()
