"""Several models swept over one temperature grid, with T = 1 and fitted-T reference points.

JSON schema (``calibkit sweep-temp --json``)::

    {"n_bins", "binning", "models": [{
        "name", "source", "n", "input", "input_reason", "accuracy", "temperatures": [...],
        "ece": [...], "mce": [...], "nll": [...], "brier": [...],
        "best_ece": {"temperature", "ece"}, "best_nll": {"temperature", "nll"},
        "at_t1": {"ece", "nll", "brier"},
        "fitted": {"temperature", "fitted_on", "ece", "nll", "brier"} | null}]}

``best_*`` are the lowest points on the grid; ``at_t1`` is the unscaled model (computed even
when 1 is not on the grid); ``fitted`` is the temperature fitted on ``--val`` data, evaluated on
the swept predictions; ``n`` counts the rows read; ``input``/``input_reason`` say how the scores
were read (logits or probabilities, and why).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from calibkit.calibrators.sweep import TemperatureSweep, sweep_temperatures
from calibkit.calibrators.temperature import fit_temperature
from calibkit.metrics.binning import Binning
from calibkit.sources.predictions import PredictionSource, input_reason

__all__ = ["SweepResult", "run_sweeps", "sweep_csv", "sweep_json"]


@dataclass(kw_only=True, frozen=True)
class SweepResult:
    sweep: TemperatureSweep
    source: str
    at_one: dict[str, float]
    fitted_temperature: float | None = None
    fitted_on: str | None = None
    at_fitted: dict[str, float] | None = None
    input: str = "logits"
    input_reason: str = ""


def run_sweeps(
    sources: Mapping[str, PredictionSource],
    temperatures: Sequence[float] | np.ndarray,
    *,
    val: Mapping[str, PredictionSource] | None = None,
    n_bins: int = 15,
    binning: Binning = "width",
    chunk_rows: int | None = None,
) -> list[SweepResult]:
    """Sweep every model; add its T = 1 point and, with validation data, its fitted T.

    The extra temperatures ride along in the same pass over the data as the grid.
    """
    grid = np.asarray(temperatures, dtype=np.float64)
    out = []
    for name, src in sources.items():
        extra = [1.0]
        fitted = fitted_on = None
        if val and name in val:
            scaler = fit_temperature(val[name], chunk_rows=chunk_rows)
            fitted, fitted_on = scaler.temperature, val[name].source
            extra.append(fitted)
        full = sweep_temperatures(
            src,
            np.concatenate([grid, extra]),
            name=name,
            n_bins=n_bins,
            binning=binning,
            chunk_rows=chunk_rows,
        )
        g = grid.size
        sweep = TemperatureSweep(
            name=name,
            temperatures=grid,
            ece=full.ece[:g],
            mce=full.mce[:g],
            nll=full.nll[:g],
            brier=full.brier[:g],
            accuracy=full.accuracy,
            n=full.n,
            n_bins=n_bins,
            binning=binning,
        )

        def point(i: int, sw: TemperatureSweep = full) -> dict[str, float]:
            return {"ece": float(sw.ece[i]), "nll": float(sw.nll[i]), "brier": float(sw.brier[i])}

        out.append(
            SweepResult(
                sweep=sweep,
                source=src.source,
                at_one=point(g),
                fitted_temperature=fitted,
                fitted_on=fitted_on,
                at_fitted=point(g + 1) if fitted is not None else None,
                input=src.kind,
                input_reason=input_reason(src),
            )
        )
    return out


def sweep_json(results: Sequence[SweepResult]) -> dict[str, Any]:
    models = []
    for r in results:
        sw = r.sweep
        te, ve = sw.best("ece")
        tn, vn = sw.best("nll")
        models.append(
            {
                "name": sw.name,
                "source": r.source,
                "n": sw.n,
                "input": r.input,
                "input_reason": r.input_reason,
                "accuracy": sw.accuracy,
                "temperatures": sw.temperatures.tolist(),
                "ece": sw.ece.tolist(),
                "mce": sw.mce.tolist(),
                "nll": sw.nll.tolist(),
                "brier": sw.brier.tolist(),
                "best_ece": {"temperature": te, "ece": ve},
                "best_nll": {"temperature": tn, "nll": vn},
                "at_t1": r.at_one,
                "fitted": (
                    {"temperature": r.fitted_temperature, "fitted_on": r.fitted_on, **r.at_fitted}
                    if r.at_fitted is not None
                    else None
                ),
            }
        )
    first = results[0].sweep
    return {"n_bins": first.n_bins, "binning": first.binning, "models": models}


def sweep_csv(results: Sequence[SweepResult]) -> str:
    """Tidy CSV, a row per (model, temperature).

    Columns: ``model,temperature,ece,mce,nll,brier,accuracy``; numbers in full precision.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", "temperature", "ece", "mce", "nll", "brier", "accuracy"])
    for r in results:
        sw = r.sweep
        for i, t in enumerate(sw.temperatures):
            writer.writerow(
                [
                    sw.name,
                    repr(float(t)),
                    repr(float(sw.ece[i])),
                    repr(float(sw.mce[i])),
                    repr(float(sw.nll[i])),
                    repr(float(sw.brier[i])),
                    repr(sw.accuracy),
                ]
            )
    return buf.getvalue()
