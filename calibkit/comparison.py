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

**Several methods** (``methods=("temperature", "vector", ...)``, ``calibkit compare --method``):
the comparison is then *long*, one row per (model, method) after the uncalibrated row of each
model (:meth:`Comparison.rows`), with the class-wise ECE (Kull et al. 2019: the mean over classes
of the binned ECE of ``p_k``, ``n_bins`` equal-width bins, whatever ``binning`` is) beside the
headline metrics. Each (model, method) costs one fit (``cls.fit_source`` with the options given
for it, :func:`method_options`) and one pass over the evaluated data, which yields the summary and
the class-wise ECE together (:func:`summarize_with_classwise`); ``ci`` adds one pass per row, as
for the one-method comparison. A row whose accuracy differs from its model's uncalibrated
accuracy is flagged (``accuracy_changed``): a calibrator that changes predictions never wins a
comparison silently. A method that does not apply to a model (its fit or its application raises
a :class:`~calibkit.errors.UsageError` or :class:`~calibkit.errors.InputError`) stops the
comparison with one error naming the file and the method: nothing is skipped in silence.
"""

from __future__ import annotations

import math
import warnings as _warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from calibkit.calibrators import registry
from calibkit.calibrators.base import CalibratedPredictions, Calibrator
from calibkit.calibrators.sweep import TemperatureSweep, sweep_temperatures
from calibkit.engine.executors import is_distributed
from calibkit.engine.passes import Chunk, run_pass
from calibkit.errors import CalibkitError, InputError, Message, Param, UsageError, render
from calibkit.metrics import table as metric_table
from calibkit.metrics.binning import Binning, assign_width_bins, check_n_bins
from calibkit.metrics.examples import example_stats
from calibkit.metrics.implied import ImpliedSmoothing, correct_gaps, from_gaps, implied_smoothing
from calibkit.metrics.soft_labels import (
    SoftLabelAccumulator,
    SoftLabelMetrics,
    soft_label_metrics,
    soft_label_sums,
)
from calibkit.metrics.softmax import softmax
from calibkit.metrics.summary import (
    CalibrationSummary,
    MetricAccumulator,
    binary_mode_for,
    summarize,
    zero_prob_message,
)
from calibkit.sources.checks import label_mismatches, same_examples
from calibkit.sources.digest import LabelDigest
from calibkit.sources.predictions import PredictionSource, input_reason
from calibkit.stats.bootstrap import bootstrap_metrics

__all__ = [
    "CALIBRATED_DIAGNOSTICS",
    "DIAGNOSTICS",
    "MODEL_FACTS",
    "UNCALIBRATED",
    "Comparison",
    "Evaluation",
    "MethodResult",
    "ModelResult",
    "Row",
    "calibrated_metrics",
    "compare_models",
    "compared_metrics",
    "diagnostics",
    "evaluate",
    "label_mismatches",
    "long_metrics",
    "method_options",
    "model_keys",
    "parse_methods",
    "report_sweep_grid",
    "summarize_with_classwise",
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
#: The diagnostics after a model's metrics in ``compare --json`` (Müller et al. 2019): the
#: implied label smoothing (:mod:`calibkit.metrics.implied`) and, for soft labels, the metrics
#: against the label distribution (:mod:`calibkit.metrics.soft_labels`; ``null`` for hard
#: labels). The first two are also keys of the calibrated object (``ts``), with the third.
DIAGNOSTICS = (
    "median_logit_gap",
    "implied_ls_alpha",
    "implied_ls_correct",
    "implied_ls_reason",
    "label_distribution",
)
CALIBRATED_DIAGNOSTICS = ("median_logit_gap", "implied_ls_alpha", "label_distribution")


def diagnostics(
    source: PredictionSource,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    chunk_rows: int | None = None,
) -> tuple[ImpliedSmoothing, SoftLabelMetrics | None]:
    """The implied label smoothing of ``source`` and, when its labels are soft, its metrics
    against the label distribution (one pass: :func:`evaluate`)."""
    done = evaluate(source, n_bins=n_bins, binning=binning, chunk_rows=chunk_rows)
    return done.implied, done.soft


def _diagnostic_values(
    implied: ImpliedSmoothing | None, soft: SoftLabelMetrics | None, keys: Sequence[str]
) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(keys)
    if implied is not None:
        values.update({k: v for k, v in implied.to_dict().items() if k in values})
    if "label_distribution" in values:
        values["label_distribution"] = soft.to_dict() if soft is not None else None
    return values


def model_keys(method: type[Calibrator] | Calibrator) -> tuple[str, ...]:
    """The keys of a model's object in ``compare --json`` with the calibrator ``method``:
    :data:`MODEL_FACTS`, the compared metrics, the :data:`DIAGNOSTICS`, the calibrator's
    parameters, then the keys named after its abbreviation (``ts_fitted_on``, ``ts_source``,
    ``ts``), ``ci`` and ``ts_ci``.

    A calibrator whose parameter names or abbreviation give a key twice would overwrite a value
    of the model: it is refused with a :class:`~calibkit.errors.UsageError`.
    """
    key = method.abbreviation.lower()
    named = [
        *((k, "a fact of the model") for k in MODEL_FACTS),
        *((k, "a metric") for k in compared_metrics()),
        *((k, "a diagnostic") for k in DIAGNOSTICS),
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


# --------------------------------------------------------------------------------------------
# several methods: the long comparison

#: The ``method`` of a model's row before calibration (its cell in the tables).
UNCALIBRATED = "uncalibrated"
#: The metric a long comparison adds beside the table's ``compare`` metrics.
CLASSWISE = "classwise_ece"


def long_metrics() -> tuple[str, ...]:
    """The columns of a long comparison: the ``compare`` metrics (accuracy, ECE, MCE, NLL,
    Brier, then any registered one) with the class-wise ECE right after the ECE."""
    out: list[str] = []
    for m in compared_metrics():
        out.append(m)
        if m == "ece":
            out.append(CLASSWISE)
    if CLASSWISE not in out:
        out.append(CLASSWISE)
    return tuple(out)


def _classwise_sums(
    scores: NDArray[Any], labels: NDArray[Any], kind: str, n_bins: int
) -> NDArray[np.float64]:
    """Per (class, bin of ``p_k``): summed ``p_k`` and summed outcome ``1[y = k]`` (or the soft
    label), shape ``(2, K * n_bins)``, for the class-wise ECE of one chunk."""
    n, k = scores.shape
    p = softmax(scores) if kind == "logits" else np.asarray(scores, dtype=np.float64)
    if labels.ndim == 1:
        o = np.zeros((n, k))
        o[np.arange(n), labels] = 1.0
    else:
        o = labels.astype(np.float64)
    key = (assign_width_bins(p.ravel(), n_bins).reshape(n, k) + np.arange(k) * n_bins).ravel()
    size = k * n_bins
    return np.stack(
        [
            np.bincount(key, weights=p.ravel(), minlength=size),
            np.bincount(key, weights=o.ravel(), minlength=size),
        ]
    )


@dataclass(frozen=True, eq=False)
class Evaluation:
    """What one pass over a model's evaluated predictions gives (:func:`evaluate`)."""

    summary: CalibrationSummary
    classwise_ece: float | None
    implied: ImpliedSmoothing
    soft: SoftLabelMetrics | None


