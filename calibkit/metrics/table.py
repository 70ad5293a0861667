"""The metric table: one record per metric, read by everything that lists metrics.

A :class:`Metric` says what the rest of calibkit needs to know about a metric: its JSON key
(``name``), how it is printed (``label``, ``digits``, ``unit``), which way is better
(``direction``), whether the bootstrap can recompute it from per-example sums (``from_sums``) and
so whether the gate can check it, how its value is read from a
:class:`~calibkit.metrics.summary.CalibrationSummary` (``from_summary``, by default the summary's
field of its name; :meth:`Metric.summary_value`), the config key of its absolute limit
(``limit_key``; only a built-in metric also has a ``--max-*`` / ``--min-*`` flag of its own,
:attr:`Metric.flag`), and where it is shown: the headline summary (``summary``), the
``compare`` columns (``compare``; ``argmax_only`` metrics get no temperature-scaled column), the
before/after keys of ``fit-temp`` (``fit_rank``) and the ``ece --all`` table (``extended``).

The readers: :mod:`calibkit.stats.bootstrap` (the bootstrapped metrics and their worsening),
:mod:`calibkit.gate.checks` (labels, directions, known metrics), :mod:`calibkit.gate.config`
(the limit keys), ``calibkit check`` (``--max NAME=LIMIT`` / ``--min NAME=LIMIT``),
:mod:`calibkit.comparison` (columns and :meth:`~calibkit.comparison.Comparison.best`),
:mod:`calibkit.calibrators.report` (before/after keys), :mod:`calibkit.report.compare_report`
(headers) and :mod:`calibkit.report.tables` (the ``--all`` rows).

Adding a metric is one module (the estimator) and one :func:`register` call. Where it goes:
inside calibkit, the metric's record is one more ``Metric(...)`` in ``_BUILTIN`` at the end of
this module (its ``from_sums`` a function here, importing numpy when it runs; table order is
the ``ci`` key order); outside calibkit, ``register(Metric(...))`` in a plugin module
(:mod:`calibkit.plugins`), which :func:`get` and :func:`resolve` import when a name is not in
the table (``check --max NAME=`` and the ``[tool.calibkit.check]`` keys go through
:func:`resolve`). A metric with
``from_sums`` is bootstrapped, appears in ``ece --all``'s ``ci``, and can be gated: by
``--max NAME=LIMIT`` (``--min`` for a higher-is-better one), by ``--max-increase NAME=TOL``, and,
when it has a ``limit_key``, by that key in ``[tool.calibkit.check]``. The outputs with a fixed
schema (``ece --json`` headline keys, ``compare``, ``fit-temp``) list the metrics marked for them,
read when they run; a metric marked for one of them that is not a field of ``CalibrationSummary``
needs ``from_summary`` (the record refuses it otherwise). A metric with ``from_sums`` gets its
point value in ``ece --all`` from the same sums the bootstrap uses.

This module imports no numpy at import time; the built-in ``from_sums`` functions import it when
they run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from calibkit.metrics.summary import CalibrationSummary

__all__ = [
    "BUILTIN",
    "ExtendedRow",
    "Metric",
    "ResampledSums",
    "bootstrapped",
    "extended_rows",
    "fit_report_metrics",
    "gateable",
    "get",
    "labels",
    "limit_keys",
    "metrics",
    "names",
    "register",
    "resolve",
    "unregister",
]

Direction = Literal["higher", "lower"]


class ResampledSums(Protocol):
    """Sums over examples of one or more bootstrap replicates (one row per replicate), with
    ``M`` bins of the original sample: what a ``from_sums`` function computes a metric from.

    ``count``, ``confidence``, ``outcome``: shape ``(R, M)``, the (weighted) number of examples,
    summed confidence and summed outcome per bin; ``signed`` is ``confidence - outcome`` and
    ``gap`` its absolute value. ``total``, ``correct``, ``nll``, ``brier``: shape ``(R,)``, the
    number of examples and the summed correctness, NLL and Brier score.
    """

    @property
    def count(self) -> NDArray[np.float64]: ...
    @property
    def confidence(self) -> NDArray[np.float64]: ...
    @property
    def outcome(self) -> NDArray[np.float64]: ...
    @property
    def signed(self) -> NDArray[np.float64]: ...
    @property
    def gap(self) -> NDArray[np.float64]: ...
    @property
    def total(self) -> NDArray[np.float64]: ...
    @property
    def correct(self) -> NDArray[np.float64]: ...
    @property
    def nll(self) -> NDArray[np.float64]: ...
    @property
    def brier(self) -> NDArray[np.float64]: ...


FromSums = Callable[[ResampledSums], "NDArray[np.float64]"]
FromSummary = Callable[["CalibrationSummary"], float]


@dataclass(frozen=True, kw_only=True)
class ExtendedRow:
    """A row of the ``calibkit ece --all`` table: ``label`` (indented for a part of the metric
    above it), ``what`` (the description column); rows are shown by increasing ``rank``."""

    label: str
    what: str
    rank: int


@dataclass(frozen=True, kw_only=True)
class Metric:
    """One metric. See the module docstring for what reads each field."""

    name: str  #: the JSON key
    label: str  #: as printed in gate messages and table headers ("ECE")
    direction: Direction = "lower"  #: which way is better
    unit: str = ""  #: e.g. "nats"; empty for unitless metrics
    digits: int = 4  #: decimals in tables and messages
    summary: bool = False  #: a headline key of ``ece --json`` (and of ``ece --all``'s table)
    from_sums: FromSums | None = None  #: its value from per-example sums: bootstrappable
    #: its value from a :class:`~calibkit.metrics.summary.CalibrationSummary` (default: the
    #: summary's field of its name); needed by a ``summary``, ``compare`` or ``fit_rank`` metric
    #: that is not a field of the summary
    from_summary: FromSummary | None = None
    gate: bool | None = None  #: can be gated (default: when bootstrappable; requires it)
    limit_key: str | None = None  #: config key / flag of its absolute limit ("max_ece")
    compare: bool = False  #: a column of ``calibkit compare``
    argmax_only: bool = False  #: depends on the scores only through their argmax (accuracy)
    fit_rank: int | None = None  #: position in fit-temp's ``<name>_before/_after`` keys
    extended: ExtendedRow | None = None  #: its row in the ``ece --all`` table

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"a metric name is a lower-case identifier; got {self.name!r}")
        if self.direction not in ("higher", "lower"):
            raise ValueError(f"direction must be 'higher' or 'lower'; got {self.direction!r}")
        if self.gate is None:
            object.__setattr__(self, "gate", self.from_sums is not None)
        if self.gate and self.from_sums is None:
            raise ValueError(f"{self.name}: a gated metric needs from_sums (the gate bootstraps)")
        if self.limit_key is not None and (
            not self.gate or self.limit_key != f"{self.limit}_{self.name}"
        ):
            raise ValueError(
                f"{self.name}: limit_key must be {self.limit}_{self.name!s} on a gated metric"
            )
        shown = [
            what
            for what, on in (
                ("summary", self.summary),
                ("compare", self.compare),
                ("fit_rank", self.fit_rank is not None),
            )
            if on
        ]
        if shown and self.from_summary is None and self.name not in _summary_fields():
            raise ValueError(
                f"{self.name}: a metric with {' and '.join(shown)} is read from a "
                f"CalibrationSummary, which has no field {self.name!r}: give it from_summary"
            )

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher"

    @property
    def bootstrap(self) -> bool:
        """Whether the bootstrap can recompute it (it has ``from_sums``)."""
        return self.from_sums is not None

    @property
    def limit(self) -> Literal["max", "min"]:
        """The kind of its absolute limit: ``min`` for higher-is-better metrics, else ``max``."""
        return "min" if self.higher_is_better else "max"

    @property
    def flag(self) -> str | None:
        """How ``calibkit check`` takes its absolute limit: the flag of its own for a built-in
        metric with a limit key (``--max-ece``, ``--min-accuracy``), else ``--max NAME``
        (``--min NAME`` when higher is better); ``None`` for a metric the gate cannot check.
        A registered metric has no flag of its own, even with a ``limit_key`` (that is a config
        key)."""
        if not self.gate:
            return None
        if self.limit_key is not None and self.name in _BUILTIN_NAMES:
            return "--" + self.limit_key.replace("_", "-")
        return f"--{self.limit} {self.name}"

    def summary_value(self, summary: CalibrationSummary) -> float:
        """Its value in ``summary``: :attr:`from_summary`, else the summary's field of its name
        (what ``compare``, the headline JSON, the tables and fit-temp read)."""
        if self.from_summary is not None:
            return self.from_summary(summary)
        value: float = getattr(summary, self.name)
        return value

    @property
    def worse_verb(self) -> str:
        """How a worsening reads: ``fell`` (higher is better) or ``rose``."""
        return "fell" if self.higher_is_better else "rose"

    def worsening(self, candidate: Any, baseline: Any) -> Any:
        """``candidate - baseline`` (``baseline - candidate`` when higher is better): positive
        is always worse. Works on numbers and arrays alike."""
        return baseline - candidate if self.higher_is_better else candidate - baseline

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a > b if self.higher_is_better else a < b

    def format(self, value: float | None) -> str:
        """``value`` with :attr:`digits` decimals; ``-`` for a missing or NaN value."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return f"{value:.{self.digits}f}"


