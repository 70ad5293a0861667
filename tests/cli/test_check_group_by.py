"""`calibkit check --group-by COLUMN`: limits and regressions per group, JUnit per (check,
group), the baseline's groups, small and skipped groups, the configuration keys.

Every input is crafted in ``tmp_path``: an ``.npz`` with a member ``task`` (or a parquet file
with a column ``task``) of three groups, the candidate over-confident in group ``b`` only.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _cli import assert_exit, invoke, no_traceback, one_error_line
from typer.testing import CliRunner

from calibkit.sources.predictions import Predictions
from calibkit.stats.bootstrap import model_sums

N = {"a": 900, "b": 360, "c": 120}  # c is under HELM's 300 rows
BOOT = ("--bootstrap", "400")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    task = np.concatenate([[k] * n for k, n in N.items()])
    rng.shuffle(task)
    n = task.size
    z = rng.normal(size=(n, 4)) * 1.5
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = (rng.uniform(size=(n, 1)) > p.cumsum(axis=1)).sum(axis=1)  # calibrated: y ~ p
    return {"logits": z, "labels": y, "task": task}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """(baseline, candidate): the same rows; the candidate's logits x4 in group b."""
    arrays = _arrays()
    np.savez(tmp_path / "base.npz", **arrays)
    worse = dict(
        arrays, logits=arrays["logits"] * np.where(arrays["task"] == "b", 4.0, 1.0)[:, None]
    )
    worse["logits"] = worse["logits"] + 1e-4 * np.random.default_rng(9).normal(
        size=arrays["logits"].shape
    )
    np.savez(tmp_path / "cand.npz", **worse)
    return tmp_path / "base.npz", tmp_path / "cand.npz"


def _ece(path: Path, mask: np.ndarray | None = None) -> float:
    with np.load(path) as f:
        z, y = f["logits"], f["labels"]
    if mask is not None:
        z, y = z[mask], y[mask]
    return float(model_sums(Predictions.from_arrays(z, y), replicates=0).point()["ece"])


def _json(result: Any) -> dict[str, Any]:
    no_traceback(result)
    return json.loads(result.stdout)


def test_a_group_over_the_limit_fails_naming_it(
    runner: CliRunner, files: tuple[Path, Path]
) -> None:
    _, cand = files
    task = np.load(cand)["task"]
    eces = {k: _ece(cand, task == k) for k in N}
    limit = (eces["b"] + max(eces["a"], eces["c"])) / 2  # between b and the others
    assert _ece(cand) < limit  # the pooled ECE passes: only the slice shows it
    result = invoke(runner, "check", cand, "--group-by", "task", "--max-ece", f"{limit:.4f}")
    assert_exit(result, 1)
    out = result.stdout
    assert f"FAIL max_ece[task=b]: ECE {eces['b']:.4f} > limit {limit:.4f} [task=b, N=360]" in out
    assert sum(line.startswith("FAIL ") for line in out.splitlines()) == 1
    # the table names every group's check too (brackets are not read as Rich markup)
    rows = [line for line in out.splitlines() if line.startswith("│ max_ece")]
    assert [r.split("│")[1].strip() for r in rows] == ["max_ece"] + [
        f"max_ece[task={k}]" for k in N
    ]
    assert "ok   max_ece: ECE" in out
    assert "groups by task: 2 of 3 pass every check, 1 fail" in out
    assert "FAILED: 1 of 4 checks (ECE) in 1 group: task=b" in out
    # the small group is gated, with a warning
    assert result.stderr.count("calibkit: warning:") == 1
    assert "1 of 3 groups have fewer than 300 rows (task=c N=120)" in result.stderr
    ok = invoke(runner, "check", cand, "--group-by", "task", "--max-ece", "0.99")
    assert_exit(ok, 0)


def test_json_carries_every_group(runner: CliRunner, files: tuple[Path, Path]) -> None:
    _, cand = files
    out = _json(invoke(runner, "check", cand, "--group-by", "task", "--max-ece", "0.99", "--json"))
    assert out["passed"] is True and out["group_by"] == ["task"]
    assert [(g["label"], g["n"], g["small"]) for g in out["groups"]] == [
        ("task=a", 900, False), ("task=b", 360, False), ("task=c", 120, True),
    ]  # fmt: skip
    task = np.load(cand)["task"]
    for g in out["groups"]:
        k = g["group"]["task"]
        assert g["values"]["ece"] == pytest.approx(_ece(cand, task == k), rel=1e-12)
    names = [c["name"] for c in out["checks"]]
    assert names == ["max_ece", "max_ece[task=a]", "max_ece[task=b]", "max_ece[task=c]"]
    assert "group" not in out["checks"][0] and out["checks"][1]["n"] == 900


