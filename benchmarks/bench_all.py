"""Every benchmark of the scale issue in one command.

    python benchmarks/bench_all.py            # metrics, temperature, start-up, bootstrap, npz CRC,
                                              # every calibrator against its peers, HELM's
                                              # metrics against Kumar's package
    python benchmarks/bench_all.py --quick    # small sizes, no slow baselines (~30 s)
    python benchmarks/bench_all.py --scale    # also the multi-GB parquet files (bench_scale.py)
    python benchmarks/bench_all.py --distributed  # also local vs Dask engines over 50 parquet
                                              # shards (bench_distributed.py; needs the dask
                                              # extra; with --quick: 10^6 rows, 10^5 x 100)

Each script runs in its own process (so one's memory does not inflate another's RSS) and its
table is printed as it comes. Extra arguments after ``--`` go to every script that takes them,
e.g. ``-- --device cuda`` on a GPU machine.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, no slow baselines")
    ap.add_argument("--scale", action="store_true", help="also stream the multi-GB parquet files")
    ap.add_argument(
        "--distributed",
        action="store_true",
        help="also local vs Dask engines over parquet shards (slow; needs calibkit[dask])",
    )
    ap.add_argument("extra", nargs="*", help="arguments after -- for bench_metrics/temperature")
    args = ap.parse_args()

    runs: list[list[str]] = [
        ["bench_metrics.py", *(["--quick"] if args.quick else ["--repeats", "7"]), *args.extra],
        [
            "bench_temperature.py",
            *(["--n", "5000", "--k", "100", "--skip-slow"] if args.quick else []),
            *args.extra,
        ],
        ["bench_startup.py", *(["--repeats", "5"] if args.quick else [])],
        [
            "bench_bootstrap.py",
            *(
                ["--n", "10000", "--replicates", "200", "--loop-replicates", "20"]
                if args.quick
                else []
            ),
        ],
        ["bench_npz_crc.py", *(["--rows", "20000", "--repeats", "3"] if args.quick else [])],
        ["bench_calibrators.py", *(["--quick"] if args.quick else [])],
        ["bench_llm.py", *(["--quick"] if args.quick else [])],
    ]
    if args.scale:
        runs.append(["bench_scale.py"])
    if args.distributed:
        runs.append(["bench_distributed.py", *(["--quick"] if args.quick else [])])
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = platform.processor() or platform.machine()
    print(f"calibkit benchmarks, {stamp}, {platform.node()}, {cpu}")
    for script, *script_args in runs:
        print(f"\n=== python benchmarks/{script} {' '.join(script_args)}".rstrip(), flush=True)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(HERE / script), *script_args], check=False)
        print(
            f"=== {script}: exit {proc.returncode}, {time.perf_counter() - start:.0f} s", flush=True
        )
        if proc.returncode:
            raise SystemExit(proc.returncode)


if __name__ == "__main__":
    main()
