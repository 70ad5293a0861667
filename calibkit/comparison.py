"""Models side by side: the headline metrics, and temperature scaling fitted on validation data.

This answers the question calibkit exists for (Müller, Kornblith & Hinton 2019): given a model
trained with hard labels, one trained with label smoothing and temperature scaling fitted on
validation data, which is calibrated best, at what cost in NLL and accuracy?

For every model, :func:`compare_models` reports N, accuracy, ECE, MCE, NLL and Brier on its
evaluation predictions; for every model with validation data it fits ``T`` there and reports the
same metrics of the evaluation predictions scaled by ``1/T``. Without validation data no
temperature-scaled numbers are invented, unless ``ts_on_test=True`` fits ``T`` on the evaluated
predictions themselves (an optimistic, in-sample number, flagged as such in every output).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from calibkit.calibrators.temperature import ScaledPredictions, TemperatureFit, fit_temperature
from calibkit.errors import Param, UsageError
from calibkit.metrics.binning import Binning
from calibkit.metrics.summary import CalibrationSummary, collect_example_stats, summarize
from calibkit.sources.checks import label_mismatches, same_examples
from calibkit.sources.digest import LabelDigest
from calibkit.sources.predictions import PredictionSource
from calibkit.stats.bootstrap import bootstrap_metrics

__all__ = ["Comparison", "ModelResult", "compare_models", "label_mismatches"]

#: Metrics shown for each model; "lower is better" for all but accuracy.
METRICS = ("accuracy", "ece", "mce", "nll", "brier")  # the columns; all bootstrappable
TS_METRICS = ("ece", "mce", "nll", "brier")


@dataclass(frozen=True, eq=False)
class ModelResult:
    """One model's row: its summary and, when fitted, the temperature-scaled summary."""

    name: str
    summary: CalibrationSummary
    temperature: float | None = None
    ts_fitted_on: Literal["val", "test"] | None = None
    ts_source: str | None = None
    ts_summary: CalibrationSummary | None = None
    ts_fit: TemperatureFit | None = None
    ci: dict[str, tuple[float, float]] | None = None
    ts_ci: dict[str, tuple[float, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        s = self.summary
        ts = self.ts_summary
        return {
            "name": self.name,
            "source": s.source,
            "n": s.n,
            "input": s.kind,
            "input_reason": s.input_reason,
            "zero_prob_rows": s.zero_prob_rows,
            "accuracy": s.accuracy,
            "ece": s.ece,
            "mce": s.mce,
            "nll": s.nll,
            "brier": s.brier,
            "temperature": self.temperature,
            "ts_fitted_on": self.ts_fitted_on,
            "ts_source": self.ts_source,
            "ts": {m: getattr(ts, m) for m in TS_METRICS} if ts is not None else None,
            "ci": {k: list(v) for k, v in self.ci.items()} if self.ci else None,
            "ts_ci": {k: list(v) for k, v in self.ts_ci.items()} if self.ts_ci else None,
        }


@dataclass(frozen=True, eq=False)
class Comparison:
    """The result of :func:`compare_models`."""

    models: tuple[ModelResult, ...]
    n_bins: int
    binning: Binning
    ts_on_test: bool = False
    warnings: tuple[str, ...] = field(default=())
    ci_level: float | None = None
    bootstrap: int | None = None
    seed: int | None = None

    def best(self, metric: str, *, ts: bool = False) -> str | None:
        """Name of the model with the best ``metric`` (highest accuracy, else lowest)."""
        values = {
            m.name: getattr(m.ts_summary if ts else m.summary, metric)
            for m in self.models
            if (m.ts_summary if ts else m.summary) is not None
        }
        if not values:
            return None
        pick = max if metric == "accuracy" else min
        return pick(values, key=values.__getitem__)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_bins": self.n_bins,
            "binning": self.binning,
            "ts_on_test": self.ts_on_test,
            "ci_level": self.ci_level,
            "bootstrap": self.bootstrap,
            "seed": self.seed,
            "warnings": list(self.warnings),
            "models": [m.to_dict() for m in self.models],
        }

    def to_frame(self) -> Any:
        """One row per model (pandas DataFrame); ``ts_*`` columns are NaN without TS; with
        intervals, ``<metric>_ci_low``/``_ci_high`` (and ``ts_`` ones) columns follow."""
        import pandas as pd

        rows = []
        for m in self.models:
            d = m.to_dict()
            ts = d.pop("ts") or {}
            intervals = {}
            for prefix, table in (("", d.pop("ci")), ("ts_", d.pop("ts_ci"))):
                for k, (lo, hi) in (table or {}).items():
                    intervals[f"{prefix}{k}_ci_low"] = lo
                    intervals[f"{prefix}{k}_ci_high"] = hi
            rows.append({**d, **{f"ts_{k}": ts.get(k, np.nan) for k in TS_METRICS}, **intervals})
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
) -> Comparison:
    """Compare models; fit temperature scaling on ``val[name]`` where given (see module doc).

    With ``ci`` (e.g. 0.95), every value gets a percentile bootstrap interval (``bootstrap``
    replicates of the per-example statistics, ``seed``); ``ModelResult.ci`` / ``ts_ci``.
    """
    if ci is not None and not 0 < ci < 1:
        raise UsageError(Param("ci") + f" must lie in (0, 1); got {ci}")

    def intervals(src: PredictionSource) -> dict[str, tuple[float, float]] | None:
        if ci is None:
            return None
        stats = collect_example_stats(src, chunk_rows=chunk_rows, warn=False)  # summarized too
        boot = bootstrap_metrics(
            stats, n_bins=n_bins, binning=binning, replicates=bootstrap, seed=seed
        )
        return {m: boot.interval(m, ci) for m in METRICS if not np.isnan(boot.point[m])}

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
            results.append(ModelResult(name, summary, ci=intervals(source)))
            continue
        scaler = fit_temperature(fit_on, chunk_rows=chunk_rows)
        scaled = ScaledPredictions(source, scaler.beta)
        ts_summary = summarize(scaled, **kw)
        results.append(
            ModelResult(
                name,
                summary,
                scaler.temperature,
                where,
                fit_on.source,
                ts_summary,
                scaler.fit,
                intervals(source),
                intervals(scaled),
            )
        )
    warnings: list[str] = []
    digested = list(models.values())
    if check_labels and not all(same_examples(digested[0], other) for other in digested[1:]):
        warnings = label_mismatches(given)  # read the labels again only to say what differs
    if ts_on_test and any(r.ts_fitted_on == "test" for r in results):
        warnings.append(
            "temperature fitted on the evaluated data itself (--ts-on-test): the TS columns "
            "are in-sample and optimistic"
        )
    return Comparison(
        tuple(results),
        n_bins,
        binning,
        ts_on_test,
        tuple(warnings),
        ci,
        bootstrap if ci is not None else None,
        seed if ci is not None else None,
    )
