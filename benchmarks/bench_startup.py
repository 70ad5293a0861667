"""Start-up cost of the calibkit program, as whole processes.

    python benchmarks/bench_startup.py [--repeats 21]

Runs each command line ``--repeats`` times, round-robin (so a busy moment on the machine hits
every command alike), and prints the median wall time and CPU time (user + system) of each and
the ratios the project targets: ``calibkit --help`` against ``python -c "import typer, rich"``
(target <= 1.3x, on every Typer and Rich release pyproject.toml allows: the header names the
installed ones) and ``calibkit ece`` on a 10^4 x 10 npz against
``python -c "import numpy, typer, rich"`` (target < 3x). It also lists which heavy modules each
calibkit command imports (``-X importtime``): ``calibkit --help`` draws its page with Rich from
calibkit/_commands.py (calibkit/_fast_help.py), without Typer, numpy or the command modules.

On a machine shared with other work, the CPU-time ratio is the steadier of the two.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import resource
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


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(cmd: list[str], code: int = 0) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``cmd``, which must exit with ``code``."""
    cpu, start = _cpu(), time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if proc.returncode != code:
        raise SystemExit(f"{' '.join(cmd)}: exit status {proc.returncode}, expected {code}")
    return wall, _cpu() - cpu


def _imports(args: list[str], code: int = 0) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "calibkit", *args],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == code, proc.stderr
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
            "calibkit (no arguments: the help, exit 2)": _calibkit(),
            "calibkit --version": [*_calibkit(), "--version"],
            "calibkit ece --help": [*_calibkit(), "ece", "--help"],
            "calibkit ece small.npz (10^4 x 10)": [*_calibkit(), "ece", small],
        }
        codes = {"calibkit (no arguments: the help, exit 2)": 2}
        env_note = {
            k: os.environ[k] for k in ("COLUMNS", "FORCE_COLOR", "NO_COLOR") if k in os.environ
        }
        for name, cmd in commands.items():  # warm the page cache and .pyc files
            _time(cmd, codes.get(name, 0))
        wall: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, cmd in commands.items():
                w, c = _time(cmd, codes.get(name, 0))
                wall[name].append(w)
                cpu[name].append(c)
        heavy = {
            "calibkit --help": _imports(["--help"]),
            "calibkit (no arguments: the help, exit 2)": _imports([], 2),
            "calibkit --version": _imports(["--version"]),
            "calibkit ece --help": _imports(["ece", "--help"]),
            "calibkit ece small.npz (10^4 x 10)": _imports(["ece", small]),
        }

    versions = ", ".join(
        f"{dist} {importlib.metadata.version(dist)}" for dist in ("typer", "rich", "numpy")
    )
    print(
        f"median of {args.repeats} runs each, round-robin; {os.cpu_count()} cores; Python "
        f"{sys.version.split()[0]}; {versions}" + (f"; {env_note}" if env_note else "")
    )
    print(f"{'command':42} {'median':>9} {'min':>9} {'cpu':>9}  heavy modules imported")
    for name in commands:
        mods = ", ".join(heavy[name]) if name in heavy else ""
        med, low, used = (
            statistics.median(wall[name]),
            min(wall[name]),
            statistics.median(cpu[name]),
        )
        print(f"{name:42} {med * 1e3:6.0f} ms {low * 1e3:6.0f} ms {used * 1e3:6.0f} ms  {mods}")

    def ratio(times: dict[str, list[float]], name: str, base: str) -> float:
        return statistics.median(times[name]) / statistics.median(times[base])

    typer_rich, numpy_typer_rich = (
        'python -c "import typer, rich"',
        'python -c "import numpy, typer, rich"',
    )
    small_ece = "calibkit ece small.npz (10^4 x 10)"
    for name, base, target in (
        ("calibkit --help", typer_rich, "<= 1.3x"),
        ("calibkit --version", typer_rich, ""),
        (small_ece, numpy_typer_rich, "< 3x"),
    ):
        label = f"{name.split(' (')[0]} / {base.split('-c ')[1]}:"
        print(
            f"{label:58} {ratio(wall, name, base):.2f}x wall, {ratio(cpu, name, base):.2f}x cpu"
            + (f"  (target {target})" if target else "")
        )


if __name__ == "__main__":
    main()
