"""Every estimator at once, with bootstrap intervals (``calibkit ece --all``).

Adds to the headline summary (JSON keys): ``ece_over``, ``ece_under`` (the over/under-confidence
split), ``ece_debiased`` (Kumar et al.'s debiased *squared* L2 calibration error) and
``rmsce_debiased`` (its square root, floored at 0), ``smece`` and ``smece_bandwidth`` (smooth
ECE), ``classwise_ece`` with ``worst_classes``, ``top_k_accuracy``, ``brier_reliability``,
``brier_resolution``, ``brier_uncertainty``, ``brier_within_bin_variance``,
``brier_within_bin_covariance`` (they add up to ``brier`` exactly: REL - RES + UNC + WBV - 2 WBC)
with ``brier_binning``, ``bin_sensitivity``, and ``ci``: ``{metric: [low, high]}``, the
percentile bootstrap interval (``ci_level``, ``bootstrap`` replicates, ``seed``; the streamed
Poisson bootstrap of :mod:`calibkit.stats.bootstrap`) of every metric that reweighting
per-example statistics can recompute: accuracy, ECE, MCE, RMSCE, NLL, Brier,
the over/under split and the debiased error. A metric registered in
:mod:`calibkit.metrics.table` with ``from_sums`` (and not a headline one) gets its point value
here, from the sums the bootstrap resamples (weights all 1), under its name, and its interval in
``ci``. ``median_logit_gap``, ``implied_ls_alpha``, ``implied_ls_correct`` and
``implied_ls_reason``: the label smoothing the logits imply (no interval;
:mod:`calibkit.metrics.implied`). Definitions: :mod:`calibkit.metrics.estimators`,
:mod:`calibkit.metrics.classwise`, :mod:`calibkit.stats.bootstrap`.
"""

from __future__ import annotations

import math
from typing import Any

from calibkit.errors import Param, UsageError
from calibkit.metrics import table as metric_table
from calibkit.metrics.binning import Binning
from calibkit.metrics.classwise import class_statistics
from calibkit.metrics.estimators import (
    bin_sensitivity,
    debiased_squared_ce,
    over_under_confidence,
    smooth_ece,
)
from calibkit.metrics.examples import BinaryMode
from calibkit.metrics.implied import implied_smoothing
from calibkit.metrics.summary import CalibrationSummary, collect_example_stats
from calibkit.sources.predictions import PredictionSource
from calibkit.stats.bootstrap import bootstrap_metrics

__all__ = ["extended_metrics"]


def extended_metrics(
    source: PredictionSource,
    summary: CalibrationSummary,
    *,
    ci: float = 0.95,
    bootstrap: int = 1000,
    seed: int = 0,
    binary_mode: BinaryMode = "top-label",
    chunk_rows: int | None = None,
) -> dict[str, Any]:
    """The extra estimators of ``source`` (whose headline ``summary`` is given)."""
    if not 0 < ci < 1:
        raise UsageError(Param("ci") + f" must lie in (0, 1); got {ci}")
    if bootstrap < 100:
        raise UsageError(Param("bootstrap") + f" must be >= 100 replicates; got {bootstrap}")
    n_bins, binning = summary.n_bins, summary.binning
    # the smooth ECE and the bin sensitivity need every row's confidence and outcome (O(N) on
    # the client); the bootstrap below does not
    stats = collect_example_stats(  # the summary has warned about zero probabilities
        source, binary_mode=binary_mode, chunk_rows=chunk_rows, warn=False
    )
    over, under = over_under_confidence(summary.bins)
    debiased = debiased_squared_ce(summary.bins)
    smooth = smooth_ece(stats.confidence, stats.outcome)
    out: dict[str, Any] = {
        "ece_over": over,
        "ece_under": under,
        "ece_debiased": debiased,
        "rmsce_debiased": math.sqrt(max(debiased, 0.0)),
        "smece": smooth.value,
        "smece_bandwidth": smooth.bandwidth,
        "bin_sensitivity": bin_sensitivity(stats.confidence, stats.outcome),
    }
    # class-wise parts: not on questions with different numbers of choices (class k is another
    # thing in each question; see refuse_ragged); the top-label parts below still apply
    if source.kind in ("logits", "probs") and not getattr(source, "ragged", False):
        top_k = tuple(k for k in (1, 5) if k == 1 or k < source.n_classes)  # top-K is always 1
        cls = class_statistics(source, n_bins=n_bins, top_k=top_k, chunk_rows=chunk_rows)
        b = cls.brier
        out.update(
            {
                "classwise_ece": cls.classwise_ece,
                "worst_classes": [{"class": k, "ece": v} for k, v in cls.worst_classes(10)],
                "top_k_accuracy": {str(k): v for k, v in cls.top_k.items()},
                "brier_reliability": b.reliability,
                "brier_resolution": b.resolution,
                "brier_uncertainty": b.uncertainty,
                "brier_within_bin_variance": b.within_bin_variance,
                "brier_within_bin_covariance": b.within_bin_covariance,
                "brier_binning": f"{b.n_bins} equal-width bins of each class probability",
            }
        )
    out.update(implied_smoothing(source, chunk_rows=chunk_rows).to_dict())
    boot = bootstrap_metrics(  # streamed over the source, in the summary's bins
        source,
        n_bins=n_bins,
        binning=_binning(binning),
        upper_edges=summary.bins.upper if binning == "mass" else None,
        replicates=bootstrap,
        seed=seed,
        binary_mode=binary_mode,
        chunk_rows=chunk_rows,
    )
    for metric in metric_table.bootstrapped():  # a registered metric: its value from the sums
        if not metric.summary and metric.name not in out:
            out[metric.name] = boot.point[metric.name]
    names = metric_table.names(metric_table.bootstrapped())
    out["ci"] = {m: list(boot.interval(m, ci)) for m in names if not math.isnan(boot.point[m])}
    out["ci_level"] = ci
    out["bootstrap"] = bootstrap
    out["seed"] = seed
    return out


def _binning(binning: str) -> Binning:
    return "mass" if binning == "mass" else "width"
