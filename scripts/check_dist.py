#!/usr/bin/env python
"""Build calibkit's sdist and wheel, check what they hold, install the wheel and try it.

    python scripts/check_dist.py            # build (no isolation), check, install --no-deps
    python scripts/check_dist.py --fresh    # ... into a new virtual environment, with every
                                            # dependency from the package index, and the sdist too
    python scripts/check_dist.py --isolated # build in an isolated environment, as a release would

Steps:

1. ``python -m build`` into a temporary folder, from a copy of the checkout (the build writes
   ``build/`` and ``*.egg-info`` next to its sources; the checkout stays as it was). The wheel is
   built from the sdist, so an sdist that lacks a file the build needs fails here.
2. Contents (:func:`check_wheel`, :func:`check_sdist`; ``tests/test_packaging.py`` runs the same
   checks): the wheel holds the ``calibkit`` package (every module, ``py.typed``) and its
   metadata only: no tests, no sample data; the version is ``calibkit._version.__version__``; the
   console script ``calibkit`` is declared; the licence is included. The sdist holds what
   building, testing and regenerating need (MANIFEST.in), and, in a git checkout, every tracked
   file of those folders and nothing untracked.
3. Install: by default the wheel alone (``pip install --no-deps --target``) on top of this
   environment's packages; with ``--fresh`` a new virtual environment with every dependency,
   then the sdist over it (built by pip in isolation).
4. Smoke test, run from a folder outside the checkout so the installed copy is the one found:
   ``calibkit --version``, ``-V``, ``--help``, ``ece --json`` on the sample data (N = 450, ECE as
   the golden value), a bad input (one error line, exit 2), ``completion bash``.

Exit status 0 when everything passed; each problem is printed on its own line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "digits_hard_test.npz"
SAMPLE_ECE = 0.08761067552259315  # tests/cli/test_entry_point.py: 15 width bins
#: Folders of the checkout the sdist carries whole (MANIFEST.in's graft lines).
SDIST_DIRS = ("calibkit", "tests", "sample_data", "benchmarks", "scripts", "docs")
SDIST_FILES = ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "MANIFEST.in", ".ci/run")
#: What the copy of the checkout leaves out (build outputs, caches, virtual environments).
_COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv*",
    "venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.py[cod]",
    ".hypothesis",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "shared",
)


def version() -> str:
    """``calibkit._version.__version__``, read from the file (not imported)."""
    text = (ROOT / "calibkit" / "_version.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if match is None:
        raise SystemExit("calibkit/_version.py: no __version__")
    return match.group(1)


def copy_sources(dest: Path) -> Path:
    """A copy of the checkout to build from (so the build's by-products stay out of it)."""
    shutil.copytree(ROOT, dest, ignore=_COPY_IGNORE, symlinks=True)
    return dest


def build(src: Path, outdir: Path, *, isolated: bool = False) -> tuple[Path, Path]:
    """``python -m build`` of ``src`` into ``outdir``; returns (sdist, wheel)."""
    cmd = [sys.executable, "-m", "build", "--outdir", str(outdir)]
    if not isolated:
        cmd.append("--no-isolation")
    proc = subprocess.run([*cmd, str(src)], capture_output=True, text=True, cwd=src)
    if proc.returncode != 0:
        raise SystemExit(f"python -m build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    sdists = sorted(outdir.glob("*.tar.gz"))
    wheels = sorted(outdir.glob("*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        raise SystemExit(
            f"expected one sdist and one wheel in {outdir}: {sorted(outdir.iterdir())}"
        )
    return sdists[0], wheels[0]


def _package_modules(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in (root / "calibkit").rglob("*.py")
        if "__pycache__" not in p.parts
    }


def check_wheel(wheel: Path, root: Path = ROOT) -> list[str]:
    """Problems with ``wheel`` (an empty list when there are none)."""
    problems: list[str] = []
    ver = version()
    if wheel.name != f"calibkit-{ver}-py3-none-any.whl":
        problems.append(f"wheel name {wheel.name}: expected calibkit-{ver}-py3-none-any.whl")
    info = f"calibkit-{ver}.dist-info"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        read = {n: zf.read(n).decode("utf-8") for n in names if n.startswith(info + "/")}
    stray = sorted(n for n in names if not n.startswith(("calibkit/", info + "/")))
    if stray:
        problems.append(f"wheel holds files outside the package: {stray[:10]}")
    if any("__pycache__" in n or n.endswith((".pyc", ".pyo")) for n in names):
        problems.append("wheel holds compiled files")
    missing = sorted(_package_modules(root) - names)
    if missing:
        problems.append(f"wheel lacks modules: {missing[:10]}")
    if (root / "calibkit" / "py.typed").exists() and "calibkit/py.typed" not in names:
        problems.append("wheel lacks calibkit/py.typed")
    metadata = read.get(f"{info}/METADATA", "")
    if f"\nVersion: {ver}\n" not in metadata:
        problems.append(f"METADATA does not say Version: {ver}")
    if "\nName: calibkit\n" not in metadata:
        problems.append("METADATA does not say Name: calibkit")
    if (root / "LICENSE").exists() and f"{info}/licenses/LICENSE" not in names:
        problems.append("wheel lacks the licence (dist-info/licenses/LICENSE)")
    entry_points = read.get(f"{info}/entry_points.txt", "")
    if not re.search(
        r"^\[console_scripts\]\s*\ncalibkit = calibkit\._entry:main$", entry_points, re.M
    ):
        problems.append(
            f"entry_points.txt does not declare calibkit = calibkit._entry:main: {entry_points!r}"
        )
    return problems


def _tracked(root: Path) -> set[str] | None:
    """The files git tracks under the sdist's folders, or None outside a git checkout."""
    try:
        proc = subprocess.run(
            ["git", "ls-files", "-z", "--", *SDIST_DIRS, *SDIST_FILES],
            capture_output=True,
            cwd=root,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    files = {name for name in proc.stdout.decode("utf-8").split("\0") if name}
    return {f for f in files if (root / f).is_file()} or None


def check_sdist(sdist: Path, root: Path = ROOT, *, against_git: bool = True) -> list[str]:
    """Problems with ``sdist`` (an empty list when there are none); ``against_git``: also
    compare it with the files git tracks (committed work only: a new file not yet added to git
    counts as stray)."""
    problems: list[str] = []
    ver = version()
    top = f"calibkit-{ver}"
    if sdist.name != f"{top}.tar.gz":
        problems.append(f"sdist name {sdist.name}: expected {top}.tar.gz")
    with tarfile.open(sdist) as tf:
        members = [m for m in tf.getmembers() if m.isfile()]
        names = {m.name.removeprefix(top + "/") for m in members}
        pkg_info = tf.extractfile(f"{top}/PKG-INFO")
        pkg_text = pkg_info.read().decode("utf-8") if pkg_info else ""
    if f"\nVersion: {ver}\n" not in pkg_text:
        problems.append(f"PKG-INFO does not say Version: {ver}")
    required = {*SDIST_FILES, "PKG-INFO", "calibkit/_version.py", "tests/conftest.py"}
    required |= {p.relative_to(root).as_posix() for p in (root / "sample_data").glob("*.npz")}
    required |= _package_modules(root)
    lacking = sorted(required - names)
    if lacking:
        problems.append(f"sdist lacks {lacking[:10]}")
    if any("__pycache__" in n or n.endswith((".pyc", ".pyo")) for n in names):
        problems.append("sdist holds compiled files")
    tracked = _tracked(root) if against_git else None
    if tracked is not None:
        made_by_build = {"PKG-INFO", "setup.cfg"}
        extra = sorted(
            n for n in names - tracked - made_by_build if not n.startswith("calibkit.egg-info/")
        )
        if extra:
            problems.append(f"sdist holds files git does not track: {extra[:10]}")
        absent = sorted(tracked - names)
        if absent:
            problems.append(f"sdist lacks tracked files: {absent[:10]}")
    return problems


def _run(cmd: Sequence[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, env=env, cwd=cwd)


def smoke(
    calibkit: Sequence[str], python: str, env: dict[str, str], where: Path, cwd: Path
) -> list[str]:
    """Run the installed program; ``where``: the folder the installed package must come from."""
    problems: list[str] = []
    ver = version()
    proc = _run([python, "-c", "import calibkit; print(calibkit.__file__)"], env, cwd)
    found = Path(proc.stdout.strip()).resolve()
    if proc.returncode != 0 or where.resolve() not in found.parents:
        problems.append(
            f"import calibkit found {found or proc.stderr.strip()}, not a file in {where}"
        )
    for flag in ("--version", "-V"):
        proc = _run([*calibkit, flag], env, cwd)
        if proc.returncode != 0 or proc.stdout != f"calibkit {ver}\n":
            problems.append(
                f"calibkit {flag}: exit {proc.returncode}, {proc.stdout!r} {proc.stderr!r}"
            )
    proc = _run([*calibkit, "--help"], env, cwd)
    if proc.returncode != 0 or "Usage: calibkit" not in proc.stdout:
        problems.append(f"calibkit --help: exit {proc.returncode}, {proc.stderr[-500:]!r}")
    proc = _run([*calibkit, "ece", str(SAMPLE), "--json"], env, cwd)
    try:
        doc = json.loads(proc.stdout)
        if doc["n"] != 450 or abs(doc["ece"] - SAMPLE_ECE) > 1e-9:
            problems.append(f"calibkit ece {SAMPLE.name}: n = {doc['n']}, ece = {doc['ece']}")
    except (ValueError, KeyError, TypeError):
        problems.append(f"calibkit ece --json: exit {proc.returncode}, {proc.stderr[-500:]!r}")
    bad = cwd / "broken.npz"
    bad.write_text("not an archive", encoding="utf-8")
    proc = _run([*calibkit, "ece", str(bad)], env, cwd)
    lines = proc.stderr.splitlines()
    if proc.returncode != 2 or len(lines) != 1 or not lines[0].startswith("calibkit: error: "):
        problems.append(f"calibkit ece on a bad file: exit {proc.returncode}, {proc.stderr!r}")
    proc = _run([*calibkit, "completion", "bash"], env, cwd)
    if proc.returncode != 0 or "complete -o default -F" not in proc.stdout:
        problems.append(f"calibkit completion bash: exit {proc.returncode}, {proc.stderr!r}")
    return problems


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def install_on_this_env(wheel: Path, work: Path) -> list[str]:
    """The wheel alone into a folder put in front of this environment's packages."""
    target = work / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
         "--target", str(target), str(wheel)],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        return [f"pip install --target failed: {proc.stderr[-2000:]}"]
    env = _clean_env()
    env["PYTHONPATH"] = str(target)
    exe = target / "bin" / "calibkit"
    program = [str(exe)] if exe.exists() else [sys.executable, "-m", "calibkit"]
    return smoke(program, sys.executable, env, target, work)


def install_fresh(wheel: Path, sdist: Path, work: Path) -> list[str]:
    """A new virtual environment: the wheel with its dependencies, then the sdist over it."""
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = str(bindir / "python")
    env = _clean_env()
    problems: list[str] = []
    for label, artefact, extra in (
        ("wheel", wheel, []),
        ("sdist", sdist, ["--no-deps", "--force-reinstall"]),
    ):
        proc = _run([python, "-m", "pip", "install", "--quiet", *extra, str(artefact)], env, work)
        if proc.returncode != 0:
            problems.append(f"pip install of the {label} failed: {proc.stderr[-2000:]}")
            break
        site = _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env, work
        )
        found = smoke([str(bindir / "calibkit")], python, env, Path(site.stdout.strip()), work)
        problems += [f"{label}: {p}" for p in found]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fresh", action="store_true", help="install into a new venv, with deps")
    parser.add_argument("--isolated", action="store_true", help="build in an isolated env")
    parser.add_argument("--keep", type=Path, help="copy the built sdist and wheel here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="calibkit-dist-") as tmp:
        work = Path(tmp)
        src = copy_sources(work / "src")
        sdist, wheel = build(src, work / "dist", isolated=args.isolated)
        for artefact in (sdist, wheel):
            print(f"built {artefact.name} ({artefact.stat().st_size} bytes)")
        problems = check_wheel(wheel) + check_sdist(sdist)
        run_dir = work / "run"
        run_dir.mkdir()
        if args.fresh:
            problems += install_fresh(wheel, sdist, run_dir)
        else:
            problems += install_on_this_env(wheel, run_dir)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for artefact in (sdist, wheel):
                shutil.copy2(artefact, args.keep / artefact.name)
    for problem in problems:
        print(f"check_dist: {problem}", file=sys.stderr)
    print("check_dist: " + ("ok" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
