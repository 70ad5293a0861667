"""Fit cost of the linear calibrators on real CIFAR-100 logits (and a synthetic 5e4 x 10 set):
passes, seconds, final objective and gradient, converged.

    PYTHONPATH=. python benchmarks/bench_linear_cifar.py [--max-passes N] [--cases NAME,...]

Needs ../shared/external-logits (skips the CIFAR rows when absent).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

CIFAR = "external-logits/mukhoti20_c100_resnet110_brier/val.npz"
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "odir-1e-2": ("matrix-odir", {"lambda": 1e-2, "mu": 1e-2}),
    "odir-1": ("matrix-odir", {"lambda": 1.0, "mu": 1.0}),
    "odir-1e3": ("matrix-odir", {"lambda": 1e3, "mu": 1e3}),
    "dir-10": ("dirichlet-odir", {"lambda": 10.0, "mu": 10.0}),
    "matrix": ("matrix", {}),
    "vector": ("vector", {}),
}


def main() -> None:
    import calibkit
    from calibkit.calibrators import registry
    from calibkit.sources.predictions import Predictions

    ap = argparse.ArgumentParser()
    ap.add_argument("--max-passes", type=int, default=None)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--data", default="cifar,synthetic")
    a = ap.parse_args()
    sets = []
    path = Path(calibkit.__file__).parents[2] / "shared" / CIFAR
    if "cifar" in a.data and path.exists():
        d = np.load(path, allow_pickle=False)
        sets.append(("cifar100", d["logits"], d["labels"]))
    if "synthetic" in a.data:
        from benchmarks.bench_linear import synthetic

        z, y = synthetic(50000, 10)
        sets.append(("synth5e4x10", z, y))
    for name, z, y in sets:
        src = Predictions.from_arrays(z, y, kind="logits")
        for case in a.cases.split(","):
            method, opts = CASES[case]
            opts = dict(opts)
            if a.max_passes is not None:
                opts["max_passes"] = a.max_passes
            t0 = time.perf_counter()
            fit: Any = registry.get(method).fit_source(src, **opts).fit
            print(
                json.dumps(
                    {
                        "data": name,
                        "case": case,
                        "seconds": round(time.perf_counter() - t0, 2),
                        "passes": fit.passes,
                        "iterations": fit.iterations,
                        "solver": fit.solver,
                        "objective": repr(fit.objective),
                        "gradient_norm": fit.gradient_norm,
                        "converged": fit.converged,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
