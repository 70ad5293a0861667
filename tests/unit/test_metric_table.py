"""The metric table (:mod:`calibkit.metrics.table`) is the one list of metrics.

* every metric that the JSON, the tables, the bootstrap and the gate use is in it;
* a metric registered here, in the test, reaches the generic paths: the bootstrap, the gate
  (absolute and regression checks, messages), the check configuration, ``calibkit check
  --max/--min NAME=LIMIT`` and ``calibkit ece --all``;
* the directions, not metric names, decide :meth:`Comparison.best`;
* the ``--max-*`` / ``--min-*`` flags and the config keys are the table's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import typer.main
from typer.testing import CliRunner

from calibkit.calibrators import report as fit_report
from calibkit.cli import app
from calibkit.cli import check as check_cli
from calibkit.cli._common import flags
from calibkit.comparison import METRICS as COMPARE_METRICS
from calibkit.comparison import TS_METRICS, Comparison, ModelResult
from calibkit.errors import InputError, UsageError
from calibkit.gate.checks import LABELS, GateConfig, absolute_checks, run_gate
from calibkit.gate.config import CHECK_KEYS, check_keys, gate_config, load_check_config
from calibkit.loaders import read_predictions
from calibkit.metrics import table
from calibkit.metrics.summary import collect_example_stats, summarize
from calibkit.metrics.table import ExtendedRow, Metric
from calibkit.report import compare_report
from calibkit.report.summary_json import HEADLINE, summary_to_dict
from calibkit.report.tables import extended_table
from calibkit.stats.bootstrap import (
    HIGHER_IS_BETTER,
    METRICS,
    bootstrap_metrics,
    paired_bootstrap,
    point_metrics,
)
from calibkit.stats.extended import extended_metrics

#: The built-in metrics these tests pin, by name: a metric registered at import (a plugin, a
#: later issue) is left out of the pinned lists rather than failing them.
BUILTIN = table.BUILTIN
BOOTSTRAPPED = (
    "accuracy", "ece", "mce", "rmsce", "nll", "brier", "ece_over", "ece_under", "ece_debiased",
)  # fmt: skip


def _builtin(names: Any) -> tuple[str, ...]:
    """``names`` (metric names or records) less those not built in, in their order."""
    out = (n if isinstance(n, str) else n.name for n in names)
    return tuple(n for n in out if n in BUILTIN)


def _registered_limit_keys() -> set[str]:
    return {str(m.limit_key) for m in table.metrics() if m.name not in BUILTIN and m.limit_key}


HARD = Path(__file__).resolve().parents[2] / "sample_data" / "digits_hard_test.npz"
LS10 = Path(__file__).resolve().parents[2] / "sample_data" / "digits_ls10_test.npz"


def _ece_squared(s: table.ResampledSums) -> Any:
    return (s.gap.sum(axis=1) / s.total) ** 2


def _accuracy_squared(s: table.ResampledSums) -> Any:
    return (s.correct / s.total) ** 2


#: Test-only metrics: ECE squared (lower is better, with a config key) and accuracy squared
#: (higher is better, no key of its own).
ECE_SQ = Metric(
    name="ece_sq", label="squared ECE", from_sums=_ece_squared, limit_key="max_ece_sq",
    extended=ExtendedRow(label="  ECE squared", what="test-only metric", rank=15),
)  # fmt: skip
ACC_SQ = Metric(
    name="acc_sq", label="squared accuracy", direction="higher", from_sums=_accuracy_squared
)


@pytest.fixture
def test_metrics() -> Iterator[None]:
    table.register(ECE_SQ)
    table.register(ACC_SQ)
    try:
        yield
    finally:
        table.unregister("ece_sq")
        table.unregister("acc_sq")


@pytest.fixture(scope="module")
def hard_stats() -> Any:
    return collect_example_stats(read_predictions(HARD), warn=False)


# --------------------------------------------------------------------------------------------
# every metric in use is in the table


def test_builtin_table_order_and_directions() -> None:
    assert _builtin(METRICS) == BOOTSTRAPPED
    assert {"accuracy"} == HIGHER_IS_BETTER & set(BUILTIN)
    assert _builtin(m for m in table.metrics() if m.higher_is_better) == ("accuracy",)
    assert table.names(table.metrics())[: len(BUILTIN)] == BUILTIN  # registered first


def test_bootstrap_computes_exactly_the_bootstrapped_metrics(hard_stats: Any) -> None:
    assert tuple(point_metrics(hard_stats)) == table.names(table.bootstrapped())
    assert _builtin(point_metrics(hard_stats)) == BOOTSTRAPPED
    boot = bootstrap_metrics(hard_stats, replicates=100)
    assert tuple(boot.replicates) == table.names(table.bootstrapped())


def test_headline_json_keys_are_the_summary_metrics() -> None:
    summary = summarize(read_predictions(HARD))
    doc = summary_to_dict(summary)
    headline = ("accuracy", "ece", "mce", "rmsce", "nll", "brier")
    assert _builtin(HEADLINE) == headline
    keys = list(doc)
    start = keys.index("accuracy")
    assert tuple(keys[start : start + len(headline)]) == headline  # the schema's order
    for name in headline:
        assert table.get(name).summary
        assert doc[name] == getattr(summary, name)


def test_every_number_of_ece_all_is_a_metric_of_the_table() -> None:
    preds = read_predictions(HARD)
    extra = extended_metrics(preds, summarize(preds), bootstrap=100)
    settings = {"smece_bandwidth", "brier_binning", "ci_level", "bootstrap", "seed"}
    nested = {"worst_classes", "top_k_accuracy", "bin_sensitivity", "ci"}
    assert set(extra) >= settings | nested
    estimates = set(_builtin(set(extra) - settings - nested))
    for key in estimates:
        assert table.get(key).extended is not None, key
    assert set(_builtin(extra["ci"])) == set(BOOTSTRAPPED)
    shown = set(_builtin(m for m, _ in table.extended_rows()))
    assert shown == estimates | {"accuracy", "ece", "mce", "rmsce", "nll", "brier"}


def test_the_ece_all_rows_are_the_tables() -> None:
    rows = [(m.name, r.label, r.what) for m, r in table.extended_rows() if m.name in BUILTIN]
    assert rows[0] == ("ece", "ECE", "binned plug-in (Guo et al. 2017)")
    assert rows[-1] == ("accuracy", "accuracy (top-1)", "")
    assert [name for name, _, _ in rows] == [
        "ece", "ece_over", "ece_under", "ece_debiased", "rmsce_debiased", "smece",
        "classwise_ece", "mce", "rmsce", "nll", "brier", "brier_reliability",
        "brier_resolution", "brier_uncertainty", "brier_within_bin_variance",
        "brier_within_bin_covariance", "accuracy",
    ]  # fmt: skip


def test_gate_compare_and_fit_report_lists_come_from_the_table() -> None:
    labels = {m: LABELS[m] for m in _builtin(LABELS)}
    assert {m.name: m.label for m in table.gateable() if m.name in BUILTIN} == labels
    assert set(labels) == set(BOOTSTRAPPED)
    assert _builtin(COMPARE_METRICS) == ("accuracy", "ece", "mce", "nll", "brier")
    assert _builtin(TS_METRICS) == ("ece", "mce", "nll", "brier")
    assert all(table.get(m).compare for m in COMPARE_METRICS)
    assert [m for m in _builtin(COMPARE_METRICS) if table.get(m).argmax_only] == ["accuracy"]
    assert {m: table.get(m).label for m in COMPARE_METRICS} == compare_report.LABELS
    assert _builtin(fit_report.METRICS) == ("nll", "ece", "mce", "brier")  # fit-temp's order


# --------------------------------------------------------------------------------------------
# the flags and config keys are the table's


def _check_options() -> dict[str, Any]:
    command = typer.main.get_command(app).commands["check"]  # type: ignore[attr-defined]
    return {opt: p for p in command.params for opt in p.opts if opt.startswith("--")}


def test_limit_flags_are_the_tables_limit_keys() -> None:
    keys = {k: m for k, m in table.limit_keys().items() if m.name in BUILTIN}
    assert list(keys) == [
        "max_ece", "max_mce", "max_rmsce", "max_nll", "max_brier", "min_accuracy",
    ]  # fmt: skip
    assert list(check_cli.LIMIT_FLAGS) == [(m.flag, key) for key, m in keys.items()]
    options = _check_options()
    named = [o for o in options if o[:6] in ("--max-", "--min-") and o != "--max-increase"]
    assert named == [m.flag for m in keys.values()]
    for metric in keys.values():
        assert metric.flag is not None
        side = "below" if metric.higher_is_better else "above"
        assert options[metric.flag].help == f"Fail if {metric.label} is {side} this."
    assert {"--max", "--min", "--max-increase"} <= set(options)


def test_config_keys_are_the_tables_limit_keys_then_the_settings() -> None:
    registered = _registered_limit_keys()
    assert [k for k in CHECK_KEYS if k not in registered] == [
        "max_ece", "max_mce", "max_rmsce", "max_nll", "max_brier", "min_accuracy", "baseline",
        "max_increase", "bins", "binning", "alpha", "bootstrap", "seed", "unpaired", "group_by",
        "group_min_rows",
    ]  # fmt: skip
    assert list(check_keys()) == [*table.limit_keys(), *list(CHECK_KEYS)[-10:]]
    config = gate_config({"min_accuracy": 0.9, "max_nll": 0.3, "max_ece": 0.05})
    assert dict(config.max_values) == {"nll": 0.3, "ece": 0.05}  # settings order kept
    assert dict(config.min_values) == {"accuracy": 0.9}


# --------------------------------------------------------------------------------------------
# a metric registered in the test reaches the generic paths


def test_registered_metric_is_bootstrapped(test_metrics: None, hard_stats: Any) -> None:
    point = point_metrics(hard_stats)
    assert point["ece_sq"] == pytest.approx(point["ece"] ** 2, rel=1e-12)
    assert point["acc_sq"] == pytest.approx(point["accuracy"] ** 2, rel=1e-12)
    boot = bootstrap_metrics(hard_stats, replicates=100, seed=3)
    np.testing.assert_allclose(boot.replicates["ece_sq"], boot.replicates["ece"] ** 2)


def test_registered_metric_is_gated(test_metrics: None, hard_stats: Any) -> None:
    ece = point_metrics(hard_stats)["ece"]
    config = GateConfig(max_values={"ece_sq": 0.001}, min_values={"acc_sq": 0.5})
    verdict = run_gate(hard_stats, config)
    sq, acc = verdict.checks
    assert (sq.name, sq.passed, sq.value) == ("max_ece_sq", False, pytest.approx(ece**2))
    assert sq.message == f"squared ECE {ece**2:.4f} > limit 0.001"
    assert acc.name == "min_acc_sq" and acc.passed
    with pytest.raises(UsageError, match=r"known: accuracy, .*, ece_debiased, .*ece_sq, acc_sq$"):
        GateConfig(max_values={"nope": 1.0})
    assert _cli_words(max_values={"ece_sq": float("nan")}).startswith(
        "--max ece_sq: limit must be a finite number"
    )
    assert _cli_words(min_values={"acc_sq": float("inf")}).startswith(
        "--min acc_sq: limit must be a finite number"
    )


def test_registered_metric_regression_uses_its_direction(test_metrics: None) -> None:
    base = collect_example_stats(read_predictions(HARD), warn=False)
    cand = collect_example_stats(read_predictions(LS10), warn=False)
    boot = paired_bootstrap(cand, base, replicates=100, seed=1)
    pb, pc = point_metrics(base), point_metrics(cand)
    assert boot.point["acc_sq"] == pytest.approx(pb["acc_sq"] - pc["acc_sq"])  # higher: base - c
    assert boot.point["ece_sq"] == pytest.approx(pc["ece_sq"] - pb["ece_sq"])
    verdict = run_gate(
        cand, GateConfig(max_increase={"acc_sq": 1.0}, bootstrap=100), baseline=dict(pb)
    )
    (check,) = verdict.checks
    assert check.delta == pytest.approx(pb["acc_sq"] - pc["acc_sq"])
    assert check.message.startswith("squared accuracy worsening ")


def test_registered_metric_has_a_config_key(test_metrics: None, tmp_path: Path) -> None:
    config = tmp_path / "gate.toml"
    config.write_text("max-ece-sq = 0.25\nmax-ece = 0.5\n", encoding="utf-8")
    settings, _ = load_check_config(config)
    assert settings == {"max_ece_sq": 0.25, "max_ece": 0.5}
    assert dict(gate_config(settings).max_values) == {"ece_sq": 0.25, "ece": 0.5}
    assert "max_ece_sq" in check_keys() and "max_acc_sq" not in check_keys()
    config.write_text("max-acc-sq = 0.25\n", encoding="utf-8")
    known = r"known: max-ece, .*, max-brier, (.*, )?max-ece-sq, min-accuracy, (.*, )?baseline"
    with pytest.raises(InputError, match=known):
        load_check_config(config)


def test_registered_metric_reaches_the_check_command(
    test_metrics: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    runner = CliRunner()
    result = runner.invoke(
        app, ["check", str(HARD), "--max", "ece_sq=0.001", "--min", "ACC_SQ=0.5", "--json"]
    )
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert [(c["name"], c["passed"]) for c in doc["checks"]] == [
        ("max_ece_sq", False),
        ("min_acc_sq", True),
    ]
    (tmp_path / "gate.toml").write_text("max-ece-sq = 1.0\n", encoding="utf-8")
    result = runner.invoke(app, ["check", str(HARD), "--config", "gate.toml"])
    assert result.exit_code == 0, result.output
    assert "ok   max_ece_sq: squared ECE " in result.stdout
    result = runner.invoke(
        app, ["check", str(HARD), "--baseline", str(HARD), "--max-increase", "ece_sq=0"]
    )
    assert result.exit_code == 0, result.output
    assert "squared ECE unchanged" in result.stdout


def test_check_refuses_a_limit_given_twice() -> None:
    result = CliRunner().invoke(app, ["check", str(HARD), "--max-ece", "0.1", "--max", "ece=1"])
    assert result.exit_code == 2
    assert result.stderr == "calibkit: error: --max ece: also given as --max-ece\n"


def test_registered_metric_reaches_ece_all(test_metrics: None) -> None:
    preds = read_predictions(HARD)
    summary = summarize(preds)
    extra = extended_metrics(preds, summary, bootstrap=100)
    assert list(extra["ci"])[-2:] == ["ece_sq", "acc_sq"]
    lo, hi = extra["ci"]["ece_sq"]
    assert lo <= summary.ece**2 <= hi
    assert extra["ece_sq"] == pytest.approx(summary.ece**2, rel=1e-12)  # its point value
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(extended_table(summary, extra))
    lines = console.export_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "  ECE squared" in line)
    assert "over-confident part" in lines[at + 1]  # rank 15: between ECE and its parts
    assert f"{summary.ece**2:.4f}" in lines[at] and "test-only metric" in lines[at]


# --------------------------------------------------------------------------------------------
# directions drive Comparison.best


def _comparison(values: dict[str, dict[str, float]]) -> Comparison:
    models = tuple(
        ModelResult(name=name, summary=SimpleNamespace(**v))  # type: ignore[arg-type]
        for name, v in values.items()
    )
    return Comparison(models=models, n_bins=15, binning="width")


def test_best_follows_the_direction() -> None:
    comp = _comparison(
        {"a": {"accuracy": 0.9, "ece": 0.05, "sharp": 0.1},
         "b": {"accuracy": 0.8, "ece": 0.02, "sharp": 0.3}}
    )  # fmt: skip
    assert comp.best("accuracy") == "a"
    assert comp.best("ece") == "b"
    sharp = Metric(name="sharp", label="sharpness", direction="higher")
    table.register(sharp)
    try:
        assert comp.best("sharp") == "b"
        table.register(replace(sharp, direction="lower"), replace=True)
        assert comp.best("sharp") == "a"
    finally:
        table.unregister("sharp")


def test_best_has_no_special_case_for_accuracy() -> None:
    comp = _comparison({"a": {"accuracy": 0.9}, "b": {"accuracy": 0.8}})
    accuracy = table.get("accuracy")
    table.register(replace(accuracy, direction="lower", limit_key=None), replace=True)
    try:
        assert comp.best("accuracy") == "b"
    finally:
        table.register(accuracy, replace=True)
    assert comp.best("accuracy") == "a"


# --------------------------------------------------------------------------------------------
# the records themselves


def test_records_are_validated() -> None:
    with pytest.raises(ValueError, match="needs from_sums"):
        Metric(name="x", label="x", gate=True)
    with pytest.raises(ValueError, match="limit_key must be max_x"):
        Metric(name="x", label="x", from_sums=_ece_squared, limit_key="min_x")
    with pytest.raises(ValueError, match="lower-case identifier"):
        Metric(name="Bad-Name", label="x")
    with pytest.raises(ValueError, match="direction"):
        Metric(name="x", label="x", direction="up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="already registered"):
        table.register(table.get("ece"))
    with pytest.raises(TypeError):
        Metric("x", "x")  # type: ignore[misc]  # keyword-only


def test_record_helpers() -> None:
    ece, acc = table.get("ece"), table.get("accuracy")
    assert (ece.limit, acc.limit) == ("max", "min")
    assert (ece.flag, acc.flag) == ("--max-ece", "--min-accuracy")
    assert ece.worsening(0.3, 0.1) == pytest.approx(0.2)
    assert acc.worsening(0.7, 0.9) == pytest.approx(0.2)
    assert (ece.worse_verb, acc.worse_verb) == ("rose", "fell")
    assert ece.better(0.1, 0.2) and acc.better(0.9, 0.8)
    assert ece.format(0.123456) == "0.1235" and ece.format(float("nan")) == "-"
    assert table.get("nll").unit == "nats"
    assert absolute_checks({"ece": 0.2}, GateConfig(max_values={"ece": 0.1}))[0].message == (
        "ECE 0.2000 > limit 0.1"
    )


def test_a_limit_without_a_flag_of_its_own_is_named_as_check_takes_it() -> None:
    assert _cli_words(max_values={"ece_over": float("nan")}).startswith(
        "--max ece_over: limit must be a finite number"
    )
    assert _cli_words(max_values={"ece": float("nan")}).startswith(
        "--max-ece: limit must be a finite number"
    )


def _cli_words(**config: Any) -> str:
    """The error of ``GateConfig(**config)`` as the CLI prints it (the flags of today)."""
    with pytest.raises(UsageError) as info:
        GateConfig(**config)
    return info.value.render(flags())
