"""``--group-by`` on ``calibkit ece``, ``fit-temp`` and ``compare`` (#18).

Inputs are the bundled sample predictions with a grouping column added in ``tmp_path`` (the
sample files have none). A group's numbers are checked against the same command run on a file
that holds only that group's rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _cli import assert_ok, invoke, one_error_line, run_json
from typer.testing import CliRunner

from calibkit.report.summary_json import dumps

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "sample_data"
SUBJECTS = np.array(["algebra", "biology", "chemistry", "drama"])

#: The keys of ``ece --json`` (without --group-by), in order, as on main before #18.
ECE_KEYS = [
    "source", "n", "n_classes", "n_bins", "binning", "binary_mode", "input", "input_reason",
    "soft_labels", "accuracy", "ece", "mce", "rmsce", "nll", "brier", "mean_confidence",
    "saturated_fraction", "zero_prob_rows", "missing_classes", "calibkit_version", "bins",
    "convention",
]  # fmt: skip


def _sample(name: str) -> dict[str, np.ndarray]:
    with np.load(DATA / name) as f:
        return {k: f[k] for k in f.files}


def _subjects(n: int, seed: int = 0) -> np.ndarray:
    """An uneven subject per row: 'drama' is small."""
    rng = np.random.default_rng(seed)
    return rng.choice(SUBJECTS, n, p=[0.4, 0.3, 0.25, 0.05])


def _grouped(tmp_path: Path, name: str = "digits_hard_test.npz", **extra: Any) -> Path:
    data = _sample(name)
    data["subject"] = _subjects(len(data["labels"]))
    data.update(extra)
    path = tmp_path / f"grouped_{name}"
    np.savez(path, **data)
    return path


def _only(tmp_path: Path, path: Path, subject: str) -> Path:
    with np.load(path) as f:
        keep = f["subject"] == subject
        data = {k: f[k][keep] for k in ("logits", "labels")}
    out = tmp_path / f"only_{subject}_{path.name}"
    np.savez(out, **data)
    return out


def test_ece_groups_match_each_group_alone(runner: CliRunner, tmp_path: Path) -> None:
    path = _grouped(tmp_path)
    doc = run_json(runner, "ece", path, "--group-by", "subject", quiet=False)
    groups = doc["group_by"]["groups"]
    assert sorted(g["group"]["subject"] for g in groups) == sorted(SUBJECTS)
    assert sum(g["n"] for g in groups) == doc["n"] == 450
    for g in groups:
        alone = run_json(runner, "ece", _only(tmp_path, path, g["group"]["subject"]), quiet=False)
        for key in ("n", "accuracy", "ece", "mce", "rmsce", "nll", "brier"):
            assert g[key] == alone[key], key
        assert g["bins"] == alone["bins"]
    eces = [g["ece"] for g in groups]
    assert eces == sorted(eces, reverse=True)  # worst first
    micro, macro = doc["group_by"]["micro"], doc["group_by"]["macro"]
    assert micro["ece"] == doc["ece"] and micro["n"] == 450
    assert macro["ece"] == pytest.approx(sum(eces) / len(eces), rel=1e-12)


def test_ece_json_without_group_by_is_unchanged(runner: CliRunner, tmp_path: Path) -> None:
    path = _grouped(tmp_path)
    plain = invoke(runner, "ece", path, "--json")
    assert_ok(plain)
    doc = json.loads(plain.stdout)
    assert list(doc) == ECE_KEYS  # the schema of main, in its order
    grouped = invoke(runner, "ece", path, "--json", "--group-by", "subject")
    assert_ok(grouped)
    with_groups = json.loads(grouped.stdout)
    assert list(with_groups) == [*ECE_KEYS, "group_by"]
    del with_groups["group_by"]
    assert dumps(with_groups) == plain.stdout  # the pooled document, byte for byte
    # and the sample file (no grouping column) gives exactly the document of a grouped copy
    sample = invoke(runner, "ece", DATA / "digits_hard_test.npz", "--json")
    assert sample.stdout == plain.stdout.replace(str(path), str(DATA / "digits_hard_test.npz"))


def test_the_table_marks_small_groups_and_warns_once(runner: CliRunner, tmp_path: Path) -> None:
    path = _grouped(tmp_path)
    result = invoke(runner, "ece", path, "--group-by", "subject", "--no-bins")
    assert_ok(result)
    out = result.stdout
    assert "by subject: 4 groups, worst ECE first" in out
    assert "micro (pooled)" in out and "macro (mean of groups)" in out
    assert "* fewer than 300 examples" in out
    counts = run_json(runner, "ece", path, "--group-by", "subject", quiet=False)["group_by"]
    for g in counts["groups"]:
        mark = f"{g['n']}*" if g["n"] < 300 else str(g["n"])
        assert mark in out
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"calibkit: warning: {path}: 4 of 4 groups have fewer than 300")
    assert "subject=drama" in lines[0]


def test_no_warning_when_every_group_is_large(runner: CliRunner, tmp_path: Path) -> None:
    data = _sample("digits_hard_test.npz")
    path = tmp_path / "halves.npz"
    np.savez(path, **data, half=np.arange(450) % 1)  # one group of 450
    result = invoke(runner, "ece", path, "--group-by", "half", "--no-bins")
    assert_ok(result)
    assert result.stderr == ""
    assert "*" not in result.stdout.split("macro")[1]


def test_two_columns_make_a_cross_product(runner: CliRunner, tmp_path: Path) -> None:
    path = _grouped(tmp_path, level=np.arange(450) % 2)
    a = run_json(runner, "ece", path, "--group-by", "subject", "--group-by", "level", quiet=False)
    b = run_json(runner, "ece", path, "--group-by", "subject,level", quiet=False)
    assert a == b
    keys = {(g["group"]["subject"], g["group"]["level"]) for g in a["group_by"]["groups"]}
    assert keys == {(s, lv) for s in SUBJECTS for lv in ("0", "1")}
    assert a["group_by"]["columns"] == ["subject", "level"]


def test_a_parquet_string_column_with_missing_values(runner: CliRunner, tmp_path: Path) -> None:
    data = _sample("digits_hard_test.npz")
    subject: list[str | None] = list(_subjects(450))
    for i in range(0, 450, 9):
        subject[i] = None
    table = pa.table(
        {
            **{f"logit_{k}": data["logits"][:, k] for k in range(10)},
            "label": data["labels"],
            "subject": pa.array(subject, pa.string()),
        }
    )
    path = tmp_path / "p.parquet"
    pq.write_table(table, path)
    doc = run_json(runner, "ece", path, "--group-by", "subject", quiet=False)
    groups = {g["group"]["subject"]: g["n"] for g in doc["group_by"]["groups"]}
    assert groups["(missing)"] == 50
    assert sum(groups.values()) == 450


@pytest.mark.parametrize("suffix", ["npz", "parquet"])
def test_an_absent_column_is_one_line(runner: CliRunner, tmp_path: Path, suffix: str) -> None:
    path = _grouped(tmp_path) if suffix == "npz" else DATA / "digits_hard_test.parquet"
    result = invoke(runner, "ece", path, "--group-by", "topic")
    assert "has no column 'topic' to group by" in one_error_line(result, path)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--all"], "--all is not computed per group"),
        (["--plot"], "--plot draws one chart"),
        (["--convention", "guo"], "--group-by uses calibkit's binning"),
        (["--group-by", ","], "--group-by needs a column name"),
        (["--group-by", "subject"], "--group-by names column 'subject' twice"),
    ],
)
def test_options_without_a_per_group_form_are_refused(
    runner: CliRunner, tmp_path: Path, extra: list[str], words: str
) -> None:
    path = _grouped(tmp_path)
    result = invoke(runner, "ece", path, "--group-by", "subject", *extra)
    assert words in one_error_line(result)


def test_ci_without_all_or_groups_is_still_refused(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "ece", _grouped(tmp_path), "--ci", "0.9")
    assert one_error_line(result) == "--ci, --bootstrap and --seed go with --all"


def test_intervals_per_group(runner: CliRunner, tmp_path: Path) -> None:
    path = _grouped(tmp_path)
    args = ("--group-by", "subject", "--ci", "0.9", "--bootstrap", "50", "--seed", "3")
    doc = run_json(runner, "ece", path, *args, quiet=False)["group_by"]
    assert (doc["ci_level"], doc["bootstrap"], doc["seed"]) == (0.9, 50, 3)
    for g in doc["groups"]:
        lo, hi = g["ci"]["ece"]
        assert lo <= hi
    assert doc["micro"]["ci"]["nll"][0] <= doc["micro"]["nll"] <= doc["micro"]["ci"]["nll"][1]
    table = invoke(runner, "ece", path, *args, "--no-bins")
    assert_ok(table)
    ece = doc["groups"][0]
    assert f"{ece['ece']:.3f} [{ece['ci']['ece'][0]:.3f}, {ece['ci']['ece'][1]:.3f}]" in (
        table.stdout
    )


def test_out_writes_the_grouped_document(runner: CliRunner, tmp_path: Path) -> None:
    path = _grouped(tmp_path)
    out = tmp_path / "r.json"
    result = invoke(runner, "ece", path, "--group-by", "subject", "--json", "--out", out)
    assert_ok(result)
    assert out.read_text() == result.stdout
    assert "group_by" in json.loads(out.read_text())


def test_fit_temp_per_group(runner: CliRunner, tmp_path: Path) -> None:
    val = _grouped(tmp_path, "digits_hard_val.npz")
    test = _grouped(tmp_path, "digits_hard_test.npz")
    calibrator = tmp_path / "t.json"
    plain = run_json(runner, "fit-temp", val, "--eval", test)
    doc = run_json(
        runner,
        "fit-temp",
        val,
        "--eval",
        test,
        "--group-by",
        "subject",
        "--out",
        calibrator,
        quiet=False,
    )
    groups = doc.pop("group_by")
    assert doc == plain  # the pooled report as without --group-by
    assert json.loads(calibrator.read_text())["temperature"] == plain["temperature"]  # pooled
    assert groups["saved"] == "pooled" and groups["n_groups"] == 4
    for g in groups["groups"]:
        s = g["group"]["subject"]
        alone = run_json(
            runner, "fit-temp", _only(tmp_path, val, s), "--eval", _only(tmp_path, test, s)
        )
        assert g["temperature"] == alone["temperature"]
        for key in ("n", "nll_before", "nll_after", "ece_before", "ece_after"):
            assert g[key] == alone[key], key
        for key in ("n", "ece_before", "ece_after"):
            assert g["eval"][key] == alone["eval"][key], key
    before = [g["ece_before"] for g in groups["groups"]]
    assert before == sorted(before, reverse=True)


def test_fit_temp_table_says_the_saved_fit_is_pooled(runner: CliRunner, tmp_path: Path) -> None:
    val = _grouped(tmp_path, "digits_hard_val.npz")
    result = invoke(runner, "fit-temp", val, "--group-by", "subject")
    assert_ok(result)
    assert "temperature per group of subject" in result.stdout
    assert "pooled (saved)" in result.stdout
    assert "the per-group temperatures are not saved" in result.stdout
    assert "fewer than 300" in result.stderr and len(result.stderr.splitlines()) == 1


def test_fit_temp_names_eval_groups_missing_from_val(runner: CliRunner, tmp_path: Path) -> None:
    val = _grouped(tmp_path, "digits_hard_val.npz")
    data = _sample("digits_hard_test.npz")
    data["subject"] = np.where(np.arange(450) < 20, "extra", _subjects(450))
    test = tmp_path / "test_extra.npz"
    np.savez(test, **data)
    result = invoke(runner, "fit-temp", val, "--eval", test, "--group-by", "subject", "--json")
    assert_ok(result)
    assert json.loads(result.stdout)["group_by"]["eval_without_val"] == ["subject=extra"]
    assert "1 groups have no rows in" in result.stderr


def test_compare_per_group(runner: CliRunner, tmp_path: Path) -> None:
    a = _grouped(tmp_path, "digits_hard_test.npz")
    b = _grouped(tmp_path, "digits_ls20_test.npz")
    doc = run_json(
        runner, "compare", f"hard={a}", f"ls20={b}", "--group-by", "subject", quiet=False
    )
    comp = doc["group_by"]
    assert comp["models"] == ["hard", "ls20"]
    for name, path in (("hard", a), ("ls20", b)):
        alone = run_json(runner, "ece", path, "--group-by", "subject", quiet=False)["group_by"]
        by_key = {g["group"]["subject"]: g for g in alone["groups"]}
        for g in comp["groups"]:
            mine = g["models"][name]
            ref = by_key[g["group"]["subject"]]
            assert (mine["n"], mine["ece"], mine["nll"]) == (ref["n"], ref["ece"], ref["nll"])
        assert comp["micro"][name]["ece"] == alone["micro"]["ece"]
        assert comp["macro"][name]["ece"] == alone["macro"]["ece"]
    table = invoke(runner, "compare", f"hard={a}", f"ls20={b}", "--group-by", "subject")
    assert_ok(table)
    assert "ECE hard" in table.stdout and "ECE ls20" in table.stdout
    assert "micro (pooled)" in table.stdout


@pytest.mark.parametrize(
    "extra", [["--val", "m={a}"], ["--markdown"], ["--ts-on-test"], ["--method", "platt"]]
)
def test_compare_refuses_what_it_cannot_do_per_group(
    runner: CliRunner, tmp_path: Path, extra: list[str]
) -> None:
    a = _grouped(tmp_path)
    extra = [x.format(a=a) for x in extra]
    result = invoke(runner, "compare", f"m={a}", "--group-by", "subject", *extra)
    assert f"{extra[0]} is not available with --group-by" in one_error_line(result)


def test_group_by_on_the_dask_engine(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    data = _sample("digits_ls05_test.npz")
    subject = _subjects(450)
    shards = tmp_path / "shards"
    shards.mkdir()
    for i, (lo, hi) in enumerate([(0, 100), (100, 107), (107, 450)]):
        pq.write_table(
            pa.table(
                {
                    **{f"logit_{k}": data["logits"][lo:hi, k] for k in range(10)},
                    "label": data["labels"][lo:hi],
                    "subject": subject[lo:hi],
                }
            ),
            shards / f"part-{i}.parquet",
        )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "CALIBKIT_DASK_WORKERS": "2",
    }

    command = (sys.executable, "-m", "calibkit", "ece")

    def run(*extra: str) -> Any:
        done = subprocess.run(
            [*command, str(shards), "--json", "--group-by", "subject", "--binning", "mass", *extra],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["group_by"]

    local, dask = run(), run("--engine", "dask")
    assert [g["group"] for g in dask["groups"]] == [g["group"] for g in local["groups"]]
    for mine, ref in zip(dask["groups"], local["groups"], strict=True):
        assert mine["n"] == ref["n"]
        assert [b["count"] for b in mine["bins"]] == [b["count"] for b in ref["bins"]]
        for key in ("ece", "nll", "accuracy", "brier"):
            assert mine[key] == pytest.approx(ref[key], rel=1e-12), key