def summarize_with_classwise(
    source: PredictionSource,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    chunk_rows: int | None = None,
    calibrated_by: str | None = None,
) -> tuple[CalibrationSummary, float | None]:
    """:func:`~calibkit.metrics.summary.summarize` of ``source`` and its class-wise ECE (the
    ``classwise_ece`` of :func:`~calibkit.metrics.classwise.class_statistics`: ``n_bins``
    equal-width bins of each ``p_k``, whatever ``binning`` is), from ONE pass over its chunks
    (:func:`evaluate`, which also measures the diagnostics).

    The summary is the one :func:`summarize` gives (the same sums, merged in chunk order); the
    class-wise ECE is ``None`` for confidence-only rows, which have no classes. A calibrated
    view (:class:`~calibkit.calibrators.base.CalibratedPredictions`) is calibrated once per
    chunk for both. Rows whose label gets a probability of exactly 0 are named in a warning, as
    by :func:`summarize`; for a view given ``calibrated_by`` (the method's name) the warning
    says that the zeros come from that calibration, not from the file.
    """
    done = evaluate(
        source, n_bins=n_bins, binning=binning, chunk_rows=chunk_rows, calibrated_by=calibrated_by
    )
    return done.summary, done.classwise_ece


def evaluate(
    source: PredictionSource,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    chunk_rows: int | None = None,
    calibrated_by: str | None = None,
) -> Evaluation:
    """The summary, the class-wise ECE, the implied label smoothing
    (:mod:`calibkit.metrics.implied`) and, for soft labels, the metrics against the label
    distribution (:mod:`calibkit.metrics.soft_labels`) of ``source``, from ONE pass over its
    chunks (see :func:`summarize_with_classwise` for the summary and the warnings)."""
    kw: dict[str, Any] = {"n_bins": n_bins, "binning": binning, "chunk_rows": chunk_rows}
    if source.kind not in ("logits", "probs"):
        return Evaluation(summarize(source, **kw), None, implied_smoothing(source), None)
    if is_distributed():
        return _evaluate_on_cluster(source, calibrated_by=calibrated_by, **kw)
    acc = MetricAccumulator(
        source.n_classes,
        n_bins=n_bins,
        binning=binning,
        kind=source.kind,
        binary_mode=binary_mode_for(source, "top-label"),
    )
    kind, mode, m, k = acc.kind, acc.binary_mode, acc.n_bins, source.n_classes
    totals = np.zeros((2, k * m))
    gaps: list[NDArray[np.float64]] = []
    soft = SoftLabelAccumulator(n_bins=n_bins, binning=binning) if source.soft_labels else None

    def sums(chunk: Chunk) -> tuple[Any, ...]:
        stats = example_stats(chunk.scores, chunk.labels, kind, binary_mode=mode)
        return (
            acc.sums(stats, chunk.labels),
            _classwise_sums(chunk.scores, chunk.labels, kind, m),
            correct_gaps(chunk.scores, chunk.labels, kind),
            # the top-label statistics (mode is "top-label" here) serve the soft labels too
            soft_label_sums(chunk.scores, chunk.labels, kind, stats=stats) if soft else None,
        )

    def merge(part: tuple[Any, ...]) -> None:
        acc.merge(part[0])  # in chunk order: independent of the executor
        totals[...] += part[1]
        gaps.append(part[2])
        if soft is not None:
            soft.merge(part[3])

    run_pass(source, sums, merge, chunk_rows=chunk_rows, description=f"{source.source}: metrics")
    summary = acc.result(
        source=source.source, binary=source.n_classes == 2, input_reason=input_reason(source)
    )
    _warn_zero_probs(source, summary.zero_prob_rows, calibrated_by)
    per_class = np.abs(totals[1] - totals[0]).reshape(k, m).sum(axis=1) / summary.n
    ragged = getattr(source, "ragged", False)  # class k is another thing in each question
    return Evaluation(
        summary=summary,
        classwise_ece=None if ragged else float(per_class.mean()),
        implied=(
            implied_smoothing(source)
            if ragged
            else from_gaps(np.concatenate(gaps) if gaps else np.zeros(0), k)
        ),
        soft=soft.result(source.source) if soft is not None else None,
    )


