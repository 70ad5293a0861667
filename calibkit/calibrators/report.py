"""Before/after numbers of a fitted temperature, as one JSON-ready dict.

Schema (``calibkit fit-temp --json``): ``temperature``, ``converged``, ``passes``,
``gradient`` (dNLL/d(1/T) at the fit), ``clamped`` (``null``, ``"t_min"`` or ``"t_max"``),
``message``, ``fitted_on``, ``zero_probs`` (probability inputs: stored probabilities exactly 0,
whose log the fit reads as the dtype's smallest positive number), ``warm_start_rows`` and
``warm_start_evaluations`` (the in-memory warm start: evaluations on rows kept by the first
pass; ``passes`` counts full reads of the data only), ``n_bins``, ``binning``, then
on the validation data ``source``, ``n`` (rows read), ``input`` and ``input_reason`` (how the
scores were read), ``zero_prob_rows`` (rows whose label has probability exactly 0),
``accuracy`` (unchanged by TS) and ``{nll,ece,mce,brier}_{before,after}`` (before: T = 1;
after: the fitted T); ``eval``: the same per-data keys on ``--eval`` data, or ``null``;
``objective`` (``"nll"`` or ``"ece"``: what ``T`` minimises on the validation data) and ``grid``:
``null`` for the exact NLL fit, else the grid search's ``spec`` (``START:STOP:STEP``),
``start``, ``stop``, ``step``, ``size``, the objective's ``n_bins`` and ``binning`` (ECE only),
its ``best`` value at ``T``, ``ties`` (grid points sharing that minimum; the first is kept) and
``values`` (the objective at every grid point). A grid fit has ``passes`` 1 and ``gradient``
``null``; ``clamped`` says the minimum is at an end of the grid.

:func:`fit_and_report` takes the validation metrics from the fit's own passes (its first pass
is at T = 1, its last at the reported T) and the ``--eval`` metrics from one more pass: with
``--eval``, one read of each file beyond the fit's.
"""

from __future__ import annotations

import math
from typing import Any

from calibkit._version import __version__
from calibkit.calibrators.grid import GridTemperatureScaler
from calibkit.calibrators.temperature import (
    DEFAULT_T_MAX,
    DEFAULT_T_MIN,
    TemperatureScaler,
    before_after_summaries,
    fit_temperature_with_metrics,
)
from calibkit.metrics import table as metric_table
from calibkit.metrics.binning import Binning
from calibkit.metrics.summary import CalibrationSummary
from calibkit.sources.predictions import PredictionSource

__all__ = ["before_after", "fit_and_report", "scaling_report"]

#: The metrics reported before and after the fit (the table's ``fit_rank`` order).
METRICS = metric_table.names(metric_table.fit_report_metrics())


def before_after(
    scaler: TemperatureScaler,
    source: PredictionSource,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    chunk_rows: int | None = None,
    summaries: tuple[CalibrationSummary, CalibrationSummary] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Metrics of ``source`` at ``T = 1`` and at the scaler's ``T``: one pass, or none when
    ``summaries`` (before, after) are given (e.g. by :func:`fit_temperature_with_metrics`)."""
    if summaries is None:
        summaries = before_after_summaries(
            source,
            scaler.temperature,
            n_bins=n_bins,
            binning=binning,
            chunk_rows=chunk_rows,
            device=device,
        )
    before, after = summaries
    out: dict[str, Any] = {
        "source": source.source,
        "n": before.n,
        "input": before.kind,
        "input_reason": before.input_reason,
        "zero_prob_rows": before.zero_prob_rows,
        "accuracy": before.accuracy,
    }
    for m in METRICS:
        out[f"{m}_before"] = getattr(before, m)
        out[f"{m}_after"] = getattr(after, m)
    return out


def fit_and_report(
    val: PredictionSource,
    eval_source: PredictionSource | None = None,
    *,
    t_min: float = DEFAULT_T_MIN,
    t_max: float = DEFAULT_T_MAX,
    n_bins: int = 15,
    binning: Binning = "width",
    chunk_rows: int | None = None,
    device: str | None = None,
) -> tuple[TemperatureScaler, dict[str, Any]]:
    """Fit ``T`` on ``val`` and report (:func:`scaling_report`), the validation metrics taken
    from the fit's own passes."""
    scaler, before, after = fit_temperature_with_metrics(
        val,
        n_bins=n_bins,
        binning=binning,
        t_min=t_min,
        t_max=t_max,
        chunk_rows=chunk_rows,
        device=device,
    )
    report = scaling_report(
        scaler,
        val,
        eval_source,
        n_bins=n_bins,
        binning=binning,
        chunk_rows=chunk_rows,
        val_summaries=(before, after),
        device=device,
    )
    return scaler, report


def scaling_report(
    scaler: TemperatureScaler,
    val: PredictionSource,
    eval_source: PredictionSource | None = None,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    chunk_rows: int | None = None,
    val_summaries: tuple[CalibrationSummary, CalibrationSummary] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """The report of a fitted scaler on ``val`` (and ``eval_source``); ``val_summaries``
    (before, after) spare the pass over ``val`` that would compute them."""
    fit = scaler.fit
    objective: str | None = "nll" if fit else None
    grid: dict[str, Any] | None = None
    if isinstance(scaler, GridTemperatureScaler):
        objective, grid = scaler.objective, scaler.grid_dict()
    g = fit.gradient if fit else None
    report: dict[str, Any] = {
        "temperature": scaler.temperature,
        "objective": objective,
        "grid": grid,
        "converged": fit.converged if fit else None,
        "passes": fit.passes if fit else None,
        "gradient": g if isinstance(g, float) and math.isfinite(g) else None,
        "clamped": fit.clamped if fit else None,
        "message": fit.message if fit else "",
        "fitted_on": scaler.fitted_on,
        "zero_probs": fit.zero_probs if fit else 0,
        "warm_start_rows": fit.warm_start_rows if fit else 0,
        "warm_start_evaluations": fit.warm_start_evaluations if fit else 0,
        "n_bins": n_bins,
        "binning": binning,
        "calibkit_version": __version__,
    }
    kw: dict[str, Any] = {
        "n_bins": n_bins,
        "binning": binning,
        "chunk_rows": chunk_rows,
        "device": device,
    }
    report.update(before_after(scaler, val, summaries=val_summaries, **kw))
    report["eval"] = before_after(scaler, eval_source, **kw) if eval_source else None
    return report
