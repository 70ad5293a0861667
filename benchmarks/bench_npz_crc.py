"""Benchmark: the cost of checking the CRC-32 of a memory-mapped (uncompressed) ``.npz`` member.

Run:  python benchmarks/bench_npz_crc.py                 # 10^5 x 1000 float32: a 400 MB file
      python benchmarks/bench_npz_crc.py --rows 20000    # a quick run (80 MB)

Writes ``np.savez(logits=..., labels=...)`` once under ``--dir`` and times, in this process
(medians of ``--repeats``, checked and unchecked runs interleaved):

* ``crc32 only``: ``zlib.crc32`` over the member's stored bytes through the memory map: the
  cost any placement of the check pays (folding it into the chunk stream of the metrics pass
  computes the same function over the same bytes, so it cannot be cheaper than this line);
* ``open``: ``read_predictions`` (CRC pass, then the validation pass over the mapped array), with
  the check and with it switched off (``verify_crc`` replaced by a plain map);
* ``open + ece``: the same plus ``summarize`` (ECE, NLL, Brier, accuracy in one pass).

``cold`` drops the file's pages from the page cache first (``posix_fadvise(DONTNEED)``, Linux
only; the device's own cache may still hold them), ``warm`` runs right after a read.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import calibkit
from calibkit.metrics import summarize
from calibkit.readers import npz as npz_loader
from calibkit.readers.zipfiles import CRC_STEP
from calibkit.sources.predictions import Predictions, SourceView


def write(path: Path, rows: int, classes: int) -> None:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((rows, classes), dtype=np.float32) * 3
    np.savez(path, logits=logits, labels=rng.integers(0, classes, rows))


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def unchecked(path: Path, member: npz_loader.NpzMember, source: str) -> np.memmap:
    """``verify_crc`` without the check: the map alone."""
    assert member.data_start is not None
    size = member.info.compress_size
    return np.memmap(path, dtype=np.uint8, mode="r", offset=member.data_start, shape=(size,))


def crc_only(path: Path) -> None:
    member = npz_loader.npz_members(path, str(path))["logits.npy"]
    raw = unchecked(path, member, str(path))
    crc = 0
    step = CRC_STEP
    for start in range(0, raw.size, step):
        crc = zlib.crc32(raw[start : start + step].data, crc)
    assert crc == member.info.CRC


def open_only(path: Path) -> None:
    calibkit.read_predictions(path)


def open_and_ece(path: Path) -> None:
    summarize(calibkit.read_predictions(path))


class FoldedCRC(SourceView):
    """The alternative placement: the CRC-32 updated as the metrics pass pulls each chunk.

    The chunks come in order from the main thread (the worker threads compute the metrics), so
    the running CRC covers the ``.npy`` header, then each chunk's bytes; it is compared at the
    end of the pass, i.e. only after the metrics were computed.
    """

    def __init__(self, base: Predictions, path: Path) -> None:
        self.base = base
        self.member = npz_loader.npz_members(path, str(path))["logits.npy"]
        self.raw = unchecked(path, self.member, str(path))

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]:
        crc = zlib.crc32(self.raw[: self.member.header_size].data)
        for scores, labels in self.base.chunks(chunk_rows):
            crc = zlib.crc32(np.ascontiguousarray(scores).data, crc)
            yield scores, labels
        if crc != self.member.info.CRC:
            raise AssertionError("CRC mismatch")


def folded_ece(path: Path) -> None:
    preds = calibkit.read_predictions(path)
    assert isinstance(preds, Predictions)
    summarize(FoldedCRC(preds, path))


def once(fn: Callable[[Path], None], path: Path, *, cold: bool) -> float:
    if cold:
        drop_cache(path)
    else:
        fn(path)  # bring the file into the page cache
    start = time.perf_counter()
    fn(path)
    return time.perf_counter() - start


def without_check(fn: Callable[[Path], None]) -> Callable[[Path], None]:
    """``fn`` run with ``verify_crc`` replaced by the plain map."""

    def run(path: Path) -> None:
        original = npz_loader.verify_crc
        npz_loader.verify_crc = unchecked
        try:
            fn(path)
        finally:
            npz_loader.verify_crc = original

    return run


def paired(
    fn: Callable[[Path], None],
    baseline: Callable[[Path], None],
    path: Path,
    *,
    cold: bool,
    repeats: int,
) -> list[float]:
    """Medians of (fn, baseline, fn - baseline), the two runs interleaved."""
    rows = []
    for _ in range(repeats):
        a = once(fn, path, cold=cold)
        b = once(baseline, path, cold=cold)
        rows.append((a, b, a - b))
    return [statistics.median(col) for col in zip(*rows, strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/calibkit-npz-crc"))
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"logits_{args.rows}x{args.classes}.npz"
    if not path.exists():
        write(path, args.rows, args.classes)
    size = path.stat().st_size
    print(f"{path.name}: {size / 1e6:.0f} MB, {os.cpu_count()} CPUs, medians of {args.repeats}")
    print(f"{'':26} {'cache':>5} {'checked s':>10} {'unchecked s':>12} {'cost s':>8} {'cost':>6}")
    rows = [
        ("open (CRC pass at open)", open_only, without_check(open_only)),
        ("open + ece (CRC at open)", open_and_ece, without_check(open_and_ece)),
        ("open + ece (CRC folded)", without_check(folded_ece), without_check(open_and_ece)),
    ]
    for cold in (False, True):
        cache = "cold" if cold else "warm"
        t = statistics.median(once(crc_only, path, cold=cold) for _ in range(args.repeats))
        print(f"{'crc32 only':26} {cache:>5} {t:10.3f} {'':>12} {t:8.3f} {size / t / 1e9:5.1f}G/s")
        for name, fn, baseline in rows:
            checked, plain, cost = paired(fn, baseline, path, cold=cold, repeats=args.repeats)
            print(
                f"{name:26} {cache:>5} {checked:10.3f} {plain:12.3f} {cost:8.3f} "
                f"{100 * cost / plain:5.0f}%"
            )


if __name__ == "__main__":
    main()
