"""The gate per group of rows (``calibkit check --group-by COLUMN``).

With a grouping (:func:`calibkit.sources.groups.group_rows`), every check of the gate runs
once on the pooled data, as without groups (its name and verdict unchanged), and once more on
each group, as if the group's rows were a file of their own (a
:class:`~calibkit.sources.groups.RowSubset`: the same numbers, bootstrap weights included).
A group's check is named ``<check>[<label>]`` (``max_ece[task=mmlu_anatomy]``) and its message
ends with ``[<label>, N=<rows>]``; the gate fails when any check of any group fails.

Absolute limits
    Each group's point value against the limit. A group smaller than
    :data:`~calibkit.sources.groups.MIN_GROUP_ROWS` is gated like the others (the caller warns
    that its estimate is noisy); ``group_min_rows`` leaves the groups with fewer rows out of the
    gate explicitly: their checks are *skipped* (reported, never failed, never computed).

Regressions
    The baseline must be grouped by the same columns into the same groups (:func:`pair_groups`):
    a group in one file only is refused. When the two files hold the same examples (the pooled
    pairing: the same N and labels) and every row is in the same group in both, each group's
    worsening is the paired bootstrap within the group; a baseline whose rows fall in other
    groups is refused unless unpaired comparisons are allowed, and then every group is compared
    unpaired.

    **Multiple testing.** One test per group at level ``alpha`` would raise false alarms with
    the number of groups (57 MMLU subjects at 0.05: a 95% chance of at least one when nothing
    changed). The groups' tests of one metric are one family, corrected with Holm's step-down
    method, which keeps the chance of any false alarm among them at most ``alpha`` (the pooled
    test is not in the family: its verdict does not change with ``--group-by``). Sorted by
    their p-values ``p(1) <= ... <= p(m)``, the ``r``-th is tested at ``alpha / (m - r + 1)``,
    and only while every smaller one was rejected; its reported ``p_value`` is Holm's adjusted
    p-value ``max_{j <= r} min(1, (m - j + 1) p(j))`` (a group fails when that is below
    ``alpha`` and its observed worsening exceeds the tolerance), ``p_unadjusted`` its own, and
    its interval the matched interval (:func:`~calibkit.gate.checks.matched_interval`) at its
    step's level, ``1 - 2 alpha / (m - r + 1)``. The gate as a whole fails on a group exactly
    when Bonferroni's would (the smallest p-value below ``alpha / m``); Holm names more of the
    groups that regressed. A bootstrap too small to resolve ``alpha / m``
    (``m / (B + 1) >= alpha``) could never fail a group, and is refused
    (:func:`check_resolution`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from calibkit.errors import InputError, Param, UsageError
from calibkit.gate.checks import (
    Check,
    GateConfig,
    Verdict,
    absolute_checks,
    bootstrapped_check,
    p_value,
)
from calibkit.metrics.examples import BinaryMode
from calibkit.sources.groups import MIN_GROUP_ROWS, Grouping, subset
from calibkit.sources.predictions import PredictionSource
from calibkit.stats.bootstrap import ModelSums, model_sums, worsening_bootstrap

__all__ = [
    "GroupOutcome",
    "check_resolution",
    "group_checks",
    "holm",
    "pair_groups",
    "with_groups",
]


@dataclass(frozen=True, kw_only=True)
class GroupOutcome:
    """One group of the gate: its ``{column: value}``, label, rows, whether it is small
    (under :data:`~calibkit.sources.groups.MIN_GROUP_ROWS`) or skipped (under
    ``group_min_rows``), the candidate's gated metrics and whether all its checks passed."""

    group: Mapping[str, str]
    label: str
    n: int
    small: bool
    skipped: bool
    passed: bool
    values: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": dict(self.group),
            "label": self.label,
            "n": self.n,
            "small": self.small,
            "skipped": self.skipped,
            "passed": self.passed,
            "values": dict(self.values),
        }


def _first_only(a: Grouping, b: Grouping) -> str | None:
    other = set(b.keys)
    for i, key in enumerate(a.keys):
        if key not in other:
            return a.label(i)
    return None


