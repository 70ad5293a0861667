"""Benchmark: every registered calibrator against its peers (issue #15).

Run:  python benchmarks/bench_calibrators.py                 (5e4 x 10, 5e4 x 100, 5e4 x 1000)
      python benchmarks/bench_calibrators.py --quick         (small sizes, seconds)
      python benchmarks/bench_calibrators.py --sizes 50000x100 --methods matrix,matrix-odir
      python benchmarks/bench_calibrators.py --peers none    (calibkit alone)

For each size, method and implementation it reports the fit time (median of ``--repeats``,
wall clock, data validation included for calibkit), the passes over the data (calibkit:
``fit_details()["fit"]["passes"]``; peers: full-batch evaluations where they can be counted),
the final objective, the NLL on held-out data, the accuracy after calibration, whether the fit
reached the optimum, and the peak memory.

**Data.** Over-confident, non-separable logits with a known seed: ``z ~ N(0, 4^2)`` (float32)
and labels drawn from ``softmax(z / 2.5 + c)`` with a class bias ``c ~ N(0, 0.5^2)``, so
temperature, vector and matrix scaling all have something to fix and no map separates the data.
The fit set (``val``) and a held-out set (``test``) are generated once per size, written to a
temporary folder, and loaded by each worker.

**Objective, computed the same way for every implementation.** For the maps of the form
``softmax(W x + b)`` (temperature, vector, matrix: ``x`` the logits; dirichlet-odir: ``x`` the
log-softmax of the logits) the benchmark takes each implementation's ``(W, b)`` (calibkit's
by probing ``calibrated_scores`` with random rows and solving least squares, so no JSON keys
are assumed), and evaluates in float64 on the fit set: the mean NLL, and for the ODIR methods
``NLL + lambda/(K(K-1)) sum_{i != j} W_ij^2 + mu/K sum_j b_j^2`` (calibkit's and
torch-uncertainty's convention; Kull et al.'s normalised one) at the representative of the map
with the least penalty (softmax is unchanged by adding a vector to every row of ``W`` and a
constant to ``b``: per column the off-diagonal mean and the mean of ``b`` are removed first;
dirichletcal penalises its reference-row representative instead, so its own objective differs
from this one). ``lambda`` and ``mu`` are fixed (``--lam``, ``--mu``; calibkit gets them as
``--param``, each peer in its own convention) so all solve one problem. ``grad`` is the
infinity norm of that objective's gradient in the method's own parameters (``1/T``;
``w, b``; ``W, b``) divided by ``max(1, objective)``; ``conv`` is ``grad <= 1e-8`` (calibkit's
own ``converged`` is shown when it disagrees). For the binning methods the objective is the
NLL (probabilities of exactly 0 read as the float64 tiny, as calibkit's metrics do).

**Memory.** Each (method, implementation, size) runs in a fresh subprocess; ``peak MB`` is its
``ru_maxrss`` after the fit (imports and data included), ``+fit MB`` is that minus the resident
size just before the fit: what the fit itself added. The data's own size is printed per size.

**Bounded runs.** Each subprocess has ``--timeout`` seconds (10^6-parameter problems at
K = 1000 take minutes on 2 cores); ``--skip-slow`` skips peers estimated above
``--slow-seconds``; a peer whose estimated memory exceeds ``--max-peer-gb`` (dirichletcal's
N x (K+1)^2 array) is skipped with the estimate. Peers are not dependencies: a missing one is
skipped with the reason (pip install netcal torch-uncertainty; dirichletcal needs Python
>= 3.12 from its sdist, see the notes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _peers_calibrators as peers_mod  # noqa: E402

#: Methods whose map is softmax(W x + b), and their features.
LINEAR = {
    "temperature": "logits",
    "vector": "logits",
    "matrix": "logits",
    "matrix-odir": "logits",
    "dirichlet-odir": "logp",
}
ODIR = ("matrix-odir", "dirichlet-odir")
DEFAULT_SIZES = "50000x10,50000x100,50000x1000"
QUICK_SIZES = "1000x10,1000x100"
CHUNK = 4096


# -- data --------------------------------------------------------------------------------------


def make_data(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident logits, labels drawn from softmax(z / 2.5 + c) (see the docstring)."""
    rng = np.random.default_rng(seed)
    bias = np.random.default_rng(12345 + k).normal(scale=0.5, size=k)
    z = rng.normal(scale=4.0, size=(n, k)).astype(np.float32)
    y = np.empty(n, dtype=np.int64)
    for s in range(0, n, CHUNK):
        a = z[s : s + CHUNK].astype(np.float64) / 2.5 + bias
        p = np.exp(peers_mod.log_softmax(a))
        u = rng.random((len(p), 1))
        y[s : s + CHUNK] = np.minimum((p.cumsum(axis=1) < u).sum(axis=1), k - 1)
    return z, y


