"""The CI gate: predictions (and a baseline) against limits, to a :class:`Verdict`.

Two kinds of checks:

* **absolute** — ``max_<metric>`` / ``min_accuracy``: the candidate's point value against a limit;
* **regression** — ``max_increase[<metric>]``: how much worse the candidate is than a baseline.
  The *worsening* is ``candidate - baseline`` (``baseline - candidate`` for accuracy), so a
  positive number is always a regression.

  - With a **predictions** baseline, calibkit bootstraps the worsening (``bootstrap`` replicates,
    ``seed``; the streamed Poisson bootstrap of :mod:`calibkit.stats.bootstrap`, whose weights
    depend only on the seed, the replicate and the row number, so the verdict is the same on
    every engine and shard layout), paired when both files hold the same examples (same N and
    the same label vector): then both models give row ``i`` the same weights.
    A baseline of other examples gives an unpaired bootstrap, much less sensitive, only when the
    user allows it (``calibkit check --unpaired``); a baseline with another number of classes is
    another task and is always refused (both in :mod:`calibkit.gate.baseline`). A check
    fails only if the observed worsening exceeds the tolerance **and** is significant: the
    one-sided bootstrap p-value of ``H0: worsening <= tolerance``,
    ``p = (1 + #{replicates <= tolerance}) / (B + 1)``, is below ``alpha``. The reported interval
    is the ``1 - 2*alpha`` two-sided percentile interval taken at the order statistics that match
    that p-value (:func:`matched_interval`), so a check fails exactly when the observed worsening
    exceeds the tolerance and the interval lies above it.
  - With a **JSON** baseline (from ``calibkit ece --json``) only point values exist: the check
    fails when the worsening exceeds the tolerance, and says no significance test was possible.
    Its ``n_classes`` must be the candidate's, and its ``n`` too unless ``--unpaired``.

The same inputs and seed always give the same verdict and numbers.

Per group of rows (``calibkit check --group-by``): :mod:`calibkit.gate.groups` runs these checks
on each group too, and corrects the groups' regression tests for their number (Holm).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from calibkit.errors import InputError, Param, UsageError
from calibkit.metrics import table as metric_table
from calibkit.metrics.binning import BINNINGS, Binning
from calibkit.metrics.examples import ExampleStats
from calibkit.stats.bootstrap import ModelSums, model_sums, worsening_bootstrap

__all__ = [
    "Check",
    "GateConfig",
    "Verdict",
    "absolute_checks",
    "bootstrapped_check",
    "matched_interval",
    "p_value",
    "regression_checks",
    "run_gate",
]

#: The labels of the built-in gateable metrics (:mod:`calibkit.metrics.table`, which the gate
#: reads when it runs).
LABELS = {m.name: m.label for m in metric_table.gateable()}


def _label(metric: str) -> str:
    return metric_table.get(metric).label


@dataclass(frozen=True, kw_only=True)
class GateConfig:
    """What to check. ``max_values``/``min_values`` map metric names to limits;
    ``max_increase`` maps metric names to tolerated worsening against the baseline."""

    max_values: Mapping[str, float] = field(default_factory=dict)
    min_values: Mapping[str, float] = field(default_factory=dict)
    max_increase: Mapping[str, float] = field(default_factory=dict)
    n_bins: int = 15
    binning: Binning = "width"
    alpha: float = 0.05
    bootstrap: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        metric_table.resolve([*self.max_values, *self.min_values, *self.max_increase])
        known = {m.name: m for m in metric_table.gateable()}
        for param, limits in (
            (Param("max_values"), self.max_values),
            (Param("min_values"), self.min_values),
            (Param("max_increase"), self.max_increase),
        ):
            for metric, limit in limits.items():
                if metric not in known:
                    raise UsageError(
                        param + f": unknown metric {metric!r}; known: {', '.join(known)}"
                    )
                if not isinstance(limit, (int, float)) or not math.isfinite(limit):
                    raise UsageError(
                        param.entry(metric) + f": limit must be a finite number; got {limit!r}"
                    )
                record = known[metric]
                if param.name != "max_increase" and not param.name.startswith(record.limit):
                    # an upper limit on accuracy (or a lower one on ECE) would pass a worse model
                    better = "higher" if record.higher_is_better else "lower"
                    right = Param("min_values" if record.limit == "min" else "max_values")
                    raise UsageError(
                        param.entry(metric)
                        + f": {better} is better for {record.label}, so its limit is a "
                        + f"{record.limit}imum ("
                        + right.entry(metric)
                        + ")"
                    )
        if not 0 < self.alpha < 0.5:
            raise UsageError(f"alpha must lie in (0, 0.5); got {self.alpha}")
        if self.bootstrap < 100:
            raise UsageError(f"bootstrap must be >= 100 replicates; got {self.bootstrap}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise UsageError(f"seed must be an integer >= 0; got {self.seed!r}")
        if self.binning not in BINNINGS:
            raise UsageError(f"binning must be width or mass; got {self.binning!r}")

    @property
    def empty(self) -> bool:
        return not (self.max_values or self.min_values or self.max_increase)


@dataclass(frozen=True, kw_only=True)
class Check:
    """One line of the verdict. ``value`` is the candidate's metric; for regression checks
    ``delta`` is the worsening and ``limit`` the tolerance."""

    name: str
    metric: str
    kind: Literal["max", "min", "regression"]
    value: float
    limit: float
    passed: bool
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    message: str = ""
    #: a check of one group (``--group-by``): its ``{column: value}``, label and rows
    group: Mapping[str, str] | None = None
    group_label: str | None = None
    n: int | None = None
    #: a group's check left out of the gate (fewer rows than asked for); it counts as passed
    skipped: bool = False
    #: a group's regression test: its own p-value (``p_value`` is then the corrected one)
    p_unadjusted: float | None = None

    @property
    def ran(self) -> bool:
        return not self.skipped

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        kind = d.pop("kind")
        if self.group is None:  # the pooled checks' keys, as before groups existed
            for key in ("group", "group_label", "n", "skipped", "p_unadjusted"):
                d.pop(key)
        else:
            d["group"] = dict(self.group)
        return {"kind": kind, **d}


@dataclass(frozen=True, kw_only=True)
class Verdict:
    passed: bool
    checks: tuple[Check, ...]
    notes: tuple[str, ...] = ()
    baseline: str | None = None
    paired: bool | None = None
    #: ``--group-by``: the grouping columns, and one record per group (see
    #: :class:`calibkit.gate.groups.GroupOutcome`)
    group_by: tuple[str, ...] = ()
    groups: tuple[Any, ...] = ()

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def skipped(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.skipped)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "passed": self.passed,
            "baseline": self.baseline,
            "paired": self.paired,
            "notes": list(self.notes),
            "checks": [c.to_dict() for c in self.checks],
        }
        if self.group_by:
            out["group_by"] = list(self.group_by)
            out["groups"] = [g.to_dict() for g in self.groups]
        return out


def matched_interval(reps: np.ndarray, alpha: float) -> tuple[float, float]:
    """The ``1 - 2*alpha`` interval whose lower end agrees exactly with the p-value test.

    With ``p = (1 + #{reps <= tol}) / (B + 1)``, ``p < alpha`` holds exactly when
    ``#{reps <= tol} <= k`` for ``k = ceil(alpha * (B + 1) - 1) - 1``, i.e. when ``tol`` lies below
    the ``(k+1)``-th smallest replicate. That order statistic is the lower end (the upper end is
    its mirror), so "significant" and "the interval lies above the tolerance" never disagree.
    ``-inf``/``inf`` when ``B`` is too small for ``alpha``.

    >>> matched_interval(np.arange(1.0, 100.0), 0.05)  # B = 99: k = 3
    (4.0, 96.0)
    """
    x = np.sort(np.asarray(reps, dtype=np.float64))
    k = math.ceil(alpha * (x.size + 1) - 1) - 1
    if k < 0:
        return -math.inf, math.inf
    return float(x[k]), float(x[x.size - 1 - k])


def absolute_checks(values: Mapping[str, float], config: GateConfig) -> list[Check]:
    """The ``max`` checks (``value <= limit`` passes), then the ``min`` ones (``>=``)."""
    out = []
    kinds: tuple[tuple[Literal["max", "min"], Mapping[str, float], str, str], ...] = (
        ("max", config.max_values, "<=", ">"),
        ("min", config.min_values, ">=", "<"),
    )
    for kind, limits, holds, fails in kinds:
        for metric, limit in limits.items():
            v = values[metric]
            ok = v <= limit if kind == "max" else v >= limit
            out.append(
                Check(
                    name=f"{kind}_{metric}",
                    metric=metric,
                    kind=kind,
                    value=v,
                    limit=limit,
                    passed=ok,
                    message=f"{_label(metric)} {v:.4f} {holds if ok else fails} limit {limit:g}",
                )
            )
    return out


Model = ExampleStats | ModelSums


def gate_sums(
    model: ExampleStats | ModelSums,
    config: GateConfig,
    *,
    stream: int = 0,
    replicates: int | None = None,
) -> ModelSums:
    """The bootstrap sums the gate uses for a model: ``config.bootstrap`` replicates (or
    ``replicates``; 0 for the point values only) of ``stream`` with ``config.seed``; sums
    already made are returned as they are."""
    if isinstance(model, ModelSums):
        return model
    return model_sums(
        model,
        n_bins=config.n_bins,
        binning=config.binning,
        replicates=config.bootstrap if replicates is None else replicates,
        seed=config.seed,
        stream=stream,
    )


def _bootstrapped(baseline: object) -> bool:
    return isinstance(baseline, (ExampleStats, ModelSums))


def regression_checks(
    candidate: Model,
    baseline: Model | Mapping[str, float],
    config: GateConfig,
    *,
    paired: bool = True,
) -> list[Check]:
    """Regression checks against a bootstrapped baseline (per-example statistics, or the
    :class:`~calibkit.stats.bootstrap.ModelSums` of a streamed pass) or point values."""
    if not config.max_increase:
        return []
    out = []
    if isinstance(baseline, (ExampleStats, ModelSums)):
        cand = gate_sums(candidate, config)
        boot = worsening_bootstrap(cand, gate_sums(baseline, config, stream=0 if paired else 1))
        values = cand.point()
        for metric, tol in config.max_increase.items():
            reps = boot.replicates[metric]
            out.append(
                bootstrapped_check(
                    metric,
                    tol,
                    value=values[metric],
                    delta=boot.point[metric],
                    reps=reps,
                    alpha=config.alpha,
                    level_alpha=config.alpha,
                    p_value=p_value(reps, tol),
                )
            )
        return out
    values = gate_sums(candidate, config, replicates=0).point()
    for metric, tol in config.max_increase.items():
        if metric not in baseline:
            raise InputError("baseline", f"has no value for {metric!r}")
        base = float(baseline[metric])
        delta = metric_table.get(metric).worsening(values[metric], base)
        ok = delta <= tol
        out.append(
            Check(
                name=f"regression_{metric}",
                metric=metric,
                kind="regression",
                value=values[metric],
                limit=tol,
                passed=ok,
                delta=delta,
                message=f"{_label(metric)} worsening {delta:+.4f} vs baseline {base:.4f} "
                f"({'<=' if ok else '>'} tolerance {tol:g}; point values, no significance test)",
            )
        )
    return out


def p_value(reps: np.ndarray, tol: float) -> float:
    """The one-sided bootstrap p-value of ``H0: worsening <= tol``, ``(1 + #{reps <= tol}) /
    (B + 1)``."""
    return (1 + int(np.count_nonzero(reps <= tol))) / (reps.size + 1)


def _level(level: float, fine: bool) -> str:
    """``90%``; with ``fine`` (a corrected level such as 99.82%) two decimals where needed."""
    if fine and abs(level * 100 - round(level * 100)) > 1e-9:
        return f"{level:.2%}"
    return f"{level:.0%}"


def bootstrapped_check(
    metric: str,
    tol: float,
    *,
    value: float,
    delta: float,
    reps: np.ndarray,
    alpha: float,
    level_alpha: float,
    p_value: float,
    raw_p: float | None = None,
    name: str | None = None,
    suffix: str = "",
    adjusted: str = "",
) -> Check:
    """One regression check of a bootstrapped worsening: it fails when ``delta > tol`` and
    ``p_value < alpha``; its interval is :func:`matched_interval` at ``level_alpha`` (``alpha``
    itself, or the per-test level of a correction for several tests, whose ``p_value`` is then
    the adjusted one and ``raw_p`` the test's own, named by ``adjusted``)."""
    lo, hi = matched_interval(reps, level_alpha)
    failed = delta > tol and p_value < alpha
    record = metric_table.get(metric)
    if delta > 0:
        change = f"{record.label} {record.worse_verb} by {delta:.4f} (worse)"
    elif delta < 0:
        change = f"{record.label} improved by {-delta:.4f}"
    else:
        change = f"{record.label} unchanged"
    shown_p = f"p = {p_value:.4f}" if raw_p is None else f"p = {raw_p:.4f}"
    level = _level(1 - 2 * level_alpha, raw_p is not None)
    msg = (
        f"{change}; {level} CI of the worsening {lo:+.4f} .. {hi:+.4f}; "
        f"{shown_p} for worsening <= {tol:g}"
    )
    if raw_p is not None:
        msg += f", {adjusted} {p_value:.4f}"
    if delta > tol and not failed:
        msg += ": above the tolerance but not significant"
        if raw_p is not None and raw_p < alpha:
            msg += f" after {adjusted.split()[0]}'s correction"
    return Check(
        name=name or f"regression_{metric}",
        metric=metric,
        kind="regression",
        value=value,
        limit=tol,
        passed=not failed,
        delta=delta,
        ci_low=lo,
        ci_high=hi,
        p_value=p_value,
        message=msg + suffix,
        p_unadjusted=raw_p,
    )


def run_gate(
    candidate: Model,
    config: GateConfig,
    *,
    baseline: Model | Mapping[str, float] | None = None,
    paired: bool = True,
    baseline_name: str | None = None,
    notes: tuple[str, ...] = (),
    source: str | None = None,
) -> Verdict:
    """All configured checks of ``candidate``; see the module docstring. ``source`` names the
    candidate's input in the error about a metric its rows cannot give (an
    :class:`~calibkit.errors.InputError` then, else a usage error)."""
    if config.empty:
        raise UsageError(
            "nothing to check: give a limit ("
            + Param("max_values")
            + ", "
            + Param("min_values")
            + ") or "
            + Param("max_increase")
        )
    if config.max_increase and baseline is None:
        raise UsageError(Param("max_increase") + " needs " + Param("baseline"))
    if isinstance(baseline, (ExampleStats, ModelSums)) and config.max_increase:
        # each model once, for the point values and the bootstrap
        candidate = gate_sums(candidate, config)
        baseline = gate_sums(baseline, config, stream=0 if paired else 1)
    values = gate_sums(candidate, config, replicates=0).point()
    wanted = {*config.max_values, *config.min_values, *config.max_increase}
    unknown = sorted(m for m in wanted if math.isnan(values[m]))
    if unknown:
        problem = (
            f"cannot check {unknown[0]}: it needs logits or probabilities, and the predictions "
            "hold only confidences and correctness"
        )
        raise UsageError(problem) if source is None else InputError(source, problem)
    checks = absolute_checks(values, config)
    notes = tuple(notes)
    if baseline is not None:
        regression = regression_checks(candidate, baseline, config, paired=paired)
        checks += regression
        dropped = _dropped(candidate, baseline, config, paired)
        if dropped:
            notes += (
                f"{dropped} of {config.bootstrap} bootstrap replicates dropped: a model's total "
                "weight in them was 0 (too few examples); the p-values use the others",
            )
    if baseline is not None and not _bootstrapped(baseline) and config.max_increase:
        notes += ("baseline is a JSON of point values: no significance test was possible",)
    return Verdict(
        passed=all(c.passed for c in checks),
        checks=tuple(checks),
        notes=notes,
        baseline=baseline_name,
        paired=paired if _bootstrapped(baseline) else None,
    )


def _dropped(candidate: Model, baseline: object, config: GateConfig, paired: bool) -> int:
    """Replicates a regression check left out (a model's total weight 0 in them)."""
    if not (config.max_increase and isinstance(baseline, (ExampleStats, ModelSums))):
        return 0
    cand = gate_sums(candidate, config)
    base = gate_sums(baseline, config, stream=0 if paired else 1)
    return int(np.count_nonzero(cand.empty | base.empty))
