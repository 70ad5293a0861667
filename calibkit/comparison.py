"""Models side by side: the headline metrics, and temperature scaling fitted on validation data.

This answers the question calibkit exists for (Müller, Kornblith & Hinton 2019): given a model
trained with hard labels, one trained with label smoothing and temperature scaling fitted on
validation data, which is calibrated best, at what cost in NLL and accuracy?

For every model, :func:`compare_models` reports N, accuracy, ECE, MCE, NLL and Brier on its
evaluation predictions; for every model with validation data it fits ``T`` there and reports the
same metrics of the evaluation predictions scaled by ``1/T``. Without validation data no
temperature-scaled numbers are invented, unless ``ts_on_test=True`` fits ``T`` on the evaluated
predictions themselves (an optimistic, in-sample number, flagged as such in every output).

The calibrator is any registered :class:`~calibkit.calibrators.base.Calibrator` (``method``,
default ``"temperature"``); it is fitted and applied only through that protocol, and the names of
its columns and JSON keys come from it (temperature scaling: ``TS``, ``T``, ``ts_*``). The
report's temperature sweeps are computed here too (:func:`with_sweeps`), so that
:mod:`calibkit.report.compare_report` only formats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from calibkit.calibrators import registry
from calibkit.calibrators.base import CalibratedPredictions, Calibrator
from calibkit.calibrators.sweep import TemperatureSweep, sweep_temperatures
from calibkit.errors import Message, Param, UsageError, render
from calibkit.metrics import table as metric_table
from calibkit.metrics.binning import Binning
from calibkit.metrics.summary import CalibrationSummary, collect_example_stats, summarize
from calibkit.sources.checks import label_mismatches, same_examples
from calibkit.sources.digest import LabelDigest
from calibkit.sources.predictions import PredictionSource
from calibkit.stats.bootstrap import bootstrap_metrics

__all__ = [
    "MODEL_FACTS",
    "Comparison",
    "ModelResult",
    "calibrated_metrics",
    "compare_models",
    "compared_metrics",
    "label_mismatches",
    "model_keys",
    "report_sweep_grid",
    "with_sweeps",
]

#: The built-in metrics shown for each model (the table's ``compare`` metrics at import; the
#: functions here read the table when they run, so a metric registered later is shown too).
METRICS = metric_table.names(metric_table.metrics(lambda m: m.compare))
#: Those a calibrator can change (not ``argmax_only``): the built-in temperature-scaled columns.
TS_METRICS = metric_table.names(metric_table.metrics(lambda m: m.compare and not m.argmax_only))


def compared_metrics() -> tuple[str, ...]:
    """The metrics shown for each model: the table's ``compare`` metrics now, in its order."""
    return metric_table.names(metric_table.metrics(lambda m: m.compare))


def calibrated_metrics(method: type[Calibrator] | Calibrator) -> tuple[str, ...]:
    """The metrics shown after calibration: the ``compare`` metrics a calibrator can change,
    after the ``argmax_only`` ones (accuracy) when the calibrator can change the argmax."""
    shown = metric_table.metrics(lambda m: m.compare)
    first = metric_table.names(m for m in shown if m.argmax_only)
    rest = metric_table.names(m for m in shown if not m.argmax_only)
    return (first if method.changes_argmax else ()) + rest


#: The facts of a model that head its object in ``compare --json``, before its metrics.
MODEL_FACTS = ("name", "source", "n", "input", "input_reason", "zero_prob_rows")