def write_data(folder: Path, n: int, k: int, seed: int) -> dict[str, str]:
    paths = {}
    for part, s in (("val", seed), ("test", seed + 1)):
        z, y = make_data(n, k, s)
        np.save(folder / f"{part}_{n}x{k}_z.npy", z)
        np.save(folder / f"{part}_{n}x{k}_y.npy", y)
        paths[part] = str(folder / f"{part}_{n}x{k}")
    return paths


def load(prefix: str) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.load(prefix + "_z.npy", allow_pickle=False),
        np.load(prefix + "_y.npy", allow_pickle=False),
    )


# -- evaluation (the same for every implementation) --------------------------------------------


def canonical(w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The representative of softmax(W x + b) with the least ODIR penalty: per column the
    mean of its off-diagonal entries removed from the whole column, the mean of b from b."""
    k = w.shape[0]
    off = ~np.eye(k, dtype=bool)
    colmean = (w * off).sum(axis=0) / max(k - 1, 1)
    return w - colmean[None, :], b - b.mean()


def penalty(w: np.ndarray, b: np.ndarray, lam: float, mu: float) -> float:
    off = ~np.eye(w.shape[0], dtype=bool)
    return float(lam * np.sum((w * off) ** 2) + mu * np.sum(b * b))


def eval_linear(
    w: np.ndarray, b: np.ndarray, feats: str, z: np.ndarray, y: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray, float]:
    """Mean NLL, its gradient in W and b, and the accuracy, float64, chunked."""
    k = w.shape[0]
    nll, gw, gb, hits = 0.0, np.zeros((k, k)), np.zeros(k), 0
    for s in range(0, len(y), CHUNK):
        x = peers_mod.features_of(z[s : s + CHUNK], feats)
        yc = y[s : s + CHUNK]
        lp = peers_mod.log_softmax(x @ w.T + b)
        rows = np.arange(len(yc))
        nll -= float(lp[rows, yc].sum())
        hits += int((lp.argmax(axis=1) == yc).sum())
        r = np.exp(lp)
        r[rows, yc] -= 1.0
        gw += r.T @ x
        gb += r.sum(axis=0)
    n = len(y)
    return nll / n, gw / n, gb / n, hits / n


def eval_logp(
    fn: Any, z: np.ndarray, y: np.ndarray, scores: Any = None
) -> tuple[float, float, int]:
    """Mean NLL, accuracy, and how many labels got probability 0, of a log-prob function
    (the prediction is the argmax of ``scores`` when given: the log of probabilities one
    float64 step apart can tie, which would move the argmax)."""
    nll, hits, zeros = 0.0, 0, 0
    for s in range(0, len(y), CHUNK):
        lp = fn(z[s : s + CHUNK])
        pred = (lp if scores is None else scores(z[s : s + CHUNK])).argmax(axis=1)
        yc = y[s : s + CHUNK]
        picked = lp[np.arange(len(yc)), yc]
        zeros += int((picked <= math.log(peers_mod.TINY) + 1e-9).sum())
        nll -= float(picked.sum())
        hits += int((pred == yc).sum())
    return nll / len(y), hits / len(y), zeros


def gradient_norm(method: str, gw: np.ndarray, gb: np.ndarray) -> float:
    if method == "temperature":  # d/d(1/T) of the NLL of softmax(z / T) = trace of dW
        return abs(float(np.trace(gw)))
    if method == "vector":
        return float(max(np.abs(np.diag(gw)).max(), np.abs(gb).max()))
    return float(max(np.abs(gw).max(), np.abs(gb).max()))


# -- calibkit ----------------------------------------------------------------------------------


def probe_linear(cal: Any, k: int, feats: str) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) of a calibkit map softmax(W x + b), from its calibrated logits of random rows."""
    rng = np.random.default_rng(7)
    zp = rng.normal(scale=3.0, size=(2 * k + 16, k))
    out = np.asarray(cal.calibrated_scores(zp, "logits"), dtype=np.float64)
    out -= out.mean(axis=1, keepdims=True)
    x = peers_mod.features_of(zp, feats)
    design = np.hstack([x, np.ones((len(x), 1))])
    coef, *_ = np.linalg.lstsq(design, out, rcond=None)
    return coef[:k].T.copy(), coef[k].copy()


def calibkit_configs(
    method: str, lam: float, mu: float, odir_cv: bool
) -> list[tuple[str, dict[str, Any]]]:
    """The calibkit rows of a method: its default, each one-versus-all style reduction it
    offers, and for ODIR the fixed lambda, mu of the benchmark (and CV with --odir-cv)."""
    from calibkit.calibrators import registry

    cls = registry.get(method)
    specs = {h.name: h for h in getattr(cls, "hyperparameters", ())}
    rows: list[tuple[str, dict[str, Any]]] = []
    if method in ODIR:
        if "lambda" in specs and "mu" in specs:
            rows.append(("calibkit", {"lambda": lam, "mu": mu}))
        if odir_cv or not rows:
            rows.append(("calibkit (CV)", {}))
        return rows
    rows.append(("calibkit", {}))
    for h in specs.values():
        if h.kind is str and h.choices:
            for choice in h.choices:
                if choice != h.default and any(
                    t in choice.lower() for t in ("ova", "ovr", "one", "vs-all", "per-class")
                ):
                    rows.append((f"calibkit ({h.name}={choice})", {h.name: choice}))
    return rows


def fit_calibkit(
    method: str, params: dict[str, Any], z: np.ndarray, y: np.ndarray
) -> peers_mod.Fitted:
    from calibkit.calibrators import registry
    from calibkit.sources.predictions import Predictions

    cls = registry.get(method)
    src = Predictions.from_arrays(z, y, kind="logits")
    cal = cls.fit_source(src, **params)
    return _calibkit_fitted(cal, method, z.shape[1])


def _calibkit_fitted(cal: Any, method: str, k: int) -> peers_mod.Fitted:
    details = cal.fit_details()
    fit = details.get("fit") if isinstance(details.get("fit"), dict) else None
    passes = (fit or details).get("passes")
    converged = (fit or details).get("converged")
    objective = fit.get("objective") if fit else None
    out_kind = getattr(cal, "output_kind", "logits")

    def logp(zc: np.ndarray) -> np.ndarray:
        s = np.asarray(cal.calibrated_scores(np.asarray(zc), "logits"), dtype=np.float64)
        return peers_mod.log_softmax(s) if out_kind == "logits" else peers_mod.log_probs(s)

    extra = {}
    for key in ("lambda", "mu"):
        if key in details:
            extra[key] = details[key]
    return peers_mod.Fitted(
        logp,
        None,
        LINEAR.get(method, "logits"),
        passes=passes if isinstance(passes, int) else None,
        reported_objective=objective if isinstance(objective, float) else None,
        reported_converged=converged if isinstance(converged, bool) else None,
        extra={"calibrator": cal, **extra},
        scores=lambda zc: np.asarray(cal.calibrated_scores(np.asarray(zc), "logits")),
    )


# -- the worker --------------------------------------------------------------------------------


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident size (``VmRSS``) or its peak (``VmHWM``), in MB. ``VmHWM``
    belongs to the address space, so unlike ``ru_maxrss`` it does not carry the parent's
    peak over ``fork``/``exec``."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> bool:
    """Reset ``VmHWM`` to the current resident size (Linux >= 4.0), so the peak after the
    fit is the fit's own and not the imports' or the warm-up's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def find_peer(method: str, impl: str) -> peers_mod.Peer:
    for p in peers_mod.peers():
        if p.method == method and p.impl == impl:
            return p
    raise SystemExit(f"no peer {impl!r} for {method!r}")


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    method, impl = spec["method"], spec["impl"]
    z, y = load(spec["val"])
    k = z.shape[1]
    # lambda, mu in calibkit's convention (on the mean NLL, lambda / (K (K-1)) times the sum of
    # the squared off-diagonal weights, mu / K times the sum of the squared intercepts); the
    # peers get the raw weights of the sums, each converts them to its own convention
    raw_lam, raw_mu = spec["lam"] / (k * (k - 1)), spec["mu"] / k
    opts = {"lambda": raw_lam, "mu": raw_mu, "threads": spec.get("threads", 2)}
    # a warm-up fit on a few rows first, so that imports and one-time set-up (torch's thread
    # pool, jax) count neither in the time nor in the memory of the fit
    few = min(len(y), max(400, 4 * k))
    if impl.startswith("calibkit"):
        import calibkit.calibrators  # noqa: F401 - registers the methods

        def fit(zz: np.ndarray = z, yy: np.ndarray = y) -> peers_mod.Fitted:
            return fit_calibkit(method, spec["params"], zz, yy)
    else:
        peer = find_peer(method, impl)
        why = peer.needs()
        if why:
            return {"skipped": why}

        def fit(zz: np.ndarray = z, yy: np.ndarray = y) -> peers_mod.Fitted:
            return peer.fit(zz, yy, opts)

    if impl.startswith("dirichletcal"):  # its fit on a subset is as slow as a real one
        import dirichletcal.calib.multinomial  # noqa: F401
        import jax  # noqa: F401
    else:
        with contextlib.suppress(Exception):  # the real fit will say what is wrong
            fit(z[:few], y[:few])

    peak_reset = reset_peak()
    base = rss_mb()
    times, cpus, fitted = [], [], None
    for _ in range(spec["repeats"]):
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        fitted = fit()
        times.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        if sum(times) > spec.get("repeat_budget", 20.0):
            break
    peak = rss_mb("VmHWM")
    if not peak_reset or not math.isfinite(peak):  # then it includes the imports' peak
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert fitted is not None
    out: dict[str, Any] = {
        "seconds": statistics.median(times),
        "cpu_seconds": statistics.median(cpus),
        "load": os.getloadavg()[0],
        "repeats": len(times),
        "passes": fitted.passes,
        "peak_mb": peak,
        "fit_mb": peak - base,
        "note": fitted.note,
        "reported_converged": fitted.reported_converged,
        "reported_objective": fitted.reported_objective,
    }
    for key in ("lambda", "mu"):
        if key in fitted.extra:
            out[key] = fitted.extra[key]
    lam = raw_lam if method in ODIR else 0.0
    mu = raw_mu if method in ODIR else 0.0
    if method in ODIR and impl == "calibkit (CV)":  # the penalty of the values it chose
        lam = float(fitted.extra.get("lambda", math.nan)) / (k * (k - 1))
        mu = float(fitted.extra.get("mu", math.nan)) / k
    linear = fitted.linear
    if linear is None and impl.startswith("calibkit") and method in LINEAR:
        linear = probe_linear(fitted.extra["calibrator"], k, LINEAR[method])
    if linear is not None and method in LINEAR:
        w, b = canonical(*linear)
        feats = fitted.features
        nll, gw, gb, acc = eval_linear(w, b, feats, z, y)
        pen = penalty(w, b, lam, mu) if method in ODIR else 0.0
        objective = nll + pen
        if method in ODIR:
            off = ~np.eye(k, dtype=bool)
            gw = gw + 2 * lam * w * off
            gb = gb + 2 * mu * b
        grad = gradient_norm(method, gw, gb) / max(1.0, abs(objective))
        out.update(nll=nll, objective=objective, grad=grad, acc=acc)
        if impl.startswith("calibkit"):  # calibkit's own NLL, not the probed map's
            nll_own, _, _ = eval_logp(fitted.logp, z, y)
            out["probe_error"] = abs(nll_own - nll)
        test_fn = peers_mod.linear_logp(w, b, feats)
    else:
        nll, acc, zeros = eval_logp(fitted.logp, z, y, fitted.scores)
        out.update(nll=nll, objective=nll, grad=None, acc=acc, zero_probs=zeros)
        test_fn = fitted.logp
    out["acc_before"] = float((z.argmax(axis=1) == y).mean())
    zt, yt = load(spec["test"])
    test_scores = fitted.scores if test_fn is fitted.logp else None
    out["test_nll"], out["test_acc"], _ = eval_logp(test_fn, zt, yt, test_scores)
    return out


# -- the driver --------------------------------------------------------------------------------


def run_job(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    env = dict(os.environ)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout > {timeout:.0f} s"}
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit {proc.returncode}"
        if proc.returncode < 0 or proc.returncode == 137:
            last = f"killed (signal {-proc.returncode}), maybe out of memory"
        return {"error": last[:160], "wall": time.perf_counter() - t0}
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    return {"error": "no result line"}


def fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return format(v, spec)


def conv_text(r: dict[str, Any]) -> str:
    g = r.get("grad")
    if g is None:
        return "—"
    ok = g <= 1e-8
    text = "yes" if ok else "no"
    rc = r.get("reported_converged")
    if rc is not None and rc != ok:
        text += f" (says {'yes' if rc else 'no'})"
    return text


def table(size: str, rows: list[dict[str, Any]], data_mb: float) -> str:
    head = (
        "| method | implementation | seconds | CPU s | passes | NLL | objective | test NLL | acc "
        "| grad | conv | peak MB | +fit MB | note |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|"
    )
    loads = [r["result"]["load"] for r in rows if "load" in r["result"]]
    load = (
        f", load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs"
        if loads
        else ""
    )
    out = [f"\n### {size} (data: {data_mb:.1f} MB of float32 logits + int64 labels{load})\n", head]
    for r in rows:
        res = r["result"]
        if "error" in res or "skipped" in res:
            why = res.get("error") or res.get("skipped")
            dashes = " | ".join(["—"] * 12)
            out.append(f"| {r['method']} | {r['impl']} | {dashes} | {why} |")
            continue
        acc = fmt(res["acc"], ".4f")
        if abs(res["acc"] - res["acc_before"]) > 0:
            acc += f" ({res['acc'] - res['acc_before']:+.4f})"
        note = res.get("note") or ""
        if res.get("zero_probs"):
            note = (note + f"; {res['zero_probs']} labels at p = 0").lstrip("; ")
        if res.get("probe_error", 0) > 1e-8:
            note = (note + f"; probe error {res['probe_error']:.1e}").lstrip("; ")
        if r["method"] in ODIR and "lambda" in res:
            note = (note + f"; λ={res['lambda']:.3g}, μ={res['mu']:.3g}").lstrip("; ")
        if res.get("repeats", 1) > 1:
            note = (note + f"; median of {res['repeats']}").lstrip("; ")
        out.append(
            f"| {r['method']} | {r['impl']} | {fmt(res['seconds'], '.3f')} "
            f"| {fmt(res.get('cpu_seconds'), '.2f')} | {fmt(res.get('passes'), 'd')} "
            f"| {fmt(res['nll'], '.6f')} "
            f"| {fmt(res['objective'], '.8f')} | {fmt(res['test_nll'], '.5f')} | {acc} "
            f"| {fmt(res.get('grad'), '.1e')} | {conv_text(res)} | {fmt(res['peak_mb'], '.0f')} "
            f"| {fmt(res['fit_mb'], '.0f')} | {note} |"
        )
    return "\n".join(out)


def verdicts(size: str, rows: list[dict[str, Any]]) -> list[str]:
    """Where calibkit is not ahead: a peer faster, or with a lower objective."""
    lines = []
    by_method: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_method.setdefault(r["method"], []).append(r)
    for method, group in by_method.items():
        ok = [r for r in group if "seconds" in r["result"]]
        mine = [r for r in ok if r["impl"].startswith("calibkit")]
        theirs = [r for r in ok if not r["impl"].startswith("calibkit")]
        if not mine or not theirs:
            continue
        best = min(mine, key=lambda r: r["result"]["objective"])
        fast = min(mine, key=lambda r: r["result"]["seconds"])
        for p in theirs:
            pr, br, fr = p["result"], best["result"], fast["result"]
            tol = 1e-9 * max(1.0, abs(br["objective"]))
            if pr["objective"] < br["objective"] - tol:
                lines.append(
                    f"- {size} {method}: {p['impl']} reaches a LOWER objective than calibkit "
                    f"({pr['objective']:.8f} vs {br['objective']:.8f}, "
                    f"{br['objective'] - pr['objective']:.2e} lower)"
                )
            if pr["seconds"] < fr["seconds"]:
                lines.append(
                    f"- {size} {method}: {p['impl']} is FASTER than calibkit "
                    f"({pr['seconds']:.3f} s vs {fr['seconds']:.3f} s, "
                    f"{fr['seconds'] / pr['seconds']:.2f}x), objective "
                    f"{pr['objective'] - br['objective']:+.2e} vs calibkit's"
                )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"sizes {QUICK_SIZES}, one fit, peers: the torch recipe and scikit-learn, --skip-slow",
    )
    ap.add_argument("--sizes", help=f"NxK,... (default {DEFAULT_SIZES})")
    ap.add_argument("--methods", help="comma-separated method names (default: all registered)")
    ap.add_argument(
        "--peers",
        default="all",
        help="'all', 'none', or comma-separated words that peer names must contain "
        "(e.g. netcal,torch)",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="fits per worker (median; a worker stops repeating after 20 s)",
    )
    ap.add_argument(
        "--skip-slow", action="store_true", help="skip peers estimated over --slow-seconds"
    )
    ap.add_argument("--slow-seconds", type=float, default=120.0)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per subprocess")
    ap.add_argument(
        "--max-peer-gb",
        type=float,
        default=6.0,
        help="skip a peer whose estimated memory is larger",
    )
    ap.add_argument(
        "--lam",
        type=float,
        default=1e-2,
        help="ODIR lambda, calibkit's convention: lambda/(K(K-1)) sum_{i!=j} W_ij^2",
    )
    ap.add_argument("--mu", type=float, default=1e-2, help="ODIR mu: mu/K sum_j b_j^2")
    ap.add_argument("--odir-cv", action="store_true", help="also calibkit's cross-validated ODIR")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write every result to this JSON file")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    import calibkit
    from calibkit.calibrators import registry

    sizes_text = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    if args.quick:  # seconds: small sizes, the light peers, one fit each
        args.skip_slow = True
        args.slow_seconds = min(args.slow_seconds, 10.0)
        args.repeats = min(args.repeats, 1)
        args.timeout = min(args.timeout, 120.0)
        if args.peers == "all":
            args.peers = "recipe,sklearn"
    sizes = []
    for part in sizes_text.split(","):
        n, _, k = part.strip().lower().partition("x")
        sizes.append((int(n), int(k)))
    registered = list(registry.names())
    all_peers = peers_mod.peers()
    methods = args.methods.split(",") if args.methods else registered
    for m in methods:
        if m not in registered and not any(p.method == m for p in all_peers):
            raise SystemExit(f"unknown method {m!r}; registered: {', '.join(registered)}")
    chosen_peers = []
    if args.peers != "none":
        words = None if args.peers == "all" else [w.lower() for w in args.peers.split(",")]
        chosen_peers = [
            p for p in all_peers if words is None or any(w in p.impl.lower() for w in words)
        ]
    print(
        f"calibkit {calibkit.__version__} | numpy {np.__version__} | python "
        f"{platform.python_version()} | {platform.machine()} | {os.cpu_count()} CPUs | load "
        f"average {os.getloadavg()[0]:.2f}\nregistered methods: {', '.join(registered)}\n"
        f"ODIR: lambda = {args.lam:g}, mu = {args.mu:g} (lambda/(K(K-1)), mu/K on the mean "
        f"NLL); repeats "
        f"{args.repeats}; timeout {args.timeout:.0f} s per run"
    )
    missing = {}
    for p in chosen_peers:
        why = p.needs()
        if why:
            missing[p.impl.split()[0]] = why
    for name, why in missing.items():
        print(f"peer {name} skipped: {why}")
    unregistered = [m for m in methods if m not in registered]
    if unregistered:
        print(f"not registered in calibkit yet (peers only): {', '.join(unregistered)}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_calibrators_") as tmp:
        for n, k in sizes:
            size = f"{n}x{k}"
            paths = write_data(Path(tmp), n, k, args.seed)
            data_mb = (n * k * 4 + n * 8) / 2**20
            rows = []
            for method in methods:
                jobs: list[tuple[str, dict[str, Any], str | None]] = []
                if method in registered:
                    for label, params in calibkit_configs(method, args.lam, args.mu, args.odir_cv):
                        jobs.append((label, params, None))
                for p in chosen_peers:
                    if p.method != method:
                        continue
                    skip = None
                    if p.needs() is not None or (p.only_k is not None and k > p.only_k):
                        continue
                    if p.memory and p.memory(n, k) > args.max_peer_gb * 2**30:
                        skip = (
                            f"skipped: needs ~{p.memory(n, k) / 2**30:.0f} GB "
                            f"(> --max-peer-gb {args.max_peer_gb:g})"
                        )
                    elif args.skip_slow and p.seconds and p.seconds(n, k) > args.slow_seconds:
                        skip = f"skipped (--skip-slow): estimated ~{p.seconds(n, k):.0f} s"
                    jobs.append((p.impl, {}, skip))
                for label, params, skip in jobs:
                    if skip:
                        res: dict[str, Any] = {"skipped": skip}
                    else:
                        spec = {
                            "method": method,
                            "impl": label,
                            "params": params,
                            "val": paths["val"],
                            "test": paths["test"],
                            "lam": args.lam,
                            "mu": args.mu,
                            "repeats": args.repeats,
                        }
                        res = run_job(spec, args.timeout)
                    rows.append({"size": size, "method": method, "impl": label, "result": res})
                    status = res.get("error") or res.get("skipped") or f"{res['seconds']:.3f} s"
                    print(
                        f"  {size} {method:15s} {label:34s} {status}", file=sys.stderr, flush=True
                    )
            print(table(size, rows, data_mb), flush=True)
            lines = verdicts(size, rows)
            if lines:
                print("\nwhere calibkit is not ahead:\n" + "\n".join(lines), flush=True)
            results.extend(rows)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