def _summary_fields() -> frozenset[str]:
    """The fields of :class:`~calibkit.metrics.summary.CalibrationSummary` (imported when a
    record is checked: ``calibkit.metrics`` has imported it by then)."""
    from dataclasses import fields

    from calibkit.metrics.summary import CalibrationSummary

    return frozenset(f.name for f in fields(CalibrationSummary))


_TABLE: dict[str, Metric] = {}


def register(metric: Metric, *, replace: bool = False) -> Metric:
    """Add ``metric`` to the table (after the ones there); refuse a name already taken unless
    ``replace`` (which keeps its place). Returns ``metric``."""
    if metric.name in _TABLE and not replace:
        raise ValueError(f"metric {metric.name!r} is already registered")
    _TABLE[metric.name] = metric
    return metric


def unregister(name: str) -> None:
    """Remove a metric (for tests and plugins that registered one)."""
    del _TABLE[name]


def get(name: str) -> Metric:
    """The record of ``name``; ``KeyError`` for an unknown one (after importing the plugins,
    see :mod:`calibkit.plugins`, in case one registers it)."""
    if name not in _TABLE:
        resolve([name])
    return _TABLE[name]


def resolve(names: Iterable[str]) -> bool:
    """Whether every one of ``names`` is in the table, after importing the plugins (once per
    process) when one is not: call it before reading a listing (:func:`gateable`, ...) for
    names that a user gave."""
    missing = [n for n in names if n not in _TABLE]
    if missing:
        from calibkit.plugins import load_plugins

        load_plugins()
    return all(n in _TABLE for n in missing)


