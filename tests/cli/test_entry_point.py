"""The installed `calibkit` program, run as a user runs it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data" / "digits_hard_test.npz"
HEAVY = ("numpy", "torch", "matplotlib", "pandas", "pyarrow", "scipy")


def _calibkit() -> list[str]:
    exe = shutil.which("calibkit")
    return [exe] if exe else [sys.executable, "-m", "calibkit"]


def test_console_script_prints_json_on_sample_data() -> None:
    proc = subprocess.run(
        [*_calibkit(), "ece", str(SAMPLE), "--bins", "15", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["n"] == 450 and data["n_bins"] == 15
    assert data["ece"] == pytest.approx(0.08761067552259315, abs=1e-9)


def test_bad_input_gives_one_line_and_exit_2_from_the_real_program(tmp_path) -> None:
    bad = tmp_path / "broken.npz"
    bad.write_text("not an archive")
    proc = subprocess.run(
        [*_calibkit(), "ece", str(bad)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"calibkit: error: {bad}: ")
    assert "Traceback" not in proc.stderr


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import sys\n"
        "from calibkit.cli import app\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert proc.stdout.strip() == ""


def test_ece_on_npz_does_not_import_torch_matplotlib_or_pandas() -> None:
    code = (
        "import sys\n"
        "from calibkit.cli import app\n"
        "from typer.testing import CliRunner\n"
        f"r = CliRunner().invoke(app, ['ece', {str(SAMPLE)!r}, '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(','.join(m for m in ('torch', 'matplotlib', 'pandas') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""
