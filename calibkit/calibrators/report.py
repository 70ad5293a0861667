"""Before/after numbers of a fitted temperature, as one JSON-ready dict.

Schema (``calibkit fit-temp --json``): ``temperature``, ``converged``, ``passes``,
``gradient`` (dNLL/d(1/T) at the fit), ``clamped`` (``null``, ``"t_min"`` or ``"t_max"``),
``message``, ``fitted_on``, ``zero_probs`` (probability inputs: stored probabilities exactly 0,
whose log the fit reads as the dtype's smallest positive number), ``n_bins``, ``binning``, then
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
"""

from __future__ import annotations

import math
from typing import Any

from calibkit._version import __version__
from calibkit.calibrators.grid import GridTemperatureScaler
from calibkit.calibrators.temperature import ScaledPredictions, TemperatureScaler
from calibkit.metrics.binning import Binning
from calibkit.metrics.summary import summarize
from calibkit.predictions import PredictionSource

__all__ = ["before_after", "scaling_report"]

METRICS = ("nll", "ece", "mce", "brier")


def before_after(
    scaler: TemperatureScaler,
    source: PredictionSource,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    chunk_rows: int | None = None,
) -> dict[str, Any]:
    """Metrics of ``source`` at ``T = 1`` and at the scaler's ``T`` (two passes)."""
    before = summarize(source, n_bins=n_bins, binning=binning, chunk_rows=chunk_rows)
    after = summarize(
        ScaledPredictions(source, scaler.beta),
        n_bins=n_bins,
        binning=binning,
        chunk_rows=chunk_rows,
    )
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


def scaling_report(
    scaler: TemperatureScaler,
    val: PredictionSource,
    eval_source: PredictionSource | None = None,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    chunk_rows: int | None = None,
) -> dict[str, Any]:
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
        "n_bins": n_bins,
        "binning": binning,
        "calibkit_version": __version__,
    }
    kw: dict[str, Any] = {"n_bins": n_bins, "binning": binning, "chunk_rows": chunk_rows}
    report.update(before_after(scaler, val, **kw))
    report["eval"] = before_after(scaler, eval_source, **kw) if eval_source else None
    return report