def model_keys(method: type[Calibrator] | Calibrator) -> tuple[str, ...]:
    """The keys of a model's object in ``compare --json`` with the calibrator ``method``:
    :data:`MODEL_FACTS`, the compared metrics, the calibrator's parameters, then the keys named
    after its abbreviation (``ts_fitted_on``, ``ts_source``, ``ts``), ``ci`` and ``ts_ci``.

    A calibrator whose parameter names or abbreviation give a key twice would overwrite a value
    of the model: it is refused with a :class:`~calibkit.errors.UsageError`.
    """
    key = method.abbreviation.lower()
    named = [
        *((k, "a fact of the model") for k in MODEL_FACTS),
        *((k, "a metric") for k in compared_metrics()),
        *((k, "a parameter of the calibrator") for k in method.symbols),
        *(
            (k, f"a key from the abbreviation {method.abbreviation!r}")
            for k in (f"{key}_fitted_on", f"{key}_source", key)
        ),
        ("ci", "the intervals"),
        (f"{key}_ci", f"a key from the abbreviation {method.abbreviation!r}"),
    ]
    seen: dict[str, str] = {}
    for k, what in named:
        if k in seen:
            raise UsageError(
                f"calibration method {method.method!r} cannot be compared: {k!r} would be both "
                f"{seen[k]} and {what} in a model's JSON; rename the parameter or change the "
                "abbreviation"
            )
        seen[k] = what
    return tuple(seen)


def _value(summary: Any, metric: str) -> float:
    """``metric``'s value in ``summary`` (:meth:`~calibkit.metrics.table.Metric.summary_value`)."""
    return metric_table.get(metric).summary_value(summary)


