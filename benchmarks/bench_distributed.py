"""Benchmark: the same passes on the local engine and on Dask clusters, over parquet shards.

Run:  python benchmarks/bench_distributed.py --data-dir /tmp/calibkit-distributed
      (writes, once, 10^8 rows of confidence + correct, about 0.5 GB, and 10^7 x 100 float32
      logits + int64 labels, about 4 GB, each in 50 parquet shards; needs ~5 GB of free disk)
      python benchmarks/bench_distributed.py --quick   # 10^6 rows and 10^5 x 100 in 10 shards

For each data set, ``summarize`` (ECE, MCE, NLL, Brier, accuracy: one pass) and, for the logits,
``fit_temperature`` (several Newton passes) run through the library API
(``calibkit.read_predictions`` on the shard directory, under ``using_executor``) on:

* ``local``: the local engine (the thread pool, one thread per core);
* ``dask-threads``: a Dask ``LocalCluster(processes=False)``, 1 worker x 2 threads;
* ``dask-proc-1``: a ``LocalCluster`` of 1 worker process (1 thread);
* ``dask-proc-2``: a ``LocalCluster`` of 2 worker processes (1 thread each).

Every configuration runs in a fresh Python process with a fresh cluster, so its peaks are its
own: the client's peak RSS is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of that process,
each worker's the same number read on the worker (``client.run``) at the end (with
``processes=False`` the worker is the client process). Cluster start-up is timed apart from the
passes. Every configuration's numbers are compared with the local engine's (1e-12 relative, bin
counts exactly; the largest relative difference is printed). On the Dask configurations the
script also records, from Dask's task stream, the compute time of every task (one task = one
shard of one pass), the pickled size of what each task sends (the pass's job + its ``Part``)
and of what it returns (its chunk results), and, on ``dask-proc-2``, the scheduler's overhead
per task (1000 trivial tasks, and a round of one no-work task per shard, through the engine's own
``map_remote``). From those it prints an *estimate* (not a measurement) of the time on W
workers: ``T(W) = T_open + passes * (ceil(shards / W) * t_part + t_round)``.

``--compare-layouts N`` also times the local ``summarize`` of N x 100 logits stored as wide
columns ``logit_0 .. logit_99`` and as one fixed-size-list column ``logits``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

CONFIGS: dict[str, dict[str, Any]] = {
    "local": {},
    "dask-threads": {"workers": 1, "threads_per_worker": 2, "processes": False},
    "dask-proc-1": {"workers": 1, "threads_per_worker": 1, "processes": True},
    "dask-proc-2": {"workers": 2, "threads_per_worker": 1, "processes": True},
}
SUMMARY_FIELDS = (
    "accuracy", "ece", "mce", "rmsce", "nll", "brier", "mean_confidence", "saturated_fraction",
)  # fmt: skip
FIT_FIELDS = ("temperature", "nll_before", "nll_after", "gradient")
DONE = ".complete.json"  # a hidden file: not a shard


# -- data ----------------------------------------------------------------------------------------


def _shard_rows(n: int, shards: int) -> list[int]:
    base, extra = divmod(n, shards)
    return [base + (i < extra) for i in range(shards)]


def _write_shards(directory: Path, params: dict[str, Any], write_one: Any) -> None:
    """Write the shards of ``directory`` unless a finished set with the same ``params`` is there."""
    marker = directory / DONE
    if marker.exists() and json.loads(marker.read_text()) == params:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.parquet"):
        old.unlink()
    marker.unlink(missing_ok=True)
    t0 = time.perf_counter()
    for i, rows in enumerate(_shard_rows(params["rows"], params["shards"])):
        tmp = directory / f".shard-{i:05d}.tmp"
        write_one(tmp, i, rows)
        tmp.rename(directory / f"shard-{i:05d}.parquet")
    marker.write_text(json.dumps(params))
    print(f"wrote {directory} in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)


def write_confidences(directory: Path, n: int, shards: int, dtype: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [("confidence", pa.from_numpy_dtype(np.dtype(dtype))), ("correct", pa.bool_())]
    )

    def one(path: Path, shard: int, rows: int) -> None:
        rng = np.random.default_rng([1, shard])  # deterministic per shard
        with pq.ParquetWriter(path, schema, compression="none") as writer:
            for start in range(0, rows, 1 << 20):
                m = min(1 << 20, rows - start)
                c = rng.random(m).astype(dtype)
                hit = rng.random(m) < c * 0.9  # a little over-confident
                writer.write_table(pa.table({"confidence": c, "correct": hit}, schema=schema))

    params = {"kind": "confidence", "rows": n, "shards": shards, "dtype": dtype, "v": 1}
    _write_shards(directory, params, one)


def write_logits(directory: Path, n: int, k: int, shards: int, layout: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if layout == "wide":
        fields = [(f"logit_{j}", pa.float32()) for j in range(k)]
    else:
        fields = [("logits", pa.list_(pa.float32(), k))]
    schema = pa.schema([*fields, ("label", pa.int64())])

    def one(path: Path, shard: int, rows: int) -> None:
        rng = np.random.default_rng([2, shard])
        with pq.ParquetWriter(path, schema, compression="none") as writer:
            for start in range(0, rows, 65_536):
                m = min(65_536, rows - start)
                z = rng.standard_normal((m, k), dtype=np.float32) * 3
                labels = rng.integers(0, k, m)
                hit = rng.random(m) < 0.6  # 60 % of the rows: the label is the argmax
                labels[hit] = z[hit].argmax(axis=1)
                if layout == "wide":
                    cols = [pa.array(z[:, j]) for j in range(k)]
                else:
                    cols = [pa.FixedSizeListArray.from_arrays(pa.array(z.ravel()), k)]
                cols.append(pa.array(labels))
                writer.write_table(pa.Table.from_arrays(cols, schema=schema))

    params = {"kind": "logits", "rows": n, "k": k, "shards": shards, "layout": layout, "v": 1}
    _write_shards(directory, params, one)


def dir_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.parquet"))


# -- one configuration, in its own process ---------------------------------------------------------


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _identity(x: Any) -> Any:
    return x


def _summary_numbers(s: Any) -> dict[str, Any]:
    out = {f: getattr(s, f) for f in SUMMARY_FIELDS}
    out["n"] = s.n
    out["bin_count"] = s.bins.count.tolist()
    out["bin_sum_confidence"] = s.bins.sum_confidence.tolist()
    out["bin_sum_outcome"] = s.bins.sum_outcome.tolist()
    return out


def _instrument(ex: Any, sizes: dict[str, list[Any]]) -> None:
    """Record the pickled size of each task sent (job + part) and of each result received."""
    import cloudpickle

    submit, result = ex._submit, ex._result

    def _submit(fn: Any, item: Any) -> Any:
        t0 = time.perf_counter()
        sizes["task"].append(len(cloudpickle.dumps((fn, item))))
        sizes["pickle_s"].append(time.perf_counter() - t0)
        return submit(fn, item)

    def _result(future: Any) -> Any:
        out = result(future)
        t0 = time.perf_counter()
        sizes["result"].append(len(cloudpickle.dumps(out)))
        sizes["pickle_s"].append(time.perf_counter() - t0)
        return out

    ex._submit, ex._result = _submit, _result


def _task_times(stream: Any) -> list[float]:
    times = []
    for rec in stream.data:
        compute = [s for s in rec.get("startstops", ()) if s.get("action") == "compute"]
        if compute:
            times.append(sum(s["stop"] - s["start"] for s in compute))
    return times


def _overhead(ex: Any, tasks: int, shards: int) -> dict[str, float]:
    """Scheduler overhead, no data and no work: ``tasks`` trivial tasks through the engine's own
    submission path (``map_remote``: a window of tasks in flight, one submitted per result),
    the same tasks submitted at once (``client.map`` + ``gather``), and a round of ``shards``
    trivial tasks (a pass that does nothing)."""
    list(ex.map_remote(_identity, range(20)))  # warm the workers' import of the function
    t0 = time.perf_counter()
    list(ex.map_remote(_identity, range(tasks)))
    per_task = (time.perf_counter() - t0) / tasks
    t0 = time.perf_counter()
    ex.client.gather(ex.client.map(_identity, range(tasks), pure=False))
    bulk = (time.perf_counter() - t0) / tasks
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        list(ex.map_remote(_identity, range(shards)))
        rounds.append(time.perf_counter() - t0)
    return {
        "per_task_s": per_task,
        "bulk_per_task_s": bulk,
        "round_s": statistics.median(rounds),
        "tasks": tasks,
    }


def run_child(args: argparse.Namespace) -> None:
    from contextlib import nullcontext

    from calibkit.calibrators.temperature import fit_temperature
    from calibkit.engine.executors import ThreadExecutor, using_executor
    from calibkit.loaders import read_predictions
    from calibkit.metrics import summarize

    config = CONFIGS[args.child]
    out: dict[str, Any] = {"config": args.child}
    sizes: dict[str, list[Any]] = {"task": [], "result": [], "pickle_s": []}
    t0 = time.perf_counter()
    if config:
        from calibkit.engine.dask_executor import dask_executor

        ctx: Any = dask_executor(None, **config)
    else:
        ctx = nullcontext(ThreadExecutor())
    with ctx as ex:
        out["startup_s"] = time.perf_counter() - t0
        client = getattr(ex, "client", None)
        if client is not None:
            _instrument(ex, sizes)
        t0 = time.perf_counter()
        src = read_predictions(args.data)
        out["open_s"] = time.perf_counter() - t0
        out["n"] = src.n_rows
        with using_executor(ex):
            for job in args.jobs:
                if client is not None:
                    from distributed import get_task_stream

                    stream: Any = get_task_stream(client=client)
                else:
                    stream = nullcontext()
                before = len(sizes["result"])
                cpu0, wcpu0 = _cpu_s(), _workers_cpu_s(client)
                with stream:
                    t0 = time.perf_counter()
                    if job == "summarize":
                        res = _summary_numbers(summarize(src))
                        passes = 1
                    else:
                        fit = fit_temperature(src)
                        assert fit.fit is not None
                        res = {f: getattr(fit.fit, f) for f in FIT_FIELDS}
                        passes = res["passes"] = fit.fit.passes
                    elapsed = time.perf_counter() - t0
                rec: dict[str, Any] = {"s": elapsed, "passes": passes, "numbers": res}
                rec["client_cpu_s"] = _cpu_s() - cpu0
                if client is not None and client.cluster is not None and config["processes"]:
                    rec["workers_cpu_s"] = _workers_cpu_s(client) - wcpu0
                if client is not None:
                    rec["task_s"] = _task_times(stream)
                    rec["result_bytes"] = sizes["result"][before:]
                out[job] = rec
        if client is not None:
            out["worker_rss_mib"] = sorted(v / 1024 for v in client.run(_maxrss_rusage).values())
            out["task_bytes"] = sizes["task"]
            out["instrument_s"] = sum(sizes["pickle_s"])
            if args.overhead:
                out["overhead"] = _overhead(ex, args.overhead, args.overhead_round)
    out["client_rss_mib"] = _maxrss_mib()
    print("RESULT " + json.dumps(out), flush=True)


def _maxrss_rusage() -> int:
    import resource as r

    return r.getrusage(r.RUSAGE_SELF).ru_maxrss


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process so far: unlike the wall time, the other
    processes of a shared machine do not inflate it."""
    import resource as r

    u = r.getrusage(r.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _workers_cpu_s(client: Any) -> float:
    return sum(client.run(_cpu_s).values()) if client is not None else 0.0


def run_config(
    data: Path, config: str, jobs: list[str], overhead: int, shards: int
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", config, "--data", str(data), "--jobs", *jobs]
    if overhead:
        cmd += ["--overhead", str(overhead), "--overhead-round", str(shards)]
    proc = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])  # type: ignore[no-any-return]