def pair_groups(
    candidate: Grouping,
    baseline: Grouping,
    *,
    candidate_name: str,
    baseline_name: str,
    unpaired: bool = False,
) -> bool:
    """Whether each group holds the same rows in both files (row ``i`` in the same group).

    The two files must make the same groups: a group in one file only is refused (an
    :class:`~calibkit.errors.InputError` of the baseline). Files of as many rows whose rows
    fall in other groups are refused too unless ``unpaired`` (then ``False``: each group is
    compared unpaired)."""
    if candidate.columns != baseline.columns:
        raise UsageError("the candidate and the baseline must be grouped by the same columns")
    need = f"; a regression by {', '.join(candidate.columns)} needs the same groups in both files"
    lone = _first_only(candidate, baseline)
    if lone is not None:
        raise InputError(
            baseline_name, f"has no rows in group {lone} of the candidate {candidate_name}" + need
        )
    lone = _first_only(baseline, candidate)
    if lone is not None:
        raise InputError(
            baseline_name,
            f"has a group {lone} that the candidate {candidate_name} has not" + need,
        )
    if candidate.codes.shape == baseline.codes.shape and np.array_equal(
        candidate.codes, baseline.codes
    ):
        return True
    if unpaired:
        return False
    if candidate.codes.shape != baseline.codes.shape:  # open_baseline refuses this unless unpaired
        raise InputError(baseline_name, "holds another number of rows than the candidate")
    row = int(np.flatnonzero(candidate.codes != baseline.codes)[0])
    raise InputError(
        baseline_name,
        f"row {row} is in group {baseline.label(int(baseline.codes[row]))} but in "
        f"{candidate.label(int(candidate.codes[row]))} in the candidate {candidate_name}: "
        "the groups are not the same examples; give "
        + Param("unpaired", True)
        + " to compare each group unpaired (much less sensitive)",
    )