def metrics(where: Callable[[Metric], bool] | None = None) -> tuple[Metric, ...]:
    """Every metric (those for which ``where`` holds), in registration order."""
    return tuple(m for m in _TABLE.values() if where is None or where(m))


def names(items: Iterable[Metric]) -> tuple[str, ...]:
    return tuple(m.name for m in items)


def bootstrapped() -> tuple[Metric, ...]:
    """The metrics the bootstrap recomputes, in registration order (the ``ci`` key order)."""
    return metrics(lambda m: m.bootstrap)


def gateable() -> tuple[Metric, ...]:
    """The metrics the gate can check, in registration order."""
    return metrics(lambda m: bool(m.gate))


def limit_keys() -> dict[str, Metric]:
    """Config key -> metric for every absolute limit with a key: upper limits first, then
    lower ones, each in registration order (``max_ece``, ..., ``min_accuracy``)."""
    keyed = metrics(lambda m: m.limit_key is not None)
    ordered = [m for m in keyed if m.limit == "max"] + [m for m in keyed if m.limit == "min"]
    return {str(m.limit_key): m for m in ordered}


def labels() -> dict[str, str]:
    """Name -> label of every metric."""
    return {m.name: m.label for m in _TABLE.values()}


def fit_report_metrics() -> tuple[Metric, ...]:
    """The metrics of fit-temp's before/after keys, by ``fit_rank``."""
    shown = metrics(lambda m: m.fit_rank is not None)
    return tuple(sorted(shown, key=lambda m: int(m.fit_rank or 0)))


def extended_rows() -> tuple[tuple[Metric, ExtendedRow], ...]:
    """The rows of the ``ece --all`` table, by rank."""
    rows = [(m, m.extended) for m in _TABLE.values() if m.extended is not None]
    return tuple(sorted(rows, key=lambda r: r[1].rank))


# --------------------------------------------------------------------------------------------
# the built-in metrics: their values from resampled sums (stats.bootstrap)


def _accuracy(s: ResampledSums) -> NDArray[np.float64]:
    return s.correct / s.total


def _ece(s: ResampledSums) -> NDArray[np.float64]:
    out: NDArray[np.float64] = s.gap.sum(axis=1) / s.total
    return out


def _mce(s: ResampledSums) -> NDArray[np.float64]:
    import numpy as np

    with np.errstate(invalid="ignore", divide="ignore"):
        per_bin = np.where(s.count > 0, s.gap / s.count, 0.0)
    out: NDArray[np.float64] = per_bin.max(axis=1)
    return out


def _rmsce(s: ResampledSums) -> NDArray[np.float64]:
    import numpy as np

    with np.errstate(invalid="ignore", divide="ignore"):
        sq = np.where(s.count > 0, s.gap * s.gap / s.count, 0.0)
    out: NDArray[np.float64] = np.sqrt(sq.sum(axis=1) / s.total)
    return out


def _nll(s: ResampledSums) -> NDArray[np.float64]:
    return s.nll / s.total


def _brier(s: ResampledSums) -> NDArray[np.float64]:
    return s.brier / s.total


def _ece_over(s: ResampledSums) -> NDArray[np.float64]:
    import numpy as np

    out: NDArray[np.float64] = np.clip(s.signed, 0, None).sum(axis=1) / s.total
    return out


