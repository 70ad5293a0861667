"""Per-class calibration, top-k accuracy and the Brier score decomposition: one extra pass.

Class-wise ECE (Kull et al. 2019, "Beyond temperature scaling"; the static calibration error of
Nixon et al. 2019)
    For every class ``k``, the binned ECE of ``p_k`` against the indicator ``y = k`` over all N
    examples (``M`` equal-width bins of ``p_k``); ``classwise_ece`` is the mean over classes. It
    sees miscalibration of the non-top classes that the top-label ECE ignores.

Top-k accuracy
    Share of rows whose label is among the ``k`` highest scores (ties ranked by index, first
    first, as for the argmax).

Brier decomposition (Murphy 1973, with the within-bin terms of Stephenson et al. 2008)
    For each class ``k`` the forecasts ``p_k`` are binned (``M`` equal-width bins); with ``o``
    the outcome (``1[y = k]``, or the soft label), per bin mean forecast ``f_b`` and mean outcome
    ``o_b``, summed over classes:

    * reliability ``REL = (1/N) sum n_b (f_b - o_b)^2``
    * resolution ``RES = (1/N) sum n_b (o_b - o_bar)^2``
    * uncertainty ``UNC = sum_k Var(o_k)`` (``o_bar (1 - o_bar)`` per class for hard labels)
    * within-bin variance ``WBV = (1/N) sum_b sum_(i in b) (p_i - f_b)^2`` and within-bin
      covariance ``WBC = (1/N) sum_b sum_(i in b) (p_i - f_b)(o_i - o_b)``

    and ``Brier = REL - RES + UNC + WBV - 2 WBC`` holds exactly. Binned forecasts make REL, RES and
    UNC alone not add up; the two within-bin terms are the remainder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.engine.passes import Chunk, run_pass
from calibkit.errors import UsageError
from calibkit.metrics.binning import assign_width_bins, check_n_bins
from calibkit.metrics.softmax import softmax
from calibkit.sources.predictions import PredictionSource, refuse_ragged

__all__ = ["BrierDecomposition", "ClassStatistics", "class_statistics"]


@dataclass(kw_only=True, frozen=True)
class BrierDecomposition:
    brier: float
    reliability: float
    resolution: float
    uncertainty: float
    within_bin_variance: float
    within_bin_covariance: float
    n_bins: int

    @property
    def total(self) -> float:
        """``REL - RES + UNC + WBV - 2 WBC``: equals ``brier`` up to rounding."""
        return (
            self.reliability
            - self.resolution
            + self.uncertainty
            + self.within_bin_variance
            - 2 * self.within_bin_covariance
        )


@dataclass(frozen=True, eq=False)
class ClassStatistics:
    class_ece: NDArray[np.float64]  # (K,)
    classwise_ece: float
    top_k: dict[int, float]
    brier: BrierDecomposition
    n_bins: int

    def worst_classes(self, count: int = 10) -> list[tuple[int, float]]:
        order = np.argsort(-self.class_ece, kind="stable")[:count]
        return [(int(k), float(self.class_ece[k])) for k in order]


def _probs(scores: NDArray[Any], kind: str) -> NDArray[np.float64]:
    if kind == "logits":
        p: NDArray[np.float64] = softmax(scores)
        return p
    out: NDArray[np.float64] = scores.astype(np.float64)
    return out


def _chunk(
    scores: NDArray[Any], labels: NDArray[Any], kind: str, m: int, ks: Sequence[int]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    n, k = scores.shape
    p = _probs(scores, kind)
    rows = np.arange(n)
    if labels.ndim == 1:
        o = np.zeros((n, k))
        o[rows, labels] = 1.0
        y = labels
    else:
        o = labels.astype(np.float64)
        y = o.argmax(axis=1)
    key = (assign_width_bins(p.ravel(), m).reshape(n, k) + np.arange(k) * m).ravel()
    pf, of = p.ravel(), o.ravel()
    size = k * m
    sums = np.stack(
        [
            np.bincount(key, minlength=size).astype(np.float64),
            np.bincount(key, weights=pf, minlength=size),
            np.bincount(key, weights=of, minlength=size),
            np.bincount(key, weights=pf * pf, minlength=size),
            np.bincount(key, weights=of * of, minlength=size),
            np.bincount(key, weights=pf * of, minlength=size),
        ]
    )
    s_y = scores[rows, y][:, None]
    cols = np.arange(k)[None, :]
    rank = ((scores > s_y) | ((scores == s_y) & (cols < y[:, None]))).sum(axis=1)
    hits = np.array([int(np.count_nonzero(rank < kk)) for kk in ks], dtype=np.int64)
    return sums, hits


def class_statistics(
    source: PredictionSource,
    *,
    n_bins: int = 15,
    top_k: Sequence[int] = (1, 5),
    chunk_rows: int | None = None,
) -> ClassStatistics:
    """Class-wise ECE, top-k accuracy and the Brier decomposition (module docstring); one pass."""
    if source.kind not in ("logits", "probs"):
        raise UsageError(
            f"{source.source}: class-wise statistics need logits or probabilities, not "
            "confidence-only rows"
        )
    refuse_ragged(source, "class-wise statistics")
    m = check_n_bins(n_bins)
    k = source.n_classes
    ks = tuple(int(x) for x in top_k)
    total = np.zeros((6, k * m))
    hits = np.zeros(len(ks), dtype=np.int64)
    kind = source.kind

    def chunk(c: Chunk) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        return _chunk(c.scores, c.labels, kind, m, ks)

    def merge(part: tuple[NDArray[np.float64], NDArray[np.int64]]) -> None:
        nonlocal total, hits
        total += part[0]  # in chunk order: independent of the executor
        hits += part[1]

    run_pass(source, chunk, merge, chunk_rows=chunk_rows)
    n = round(float(total[0].sum()) / k)  # every row puts one count per class
    cnt, sp, so, spp, soo, spo = (t.reshape(k, m) for t in total)
    class_ece = np.abs(so - sp).sum(axis=1) / n
    filled = cnt > 0
    safe = np.where(filled, cnt, 1.0)
    rel = float(((sp - so) ** 2 / safe)[filled].sum() / n)
    o_bar = so.sum(axis=1) / n  # per class
    res = float((((so / safe) - o_bar[:, None]) ** 2 * cnt)[filled].sum() / n)
    unc = float((soo.sum(axis=1) / n - o_bar**2).sum())
    wbv = float((spp - sp**2 / safe)[filled].sum() / n)
    wbc = float((spo - sp * so / safe)[filled].sum() / n)
    brier = float((spp - 2 * spo + soo).sum() / n)
    return ClassStatistics(
        class_ece=class_ece,
        classwise_ece=float(class_ece.mean()),
        top_k={kk: float(h / n) for kk, h in zip(ks, hits, strict=True)},
        brier=BrierDecomposition(
            brier=brier,
            reliability=rel,
            resolution=res,
            uncertainty=unc,
            within_bin_variance=wbv,
            within_bin_covariance=wbc,
            n_bins=m,
        ),
        n_bins=m,
    )
