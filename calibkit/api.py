"""Convenience functions on arrays: ``calibkit.ece(logits, labels)`` and friends.

Each validates its inputs like the file readers do and computes every metric from the same
single pass (:func:`calibkit.metrics.summarize`); definitions are in :mod:`calibkit.metrics`.

``kind`` says what the scores are. By default (``None``) it is detected: rows that all lie in
``[0, 1]`` and sum to 1 are probabilities (so ``ece(clf.predict_proba(X), y)`` measures the
probabilities), anything else is logits; ``kind="logits"`` or ``kind="probs"`` forces either
reading (:func:`calibkit.sources.predictions.choose_kind`). One score per row (a binary model) is
read as
a logit unless ``kind="probs"``. ``evaluate(...).kind`` and ``.input_reason`` say which reading
was used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from numpy.typing import ArrayLike

from calibkit.errors import Param, UsageError
from calibkit.metrics.binning import Binning
from calibkit.metrics.examples import BinaryMode
from calibkit.metrics.summary import CalibrationSummary, summarize
from calibkit.sources.predictions import Predictions, PredictionSource, ScoreKind

if TYPE_CHECKING:
    from calibkit.stats.groups import GroupedSummary

__all__ = ["accuracy", "brier", "compare", "ece", "evaluate", "nll", "sweep_temperature"]


@overload
def evaluate(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    kind: ScoreKind | None = None,
    n_bins: int = 15,
    binning: Binning = "width",
    binary_mode: BinaryMode = "top-label",
    group_by: None = None,
) -> CalibrationSummary: ...


@overload
def evaluate(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    kind: ScoreKind | None = None,
    n_bins: int = 15,
    binning: Binning = "width",
    binary_mode: BinaryMode = "top-label",
    group_by: ArrayLike | Mapping[str, ArrayLike],
) -> GroupedSummary: ...


def evaluate(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    kind: ScoreKind | None = None,
    n_bins: int = 15,
    binning: Binning = "width",
    binary_mode: BinaryMode = "top-label",
    group_by: ArrayLike | Mapping[str, ArrayLike] | None = None,
) -> CalibrationSummary | GroupedSummary:
    """All metrics of ``scores`` (logits or probabilities, ``(N, K)`` or ``(N,)``) vs ``labels``.

    With ``group_by`` (one value per row, or ``{column: values}`` for a cross product) the
    metrics of each group, its micro and macro aggregates, worst ECE first
    (:class:`calibkit.stats.groups.GroupedSummary`; ``.to_dict()`` for JSON).

    >>> s = evaluate([[2.0, 0.0], [0.0, 2.0]], [0, 0])
    >>> s.accuracy, round(s.ece, 4), s.kind
    (0.5, 0.3808, 'logits')
    >>> evaluate([[0.9, 0.1], [0.3, 0.7]], [0, 0]).kind  # rows in [0, 1] summing to 1
    'probs'
    >>> g = evaluate([[2.0, 0.0], [0.0, 2.0], [3.0, 0.0]], [0, 0, 0], group_by=["a", "b", "a"])
    >>> [(r.key, r.n, r.summary.accuracy) for r in g.groups]
    [(('b',), 1, 0.0), (('a',), 2, 1.0)]
    """
    preds = Predictions.from_arrays(scores, labels, kind=kind)
    if group_by is None:
        return summarize(preds, n_bins=n_bins, binning=binning, binary_mode=binary_mode)
    import dataclasses

    from calibkit.sources.groups import MemoryColumns
    from calibkit.stats.groups import summarize_groups

    columns = dict(group_by) if isinstance(group_by, Mapping) else {"group": group_by}
    grouped = dataclasses.replace(preds, columns=MemoryColumns(columns))
    return summarize_groups(
        grouped, list(columns), n_bins=n_bins, binning=binning, binary_mode=binary_mode
    )


def ece(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    kind: ScoreKind | None = None,
    n_bins: int = 15,
    binning: Binning = "width",
) -> float:
    """Expected calibration error of the top-label confidence (Guo et al. 2017).

    >>> ece([[0.1, 0.9], [0.1, 0.9]], [1, 0], kind="probs", n_bins=10)
    0.4
    """
    return evaluate(scores, labels, kind=kind, n_bins=n_bins, binning=binning).ece


def nll(scores: ArrayLike, labels: ArrayLike, *, kind: ScoreKind | None = None) -> float:
    """Mean negative log-likelihood of the labels (natural log, from log-softmax).

    >>> round(nll([[0.0, 0.0]], [1]), 6)  # -log(1/2)
    0.693147
    """
    return evaluate(scores, labels, kind=kind).nll


def brier(scores: ArrayLike, labels: ArrayLike, *, kind: ScoreKind | None = None) -> float:
    """Mean multiclass Brier score ``sum_k (p_k - onehot_k)^2``.

    >>> brier([[0.5, 0.5]], [1], kind="probs")
    0.5
    """
    return evaluate(scores, labels, kind=kind).brier


def accuracy(scores: ArrayLike, labels: ArrayLike, *, kind: ScoreKind | None = None) -> float:
    """Share of rows whose argmax (first index on ties) is the label.

    >>> accuracy([[1.0, 0.0], [1.0, 1.0]], [0, 1])
    0.5
    """
    return evaluate(scores, labels, kind=kind).accuracy


def sweep_temperature(
    models: Mapping[str, PredictionSource] | PredictionSource,
    temperatures: Sequence[float] | None = None,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
) -> Any:
    """ECE, MCE, NLL, Brier and accuracy of each model at each temperature, as a DataFrame.

    ``models`` maps names to predictions (from :func:`calibkit.read_predictions` or
    :class:`~calibkit.sources.predictions.Predictions`); ``temperatures`` defaults to 51 points
    from 0.5
    to 3. One row per (model, temperature); needs pandas.
    """
    import pandas as pd

    from calibkit.calibrators.sweep import sweep_temperatures, temperature_grid

    named = models if isinstance(models, Mapping) else {models.source: models}
    grid = temperature_grid() if temperatures is None else temperatures
    frames = []
    for name, source in named.items():
        sw = sweep_temperatures(source, grid, name=name, n_bins=n_bins, binning=binning)
        frames.append(
            pd.DataFrame(
                {
                    "model": name,
                    "temperature": sw.temperatures,
                    "ece": sw.ece,
                    "mce": sw.mce,
                    "nll": sw.nll,
                    "brier": sw.brier,
                    "accuracy": sw.accuracy,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def compare(
    models: Mapping[str, Any],
    *,
    val: Mapping[str, Any] | None = None,
    n_bins: int = 15,
    binning: Binning = "width",
    ts_on_test: bool = False,
    method: str = "temperature",
    methods: Sequence[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    group_by: str | Sequence[str] | None = None,
) -> Any:
    """Compare models in one call; a pandas DataFrame with a row per model.

    ``models`` and ``val`` map names to predictions: file paths or objects from
    :func:`calibkit.read_predictions`. Columns: ``source, n, accuracy, ece, mce, nll, brier,
    temperature, ts_fitted_on, ts_source, ts_ece, ts_mce, ts_nll, ts_brier`` (TS columns NaN for
    models without validation data). Mismatched label vectors raise a warning. ``method``
    names the registered calibrator fitted on ``val`` (:mod:`calibkit.calibrators.registry`;
    the TS columns take its prefix). For the full result (summaries, bins, warnings) use
    :func:`calibkit.comparison.compare_models`. With ``methods`` (several registered names,
    ``params`` their fit options by method) the frame is long: a row per (model, method),
    indexed by ``(name, method)``, the uncalibrated rows under method ``"uncalibrated"``.

    With ``group_by`` (a column name, or several for their cross product) the frame has a row
    per model and group of that column, indexed by ``(name, column...)``, with ``n``,
    ``small`` and the headline metrics (:func:`calibkit.stats.groups.compare_groups`; its
    ``micro`` and ``macro`` aggregates in the result's ``to_dict()``); it does not fit any
    calibrator, so ``val``, ``ts_on_test`` and ``methods`` are refused with it.
    """
    import warnings

    from calibkit.comparison import compare_models
    from calibkit.loaders import read_predictions

    def load(x: Any) -> PredictionSource:
        return x if hasattr(x, "chunks") else read_predictions(x)

    if group_by is not None:
        if val or ts_on_test or methods or params:
            raise UsageError(
                Param("group_by") + " compares the models' metrics per group; it fits no "
                "calibrator (give no val, ts_on_test, methods or params)"
            )
        return _group_frame(
            {k: load(v) for k, v in models.items()},
            [group_by] if isinstance(group_by, str) else list(group_by),
            n_bins=n_bins,
            binning=binning,
        )

    comp = compare_models(
        {k: load(v) for k, v in models.items()},
        val={k: load(v) for k, v in (val or {}).items()},
        n_bins=n_bins,
        binning=binning,
        ts_on_test=ts_on_test,
        method=method,
        methods=methods,
        params=params,
    )
    for message in comp.warning_texts():
        warnings.warn(message, UserWarning, stacklevel=2)
    return comp.to_frame()


def _group_frame(
    models: dict[str, PredictionSource], columns: list[str], *, n_bins: int, binning: Binning
) -> Any:
    import pandas as pd

    from calibkit.sources.groups import parse_group_by
    from calibkit.stats.groups import compare_groups

    comp = compare_groups(models, parse_group_by(columns), n_bins=n_bins, binning=binning)
    records = []
    for name, grouped in comp.per_model.items():
        for g in grouped.groups:
            records.append(
                {
                    "name": name,
                    **dict(zip(comp.columns, g.key, strict=True)),
                    "n": g.n,
                    "small": g.small,
                    **g.metrics(),
                }
            )
    return pd.DataFrame(records).set_index(["name", *comp.columns])
