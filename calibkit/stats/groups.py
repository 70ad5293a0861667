"""The metrics of every group of a source (``--group-by``): per group, micro and macro.

:func:`summarize_groups` computes, for each group of :func:`calibkit.sources.groups.group_rows`,
the :class:`~calibkit.metrics.summary.CalibrationSummary` of the group alone (its own bins:
:func:`~calibkit.metrics.summary.summarize` on the group's
:class:`~calibkit.sources.groups.RowSubset`, so equal-mass edges are the group's), with, when
``ci`` is given, the percentile intervals of the streamed Poisson bootstrap of
:mod:`calibkit.stats.bootstrap` within the group (the group is the data set: its rows are
numbered from 0 in their order in the source, as ``compare --ci`` does for a file). Then:

* **micro**: the summary of the whole source (every group pooled): what the command prints
  without ``--group-by``;
* **macro**: the unweighted mean over the groups of each headline metric (accuracy, ECE, MCE,
  RMSCE, NLL, Brier and any registered ``summary`` metric). A metric that is null (NaN) in any
  group, such as the NLL of confidence-only rows, has a null macro: a mean over some of the
  groups would not be the macro average. The macro has no interval (the groups' bootstraps
  are not drawn jointly).

Groups are ordered **worst first** by ``order_by`` (a headline metric): the largest value first
for a lower-is-better metric (ECE), the smallest first for a higher-is-better one (accuracy,
:mod:`calibkit.metrics.table`); a group whose value is null comes last; ties go to the larger
group, then to the smaller key (the sorted order of the values). A group with fewer than
``min_rows`` rows (:data:`~calibkit.sources.groups.MIN_GROUP_ROWS`, HELM's guideline for 10-bin
ECE) is kept and flagged ``small``.

Cost: one streamed pass per group (a :class:`~calibkit.sources.groups.RowSubset` reads the
source and keeps the group's rows) plus the pooled pass, and per group the bootstrap's passes
when ``ci`` is given. This module does no I/O of its own; it sits with the statistics (above
the metrics) because it bootstraps.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from calibkit.errors import Param, UsageError
from calibkit.metrics import table as metric_table
from calibkit.metrics.binning import Binning
from calibkit.metrics.examples import BinaryMode
from calibkit.metrics.summary import CalibrationSummary, summarize
from calibkit.sources.groups import MIN_GROUP_ROWS, Grouping, group_rows, subset
from calibkit.sources.predictions import PredictionSource

__all__ = [
    "GroupResult",
    "GroupedComparison",
    "GroupedSummary",
    "compare_groups",
    "headline_metrics",
    "macro_average",
    "summarize_groups",
    "worst_first",
]

Interval = tuple[float, float]


def headline_metrics() -> tuple[str, ...]:
    """The metrics reported per group: the table's ``summary`` metrics, in its order."""
    return metric_table.names(metric_table.metrics(lambda m: m.summary))


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def _ci_dict(ci: dict[str, Interval] | None) -> dict[str, list[float | None]] | None:
    if ci is None:
        return None
    return {k: [_num(lo), _num(hi)] for k, (lo, hi) in ci.items()}


@dataclass(frozen=True, eq=False)
class GroupResult:
    """One group: its values (``key``, one per column), its summary and its intervals."""

    columns: tuple[str, ...]
    key: tuple[str, ...]
    summary: CalibrationSummary
    small: bool
    ci: dict[str, Interval] | None = None

    @property
    def n(self) -> int:
        return self.summary.n

    @property
    def label(self) -> str:
        """``task=a, level=1``: how messages name the group."""
        return ", ".join(f"{c}={v}" for c, v in zip(self.columns, self.key, strict=True))

    def value(self, metric: str) -> float:
        return float(metric_table.get(metric).summary_value(self.summary))

    def metrics(self) -> dict[str, float | None]:
        return {m: _num(self.value(m)) for m in headline_metrics()}

    def to_dict(self) -> dict[str, Any]:
        s = self.summary
        return {
            "group": dict(zip(self.columns, self.key, strict=True)),
            "label": self.label,
            "n": s.n,
            "small": self.small,
            **self.metrics(),
            "mean_confidence": _num(s.mean_confidence),
            "saturated_fraction": _num(s.saturated_fraction),
            "zero_prob_rows": s.zero_prob_rows,
            "ci": _ci_dict(self.ci),
            "bins": s.bins.to_list(),
        }