def test_junit_has_a_testcase_per_check_and_group(
    runner: CliRunner, files: tuple[Path, Path], tmp_path: Path
) -> None:
    base, cand = files
    junit = tmp_path / "gate.xml"
    result = invoke(
        runner, "check", cand, "--group-by", "task", "--baseline", base,
        "--max-increase", "ece=0.01", "--max-nll", "50", "--junit", junit, *BOOT,
    )  # fmt: skip
    assert_exit(result, 1)
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    want = ["max_nll", "regression_ece"] + [
        f"{check}[task={k}]" for k in N for check in ("max_nll", "regression_ece")
    ]
    assert list(cases) == want
    failed = sorted(name for name, c in cases.items() if c.find("failure") is not None)
    assert failed == ["regression_ece", "regression_ece[task=b]"]  # pooled, and b's
    assert suite.get("tests") == "8" and suite.get("failures") == "2"
    msg = cases["regression_ece[task=b]"].find("failure").get("message")  # type: ignore[union-attr]
    assert "ECE rose by" in msg and "Holm-adjusted over 3 groups" in msg and msg.endswith("N=360]")


def test_the_groups_regression_is_the_gate_on_the_groups_rows_alone(
    runner: CliRunner, files: tuple[Path, Path], tmp_path: Path
) -> None:
    base, cand = files
    args = ("--max-increase", "ece=0.01", *BOOT, "--json")
    out = _json(invoke(runner, "check", cand, "--group-by", "task", "--baseline", base, *args))
    grouped = {c["name"]: c for c in out["checks"]}
    task = np.load(cand)["task"]
    for k in N:  # files holding only the group's rows
        for name, src in (("b", base), ("c", cand)):
            with np.load(src) as f:
                m = f["task"] == k
                np.savez(tmp_path / f"{name}_{k}.npz", logits=f["logits"][m], labels=f["labels"][m])
        alone = _json(
            invoke(
                runner,
                "check",
                tmp_path / f"c_{k}.npz",
                "--baseline",
                tmp_path / f"b_{k}.npz",
                *args,
            )
        )["checks"][0]
        mine = grouped[f"regression_ece[task={k}]"]
        assert mine["p_unadjusted"] == alone["p_value"]
        assert mine["delta"] == pytest.approx(alone["delta"], rel=1e-9, abs=1e-12)
        assert mine["value"] == pytest.approx(alone["value"], rel=1e-12)
        assert mine["n"] == int((task == k).sum())
    assert [grouped[f"regression_ece[task={k}]"]["passed"] for k in N] == [True, False, True]
    assert out["passed"] is False and out["paired"] is True


