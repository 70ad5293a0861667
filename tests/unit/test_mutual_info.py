"""The §4 mutual-information estimate (calibkit.diagnostics.mutual_info) and the reader of
(N, L, K) logits (calibkit.loaders.augmented), against a direct O(n^2 L) formula written here,
hand-checked limits, invariances and the sample data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calibkit.diagnostics.classes import most_frequent
from calibkit.diagnostics.mutual_info import (
    class_entropy,
    estimate_mutual_information,
    logit_differences,
    mutual_information,
)
from calibkit.errors import InputError, UsageError
from calibkit.loaders.augmented import read_augmented
from calibkit.loaders.class_names import read_class_names

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def direct(f: np.ndarray, ddof: int = 1) -> tuple[float, float]:
    """The estimate as written in the issue, the whole (n, L, n) array at once, with a plain
    log of a plain sum (fine for moderate values)."""
    f = np.asarray(f, dtype=np.float64)
    n, n_aug = f.shape
    mu = f.mean(axis=1)
    s2 = float(((f - mu[:, None]) ** 2).sum() / (n * (n_aug - ddof)))
    d2 = (f[:, :, None] - mu[None, None, :]) ** 2  # [x, l, x']
    own = -((f - mu[:, None]) ** 2) / (2 * s2)
    mix = np.log(np.exp(-d2 / (2 * s2)).sum(axis=2) / n)
    return float((own - mix).mean()), s2


def direct_from_logits(z: np.ndarray, y: np.ndarray, a: int, b: int) -> float:
    rows = [x for x in range(len(y)) if y[x] in (a, b)]
    f = np.array([[float(z[x, v, a]) - float(z[x, v, b]) for v in range(z.shape[1])] for x in rows])
    return direct(f)[0]


# the formula ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize(("n", "n_aug"), [(2, 2), (5, 3), (40, 8), (97, 2)])
def test_matches_the_direct_formula(
    rng: np.random.Generator, n: int, n_aug: int, ddof: int
) -> None:
    f = rng.normal(size=(n, 1)) * 2 + rng.normal(size=(n, n_aug))
    value, s2 = mutual_information(f, ddof=ddof)
    want, want_s2 = direct(f, ddof)
    assert s2 == pytest.approx(want_s2, rel=1e-13)
    assert value == pytest.approx(want, rel=1e-11, abs=1e-12)


def test_the_variance_divides_by_n_times_l_minus_ddof() -> None:
    f = np.array([[0.0, 2.0], [10.0, 14.0]])  # deviations +-1 and +-2: sum of squares 10
    assert mutual_information(f, ddof=1)[1] == 10 / (2 * 1)
    assert mutual_information(f, ddof=0)[1] == 10 / (2 * 2)


def test_a_hand_computed_value() -> None:
    """Two examples, L = 2: f = [[-1, 1], [1, 3]]: means 0 and 2, sigma^2 = 4 / 2 = 2 (ddof 1).
    Each value lies at distance 1 from its own mean and 1 or 3 from the other's."""
    f = np.array([[-1.0, 1.0], [1.0, 3.0]])
    q = 1 / 4  # 1 / (2 sigma^2)
    near = -q - math.log((math.exp(-q) + math.exp(-q)) / 2)  # equidistant: 0
    far = -q - math.log((math.exp(-q) + math.exp(-9 * q)) / 2)
    assert near == pytest.approx(0.0, abs=1e-15)
    assert mutual_information(f)[0] == pytest.approx((near + far) / 2, rel=1e-14)


def test_the_estimate_from_logits_matches_the_direct_formula(rng: np.random.Generator) -> None:
    z = rng.normal(size=(60, 5, 4)).astype(np.float32)
    z[:, :, 2] += rng.normal(size=(60, 1)).astype(np.float32) * 3
    y = rng.integers(0, 4, size=60)
    got = estimate_mutual_information(z, y, (2, 0))
    assert got.nats == pytest.approx(direct_from_logits(z, y, 2, 0), rel=1e-11)
    assert got.counts == (int((y == 2).sum()), int((y == 0).sum()))
    assert got.n_augmentations == 5 and got.classes == (2, 0)
    assert got.bits == got.nats / math.log(2)
    assert got.log_n == math.log(got.n)


def test_the_differences_are_z_a_minus_z_b_of_the_two_classes_in_float64() -> None:
    z = np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 2, 3) ** 1.5
    y = np.array([2, 0, 1, 2])
    f, counts = logit_differences(z, y, (2, 1))
    rows = [0, 3, 2]  # class 2 first, then class 1, each in file order
    want = z[rows, :, 2].astype(np.float64) - z[rows, :, 1].astype(np.float64)
    assert f.dtype == np.float64 and counts == (2, 1)
    np.testing.assert_array_equal(f, want)


