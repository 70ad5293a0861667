"""`calibkit ece` on bad inputs, and on the good inputs it must accept, through Typer's runner.

A bad input must end the command with exit status 2, nothing on stdout, no traceback, and
exactly one stderr line ``calibkit: error: <path>: <problem>``. Every input is generated in
``tmp_path``; each row of :data:`BAD_INPUTS` is a builder (which writes the file and returns the
command line) and the exact problem text.

The regression tests at the end pin bugs found (and fixed) while this module was written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _cli import assert_one_line_error as _one_line_error
from _cli import ece_json as _ece_json
from _cli import invoke, one_error_line, write_npz
from typer.testing import CliRunner, Result

N, K = 6, 3
LABELS = np.array([0, 1, 2, 0, 1, 2])
PICKLED_NPZ = "holds object (pickled) arrays, which calibkit never loads"
PICKLED_PT = "holds pickled Python objects, which calibkit never loads (save a dict of tensors)"
NOT_PARQUET = "not a readable parquet file (Parquet magic bytes not found in footer)"
USE_LOGITS = "(use --input logits if these are logits)"


# --------------------------------------------------------------------------------------------
# helpers


def run_ece(runner: CliRunner, *args: str | Path) -> Result:
    return invoke(runner, "ece", *args)


def assert_one_line_error(result: Result, subject: Path | str, problem: str) -> None:
    """Exit 2, no traceback, empty stdout and exactly ``calibkit: error: <subject>: <problem>``."""
    _one_line_error(result, f"{subject}: {problem}")


def assert_refused(result: Result, subject: Path | str, problem_prefix: str) -> str:
    """Exit 2 with one error line naming ``subject``; returns the problem text."""
    problem = one_error_line(result, subject)
    assert problem.startswith(problem_prefix), problem
    return problem


def ece_json(runner: CliRunner, *args: str | Path) -> dict[str, Any]:
    """``ece ... --json`` with nothing on stderr."""
    out: dict[str, Any] = _ece_json(runner, *args, quiet=True)
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def good_logits() -> np.ndarray:
    return np.linspace(-2.0, 2.0, N * K).reshape(N, K)


class CreatesMarker:
    """Unpickling this object calls ``open(marker, "w")``, creating the file: a stand-in for
    any code that a pickle runs when it is loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.marker, "w"))


# --------------------------------------------------------------------------------------------
# builders: each writes one input under tmp_path and returns the command line after `ece`


@dataclass
class Built:
    args: list[str]
    subject: Path  # the path the error line must name
    subs: dict[str, str] = field(default_factory=dict)  # fills {placeholders} in the problem


Builder = Callable[[Path], Built]


def npz(name: str = "preds.npz", args: Sequence[str] = (), **arrays: Any) -> Builder:
    def build(tmp_path: Path) -> Built:
        path = tmp_path / name
        np.savez(path, **arrays)
        assert path.exists()  # np.savez appends .npz to other names
        return Built([str(path), *args], path)

    return build


def good_npz(name: str = "preds.npz", args: Sequence[str] = ()) -> Builder:
    return npz(name, args, logits=good_logits(), labels=LABELS)


def parquet(name: str = "preds.parquet", **columns: Any) -> Builder:
    def build(tmp_path: Path) -> Built:
        path = tmp_path / name
        pq.write_table(pa.table(columns), path)
        return Built([str(path)], path)

    return build


def good_parquet() -> Builder:
    z = good_logits()
    return parquet(**{f"logit_{k}": z[:, k] for k in range(K)}, label=LABELS)


def pt(make: Callable[[Any], Any], name: str = "preds.pt") -> Builder:
    """``make(torch)`` returns the object to ``torch.save``."""

    def build(tmp_path: Path) -> Built:
        torch = pytest.importorskip("torch")
        path = tmp_path / name
        torch.save(make(torch), path)
        return Built([str(path)], path)

    return build


def good_pt_dict(torch: Any) -> dict[str, Any]:
    return {"logits": torch.tensor(good_logits()), "labels": torch.tensor(LABELS)}


def raw(name: str, data: bytes) -> Builder:
    def build(tmp_path: Path) -> Built:
        path = tmp_path / name
        path.write_bytes(data)
        return Built([str(path)], path)

    return build


