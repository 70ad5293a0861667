"""Start-up cost of the calibkit program, as whole processes.

    python benchmarks/bench_startup.py [--repeats 21]

Runs each command line ``--repeats`` times, round-robin (so a busy moment on the machine hits
every command alike), and prints the median wall time of each and the ratios the scale issue
targets: ``calibkit --help`` against ``python -c "import typer, rich"`` (target <= 1.3x) and
``calibkit ece`` on a 10^4 x 10 npz against ``python -c "import numpy, typer, rich"`` (target
< 3x). It also lists which heavy modules each calibkit command imports (``-X importtime``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HEAVY = ("typer", "rich", "numpy", "scipy", "pyarrow", "pandas", "matplotlib", "torch")


def _calibkit() -> list[str]:
    exe = Path(sys.executable).with_name("calibkit")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("calibkit")
    return [found] if found else [sys.executable, "-m", "calibkit"]


def _time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _imports(args: list[str]) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "calibkit", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    seen = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    return [name for name in HEAVY if name in seen]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=21)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        small = os.path.join(tmp, "small.npz")
        rng = np.random.default_rng(0)
        np.savez(
            small,
            logits=rng.normal(size=(10_000, 10)).astype(np.float32),
            labels=rng.integers(0, 10, 10_000),
        )
        py = sys.executable
        commands = {
            "python -c pass": [py, "-c", "pass"],
            'python -c "import typer, rich"': [py, "-c", "import typer, rich"],
            'python -c "import numpy, typer, rich"': [py, "-c", "import numpy, typer, rich"],
            "calibkit --help": [*_calibkit(), "--help"],
            "calibkit ece --help": [*_calibkit(), "ece", "--help"],
            "calibkit ece small.npz (10^4 x 10)": [*_calibkit(), "ece", small],
        }
        env_note = {
            k: os.environ[k] for k in ("COLUMNS", "FORCE_COLOR", "NO_COLOR") if k in os.environ
        }
        for cmd in commands.values():  # warm the page cache and .pyc files
            _time(cmd)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, cmd in commands.items():
                times[name].append(_time(cmd))
        medians = {name: statistics.median(ts) for name, ts in times.items()}
        heavy = {
            "calibkit --help": _imports(["--help"]),
            "calibkit ece --help": _imports(["ece", "--help"]),
            "calibkit ece small.npz (10^4 x 10)": _imports(["ece", small]),
        }

    print(
        f"median of {args.repeats} runs each, round-robin; {os.cpu_count()} cores; {env_note or ''}"
    )
    print(f"{'command':42} {'median':>9} {'min':>9}  heavy modules imported")
    for name in commands:
        mods = ", ".join(heavy[name]) if name in heavy else ""
        print(f"{name:42} {medians[name] * 1e3:7.0f} ms {min(times[name]) * 1e3:6.0f} ms  {mods}")
    help_ratio = medians["calibkit --help"] / medians['python -c "import typer, rich"']
    ece_ratio = (
        medians["calibkit ece small.npz (10^4 x 10)"]
        / medians['python -c "import numpy, typer, rich"']
    )
    print(f"calibkit --help / import typer, rich:        {help_ratio:.2f}x  (target <= 1.3x)")
    print(f"calibkit ece small / import numpy,typer,rich: {ece_ratio:.2f}x  (target < 3x)")


if __name__ == "__main__":
    main()