@dataclass(kw_only=True, frozen=True, eq=False)
class ModelResult:
    """One model's row: its summary and, when a calibrator was fitted, the calibrated summary.

    ``calibrator`` was fitted on ``fitted_where`` data (``"val"`` or, in-sample, ``"test"``),
    the source ``fit_source``; ``calibrated`` (and ``calibrated_ci``) are the metrics of the
    evaluated predictions after it. ``method`` names the registered calibration method (the
    JSON's keys come from it). ``temperature`` and the ``ts_*`` attributes are the names these
    had when temperature scaling was the only method.
    """

    name: str
    summary: CalibrationSummary
    calibrator: Calibrator | None = None
    fitted_where: Literal["val", "test"] | None = None
    fit_source: str | None = None
    calibrated: CalibrationSummary | None = None
    ci: dict[str, tuple[float, float]] | None = None
    calibrated_ci: dict[str, tuple[float, float]] | None = None
    method: str = "temperature"

    @property
    def parameters(self) -> dict[str, float]:
        """The fitted calibrator's parameters (empty without one)."""
        return self.calibrator.parameters() if self.calibrator is not None else {}

    @property
    def temperature(self) -> float | None:
        return self.parameters.get("temperature")

    @property
    def ts_fitted_on(self) -> Literal["val", "test"] | None:
        return self.fitted_where

    @property
    def ts_source(self) -> str | None:
        return self.fit_source

    @property
    def ts_summary(self) -> CalibrationSummary | None:
        return self.calibrated

    @property
    def ts_fit(self) -> Any:
        """The calibrator's record of its fit (temperature scaling: a ``TemperatureFit``)."""
        return getattr(self.calibrator, "fit", None)

    @property
    def ts_ci(self) -> dict[str, tuple[float, float]] | None:
        return self.calibrated_ci

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the calibrator's keys are named after it (temperature scaling:
        ``temperature``, ``ts_fitted_on``, ``ts_source``, ``ts``, ``ts_ci``)."""
        cls = registry.get(self.method)
        model_keys(cls)  # refuses a parameter or abbreviation that would overwrite a key
        key = cls.abbreviation.lower()
        s = self.summary
        cal = self.calibrated
        params = self.parameters
        out: dict[str, Any] = {
            "name": self.name,
            "source": s.source,
            "n": s.n,
            "input": s.kind,
            "input_reason": s.input_reason,
            "zero_prob_rows": s.zero_prob_rows,
        }
        out.update({m: _value(s, m) for m in compared_metrics()})
        out.update({p: params.get(p) for p in cls.symbols})
        out[f"{key}_fitted_on"] = self.fitted_where
        out[f"{key}_source"] = self.fit_source
        out[key] = {m: _value(cal, m) for m in calibrated_metrics(cls)} if cal else None
        out["ci"] = {k: list(v) for k, v in self.ci.items()} if self.ci else None
        out[f"{key}_ci"] = (
            {k: list(v) for k, v in self.calibrated_ci.items()} if self.calibrated_ci else None
        )
        return out


@dataclass(kw_only=True, frozen=True, eq=False)
class Comparison:
    """The result of :func:`compare_models` (``sweeps``: from :func:`with_sweeps`).

    ``warnings`` may name parameters (a :class:`~calibkit.errors.Message`): ``ts_on_test=True``
    in the library's words, its flag where :meth:`warning_texts`, :meth:`to_dict` or the report
    are given the CLI's ``flags``."""

    models: tuple[ModelResult, ...]
    n_bins: int
    binning: Binning
    ts_on_test: bool = False
    warnings: tuple[str | Message, ...] = field(default=())
    ci_level: float | None = None
    bootstrap: int | None = None
    seed: int | None = None
    method: str = "temperature"
    sweeps: tuple[TemperatureSweep, ...] | None = None

    def best(self, metric: str, *, ts: bool = False) -> str | None:
        """Name of the model with the best ``metric``: the highest or the lowest value, by the
        metric's direction (:mod:`calibkit.metrics.table`), the first such model on a tie; with
        ``ts``, after calibration."""
        values = {
            m.name: _value(m.calibrated if ts else m.summary, metric)
            for m in self.models
            if (m.calibrated if ts else m.summary) is not None
        }
        if not values:
            return None
        pick = max if metric_table.get(metric).higher_is_better else min
        return pick(values, key=values.__getitem__)

    def warning_texts(self, flags: Mapping[str, str] | None = None) -> tuple[str, ...]:
        """The warnings as text, each parameter shown as ``flags`` gives it (default: by its
        name, ``ts_on_test=True``)."""
        return tuple(render(w, flags or {}) for w in self.warnings)

    def to_dict(self, flags: Mapping[str, str] | None = None) -> dict[str, Any]:
        """JSON-ready; the warnings' parameters shown as ``flags`` gives them."""
        return {
            "n_bins": self.n_bins,
            "binning": self.binning,
            "ts_on_test": self.ts_on_test,
            "ci_level": self.ci_level,
            "bootstrap": self.bootstrap,
            "seed": self.seed,
            "warnings": list(self.warning_texts(flags)),
            "models": [m.to_dict() for m in self.models],
        }

    def to_frame(self) -> Any:
        """One row per model (pandas DataFrame); ``ts_*`` columns (the calibrator's prefix) are
        NaN without calibration; with intervals, ``<metric>_ci_low``/``_ci_high`` (and ``ts_``
        ones) columns follow."""
        import pandas as pd

        cls = registry.get(self.method)
        key = cls.abbreviation.lower()
        rows = []
        for m in self.models:
            d = m.to_dict()
            cal = d.pop(key) or {}
            intervals = {}
            for prefix, table in (("", d.pop("ci")), (f"{key}_", d.pop(f"{key}_ci"))):
                for k, (lo, hi) in (table or {}).items():
                    intervals[f"{prefix}{k}_ci_low"] = lo
                    intervals[f"{prefix}{k}_ci_high"] = hi
            calibrated = {f"{key}_{k}": cal.get(k, np.nan) for k in calibrated_metrics(cls)}
            rows.append({**d, **calibrated, **intervals})
        return pd.DataFrame(rows).set_index("name")


