"""`calibkit check` against a baseline of another task, or of other examples.

A 2-class baseline of 114 rows used to gate a 10-class candidate of 360 rows, printing PASSED
with a note. Now another number of classes is always a usage error (exit 2, one line), and
other examples (another N, or other labels) need ``--unpaired`` (or ``unpaired = true`` in
``[tool.calibkit.check]``). Every file is built in ``tmp_path``; every test runs in its own
working directory so no ``pyproject.toml`` of the checkout is read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _cli import invoke
from _cli import one_error_line as refused
from typer.testing import CliRunner, Result

from calibkit.cli import app
from calibkit.gate.baseline import UNPAIRED_NOTE

BOOT = ("--bootstrap", "200")
INCREASE = ("--max-increase", "ece=0.01,nll=0.02")
HINT = (
    "give --unpaired (or unpaired = true in [tool.calibkit.check]) to compare them anyway, "
    "with an unpaired bootstrap, much less sensitive"
)


def run(runner: CliRunner, *args: str | Path) -> Result:
    return invoke(runner, "check", *args)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def model(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, size=(n, k))
    y = np.where(rng.random(n) < 0.8, z.argmax(1), rng.integers(0, k, n))
    return z, y


def save(path: Path, z: np.ndarray, y: np.ndarray) -> Path:
    if path.suffix == ".npz":
        np.savez(path, logits=z, labels=y)
    else:
        pq.write_table(
            pa.table({**{f"logit_{j}": z[:, j] for j in range(z.shape[1])}, "label": y}), path
        )
    return path


def verdict(result: Result) -> dict[str, Any]:
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


@pytest.fixture
def candidate(tmp_path: Path) -> Path:
    return save(tmp_path / "cand.npz", *model(360, 10, seed=1))


# --------------------------------------------------------------------------------------------
# another task: always refused


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
@pytest.mark.parametrize("unpaired", [False, True])
def test_a_baseline_with_other_classes_is_refused(
    runner: CliRunner, tmp_path: Path, candidate: Path, suffix: str, unpaired: bool
) -> None:
    base = save(tmp_path / f"base{suffix}", *model(114, 2, seed=2))
    report = tmp_path / "report.xml"
    args = [candidate, "--baseline", base, *INCREASE, *BOOT, "--junit", report]
    problem = refused(run(runner, *args, *(["--unpaired"] if unpaired else [])))
    assert problem == (
        f"{base}: has 2 classes but the candidate {candidate} has 10: a regression check needs "
        "two models of the same task"
    )
    assert not report.exists()


def test_same_n_but_other_classes_is_refused(
    runner: CliRunner, tmp_path: Path, candidate: Path
) -> None:
    base = save(tmp_path / "base.npz", *model(360, 9, seed=2))
    assert "has 9 classes but the candidate" in refused(
        run(runner, candidate, "--baseline", base, *INCREASE, *BOOT)
    )


@pytest.mark.parametrize("unpaired", [False, True])
def test_a_json_baseline_with_other_classes_is_refused(
    runner: CliRunner, tmp_path: Path, candidate: Path, unpaired: bool
) -> None:
    other = save(tmp_path / "other.npz", *model(114, 2, seed=2))
    base = tmp_path / "base.json"
    made = runner.invoke(app, ["ece", str(other), "--json", "--out", str(base)])
    assert made.exit_code == 0, made.output
    problem = refused(
        run(runner, candidate, "--baseline", base, *INCREASE, *(["--unpaired"] * unpaired))
    )
    assert problem == (
        f"{base}: has 2 classes but the candidate {candidate} has 10: a regression check needs "
        "two models of the same task"
    )


# --------------------------------------------------------------------------------------------
# other examples: only on request


def test_a_baseline_of_another_n_needs_unpaired(
    runner: CliRunner, tmp_path: Path, candidate: Path
) -> None:
    base = save(tmp_path / "base.npz", *model(300, 10, seed=2))
    problem = refused(run(runner, candidate, "--baseline", base, *INCREASE, *BOOT))
    assert problem == (
        f"{base}: holds 300 examples but the candidate {candidate} holds 360: not a baseline of "
        f"the same examples; {HINT}"
    )
    out = verdict(
        run(runner, candidate, "--baseline", base, *INCREASE, *BOOT, "--unpaired", "--json")
    )
    assert out["paired"] is False and out["notes"] == [UNPAIRED_NOTE]
    assert [c["name"] for c in out["checks"]] == ["regression_ece", "regression_nll"]


def test_a_baseline_with_other_labels_needs_unpaired(
    runner: CliRunner, tmp_path: Path, candidate: Path
) -> None:
    z, y = model(360, 10, seed=1)
    order = np.random.default_rng(0).permutation(360)
    base = save(tmp_path / "shuffled.parquet", z[order], y[order])  # same rows, another order
    problem = refused(run(runner, candidate, "--baseline", base, *INCREASE, *BOOT))
    assert problem == (
        f"{base}: holds as many examples as the candidate {candidate} (360) but other labels "
        f"(other examples, or the same in another order); {HINT}"
    )
    out = verdict(
        run(runner, candidate, "--baseline", base, *INCREASE, *BOOT, "--unpaired", "--json")
    )
    assert out["paired"] is False and out["notes"] == [UNPAIRED_NOTE]
    # the same model on the same rows: the worsening is zero whatever the pairing
    assert all(c["delta"] == pytest.approx(0.0, abs=1e-12) for c in out["checks"])


def test_the_same_examples_stay_paired_with_or_without_unpaired(
    runner: CliRunner, tmp_path: Path, candidate: Path
) -> None:
    z, y = model(360, 10, seed=1)
    base = save(tmp_path / "base.parquet", z * 1.5, y)
    for extra in ([], ["--unpaired"]):
        out = verdict(
            run(runner, candidate, "--baseline", base, *INCREASE, *BOOT, *extra, "--json")
        )
        assert out["paired"] is True and out["notes"] == []


def test_unpaired_from_the_config_file(runner: CliRunner, tmp_path: Path, candidate: Path) -> None:
    save(tmp_path / "base.npz", *model(300, 10, seed=2))
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[tool.calibkit.check]\nbaseline = "base.npz"\nmax-increase = "ece=0.5"\n'
        "bootstrap = 200\nunpaired = true\n",
        encoding="utf-8",
    )
    out = verdict(run(runner, candidate, "--json"))
    assert out["paired"] is False and UNPAIRED_NOTE in out["notes"]
    pyproject.write_text(pyproject.read_text().replace("true", "false"), encoding="utf-8")
    assert "not a baseline of the same examples" in refused(run(runner, candidate))


# --------------------------------------------------------------------------------------------
# JSON baselines: point values, with n and n_classes checked


def json_baseline(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "base.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_a_json_baseline_of_another_n_needs_unpaired(
    runner: CliRunner, tmp_path: Path, candidate: Path
) -> None:
    other = save(tmp_path / "other.npz", *model(300, 10, seed=2))
    base = tmp_path / "base.json"
    assert runner.invoke(app, ["ece", str(other), "--json", "--out", str(base)]).exit_code == 0
    problem = refused(run(runner, candidate, "--baseline", base, *INCREASE))
    assert problem == (
        f"{base}: holds 300 examples but the candidate {candidate} holds 360: not a baseline of "
        f"the same examples; {HINT}"
    )
    out = verdict(run(runner, candidate, "--baseline", base, *INCREASE, "--unpaired", "--json"))
    assert out["paired"] is None
    assert all(c["p_value"] is None for c in out["checks"])


def test_a_json_baseline_of_the_same_n_is_a_point_comparison(
    runner: CliRunner, tmp_path: Path, candidate: Path
) -> None:
    base = tmp_path / "base.json"
    assert runner.invoke(app, ["ece", str(candidate), "--json", "--out", str(base)]).exit_code == 0
    out = verdict(run(runner, candidate, "--baseline", base, *INCREASE, "--json"))
    assert out["passed"] is True and out["paired"] is None
    assert all(c["delta"] == pytest.approx(0.0, abs=1e-12) for c in out["checks"])


@pytest.mark.parametrize("bad", ["x", -1, 2.5, True, [3]])
@pytest.mark.parametrize("key", ["n", "n_classes"])
def test_a_json_baseline_with_malformed_counts_is_refused(
    runner: CliRunner, tmp_path: Path, candidate: Path, key: str, bad: Any
) -> None:
    base = json_baseline(tmp_path, {"n": 360, "n_classes": 10, "ece": 0.1, "nll": 1.0, key: bad})
    problem = refused(run(runner, candidate, "--baseline", base, *INCREASE))
    assert problem == f"{base}: {key!r} must be a count (from calibkit ece --json)"


def test_a_hand_written_json_without_counts_is_used_as_it_is(
    runner: CliRunner, tmp_path: Path, candidate: Path
) -> None:
    base = json_baseline(tmp_path, {"ece": 1.0, "nll": 100.0})
    out = verdict(run(runner, candidate, "--baseline", base, *INCREASE, "--json"))
    assert out["passed"] is True and out["paired"] is None


@pytest.mark.parametrize("bad", [10**400, "0.1", None, True, float("nan")])
def test_a_json_baseline_value_that_is_no_finite_number_is_refused(
    runner: CliRunner, tmp_path: Path, candidate: Path, bad: Any
) -> None:
    """Regression: a 400-digit integer made ``math.isfinite`` raise OverflowError (traceback)."""
    path = tmp_path / "base.json"
    doc = {"n": 360, "n_classes": 10, "ece": 0.1, "nll": 1.0}
    text = json.dumps(doc).replace('"ece": 0.1', f'"ece": {json.dumps(bad)}')
    path.write_text(text, encoding="utf-8")
    problem = refused(run(runner, candidate, "--baseline", path, *INCREASE))
    assert problem == f"{path}: has no numeric 'ece' (from calibkit ece --json)"
