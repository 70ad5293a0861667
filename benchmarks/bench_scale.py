"""Benchmark: streaming large parquet files in bounded memory.

Run:  python benchmarks/bench_scale.py --dir /tmp/calibkit-scale
      (writes a 10^7 x 100 float32 logits parquet, about 4 GB, and a 10^8-row confidence-only
      parquet, about 0.6 GB, once; needs ~5 GB of free disk)

For each file it reports the time of one plain pyarrow read of every column (the I/O floor),
the time of ``calibkit ece FILE --json`` as a whole process, and that process's peak RSS
(GNU ``time``'s maximum resident set size).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def write_logits(path: Path, n: int, k: int, rows_per_group: int = 65_536) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    schema = pa.schema([(f"logit_{j}", pa.float32()) for j in range(k)] + [("label", pa.int64())])
    with pq.ParquetWriter(path, schema, compression="none") as writer:
        for start in range(0, n, rows_per_group):
            m = min(rows_per_group, n - start)
            z = rng.standard_normal((m, k), dtype=np.float32) * 3
            cols = [pa.array(z[:, j]) for j in range(k)]
            cols.append(pa.array(rng.integers(0, k, m)))
            writer.write_table(pa.Table.from_arrays(cols, schema=schema))


def write_confidences(path: Path, n: int, rows_per_group: int = 1_048_576) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    schema = pa.schema([("confidence", pa.float32()), ("correct", pa.bool_())])
    with pq.ParquetWriter(path, schema, compression="none") as writer:
        for start in range(0, n, rows_per_group):
            m = min(rows_per_group, n - start)
            c = rng.random(m, dtype=np.float32)
            hit = rng.random(m, dtype=np.float32) < c
            writer.write_table(pa.table({"confidence": c, "correct": hit}, schema=schema))


def pyarrow_read(path: Path) -> float:
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    with pq.ParquetFile(path) as pf:
        for _ in pf.iter_batches(batch_size=65_536):
            pass
    return time.perf_counter() - t0


def calibkit_run(path: Path) -> tuple[float, float]:
    """Wall time and peak RSS (MiB) of ``calibkit ece PATH --json`` (GNU time's %M)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "calibkit", "ece", str(path), "--json"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    elapsed = time.perf_counter() - t0
    return elapsed, int(proc.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/calibkit-scale"))
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--confidence-rows", type=int, default=100_000_000)
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    logits = args.dir / f"logits_{args.rows}x{args.classes}.parquet"
    confs = args.dir / f"confidence_{args.confidence_rows}.parquet"
    if not logits.exists():
        write_logits(logits, args.rows, args.classes)
    if not confs.exists():
        write_confidences(confs, args.confidence_rows)
    print(
        f"{'file':44} {'size GB':>8} {'pyarrow read s':>15} {'calibkit s':>11} {'peak RSS MB':>12}"
    )
    for path in (logits, confs):
        size = path.stat().st_size / 1e9
        t_read = pyarrow_read(path)
        t_ck, rss = calibkit_run(path)
        print(f"{path.name:44} {size:8.2f} {t_read:15.2f} {t_ck:11.2f} {rss:12.0f}")


if __name__ == "__main__":
    main()