def test_a_parquet_column_groups_too(runner: CliRunner, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    a = _arrays(1)
    frame = pd.DataFrame({"logits": list(a["logits"]), "labels": a["labels"], "task": a["task"]})
    frame.to_parquet(tmp_path / "p.parquet")
    out = _json(
        invoke(
            runner,
            "check",
            tmp_path / "p.parquet",
            "--group-by",
            "task",
            "--max-ece",
            "0.99",
            "--json",
        )
    )
    assert [g["n"] for g in out["groups"]] == list(N.values())


def test_a_baseline_missing_a_group_is_one_line(
    runner: CliRunner, files: tuple[Path, Path], tmp_path: Path
) -> None:
    base, cand = files
    with np.load(base) as f:
        arrays = dict(f)
    arrays["task"] = np.where(arrays["task"] == "c", "z", arrays["task"])
    np.savez(tmp_path / "other.npz", **arrays)
    result = invoke(
        runner, "check", cand, "--group-by", "task", "--baseline", tmp_path / "other.npz",
        "--max-increase", "ece=0.01", *BOOT,
    )  # fmt: skip
    msg = one_error_line(result, tmp_path / "other.npz")
    assert msg.startswith(f"has no rows in group task=c of the candidate {cand}")
    # the same with --unpaired: the groups must exist in both files
    result = invoke(
        runner, "check", cand, "--group-by", "task", "--baseline", tmp_path / "other.npz",
        "--max-increase", "ece=0.01", "--unpaired", *BOOT,
    )  # fmt: skip
    one_error_line(result, tmp_path / "other.npz")


def test_a_baseline_with_rows_in_other_groups(
    runner: CliRunner, files: tuple[Path, Path], tmp_path: Path
) -> None:
    base, cand = files
    with np.load(base) as f:
        arrays = dict(f)
    task = arrays["task"]
    i, j = int(np.flatnonzero(task == "a")[0]), int(np.flatnonzero(task == "b")[0])
    task[[i, j]] = task[[j, i]]
    np.savez(tmp_path / "moved.npz", **arrays)
    args = (
        "--group-by",
        "task",
        "--baseline",
        tmp_path / "moved.npz",
        "--max-increase",
        "ece=0.01",
    )
    msg = one_error_line(invoke(runner, "check", cand, *args, *BOOT), tmp_path / "moved.npz")
    assert f"row {min(i, j)} is in group" in msg and "--unpaired" in msg
    out = _json(invoke(runner, "check", cand, *args, "--unpaired", *BOOT, "--json"))
    assert any("each group compared unpaired" in n for n in out["notes"])


def test_a_json_baseline_cannot_gate_groups(
    runner: CliRunner, files: tuple[Path, Path], tmp_path: Path
) -> None:
    _, cand = files
    (tmp_path / "b.json").write_text(json.dumps({"ece": 0.1}))
    result = invoke(
        runner, "check", cand, "--group-by", "task", "--baseline", tmp_path / "b.json",
        "--max-increase", "ece=0.01",
    )  # fmt: skip
    assert "a JSON baseline holds the point values of the whole file" in one_error_line(result)


def test_group_min_rows_skips_and_junit_says_so(
    runner: CliRunner, files: tuple[Path, Path], tmp_path: Path
) -> None:
    _, cand = files
    task = np.load(cand)["task"]
    limit = _ece(cand, task == "b") - 1e-3  # only b fails
    junit = tmp_path / "j.xml"
    args = (cand, "--group-by", "task", "--max-ece", f"{limit:.6f}", "--junit", junit)
    assert_exit(invoke(runner, "check", *args), 1)
    result = invoke(runner, "check", *args, "--group-min-rows", "400")  # only a is gated
    assert_exit(result, 0)
    assert "warning" not in result.stderr  # c is not gated, so not warned about
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("skipped") == "2"
    skipped = [c.get("name") for c in suite.iter("testcase") if c.find("skipped") is not None]
    assert skipped == ["max_ece[task=b]", "max_ece[task=c]"]
    assert "PASSED: 2 of 2 checks, 2 skipped" in result.stdout


def test_the_configuration_groups(
    runner: CliRunner, files: tuple[Path, Path], tmp_path: Path
) -> None:
    _, cand = files
    (tmp_path / "pyproject.toml").write_text(
        '[tool.calibkit.check]\nmax-ece = 0.99\ngroup-by = ["task"]\ngroup-min-rows = 200\n'
    )
    out = _json(invoke(runner, "check", cand, "--json"))
    assert out["group_by"] == ["task"] and [g["skipped"] for g in out["groups"]] == [
        False,
        False,
        True,
    ]
    (tmp_path / "pyproject.toml").write_text(
        "[tool.calibkit.check]\nmax-ece = 0.99\ngroup-by = [1]\n"
    )
    assert "group-by must be a list of column names" in one_error_line(
        invoke(runner, "check", cand), tmp_path / "pyproject.toml"
    )


def test_bad_group_options_are_one_line(runner: CliRunner, files: tuple[Path, Path]) -> None:
    base, cand = files
    msg = one_error_line(
        invoke(runner, "check", cand, "--group-by", "subject", "--max-ece", "0.1"), cand
    )
    assert msg.startswith("has no column 'subject' to group by")
    # too few replicates for Holm's correction over 3 groups at alpha 0.01: refused, not a
    # gate that could never fail
    msg = one_error_line(
        invoke(
            runner, "check", cand, "--group-by", "task", "--baseline", base,
            "--max-increase", "ece=0.01", "--alpha", "0.01", "--bootstrap", "200",
        )
    )  # fmt: skip
    assert "give --bootstrap 300 or more" in msg
    msg = one_error_line(invoke(runner, "check", cand, "--max", "increase=0.1"))
    assert "not a metric" in msg
