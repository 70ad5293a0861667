"""Imports run one way: a module imports only modules of its own layer or of a lower one.

The layers are the README's Layout section, lowest first. Every import counts, also one inside a
function (the CLI imports heavy modules lazily; a lazy import against the direction is still a
dependency against it). The check reads the source with :mod:`ast`; it imports nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "calibkit"

#: Lowest first. A module belongs to the first prefix (longest match) listed for it.
LAYERS: list[tuple[str, ...]] = [
    ("calibkit.errors", "calibkit.limits", "calibkit._version", "calibkit.plugins"),
    ("calibkit.io", "calibkit.progress"),
    ("calibkit.readers",),
    ("calibkit.sources", "calibkit.loaders"),
    ("calibkit.engine",),
    ("calibkit.metrics",),
    ("calibkit.calibrators", "calibkit.stats", "calibkit.diagnostics"),
    ("calibkit.comparison", "calibkit.gate"),
    ("calibkit.plotting",),
    ("calibkit.report",),
    ("calibkit.cli", "calibkit.api", "calibkit._entry", "calibkit._fast_help", "calibkit._commands",
     "calibkit.__main__", "calibkit"),  # "calibkit" itself: the package's __init__ only
]

#: Imports against the direction that are still to be removed (#14). Must end empty.
KNOWN: set[tuple[str, str]] = set()


def _layer(module: str) -> int:
    best, depth = None, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            inside = module == p or (p != "calibkit" and module.startswith(p + "."))
            if inside and p.count(".") > depth:
                best, depth = i, p.count(".")
    assert best is not None, module
    return best


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            # ``from calibkit import progress`` imports the submodule calibkit.progress
            for a in node.names:
                found.add(f"{mod}.{a.name}")
    return {m for m in found if m == "calibkit" or m.startswith("calibkit.")}


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").exists() or (PACKAGE.parent / rel).is_dir()


def _violations() -> set[tuple[str, str]]:
    bad = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        me = _module_name(path)
        for target in _imports(path):
            if not _is_module(target) or target == "calibkit":
                continue  # a name imported from a module, or the package's own __init__
            if _layer(target) > _layer(me):
                bad.add((me, target))
    return bad


def test_every_module_has_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        _layer(_module_name(path))


def test_imports_follow_the_layers() -> None:
    found = _violations()
    new = sorted(found - KNOWN)
    listing = "\n".join(f"  {a} -> {b}" for a, b in new)
    assert not new, "imports against the layer order:\n" + listing


def test_known_violations_are_still_real() -> None:
    """An entry fixed but left in KNOWN would hide its return: remove it."""
    stale = sorted(KNOWN - _violations())
    assert not stale, stale


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    assert _layer("calibkit.metrics.summary") > _layer("calibkit.engine.executors")
    assert _layer("calibkit.cli.ece") == len(LAYERS) - 1
    with pytest.raises(AssertionError):
        _layer("numpy")
