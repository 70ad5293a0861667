"""HELM's calibration metrics and selective prediction: calibkit against Kumar's package.

    python benchmarks/bench_llm.py                 # N = 10^4, 10^5, 10^6
    python benchmarks/bench_llm.py --quick         # N = 10^4, 10^5

HELM computes ``ece_10_bin``, ``ece_1_bin``, ``selective_cov_acc_area`` and ``selective_acc@10``
with Kumar's ``uncertainty-calibration`` (``import calibration``; the ``dev`` extra installs it).
Both are timed on the same (confidence, correctness) arrays, and their numbers compared:

* ``ece_10_bin``: ``calibkit.metrics.correctness.helm_ece`` vs ``calibration.get_ece_em``;
* selective: ``risk_coverage`` + ``aurc_of`` (calibkit keeps tied confidences together) vs
  ``calibration.get_selective_stats``;
* AUROC of correctness: ``auroc_correct`` vs ``sklearn.metrics.roc_auc_score``;
* the whole ``calibkit selective`` set (``correctness_metrics``: every number above plus smooth
  ECE, Brier, NLL, the in-sample and 10-fold cross-fitted Platt and temperature fits), which no
  peer computes in one call: its time is the cost of the command's metrics.

Confidences are continuous (no ties: the numbers must agree to 1e-12) or verbalised (eleven
values, 0.0 .. 1.0: calibkit averages over the orders of tied rows, Kumar takes ``argsort``'s,
so the selective numbers differ; ``ece_10_bin`` still agrees). Each time is the best of
``--repeats`` runs (wall clock, ``time.perf_counter``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from calibkit.metrics.correctness import (
    aurc_of,
    auroc_correct,
    correctness_metrics,
    helm_ece,
    risk_coverage,
)


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _data(n: int, ties: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident pairs: a Beta(5, 2) confidence, correct with probability ``c^1.3``."""
    rng = np.random.default_rng(seed)
    conf = rng.beta(5, 2, n)
    if ties:
        conf = np.round(conf * 10) / 10
    correct = (rng.random(n) < conf**1.3).astype(np.int64)  # over-confident; Kumar wants ints
    return conf, correct


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="N up to 10^5")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    try:
        import calibration as kumar
    except ImportError:
        raise SystemExit("needs Kumar's package: pip install uncertainty-calibration") from None
    from sklearn.metrics import roc_auc_score

    sizes = (10_000, 100_000) if args.quick else (10_000, 100_000, 1_000_000)
    print(f"{'N':>9} {'input':>10} {'metric':<22} {'calibkit s':>11} {'peer s':>9} "
          f"{'speed-up':>8}  agreement")  # fmt: skip
    for n in sizes:
        for ties in (False, True):
            _compare(n, ties, args.repeats, kumar, roc_auc_score)


def _compare(n: int, ties: bool, repeats: int, kumar: Any, roc_auc_score: Any) -> None:
    """One size and kind of input: every metric, calibkit's time and the peer's."""
    conf, correct = _data(n, ties)
    what = "verbalised" if ties else "continuous"
    t_ours, ours = _best(lambda: helm_ece(conf, correct, 10), repeats)
    t_peer, peer = _best(lambda: kumar.get_ece_em(conf, correct, num_bins=10), repeats)
    _row(n, what, "ece_10_bin", t_ours, t_peer, f"|diff| {abs(ours - peer):.1e}")

    def ours_selective() -> tuple[float, float]:
        curve = risk_coverage(conf, correct)
        top = int(0.1 * n) + 1  # HELM's selective_acc@10: the int(0.1 N) + 1 top rows
        return 1 - aurc_of(curve), 1 - float(curve.cumulative_errors()[top - 1]) / top

    t_ours, (area, acc10) = _best(ours_selective, repeats)
    t_peer, (p_area, p_acc10) = _best(lambda: kumar.get_selective_stats(conf, correct), repeats)
    agree = f"|diff| {abs(area - p_area):.1e}, {abs(acc10 - p_acc10):.1e}"
    _row(n, what, "selective (area, @10)", t_ours, t_peer, agree)
    t_ours, (auc, _) = _best(lambda: auroc_correct(conf, correct), repeats)
    t_peer, p_auc = _best(lambda: roc_auc_score(correct, conf), repeats)
    _row(n, what, "AUROC (vs sklearn)", t_ours, t_peer, f"|diff| {abs(auc - p_auc):.1e}")
    t_all, _ = _best(lambda: correctness_metrics(conf, correct), 1)
    _row(n, what, "all of `selective`", t_all, None, "-")


def _row(n: int, what: str, metric: str, ours: float, peer: float | None, agree: str) -> None:
    speed = "-" if peer is None else f"{peer / ours:.1f}x"
    peer_s = "-" if peer is None else f"{peer:.4f}"
    print(f"{n:>9} {what:>10} {metric:<22} {ours:>11.4f} {peer_s:>9} {speed:>8}  {agree}")


if __name__ == "__main__":
    main()
