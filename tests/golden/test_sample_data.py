"""Golden numbers on the bundled sample_data (see sample_data/README.md).

The values were produced by calibkit and agree, to the 4 digits printed there, with the
independent numpy computation in sample_data/make_sample_data.py. Tolerance: 1e-9 absolute, far
above float64 summation-order noise and far below any meaningful change.
"""

from pathlib import Path

import numpy as np
import pytest

import calibkit
from calibkit.metrics import summarize

DATA = Path(__file__).resolve().parents[2] / "sample_data"

GOLDEN = [
    # name, n, accuracy, ece (15 width bins), nll, brier
    ("digits_hard_test", 450, 0.8777777777777778, 0.08761067552259315, 0.5195533001246552, 0.19959706366626834),
    ("digits_hard_val", 449, 0.8641425389755011, 0.10284340791030691, 0.6698062273180858, 0.2263380303483153),
    ("digits_ls05_test", 450, 0.9288888888888889, 0.1008323872112323, 0.3044574840748695, 0.12728271400693913),
    ("digits_ls05_val", 449, 0.9086859688195991, 0.10056688756110159, 0.3468984663837249, 0.14862474032965298),
    ("digits_ls10_test", 450, 0.9222222222222223, 0.15384876220440089, 0.3785944289796062, 0.14810596299782694),
    ("digits_ls10_val", 449, 0.910913140311804, 0.1562763065935242, 0.414910583062473, 0.169912271062723),
    ("digits_ls20_test", 450, 0.9222222222222223, 0.24164133545768066, 0.502805689647287, 0.19447632782052085),
    ("digits_ls20_val", 449, 0.910913140311804, 0.24082224964546756, 0.5320346431017902, 0.20976329511261255),
]  # fmt: skip


@pytest.mark.parametrize(("name", "n", "accuracy", "ece", "nll", "brier"), GOLDEN)
@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_golden_metrics(name, n, accuracy, ece, nll, brier, suffix) -> None:
    s = summarize(calibkit.read_predictions(DATA / f"{name}{suffix}"), n_bins=15)
    assert s.n == n and s.n_classes == 10
    assert s.accuracy == pytest.approx(accuracy, abs=1e-12)
    assert s.ece == pytest.approx(ece, abs=1e-9)
    assert s.nll == pytest.approx(nll, abs=1e-9)
    assert s.brier == pytest.approx(brier, abs=1e-9)


@pytest.mark.parametrize("name", [g[0] for g in GOLDEN])
def test_npz_and_parquet_give_identical_results(name) -> None:
    a = summarize(calibkit.read_predictions(DATA / f"{name}.npz"), binning="mass")
    b = summarize(calibkit.read_predictions(DATA / f"{name}.parquet"), binning="mass")
    for m in ("ece", "mce", "rmsce", "nll", "brier", "accuracy"):
        assert getattr(a, m) == getattr(b, m)


def test_sample_data_tells_the_story_it_is_documented_to_tell() -> None:
    hard = summarize(calibkit.read_predictions(DATA / "digits_hard_test.npz"))
    ls20 = summarize(calibkit.read_predictions(DATA / "digits_ls20_test.npz"))
    assert hard.mean_confidence > hard.accuracy  # hard labels: over-confident
    assert ls20.mean_confidence < ls20.accuracy  # strong smoothing: under-confident
    labels = [
        np.load(DATA / f"digits_{m}_test.npz")["labels"] for m in ("hard", "ls05", "ls10", "ls20")
    ]
    assert all((lab == labels[0]).all() for lab in labels)