# limits --------------------------------------------------------------------------------------


def test_examples_with_one_mean_give_exactly_zero(rng: np.random.Generator) -> None:
    """Every example sees the same augmentation offsets: all means coincide."""
    offsets = rng.normal(size=6)
    f = 3.0 + np.tile(offsets, (50, 1))
    assert mutual_information(f)[0] == pytest.approx(0.0, abs=1e-12)


def test_indistinguishable_examples_give_nearly_zero(rng: np.random.Generator) -> None:
    """i.i.d. noise around one value: the means differ only by noise of variance s^2 / L."""
    value = mutual_information(rng.normal(size=(200, 50)))[0]
    assert 0.0 <= value < 0.02


def test_well_separated_examples_give_nearly_log_n(rng: np.random.Generator) -> None:
    n = 30
    f = 10.0 * np.arange(n)[:, None] + 1e-3 * rng.normal(size=(n, 4))
    assert mutual_information(f)[0] == pytest.approx(math.log(n), abs=1e-9)


@pytest.mark.parametrize(("n_a", "n_b"), [(20, 20), (3, 7)])
def test_two_tight_clusters_give_the_class_entropy(
    rng: np.random.Generator, n_a: int, n_b: int
) -> None:
    """Within a cluster every example has the same augmentations (so the same mean); the two
    clusters lie far apart: only the class can be told from the gap."""
    offsets = rng.normal(size=5)
    f = np.concatenate([np.tile(offsets, (n_a, 1)), 100.0 + np.tile(offsets, (n_b, 1))])
    value = mutual_information(f)[0]
    assert value == pytest.approx(class_entropy([n_a, n_b]), abs=1e-12)
    if n_a == n_b:
        assert value == pytest.approx(math.log(2), abs=1e-12)


def test_class_entropy() -> None:
    assert class_entropy([5, 5]) == pytest.approx(math.log(2))
    assert class_entropy([1, 3]) == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))
    assert class_entropy([4, 0]) == 0.0


@settings(deadline=None, max_examples=60)
@given(
    n=st.integers(2, 12),
    n_aug=st.integers(2, 5),
    seed=st.integers(0, 2**32 - 1),
    spread=st.floats(0.0, 5.0),
    scale=st.floats(1e-3, 1e3),
)
def test_stays_within_zero_and_log_n(
    n: int, n_aug: int, seed: int, spread: float, scale: float
) -> None:
    rng = np.random.default_rng(seed)
    f = scale * (
        spread * rng.normal(size=(n, 1))
        + rng.exponential(size=(n, 1)) * rng.normal(size=(n, n_aug))
    )
    value = mutual_information(f)[0]
    assert -1e-9 <= value <= math.log(n) + 1e-12
    assert value == pytest.approx(direct(f)[0], rel=1e-9, abs=1e-9)


# invariances ---------------------------------------------------------------------------------


@pytest.fixture
def f(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(70, 1)) * 1.5 + rng.normal(size=(70, 6)) * rng.uniform(0.5, 2, (70, 1))


def test_the_order_of_the_examples_does_not_matter(rng: np.random.Generator, f: np.ndarray) -> None:
    want = mutual_information(f)[0]
    assert mutual_information(f[rng.permutation(len(f))])[0] == pytest.approx(want, rel=1e-13)


def test_the_order_of_the_augmentations_does_not_matter(
    rng: np.random.Generator, f: np.ndarray
) -> None:
    """Each example's augmentations shuffled on their own: the pairing across examples is
    not part of the estimate."""
    shuffled = np.array([row[rng.permutation(row.size)] for row in f])
    assert mutual_information(shuffled)[0] == pytest.approx(mutual_information(f)[0], rel=1e-13)


@pytest.mark.parametrize("block", [1, 2, 7, 69, 70, 71, 420, 10_000])
def test_the_block_size_does_not_matter(f: np.ndarray, block: int) -> None:
    want = mutual_information(f)[0]
    assert mutual_information(f, block=block)[0] == pytest.approx(want, rel=1e-13)


def test_the_scale_of_the_gap_does_not_matter(f: np.ndarray) -> None:
    """sigma^2 scales with the gap: the estimate is a function of f / sigma."""
    want = mutual_information(f)[0]
    assert mutual_information(f * 37.5)[0] == pytest.approx(want, rel=1e-12)


