"""``--labels-from-counts``: (N, K) vote counts read as label distributions (ece, compare).

Every hostile file is made here in tmp_path: rows with no votes, negative, NaN and infinite
counts, (N,) labels, a parquet file with one label per row; each is one error line naming the
file (and the row), exit 2. Without the flag, whole-number (N, K) labels that are not
distributions are refused with a hint at the flag.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _cli import ece_json, invoke, one_error_line, run_json, write_npz
from typer.testing import CliRunner

from calibkit.errors import InputError
from calibkit.loaders import ReadOptions, read_predictions
from calibkit.sources.predictions import counts_to_distributions

DATA = Path(__file__).resolve().parents[2] / "sample_data"
VOTES = DATA / "digits_ls10_test_votes.npz"


def logits(n: int = 5, k: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, k))


def ece(*args: object) -> object:
    return invoke(CliRunner(), "ece", *args)


# --------------------------------------------------------------------------------------------
# the conversion


def test_counts_become_row_distributions() -> None:
    got = counts_to_distributions(np.array([[3, 1, 0], [0, 0, 2]]), 3, "v.npz")
    assert got.dtype == np.float64
    assert got.tolist() == [[0.75, 0.25, 0.0], [0.0, 0.0, 1.0]]
    reals = counts_to_distributions(np.array([[0.5, 1.5], [2.0, 2.0]]), 2, "v.npz")
    assert reals.tolist() == [[0.25, 0.75], [0.5, 0.5]]


def test_the_sample_votes_match_their_counts() -> None:
    with np.load(VOTES, allow_pickle=False) as f:
        votes = f["labels"]
    preds = read_predictions(VOTES, ReadOptions(labels_from_counts=True))
    labels = np.concatenate([y for _, y in preds.chunks()])
    np.testing.assert_array_equal(labels, votes / votes.sum(axis=1, keepdims=True))
    doc = ece_json(CliRunner(), VOTES, "--labels-from-counts")
    assert doc["soft_labels"] is True and doc["n"] == 450
    t = votes / votes.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(t > 0, t * np.log(t), 0.0).sum(axis=1).mean()
    assert doc["label_distribution"]["entropy_labels"] == pytest.approx(h, rel=1e-12)


# --------------------------------------------------------------------------------------------
# bad counts: one line naming the file and the row


@pytest.mark.parametrize(
    ("row", "value", "problem"),
    [
        (3, 0, "row 3 has no votes (its label counts sum to 0)"),
        (2, -1, "label counts are negative at row 2"),
        (4, np.nan, "label counts contain NaN or inf at row 4"),
        (1, np.inf, "label counts contain NaN or inf at row 1"),
    ],
)
def test_bad_counts_are_one_error_line(
    tmp_path: Path, row: int, value: float, problem: str
) -> None:
    counts = np.ones((5, 3))
    if value == 0:
        counts[row] = 0
    else:
        counts[row, 1] = value
    path = write_npz(tmp_path / "votes.npz", logits=logits(), labels=counts)
    message = one_error_line(ece(path, "--labels-from-counts"), path)
    assert message == problem


def test_hard_labels_with_the_flag_are_refused(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "hard.npz", logits=logits(), labels=np.array([0, 1, 2, 0, 1]))
    message = one_error_line(ece(path, "--labels-from-counts"), path)
    assert message == (
        "--labels-from-counts needs labels of shape (N, 3) (a count per class and row); "
        "found shape (5,)"
    )
    with pytest.raises(InputError, match=r"labels_from_counts=True needs labels of shape"):
        read_predictions(path, ReadOptions(labels_from_counts=True))


def test_counts_of_the_wrong_width_are_refused(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "wide.npz", logits=logits(), labels=np.ones((5, 4)))
    message = one_error_line(ece(path, "--labels-from-counts"), path)
    assert "found shape (5, 4)" in message


def test_counts_whose_sum_overflows_are_refused(tmp_path: Path) -> None:
    counts = np.ones((5, 3))
    counts[2] = [1e308, 1e308, 1.0]
    path = write_npz(tmp_path / "huge.npz", logits=logits(), labels=counts)
    message = one_error_line(ece(path, "--labels-from-counts"), path)
    assert message == "label counts of row 2 overflow float64"


def test_without_the_flag_whole_counts_get_a_hint(tmp_path: Path) -> None:
    counts = np.array([[3, 1, 0], [0, 2, 2], [1, 1, 1], [4, 0, 0], [0, 0, 1]])
    path = write_npz(tmp_path / "votes.npz", logits=logits(), labels=counts)
    message = one_error_line(ece(path), path)
    assert message == (
        "soft-label rows must sum to 1; row 0 sums to 4 (whole numbers: if they are vote "
        "counts, give --labels-from-counts)"
    )
    with pytest.raises(InputError, match=r"give labels_from_counts=True\)"):
        read_predictions(path)
    # fractional rows that do not sum to 1 are not counts: no hint
    path = write_npz(tmp_path / "off.npz", logits=logits(), labels=np.full((5, 3), 0.3))
    assert "labels-from-counts" not in one_error_line(ece(path), path)


def test_distributions_are_read_as_before_without_the_flag(tmp_path: Path) -> None:
    t = np.array([[0.5, 0.5, 0.0]] * 5)
    path = write_npz(tmp_path / "soft.npz", logits=logits(), labels=t)
    plain = ece_json(CliRunner(), path)
    counted = ece_json(CliRunner(), path, "--labels-from-counts")  # rows summing to 1: as is
    assert plain["nll"] == pytest.approx(counted["nll"], rel=1e-15)


# --------------------------------------------------------------------------------------------
# other formats and commands


def test_parquet_list_counts(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    z = logits(6, 3)
    counts = [[2, 1, 0], [0, 3, 0], [1, 1, 1], [0, 0, 5], [2, 2, 0], [1, 0, 0]]
    path = tmp_path / "votes.parquet"
    pq.write_table(pa.table({"logits": z.tolist(), "labels": counts}), path)
    preds = read_predictions(
        path,
        ReadOptions(labels_from_counts=True),
    )
    labels = np.concatenate([y for _, y in preds.chunks(chunk_rows=4)])
    c = np.array(counts, dtype=float)
    np.testing.assert_array_equal(labels, c / c.sum(axis=1, keepdims=True))
    bad = [[2, 1, 0], [0, 3, 0], [1, 1, 1], [0, 0, 5], [0, 0, 0], [1, 0, 0]]
    bad_path = tmp_path / "empty_row.parquet"
    pq.write_table(pa.table({"logits": z.tolist(), "labels": bad}), bad_path)
    message = one_error_line(ece(bad_path, "--labels-from-counts", "--chunk-rows", "3"), bad_path)
    assert message == "row 4 has no votes (its label counts sum to 0)"
    scalar = tmp_path / "scalar.parquet"
    pq.write_table(pa.table({"logits": z.tolist(), "labels": [0, 1, 2, 0, 1, 2]}), scalar)
    message = one_error_line(ece(scalar, "--labels-from-counts"), scalar)
    assert message.startswith("--labels-from-counts needs a list column of counts per class")


def test_compare_reads_the_evaluated_counts_and_the_val_file_as_it_is() -> None:
    doc = run_json(
        CliRunner(),
        "compare",
        f"ls10={VOTES}",
        "--val",
        f"ls10={DATA / 'digits_ls10_val.npz'}",
        "--labels-from-counts",
    )
    (model,) = doc["models"]
    assert model["label_distribution"]["n"] == 450
    assert model["ts_source"].endswith("digits_ls10_val.npz")


def test_compare_without_the_flag_hints_at_it() -> None:
    result = invoke(CliRunner(), "compare", f"ls10={VOTES}")
    message = one_error_line(result, VOTES)
    assert message.endswith("give --labels-from-counts)")


# --------------------------------------------------------------------------------------------
# the other commands that evaluate predictions take the flag too


def _distributions(tmp_path: Path) -> Path:
    """The sample votes with their counts divided by the row sums: what the flag must read."""
    with np.load(VOTES, allow_pickle=False) as f:
        z, votes = f["logits"], f["labels"]
    return write_npz(tmp_path / "dist.npz", logits=z, labels=votes / votes.sum(1, keepdims=True))


@pytest.mark.parametrize(
    "command",
    [
        ("check", "{}", "--max-ece", "0.5"),
        ("sweep-temp", "v={}", "--steps", "3"),
        ("teacher", "v={}", "--temperatures", "1,2"),
    ],
)
def test_evaluating_commands_read_counts_as_the_distributions(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    name, spec, *rest = command
    runner = CliRunner()
    counted = run_json(runner, name, spec.format(VOTES), *rest, "--labels-from-counts")
    direct = run_json(runner, name, spec.format(_distributions(tmp_path)), *rest)
    strip = {"source", "path", "file", "inputs", "calibkit_version"}

    def same(a: object, b: object) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            assert a.keys() == b.keys()
            for key in a:
                if key not in strip:
                    same(a[key], b[key])
        elif isinstance(a, list) and isinstance(b, list):
            assert len(a) == len(b)
            for x, y in zip(a, b, strict=True):
                same(x, y)
        elif isinstance(a, str) and isinstance(b, str) and str(VOTES) in a:
            pass
        else:
            assert a == b

    same(counted, direct)
    without = invoke(runner, name, spec.format(VOTES), *rest)
    assert "--labels-from-counts" in one_error_line(without, VOTES)


def test_diagram_reads_counts(tmp_path: Path) -> None:
    out = tmp_path / "d.png"
    result = invoke(CliRunner(), "diagram", f"v={VOTES}", "--labels-from-counts", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0


def test_soft_targets_reads_counts_and_copies_them(tmp_path: Path) -> None:
    runner = CliRunner()
    counted = run_json(
        runner, "soft-targets", VOTES, "--temperature", "2", "--out", tmp_path / "a.npz",
        "--labels-from-counts", quiet=False,
    )  # fmt: skip
    direct = run_json(
        runner, "soft-targets", _distributions(tmp_path), "--temperature", "2",
        "--out", tmp_path / "b.npz", quiet=False,
    )  # fmt: skip
    assert counted["gamma"] == direct["gamma"] and counted["entropy"] == direct["entropy"]
    with np.load(tmp_path / "a.npz") as f, np.load(VOTES) as v:
        np.testing.assert_array_equal(f["labels"], v["labels"])  # the file's labels, unchanged