def compare_models(
    models: Mapping[str, PredictionSource],
    *,
    val: Mapping[str, PredictionSource] | None = None,
    n_bins: int = 15,
    binning: Binning = "width",
    ts_on_test: bool = False,
    check_labels: bool = True,
    chunk_rows: int | None = None,
    ci: float | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    method: str = "temperature",
) -> Comparison:
    """Compare models; fit the calibrator ``method`` (a registered name, by default temperature
    scaling) on ``val[name]`` where given (see module doc).

    With ``ci`` (e.g. 0.95), every value gets a percentile bootstrap interval (``bootstrap``
    replicates of the per-example statistics, ``seed``); ``ModelResult.ci`` / ``calibrated_ci``.
    """
    if ci is not None and not 0 < ci < 1:
        raise UsageError(Param("ci") + f" must lie in (0, 1); got {ci}")
    cls = registry.get(method)
    model_keys(cls)  # before any work: its parameters and abbreviation name no model key twice

    def intervals(src: PredictionSource) -> dict[str, tuple[float, float]] | None:
        if ci is None:
            return None
        stats = collect_example_stats(src, chunk_rows=chunk_rows, warn=False)  # summarized too
        boot = bootstrap_metrics(
            stats, n_bins=n_bins, binning=binning, replicates=bootstrap, seed=seed
        )
        return {
            m: boot.interval(m, ci)
            for m in compared_metrics()
            if m in boot.point and not np.isnan(boot.point[m])
        }

    given = models
    if check_labels:  # hash the labels in passing: no second read to compare them
        models = {name: LabelDigest(src) for name, src in given.items()}
    val = val or {}
    results = []
    kw: dict[str, Any] = {"n_bins": n_bins, "binning": binning, "chunk_rows": chunk_rows}
    for name, source in models.items():
        summary = summarize(source, **kw)
        fit_on: PredictionSource | None = val.get(name)
        where: Literal["val", "test"] | None = "val" if fit_on is not None else None
        if fit_on is None and ts_on_test:
            fit_on, where = source, "test"
        if fit_on is None:
            plain = ModelResult(name=name, summary=summary, ci=intervals(source), method=method)
            results.append(plain)
            continue
        calibrator = cls.fit_source(fit_on, chunk_rows=chunk_rows)
        calibrated = CalibratedPredictions(source, calibrator)
        results.append(
            ModelResult(
                name=name,
                summary=summary,
                calibrator=calibrator,
                fitted_where=where,
                fit_source=fit_on.source,
                calibrated=summarize(calibrated, **kw),
                ci=intervals(source),
                calibrated_ci=intervals(calibrated),
                method=method,
            )
        )
    warnings: list[str | Message] = []
    digested = list(models.values())
    if check_labels and not all(same_examples(digested[0], other) for other in digested[1:]):
        warnings = [*label_mismatches(given)]  # read the labels again only to say what differs
    if ts_on_test and any(r.fitted_where == "test" for r in results):
        fitted = " and ".join(cls.symbols.keys())  # the parameters' names: "temperature"
        warnings.append(
            f"{fitted} fitted on the evaluated data itself ("
            + Param("ts_on_test", True)
            + f"): the {cls.abbreviation} columns are in-sample and optimistic"
        )
    return Comparison(
        models=tuple(results),
        n_bins=n_bins,
        binning=binning,
        ts_on_test=ts_on_test,
        warnings=tuple(warnings),
        ci_level=ci,
        bootstrap=bootstrap if ci is not None else None,
        seed=seed if ci is not None else None,
        method=method,
    )


def report_sweep_grid() -> NDArray[np.float64]:
    """The temperatures of a report's sweep: 81 points, ``2^(1/20)`` apart from 1/4 to 4 (evenly
    spaced on the figure's log T axis, T = 1 among them)."""
    grid: NDArray[np.float64] = 2.0 ** np.linspace(-2.0, 2.0, 81)
    return grid


def with_sweeps(
    comp: Comparison,
    models: Mapping[str, PredictionSource],
    grid: Sequence[float] | NDArray[np.float64] | None = None,
) -> Comparison:
    """``comp`` with the temperature sweep of each model's evaluated predictions (ECE, NLL, ...
    against ``T`` on ``grid``, default :func:`report_sweep_grid`): one read of each model, for
    the report's ``sweep.png``."""
    temps = report_sweep_grid() if grid is None else grid
    sweeps = tuple(
        sweep_temperatures(
            models[m.name], temps, name=m.name, n_bins=comp.n_bins, binning=comp.binning
        )
        for m in comp.models
    )
    return replace(comp, sweeps=sweeps)
