"""Histogram binning (Zadrozny & Elkan 2001; Guo et al. 2017, Table 1): a step map of the
confidence whose value on each bin is the mean of the target of the validation rows in it.

``bins`` (default 15) bins over [0, 1], by ``binning``:

``width``
    ``bins`` equal-width bins, as the ECE's (:mod:`calibkit.metrics.binning`): bin ``b`` holds
    ``(b-1)/M < p <= b/M``, and ``p = 0`` falls in the first.
``mass``
    equal-mass bins whose upper edges are the validation scores of rank ``ceil(b N / M) - 1``
    (:func:`~calibkit.metrics.binning.mass_bin_edges`); a bin holds ``(upper_{b-1}, upper_b]``,
    so equal scores are never split between bins. Repeated edges (many ties) are merged, so
    every bin holds a validation row and the map may have fewer than ``bins`` steps. Scores
    above the last edge (unseen on the validation data) take the last bin's value.

Empty bins (equal-width bins that no validation row fell in) take the bin's **midpoint**: with no
evidence the map leaves the confidence where the model put it (roughly the identity), rather
than borrowing the value of a neighbouring bin fitted on other confidences. The outputs of the
maps are combined by the reduction (:mod:`calibkit.calibrators.reductions`: ``top``, ``ova``,
``binary``).

The fit holds every validation row's (score, target) in memory, O(N) numbers (O(N K) for
``ova``): binning needs the scores themselves (for equal-mass edges).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from calibkit.calibrators import registry
from calibkit.calibrators.base import Calibrator, Hyperparameter
from calibkit.calibrators.reductions import (
    Columns,
    ReducedCalibrator,
    collect_columns,
    float_list,
    reduction_hyperparameter,
)
from calibkit.errors import InputError
from calibkit.metrics.binning import MAX_BINS, assign_width_bins, mass_bin_edges, width_bin_edges
from calibkit.sources.predictions import PredictionSource

__all__ = ["HistogramBinning", "fit_histogram_map"]

BinMap = tuple[NDArray[np.float64], NDArray[np.float64]]  # (upper edges, values)


def fit_histogram_map(
    x: NDArray[np.float64], t: NDArray[np.float64], bins: int, binning: str
) -> BinMap:
    """The bins' upper edges and values for scores ``x`` and targets ``t`` (module docstring)."""
    if binning == "width":
        edges = width_bin_edges(bins)
        upper = edges[1:]
        idx = assign_width_bins(x, bins)
        size = bins
    else:
        upper = np.unique(mass_bin_edges(x, bins))
        idx = np.minimum(np.searchsorted(upper, x, side="left"), upper.size - 1)
        size = upper.size
        edges = np.concatenate(([0.0], upper))
    counts = np.bincount(idx, minlength=size)
    sums = np.bincount(idx, weights=t, minlength=size)
    mid = (edges[:-1] + edges[1:]) / 2
    values = np.where(counts > 0, sums / np.maximum(counts, 1), mid)
    return upper.astype(np.float64), np.clip(values, 0.0, 1.0)


def apply_histogram_map(m: BinMap, x: NDArray[np.float64]) -> NDArray[np.float64]:
    upper, values = m
    idx = np.minimum(np.searchsorted(upper, x, side="left"), upper.size - 1)
    out: NDArray[np.float64] = values[idx]
    return out


