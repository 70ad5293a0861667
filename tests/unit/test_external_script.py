"""benchmarks/external_calibrators.py runs through the library API on crafted model folders
(#15): a table per model, the summary, --out written atomically, one-line errors."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "external_calibrators.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("external_calibrators", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _model(folder: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for name, n in (("val", 300), ("test", 400)):
        z = rng.normal(size=(n, 4)) * 3
        p = np.exp(z / 2 - np.logaddexp.reduce(z / 2, axis=1, keepdims=True))
        y = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
        np.savez(folder / f"{name}.npz", logits=z.astype(np.float32), labels=y)


def test_the_script_writes_a_table_per_model_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "external-logits"
    _model(data / "m_c100_a", 0)
    _model(data / "m_c10_b", 1)
    out = tmp_path / "table.md"
    rc = _script().main(["--data", str(data), "--methods", "temperature", "--out", str(out)])
    assert rc == 0
    text = out.read_text(encoding="utf-8")
    assert "## m_c100_a" in text and "## m_c10_b" in text and "## Summary (measured)" in text
    assert text.count("| temperature |") == 2 and text.count("| uncalibrated |") == 2
    assert "T=2" in text or "T=1.9" in text  # labels drawn from softmax(z / 2)
    assert "Unregularised matrix vs TS on CIFAR-100" in text  # not measured: no matrix run
    assert not list(tmp_path.glob("*.tmp"))
    assert "## m_c10_b" in capsys.readouterr().out


def test_bad_arguments_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script()
    assert script.main(["--data", str(tmp_path / "absent")]) == 2
    assert "not found" in capsys.readouterr().err
    assert script.main(["--data", str(tmp_path), "--methods", "no-such-method"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown calibration method 'no-such-method'" in err
    assert script.main(["--data", str(tmp_path), "--methods", "temperature", "--param", "x"]) == 2
    assert "expected METHOD:NAME=VALUE" in capsys.readouterr().err
