"""`calibkit compare --method a,b --param [METHOD.]NAME=VALUE` (#15), through Typer's runner.

The methods are temperature scaling and the toy methods of ``tests/_toy_calibrators.py``
(registered by the ``toys`` fixture for each test). ``--method temperature`` (the default) must
leave every output exactly as it was; any other choice gives the long table (a row per model and
method). Every bad choice is one ``calibkit: error:`` line, exit 2, nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _cli import assert_ok, one_error_line, run_json, write_npz
from _cli import invoke as run
from _toy_calibrators import toys  # noqa: F401 (the fixture)
from typer.testing import CliRunner

from calibkit.comparison import compare_models
from calibkit.loaders import read_predictions

pytestmark = pytest.mark.usefixtures("toys")

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def sample(model: str, split: str = "test") -> str:
    return str(SAMPLE / f"digits_{model}_{split}.npz")


#: The README's example: two models, each with its validation file.
ARGS = [
    "compare",
    f"hard={sample('hard')}",
    f"ls10={sample('ls10')}",
    "--val",
    f"hard={sample('hard', 'val')}",
    "--val",
    f"ls10={sample('ls10', 'val')}",
]


@pytest.mark.parametrize("form", [[], ["--json"], ["--markdown"]])
def test_temperature_alone_is_todays_output(runner: CliRunner, form: list[str]) -> None:
    today = run(runner, *ARGS, *form)
    assert_ok(today)
    for spelled in (["--method", "temperature"], ["--method", " temperature "]):
        same = run(runner, *ARGS, *spelled, *form)
        assert_ok(same)
        assert same.stdout == today.stdout and same.stderr == today.stderr


def test_temperature_alone_writes_todays_report(runner: CliRunner, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert_ok(run(runner, *ARGS, "--out-dir", a))
    assert_ok(run(runner, *ARGS, "--method", "temperature", "--out-dir", b))
    for name in ("report.md", "report.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert sorted(p.name for p in b.iterdir()) == [
        "reliability.png",
        "report.json",
        "report.md",
        "sweep.png",
    ]


def test_several_methods_give_a_row_per_model_and_method(runner: CliRunner) -> None:
    result = run(runner, *ARGS, "--method", "temperature,toy-bias", "--method", "toy-mix")
    assert_ok(result)
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "model" in line and "method" in line)
    for head in ("parameters", "accuracy", "ECE", "class-wise ECE", "MCE", "NLL", "Brier"):
        assert head in header
    first = lines[: next(i for i, line in enumerate(lines) if line.startswith("└"))]
    rows = [line for line in first if line.startswith("│")]  # (the diagnostics table follows)
    got = [tuple(c.strip() for c in line.strip("│").split("│")[:2]) for line in rows]
    assert got == [
        ("hard", "uncalibrated"), ("hard", "temperature"), ("hard", "toy-bias"),
        ("hard", "toy-mix"), ("ls10", "uncalibrated"), ("ls10", "temperature"),
        ("ls10", "toy-bias"), ("ls10", "toy-mix"),
    ]  # fmt: skip
    assert "* = best value of each column over all rows: the lowest (the highest for accuracy)" in (
        " ".join(result.stdout.split())
    )
    bias = [line for line in rows if "toy-bias" in line]
    assert all("†" in line for line in bias)  # the accuracy moved on both models
    assert not any("†" in line for line in rows if "toy-bias" not in line)
    assert "† accuracy changed by calibration" in result.stdout


def test_json_gives_each_row_its_method_and_flags(runner: CliRunner) -> None:
    doc = run_json(runner, *ARGS, "--method", "temperature,toy-bias,toy-mix")
    models = {m["name"]: m for m in doc["models"]}
    val = {n: read_predictions(sample(n, "val")) for n in ("hard", "ls10")}
    test = {n: read_predictions(sample(n)) for n in ("hard", "ls10")}
    legacy = compare_models(test, val=val).to_dict()
    for m in legacy["models"]:  # today's keys, today's values
        for key in ("temperature", "ts_fitted_on", "ts_source", "ts", "accuracy", "nll"):
            assert models[m["name"]][key] == m[key]
    bias = models["ls10"]["calibrated"][1]
    assert bias["method"] == "toy-bias" and bias["changes_argmax"] is True
    assert (
        bias["accuracy_changed"] is True
        and bias["metrics"]["accuracy"] != (models["ls10"]["accuracy"])
    )
    mix = models["ls10"]["calibrated"][2]
    assert mix["output_kind"] == "probs" and mix["accuracy_changed"] is False
    assert mix["parameters"] == {"weight": 0.1}


def test_params_reach_the_fits(runner: CliRunner) -> None:
    doc = run_json(
        runner, *ARGS, "--method", "toy-bias,toy-mix", "--param", "w=0.25",
        "--param", "toy-bias.strength=0.5",
    )  # fmt: skip
    hard = doc["models"][0]
    assert [r["options"] for r in hard["calibrated"]] == [{"strength": 0.5}, {"weight": 0.25}]
    assert "temperature" not in hard and "ts" not in hard  # temperature not compared


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "nope"], "unknown calibration method 'nope'; the known methods are"),
        (["--method", "temperature,temperature"], "--method: 'temperature' is given twice"),
        (["--param", "strength=1"], "--param strength: no method compared has a parameter"),
        (
            ["--method", "toy-mix", "--param", "toy-bias.strength=1"],
            "--param toy-bias.strength: 'toy-bias' is not one of the methods compared (toy-mix)",
        ),
        (["--method", "toy-mix", "--param", "weight=heavy"], "--param weight: 'heavy' is not"),
        (["--method", "toy-mix", "--param", "weight"], "--param: 'weight' is not NAME=VALUE"),
    ],
)
def test_bad_methods_and_params_are_one_line(
    runner: CliRunner, tmp_path: Path, extra: list[str], message: str
) -> None:
    result = run(runner, *ARGS, *extra, "--out-dir", tmp_path / "rep")
    assert message in one_error_line(result)
    assert not (tmp_path / "rep").exists()


def test_a_method_that_does_not_apply_names_the_file_and_the_method(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = run(runner, *ARGS, "--method", "temperature,toy-binary", "--out-dir", tmp_path / "r")
    problem = one_error_line(result, sample("hard", "val"))
    assert problem == (
        "method 'toy-binary' cannot be fitted for model 'hard': toy binary-only needs 2 "
        "classes; this input has 10"
    )
    assert not (tmp_path / "r").exists()


def test_a_binary_model_takes_the_binary_method(runner: CliRunner, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=300)
    z = rng.normal(size=300) + 1.5 * (2 * y - 1)
    t = write_npz(tmp_path / "t.npz", logits=z, labels=y)
    v = write_npz(tmp_path / "v.npz", logits=z[::-1].copy(), labels=y[::-1].copy())
    doc = run_json(runner, "compare", f"b={t}", "--val", f"b={v}", "--method", "toy-binary")
    assert [r["method"] for r in doc["models"][0]["calibrated"]] == ["toy-binary"]


def test_the_report_folder_of_several_methods(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    result = run(runner, *ARGS, "--method", "toy-bias,toy-mix", "--out-dir", out, "--json")
    assert_ok(result)
    assert sorted(p.name for p in out.iterdir()) == ["reliability.png", "report.json", "report.md"]
    assert json.loads((out / "report.json").read_text(encoding="utf-8")) == json.loads(
        result.stdout
    )
    md = (out / "report.md").read_text(encoding="utf-8")
    plain = run(runner, *ARGS, "--method", "toy-bias,toy-mix", "--markdown")
    assert plain.stdout in md and "sweep" not in md
    assert "**†** accuracy changed by calibration" in md
    # with temperature among them the sweep is back, and an old sweep.png goes when it is not
    assert_ok(run(runner, *ARGS, "--method", "toy-mix,temperature", "--out-dir", out))
    assert (out / "sweep.png").is_file()
    assert_ok(run(runner, *ARGS, "--method", "toy-mix", "--out-dir", out))
    assert not (out / "sweep.png").exists()


def test_ts_on_test_with_several_methods(runner: CliRunner) -> None:
    result = run(
        runner, "compare", f"hard={sample('hard')}", "--method", "temperature,toy-mix",
        "--ts-on-test", "--markdown",
    )  # fmt: skip
    assert_ok(result)
    assert "| hard | toy-mix (in-sample) |" in result.stdout
    assert "(--ts-on-test): the calibrated rows of models without validation data" in (
        result.stderr
    )