@dataclass(frozen=True, eq=False)
class GroupedSummary:
    """The result of :func:`summarize_groups` (see the module docstring).

    ``groups`` are in report order (worst first by ``order_by``); ``micro`` is the pooled
    summary (``micro_ci`` its intervals), ``macro`` the mean over groups of each headline metric
    (``None`` where a group's value is null).
    """

    columns: tuple[str, ...]
    groups: tuple[GroupResult, ...]
    micro: CalibrationSummary
    macro: dict[str, float | None]
    order_by: str
    min_rows: int
    micro_ci: dict[str, Interval] | None = None
    ci_level: float | None = None
    bootstrap: int | None = None
    seed: int | None = None

    @property
    def small_groups(self) -> tuple[GroupResult, ...]:
        return tuple(g for g in self.groups if g.small)

    def micro_metrics(self) -> dict[str, float | None]:
        return {
            m.name: _num(m.summary_value(self.micro))
            for m in metric_table.metrics(lambda m: m.summary)
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (NaN as ``None``): ``columns``, ``order_by``, ``min_rows``, ``n_groups``,
        ``small_groups`` (their count), ``ci_level``/``bootstrap``/``seed`` (``None`` without
        intervals), ``groups`` (worst first: ``group`` as ``{column: value}``, ``label``, ``n``,
        ``small``, the headline metrics, ``mean_confidence``, ``saturated_fraction``,
        ``zero_prob_rows``, ``ci`` (``{metric: [low, high]}`` or ``None``) and the group's
        ``bins``), ``micro`` (``n``, the metrics, ``ci``) and ``macro`` (``n_groups``, the
        metrics)."""
        return {
            "columns": list(self.columns),
            "order_by": self.order_by,
            "min_rows": self.min_rows,
            "n_groups": len(self.groups),
            "small_groups": len(self.small_groups),
            "ci_level": self.ci_level,
            "bootstrap": self.bootstrap,
            "seed": self.seed,
            "groups": [g.to_dict() for g in self.groups],
            "micro": {"n": self.micro.n, **self.micro_metrics(), "ci": _ci_dict(self.micro_ci)},
            "macro": {"n_groups": len(self.groups), **self.macro},
        }


def macro_average(groups: Sequence[GroupResult]) -> dict[str, float | None]:
    """The unweighted mean over ``groups`` of each headline metric; ``None`` when any group's
    value is null (NaN) or there are no groups."""
    out: dict[str, float | None] = {}
    for name in headline_metrics():
        values = [g.value(name) for g in groups]
        if not values or any(math.isnan(v) or math.isinf(v) for v in values):
            out[name] = None
        else:
            out[name] = math.fsum(values) / len(values)
    return out


def worst_first(groups: Sequence[GroupResult], order_by: str) -> list[GroupResult]:
    """``groups`` worst first by ``order_by`` (see the module docstring)."""
    metric = metric_table.get(order_by)

    def key(g: GroupResult) -> tuple[int, float, int, tuple[str, ...]]:
        v = g.value(order_by)
        if math.isnan(v):
            return (1, 0.0, -g.n, g.key)
        return (0, v if metric.higher_is_better else -v, -g.n, g.key)

    return sorted(groups, key=key)


def check_order_by(order_by: str) -> str:
    known = headline_metrics()
    if order_by not in known:
        raise UsageError(
            f"order_by={order_by!r} is not a headline metric; known: {', '.join(known)}"
        )
    return order_by


def intervals(
    source: PredictionSource,
    summary: CalibrationSummary,
    *,
    ci: float,
    bootstrap: int,
    seed: int,
    binary_mode: BinaryMode,
    chunk_rows: int | None,
) -> dict[str, Interval]:
    """The ``ci`` percentile interval of each headline metric of ``source`` (the streamed
    Poisson bootstrap of :mod:`calibkit.stats.bootstrap`; the summary's equal-mass edges)."""
    from calibkit.metrics.summary import binary_mode_for
    from calibkit.stats.bootstrap import bootstrap_metrics

    boot = bootstrap_metrics(
        source,
        n_bins=summary.n_bins,
        binning=summary.binning,
        replicates=bootstrap,
        seed=seed,
        upper_edges=summary.bins.upper if summary.binning == "mass" else None,
        binary_mode=binary_mode_for(source, binary_mode),
        chunk_rows=chunk_rows,
    )
    return {
        m: boot.interval(m, ci)
        for m in headline_metrics()
        if m in boot.point and not math.isnan(boot.point[m])
    }


def summarize_groups(
    source: PredictionSource,
    columns: Sequence[str] | Grouping,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    binary_mode: BinaryMode = "top-label",
    chunk_rows: int | None = None,
    device: str | None = None,
    order_by: str = "ece",
    min_rows: int = MIN_GROUP_ROWS,
    ci: float | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    pooled: CalibrationSummary | None = None,
) -> GroupedSummary:
    """The summary of each group of ``source`` by ``columns`` (names, or a
    :class:`~calibkit.sources.groups.Grouping` already made), with micro and macro aggregates
    (module docstring). ``pooled``: the summary of the whole source when the caller has it
    (computed with the same options), saving a pass."""
    check_order_by(order_by)
    if ci is not None and not 0 < ci < 1:
        raise UsageError(Param("ci") + f" must lie in (0, 1); got {ci}")
    if ci is not None:
        from calibkit.stats.bootstrap import check_replicates

        check_replicates(bootstrap, seed, source.n_rows)
    grouping = columns if isinstance(columns, Grouping) else group_rows(source, columns)
    kw: dict[str, Any] = {
        "n_bins": n_bins,
        "binning": binning,
        "binary_mode": binary_mode,
        "chunk_rows": chunk_rows,
        "device": device,
    }
    micro = pooled if pooled is not None else summarize(source, **kw)

    def boot(src: PredictionSource, s: CalibrationSummary) -> dict[str, Interval] | None:
        if ci is None:
            return None
        return intervals(
            src,
            s,
            ci=ci,
            bootstrap=bootstrap,
            seed=seed,
            binary_mode=binary_mode,
            chunk_rows=chunk_rows,
        )

    results = []
    for g in range(grouping.n_groups):
        part = subset(source, grouping.rows(g))
        with warnings.catch_warnings():  # the pooled pass warns about every row once
            warnings.simplefilter("ignore")
            s = summarize(part, **kw)
        results.append(
            GroupResult(grouping.columns, grouping.keys[g], s, s.n < min_rows, boot(part, s))
        )
    return GroupedSummary(
        columns=grouping.columns,
        groups=tuple(worst_first(results, order_by)),
        micro=micro,
        macro=macro_average(results),
        order_by=order_by,
        min_rows=min_rows,
        micro_ci=boot(source, micro),
        ci_level=ci,
        bootstrap=bootstrap if ci is not None else None,
        seed=seed if ci is not None else None,
    )


@dataclass(frozen=True, eq=False)
class GroupedComparison:
    """Several models, each summarised per group (``compare --group-by``): ``per_model`` maps
    each model's name to its :class:`GroupedSummary`. :meth:`keys` is the union of the models'
    groups, worst first by the first model's ``order_by`` (groups the first model lacks last,
    by key)."""

    columns: tuple[str, ...]
    per_model: dict[str, GroupedSummary]
    order_by: str
    min_rows: int

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.per_model)

    def lookup(self, model: str) -> dict[tuple[str, ...], GroupResult]:
        return {g.key: g for g in self.per_model[model].groups}

    def keys(self) -> list[tuple[str, ...]]:
        first = self.per_model[self.models[0]]
        seen = [g.key for g in first.groups]
        rest = sorted({g.key for s in self.per_model.values() for g in s.groups} - set(seen))
        return seen + rest

    def rows(self) -> list[dict[str, Any]]:
        """One record per group (``kind`` ``"group"``), then ``"micro (pooled)"`` and ``"macro
        (mean of groups)"``: ``group`` (its values), ``n`` (the first model's, or ``a/b`` when
        the models' counts differ), ``small``, ``models`` (name to metrics, ``None`` where a
        model has no rows of the group)."""
        lookups = {m: self.lookup(m) for m in self.models}
        out: list[dict[str, Any]] = []
        for key in self.keys():
            found = {m: lookups[m].get(key) for m in self.models}
            counts = [g.n for g in found.values() if g is not None]
            out.append(
                {
                    "kind": "group",
                    "group": list(key),
                    "n": counts[0] if len(set(counts)) == 1 else "/".join(map(str, counts)),
                    "small": any(g.small for g in found.values() if g is not None),
                    "models": {m: g.metrics() if g else None for m, g in found.items()},
                    "ci": {m: g.ci if g else None for m, g in found.items()},
                }
            )
        micro_n = [s.micro.n for s in self.per_model.values()]
        out.append(
            {
                "kind": "micro (pooled)",
                "n": micro_n[0] if len(set(micro_n)) == 1 else "/".join(map(str, micro_n)),
                "models": {m: s.micro_metrics() for m, s in self.per_model.items()},
                "ci": {m: s.micro_ci for m, s in self.per_model.items()},
            }
        )
        n_groups = [len(s.groups) for s in self.per_model.values()]
        out.append(
            {
                "kind": "macro (mean of groups)",
                "n": "/".join(map(str, sorted(set(n_groups)))) + " groups",
                "models": {m: dict(s.macro) for m, s in self.per_model.items()},
                "ci": {m: None for m in self.models},
            }
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``columns``, ``models``, ``order_by``, ``min_rows``, ``groups`` (each:
        ``group`` as ``{column: value}``, ``label``, and ``models``: per model ``n``,
        ``small``, the headline metrics and ``ci``, or ``None`` where it has no rows of the
        group), ``micro`` and ``macro`` per model."""
        lookups = {m: self.lookup(m) for m in self.models}
        groups = []
        for key in self.keys():
            entry: dict[str, Any] = {
                "group": dict(zip(self.columns, key, strict=True)),
                "label": ", ".join(f"{c}={v}" for c, v in zip(self.columns, key, strict=True)),
                "models": {},
            }
            for m in self.models:
                g = lookups[m].get(key)
                entry["models"][m] = (
                    None
                    if g is None
                    else {"n": g.n, "small": g.small, **g.metrics(), "ci": _ci_dict(g.ci)}
                )
            groups.append(entry)
        full = {m: s.to_dict() for m, s in self.per_model.items()}
        return {
            "columns": list(self.columns),
            "models": list(self.models),
            "order_by": self.order_by,
            "min_rows": self.min_rows,
            "groups": groups,
            "micro": {m: d["micro"] for m, d in full.items()},
            "macro": {m: d["macro"] for m, d in full.items()},
        }


def compare_groups(
    models: dict[str, PredictionSource],
    columns: Sequence[str],
    **options: Any,
) -> GroupedComparison:
    """Each model of ``models`` summarised per group of its own ``columns``
    (:func:`summarize_groups` with ``options``)."""
    if not models:
        raise UsageError("compare needs at least one model")
    per_model = {name: summarize_groups(src, columns, **options) for name, src in models.items()}
    first = next(iter(per_model.values()))
    return GroupedComparison(first.columns, per_model, first.order_by, first.min_rows)