def _ece_under(s: ResampledSums) -> NDArray[np.float64]:
    import numpy as np

    out: NDArray[np.float64] = np.clip(-s.signed, 0, None).sum(axis=1) / s.total
    return out


def _ece_debiased(s: ResampledSums) -> NDArray[np.float64]:
    """Kumar et al. (2019): per bin the plug-in squared gap less its sampling variance."""
    import numpy as np

    count, gap = s.count, s.gap
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(count > 0, s.outcome / count, 0.0)
        correction = np.where(count >= 2, acc * (1 - acc) / (count - 1), 0.0)
        plug_in = np.where(count >= 2, (gap / np.maximum(count, 1)) ** 2, 0.0)
    out: NDArray[np.float64] = (count * (plug_in - correction)).sum(axis=1) / s.total
    return out


def _row(label: str, what: str, rank: int) -> ExtendedRow:
    return ExtendedRow(label=label, what=what, rank=rank)


_BUILTIN = (
    Metric(
        name="accuracy", label="accuracy", direction="higher", summary=True, from_sums=_accuracy,
        limit_key="min_accuracy", compare=True, argmax_only=True,
        extended=_row("accuracy (top-1)", "", 170),
    ),
    Metric(
        name="ece", label="ECE", summary=True, from_sums=_ece, limit_key="max_ece", compare=True,
        fit_rank=2, extended=_row("ECE", "binned plug-in (Guo et al. 2017)", 10),
    ),
    Metric(
        name="mce", label="MCE", summary=True, from_sums=_mce, limit_key="max_mce", compare=True,
        fit_rank=3, extended=_row("MCE", "largest bin gap", 80),
    ),
    Metric(
        name="rmsce", label="RMSCE", summary=True, from_sums=_rmsce, limit_key="max_rmsce",
        extended=_row("RMSCE", "root-mean-square calibration error", 90),
    ),
    Metric(
        name="nll", label="NLL", unit="nats", summary=True, from_sums=_nll, limit_key="max_nll",
        compare=True, fit_rank=1, extended=_row("NLL", "natural log", 100),
    ),
    Metric(
        name="brier", label="Brier", summary=True, from_sums=_brier, limit_key="max_brier",
        compare=True, fit_rank=4,
        extended=_row("Brier", "= REL - RES + UNC + WBV - 2 WBC", 110),
    ),
    Metric(
        name="ece_over", label="ECE (over-confident part)", from_sums=_ece_over,
        extended=_row("  over-confident part", "from bins with confidence > accuracy", 20),
    ),
    Metric(
        name="ece_under", label="ECE (under-confident part)", from_sums=_ece_under,
        extended=_row("  under-confident part", "from bins with confidence < accuracy", 30),
    ),
    Metric(
        name="ece_debiased", label="debiased squared L2 CE", from_sums=_ece_debiased,
        extended=_row("debiased squared L2 CE", "Kumar et al. 2019 (can be < 0)", 40),
    ),
    # computed by calibkit.stats.extended only (no bootstrap, no gate)
    Metric(
        name="rmsce_debiased", label="debiased RMSCE",
        extended=_row("debiased RMSCE", "sqrt(max(0, debiased squared CE))", 50),
    ),
    Metric(
        name="smece", label="smooth ECE",
        extended=_row("smooth ECE", "Blasiok & Nakkiran 2023, binning-free", 60),
    ),
    Metric(
        name="classwise_ece", label="class-wise ECE",
        extended=_row("class-wise ECE", "Kull et al. 2019: mean of per-class ECE", 70),
    ),
    Metric(
        name="brier_reliability", label="Brier reliability (REL)",
        extended=_row("  reliability (REL)", "calibration part of Brier", 120),
    ),
    Metric(
        name="brier_resolution", label="Brier resolution (RES)",
        extended=_row("  resolution (RES)", "how much forecasts separate outcomes", 130),
    ),
    Metric(
        name="brier_uncertainty", label="Brier uncertainty (UNC)",
        extended=_row("  uncertainty (UNC)", "variance of the outcomes", 140),
    ),
    Metric(
        name="brier_within_bin_variance", label="Brier within-bin variance (WBV)",
        extended=_row("  within-bin variance (WBV)", "binning remainder", 150),
    ),
    Metric(
        name="brier_within_bin_covariance", label="Brier within-bin covariance (WBC)",
        extended=_row("  within-bin covariance (WBC)", "binning remainder", 160),
    ),
)  # fmt: skip

#: The names of the built-in metrics (those registered by this module), in table order.
BUILTIN = names(_BUILTIN)
_BUILTIN_NAMES = frozenset(BUILTIN)

for _metric in _BUILTIN:
    register(_metric)
del _metric