def truncated(builder: Builder) -> Builder:
    """A valid file cut in half."""

    def build(tmp_path: Path) -> Built:
        built = builder(tmp_path)
        data = built.subject.read_bytes()
        built.subject.write_bytes(data[: len(data) // 2])
        return built

    return build


def missing_file(tmp_path: Path) -> Built:
    path = tmp_path / "missing.npz"
    return Built([str(path)], path)


def directory(tmp_path: Path) -> Built:
    path = tmp_path / "preds.npz"
    path.mkdir()
    return Built([str(path)], path)


def npz_with_pickled_member(key: str) -> Builder:
    def build(tmp_path: Path) -> Built:
        arrays: dict[str, Any] = {"logits": good_logits(), "labels": LABELS}
        arrays[key] = np.array([{"a": 1}] * N, dtype=object)
        built = npz(**arrays)(tmp_path)
        # the member really is a pickle: numpy loads it back only when allowed to unpickle
        with np.load(built.subject, allow_pickle=True) as archive:
            assert archive[key][0] == {"a": 1}
        return built

    return build


def npy_named_npz(tmp_path: Path) -> Built:
    path = tmp_path / "preds.npz"
    with path.open("wb") as fh:
        np.save(fh, good_logits())
    return Built([str(path)], path)


def out_in_missing_directory(tmp_path: Path) -> Built:
    built = good_npz()(tmp_path)
    out = tmp_path / "no_such_dir" / "summary.json"
    return Built(
        [*built.args, "--out", str(out)], out, {"parent": repr(str(tmp_path / "no_such_dir"))}
    )


def out_is_a_directory(tmp_path: Path) -> Built:
    built = good_npz()(tmp_path)
    out = tmp_path / "reports"
    out.mkdir()
    return Built([*built.args, "--out", str(out)], out)


# --------------------------------------------------------------------------------------------
# bad inputs: (builder, exact problem after "calibkit: error: <path>: ")

_z = good_logits()
_p = softmax(_z)
_NAN, _INF, _NINF = _z.copy(), _z.copy(), _z.copy()
_NAN[3, 1] = np.nan
_INF[2, 0] = np.inf
_NINF[4, 2] = -np.inf
_P_OUT_HIGH, _P_OUT_LOW, _P_SUM = _p.copy(), _p.copy(), _p.copy()
_P_OUT_HIGH[1] = [1.5, -0.25, -0.25]  # sums to 1, but outside [0, 1]
_P_OUT_LOW[2] = [0.75, 0.75, -0.5]
_P_SUM[4] = [0.2, 0.3, 0.4]
_NULL_AT_2 = [0, 1, None, 0, 1, 2]


def _logit_columns(z: np.ndarray = _z) -> dict[str, Any]:
    return {f"logit_{k}": z[:, k] for k in range(z.shape[1])}


BAD_INPUTS = [
    # --- the file itself
    pytest.param(missing_file, "no such file", id="missing-file"),
    pytest.param(
        directory,
        "is a directory with no data files: it may hold .parquet or .npz shards, or "
        "lm-evaluation-harness samples files (samples_*.jsonl, samples_*.json)",
        id="directory",
    ),
    pytest.param(raw("preds.npz", b""), "file is empty (0 bytes)", id="npz-zero-bytes"),
    pytest.param(  # a CSV is a record file (LLM evaluations): wide logits are not read from it
        raw("preds.csv", b"logit_0,logit_1,label\n0.5,0.1,0\n"),
        "line 2: a record of no known layout; expected lm-evaluation-harness samples "
        "(doc_id, filtered_resps), confidence rows (confidence, correct) or top-k "
        "log-probabilities (logprobs); fields present: label, logit_0, logit_1 (record files "
        "hold LLM evaluations; for logit_* scores write .npz or .parquet)",
        id="csv-extension",
    ),
    pytest.param(
        raw("preds.txt", b"logit_0,logit_1,label\n0.5,0.1,0\n"),
        "unknown file type '.txt'; expected one of .npz, .parquet, .pq, .pt, .pth, .jsonl, "
        ".ndjson, .json, .csv",
        id="txt-extension",
    ),
    pytest.param(
        raw("preds", b"\x00"),
        "unknown file type '(no extension)'; expected one of .npz, .parquet, .pq, .pt, .pth, "
        ".jsonl, .ndjson, .json, .csv",
        id="no-extension",
    ),
    # --- npz container
    pytest.param(
        truncated(good_npz()),
        "not a readable .npz archive (File is not a zip file)",
        id="npz-truncated",
    ),
    pytest.param(npz_with_pickled_member("logits"), PICKLED_NPZ, id="npz-pickled-logits"),
    pytest.param(npz_with_pickled_member("labels"), PICKLED_NPZ, id="npz-pickled-labels"),
    pytest.param(
        npy_named_npz,
        "holds a single .npy array, not an .npz archive of named arrays",
        id="npy-named-npz",
    ),
    # --- npz keys
    pytest.param(
        npz(scores=_z, labels=LABELS),
        "no logits or probabilities found; keys present: labels, scores "
        "(name them with --logits-key or --probs-key)",
        id="npz-missing-logits-key",
    ),
    pytest.param(
        npz(logits=_z, gold=LABELS),
        "no labels found; keys present: gold, logits (name them with --labels-key)",
        id="npz-missing-labels-key",
    ),
    pytest.param(
        good_npz(args=["--logits-key", "nope"]),
        "key 'nope' not found; keys present: labels, logits",
        id="npz-custom-logits-key-absent",
    ),
    pytest.param(
        good_npz(args=["--labels-key", "nope"]),
        "key 'nope' not found; keys present: labels, logits",
        id="npz-custom-labels-key-absent",
    ),
    # --- npz values
    pytest.param(
        npz(logits=np.full((N, K), "a"), labels=LABELS),
        "logits must be real numbers; found dtype <U1",
        id="npz-string-logits",
    ),
    pytest.param(
        npz(logits=_z.astype(complex), labels=LABELS),
        "logits must be real numbers; found dtype complex128",
        id="npz-complex-logits",
    ),
    pytest.param(npz(logits=_NAN, labels=LABELS), "logits contain nan at row 3", id="npz-nan"),
    pytest.param(npz(logits=_INF, labels=LABELS), "logits contain inf at row 2", id="npz-inf"),
    pytest.param(
        npz(logits=_NINF, labels=LABELS), "logits contain -inf at row 4", id="npz-minus-inf"
    ),
    pytest.param(
        npz(logits=np.zeros((N, K, 2)), labels=LABELS),
        "scores must have shape (N, K) or (N,); found shape (6, 3, 2)",
        id="npz-rank-3-logits",
    ),
    pytest.param(
        npz(logits=np.float64(1.0), labels=LABELS),
        "scores must have shape (N, K) or (N,); found shape ()",
        id="npz-scalar-logits",
    ),
    pytest.param(
        npz(logits=np.zeros((N, 0)), labels=LABELS),
        "need at least 2 classes; found shape (6, 0)",
        id="npz-zero-classes",
    ),
    pytest.param(
        npz(logits=_z, labels=LABELS[:5]),
        "6 rows of scores but labels have shape (5,)",
        id="npz-length-mismatch",
    ),
    pytest.param(
        npz(logits=_z, labels=np.array([0, 1, 2.5, 0, 1, 2])),
        "labels must be integers; row 2 has 2.5",
        id="npz-fractional-label",
    ),
    pytest.param(
        npz(logits=_z, labels=np.array([0, 1, -1, 0, 1, 2])),
        "label -1 at row 2 is outside [0, 3) for 3 classes",
        id="npz-negative-label",
    ),
    pytest.param(
        npz(logits=_z, labels=np.array([0, 1, 2, 3, 1, 2])),
        "label 3 at row 3 is outside [0, 3) for 3 classes",
        id="npz-label-equal-to-K",
    ),
    pytest.param(
        npz(logits=_z, labels=np.array([0, 1, 2, 0, 1, 7.0])),
        "label 7 at row 5 is outside [0, 3) for 3 classes",
        id="npz-float-label-above-K",
    ),
    pytest.param(
        npz(logits=_z, labels=np.array([0, np.nan, 2, 0, 1, 2])),
        "labels contain nan at row 1",
        id="npz-nan-label",
    ),
    pytest.param(
        npz(logits=_z, labels=np.array(["a", "b", "c", "a", "b", "c"])),
        "labels must be numbers; found dtype <U1",
        id="npz-string-labels",
    ),
    pytest.param(
        npz(logits=_z, labels=np.zeros((N, 4))),
        "labels must have shape (N,) or (N, 3) for soft labels; found shape (6, 4)",
        id="npz-labels-wrong-width",
    ),
    pytest.param(
        npz(logits=_z, labels=np.full((N, K), 0.5)),
        "soft-label rows must sum to 1; row 0 sums to 1.5",
        id="npz-soft-labels-not-summing",
    ),
    pytest.param(
        npz(probs=_P_OUT_HIGH, labels=LABELS),
        f"probabilities must lie in [0, 1]; row 1 has 1.5 {USE_LOGITS}",
        id="npz-probs-above-1",
    ),
    pytest.param(
        npz(probs=_P_OUT_LOW, labels=LABELS),
        f"probabilities must lie in [0, 1]; row 2 has -0.5 {USE_LOGITS}",
        id="npz-probs-below-0",
    ),
    pytest.param(
        npz(probs=_P_SUM, labels=LABELS),
        f"probability rows must sum to 1; row 4 sums to 0.9 {USE_LOGITS}",
        id="npz-probs-rows-not-summing",
    ),
    pytest.param(
        npz(logits=np.zeros((0, K)), labels=np.zeros(0, dtype=np.int64)),
        "no rows: the predictions are empty",
        id="npz-empty",
    ),
    # --- parquet
    pytest.param(raw("preds.parquet", b""), "file is empty (0 bytes)", id="parquet-zero-bytes"),
    pytest.param(truncated(good_parquet()), NOT_PARQUET, id="parquet-truncated"),
    pytest.param(
        raw("preds.parquet", b"logit_0,logit_1,label\n0.5,0.1,0\n"),
        NOT_PARQUET,
        id="parquet-text-file",
    ),
    pytest.param(
        parquet(**_logit_columns(), label=_NULL_AT_2),
        "column 'label' has a null at row 2",
        id="parquet-null-label",
    ),
    pytest.param(
        parquet(logit_0=_z[:, 0], logit_1=[0.0, 1.0, 2.0, 3.0, None, 5.0], label=LABELS % 2),
        "column 'logit_1' has a null at row 4",
        id="parquet-null-wide-logit",
    ),
    pytest.param(
        parquet(logits=[*_z[:3].tolist(), None, *_z[4:].tolist()], label=LABELS),
        "column 'logits' has a null at row 3",
        id="parquet-null-list-row",
    ),
    pytest.param(
        parquet(logit_0=_z[:, 0], logit_2=_z[:, 2], label=LABELS % 2),
        "columns logit_0 .. logit_2 have a gap: logit_1 is missing",
        id="parquet-wide-gap",
    ),
    pytest.param(
        parquet(logit_1=_z[:, 1], logit_2=_z[:, 2], label=LABELS % 2),
        "columns logit_0 .. logit_2 have a gap: logit_0 is missing",
        id="parquet-wide-no-logit_0",
    ),
    pytest.param(
        parquet(logits=[[0.1, 0.2, 0.3]] * 2 + [[0.1, 0.2]] + [[0.1, 0.2, 0.3]] * 3, label=LABELS),
        "column 'logits' has 2 values at row 2, expected 3",
        id="parquet-list-unequal-lengths",
    ),
    pytest.param(
        parquet(logits=pa.array([[], []], pa.list_(pa.float64())), label=[0, 1]),
        "column 'logits' holds empty lists",
        id="parquet-list-empty-lists",
    ),
    pytest.param(
        parquet(**_logit_columns(), label=["a", "b", "c", "a", "b", "c"]),
        "column 'label' must be numeric; found type string",
        id="parquet-string-labels",
    ),
    pytest.param(
        parquet(logit_0=["x"] * N, logit_1=["y"] * N, label=LABELS % 2),
        "column 'logit_0' must be numeric; found type string",
        id="parquet-string-logits",
    ),
    pytest.param(
        parquet(**_logit_columns(_NAN), label=LABELS),
        "logits contain nan at row 3",
        id="parquet-nan-logit",
    ),
    pytest.param(
        parquet(**_logit_columns(), label=[0, 1, 2, 3, 1, 2]),
        "label 3 at row 3 is outside [0, 3) for 3 classes",
        id="parquet-label-equal-to-K",
    ),
    pytest.param(
        parquet(x=_z[:, 0], label=LABELS),
        "no logits or probabilities found; columns present: label, x "
        "(name them with --logits-key or --probs-key)",
        id="parquet-no-score-column",
    ),
    pytest.param(
        parquet(logits=pa.array([], pa.list_(pa.float64(), 3)), label=pa.array([], pa.int64())),
        "no rows: the predictions are empty",
        id="parquet-empty",
    ),
    # --- .pt
    pytest.param(
        pt(lambda torch: [torch.tensor(_z), torch.tensor(LABELS)]),
        "expected a dict of tensors; found list",
        id="pt-list",
    ),
    pytest.param(
        # torch's weights_only unpickler accepts a set (plain data, nothing runs): refused by type
        pt(lambda torch: {1, 2, 3}),
        "expected a dict of tensors; found set",
        id="pt-set",
    ),
    pytest.param(
        pt(lambda torch: torch.tensor(_z)),
        "expected a dict of tensors; found Tensor",
        id="pt-bare-tensor",
    ),
    pytest.param(
        pt(lambda torch: {"logits": _z.tolist(), "labels": torch.tensor(LABELS)}),
        "entry 'logits' is a list, not a tensor",
        id="pt-entry-not-a-tensor",
    ),
    pytest.param(
        pt(lambda torch: {"logits": torch.tensor(_NAN), "labels": torch.tensor(LABELS)}),
        "logits contain nan at row 3",
        id="pt-nan-logit",
    ),
    pytest.param(raw("preds.pt", b""), "file is empty (0 bytes)", id="pt-zero-bytes"),
    # --- --out
    pytest.param(
        out_in_missing_directory, "directory {parent} does not exist", id="out-missing-directory"
    ),
    pytest.param(out_is_a_directory, "is a directory; give a file name", id="out-is-a-directory"),
]


@pytest.mark.parametrize(("build", "problem"), BAD_INPUTS)
def test_bad_input_gives_one_exact_line_and_exit_2(
    runner: CliRunner, tmp_path: Path, build: Builder, problem: str
) -> None:
    built = build(tmp_path)
    result = run_ece(runner, *built.args)
    assert_one_line_error(result, built.subject, problem.format(**built.subs))


def test_out_into_missing_directory_writes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    built = out_in_missing_directory(tmp_path)
    run_ece(runner, *built.args, "--json")
    assert not (tmp_path / "no_such_dir").exists()


def test_parquet_bad_row_is_counted_across_chunks(runner: CliRunner, tmp_path: Path) -> None:
    """Row numbers in errors are file rows, not rows of the chunk being read."""
    z = np.zeros((10, 2))
    labels = np.array([0] * 7 + [5] + [0] * 2)
    built = parquet(logit_0=z[:, 0], logit_1=z[:, 1], label=labels)(tmp_path)
    result = run_ece(runner, built.subject, "--chunk-rows", "3")
    assert_one_line_error(result, built.subject, "label 5 at row 7 is outside [0, 2) for 2 classes")


def test_parquet_unequal_list_row_is_counted_across_chunks(
    runner: CliRunner, tmp_path: Path
) -> None:
    built = parquet(logits=[[0.0, 1.0]] * 7 + [[0.0, 1.0, 2.0]] + [[0.0, 1.0]] * 2, label=[0] * 10)(
        tmp_path
    )
    result = run_ece(runner, built.subject, "--chunk-rows", "3")
    assert_one_line_error(
        result, built.subject, "column 'logits' has 3 values at row 7, expected 2"
    )


def test_truncated_pt_is_not_readable(runner: CliRunner, tmp_path: Path) -> None:
    # the reason in parentheses is PyTorch's own text, so only its start is pinned
    built = truncated(pt(good_pt_dict))(tmp_path)
    result = run_ece(runner, built.subject)
    problem = assert_refused(result, built.subject, "not a readable .pt file (")
    assert problem.endswith(")")


# --------------------------------------------------------------------------------------------
# pickles are refused without being run


def _save_npz_with_object(path: Path, obj: Any) -> None:
    np.savez(path, logits=np.array([obj] * N, dtype=object), labels=LABELS)


def _save_pt_with_object(path: Path, obj: Any, *, nested: bool) -> None:
    torch = pytest.importorskip("torch")
    torch.save({**good_pt_dict(torch), "extra": obj} if nested else obj, path)


@pytest.mark.parametrize(
    ("name", "save", "problem"),
    [
        pytest.param("preds.npz", _save_npz_with_object, PICKLED_NPZ, id="npz"),
        pytest.param(
            "preds.pt",
            lambda p, o: _save_pt_with_object(p, o, nested=False),
            PICKLED_PT,
            id="pt-top-level",
        ),
        pytest.param(
            "preds.pt",
            lambda p, o: _save_pt_with_object(p, o, nested=True),
            PICKLED_PT,
            id="pt-inside-dict",
        ),
    ],
)
def test_pickled_object_is_refused_and_never_run(
    runner: CliRunner,
    tmp_path: Path,
    name: str,
    save: Callable[[Path, Any], None],
    problem: str,
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / name
    save(path, CreatesMarker(marker))
    assert not marker.exists()
    result = run_ece(runner, path, "--json")
    assert_one_line_error(result, path, problem)
    assert not marker.exists(), "calibkit unpickled the file and ran its code"


def test_the_pickle_payload_is_live(tmp_path: Path) -> None:
    """Control for the test above: loading these files unsafely does create the marker."""
    marker_npz, marker_pt = tmp_path / "npz-ran", tmp_path / "pt-ran"
    _save_npz_with_object(tmp_path / "a.npz", CreatesMarker(marker_npz))
    with np.load(tmp_path / "a.npz", allow_pickle=True) as archive:
        for handle in archive["logits"]:
            handle.close()
    assert marker_npz.exists()

    torch = pytest.importorskip("torch")
    torch.save(CreatesMarker(marker_pt), tmp_path / "a.pt")
    torch.load(tmp_path / "a.pt", weights_only=False).close()
    assert marker_pt.exists()


# --------------------------------------------------------------------------------------------
# --out over the input, --bins out of range


@pytest.mark.parametrize("spelling", ["same", "with-dotdot", "symlink"])
def test_out_equal_to_input_is_refused_and_input_unchanged(
    runner: CliRunner, tmp_path: Path, spelling: str
) -> None:
    path = good_npz()(tmp_path).subject
    before = path.read_bytes()
    if spelling == "same":
        out = path
    elif spelling == "with-dotdot":
        (tmp_path / "sub").mkdir()
        out = tmp_path / "sub" / ".." / path.name
    else:
        out = tmp_path / "summary.json"
        out.symlink_to(path)
    result = run_ece(runner, path, "--json", "--out", out)
    assert_one_line_error(result, out, "is also an input; refusing to overwrite it")
    assert path.read_bytes() == before


@pytest.mark.parametrize("value", ["0", "-3"])
def test_bins_below_one_is_a_usage_error(runner: CliRunner, tmp_path: Path, value: str) -> None:
    path = good_npz()(tmp_path).subject
    result = run_ece(runner, path, "--bins", value)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    # one line in calibkit's words (was a Rich box in pydantic's: "Invalid value for '--bins'")
    assert result.stderr == (
        f"calibkit: error: --bins must be >= 1; got {value}; see 'calibkit ece --help'\n"
    )


# --------------------------------------------------------------------------------------------
# regressions: bugs found and fixed while these tests were written


def test_text_file_named_npz_is_not_called_a_pickle(runner: CliRunner, tmp_path: Path) -> None:
    built = raw("preds.npz", b"logits,labels\n0.5,1\n")(tmp_path)
    problem = assert_refused(run_ece(runner, built.subject), built.subject, "not a")
    assert "pickle" not in problem


def test_text_file_named_pt_is_not_readable(runner: CliRunner, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    built = raw("preds.pt", b"hello\n")(tmp_path)
    assert_refused(run_ece(runner, built.subject), built.subject, "not a readable .pt file")


def test_pt_without_torch_says_how_to_install_it(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    built = raw("preds.pt", b"hello\n")(tmp_path)
    assert_refused(
        run_ece(runner, built.subject),
        built.subject,
        "reading .pt files needs PyTorch: pip install 'calibkit[torch]'",
    )


@pytest.mark.parametrize("content", ["random-bytes", "protocol-4-dict-of-tensors"])
def test_unreadable_pt_is_not_called_pickled_objects(
    runner: CliRunner, tmp_path: Path, content: str
) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "preds.pt"
    if content == "random-bytes":
        path.write_bytes(np.random.default_rng(0).bytes(64))
    else:
        torch.save(good_pt_dict(torch), path, pickle_protocol=4)
    result = run_ece(runner, path)
    assert "Traceback" not in result.output
    assert result.exit_code == 2
    assert "pickled Python objects" not in result.stderr


def test_pt_dict_with_int_keys_message_says_what_is_wrong(
    runner: CliRunner, tmp_path: Path
) -> None:
    built = pt(lambda torch: {0: torch.tensor(_z), 1: torch.tensor(LABELS)})(tmp_path)
    problem = assert_refused(run_ece(runner, built.subject), built.subject, "")
    assert "found dict" not in problem


def test_parquet_null_inside_list_names_its_row(runner: CliRunner, tmp_path: Path) -> None:
    rows: list[Any] = _z.tolist()
    rows[2] = [rows[2][0], None, rows[2][2]]  # flattened index 2 * 3 + 1 = 7
    built = parquet(logits=rows, label=LABELS)(tmp_path)
    problem = assert_refused(run_ece(runner, built.subject), built.subject, "column 'logits")
    assert problem.endswith("has a null at row 2"), problem


# --------------------------------------------------------------------------------------------
# good inputs

NB, KB = 240, 4
IGNORED = ("source", "calibkit_version", "input_reason")  # the reason names the key


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from their own softmax; every class occurs."""
    logits = rng.normal(scale=2.5, size=(NB, KB))
    u = rng.random((NB, 1))
    labels = (softmax(logits).cumsum(axis=1) > u).argmax(axis=1)
    assert set(labels.tolist()) == set(range(KB))
    return logits, labels


def numbers(summary: dict[str, Any], *drop: str) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in (*IGNORED, *drop)}


def test_npz_logits_match_an_independent_computation(
    runner: CliRunner, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    logits, labels = data
    path = write_npz(tmp_path / "preds.npz", logits=logits, labels=labels)
    out = ece_json(runner, path, "--bins", "10")

    p = softmax(logits)
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    correct = pred == labels
    lse = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    bin_of = np.minimum((conf * 10).astype(int), 9)  # no confidence lies exactly on an edge here
    ece = sum(
        abs(conf[bin_of == b].mean() - correct[bin_of == b].mean()) * (bin_of == b).mean()
        for b in range(10)
        if (bin_of == b).any()
    )
    assert out["source"] == str(path)
    assert (out["n"], out["n_classes"], out["n_bins"]) == (NB, KB, 10)
    assert (out["input"], out["binning"], out["binary_mode"]) == ("logits", "width", None)
    assert out["soft_labels"] is False and out["missing_classes"] == []
    assert out["accuracy"] == pytest.approx(correct.mean(), abs=1e-12)
    assert out["nll"] == pytest.approx(np.mean(lse - logits[np.arange(NB), labels]), rel=1e-12)
    onehot = np.eye(KB)[labels]
    assert out["brier"] == pytest.approx(((p - onehot) ** 2).sum(1).mean(), rel=1e-12)
    assert out["ece"] == pytest.approx(ece, rel=1e-9)
    assert sum(b["count"] for b in out["bins"]) == NB


def test_npz_probabilities_match_logits(
    runner: CliRunner, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    logits, labels = data
    from_logits = ece_json(runner, write_npz(tmp_path / "l.npz", logits=logits, labels=labels))
    from_probs = ece_json(
        runner, write_npz(tmp_path / "p.npz", probs=softmax(logits), labels=labels)
    )
    assert from_probs["input"] == "probs"
    assert from_probs["ece"] == pytest.approx(from_logits["ece"], abs=1e-9)
    assert from_probs["nll"] == pytest.approx(from_logits["nll"], abs=1e-9)
    assert from_probs["accuracy"] == from_logits["accuracy"]


def _parquet_columns(layout: str, logits: np.ndarray) -> dict[str, Any]:
    if layout == "wide":
        return {f"logit_{k}": logits[:, k] for k in range(logits.shape[1])}
    flat = pa.array(logits.reshape(-1))
    offsets = pa.array(np.arange(0, logits.size + 1, logits.shape[1], dtype=np.int32))
    if layout == "list":
        return {"logits": pa.ListArray.from_arrays(offsets, flat)}
    return {"logits": pa.FixedSizeListArray.from_arrays(flat, logits.shape[1])}


@pytest.mark.parametrize("layout", ["wide", "list", "fixed-size-list"])
def test_parquet_layouts_match_npz(
    runner: CliRunner, tmp_path: Path, data: tuple[np.ndarray, np.ndarray], layout: str
) -> None:
    logits, labels = data
    reference = ece_json(runner, write_npz(tmp_path / "p.npz", logits=logits, labels=labels))
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({**_parquet_columns(layout, logits), "label": labels}), path)
    assert numbers(ece_json(runner, path)) == numbers(reference)


@pytest.mark.parametrize("layout", ["wide", "list"])
def test_parquet_chunk_size_does_not_change_the_numbers(
    runner: CliRunner, tmp_path: Path, data: tuple[np.ndarray, np.ndarray], layout: str
) -> None:
    logits, labels = data
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({**_parquet_columns(layout, logits), "label": labels}), path)
    whole = ece_json(runner, path)
    chunked = ece_json(runner, path, "--chunk-rows", "7")
    for key in ("accuracy", "ece", "mce", "rmsce", "nll", "brier", "mean_confidence"):
        assert chunked[key] == pytest.approx(whole[key], rel=1e-12, abs=1e-15), key
    assert [b["count"] for b in chunked["bins"]] == [b["count"] for b in whole["bins"]]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_pt_dict_of_tensors_matches_npz(
    runner: CliRunner, tmp_path: Path, data: tuple[np.ndarray, np.ndarray], dtype: str
) -> None:
    torch = pytest.importorskip("torch")
    logits, labels = data
    t = torch.tensor(logits.astype(np.float32)).to(getattr(torch, dtype))
    pt_path = tmp_path / "p.pt"
    torch.save({"logits": t, "labels": torch.tensor(labels)}, pt_path)
    # the same numbers, as float32 (which holds every bfloat16 exactly)
    same = t.to(torch.float32).numpy()
    reference = ece_json(runner, write_npz(tmp_path / "p.npz", logits=same, labels=labels))
    assert numbers(ece_json(runner, pt_path)) == numbers(reference)


@pytest.mark.parametrize("shape", ["(N,)", "(N, 1)"])
def test_binary_single_logit_matches_two_column_logits(
    runner: CliRunner, tmp_path: Path, rng: np.random.Generator, shape: str
) -> None:
    z = rng.normal(scale=2.0, size=NB)
    y = (rng.random(NB) < 1 / (1 + np.exp(-z))).astype(np.int64)
    single = z if shape == "(N,)" else z[:, None]
    binary = ece_json(runner, write_npz(tmp_path / "b.npz", logits=single, labels=y))
    two = ece_json(
        runner,
        write_npz(tmp_path / "t.npz", logits=np.stack([np.zeros(NB), z], axis=1), labels=y),
    )
    assert binary["binary_mode"] == "top-label" and two["binary_mode"] == "top-label"  # K = 2
    assert binary["n_classes"] == 2
    assert numbers(binary) == numbers(two)


def test_soft_labels(
    runner: CliRunner,
    tmp_path: Path,
    data: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
) -> None:
    logits, labels = data
    soft = rng.dirichlet(np.ones(KB), size=NB)
    out = ece_json(runner, write_npz(tmp_path / "s.npz", logits=logits, labels=soft))
    assert out["soft_labels"] is True and out["n_classes"] == KB
    logp = np.log(softmax(logits))
    assert out["nll"] == pytest.approx(-(soft * logp).sum(1).mean(), rel=1e-12)
    assert out["brier"] == pytest.approx(((softmax(logits) - soft) ** 2).sum(1).mean(), rel=1e-12)

    # one-hot soft labels give the numbers of the hard labels
    onehot = ece_json(
        runner, write_npz(tmp_path / "o.npz", logits=logits, labels=np.eye(KB)[labels])
    )
    hard = ece_json(runner, write_npz(tmp_path / "h.npz", logits=logits, labels=labels))
    for key in ("accuracy", "ece", "mce", "rmsce", "nll", "brier", "mean_confidence"):
        assert onehot[key] == pytest.approx(hard[key], rel=1e-12, abs=1e-15), key


def test_custom_key_names(
    runner: CliRunner, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    logits, labels = data
    reference = ece_json(runner, write_npz(tmp_path / "r.npz", logits=logits, labels=labels))
    path = write_npz(tmp_path / "c.npz", model_out=logits, gold=labels)
    out = ece_json(runner, path, "--logits-key", "model_out", "--labels-key", "gold")
    assert numbers(out) == numbers(reference)


@pytest.mark.parametrize(
    ("key", "flags"),
    [
        pytest.param("my_p", ["--probs-key", "my_p"], id="probs-key"),
        pytest.param("my_p", ["--input", "probs", "--probs-key", "my_p"], id="input-and-key"),
        pytest.param("logits", ["--input", "probs"], id="input-overrides-key-name"),
    ],
)
def test_input_probs_with_custom_key(
    runner: CliRunner,
    tmp_path: Path,
    data: tuple[np.ndarray, np.ndarray],
    key: str,
    flags: list[str],
) -> None:
    logits, labels = data
    probs = softmax(logits)
    reference = ece_json(runner, write_npz(tmp_path / "r.npz", probs=probs, labels=labels))
    path = write_npz(tmp_path / "c.npz", **{key: probs, "labels": labels})
    out = ece_json(runner, path, *flags)
    assert out["input"] == "probs"
    assert numbers(out) == numbers(reference)


def test_out_writes_what_json_prints(
    runner: CliRunner, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    logits, labels = data
    path = write_npz(tmp_path / "p.npz", logits=logits, labels=labels)
    out = tmp_path / "summary.json"
    result = run_ece(runner, path, "--json", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == result.stdout
    assert math.isfinite(json.loads(result.stdout)["ece"])

    # without --json the table goes to stdout and the file holds the same JSON
    out.unlink()
    table = run_ece(runner, path, "--out", out)
    assert table.exit_code == 0, table.output
    assert out.read_text(encoding="utf-8") == result.stdout
    assert table.stdout != result.stdout
