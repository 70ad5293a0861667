"""The CI gate's library: point metrics, regression checks, the p-value, the configuration and
the renderers (JUnit XML, Markdown), checked against ``summarize`` and against numbers recomputed
here from the bootstrap replicates."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from calibkit.cli._common import flags
from calibkit.errors import InputError, UsageError
from calibkit.gate.checks import (
    Check,
    GateConfig,
    Verdict,
    absolute_checks,
    regression_checks,
    run_gate,
)
from calibkit.loaders import read_predictions
from calibkit.metrics import table
from calibkit.metrics.estimators import debiased_squared_ce, over_under_confidence
from calibkit.metrics.examples import ExampleStats
from calibkit.metrics.summary import collect_example_stats, summarize
from calibkit.report.check_report import summary_line, verdict_junit, verdict_markdown
from calibkit.sources.predictions import Predictions
from calibkit.stats.bootstrap import METRICS, paired_bootstrap, point_metrics

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
#: The headline files digits_{model}_{val,test}.npz (not the diagnostics files beside them).
SAMPLES = sorted(
    p.name for p in SAMPLE.glob("digits_*.npz") if p.stem.endswith(("_val", "_test"))
)
HARD = SAMPLE / "digits_hard_test.npz"


def stats_of(logits: np.ndarray, labels: np.ndarray) -> ExampleStats:
    return collect_example_stats(Predictions.from_arrays(logits, labels))


@pytest.fixture(scope="module")
def hard() -> tuple[np.ndarray, np.ndarray]:
    with np.load(HARD) as f:
        return f["logits"].astype(np.float64), f["labels"]


@pytest.fixture(scope="module")
def base(hard: tuple[np.ndarray, np.ndarray]) -> ExampleStats:
    return stats_of(*hard)


@pytest.fixture(scope="module")
def worse(hard: tuple[np.ndarray, np.ndarray]) -> ExampleStats:
    """Logits times 2: the same predictions, overconfident."""
    return stats_of(hard[0] * 2, hard[1])


# --------------------------------------------------------------------------------------------
# point metrics


@pytest.mark.parametrize("binning", ["width", "mass"])
@pytest.mark.parametrize("n_bins", [1, 10, 15])
@pytest.mark.parametrize("name", SAMPLES)
def test_point_metrics_equal_summarize(name: str, binning: str, n_bins: int) -> None:
    source = read_predictions(SAMPLE / name)
    values = point_metrics(collect_example_stats(source), n_bins=n_bins, binning=binning)  # type: ignore[arg-type]
    summary = summarize(source, n_bins=n_bins, binning=binning)  # type: ignore[arg-type]
    builtin = ("accuracy", "ece", "mce", "rmsce", "nll", "brier", "ece_over", "ece_under",
               "ece_debiased")  # fmt: skip
    assert {m for m in values if m in table.BUILTIN} == set(builtin)
    over, under = over_under_confidence(summary.bins)
    expected = {
        **{m: getattr(summary, m) for m in ("accuracy", "ece", "mce", "rmsce", "nll", "brier")},
        "ece_over": over,
        "ece_under": under,
        "ece_debiased": debiased_squared_ce(summary.bins),
    }
    for metric in builtin:
        assert values[metric] == pytest.approx(expected[metric], abs=1e-12), metric


def test_point_metrics_of_the_parquet_twin_agree() -> None:
    a = point_metrics(collect_example_stats(read_predictions(SAMPLE / "digits_ls10_val.npz")))
    b = point_metrics(collect_example_stats(read_predictions(SAMPLE / "digits_ls10_val.parquet")))
    for metric in METRICS:
        assert a[metric] == pytest.approx(b[metric], abs=1e-12)


def test_point_metrics_by_hand() -> None:
    # two bins of width 0.5: rows with confidence 0.9, 0.8 (bin 2) and 0.6 (bin 2), 0.4 (bin 1)
    st = ExampleStats(
        confidence=np.array([0.9, 0.8, 0.6, 0.4]),
        outcome=np.array([1.0, 0.0, 1.0, 1.0]),
        correct=np.array([True, False, True, True]),
        log_prob=np.log(np.array([0.9, 0.1, 0.6, 0.4])),
        brier=np.array([0.02, 1.28, 0.32, 0.72]),
        saturated=np.zeros(4, dtype=bool),
    )
    v = point_metrics(st, n_bins=2)
    gap_hi = abs((1 + 0 + 1) - (0.9 + 0.8 + 0.6))  # 0.3 over 3 rows
    gap_lo = abs(1 - 0.4)  # 0.6 over 1 row
    assert v["accuracy"] == 0.75
    assert v["ece"] == pytest.approx((gap_hi + gap_lo) / 4, abs=1e-15)
    assert v["mce"] == pytest.approx(0.6, abs=1e-15)
    assert v["rmsce"] == pytest.approx(math.sqrt((gap_hi**2 / 3 + gap_lo**2) / 4), abs=1e-15)
    assert v["nll"] == pytest.approx(-np.log([0.9, 0.1, 0.6, 0.4]).mean(), abs=1e-15)
    assert v["brier"] == pytest.approx(0.585, abs=1e-15)


# --------------------------------------------------------------------------------------------
# regression checks against point values (a JSON baseline)


def test_regression_against_point_values(base: ExampleStats) -> None:
    v = point_metrics(base)
    baseline = {
        "ece": v["ece"] - 0.005,  # candidate 0.005 worse: within 0.01
        "nll": v["nll"] + 0.1,  # candidate better
        "accuracy": v["accuracy"] + 0.02,  # candidate 0.02 less accurate: beyond 0.01
        "brier": v["brier"] - 0.03,  # candidate 0.03 worse: beyond 0.02
        "mce": 1.0,  # unused
    }
    config = GateConfig(max_increase={"ece": 0.01, "nll": 0.0, "accuracy": 0.01, "brier": 0.02})
    checks = {c.metric: c for c in regression_checks(base, baseline, config)}
    assert list(checks) == ["ece", "nll", "accuracy", "brier"]
    expected = {"ece": (0.005, True), "nll": (-0.1, True), "accuracy": (0.02, False)}
    expected["brier"] = (0.03, False)
    for metric, (delta, passed) in expected.items():
        c = checks[metric]
        assert c.kind == "regression" and c.name == f"regression_{metric}"
        assert c.delta == pytest.approx(delta, abs=1e-12), metric
        assert c.passed is passed, metric
        assert c.value == v[metric] and c.limit == config.max_increase[metric]
        assert c.ci_low is c.ci_high is c.p_value is None
        assert c.message.endswith("; point values, no significance test)")
    assert checks["accuracy"].message == (
        f"accuracy worsening +0.0200 vs baseline {baseline['accuracy']:.4f} "
        "(> tolerance 0.01; point values, no significance test)"
    )


def test_accuracy_worsening_is_baseline_minus_candidate(base: ExampleStats) -> None:
    acc = point_metrics(base)["accuracy"]
    config = GateConfig(max_increase={"accuracy": 0.0})
    (better,) = regression_checks(base, {"accuracy": acc - 0.1}, config)
    assert better.delta == pytest.approx(-0.1, abs=1e-12) and better.passed
    (worse,) = regression_checks(base, {"accuracy": acc + 0.1}, config)
    assert worse.delta == pytest.approx(0.1, abs=1e-12) and not worse.passed


def test_the_tolerance_itself_passes(base: ExampleStats) -> None:
    v = point_metrics(base)
    (c,) = regression_checks(base, {"ece": v["ece"]}, GateConfig(max_increase={"ece": 0.0}))
    assert c.delta == 0.0 and c.passed


def test_a_point_baseline_without_the_metric_is_refused(base: ExampleStats) -> None:
    with pytest.raises(InputError, match=r"^baseline: has no value for 'nll'$"):
        regression_checks(base, {"ece": 0.1}, GateConfig(max_increase={"ece": 0.1, "nll": 0.1}))


def test_no_increase_no_regression_checks(base: ExampleStats) -> None:
    assert regression_checks(base, base, GateConfig(max_values={"ece": 1.0})) == []


# --------------------------------------------------------------------------------------------
# regression checks against per-example statistics (the bootstrap)


@pytest.mark.parametrize("paired", [True, False])
@pytest.mark.parametrize("seed", [0, 11])
def test_p_value_and_interval_from_the_replicates(
    worse: ExampleStats, base: ExampleStats, paired: bool, seed: int
) -> None:
    b, alpha = 400, 0.1
    boot = paired_bootstrap(
        worse, base, replicates=b, seed=seed, paired=paired, n_bins=10, binning="mass"
    )
    tolerances = {m: float(np.quantile(boot.replicates[m], 0.3)) for m in METRICS}
    config = GateConfig(
        max_increase=tolerances, bootstrap=b, seed=seed, alpha=alpha, n_bins=10, binning="mass"
    )
    checks = regression_checks(worse, base, config, paired=paired)
    assert [c.metric for c in checks] == list(METRICS)
    values = point_metrics(worse, n_bins=10, binning="mass")
    for c in checks:
        reps = boot.replicates[c.metric]
        assert reps.shape == (b,)
        tol = tolerances[c.metric]
        p = (1 + int(np.sum(reps <= tol))) / (b + 1)
        assert c.p_value == p
        # a 1 - 2*alpha percentile interval: within one order statistic of the quantiles
        srt, j = np.sort(reps), round(alpha * (b - 1))
        assert srt[j - 1] <= c.ci_low <= srt[j + 1]
        assert srt[b - 2 - j] <= c.ci_high <= srt[b - j]
        assert c.delta == boot.point[c.metric]
        assert c.value == values[c.metric]
        assert c.passed == (not (c.delta > tol and p < alpha))


def test_a_clear_regression_fails_and_the_same_model_passes(
    worse: ExampleStats, base: ExampleStats
) -> None:
    config = GateConfig(max_increase={"ece": 0.005, "nll": 0.02}, bootstrap=300)
    bad = regression_checks(worse, base, config)
    assert [c.passed for c in bad] == [False, False]
    for c in bad:
        assert c.p_value == 1 / 301  # no replicate at or below the tolerance
        assert c.ci_low > c.limit
        assert "(worse)" in c.message
    same = regression_checks(base, base, config)
    for c in same:
        assert c.passed and c.delta == 0.0 and c.p_value == 1.0
        assert (c.ci_low, c.ci_high) == (0.0, 0.0)
        assert c.message.startswith(("ECE unchanged", "NLL unchanged"))


def test_an_improvement_passes_with_a_readable_message(
    worse: ExampleStats, base: ExampleStats
) -> None:
    (c,) = regression_checks(base, worse, GateConfig(max_increase={"nll": 0.0}, bootstrap=200))
    assert c.passed and c.delta < 0
    assert c.message.startswith(f"NLL improved by {-c.delta:.4f}; 90% CI of the worsening ")


def test_above_the_tolerance_but_not_significant(worse: ExampleStats, base: ExampleStats) -> None:
    boot = paired_bootstrap(worse, base, replicates=300, seed=0)
    tol = float(np.quantile(boot.replicates["ece"], 0.2))
    assert boot.point["ece"] > tol
    (c,) = regression_checks(
        worse, base, GateConfig(max_increase={"ece": tol}, bootstrap=300, seed=0)
    )
    assert c.passed and c.p_value is not None and c.p_value > 0.05
    assert c.message.endswith(": above the tolerance but not significant")


@pytest.mark.parametrize(("b", "alpha"), [(500, 0.05), (1000, 0.05), (399, 0.1), (150, 0.01)])
def test_the_interval_and_the_test_agree(
    worse: ExampleStats, base: ExampleStats, b: int, alpha: float
) -> None:
    """A check fails exactly when the worsening exceeds the tolerance and the reported interval
    lies above it, for tolerances at, between and just below the replicates around the critical one
    (found with np.quantile's interpolated interval: ``check x2.npz --baseline
    digits_hard_test.npz --max-increase ece=0.016639 --bootstrap 500``, with x2 the logits
    times 2, printed the interval +0.0167 .. +0.0309 and passed)."""
    boot = paired_bootstrap(worse, base, replicates=b, seed=0)
    s = np.sort(boot.replicates["ece"])
    k = int(alpha * (b + 1))  # the critical order statistic is within a few of this one
    near = s[max(k - 4, 0) : k + 4]
    tols = np.unique(np.concatenate([near, (near[1:] + near[:-1]) / 2, np.nextafter(near, 0)]))
    disagree = []
    for t in tols.tolist():
        config = GateConfig(max_increase={"ece": t}, bootstrap=b, seed=0, alpha=alpha)
        (c,) = regression_checks(worse, base, config)
        assert c.delta is not None and c.ci_low is not None and c.delta > t
        if c.passed == (c.ci_low > t):
            disagree.append((float(t), c.ci_low, c.p_value))
    assert disagree == []


def test_run_gate_combines_the_checks(worse: ExampleStats, base: ExampleStats) -> None:
    v = point_metrics(worse)
    config = GateConfig(
        max_values={"ece": 1.0, "nll": v["nll"] - 0.01},
        min_values={"accuracy": 0.5},
        max_increase={"ece": 0.01},
        bootstrap=200,
    )
    verdict = run_gate(worse, config, baseline=base, baseline_name="b.npz", notes=("n1",))
    assert [c.name for c in verdict.checks] == [
        "max_ece",
        "max_nll",
        "min_accuracy",
        "regression_ece",
    ]
    assert [c.passed for c in verdict.checks] == [True, False, True, False]
    assert not verdict.passed
    assert [c.name for c in verdict.failed] == ["max_nll", "regression_ece"]
    assert verdict.baseline == "b.npz" and verdict.paired is True and verdict.notes == ("n1",)
    d = verdict.to_dict()
    assert list(d) == ["passed", "baseline", "paired", "notes", "checks"]
    assert list(d["checks"][0])[:2] == ["kind", "name"]
    assert summary_line(verdict) == "FAILED: 2 of 4 checks (NLL, ECE)"


def test_run_gate_with_point_values_adds_a_note(base: ExampleStats) -> None:
    v = point_metrics(base)
    verdict = run_gate(base, GateConfig(max_increase={"ece": 0.0}), baseline={"ece": v["ece"]})
    assert verdict.passed and verdict.paired is None
    assert verdict.notes == (
        "baseline is a JSON of point values: no significance test was possible",
    )


def test_run_gate_refuses_nothing_and_a_missing_baseline(base: ExampleStats) -> None:
    with pytest.raises(UsageError, match=r"^nothing to check"):
        run_gate(base, GateConfig())
    with pytest.raises(UsageError) as info:  # the library's words; the CLI's are the flags
        run_gate(base, GateConfig(max_increase={"ece": 0.01}))
    assert str(info.value) == "max_increase needs baseline"
    assert info.value.render(flags()) == "--max-increase needs --baseline"


def test_absolute_checks_by_hand() -> None:
    values = {"ece": 0.05, "accuracy": 0.9, "nll": 0.3, "mce": 0.2, "rmsce": 0.1, "brier": 0.1}
    config = GateConfig(max_values={"ece": 0.05, "nll": 0.29}, min_values={"accuracy": 0.9})
    checks = absolute_checks(values, config)
    assert [(c.name, c.passed) for c in checks] == [
        ("max_ece", True),  # the limit itself passes
        ("max_nll", False),
        ("min_accuracy", True),
    ]
    assert checks[1].message == "NLL 0.3000 > limit 0.29"
    assert checks[2].message == "accuracy 0.9000 >= limit 0.9"


# --------------------------------------------------------------------------------------------
# GateConfig validation


#: The gateable metrics a message lists: the built-ins, pinned by name, then any metric a plugin
#: registered at import (after them, in the table's order).
KNOWN = ", ".join(
    [
        *("accuracy", "ece", "mce", "rmsce", "nll", "brier", "ece_over", "ece_under"),
        "ece_debiased",
        *(m.name for m in table.gateable() if m.name not in table.BUILTIN),
    ]
)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_values": {"foo": 0.1}}, f"--max: unknown metric 'foo'; known: {KNOWN}"),
        ({"min_values": {"ECE": 0.1}}, f"--min: unknown metric 'ECE'; known: {KNOWN}"),
        (
            {"max_increase": {"acc": 0.1}},
            f"--max-increase: unknown metric 'acc'; known: {KNOWN}",
        ),
        (
            {"max_increase": {"ece": float("nan")}},
            "--max-increase ece: limit must be a finite number; got nan",
        ),
        ({"max_values": {"ece": "0.1"}}, "--max-ece: limit must be a finite number; got '0.1'"),
        ({"max_values": {"ece": 0.1}, "alpha": 0.0}, "alpha must lie in (0, 0.5); got 0.0"),
        ({"max_values": {"ece": 0.1}, "alpha": 0.5}, "alpha must lie in (0, 0.5); got 0.5"),
        ({"max_values": {"ece": 0.1}, "alpha": -0.1}, "alpha must lie in (0, 0.5); got -0.1"),
        (
            {"max_values": {"ece": 0.1}, "bootstrap": 99},
            "bootstrap must be >= 100 replicates; got 99",
        ),
        (
            {"max_values": {"ece": 0.1}, "binning": "equal"},
            "binning must be width or mass; got 'equal'",
        ),
    ],
)
def test_gate_config_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError) as info:
        GateConfig(**kwargs)
    assert info.value.render(flags()) == message  # as the CLI prints it
    assert "--" not in str(info.value)  # the library names parameters (test_gate_messages.py)


def test_gate_config_limits() -> None:
    assert GateConfig(bootstrap=100, alpha=0.49).empty
    assert not GateConfig(min_values={"accuracy": 0.5}).empty
    c = GateConfig(max_values={"ece": 1})  # an int limit is a number
    assert (c.n_bins, c.binning, c.alpha, c.bootstrap, c.seed) == (15, "width", 0.05, 2000, 0)


# --------------------------------------------------------------------------------------------
# renderers


@pytest.fixture
def verdict() -> Verdict:
    checks = (
        Check(
            name="max_ece", metric="ece", kind="max", value=0.04, limit=0.05, passed=True,
            message="ECE 0.0400 <= limit 0.05",
        ),
        Check(
            name="regression_nll", metric="nll", kind="regression", value=0.6, limit=0.02,
            passed=False, delta=0.1, ci_low=0.05, ci_high=0.15, p_value=0.001,
            message='NLL rose by 0.1000 (worse) <&> "quoted"',
        ),
        Check(
            name="min_accuracy", metric="accuracy", kind="min", value=0.7, limit=0.8,
            passed=False, message="accuracy 0.7 < 0.8",
        ),
    )  # fmt: skip
    return Verdict(
        passed=False, checks=checks, notes=("a note", "another & note"), baseline="base.npz",
        paired=True,
    )


def test_verdict_junit(verdict: Verdict) -> None:
    text = verdict_junit(verdict)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(text.split("\n", 1)[1])
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "calibkit check"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "2", "0")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["max_ece", "regression_nll", "min_accuracy"]
    for case, check in zip(cases, verdict.checks, strict=True):
        assert case.get("classname") == "calibkit.check"
        assert case.findtext("system-out") == check.message
        failure = case.find("failure")
        if check.passed:
            assert failure is None
        else:
            assert failure is not None
            assert failure.get("message") == check.message == failure.text
    props = suite.findall("./properties/property")
    assert [p.get("value") for p in props] == ["a note", "another & note"]


def test_verdict_junit_of_a_passing_gate() -> None:
    check = Check(
        name="max_ece", metric="ece", kind="max", value=0.04, limit=0.05, passed=True, message="ok"
    )
    v = Verdict(passed=True, checks=(check,))
    (suite,) = ET.fromstring(verdict_junit(v).split("\n", 1)[1]).findall("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("1", "0")
    assert suite.find("properties") is None
    assert suite.find("testcase/failure") is None


def test_verdict_markdown(verdict: Verdict) -> None:
    md = verdict_markdown(verdict)
    assert md.startswith("### calibkit check: ❌ FAILED: 2 of 3 checks (NLL, accuracy)\n")
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert len(rows) == len(verdict.checks)
    assert rows[0] == "| `max_ece` | 0.0400 | <= 0.05 | - | - | - | ✅ pass |"
    assert rows[1] == (
        "| `regression_nll` | 0.6000 | worsening <= 0.02 | +0.1000 | +0.0500 .. +0.1500 | "
        "0.0010 | ❌ **FAIL** |"
    )
    assert rows[2] == "| `min_accuracy` | 0.7000 | >= 0.8 | - | - | - | ❌ **FAIL** |"
    assert md.endswith("\n- a note\n- another & note\n")
    # every row has as many cells as the header
    header = next(line for line in md.splitlines() if line.startswith("| check"))
    assert all(r.count("|") == header.count("|") for r in rows)
