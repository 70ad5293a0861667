"""`calibkit teacher`: JSON, table, CSV and figure of the teacher diagnostics over T, checked
against an independent formula, golden numbers on the sample data, and one-line errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from _cli import assert_ok, invoke, one_error_line, run_json, write_npz
from scipy.special import entr, logsumexp
from typer.testing import CliRunner

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def direct(z: np.ndarray, y: np.ndarray, t: float) -> tuple[float, float, float]:
    """Mean entropy, top-1 mass and gamma of softmax(z / t) (independent of calibkit)."""
    z = np.asarray(z, dtype=np.float64) / t
    p = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    k = z.shape[1]
    wrong = 1.0 - p[np.arange(len(y)), y]
    return (
        float(entr(p).sum(axis=1).mean()),
        float(p.max(axis=1).mean()),
        wrong.mean() * k / (k - 1),
    )


@pytest.fixture
def teachers(
    tmp_path: Path, rng: np.random.Generator
) -> dict[str, tuple[Path, np.ndarray, np.ndarray]]:
    out = {}
    for name, scale in (("sharp", 6.0), ("soft", 1.0)):
        z = rng.normal(scale=scale, size=(120, 4))
        y = rng.integers(0, 4, 120)
        out[name] = (write_npz(tmp_path / f"{name}.npz", logits=z, labels=y), z, y)
    return out


def _args(teachers: dict) -> list[str]:
    return [f"{name}={path}" for name, (path, _, _) in teachers.items()]


def test_json_against_the_formula(runner: CliRunner, teachers: dict) -> None:
    doc = run_json(runner, "teacher", *_args(teachers))
    assert [t["name"] for t in doc["teachers"]] == ["sharp", "soft"]
    for entry in doc["teachers"]:
        _, z, y = teachers[entry["name"]]
        assert entry["temperatures"] == [1.0, 2.0, 3.0, 4.0, 6.0, 8.0]  # the default grid
        assert entry["n"] == 120 and entry["n_classes"] == 4 and entry["labels"] == "hard"
        assert entry["input"] == "logits" and entry["ls_alpha"] is None
        for j, t in enumerate(entry["temperatures"]):
            h, top1, g = direct(z, y, t)
            assert entry["entropy"][j] == pytest.approx(h, rel=1e-12)
            assert entry["top1"][j] == pytest.approx(top1, rel=1e-12)
            assert entry["gamma"][j] == pytest.approx(g, rel=1e-12)


@pytest.mark.parametrize(
    ("spec", "temps"),
    [
        ("1:3:0.5", [1.0, 1.5, 2.0, 2.5, 3.0]),
        ("0.5,2,10", [0.5, 2.0, 10.0]),
        ("0.3:0.9:0.3", [0.3, 0.6, 0.9]),
    ],
)
def test_temperature_grids(
    runner: CliRunner, teachers: dict, spec: str, temps: list[float]
) -> None:
    doc = run_json(runner, "teacher", *_args(teachers), "--temperatures", spec)
    assert doc["teachers"][0]["temperatures"] == temps


def test_chunk_rows_change_nothing(runner: CliRunner, teachers: dict) -> None:
    ref = run_json(runner, "teacher", *_args(teachers))
    assert run_json(runner, "teacher", *_args(teachers), "--chunk-rows", "7") == ref


def test_table_csv_and_plot(runner: CliRunner, teachers: dict, tmp_path: Path) -> None:
    table, fig = tmp_path / "t.csv", tmp_path / "t.png"
    result = invoke(runner, "teacher", *_args(teachers), "--csv", table, "--plot", fig,
                    "--ls-alpha", "soft=0.1")  # fmt: skip
    assert_ok(result)
    assert result.stderr == f"calibkit: wrote {table}\ncalibkit: wrote {fig}\n"
    assert "equivalent smoothing gamma(T)" in result.stdout
    assert "alpha given" in result.stdout and "sharp" in result.stdout
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert len(rows) == 12 and rows[0].keys() == {
        "teacher",
        "temperature",
        "entropy",
        "top1",
        "gamma",
    }
    _, z, y = teachers["soft"]
    row = next(r for r in rows if r["teacher"] == "soft" and r["temperature"] == "4.0")
    assert float(row["gamma"]) == pytest.approx(direct(z, y, 4.0)[2], rel=1e-12)
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = run_json(runner, "teacher", *_args(teachers), "--ls-alpha", "soft=0.1")
    assert [t["ls_alpha"] for t in doc["teachers"]] == [None, 0.1]
    assert float(row["gamma"]) == doc["teachers"][1]["gamma"][3]  # 17 digits: read back exactly


def test_golden_numbers_on_sample_data(runner: CliRunner) -> None:
    names = ("hard", "ls10")
    doc = run_json(runner, "teacher", *[f"{m}={SAMPLE / f'digits_{m}_test.npz'}" for m in names],
                   "--temperatures", "1,4")  # fmt: skip
    golden = {"hard": (0.1397, 0.2546), "ls10": (0.2762, 0.8556)}  # measured once by calibkit
    for entry in doc["teachers"]:
        with np.load(SAMPLE / f"digits_{entry['name']}_test.npz", allow_pickle=False) as f:
            z, y = f["logits"], f["labels"]
        for j, t in enumerate((1.0, 4.0)):
            assert entry["gamma"][j] == pytest.approx(direct(z, y, t)[2], rel=1e-12)
        assert tuple(round(g, 4) for g in entry["gamma"]) == golden[entry["name"]]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("0,1", "--temperatures must be finite numbers > 0; got 0"),
        ("1,-2", "--temperatures must be finite numbers > 0; got -2"),
        ("1,inf", "--temperatures must be finite numbers > 0; got inf"),
        ("a,b", "--temperatures must be comma-separated numbers or START:STOP:STEP; got 'a,b'"),
        (",", "--temperatures is empty"),
        ("1:8:0.3", "grid '1:8:0.3': STOP is not START plus a whole number of steps"),
        ("0:8:1", "grid '0:8:1': START must be > 0 (a temperature); got 0"),
    ],
)
def test_bad_temperatures(runner: CliRunner, teachers: dict, spec: str, problem: str) -> None:
    message = one_error_line(invoke(runner, "teacher", *_args(teachers), "--temperatures", spec))
    assert message.startswith(problem), message


@pytest.mark.parametrize(
    ("alpha", "problem"),
    [
        ("other=0.1", "--ls-alpha names 'other', which is not one of the teachers"),
        ("soft=2", "--ls-alpha 'soft=2': ALPHA must be a number in [0, 1]"),
        ("soft=x", "--ls-alpha 'soft=x': ALPHA must be a number in [0, 1]"),
        ("0.1", "--ls-alpha '0.1': expected NAME=ALPHA, e.g. ls10=0.1"),
    ],
)
def test_bad_alpha(runner: CliRunner, teachers: dict, alpha: str, problem: str) -> None:
    result = invoke(runner, "teacher", *_args(teachers), "--ls-alpha", alpha)
    assert one_error_line(result) == problem


def test_outputs_never_over_an_input(runner: CliRunner, teachers: dict, tmp_path: Path) -> None:
    path = teachers["sharp"][0]
    before = path.read_bytes()
    one_error_line(invoke(runner, "teacher", *_args(teachers), "--csv", path))
    same = tmp_path / "x.png"
    message = one_error_line(
        invoke(runner, "teacher", *_args(teachers), "--csv", same, "--plot", same)
    )
    assert "give them different files" in message
    assert path.read_bytes() == before and not same.exists()
    one_error_line(invoke(runner, "teacher", *_args(teachers), "--plot", tmp_path / "x.txt"))


def test_bad_file(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    one_error_line(invoke(runner, "teacher", f"a={bad}"), bad)
    one_error_line(invoke(runner, "teacher", f"a={tmp_path / 'missing.npz'}"))