@dataclass(frozen=True, eq=False)
class HistogramBinning(ReducedCalibrator):
    """Histogram binning (method ``"histogram"``; see the module docstring).

    Its display parameter is ``bins`` (the number asked for); the edges and values of each map
    are in its JSON document (``maps``).
    """

    method: ClassVar[str] = "histogram"
    title: ClassVar[str] = "histogram binning"
    abbreviation: ClassVar[str] = "HB"
    calibrated_as: ClassVar[str] = "histogram-binned"
    symbols: ClassVar[Mapping[str, str]] = {"bins": "bins"}
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = (
        reduction_hyperparameter(),
        Hyperparameter("bins", int, "the number of bins", default=15, minimum=1),
        Hyperparameter(
            "binning",
            str,
            "'width' (equal-width bins) or 'mass' (equal-mass bins; ties never split)",
            default="width",
            choices=("width", "mass"),
        ),
    )

    bins: int = 15
    binning: str = "width"

    @classmethod
    def fit_source(
        cls,
        source: PredictionSource,
        *,
        chunk_rows: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> HistogramBinning:
        """Bin the (score, target) pairs of ``source`` by the reduction (``device``: unused)."""
        reduction, opts = cls.prepare(source, options)
        bins = int(opts["bins"])
        if bins > MAX_BINS:
            from calibkit.errors import Param, UsageError

            raise UsageError(Param("params").entry("bins") + f": at most {MAX_BINS}; got {bins}")
        x, t = collect_columns(source, reduction, chunk_rows=chunk_rows)
        maps = tuple(
            fit_histogram_map(x[:, m], t[:, m], bins, opts["binning"]) for m in range(x.shape[1])
        )
        return cls(
            maps=maps,
            reduction=reduction,
            n_classes=source.n_classes,
            fitted_on=source.source,
            input_kind="probs" if source.kind == "probs" else "logits",
            n=int(x.shape[0]),
            bins=bins,
            binning=opts["binning"],
        )

    def parameters(self) -> dict[str, float]:
        return {"bins": self.bins}

    def map_values(self, cols: Columns) -> NDArray[np.float64]:
        """Every column's bin value at once: equal-width maps share their edges (one bin
        assignment of the chunk); equal-mass ones count the edges below each score against
        the maps' edges padded to one length (``(n, M, bins)`` booleans, no loop)."""
        x = cols.p
        size = max(u.size for u, _ in self.maps)
        values = np.zeros((len(self.maps), size))
        upper = np.full((len(self.maps), size), np.inf)
        last = np.empty(len(self.maps), dtype=np.intp)
        for m, (u, v) in enumerate(self.maps):  # the maps' tables (M of them), not the rows
            values[m, : v.size], upper[m, : u.size], last[m] = v, u, u.size - 1
        if self.binning == "width" and all(u.size == self.bins for u, _ in self.maps):
            idx = assign_width_bins(x, self.bins)
        else:
            idx = np.count_nonzero(upper[None, :, :] < x[:, :, None], axis=2)
            np.minimum(idx, last[None, :], out=idx)
        out: NDArray[np.float64] = values[np.arange(len(self.maps))[None, :], idx]
        return out

    def fit_details(self) -> dict[str, Any]:
        return {
            **super().fit_details(),
            "histogram_binning": self.binning,  # "binning" is the report's ECE binning
            "steps": sum(int(u.size) for u, _ in self.maps),
        }

    def extra_json(self) -> dict[str, Any]:
        return {"bins": self.bins, "binning": self.binning}

    @classmethod
    def extra_from_json(cls, doc: dict[str, Any], source: str) -> dict[str, Any]:
        bins, binning = doc.get("bins"), doc.get("binning")
        if type(bins) is not int or not 1 <= bins <= MAX_BINS:
            raise InputError(source, f"bins must be an integer in [1, {MAX_BINS}]; got {bins!r}")
        if binning not in ("width", "mass"):
            raise InputError(source, f"binning must be 'width' or 'mass'; got {binning!r}")
        return {"bins": bins, "binning": binning}

    def maps_to_json(self) -> list[Any]:
        return [{"upper_edges": u.tolist(), "values": v.tolist()} for u, v in self.maps]

    @classmethod
    def maps_from_json(cls, maps: list[Any], source: str) -> Any:
        out = []
        for i, m in enumerate(maps):
            if not isinstance(m, dict):
                raise InputError(source, f"maps[{i}] must be a JSON object")
            upper = float_list(
                m.get("upper_edges"), source, f"maps[{i}].upper_edges", low=0, high=1
            )
            values = float_list(
                m.get("values"), source, f"maps[{i}].values", low=0, high=1, size=upper.size
            )
            if (np.diff(upper) <= 0).any():
                raise InputError(source, f"maps[{i}].upper_edges must be strictly increasing")
            out.append((upper, values))
        return tuple(out)


registry.register(HistogramBinning.method, HistogramBinning)
_IS_A_CALIBRATOR: type[Calibrator] = HistogramBinning  # mypy checks the protocol here
