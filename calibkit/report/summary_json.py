"""JSON form of a :class:`~calibkit.metrics.summary.CalibrationSummary`.

Schema (``calibkit ece --json``); every number is computed, NaN is written as ``null``:

``n``, ``n_classes``, ``n_bins``, ``binning`` (``"width"``/``"mass"``), ``binary_mode``
(``null`` for more than two classes, else ``"top-label"`` or ``"positive"``), ``input``
(``"logits"``/``"probs"``/``"confidence"``), ``input_reason`` (why: ``"named: key 'probs'"``,
``"detected: every row in [0, 1] sums to 1"``, ``"forced: --input logits"``, ...),
``soft_labels``, ``accuracy``, ``ece``, ``mce``, ``rmsce``, ``nll``, ``brier``,
``mean_confidence``, ``saturated_fraction``, ``zero_prob_rows`` (probability rows whose label
has probability exactly 0: their NLL terms are lower bounds), ``missing_classes`` (label values
that never occur), ``source``, ``calibkit_version``, and ``bins``: a list of
``{lower, upper, count, confidence, accuracy}`` (``confidence``/``accuracy`` null when empty).
"""

from __future__ import annotations

import json
import math
from typing import Any

from calibkit._version import __version__
from calibkit.metrics import table as metric_table
from calibkit.metrics.calibration import BinTable
from calibkit.metrics.summary import CalibrationSummary

__all__ = ["bins_to_list", "dumps", "summary_to_dict"]


def _num(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def bins_to_list(table: BinTable) -> list[dict[str, Any]]:
    """The bins as JSON objects (:meth:`~calibkit.metrics.calibration.BinTable.to_list`)."""
    return list(table.to_list())


#: The built-in headline metrics of the schema, in its order: the table's ``summary`` metrics at
#: import. :func:`summary_to_dict` reads the table when it runs: a registered ``summary`` metric
#: follows them (its value by :meth:`~calibkit.metrics.table.Metric.summary_value`).
HEADLINE = metric_table.names(metric_table.metrics(lambda m: m.summary))


def summary_to_dict(s: CalibrationSummary) -> dict[str, Any]:
    return {
        "source": s.source,
        "n": s.n,
        "n_classes": s.n_classes,
        "n_bins": s.n_bins,
        "binning": s.binning,
        "binary_mode": s.binary_mode,
        "input": s.kind,
        "input_reason": s.input_reason,
        "soft_labels": s.soft_labels,
        **{m.name: _num(m.summary_value(s)) for m in metric_table.metrics(lambda m: m.summary)},
        "mean_confidence": _num(s.mean_confidence),
        "saturated_fraction": _num(s.saturated_fraction),
        "zero_prob_rows": s.zero_prob_rows,
        "missing_classes": list(s.missing_classes),
        "calibkit_version": __version__,
        "bins": bins_to_list(s.bins),
    }


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return _num(obj)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return _clean(obj.tolist())
    return obj


def dumps(obj: Any) -> str:
    """Indented JSON with a trailing newline; NaN and infinities become ``null``.

    >>> dumps({"a": float("nan"), "b": [1.5, float("inf")]}).split()
    ['{', '"a":', 'null,', '"b":', '[', '1.5,', 'null', ']', '}']
    """
    return json.dumps(_clean(obj), indent=2, allow_nan=False) + "\n"