def _warn_zero_probs(source: PredictionSource, rows: int, calibrated_by: str | None) -> None:
    if rows and calibrated_by is None:
        _warnings.warn(zero_prob_message(source.source, rows), UserWarning, stacklevel=4)
    elif rows:
        _warnings.warn(
            f"{source.source}: after {calibrated_by}, {rows} "
            + ("rows give" if rows != 1 else "row gives")
            + " the label a probability of exactly 0; -log 0 is taken at the smallest positive "
            "float64, so the NLL is a lower bound",
            UserWarning,
            stacklevel=4,
        )


class _ClasswiseSums:
    """The class-wise bin sums of a chunk (picklable, for the workers of a cluster)."""

    def __init__(self, kind: str, n_bins: int) -> None:
        self.kind, self.n_bins = kind, n_bins

    def __call__(self, chunk: Chunk) -> NDArray[np.float64]:
        return _classwise_sums(chunk.scores, chunk.labels, self.kind, self.n_bins)


def _evaluate_on_cluster(
    source: PredictionSource,
    *,
    n_bins: int,
    binning: Binning,
    chunk_rows: int | None,
    calibrated_by: str | None,
) -> Evaluation:
    """:func:`evaluate` on a distributed engine: the same numbers from passes whose chunks send
    back small sums only (the one-pass form keeps every correct row's logit gap, and
    equal-mass bins every confidence): the summary, the class-wise sums, the implied smoothing
    (its median by exact selection) and the soft-label metrics, each its own pass."""
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        summary = summarize(source, n_bins=n_bins, binning=binning, chunk_rows=chunk_rows)
    zero = zero_prob_message(source.source, summary.zero_prob_rows)
    for w in caught:  # every warning but the zero-probability one, which is re-worded below
        if str(w.message) != zero:
            _warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    _warn_zero_probs(source, summary.zero_prob_rows, calibrated_by)
    k, m = source.n_classes, check_n_bins(n_bins)
    totals = np.zeros((2, k * m))

    def add(part: NDArray[np.float64]) -> None:
        totals[...] += part

    run_pass(source, _ClasswiseSums(source.kind, m), add, chunk_rows=chunk_rows)
    per_class = np.abs(totals[1] - totals[0]).reshape(k, m).sum(axis=1) / summary.n
    soft = None
    if source.soft_labels:
        soft = soft_label_metrics(source, n_bins=n_bins, binning=binning, chunk_rows=chunk_rows)
    ragged = getattr(source, "ragged", False)  # class k is another thing in each question
    return Evaluation(
        summary=summary,
        classwise_ece=None if ragged else float(per_class.mean()),
        implied=implied_smoothing(source, chunk_rows=chunk_rows),
        soft=soft,
    )


def parse_methods(specs: Sequence[str] | str) -> tuple[str, ...]:
    """The methods of ``--method a,b`` (comma lists, the option repeatable), in order, each
    once; every name must be registered (:func:`~calibkit.calibrators.registry.get`)."""
    texts = [specs] if isinstance(specs, str) else list(specs)
    out: list[str] = []
    for text in texts:
        for name in (part.strip() for part in text.split(",")):
            if not name:
                raise UsageError(Param("methods") + f": {text!r} has an empty method name")
            registry.get(name)  # an unknown name lists the known ones
            if name in out:
                raise UsageError(Param("methods") + f": {name!r} is given twice")
            out.append(name)
    if not out:
        raise UsageError(Param("methods") + ": no method given")
    return tuple(out)