def test_a_shift_of_the_logits_changes_nothing(rng: np.random.Generator) -> None:
    """A constant added to all logits, or to each (example, augmentation) row (softmax's own
    invariance), leaves the gaps and so the estimate unchanged; |logit| = 1e4 loses nothing."""
    z = rng.normal(size=(80, 4, 3))
    z[:, :, 0] += rng.normal(size=(80, 1)) * 2
    y = rng.integers(0, 3, size=80)
    want = estimate_mutual_information(z, y, (0, 1)).nats
    for shifted in (z + 1e4, z - 1e4, z + rng.normal(size=(80, 4, 1)) * 1e4):
        got = estimate_mutual_information(shifted, y, (0, 1)).nats
        assert got == pytest.approx(want, rel=1e-9)


def test_huge_gaps_do_not_overflow() -> None:
    """Gaps of 2e4 with a spread of 1e-3: the kernel entries are ~ -1e14, the log-sum-exp
    stays finite and the examples are all told apart."""
    n = 20
    f = 2e4 * (np.arange(n)[:, None] / n) + 1e-3 * np.array([[-1.0, 1.0]])
    with np.errstate(all="raise"):
        value = mutual_information(f)[0]
    assert value == pytest.approx(math.log(n), abs=1e-12)


# refusals ------------------------------------------------------------------------------------


def test_identical_augmentations_are_refused() -> None:
    f = np.array([[0.1, 0.1, 0.1], [0.7, 0.7, 0.7], [1e4, 1e4, 1e4]])
    with pytest.raises(InputError, match="same under all its augmentations"):
        mutual_information(f, source="m.npz")


@pytest.mark.parametrize(
    ("f", "match"),
    [
        (np.zeros((1, 3)), "at least 2 examples"),
        (np.zeros((3, 1)), "L >= 2"),
        (np.array([[0.0, 1.0], [np.nan, 1.0]]), "not finite at example 1"),
        (np.array([[0.0, 1.0], [np.inf, 1.0]]), "not finite at example 1"),
    ],
)
def test_unusable_differences_are_refused(f: np.ndarray, match: str) -> None:
    with pytest.raises(InputError, match=match):
        mutual_information(f)


@pytest.mark.parametrize(
    ("shape", "match"),
    [((5, 3), r"shape \(N, L, K\)"), ((5, 1, 3), "L >= 2"), ((5, 3, 1), "K >= 2")],
)
def test_wrong_shapes_are_refused(shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(InputError, match=match):
        logit_differences(np.zeros(shape), np.zeros(5, np.int64), (0, 1))


def test_too_few_examples_of_the_two_classes_are_refused() -> None:
    z = np.random.default_rng(0).normal(size=(4, 3, 3))
    with pytest.raises(InputError, match="found 1 of 0 and 0 of 1"):
        logit_differences(z, np.array([0, 2, 2, 2]), (0, 1))


def test_a_class_named_twice_or_out_of_range_is_a_usage_error() -> None:
    z = np.zeros((4, 3, 3))
    with pytest.raises(UsageError, match="same class twice"):
        logit_differences(z, np.zeros(4, np.int64), (1, 1))
    with pytest.raises(UsageError, match="out of range"):
        logit_differences(z, np.zeros(4, np.int64), (0, 3))


# the reader ----------------------------------------------------------------------------------


def _augmented(rng: np.random.Generator, n: int = 30, n_aug: int = 4, k: int = 3) -> np.ndarray:
    return rng.normal(size=(n, n_aug, k)).astype(np.float32)


def test_reads_npz(tmp_path: Path, rng: np.random.Generator) -> None:
    z, y = _augmented(rng), rng.integers(0, 3, size=30)
    np.savez(tmp_path / "a.npz", logits=z, labels=y)
    got = read_augmented(tmp_path / "a.npz")
    np.testing.assert_array_equal(got.logits, z)
    np.testing.assert_array_equal(got.labels, y)
    assert got.shape == (30, 4, 3) and (got.logits_key, got.labels_key) == ("logits", "labels")


def test_reads_pt_with_named_keys(tmp_path: Path, rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    z, y = _augmented(rng), rng.integers(0, 3, size=30)
    torch.save({"aug_out": torch.from_numpy(z), "y_true": torch.from_numpy(y)}, tmp_path / "a.pt")
    got = read_augmented(tmp_path / "a.pt", logits_key="aug_out")
    np.testing.assert_array_equal(got.logits, z)
    assert got.labels_key == "y_true"


def test_parquet_is_refused_with_the_formats_that_hold_3d(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"labels": [0, 1]}), tmp_path / "a.parquet")
    with pytest.raises(InputError, match=r"not logits of shape \(N, L, K\).*\.npz or \.pt"):
        read_augmented(tmp_path / "a.parquet")