def holm(p_values: list[float]) -> tuple[list[float], list[int]]:
    """Holm's adjusted p-values, and each test's step divisor ``m - r + 1`` (its level is
    ``alpha`` over it), for tests in the given order (ties keep their order).

    >>> holm([0.01, 0.04, 0.03])
    ([0.03, 0.06, 0.06], [3, 1, 2])
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, divisors = [0.0] * m, [0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
        divisors[i] = m - rank
    return adjusted, divisors


def check_resolution(groups: int, config: GateConfig) -> None:
    """Refuse a bootstrap that could not fail any of ``groups`` corrected tests: Holm tests the
    smallest p-value at ``alpha / groups``, and a p-value is at least ``1 / (B + 1)``."""
    if groups <= 1 or not config.max_increase:
        return
    replicates = config.bootstrap
    if groups / (replicates + 1) < config.alpha:
        return
    need = max(1, math.floor(groups / config.alpha) - 1)
    while groups / (need + 1) >= config.alpha:
        need += 1
    raise UsageError(
        f"{groups} groups: Holm's correction tests the most significant at "
        f"alpha / {groups} = {config.alpha / groups:.3g}, but {replicates} bootstrap replicates "
        f"give p-values of at least 1/{replicates + 1}, so no group could ever fail; give "
        + Param("bootstrap")
        + f" {need} or more (or a larger "
        + Param("alpha")
        + ")"
    )


def _grouped(check: Check, label: str, group: Mapping[str, str], n: int) -> Check:
    return replace(
        check,
        name=f"{check.name}[{label}]",
        message=f"{check.message} [{label}, N={n}]",
        group=dict(group),
        group_label=label,
        n=n,
    )


def _skipped(
    config: GateConfig, label: str, group: Mapping[str, str], n: int, least: int
) -> list[Check]:
    why = f"skipped: {n} rows, under the minimum of {least} rows per group"
    out = []
    kinds: tuple[tuple[Literal["max", "min", "regression"], Mapping[str, float]], ...] = (
        ("max", config.max_values),
        ("min", config.min_values),
        ("regression", config.max_increase),
    )
    for kind, limits in kinds:
        for metric, limit in limits.items():
            base = Check(
                name=f"{kind}_{metric}",
                metric=metric,
                kind=kind,
                value=math.nan,
                limit=limit,
                passed=True,
                message=why,
            )
            out.append(replace(_grouped(base, label, group, n), skipped=True))
    return out


def group_checks(
    candidate: PredictionSource,
    config: GateConfig,
    grouping: Grouping,
    *,
    baseline: PredictionSource | None = None,
    baseline_grouping: Grouping | None = None,
    paired: bool = True,
    binary_mode: BinaryMode = "top-label",
    chunk_rows: int | None = None,
    group_min_rows: int | None = None,
) -> tuple[list[Check], list[GroupOutcome], list[str]]:
    """The checks of every group, their outcomes and notes (see the module docstring).

    ``baseline`` (with its ``baseline_grouping``, checked by :func:`pair_groups`; ``paired``
    its answer and the pooled pairing together) is needed for the regression checks of
    ``config.max_increase``. Each gated group is streamed once per model (its bootstrap sums,
    or its point values when there is no regression to test)."""
    regress = bool(config.max_increase)
    if regress and (baseline is None or baseline_grouping is None):
        raise UsageError(Param("max_increase") + " needs " + Param("baseline"))
    least = group_min_rows or 0
    counts = grouping.counts
    gated = [g for g in range(grouping.n_groups) if counts[g] >= least]
    if regress:
        check_resolution(len(gated), config)
    absolute: dict[int, list[Check]] = {}
    values: dict[int, dict[str, float]] = {}
    boots: dict[int, Any] = {}
    notes: list[str] = []
    wanted = [*config.max_values, *config.min_values, *config.max_increase]
    for g in gated:
        sums = model_sums(
            subset(candidate, grouping.rows(g)),
            n_bins=config.n_bins,
            binning=config.binning,
            replicates=config.bootstrap if regress else 0,
            seed=config.seed,
            stream=0,
            binary_mode=binary_mode,
            chunk_rows=chunk_rows,
        )
        point = sums.point()
        values[g] = {m: point[m] for m in dict.fromkeys(wanted)}
        absolute[g] = absolute_checks(point, config)
        if regress:
            assert baseline is not None and baseline_grouping is not None
            b = baseline_grouping.keys.index(grouping.keys[g])
            base_sums: ModelSums = model_sums(
                subset(baseline, baseline_grouping.rows(b)),
                n_bins=config.n_bins,
                binning=config.binning,
                replicates=config.bootstrap,
                seed=config.seed,
                stream=0 if paired else 1,
                binary_mode=binary_mode,
                chunk_rows=chunk_rows,
            )
            boot = worsening_bootstrap(sums, base_sums)
            boots[g] = (point, boot)
            if boot.dropped:
                notes.append(
                    f"{grouping.label(g)}: {boot.dropped} of {config.bootstrap} bootstrap "
                    "replicates dropped (a model's total weight in them was 0: too few rows); "
                    "its p-values use the others"
                )
    regression: dict[int, list[Check]] = {g: [] for g in gated}
    for metric, tol in config.max_increase.items():
        raw = [p_value(boots[g][1].replicates[metric], tol) for g in gated]
        adjusted, divisors = holm(raw)
        for i, g in enumerate(gated):
            point, boot = boots[g]
            regression[g].append(
                bootstrapped_check(
                    metric,
                    tol,
                    value=point[metric],
                    delta=boot.point[metric],
                    reps=boot.replicates[metric],
                    alpha=config.alpha,
                    level_alpha=config.alpha / divisors[i],
                    p_value=adjusted[i],
                    raw_p=raw[i],
                    adjusted=f"Holm-adjusted over {len(gated)} groups",
                )
            )
    checks: list[Check] = []
    outcomes: list[GroupOutcome] = []
    for g in range(grouping.n_groups):
        label, group, n = grouping.label(g), grouping.as_dict(g), int(counts[g])
        if g in values:
            mine = [_grouped(c, label, group, n) for c in absolute[g] + regression[g]]
        else:
            mine = _skipped(config, label, group, n, least)
        checks += mine
        outcomes.append(
            GroupOutcome(
                group=group,
                label=label,
                n=n,
                small=n < MIN_GROUP_ROWS,
                skipped=g not in values,
                passed=all(c.passed for c in mine),
                values=values.get(g, {}),
            )
        )
    return checks, outcomes, notes


def with_groups(
    verdict: Verdict,
    columns: tuple[str, ...],
    checks: list[Check],
    outcomes: list[GroupOutcome],
    notes: Sequence[str] = (),
) -> Verdict:
    """The pooled ``verdict`` with the groups' checks after its own."""
    return replace(
        verdict,
        passed=verdict.passed and all(c.passed for c in checks),
        checks=verdict.checks + tuple(checks),
        notes=verdict.notes + tuple(notes),
        group_by=tuple(columns),
        groups=tuple(outcomes),
    )
