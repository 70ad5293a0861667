"""Which parquet columns hold the scores: numbered families, prefixes, and ambiguous sets.

Every file is built in ``tmp_path``. The numbers read from a wide layout are checked against the
same matrix saved as an ``.npz`` (``probs``/``logits`` key), so a column read as the wrong
class, or one class read as a binary model, cannot pass. Refusals must be one
``calibkit: error: FILE: ...`` line with exit 2 and nothing on stdout.
"""

from __future__ import annotations

import json
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _cli import ece_json
from _cli import one_error_line as refused
from typer.testing import CliRunner

from calibkit.cli import app
from calibkit.errors import InputError
from calibkit.loaders import ReadOptions, read_predictions

N, K = 120, 3


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    """Logits of a 3-class model, and labels that agree with them most of the time."""
    rng = np.random.default_rng(12)
    z = rng.normal(0.0, 2.0, size=(N, K))
    y = np.where(rng.random(N) < 0.7, z.argmax(axis=1), rng.integers(0, K, N))
    return z, y


@pytest.fixture
def binary() -> tuple[np.ndarray, np.ndarray]:
    """``predict_proba`` of a binary model: columns p(y=0), p(y=1); skewed so that reading p0 as
    the positive class gives a very different ECE."""
    rng = np.random.default_rng(3)
    p1 = np.clip(rng.beta(5, 1.5, size=N), 1e-6, 1 - 1e-6)
    y = (rng.random(N) < p1).astype(np.int64)
    return np.column_stack([1 - p1, p1]), y


def write(path: Path, columns: dict[str, Any] | list[tuple[str, Any]]) -> Path:
    """A parquet file with these columns (a list of pairs allows repeated names)."""
    pairs = list(columns.items()) if isinstance(columns, dict) else columns
    table = pa.table([pa.array(v) for _, v in pairs], names=[n for n, _ in pairs])
    pq.write_table(table, path)
    return path


def reference(runner: CliRunner, tmp_path: Path, key: str, scores: np.ndarray, y: np.ndarray):
    path = tmp_path / f"reference_{key}.npz"
    np.savez(path, **{key: scores, "labels": y})
    return ece_json(runner, path)


def same_numbers(a: dict[str, Any], b: dict[str, Any]) -> None:
    for key in ("n", "n_classes", "accuracy", "ece", "nll", "brier"):
        assert a[key] == pytest.approx(b[key], rel=1e-12, abs=1e-15), key
    assert a["input"] == b["input"]


# --------------------------------------------------------------------------------------------
# item 3: p0, p1 and the binary positive class


def test_one_column_of_a_family_is_refused_not_read_as_binary(
    runner: CliRunner, tmp_path: Path, binary: tuple[np.ndarray, np.ndarray]
) -> None:
    p, y = binary
    path = write(tmp_path / "p.parquet", {"p0": p[:, 0], "p1": p[:, 1], "label": y})
    problem = refused(runner.invoke(app, ["ece", str(path), "--probs-key", "p0"]), path)
    assert problem == (
        "column 'p0' is one of the columns p0 .. p1, one per class, not a binary model's "
        "score; to read them all, name the prefix: --probs-key p"
    )
    for key, flag in (("p1", "--probs-key"), ("p_1", "--probs-key")):
        path = write(tmp_path / f"{key}.parquet", {"p_0": p[:, 0], "p_1": p[:, 1], "label": y})
        if key == "p1":
            path = write(tmp_path / "p1.parquet", {"p0": p[:, 0], "p1": p[:, 1], "label": y})
        assert "one per class" in refused(runner.invoke(app, ["ece", str(path), flag, key]), path)
    with pytest.raises(InputError, match="one per class"):
        read_predictions(path, ReadOptions(scores_key="p_1", kind="probs"))


@pytest.mark.parametrize("key", ["p", "p_", "P", None])
def test_the_prefix_reads_the_family(
    runner: CliRunner, tmp_path: Path, binary: tuple[np.ndarray, np.ndarray], key: str | None
) -> None:
    p, y = binary
    path = write(tmp_path / "p.parquet", {"p0": p[:, 0], "p1": p[:, 1], "label": y})
    got = ece_json(runner, path, *(["--probs-key", key] if key else []))
    want = reference(runner, tmp_path, "probs", p, y)
    same_numbers(got, want)
    assert got["input"] == "probs" and got["n_classes"] == 2
    # and not the numbers of p0 read as p(y = 1)
    wrong = reference(runner, tmp_path, "probs", p[:, 0], y)
    assert abs(got["ece"] - wrong["ece"]) > 0.3


