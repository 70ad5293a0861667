"""Fit cost of the linear calibrators (vector, matrix, matrix-odir, dirichlet-odir) on
synthetic logits: passes, iterations, seconds, final objective and gradient, peak memory.

    PYTHONPATH=. python benchmarks/bench_linear.py 50000 10 [--solver newton|newton-cg]
        [--methods vector,matrix] [--lambda 1 --mu 1] [--max-passes N]

:func:`bench_linear` is the function ``benchmarks/bench_calibrators.py`` can call.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import numpy as np

METHODS = ("vector", "matrix", "matrix-odir", "dirichlet-odir")


def synthetic(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Overconfident logits of a ~70%-accurate model (labels drawn from a softer softmax)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k)) * 2.0
    z[np.arange(n), y] += 3.0
    return (z * 1.5).astype(np.float32), y


def bench_linear(
    n: int,
    k: int,
    *,
    methods: tuple[str, ...] = METHODS,
    solver: str | None = None,
    lam: float = 1.0,
    mu: float = 1.0,
    max_passes: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per method: ``method, n, k, seconds, passes, iterations, solver, objective,
    gradient_norm, converged, message, peak_rss_mib`` (peak RSS of the process so far)."""
    from calibkit.calibrators import registry
    from calibkit.sources.predictions import Predictions

    z, y = synthetic(n, k, seed)
    src = Predictions.from_arrays(z, y, kind="logits")
    rows = []
    for method in methods:
        cls: Any = registry.get(method)
        opts: dict[str, Any] = {"solver": solver}
        if cls.regularised:
            opts.update({"lambda": lam, "mu": mu})
        if max_passes is not None:
            opts["max_passes"] = max_passes
        t0 = time.perf_counter()
        cal = cls.fit_source(src, **opts)
        seconds = time.perf_counter() - t0
        fit = cal.fit
        rows.append(
            {
                "method": method,
                "n": n,
                "k": k,
                "seconds": round(seconds, 3),
                "passes": fit.passes,
                "iterations": fit.iterations,
                "solver": fit.solver,
                "objective": fit.objective,
                "gradient_norm": fit.gradient_norm,
                "converged": fit.converged,
                "message": fit.message,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("k", type=int)
    ap.add_argument("--solver", choices=["newton", "newton-cg"], default=None)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--lambda", dest="lam", type=float, default=1.0)
    ap.add_argument("--mu", type=float, default=1.0)
    ap.add_argument("--max-passes", type=int, default=None)
    a = ap.parse_args()
    for row in bench_linear(
        a.n,
        a.k,
        methods=tuple(a.methods.split(",")),
        solver=a.solver,
        lam=a.lam,
        mu=a.mu,
        max_passes=a.max_passes,
    ):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