@pytest.mark.parametrize(
    ("logits", "labels", "match"),
    [
        (np.zeros((6, 3)), np.zeros(6, np.int64), r"found shape \(6, 3\) \(one view per example"),
        (np.zeros((6, 1, 3)), np.zeros(6, np.int64), "L = 1 augmentation"),
        (np.zeros((6, 2, 1)), np.zeros(6, np.int64), "K = 1 class"),
        (np.zeros((6, 2, 3)), np.zeros(5, np.int64), "5 labels for 6 examples"),
        (np.zeros((6, 2, 3)), np.full((6, 3), 1 / 3), "soft labels"),
        (np.zeros((6, 2, 3)), np.full(6, 3), r"outside \[0, 3\)"),
        (np.array(["x"] * 36).reshape(6, 2, 3), np.zeros(6, np.int64), "real numbers"),
    ],
)
def test_unusable_files_are_refused(
    tmp_path: Path, logits: np.ndarray, labels: np.ndarray, match: str
) -> None:
    np.savez(tmp_path / "bad.npz", logits=logits, labels=labels)
    with pytest.raises(InputError, match=match) as err:
        read_augmented(tmp_path / "bad.npz")
    assert str(err.value).startswith(f"{tmp_path / 'bad.npz'}: ")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_logits_are_refused_with_their_place(tmp_path: Path, bad: float) -> None:
    z = np.zeros((6, 2, 3), np.float32)
    z[4, 1, 2] = bad
    np.savez(tmp_path / "bad.npz", logits=z, labels=np.zeros(6, np.int64))
    with pytest.raises(InputError, match="at example 4, augmentation 1, class 2"):
        read_augmented(tmp_path / "bad.npz")


def test_missing_keys_are_named(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", scores=np.zeros((2, 2, 2)), labels=np.zeros(2, np.int64))
    with pytest.raises(
        InputError,
        match=r"no logits found; keys present: labels, scores \(name them with logits_key\)",
    ):
        read_augmented(tmp_path / "a.npz")
    with pytest.raises(InputError, match="key 'z' not found"):
        read_augmented(tmp_path / "a.npz", logits_key="z")


def test_class_names(tmp_path: Path) -> None:
    path = tmp_path / "names.txt"
    path.write_text("cat\ndog \nbird\n", encoding="utf-8")
    assert read_class_names(path, 3) == ("cat", "dog", "bird")
    with pytest.raises(InputError, match="holds 3 class names for 4 classes"):
        read_class_names(path, 4)
    path.write_text("cat\n\ndog\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2 is empty"):
        read_class_names(path)
    path.write_text("cat\ndog\ncat\n", encoding="utf-8")
    with pytest.raises(InputError, match="lines 1 and 3"):
        read_class_names(path)


# the sample data -----------------------------------------------------------------------------

#: calibkit's estimate on digits_{model}_test_augment.npz for the default classes (the two most
#: frequent labels, 1 and 3), computed once by this code; checked against the direct formula too.
GOLDEN = {"hard": 1.2699134786501625, "ls10": 1.0873772380866114}


@pytest.mark.parametrize("model", ["hard", "ls10"])
def test_golden_numbers_on_the_sample_data(model: str) -> None:
    data = read_augmented(SAMPLE / f"digits_{model}_test_augment.npz")
    classes = most_frequent(np.bincount(data.labels, minlength=10).tolist(), 2)
    assert classes == (1, 3)
    got = estimate_mutual_information(data.logits, data.labels, classes)
    assert got.nats == pytest.approx(GOLDEN[model], abs=1e-12)
    assert got.nats == pytest.approx(direct_from_logits(data.logits, data.labels, 1, 3), rel=1e-11)
    assert got.counts == (46, 46) and got.n_augmentations == 8


def test_progress_counts_every_value(rng: np.random.Generator) -> None:
    from calibkit.progress import Recorder, reporting

    rec = Recorder()
    with reporting(rec):
        mutual_information(rng.normal(size=(30, 4)), block=7, source="m.npz")
    (done,) = rec.tasks
    assert (done.description, done.total, done.done, done.finished) == (
        "m.npz: mutual information",
        120,
        120,
        True,
    )