@pytest.mark.parametrize(
    ("names", "kind"),
    [
        (["logit_0", "logit_1", "logit_2"], "logits"),
        (["logits_0", "logits_1", "logits_2"], "logits"),
        (["logit0", "logit1", "logit2"], "logits"),
        (["Logit_0", "Logit_1", "Logit_2"], "logits"),
        (["prob_0", "prob_1", "prob_2"], "probs"),
        (["probs_0", "probs_1", "probs_2"], "probs"),
        (["proba_0", "proba_1", "proba_2"], "probs"),
        (["p_0", "p_1", "p_2"], "probs"),
        (["p0", "p1", "p2"], "probs"),
        (["y_proba_0", "y_proba_1", "y_proba_2"], "probs"),
    ],
)
def test_common_families_are_found_without_a_key(
    runner: CliRunner,
    tmp_path: Path,
    data: tuple[np.ndarray, np.ndarray],
    names: list[str],
    kind: str,
) -> None:
    z, y = data
    scores = z if kind == "logits" else softmax(z)
    # columns out of order, and the labels first: the numbers decide the class
    cols = {"label": y, **{names[k]: scores[:, k] for k in (2, 0, 1)}}
    got = ece_json(runner, write(tmp_path / "w.parquet", cols))
    same_numbers(got, reference(runner, tmp_path, kind, scores, y))


@pytest.mark.parametrize("prefix", ["score", "model_a", "m"])
def test_any_named_prefix_reads_its_family(
    runner: CliRunner, tmp_path: Path, data: tuple[np.ndarray, np.ndarray], prefix: str
) -> None:
    z, y = data
    for sep in ("_", ""):
        cols = {f"{prefix}{sep}{k}": z[:, k] for k in range(K)} | {"label": y}
        path = write(tmp_path / f"named{sep}.parquet", cols)
        got = ece_json(runner, path, "--logits-key", prefix)
        same_numbers(got, reference(runner, tmp_path, "logits", z, y))


