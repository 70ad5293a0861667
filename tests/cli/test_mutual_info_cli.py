"""`calibkit mutual-info`: the table and the JSON on the sample data, the class choice, and one
line with exit 2 for every unusable input (each crafted here in tmp_path)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from _cli import assert_ok, invoke, one_error_line, run_json, write_npz
from typer.testing import CliRunner

from calibkit.diagnostics.mutual_info import estimate_mutual_information

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
HARD = SAMPLE / "digits_hard_test_augment.npz"
LS10 = SAMPLE / "digits_ls10_test_augment.npz"
DIGITS = [str(d) for d in range(10)]


def _names(tmp_path: Path) -> Path:
    path = tmp_path / "names.txt"
    path.write_text("".join(f"digit{d}\n" for d in range(10)), encoding="utf-8")
    return path


def test_json_for_two_models_side_by_side(runner: CliRunner) -> None:
    out = run_json(runner, "mutual-info", f"hard={HARD}", f"ls10={LS10}")
    assert out["classes"] == [1, 3] and out["class_names"] is None and out["ddof"] == 1
    assert [m["name"] for m in out["models"]] == ["hard", "ls10"]
    for m, path in zip(out["models"], (HARD, LS10), strict=True):
        data = np.load(path)
        want = estimate_mutual_information(data["logits"], data["labels"], (1, 3))
        assert m["source"] == str(path)
        assert (m["n_examples"], m["n_augmentations"], m["n_classes"]) == (450, 8, 10)
        assert m["n"] == 92 and m["counts"] == [46, 46]
        assert m["mutual_info_nats"] == want.nats
        assert m["mutual_info_bits"] == pytest.approx(want.nats / math.log(2))
        assert m["sigma2"] == want.sigma2
        assert m["log_n"] == pytest.approx(math.log(92))
        assert m["log_2"] == pytest.approx(math.log(2)) == m["class_entropy"]
    assert out["models"][0]["mutual_info_nats"] == pytest.approx(1.2699134786501625, abs=1e-12)


def test_the_table(runner: CliRunner) -> None:
    result = invoke(runner, "mutual-info", HARD, f"ls10={LS10}", "--classes", "0,8")
    assert_ok(result)
    text = result.stdout
    assert "digits_hard_test_augment" in text and "ls10" in text  # a bare path: named by stem
    assert "a = 0, b = 8" in text
    data = np.load(HARD)
    want = estimate_mutual_information(data["logits"], data["labels"], (0, 8))
    assert f"{want.nats:.4f}" in text and f"{math.log(want.n):.4f}" in text
    assert f"{want.counts[0]} + {want.counts[1]}" in text


def test_classes_by_name(runner: CliRunner, tmp_path: Path) -> None:
    names = _names(tmp_path)
    by_name = run_json(
        runner, "mutual-info", HARD, "--classes", "digit4,digit9", "--class-names", names
    )
    by_index = run_json(runner, "mutual-info", HARD, "--classes", "4,9")
    assert by_name["classes"] == [4, 9] and by_name["class_names"] == ["digit4", "digit9"]
    assert by_name["models"][0]["mutual_info_nats"] == by_index["models"][0]["mutual_info_nats"]


def test_the_order_of_the_classes_does_not_matter(runner: CliRunner) -> None:
    """f and -f carry the same information."""
    ab = run_json(runner, "mutual-info", HARD, "--classes", "2,7")["models"][0]
    ba = run_json(runner, "mutual-info", HARD, "--classes", "7,2")["models"][0]
    assert ab["mutual_info_nats"] == pytest.approx(ba["mutual_info_nats"], rel=1e-13)
    assert ab["counts"] == ba["counts"][::-1]


def test_the_default_pair_is_one_for_all_models(runner: CliRunner, tmp_path: Path) -> None:
    """Label counts pooled over the files: alone, the first file's pair is (2, 1); both files'
    counts together (7, 6, 5) give (0, 1), for both models."""
    rng = np.random.default_rng(3)
    one = write_npz(
        tmp_path / "one.npz",
        logits=rng.normal(size=(9, 3, 3)),
        labels=np.array([2, 2, 2, 2, 1, 1, 1, 0, 0]),
    )
    two = write_npz(
        tmp_path / "two.npz",
        logits=rng.normal(size=(9, 3, 3)),
        labels=np.array([0, 0, 0, 0, 0, 1, 1, 1, 2]),
    )
    assert run_json(runner, "mutual-info", one)["classes"] == [2, 1]
    assert run_json(runner, "mutual-info", one, two)["classes"] == [0, 1]


# one-line errors -----------------------------------------------------------------------------


def _file(tmp_path: Path, logits: np.ndarray, labels: np.ndarray, name: str = "m.npz") -> Path:
    return write_npz(tmp_path / name, logits=logits, labels=labels)


@pytest.mark.parametrize(
    ("logits", "labels", "message"),
    [
        (
            np.zeros((6, 3)),
            np.zeros(6, np.int64),
            "logits 'logits' must have shape (N, L, K) (examples, augmentations, classes); found "
            "shape (6, 3) (one view per example: the mutual information needs L >= 2 "
            "augmentations of each)",
        ),
        (
            np.zeros((6, 1, 3)),
            np.zeros(6, np.int64),
            "logits 'logits' have L = 1 augmentation per example (shape (6, 1, 3)); the mutual "
            "information needs L >= 2",
        ),
        (
            np.zeros((6, 2, 1)),
            np.zeros(6, np.int64),
            "logits 'logits' have K = 1 class (shape (6, 2, 1)); needs K >= 2",
        ),
        (
            np.zeros((6, 2, 2, 2)),
            np.zeros(6, np.int64),
            "logits 'logits' must have shape (N, L, K) (examples, augmentations, classes); found "
            "shape (6, 2, 2, 2)",
        ),
        (
            np.tile(np.arange(6.0)[:, None, None], (1, 3, 2)),
            np.array([0, 1, 0, 1, 0, 1]),
            "every example's logits are the same under all its augmentations (within-example "
            "variance 0): the mutual information estimate is undefined",
        ),
    ],
)
def test_unusable_logits(
    runner: CliRunner, tmp_path: Path, logits: np.ndarray, labels: np.ndarray, message: str
) -> None:
    path = _file(tmp_path, logits, labels)
    assert one_error_line(invoke(runner, "mutual-info", path), path) == message


def test_too_few_examples_of_the_pair(runner: CliRunner, tmp_path: Path) -> None:
    path = _file(tmp_path, np.random.default_rng(0).normal(size=(4, 2, 3)), np.array([0, 2, 2, 2]))
    got = one_error_line(invoke(runner, "mutual-info", path, "--classes", "0,1"), path)
    assert got == (
        "needs examples of both classes 0 and 1 (at least 2 in all); found 1 of 0 and 0 of 1 "
        "(choose others with --classes)"
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_logits(runner: CliRunner, tmp_path: Path, bad: float) -> None:
    z = np.random.default_rng(0).normal(size=(6, 3, 3)).astype(np.float32)
    z[5, 2, 0] = bad
    path = _file(tmp_path, z, np.zeros(6, np.int64))
    got = one_error_line(invoke(runner, "mutual-info", path), path)
    assert got == f"logits 'logits' hold {bad} at example 5, augmentation 2, class 0"


def test_parquet(runner: CliRunner, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"logits": [[0.0, 1.0]] * 3, "labels": [0, 1, 0]}), path)
    got = one_error_line(invoke(runner, "mutual-info", path), path)
    assert got == (
        "a parquet column holds (N,) or (N, k) values, not logits of shape (N, L, K) under L "
        "augmentations; save them in an .npz or .pt file"
    )


def test_no_logits_key(runner: CliRunner, tmp_path: Path) -> None:
    path = write_npz(tmp_path / "m.npz", scores=np.zeros((4, 2, 2)), labels=np.zeros(4, np.int64))
    got = one_error_line(invoke(runner, "mutual-info", path), path)
    assert got == "no logits found; keys present: labels, scores (name them with --logits-key)"


def test_models_must_share_their_classes(runner: CliRunner, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a = _file(tmp_path, rng.normal(size=(6, 2, 3)), np.zeros(6, np.int64), "a.npz")
    b = _file(tmp_path, rng.normal(size=(6, 2, 4)), np.zeros(6, np.int64), "b.npz")
    got = one_error_line(invoke(runner, "mutual-info", a, b), b)
    assert got == f"holds K = 4 classes, {a} K = 3; the models must share their classes"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--classes", "1"], "--classes 1 names 1 classes; give exactly 2"),
        (["--classes", "3,3"], "--classes 3,3 names class 3 twice"),
        (["--classes", "3,10"], "--classes 3,10: class 10 is out of range [0, 10)"),
        (
            ["--classes", "cat,3"],
            "--classes cat,3: 'cat' is neither a class index nor a class name (no class names "
            "given)",
        ),
    ],
)
def test_bad_classes(runner: CliRunner, args: list[str], message: str) -> None:
    result = invoke(runner, "mutual-info", HARD, *args)
    assert one_error_line(result) == message


def test_wrong_number_of_class_names(runner: CliRunner, tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("a\nb\nc\n", encoding="utf-8")
    got = one_error_line(invoke(runner, "mutual-info", HARD, "--class-names", names), names)
    assert got == "holds 3 class names for 10 classes"


def test_a_device_as_class_names_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    import os

    device = tmp_path / "chr"
    os.symlink("/dev/null", device)  # only opened for reading, and refused before a read
    got = one_error_line(invoke(runner, "mutual-info", HARD, "--class-names", device), device)
    assert got == "is a character device; a class-names file must be a file"


def test_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "nope.npz"
    assert one_error_line(invoke(runner, "mutual-info", path), path) == "no such file"


def test_a_class_without_examples_is_never_one_of_the_pair(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Regression: with one class present the default pair took an absent second class and
    printed an estimate over 20 + 0 examples (class entropy -0.0)."""
    z = np.random.default_rng(1).normal(size=(20, 3, 4))
    path = _file(tmp_path, z, np.zeros(20, dtype=np.int64))
    got = one_error_line(invoke(runner, "mutual-info", path))
    assert got == (
        "needs 2 classes that occur in the labels; only 1 do (name the classes with --classes)"
    )
    got = one_error_line(invoke(runner, "mutual-info", path, "--classes", "0,3"), path)
    assert got.startswith("needs examples of both classes 0 and 3 (at least 2 in all)")