def method_options(methods: Sequence[str], specs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The fit options of each method from ``--param`` texts: ``METHOD.NAME=VALUE`` for one
    method, ``NAME=VALUE`` for every one of ``methods`` that declares ``NAME`` (its
    :attr:`~calibkit.calibrators.base.Calibrator.hyperparameters`, aliases included); a
    ``METHOD.NAME`` given beside a ``NAME`` wins for its method. Values are parsed and checked by
    :func:`~calibkit.calibrators.base.read_hyperparameters`; a name no chosen method declares,
    a method not chosen, or a text without ``=`` is a :class:`~calibkit.errors.UsageError`.

    >>> method_options(["temperature"], [])
    {'temperature': {}}
    """
    from calibkit.calibrators.base import read_hyperparameters

    classes = {m: registry.get(m) for m in methods}
    scoped: dict[str, dict[str, str]] = {m: {} for m in methods}
    shared: dict[str, str] = {}
    for spec in specs:
        key, sep, text = spec.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(Param("params") + f": {spec!r} is not NAME=VALUE or METHOD.NAME=VALUE")
        method, dot, name = key.rpartition(".")
        if dot:
            if method not in classes:
                chosen = ", ".join(methods)
                raise UsageError(
                    Param("params").entry(key)
                    + f": {method!r} is not one of the methods compared ({chosen})"
                )
            if name in scoped[method]:
                raise UsageError(Param("params").entry(key) + ": given twice")
            scoped[method][name] = text
        else:
            if key in shared:
                raise UsageError(Param("params").entry(key) + ": given twice")
            declared = [
                m
                for m, cls in classes.items()
                if any(key == h.name or key in h.aliases for h in cls.hyperparameters)
            ]
            if not declared:
                known = "; ".join(
                    f"{m}: " + (", ".join(h.name for h in cls.hyperparameters) or "none")
                    for m, cls in classes.items()
                )
                raise UsageError(
                    Param("params").entry(key)
                    + f": no method compared has a parameter {key!r} (their parameters: {known})"
                )
            shared[key] = text
    out: dict[str, dict[str, Any]] = {}
    for m, cls in classes.items():
        own = read_hyperparameters(cls, scoped[m])
        names = {h.name for h in cls.hyperparameters}
        aliases = {a: h.name for h in cls.hyperparameters for a in h.aliases}
        general = {k: v for k, v in shared.items() if (aliases.get(k, k) in names)}
        general_values = read_hyperparameters(cls, general)
        out[m] = {**general_values, **own}
    return out


def _fit_ended(details: Mapping[str, Any]) -> tuple[bool | None, str]:
    """Whether a fit converged and why it stopped, from its ``fit_details()``: the ``fit``
    record (:class:`~calibkit.calibrators.outcome.FitOutcome`) where there is one, else the
    top-level ``converged`` / ``message`` (temperature scaling)."""
    record = details.get("fit")
    where = record if isinstance(record, Mapping) else details
    converged = where.get("converged")
    message = where.get("message")
    return (
        converged if isinstance(converged, bool) else None,
        message if isinstance(message, str) else "",
    )


def _jsonable(obj: Any) -> Any:
    """``obj`` with numpy values as Python ones and non-finite floats as ``None``."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return _jsonable(obj.to_dict())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


@dataclass(kw_only=True, frozen=True, eq=False)
class MethodResult:
    """One calibration method fitted for one model (a row of a long comparison).

    ``calibrator`` was fitted on ``fitted_where`` data (``"val"``, or in-sample ``"test"``), the
    source ``fit_source``, with the fit options ``options``; ``calibrated`` and
    ``classwise_ece`` are the metrics of the model's evaluated predictions after it
    (``calibrated_ci`` their intervals); ``accuracy_changed`` says whether its accuracy differs
    from the model's own (possible only for a method that ``changes_argmax``)."""

    method: str
    calibrator: Calibrator
    fitted_where: Literal["val", "test"]
    fit_source: str
    calibrated: CalibrationSummary
    classwise_ece: float | None = None
    calibrated_ci: dict[str, tuple[float, float]] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    accuracy_changed: bool = False

    @property
    def title(self) -> str:
        return self.calibrator.title

    @property
    def parameters(self) -> dict[str, float]:
        return self.calibrator.parameters()

    @property
    def changes_argmax(self) -> bool:
        return bool(self.calibrator.changes_argmax)

    def fit_details(self) -> dict[str, Any]:
        """The calibrator's :meth:`~calibkit.calibrators.base.Calibrator.fit_details`,
        JSON-ready."""
        details: dict[str, Any] = _jsonable(self.calibrator.fit_details())
        return details

    @property
    def converged(self) -> bool | None:
        """Whether its fit converged (``None`` when the method does not say)."""
        return _fit_ended(self.calibrator.fit_details())[0]

    def metrics(self) -> dict[str, float | None]:
        """The long comparison's metrics after calibration (:func:`long_metrics`)."""
        return {
            m: (self.classwise_ece if m == CLASSWISE else _value(self.calibrated, m))
            for m in long_metrics()
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``method``, ``title``, ``abbreviation``, ``output_kind``,
        ``changes_argmax``, ``accuracy_changed``, ``fitted_on`` (``"val"``/``"test"``),
        ``fit_source``, ``options`` (the fit options given), ``parameters`` (the display
        parameters), ``metrics``, ``zero_prob_rows`` (rows whose label the calibrated
        probabilities give exactly 0: their NLL terms are lower bounds), ``ci``, ``converged``
        and ``fit_details``."""
        cal = self.calibrator
        return {
            "method": self.method,
            "title": cal.title,
            "abbreviation": cal.abbreviation,
            "output_kind": cal.output_kind,
            "changes_argmax": self.changes_argmax,
            "accuracy_changed": self.accuracy_changed,
            "fitted_on": self.fitted_where,
            "fit_source": self.fit_source,
            "options": _jsonable(dict(self.options)),
            "parameters": _jsonable(self.parameters),
            "metrics": _jsonable(self.metrics()),
            "zero_prob_rows": self.calibrated.zero_prob_rows,
            "ci": (
                {k: list(v) for k, v in self.calibrated_ci.items()} if self.calibrated_ci else None
            ),
            "converged": self.converged,
            "fit_details": self.fit_details(),
        }


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
    #: A long comparison: one result per method (in the order of the methods); the fields
    #: above then hold the temperature-scaling result when temperature is one of them.
    calibrations: tuple[MethodResult, ...] = ()
    #: A long comparison: the class-wise ECE of the evaluated predictions.
    classwise_ece: float | None = None
    #: The implied label smoothing of the evaluated predictions, and after calibration.
    implied: ImpliedSmoothing | None = None
    calibrated_implied: ImpliedSmoothing | None = None
    #: Soft labels: the metrics against the label distribution, before and after calibration.
    soft: SoftLabelMetrics | None = None
    calibrated_soft: SoftLabelMetrics | None = None

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
        out.update(_diagnostic_values(self.implied, self.soft, DIAGNOSTICS))
        out.update({p: params.get(p) for p in cls.symbols})
        out[f"{key}_fitted_on"] = self.fitted_where
        out[f"{key}_source"] = self.fit_source
        out[key] = (
            {
                **{m: _value(cal, m) for m in calibrated_metrics(cls)},
                **_diagnostic_values(
                    self.calibrated_implied, self.calibrated_soft, CALIBRATED_DIAGNOSTICS
                ),
            }
            if cal
            else None
        )
        out["ci"] = {k: list(v) for k, v in self.ci.items()} if self.ci else None
        out[f"{key}_ci"] = (
            {k: list(v) for k, v in self.calibrated_ci.items()} if self.calibrated_ci else None
        )
        return out

    def long_dict(self, methods: Sequence[str]) -> dict[str, Any]:
        """JSON-ready, in a long comparison of ``methods``: the model's facts, its metrics with
        ``classwise_ece`` after ``ece``, then (when temperature is among ``methods``) today's
        ``temperature``, ``ts_fitted_on``, ``ts_source``, ``ts`` keys, ``ci`` (and ``ts_ci``),
        and ``calibrated``: one :meth:`MethodResult.to_dict` per method fitted, in order."""
        if "temperature" in methods:
            legacy = self.to_dict()
        else:
            s = self.summary
            legacy = {
                "name": self.name,
                "source": s.source,
                "n": s.n,
                "input": s.kind,
                "input_reason": s.input_reason,
                "zero_prob_rows": s.zero_prob_rows,
                **{m: _value(s, m) for m in compared_metrics()},
                "ci": {k: list(v) for k, v in self.ci.items()} if self.ci else None,
            }
        out: dict[str, Any] = {}
        for k, v in legacy.items():
            out[k] = v
            if k == "ece":
                out[CLASSWISE] = self.classwise_ece
        out["calibrated"] = [r.to_dict() for r in self.calibrations]
        return out


@dataclass(frozen=True, eq=False)
class Row:
    """One row of a long comparison: a model before calibration (``result`` ``None``) or after
    one method (:class:`MethodResult`)."""

    model: ModelResult
    result: MethodResult | None = None

    @property
    def method(self) -> str:
        """The method's name, or :data:`UNCALIBRATED`."""
        return self.result.method if self.result is not None else UNCALIBRATED

    @property
    def summary(self) -> CalibrationSummary:
        return self.result.calibrated if self.result is not None else self.model.summary

    @property
    def ci(self) -> dict[str, tuple[float, float]] | None:
        return self.result.calibrated_ci if self.result is not None else self.model.ci

    @property
    def accuracy_changed(self) -> bool:
        return self.result is not None and self.result.accuracy_changed

    def value(self, metric: str) -> float | None:
        """``metric`` of the row (``None`` where it is not known: a class-wise ECE of
        confidence-only rows)."""
        if metric == CLASSWISE:
            return (
                self.result.classwise_ece if self.result is not None else (self.model.classwise_ece)
            )
        return _value(self.summary, metric)


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
    #: The methods of a long comparison (``None``: one method, ``method``, in today's layout).
    methods: tuple[str, ...] | None = None

    @property
    def long(self) -> bool:
        """Whether this is a long comparison (one row per model and method)."""
        return self.methods is not None

    @property
    def sweep_method(self) -> str | None:
        """The first compared method with a ``sweep_parameter`` (a temperature): the one whose
        fitted value the report's sweep marks; ``None`` when no method has one (the report then
        draws no sweep)."""
        for name in self.methods if self.methods is not None else (self.method,):
            if registry.get(name).sweep_parameter is not None:
                return name
        return None

    def rows(self) -> Iterator[Row]:
        """The rows of a long comparison: each model's uncalibrated row, then one per method
        fitted for it, in the order of the methods."""
        for m in self.models:
            yield Row(m)
            for r in m.calibrations:
                yield Row(m, r)

    def best_rows(self, metric: str) -> set[int]:
        """The positions in :meth:`rows` of the best value of ``metric`` (the lowest; the highest
        where higher is better, accuracy), every row that reaches it exactly; empty when fewer
        than two rows have a value."""
        values = [r.value(metric) for r in self.rows()]
        known = [v for v in values if v is not None and not math.isnan(v)]
        if len(known) < 2:
            return set()
        top = max(known) if metric_table.get(metric).higher_is_better else min(known)
        return {i for i, v in enumerate(values) if v == top}

    def fits_not_converged(self) -> list[tuple[str, str, str]]:
        """``(model, method, message)`` of every fit that says it did not converge."""
        out = []
        for m in self.models:
            for r in m.calibrations:
                converged, message = _fit_ended(r.calibrator.fit_details())
                if converged is False:
                    out.append((m.name, r.method, message))
        return out

    def best(self, metric: str, *, ts: bool = False) -> str | None:
        """Name of the model with the best ``metric``: the highest or the lowest value, by the
        metric's direction (:mod:`calibkit.metrics.table`), the first such model on a tie; with
        ``ts``, after calibration; ``None`` when no model has a value (NaN is none)."""
        values = {
            m.name: v
            for m in self.models
            if (m.calibrated if ts else m.summary) is not None
            # a missing value (NaN: NLL or Brier of confidence rows) is never the best
            and not math.isnan(v := _value(m.calibrated if ts else m.summary, metric))
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
        if self.methods is not None:
            return self._long_dict(self.methods, flags)
        return {**self._head(flags), "models": [m.to_dict() for m in self.models]}

    def _head(self, flags: Mapping[str, str] | None) -> dict[str, Any]:
        """The keys every comparison's JSON starts with: its settings and warnings."""
        return {
            "n_bins": self.n_bins,
            "binning": self.binning,
            "ts_on_test": self.ts_on_test,
            "ci_level": self.ci_level,
            "bootstrap": self.bootstrap,
            "seed": self.seed,
            "warnings": list(self.warning_texts(flags)),
        }

    def _long_dict(self, methods: Sequence[str], flags: Mapping[str, str] | None) -> dict[str, Any]:
        """A long comparison's JSON: today's top-level keys, ``methods``, ``classwise_bins``
        (``"width"``: the class-wise ECE's binning), ``best`` (per metric, the ``[model,
        method]`` pairs of the best value, ``method`` ``null`` for an uncalibrated row) and the
        models (:meth:`ModelResult.long_dict`)."""
        rows = list(self.rows())
        best = {
            metric: [
                [rows[i].model.name, None if rows[i].result is None else rows[i].method]
                for i in sorted(self.best_rows(metric))
            ]
            for metric in long_metrics()
        }
        return {
            **self._head(flags),
            "methods": list(methods),
            "classwise_bins": "width",
            "best": best,
            "models": [m.long_dict(methods) for m in self.models],
        }

    def to_frame(self) -> Any:
        """One row per model (pandas DataFrame); ``ts_*`` columns (the calibrator's prefix) are
        NaN without calibration; with intervals, ``<metric>_ci_low``/``_ci_high`` (and ``ts_``
        ones) columns follow."""
        import pandas as pd

        if self.methods is not None:
            return self._long_frame()
        cls = registry.get(self.method)
        key = cls.abbreviation.lower()
        rows = []
        for m in self.models:
            d = m.to_dict()
            cal = d.pop(key) or {}
            soft = d.pop("label_distribution") or {}  # nested: its numbers as columns
            d.update({f"soft_{k}": v for k, v in soft.items() if k not in ("n", "n_bins")})
            d.pop("soft_binning", None)
            intervals = {}
            for prefix, table in (("", d.pop("ci")), (f"{key}_", d.pop(f"{key}_ci"))):
                for k, (lo, hi) in (table or {}).items():
                    intervals[f"{prefix}{k}_ci_low"] = lo
                    intervals[f"{prefix}{k}_ci_high"] = hi
            shown = (*calibrated_metrics(cls), "median_logit_gap", "implied_ls_alpha")
            calibrated = {f"{key}_{k}": _nan(cal.get(k)) for k in shown}
            rows.append({**d, **calibrated, **intervals})
        return pd.DataFrame(rows).set_index("name")

    def _long_frame(self) -> Any:
        """A long comparison: one row per (model, method), indexed by ``(name, method)``."""
        import pandas as pd

        records = []
        for row in self.rows():
            r = row.result
            rec: dict[str, Any] = {"name": row.model.name, "method": row.method}
            rec["source"] = row.model.summary.source
            rec["n"] = row.summary.n
            rec.update({m: row.value(m) for m in long_metrics()})
            rec["accuracy_changed"] = row.accuracy_changed
            rec["changes_argmax"] = r.changes_argmax if r is not None else None
            rec["fitted_on"] = r.fitted_where if r is not None else None
            rec["fit_source"] = r.fit_source if r is not None else None
            rec["converged"] = r.converged if r is not None else None
            for k, (lo, hi) in (row.ci or {}).items():
                rec[f"{k}_ci_low"], rec[f"{k}_ci_high"] = lo, hi
            records.append(rec)
        return pd.DataFrame(records).set_index(["name", "method"])


def _nan(value: Any) -> Any:
    """A frame's cell: ``None`` (nothing measured) as NaN."""
    return np.nan if value is None else value


def _intervals(
    src: PredictionSource,
    ci: float | None,
    n_bins: int,
    binning: Binning,
    chunk_rows: int | None,
    bootstrap: int,
    seed: int,
) -> dict[str, tuple[float, float]] | None:
    """The ``ci`` percentile bootstrap interval of each compared metric of ``src`` (the streamed
    Poisson bootstrap of :mod:`calibkit.stats.bootstrap`; ``None`` without ``ci``)."""
    if ci is None:
        return None
    boot = bootstrap_metrics(  # one streamed pass (two for equal-mass bins: their edges first)
        src, n_bins=n_bins, binning=binning, replicates=bootstrap, seed=seed, chunk_rows=chunk_rows
    )
    return {
        m: boot.interval(m, ci)
        for m in compared_metrics()
        if m in boot.point and not np.isnan(boot.point[m])
    }


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
    methods: Sequence[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> Comparison:
    """Compare models; fit the calibrator ``method`` (a registered name, by default temperature
    scaling) on ``val[name]`` where given (see module doc).

    With ``ci`` (e.g. 0.95), every value gets a percentile bootstrap interval (``bootstrap``
    replicates of the per-example statistics, ``seed``); ``ModelResult.ci`` / ``calibrated_ci``.

    With ``methods`` (registered names, in order) the comparison is long (module docstring):
    every method is fitted for every model with validation data (or, with ``ts_on_test``, on
    its evaluated data), with the fit options ``params[method]`` (parsed values, e.g. from
    :func:`method_options`; a name the method does not declare is a
    :class:`~calibkit.errors.UsageError`); ``method`` is then not used.
    """
    if ci is not None and not 0 < ci < 1:
        raise UsageError(Param("ci") + f" must lie in (0, 1); got {ci}")
    if methods is not None:
        return _compare_long(
            models,
            methods=tuple(methods),
            params=params or {},
            val=val or {},
            kw={"n_bins": n_bins, "binning": binning, "chunk_rows": chunk_rows},
            ts_on_test=ts_on_test,
            check_labels=check_labels,
            ci=ci,
            bootstrap=bootstrap,
            seed=seed,
        )
    if params:
        raise UsageError(Param("params") + " needs methods (the one-method comparison has none)")
    cls = registry.get(method)
    model_keys(cls)  # before any work: its parameters and abbreviation name no model key twice

    def intervals(src: PredictionSource) -> dict[str, tuple[float, float]] | None:
        return _intervals(src, ci, n_bins, binning, chunk_rows, bootstrap, seed)

    given = models
    if check_labels:  # hash the labels in passing: no second read to compare them
        models = {name: LabelDigest(src) for name, src in given.items()}
    val = val or {}
    results = []
    kw: dict[str, Any] = {"n_bins": n_bins, "binning": binning, "chunk_rows": chunk_rows}
    for name, source in models.items():
        first = evaluate(source, **kw)  # one pass: the summary and the diagnostics
        summary, implied, soft = first.summary, first.implied, first.soft
        fit_on: PredictionSource | None = val.get(name)
        where: Literal["val", "test"] | None = "val" if fit_on is not None else None
        if fit_on is None and ts_on_test:
            fit_on, where = source, "test"
        if fit_on is None:
            plain = ModelResult(
                name=name,
                summary=summary,
                ci=intervals(source),
                method=method,
                implied=implied,
                soft=soft,
            )
            results.append(plain)
            continue
        calibrator = cls.fit_source(fit_on, chunk_rows=chunk_rows)
        calibrated = CalibratedPredictions(source, calibrator)
        after = evaluate(calibrated, **kw)
        results.append(
            ModelResult(
                name=name,
                summary=summary,
                calibrator=calibrator,
                fitted_where=where,
                fit_source=fit_on.source,
                calibrated=after.summary,
                ci=intervals(source),
                calibrated_ci=intervals(calibrated),
                method=method,
                implied=implied,
                calibrated_implied=after.implied,
                soft=soft,
                calibrated_soft=after.soft,
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


def _does_not_apply(err: CalibkitError, file: str, model: str, method: str, what: str) -> Any:
    """``err`` (a method that cannot be fitted or applied) as one error naming ``file``, the
    model and the method; the original message's own ``file: `` prefix is not repeated."""
    message = err.message
    parts = message.parts if isinstance(message, Message) else (message,)
    head = parts[0] if parts and isinstance(parts[0], str) else ""
    prefix = f"{file}: "
    if head.startswith(prefix):
        parts = (head[len(prefix) :], *parts[1:])
    elif isinstance(err, InputError) and err.source != file:
        parts = (f"{err.source}: ", *parts)
    body = Message(f"method {method!r} cannot be {what} for model {model!r}: ", *parts)
    if isinstance(err, InputError):
        return InputError(file, body)
    return type(err)(Message(prefix) + body)


def _compare_long(
    models: Mapping[str, PredictionSource],
    *,
    methods: tuple[str, ...],
    params: Mapping[str, Mapping[str, Any]],
    val: Mapping[str, PredictionSource],
    kw: dict[str, Any],
    ts_on_test: bool,
    check_labels: bool,
    ci: float | None,
    bootstrap: int,
    seed: int,
) -> Comparison:
    """:func:`compare_models` with several methods (see there and the module docstring)."""
    if not methods:
        raise UsageError(Param("methods") + ": no method given")
    if len(set(methods)) != len(methods):
        raise UsageError(Param("methods") + f": a method is given twice in {list(methods)}")
    classes = {m: registry.get(m) for m in methods}
    unknown = sorted(set(params) - set(methods))
    if unknown:
        raise UsageError(Param("params") + f": {unknown[0]!r} is not one of the methods compared")
    for m, options in params.items():
        declared = {h.name for h in classes[m].hyperparameters}
        extra = sorted(set(options) - declared)
        if extra:
            raise UsageError(
                Param("params").entry(extra[0]) + f": {m!r} has no parameter {extra[0]!r} "
                f"(its parameters: {', '.join(sorted(declared)) or 'none'})"
            )
    n_bins, binning, chunk_rows = kw["n_bins"], kw["binning"], kw["chunk_rows"]

    def intervals(src: PredictionSource) -> dict[str, tuple[float, float]] | None:
        return _intervals(src, ci, n_bins, binning, chunk_rows, bootstrap, seed)

    given = models
    if check_labels:
        models = {name: LabelDigest(src) for name, src in given.items()}
    results = []
    for name, source in models.items():
        first = evaluate(source, **kw)  # one pass: the summary and the diagnostics
        summary, classwise = first.summary, first.classwise_ece
        ts_after: Evaluation | None = None
        fit_on: PredictionSource | None = val.get(name)
        where: Literal["val", "test"] | None = "val" if fit_on is not None else None
        if fit_on is None and ts_on_test:
            fit_on, where = source, "test"
        done: list[MethodResult] = []
        if fit_on is not None and where is not None:
            for method in methods:
                cls, options = classes[method], dict(params.get(method, {}))
                try:
                    calibrator = cls.fit_source(fit_on, chunk_rows=chunk_rows, **options)
                except (UsageError, InputError) as err:
                    raise _does_not_apply(err, fit_on.source, name, method, "fitted") from None
                view = CalibratedPredictions(source, calibrator)
                try:
                    evaluated = evaluate(view, **kw, calibrated_by=method)
                    after, cw = evaluated.summary, evaluated.classwise_ece
                    after_ci = intervals(view)
                except (UsageError, InputError) as err:
                    raise _does_not_apply(err, source.source, name, method, "applied") from None
                done.append(
                    MethodResult(
                        method=method,
                        calibrator=calibrator,
                        fitted_where=where,
                        fit_source=fit_on.source,
                        calibrated=after,
                        classwise_ece=cw,
                        calibrated_ci=after_ci,
                        options=options,
                        accuracy_changed=after.accuracy != summary.accuracy,
                    )
                )
                if method == "temperature":
                    ts_after = evaluated
        ts = next((r for r in done if r.method == "temperature"), None)
        results.append(
            ModelResult(
                name=name,
                summary=summary,
                calibrator=ts.calibrator if ts else None,
                fitted_where=ts.fitted_where if ts else None,
                fit_source=ts.fit_source if ts else None,
                calibrated=ts.calibrated if ts else None,
                ci=intervals(source),
                calibrated_ci=ts.calibrated_ci if ts else None,
                method="temperature" if "temperature" in methods else methods[0],
                calibrations=tuple(done),
                classwise_ece=classwise,
                implied=first.implied,
                calibrated_implied=ts_after.implied if ts_after is not None else None,
                soft=first.soft,
                calibrated_soft=ts_after.soft if ts_after is not None else None,
            )
        )
    warnings: list[str | Message] = []
    digested = list(models.values())
    if check_labels and not all(same_examples(digested[0], other) for other in digested[1:]):
        warnings = [*label_mismatches(given)]
    if ts_on_test and any(r.fitted_where == "test" for m in results for r in m.calibrations):
        warnings.append(
            "calibrators fitted on the evaluated data itself ("
            + Param("ts_on_test", True)
            + "): the calibrated rows of models without validation data are in-sample and "
            "optimistic"
        )
    comp = Comparison(
        models=tuple(results),
        n_bins=n_bins,
        binning=binning,
        ts_on_test=ts_on_test,
        warnings=tuple(warnings),
        ci_level=ci,
        bootstrap=bootstrap if ci is not None else None,
        seed=seed if ci is not None else None,
        method="temperature" if "temperature" in methods else methods[0],
        methods=methods,
    )
    unconverged = [
        f"model {model!r}, method {method!r}: the fit did not converge"
        + (f" ({message})" if message else "")
        for model, method, message in comp.fits_not_converged()
    ]
    return replace(comp, warnings=(*comp.warnings, *unconverged)) if unconverged else comp


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
