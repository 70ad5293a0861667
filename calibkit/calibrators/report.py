"""Before/after numbers of a fitted calibrator (temperature scaling: ``fit-temp``), as one
JSON-ready dict.

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

Everything here goes through the :class:`~calibkit.calibrators.base.Calibrator` protocol: the
head of the report is the calibrator's :meth:`~calibkit.calibrators.base.Calibrator.fit_details`
(for temperature scaling the keys above, up to ``warm_start_evaluations``), and a calibrator that
can change the argmax (``changes_argmax``) also reports ``accuracy_after`` for each data set.

**Any method** (``calibkit fit --method NAME``, ``generic=True``): the report opens with
``method``, ``title``, ``output_kind`` (``"logits"`` or ``"probs"``), ``changes_argmax``,
``parameters`` (the display parameters) and ``symbols`` (how they are shown), then the method's
``fit_details`` (with ``fit``, the :class:`~calibkit.calibrators.outcome.FitOutcome` of a
method fitted by optimisation), ``options`` (the fit options given) and the keys above; every
data set has ``accuracy_after`` and ``accuracy_changed`` (whether the calibrated argmax gives
another accuracy: measured, whatever ``changes_argmax`` says) and ``classwise_ece_before`` /
``classwise_ece_after`` (Kull et al. 2019: the mean over classes of the ECE of ``p_k``,
``n_bins`` equal-width bins; one more pass each).
"""

from __future__ import annotations

from typing import Any

from calibkit._version import __version__
from calibkit.calibrators import registry
from calibkit.calibrators.base import Calibrator
from calibkit.metrics import table as metric_table
from calibkit.metrics.binning import Binning
from calibkit.metrics.summary import CalibrationSummary
from calibkit.sources.predictions import PredictionSource

__all__ = ["before_after", "fit_and_report", "scaling_report"]

#: The built-in metrics reported before and after the fit (the table's ``fit_rank`` order;
#: :func:`before_after` reads the table when it runs).
METRICS = metric_table.names(metric_table.fit_report_metrics())


def before_after(
    scaler: Calibrator,
    source: PredictionSource,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    chunk_rows: int | None = None,
    summaries: tuple[CalibrationSummary, CalibrationSummary] | None = None,
    device: str | None = None,
    generic: bool = False,
) -> dict[str, Any]:
    """Metrics of ``source`` as given and after calibration (:meth:`Calibrator.summaries`:
    for temperature scaling one pass), or no pass when ``summaries`` (before, after) are given
    (e.g. by :meth:`Calibrator.fit_with_summaries`). ``generic``: also ``accuracy_after``,
    ``accuracy_changed`` and the class-wise ECE before and after (two more passes)."""
    if summaries is None:
        summaries = scaler.summaries(
            source, n_bins=n_bins, binning=binning, chunk_rows=chunk_rows, device=device
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
    if scaler.changes_argmax or generic:
        out["accuracy_after"] = after.accuracy
    if generic:
        out["accuracy_changed"] = after.accuracy != before.accuracy
    for metric in metric_table.fit_report_metrics():  # read now: a registered one included
        out[f"{metric.name}_before"] = metric.summary_value(before)
        out[f"{metric.name}_after"] = metric.summary_value(after)
    if generic and not getattr(source, "ragged", False):  # class-wise: not on ragged K
        out["classwise_ece_before"], out["classwise_ece_after"] = classwise_before_after(
            scaler, source, n_bins=n_bins, chunk_rows=chunk_rows
        )
    return out


def classwise_before_after(
    scaler: Calibrator, source: PredictionSource, *, n_bins: int = 15, chunk_rows: int | None = None
) -> tuple[float, float]:
    """The class-wise ECE of ``source`` as given and after calibration (two passes)."""
    from calibkit.calibrators.base import CalibratedPredictions
    from calibkit.metrics.classwise import class_statistics

    kw: dict[str, Any] = {"n_bins": n_bins, "top_k": (1,), "chunk_rows": chunk_rows}
    before = class_statistics(source, **kw).classwise_ece
    after = class_statistics(CalibratedPredictions(source, scaler), **kw).classwise_ece
    return before, after


def fit_and_report(
    val: PredictionSource,
    eval_source: PredictionSource | None = None,
    *,
    method: str = "temperature",
    n_bins: int = 15,
    binning: Binning = "width",
    chunk_rows: int | None = None,
    device: str | None = None,
    generic: bool = False,
    **options: Any,
) -> tuple[Calibrator, dict[str, Any]]:
    """Fit ``method`` on ``val`` and report (:func:`scaling_report`), the validation metrics
    taken from the fit itself (:meth:`Calibrator.fit_with_summaries`: for temperature scaling
    its own passes). ``options`` go to the fit (temperature: ``t_min``, ``t_max``);
    ``generic``: the report of any method (module docstring), with ``options`` in it."""
    scaler, before, after = registry.get(method).fit_with_summaries(
        val, n_bins=n_bins, binning=binning, chunk_rows=chunk_rows, device=device, **options
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
        generic=generic,
        options=options,
    )
    return scaler, report


def scaling_report(
    scaler: Calibrator,
    val: PredictionSource,
    eval_source: PredictionSource | None = None,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    chunk_rows: int | None = None,
    val_summaries: tuple[CalibrationSummary, CalibrationSummary] | None = None,
    device: str | None = None,
    generic: bool = False,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report of a fitted calibrator on ``val`` (and ``eval_source``): its
    :meth:`Calibrator.fit_details`, the bins, then the per-data keys; ``val_summaries``
    (before, after) spare the pass over ``val`` that would compute them. ``generic``: the
    report of any method (module docstring), ``options`` the fit options given."""
    head: dict[str, Any] = {}
    if generic:
        head = {
            "method": scaler.method,
            "title": scaler.title,
            "output_kind": getattr(scaler, "output_kind", "logits"),
            "changes_argmax": scaler.changes_argmax,
            "parameters": scaler.parameters(),
            "symbols": dict(scaler.symbols),
        }
    report: dict[str, Any] = {
        **head,
        **scaler.fit_details(),
        "n_bins": n_bins,
        "binning": binning,
        "calibkit_version": __version__,
    }
    if generic:
        report["options"] = dict(options or {})
    kw: dict[str, Any] = {
        "n_bins": n_bins,
        "binning": binning,
        "chunk_rows": chunk_rows,
        "device": device,
        "generic": generic,
    }
    report.update(before_after(scaler, val, summaries=val_summaries, **kw))
    report["eval"] = before_after(scaler, eval_source, **kw) if eval_source else None
    return report
