"""The gate's errors name parameters; the CLI prints them with the flags of today (#14).

``GateConfig``, ``run_gate``, ``gate_config`` and ``parse_increase`` are library code: called
from Python their errors say ``max_values['ece']``, ``max_increase needs baseline``, ``bins``.
The CLI shows each parameter as its flag (:func:`calibkit.cli._common.flags`), where a
built-in metric's limit is its own flag, from the metric table (``--max-ece``), and any other
metric's limit is ``--max NAME`` / ``--min NAME``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from calibkit.cli._common import FLAGS, flags
from calibkit.errors import Param, UsageError
from calibkit.gate.checks import GateConfig, run_gate
from calibkit.gate.config import gate_config, parse_increase
from calibkit.metrics import table
from calibkit.metrics.examples import ExampleStats, example_stats


def _raised(call: object, *args: object, **kwargs: object) -> UsageError:
    with pytest.raises(UsageError) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    return info.value


@pytest.mark.parametrize(
    ("kwargs", "library", "cli"),
    [
        (
            {"max_values": {"ece": math.nan}},
            "max_values['ece']: limit must be a finite number; got nan",
            "--max-ece: limit must be a finite number; got nan",
        ),
        (
            {"min_values": {"accuracy": math.inf}},
            "min_values['accuracy']: limit must be a finite number; got inf",
            "--min-accuracy: limit must be a finite number; got inf",
        ),
        (
            {"max_values": {"ece_over": "0.1"}},
            "max_values['ece_over']: limit must be a finite number; got '0.1'",
            "--max ece_over: limit must be a finite number; got '0.1'",
        ),
        (
            {"max_increase": {"nll": -math.inf}},
            "max_increase['nll']: limit must be a finite number; got -inf",
            "--max-increase nll: limit must be a finite number; got -inf",
        ),
        (
            {"min_values": {"foo": 0.1}},
            "min_values: unknown metric 'foo'; known: " + ", ".join(table.names(table.gateable())),
            "--min: unknown metric 'foo'; known: " + ", ".join(table.names(table.gateable())),
        ),
    ],
)
def test_gate_config_names_the_parameter(kwargs: dict, library: str, cli: str) -> None:
    err = _raised(GateConfig, **kwargs)
    assert str(err) == library
    assert err.render(flags()) == cli


def test_every_built_in_limit_flag_comes_from_the_metric_table() -> None:
    own = {k: v for k, v in flags().items() if k not in FLAGS}
    assert own == {
        f"{m.limit}_values[{m.name}]": f"--{m.limit}-{m.name}"
        for m in table.metrics()
        if m.limit_key is not None and m.name in table.BUILTIN
    }
    assert own["max_values[ece]"] == "--max-ece"
    assert own["min_values[accuracy]"] == "--min-accuracy"


def test_a_metric_registered_later_has_no_flag_of_its_own() -> None:
    sq = table.Metric(
        name="ece_sq2",
        label="squared ECE",
        from_sums=lambda s: (s.gap.sum(axis=1) / s.total) ** 2,
        limit_key="max_ece_sq2",
    )
    table.register(sq)
    try:
        err = _raised(GateConfig, max_values={"ece_sq2": math.nan})
        assert str(err) == "max_values['ece_sq2']: limit must be a finite number; got nan"
        assert err.render(flags()) == "--max ece_sq2: limit must be a finite number; got nan"
    finally:
        table.unregister("ece_sq2")


@pytest.fixture
def stats() -> ExampleStats:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 3))
    labels = rng.integers(0, 3, size=50)
    return example_stats(logits, labels)


def test_run_gate_names_parameters(stats: ExampleStats) -> None:
    err = _raised(run_gate, stats, GateConfig())
    assert str(err) == "nothing to check: give a limit (max_values, min_values) or max_increase"
    assert "--max, --min" in err.render(flags())
    err = _raised(run_gate, stats, GateConfig(max_increase={"ece": 0.01}))
    assert str(err) == "max_increase needs baseline"
    assert err.render(flags()) == "--max-increase needs --baseline"


@pytest.mark.parametrize(
    ("key", "value", "library"),
    [
        ("bins", 0, "bins must be from 1 to 10000; got 0"),
        ("bootstrap", 0, "bootstrap must be from 1 to 1000000; got 0"),
        ("seed", -1, "seed must be from 0 to 9223372036854775807; got -1"),
    ],
)
def test_gate_config_settings_name_their_key(key: str, value: int, library: str) -> None:
    err = _raised(gate_config, {key: value, "max_ece": 0.1})
    assert str(err) == library
    assert err.render(flags()) == "--" + library


def test_parse_increase_names_max_increase() -> None:
    err = _raised(parse_increase, "ece")
    assert str(err) == "max_increase: expected METRIC=TOLERANCE; got 'ece'"
    assert err.render(FLAGS) == "--max-increase: expected METRIC=TOLERANCE; got 'ece'"
    err = _raised(parse_increase, {"ece": "x"})
    assert str(err) == "max_increase: tolerance for 'ece' must be a number; got 'x'"
    # a file's key stays as the caller names it
    err = _raised(parse_increase, "nll", "cfg.toml: max-increase")
    assert (
        str(err)
        == err.render(FLAGS)
        == "cfg.toml: max-increase: expected METRIC=TOLERANCE; got 'nll'"
    )


def test_param_entry_renders_both_ways() -> None:
    entry = Param("max_values").entry("ece")
    assert str(entry) == "max_values['ece']"
    assert entry.render({"max_values": "--max"}) == "--max ece"
    assert entry.render({"max_values": "--max", "max_values[ece]": "--max-ece"}) == "--max-ece"
    assert entry.render({}) == "max_values['ece']"
    assert Param("max_values", 0.5).entry("ece").render({"max_values[ece]": "--max-ece"}) == (
        "--max-ece 0.5"
    )
    assert str(Param("max_values", 0.5).entry("ece")) == "max_values['ece']=0.5"


def test_the_cli_prints_the_flags(tmp_path: Path) -> None:
    from _cli import invoke, one_error_line

    path = tmp_path / "p.npz"
    rng = np.random.default_rng(1)
    np.savez(path, logits=rng.normal(size=(20, 3)), labels=rng.integers(0, 3, size=20))
    runner = CliRunner()
    assert one_error_line(invoke(runner, "check", path, "--max-ece", "nan")) == (
        "--max-ece: limit must be a finite number; got nan"
    )
    assert one_error_line(invoke(runner, "check", path, "--max", "ece_over=inf")) == (
        "--max ece_over: limit must be a finite number; got inf"
    )
    assert one_error_line(invoke(runner, "check", path, "--max-increase", "ece=0.1")) == (
        "--max-increase needs --baseline"
    )