# -- comparison and tables -----------------------------------------------------------------------


def max_rel_diff(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Largest relative difference between two runs' numbers; counts and passes must be equal."""
    worst = 0.0
    for key, x in a.items():
        y = b[key]
        if key in ("n", "passes", "bin_count"):
            if x != y:
                raise AssertionError(f"{key}: {x} != {y}")
            continue
        for u, v in zip(np.ravel(x), np.ravel(y), strict=True):
            if u is None or v is None:
                if u is not v:
                    raise AssertionError(f"{key}: {u} != {v}")
                continue
            if math.isnan(u) or math.isnan(v):
                if not (math.isnan(u) and math.isnan(v)):
                    raise AssertionError(f"{key}: {u} != {v}")
                continue
            scale = max(abs(u), abs(v))
            if scale:
                worst = max(worst, abs(u - v) / scale)
    return worst


def _cpu(rec: dict[str, Any]) -> str:
    if "workers_cpu_s" in rec:
        return f"{rec['client_cpu_s']:.1f} + {rec['workers_cpu_s']:.1f}"
    return f"{rec.get('client_cpu_s', math.nan):.1f}"


def _fmt_bytes(n: float) -> str:
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n:.0f} B"


def report(name: str, n: int, runs: list[dict[str, Any]], jobs: list[str]) -> None:
    base = runs[0]
    print(f"\n### {name}\n")
    print(
        "| engine | start-up s | open s | job | passes | wall s | rows/s | vs local "
        "| CPU s client + workers | client peak RSS MiB | worker peak RSS MiB | max rel diff |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        for job in jobs:
            rec = r[job]
            diff = max_rel_diff(base[job]["numbers"], rec["numbers"])
            assert diff <= 1e-12, f"{r['config']} {job}: relative difference {diff}"
            workers = ", ".join(f"{v:.0f}" for v in r.get("worker_rss_mib", [])) or "-"
            print(
                f"| {r['config']} | {r['startup_s']:.2f} | {r['open_s']:.2f} | {job} "
                f"| {rec['passes']} | {rec['s']:.2f} | {n * rec['passes'] / rec['s']:.3g} "
                f"| {base[job]['s'] / rec['s']:.2f}x | {_cpu(rec)} "
                f"| {r['client_rss_mib']:.0f} | {workers} "
                f"| {diff:.1e} |"
            )
    by = {r["config"]: r for r in runs}
    if "dask-proc-1" in by and "dask-proc-2" in by:
        for job in jobs:
            s1, s2 = by["dask-proc-1"][job]["s"], by["dask-proc-2"][job]["s"]
            print(
                f"\nscaling 1 -> 2 worker processes, {job}: "
                f"{s1:.2f} s -> {s2:.2f} s = {s1 / s2:.2f}x"
            )
    print("\nper task (one shard of one pass), from Dask's task stream and cloudpickle:\n")
    print(
        "| engine | job | tasks | compute s per task (median, max) "
        "| result of a task, pickled (median) | all results |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for r in runs[1:]:
        for job in jobs:
            t = r[job]["task_s"]
            rb = r[job]["result_bytes"]
            shards = len(rb) // r[job]["passes"]
            first, later = rb[:shards], rb[shards:]  # the passes run one after the other
            size = f"{_fmt_bytes(statistics.median(first))}"
            if later:
                size += f" (pass 1), {_fmt_bytes(statistics.median(later))} (later passes)"
            print(
                f"| {r['config']} | {job} | {len(t)} | {statistics.median(t):.3f}, {max(t):.3f} "
                f"| {size} | {_fmt_bytes(sum(rb))} |"
            )
    tb = [b for r in runs[1:] for b in r["task_bytes"]]
    if tb:
        print(
            "\ntask sent (the pass's job + its Part, pickled): "
            f"median {_fmt_bytes(statistics.median(tb))}, "
            f"max {_fmt_bytes(max(tb))}; client time spent measuring sizes: "
            + ", ".join(f"{r['config']} {r['instrument_s']:.2f} s" for r in runs[1:])
        )


def estimate(name: str, shards: int, runs: list[dict[str, Any]], jobs: list[str]) -> None:
    by = {r["config"]: r for r in runs}
    one = by.get("dask-proc-1")
    over = next((r["overhead"] for r in runs if "overhead" in r), None)
    if one is None or over is None:
        return
    print(f"\n### {name}: estimated time on W workers (an estimate from the measured numbers)\n")
    print(
        f"T(W) = T_open + passes x (ceil({shards}/W) x t_part + t_round); t_part, from "
        "dask-proc-1: the median wall time of a task, or the worker CPU seconds per task (its "
        f"cost on a core of its own); t_round = {over['round_s']:.3f} s (a measured "
        f"round of {shards} no-work tasks on 2 workers); scheduler overhead per task "
        f"{over['per_task_s'] * 1e3:.2f} ms through the engine's map_remote, "
        f"{over['bulk_per_task_s'] * 1e3:.2f} ms submitted at once ({over['tasks']} trivial "
        "tasks). Beyond W = shards nothing is gained.\n"
    )
    ws = [1, 2, 10, 25, 50, 100]
    print(
        "| job | passes | t_part s | measured W=1 | measured W=2 | "
        + " | ".join(f"W={w}" for w in ws)
        + " |"
    )
    print("|---|---:|---:|---:|---:|" + "---:|" * len(ws))
    for job in jobs:
        rec = one[job]
        passes = rec["passes"]
        two = by.get("dask-proc-2", {}).get(job, {}).get("s", float("nan"))
        t_parts = [("median task wall", statistics.median(rec["task_s"]))]
        if "workers_cpu_s" in rec:
            t_parts.append(("worker CPU / task", rec["workers_cpu_s"] / len(rec["task_s"])))
        for how, t_part in t_parts:
            cols = [
                one["open_s"]
                + passes * (math.ceil(shards / min(w, shards)) * t_part + over["round_s"])
                for w in ws
            ]
            print(
                f"| {job} | {passes} | {t_part:.3f} ({how}) | {rec['s']:.1f} | {two:.1f} | "
                + " | ".join(f"{c:.1f}" for c in cols)
                + " |"
            )


def compare_layouts(base: Path, n: int, k: int) -> None:
    import pyarrow.parquet as pq

    from calibkit.loaders import read_predictions
    from calibkit.metrics import summarize

    print(f"\n### layouts: local summarize of {n:,} x {k} float32 logits, 10 shards\n")
    print("| layout | size GB | pyarrow read s | calibkit summarize s (best of 3) |")
    print("|---|---:|---:|---:|")
    for layout in ("wide", "list"):
        d = base / f"layout-{layout}-{n}x{k}"
        write_logits(d, n, k, 10, layout)
        t0 = time.perf_counter()
        for p in sorted(d.glob("*.parquet")):
            pq.read_table(p)
        t_read = time.perf_counter() - t0
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            summarize(read_predictions(d))
            best = min(best, time.perf_counter() - t0)
        print(f"| {layout} | {dir_bytes(d) / 1e9:.2f} | {t_read:.2f} | {best:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/calibkit-distributed"))
    ap.add_argument("--quick", action="store_true", help="10^6 rows and 10^5 x 100, 10 shards")
    ap.add_argument("--confidence-rows", type=int, default=100_000_000)
    ap.add_argument("--confidence-dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows of logits")
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--shards", type=int, default=None, help="default 50 (10 with --quick)")
    ap.add_argument("--layout", choices=("wide", "list"), default="wide")
    ap.add_argument("--configs", nargs="+", choices=tuple(CONFIGS), default=list(CONFIGS))
    ap.add_argument("--skip", nargs="*", choices=("confidence", "logits"), default=[])
    ap.add_argument(
        "--logits-jobs",
        nargs="+",
        choices=("summarize", "fit_temperature"),
        default=["summarize", "fit_temperature"],
    )
    ap.add_argument("--compare-layouts", type=int, default=0, metavar="N")
    # internal: one configuration in a fresh process
    ap.add_argument("--child", choices=tuple(CONFIGS), help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--jobs", nargs="+", default=[], help=argparse.SUPPRESS)
    ap.add_argument("--overhead", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--overhead-round", type=int, default=50, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_child(args)
        return
    if args.quick:
        args.confidence_rows, args.rows = 1_000_000, 100_000
    if args.shards is None:
        args.shards = 10 if args.quick else 50
    configs = ["local", *(c for c in args.configs if c != "local")]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(
        f"bench_distributed, {stamp}, {platform.node()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}; client RSS: resource.getrusage ru_maxrss"
    )
    sets = []
    if "confidence" not in args.skip:
        d = (
            args.data_dir
            / f"confidence-{args.confidence_rows}-{args.confidence_dtype}-{args.shards}"
        )
        write_confidences(d, args.confidence_rows, args.shards, args.confidence_dtype)
        sets.append(
            (
                f"{args.confidence_rows:,} confidence rows ({args.confidence_dtype} + bool)",
                d,
                ["summarize"],
            )
        )
    if "logits" not in args.skip:
        d = args.data_dir / f"logits-{args.rows}x{args.classes}-{args.layout}-{args.shards}"
        write_logits(d, args.rows, args.classes, args.shards, args.layout)
        sets.append(
            (
                f"{args.rows:,} x {args.classes} float32 logits ({args.layout})",
                d,
                args.logits_jobs,
            )
        )
    for name, d, jobs in sets:
        name = f"{name}, {args.shards} shards, {dir_bytes(d) / 1e9:.2f} GB"
        print(f"\n{name}: running {', '.join(configs)}", file=sys.stderr, flush=True)
        runs = []
        for c in configs:
            t0 = time.perf_counter()
            tasks = (100 if args.quick else 1000) if c == "dask-proc-2" else 0
            runs.append(run_config(d, c, jobs, tasks, args.shards))
            print(f"  {c}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
            out = args.data_dir / f"results-{d.name}.json"
            out.write_text(json.dumps(runs))  # so far
        print(f"  raw results: {out}", file=sys.stderr, flush=True)
        n = runs[0]["n"]
        report(name, n, runs, jobs)
        estimate(name, args.shards, runs, jobs)
        sys.stdout.flush()
    if args.compare_layouts:
        compare_layouts(args.data_dir, args.compare_layouts, args.classes)


if __name__ == "__main__":
    main()
