"""`python -m build` gives a wheel and an sdist that hold what they should.

The build runs on a copy of the checkout in tmp_path (a build writes ``build/`` and
``*.egg-info`` beside its sources), without isolation (this environment's setuptools, nothing
downloaded). The checks are the ones ``scripts/check_dist.py`` runs before it installs the
wheel and tries it; that script is the place for the install and the smoke test.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from calibkit._version import __version__

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("build", reason="python -m build is not installed (the dev extra has it)")


def _setuptools_is_new_enough() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    major = re.match(r"\d+", setuptools.__version__)
    return major is not None and int(major.group()) >= 77


def _check_dist() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_dist", ROOT / "scripts" / "check_dist.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_dist"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, Path, Path]:
    if not _setuptools_is_new_enough():
        pytest.skip("the build backend needs setuptools>=77 (the dev extra has it)")
    check_dist = _check_dist()
    tmp = tmp_path_factory.mktemp("dist")
    before = sorted(p.name for p in ROOT.iterdir())
    src = check_dist.copy_sources(tmp / "src")
    sdist, wheel = check_dist.build(src, tmp / "out")
    assert sorted(p.name for p in ROOT.iterdir()) == before  # no build/, *.egg-info here
    return check_dist, sdist, wheel


def test_wheel_holds_the_package_and_its_metadata_only(built) -> None:
    check_dist, _, wheel = built
    assert check_dist.check_wheel(wheel) == []
    assert wheel.name == f"calibkit-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        info = f"calibkit-{__version__}.dist-info"
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
        metadata = zf.read(f"{info}/METADATA").decode()
    assert not [n for n in names if n.startswith(("tests/", "sample_data/", "scripts/"))]
    assert "calibkit/py.typed" in names
    assert "calibkit/_fast_help.py" in names and "calibkit/cli/completion.py" in names
    assert "calibkit = calibkit._entry:main" in entry_points.splitlines()
    assert f"Version: {__version__}" in metadata.splitlines()
    assert "Requires-Python: >=3.11" in metadata.splitlines()
    assert "Provides-Extra: torch" in metadata.splitlines()


def test_sdist_holds_what_building_and_testing_need(built) -> None:
    check_dist, sdist, _ = built
    assert check_dist.check_sdist(sdist, against_git=False) == []
    top = f"calibkit-{__version__}"
    with tarfile.open(sdist) as tf:
        names = {m.name.removeprefix(top + "/") for m in tf.getmembers() if m.isfile()}
    for needed in (
        "pyproject.toml",
        "README.md",
        "CHANGELOG.md",
        "LICENSE",
        ".ci/run",
        "tests/conftest.py",
        "tests/test_packaging.py",
        "sample_data/digits_hard_test.npz",
        "sample_data/MANIFEST.json",
        "scripts/check_dist.py",
    ):
        assert needed in names, needed
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_the_checks_catch_a_wheel_without_its_entry_point(built, tmp_path: Path) -> None:
    """The checks can fail: a wheel rewritten without entry_points.txt and py.typed is refused."""
    check_dist, _, wheel = built
    broken = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            if not item.filename.endswith(("entry_points.txt", "py.typed")):
                dst.writestr(item, src.read(item))
        dst.writestr("tests/test_x.py", "")
    problems = check_dist.check_wheel(broken)
    assert any("entry_points.txt" in p for p in problems)
    assert any("py.typed" in p for p in problems)
    assert any("outside the package" in p for p in problems)
