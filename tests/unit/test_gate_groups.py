"""The gate per group (``calibkit.gate.groups``): absolute limits per group, the paired
bootstrap within each group (the numbers of the group's rows alone), Holm's correction over
groups, the pairing of the baseline's groups, skipped small groups."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from calibkit.errors import InputError, UsageError
from calibkit.gate.checks import GateConfig, run_gate
from calibkit.gate.groups import check_resolution, group_checks, holm, pair_groups, with_groups
from calibkit.sources.groups import MemoryColumns, group_rows
from calibkit.sources.predictions import Predictions
from calibkit.stats.bootstrap import model_sums


def _data(
    n: int = 900, seed: int = 0, worse: str | None = None
) -> tuple[Predictions, Predictions, np.ndarray]:
    """Baseline and candidate on the same rows; the candidate over-confident in group
    ``worse`` (its logits times 4), else a touch of noise."""
    rng = np.random.default_rng(seed)
    task = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    y = rng.integers(0, 3, n)
    z = rng.normal(size=(n, 3))
    z[np.arange(n), y] += 1.2
    cand = z + rng.normal(scale=1e-3, size=z.shape)
    if worse is not None:
        cand[task == worse] *= 4
    cols = MemoryColumns({"task": task})
    base = dataclasses.replace(Predictions.from_arrays(z, y), columns=cols)
    return base, dataclasses.replace(Predictions.from_arrays(cand, y), columns=cols), task


def _alone(p: Predictions, mask: np.ndarray) -> Predictions:
    return Predictions.from_arrays(p.scores[mask], p.labels[mask])


CFG = GateConfig(max_increase={"ece": 0.01, "nll": 0.02}, bootstrap=300, seed=3)


def test_holm_matches_the_definition() -> None:
    rng = np.random.default_rng(5)
    for m in (1, 2, 5, 9):
        p = list(rng.uniform(0, 0.2, m))
        adjusted, divisors = holm(p)
        order = np.argsort(p, kind="stable")
        for rank, i in enumerate(order):
            want = max(min(1.0, (m - j) * p[order[j]]) for j in range(rank + 1))
            assert adjusted[i] == pytest.approx(want, rel=1e-15)
            assert divisors[i] == m - rank
        # Holm rejects any hypothesis exactly when Bonferroni rejects the smallest
        for alpha in (0.01, 0.05, 0.1):
            assert (min(adjusted) < alpha) == (min(p) * m < alpha)


def test_a_group_over_the_limit_fails_and_names_itself() -> None:
    _, cand, task = _data(worse="b")
    cfg = GateConfig(max_values={"ece": 0.12})
    g = group_rows(cand, ["task"])
    checks, outcomes, _ = group_checks(cand, cfg, g)
    assert [c.name for c in checks] == ["max_ece[task=a]", "max_ece[task=b]", "max_ece[task=c]"]
    assert [c.passed for c in checks] == [True, False, True]
    (bad,) = [c for c in checks if not c.passed]
    n_b = int((task == "b").sum())
    assert bad.message.endswith(f"[task=b, N={n_b}]") and bad.n == n_b
    ref = model_sums(_alone(cand, task == "b"), replicates=0).point()["ece"]
    assert bad.value == pytest.approx(ref, rel=1e-12)
    assert [o.passed for o in outcomes] == [True, False, True]
    pooled = run_gate(model_sums(cand, replicates=0), cfg)
    v = with_groups(pooled, ("task",), checks, outcomes)
    assert not v.passed and len(v.checks) == 4
    d = v.to_dict()
    assert "group" not in d["checks"][0]  # the pooled check keeps its keys
    assert d["checks"][2]["group"] == {"task": "b"} and d["group_by"] == ["task"]
    assert [x["n"] for x in d["groups"]] == g.counts.tolist()


@pytest.mark.parametrize("chunk_rows", [None, 64])
def test_each_groups_paired_bootstrap_is_that_of_its_rows_alone(chunk_rows: int | None) -> None:
    base, cand, task = _data(worse="c")
    g = group_rows(cand, ["task"])
    paired = pair_groups(g, group_rows(base, ["task"]), candidate_name="c", baseline_name="b")
    assert paired is True
    checks, _, _ = group_checks(
        cand, CFG, g, baseline=base, baseline_grouping=g, paired=True, chunk_rows=chunk_rows
    )
    by_name = {c.name: c for c in checks}
    raw = {
        m: [by_name[f"regression_{m}[task={k}]"].p_unadjusted for k in "abc"]
        for m in ["ece", "nll"]
    }
    for k in "abc":
        mask = task == k
        alone_c, alone_b = _alone(cand, mask), _alone(base, mask)
        for metric in ("ece", "nll"):
            c = by_name[f"regression_{metric}[task={k}]"]
            _, divisors = holm(raw[metric])
            level = CFG.alpha / divisors["abc".index(k)]
            cfg = dataclasses.replace(
                CFG, alpha=level, max_increase={metric: 0.01 if metric == "ece" else 0.02}
            )
            ref = run_gate(
                model_sums(alone_c, replicates=CFG.bootstrap, seed=CFG.seed),
                cfg,
                baseline=model_sums(alone_b, replicates=CFG.bootstrap, seed=CFG.seed),
            ).checks[0]
            assert c.delta == pytest.approx(ref.delta, rel=1e-9, abs=1e-12)
            assert c.value == pytest.approx(ref.value, rel=1e-12)
            assert c.p_unadjusted == ref.p_value  # the same weights, the same replicates
            assert (c.ci_low, c.ci_high) == pytest.approx((ref.ci_low, ref.ci_high), abs=1e-12)
    # the over-confident group fails, the others pass (noise only)
    assert not by_name["regression_ece[task=c]"].passed
    assert by_name["regression_ece[task=a]"].passed and by_name["regression_ece[task=b]"].passed


def test_holm_adjusted_p_values_decide_and_the_interval_matches() -> None:
    base, cand, _ = _data(worse="a")
    g = group_rows(cand, ["task"])
    checks, _, _ = group_checks(cand, CFG, g, baseline=base, baseline_grouping=g)
    ece = [c for c in checks if c.metric == "ece"]
    adjusted, _ = holm([c.p_unadjusted for c in ece])  # type: ignore[misc]
    for c, p in zip(ece, adjusted, strict=True):
        assert c.p_value == pytest.approx(p)
        assert c.passed == (not (c.delta > c.limit and p < CFG.alpha))  # type: ignore[operator]
        if c.p_unadjusted == p:  # not raised by an earlier step: the interval says the verdict
            assert (c.ci_low > c.limit) == (not c.passed)  # type: ignore[operator]
        assert "Holm-adjusted over 3 groups" in c.message
    assert not ece[0].passed


def test_a_group_in_one_file_only_is_refused() -> None:
    base, cand, task = _data()
    other = dataclasses.replace(
        base, columns=MemoryColumns({"task": np.where(task == "c", "z", task)})
    )
    with pytest.raises(InputError, match=r"has no rows in group task=c of the candidate cand"):
        pair_groups(
            group_rows(cand, ["task"]),
            group_rows(other, ["task"]),
            candidate_name="cand",
            baseline_name="base",
        )
    fewer = dataclasses.replace(
        cand, columns=MemoryColumns({"task": np.where(task == "c", "a", task)})
    )
    with pytest.raises(InputError, match=r"has a group task=c that the candidate cand has not"):
        pair_groups(
            group_rows(fewer, ["task"]),
            group_rows(base, ["task"]),
            candidate_name="cand",
            baseline_name="base",
            unpaired=True,  # refused however unpaired
        )


def test_rows_in_other_groups_need_unpaired() -> None:
    base, cand, task = _data()
    swapped = task.copy()
    swapped[[0, 1]] = swapped[[1, 0]] if task[0] != task[1] else ("a", "b")
    other = dataclasses.replace(base, columns=MemoryColumns({"task": swapped}))
    gc, gb = group_rows(cand, ["task"]), group_rows(other, ["task"])
    with pytest.raises(InputError, match=r"^.*row 0 is in group task=.* in the candidate"):
        pair_groups(gc, gb, candidate_name="cand", baseline_name="base")
    assert pair_groups(gc, gb, candidate_name="cand", baseline_name="base", unpaired=True) is False
    checks, _, _ = group_checks(cand, CFG, gc, baseline=other, baseline_grouping=gb, paired=False)
    assert all(c.p_unadjusted is not None for c in checks)


def test_a_bootstrap_too_small_for_the_correction_is_refused() -> None:
    cfg = GateConfig(max_increase={"ece": 0.01}, bootstrap=100, alpha=0.05)
    check_resolution(5, cfg)  # 5 / 101 < 0.05
    with pytest.raises(UsageError, match=r"6 groups: .* give bootstrap 120 or more"):
        check_resolution(6, cfg)
    for groups, alpha in itertools.product((6, 20, 57), (0.05, 0.01, 0.025)):
        try:
            check_resolution(groups, dataclasses.replace(cfg, alpha=alpha))
        except UsageError as err:
            need = int(str(err).split("give bootstrap ")[1].split()[0])
            assert groups / (need + 1) < alpha <= groups / need
    check_resolution(57, GateConfig(max_values={"ece": 0.1}, bootstrap=100))  # no regression


def test_group_min_rows_skips_small_groups_without_computing_them() -> None:
    base, cand, _ = _data(worse="c")
    g = group_rows(cand, ["task"])
    least = int(g.counts.min()) + 1  # group c is the smallest
    cfg = GateConfig(max_values={"ece": 0.12}, max_increase={"ece": 0.01}, bootstrap=300)
    checks, outcomes, _ = group_checks(
        cand, cfg, g, baseline=base, baseline_grouping=g, group_min_rows=least
    )
    skipped = [c for c in checks if c.skipped]
    assert [c.name for c in skipped] == ["max_ece[task=c]", "regression_ece[task=c]"]
    assert all(c.passed and np.isnan(c.value) for c in skipped)
    assert "under the minimum" in skipped[0].message
    assert [o.skipped for o in outcomes] == [False, False, True]
    ran = [c for c in checks if not c.skipped]
    assert all("over 2 groups" in c.message for c in ran if c.kind == "regression")