def test_zero_padded_numbers_are_one_family(
    runner: CliRunner, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    z, y = data
    cols = {f"logit_{k:02d}": z[:, k] for k in range(K)} | {"label": y}
    got = ece_json(runner, write(tmp_path / "pad.parquet", cols))
    same_numbers(got, reference(runner, tmp_path, "logits", z, y))


def test_pandas_integer_columns_read_as_probabilities_when_told(
    runner: CliRunner, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    """``pd.DataFrame(clf.predict_proba(X)).to_parquet``: columns named "0", "1", ..."""
    pd = pytest.importorskip("pandas")
    z, y = data
    p = softmax(z)
    frame = pd.DataFrame(p)
    frame["label"] = y
    path = tmp_path / "pandas.parquet"
    with warnings.catch_warnings():  # pandas: mixed-type column names become strings
        warnings.simplefilter("ignore", UserWarning)
        frame.to_parquet(path)
    assert pq.ParquetFile(path).schema_arrow.names[:K] == ["0", "1", "2"]
    want = reference(runner, tmp_path, "probs", p, y)
    same_numbers(ece_json(runner, path, "--input", "probs"), want)

    # without --input the names do not say what the numbers are: refused with a pointer to
    # --input, or (once the reader detects probabilities from the values) read as such; never
    # read as logits
    result = runner.invoke(app, ["ece", str(path), "--json"])
    if result.exit_code == 2:
        problem = refused(result, path)
        assert "--input" in problem and "0 .. 2" in problem
    else:
        assert result.exit_code == 0, result.output
        same_numbers(json.loads(result.stdout), want)

    # naming one of them is one class, not the positive class
    problem = refused(runner.invoke(app, ["ece", str(path), "--probs-key", "1"]), path)
    assert problem.startswith("column '1' is one of the columns 0 .. 2, one per class")
    assert problem.endswith("leave out the key and give --input probs")


def test_a_label_column_named_by_number_is_not_a_class(
    runner: CliRunner, tmp_path: Path, binary: tuple[np.ndarray, np.ndarray]
) -> None:
    """``np.column_stack([proba, y])`` saved by pandas: "0", "1" scores, "2" the label."""
    p, y = binary
    path = write(tmp_path / "stack.parquet", {"0": p[:, 0], "1": p[:, 1], "2": y})
    got = ece_json(runner, path, "--input", "probs", "--labels-key", "2")
    same_numbers(got, reference(runner, tmp_path, "probs", p, y))


def test_names_that_do_not_say_the_kind_leave_it_unknown() -> None:
    """The interface for content detection: ``kind`` None where the name does not say."""
    from calibkit.loaders.keys import choose_columns as _choose_columns
    from calibkit.loaders.keys import choose_scores_key

    opts = ReadOptions()
    for names, key, kind in (
        (["0", "1", "label"], "*", None),
        (["score_0", "score_1", "label"], "score_*", None),
        (["scores0", "scores1", "label"], "scores_*", None),
        (["p0", "p1", "label"], "p_*", "probs"),
        (["logit_0", "logit_1", "label"], "logit_*", "logits"),
    ):
        cols = _choose_columns(names, opts, "f.parquet")
        assert (cols.score_key, cols.kind, cols.wide) == (key, kind, True), names
        assert cols.score_columns == tuple(names[:2])
    forced = _choose_columns(["0", "1", "label"], ReadOptions(kind="logits"), "f.parquet")
    assert forced.kind == "logits"
    # a single named key whose name does not say: None too (npz and pt refuse it themselves)
    assert choose_scores_key(["s", "y"], ReadOptions(scores_key="s"), "f.npz") == ("s", None)


def test_score_columns_need_input(
    runner: CliRunner, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    z, y = data
    cols = {f"score_{k}": z[:, k] for k in range(K)} | {"label": y}
    path = write(tmp_path / "score.parquet", cols)
    same_numbers(
        ece_json(runner, path, "--input", "logits"), reference(runner, tmp_path, "logits", z, y)
    )
    result = runner.invoke(app, ["ece", str(path)])
    if result.exit_code == 2:  # (the logits are not probabilities, whatever detects them)
        assert "--input" in refused(result, path)


def test_a_single_numbered_column_is_a_binary_model(
    runner: CliRunner, tmp_path: Path, binary: tuple[np.ndarray, np.ndarray]
) -> None:
    """A writer looping over K = 1 outputs names its one logit ``logit_0``: the positive class."""
    p, y = binary
    z = np.log(p[:, 1] / p[:, 0])
    got = ece_json(runner, write(tmp_path / "one.parquet", {"logit_0": z, "label": y}))
    same_numbers(got, reference(runner, tmp_path, "logits", z, y))
    assert got["n_classes"] == 2


def test_wide_logits_do_not_turn_a_file_into_confidence_rows(
    runner: CliRunner, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    z, y = data
    conf = softmax(z).max(axis=1)
    cols = {f"logit{k}": z[:, k] for k in range(K)}
    cols |= {"confidence": conf, "correct": z.argmax(1) == y, "label": y}
    got = ece_json(runner, write(tmp_path / "both.parquet", cols))
    same_numbers(got, reference(runner, tmp_path, "logits", z, y))


# --------------------------------------------------------------------------------------------
# item 5: duplicate, ambiguous and sparse column sets


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (["logit_0", "logit_0", "logit_1"], "column 'logit_0' appears 2 times"),
        (
            ["logit_0", "logit_00", "logit_1"],
            "columns 'logit_0' and 'logit_00' both number class 0: rename or drop one",
        ),
        (
            ["logit_0", "Logit_0", "logit_1"],
            "columns 'logit_0' and 'Logit_0' both number class 0: rename or drop one",
        ),
        (
            ["p_1", "p0", "p1"],
            "columns 'p_1' and 'p1' both number class 1: rename or drop one",
        ),
        (
            ["logit", "logit_0", "logit_1"],
            "both column 'logit' and the columns logit_0 .. logit_1 could hold the scores: "
            "drop or rename one",
        ),
        (
            ["logit_*", "logit_0", "logit_1"],
            "column 'logit_*' clashes with the columns logit_0 .. logit_1: rename it",
        ),
        (
            ["logit_0", "logit_1", "logit_3"],
            "columns logit_0 .. logit_3 have a gap: logit_2 is missing",
        ),
        (
            ["logit_01", "logit_02", "logit_03"],
            "columns logit_00 .. logit_03 have a gap: logit_00 is missing",
        ),
    ],
)
def test_ambiguous_column_sets_are_refused(
    runner: CliRunner, tmp_path: Path, names: list[str], problem: str
) -> None:
    cols = [(n, np.linspace(-1, 1, 6) + i) for i, n in enumerate(names)]
    path = write(tmp_path / "bad.parquet", [*cols, ("label", np.array([0, 1] * 3))])
    assert refused(runner.invoke(app, ["ece", str(path)]), path) == problem


def test_a_repeated_label_column_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    z = np.linspace(-1, 1, 6)
    y = np.array([0, 1] * 3)
    path = write(
        tmp_path / "l.parquet", [("logit_0", z), ("logit_1", -z), ("label", y), ("label", y)]
    )
    assert refused(runner.invoke(app, ["ece", str(path)]), path) == "column 'label' appears 2 times"
    path = write(
        tmp_path / "c.parquet",
        [("confidence", z * 0 + 0.5), ("correct", y), ("correct", y)],
    )
    assert refused(runner.invoke(app, ["ece", str(path)]), path) == (
        "column 'correct' appears 2 times"
    )


def test_scores_and_labels_in_one_column_are_refused(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path / "s.parquet", {"logit": np.linspace(-1, 1, 6), "label": [0, 1] * 3})
    result = runner.invoke(app, ["ece", str(path), "--labels-key", "logit"])
    assert refused(result, path) == "column 'logit' cannot be scores and labels"


def test_a_huge_class_number_is_refused_without_allocating(tmp_path: Path) -> None:
    z = np.linspace(-1, 1, 6)
    path = write(
        tmp_path / "huge.parquet",
        {"logit_0": z, "logit_30000000": -z, "label": np.array([0, 1] * 3)},
    )
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as info:
            read_predictions(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.problem == (
        "columns logit_0 .. logit_30000000 have a gap: logit_1 is missing"
    )
    assert peak < 20_000_000  # a set or array sized by the number would take gigabytes


def test_a_number_too_long_for_int_is_refused_on_one_short_line(
    runner: CliRunner, tmp_path: Path
) -> None:
    z = np.linspace(-1, 1, 6)
    name = "logit_" + "9" * 5000  # int() refuses more than 4300 digits
    path = write(tmp_path / "long.parquet", {"logit_0": z, name: -z, "label": [0, 1] * 3})
    problem = refused(runner.invoke(app, ["ece", str(path)]), path)
    assert problem.startswith("columns logit_0 .. logit_9999") and problem.endswith(
        "(5006 characters) have a gap: logit_1 is missing"
    )
    assert len(problem) < 200


def test_many_columns_are_listed_briefly(runner: CliRunner, tmp_path: Path) -> None:
    cols = {f"feature_{i}_x": np.zeros(4) for i in range(500)} | {"label": [0, 1, 0, 1]}
    path = write(tmp_path / "features.parquet", cols)
    problem = refused(runner.invoke(app, ["ece", str(path)]), path)
    assert problem.startswith("no logits or probabilities found; columns present: feature_0_x, ")
    assert "... (501 in all)" in problem and len(problem) < 800


def test_the_gap_check_runs_on_the_numbers_present(tmp_path: Path) -> None:
    """500 wide columns: read in class order whatever the schema order."""
    rng = np.random.default_rng(0)
    k = 500
    z = rng.normal(size=(8, k))
    order = rng.permutation(k)
    cols = [(f"logit_{j}", z[:, j]) for j in order] + [("label", np.arange(8) % k)]
    src = read_predictions(write(tmp_path / "wide.parquet", cols))
    scores, _ = next(iter(src.chunks()))
    np.testing.assert_array_equal(scores, z)
