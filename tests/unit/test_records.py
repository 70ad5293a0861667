"""Record files: the .jsonl / .csv readers, lm-evaluation-harness samples and confidence rows.

Every record is hand-written here (lm-eval's layout as ``evaluator.py`` and
``loggers/evaluation_tracker.py`` write it: ``target`` as text, ``arguments`` as
``gen_args_i`` / ``arg_j``, responses as text); each hostile input is crafted in tmp_path.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from calibkit.errors import InputError, UsageError
from calibkit.loaders import ReadOptions, read_predictions
from calibkit.loaders.records import (
    parse_confidence,
    read_records,
    read_samples_files,
    record_files,
    task_of,
)
from calibkit.readers import read_arrays
from calibkit.sources.predictions import RAGGED_PAD, ConfidenceRows, Predictions


def sample(
    doc_id: int,
    lls: list[float],
    target: Any,
    *,
    choices: list[str] | None = None,
    nested: bool = False,
    filt: str = "none",
    as_text: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """One lm-eval sample record of a multiple-choice question."""
    choices = choices or [f"choice {i}" for i in range(len(lls))]
    ctx = "Question?\nAnswer:"
    cell = (lambda v: str(v)) if as_text else (lambda v: v)
    pairs = [[cell(v), cell(False)] for v in lls]
    rec: dict[str, Any] = {
        "doc_id": doc_id,
        "doc": {"question": "Question?", "subject": "law", "choices": choices},
        "target": target,
        "arguments": {
            f"gen_args_{i}": {"arg_0": ctx, "arg_1": f" {c}"} for i, c in enumerate(choices)
        },
        "resps": [[p] for p in pairs],
        "filtered_resps": [[p] for p in pairs] if nested else pairs,
        "filter": filt,
        "metrics": ["acc"],
        "acc": 1.0,
    }
    rec.update(extra)
    return rec


def write_jsonl(path: Path, records: list[Any], *, raw: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(r) for r in records] + list(raw)
    path.write_text("\n".join(lines) + "\n")
    return path


def error_of(path: Path, options: ReadOptions | None = None) -> str:
    with pytest.raises(InputError) as err:
        read_predictions(path, options)
    text = str(err.value)
    assert "\n" not in text
    return text


# --------------------------------------------------------------------------------------------
# readers


def test_jsonl_reader_skips_blank_lines_and_reads_columns(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(
        '{"a": 1, "doc": {"s": "x"}}\n\n   \n{"a": 2.5, "doc": {"s": "y"}, "b": true}\n'
    )
    cols = read_arrays(path)
    assert cols["a"].tolist() == [1.0, 2.5]
    assert cols["doc.s"].tolist() == ["x", "y"]
    assert cols["b"].tolist() == ["", "True"]  # missing in one record: text column


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "line 2: not JSON"),
        ("[1, 2]", "line 2: a JSON array where a record (a JSON object) belongs"),
        ('"text"', "line 2: a JSON string where a record"),
        ("3", "line 2: a JSON number where a record"),
    ],
)
def test_jsonl_bad_line_is_one_error(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"confidence": 0.5, "correct": 1}\n' + line + "\n")
    msg = error_of(path)
    assert msg.startswith(f"{path}: {problem}"), msg


def test_jsonl_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"confidence": 0.5, "correct": 1}\n{"x": "\xff"}\n')
    assert error_of(path) == f"{path}: line 2: not UTF-8 text"


def test_csv_reader_numbers_text_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("confidence,correct,subject\n0.8,1,law\n,0,\n80%,true,math\n")
    cols = read_arrays(path)
    assert cols["correct"].tolist() == ["1", "0", "true"]  # numbers and text: a text column
    assert cols["subject"].tolist() == ["law", "", "math"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a,b\n1,2,3\n", "line 2: 3 cells, but the header names 2"),
        ("a,a\n1,2\n", "line 1: the header names 'a' twice"),
        ("a,\n1,2\n", "line 1: the header has an empty name"),
        ("\n\n", "no header row"),
    ],
)
def test_csv_bad_rows(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    assert problem in error_of(path)


# --------------------------------------------------------------------------------------------
# lm-evaluation-harness samples


def test_lm_eval_ragged_logits_and_labels(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "samples_mmlu_law_2024-05-13T14-27-02.123456.jsonl",
        [
            sample(0, [-1.5, -0.5], "1"),  # target as text, lm-eval's str(int)
            sample(1, [-2.0, -1.0, -3.0, -4.0], 0, nested=True),  # an int; [[ll, greedy]]
            sample(2, [-1.0, -2.0, -0.1], "choice 2", as_text=False),  # a choice's text
        ],
    )
    p = read_predictions(path)
    assert isinstance(p, Predictions) and p.ragged
    assert p.n_choices is not None and p.n_choices.tolist() == [2, 4, 3]
    assert p.labels.tolist() == [1, 0, 2]
    assert p.scores[0].tolist() == [-1.5, -0.5, RAGGED_PAD, RAGGED_PAD]
    assert p.scores[1].tolist() == [-2.0, -1.0, -3.0, -4.0]
    assert p.kind == "logits"
    assert "lm-evaluation-harness" in p.kind_reason


def test_lm_eval_columns(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "samples_arc_easy_2024-05-13T14-27-02.123456.jsonl",
        [sample(0, [-1.5, -0.5], "1"), sample(1, [-2.0, -1.0, -3.0], "0", acc=0.0)],
    )
    _, cols = read_records(path, ReadOptions(), str(path))
    assert cols["task"].tolist() == ["arc_easy", "arc_easy"]
    assert cols["doc.subject"].tolist() == ["law", "law"]
    assert cols["doc_id"].tolist() == [0.0, 1.0]
    assert cols["acc"].tolist() == [1.0, 0.0]
    assert "filtered_resps" not in cols and "arguments.gen_args_0.arg_1" not in cols


def test_lm_eval_equal_k_is_not_ragged(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "s.jsonl", [sample(0, [-1.0, -2.0], "0"), sample(1, [-3.0, -1.0], "1")]
    )
    p = read_predictions(path)
    assert isinstance(p, Predictions) and not p.ragged and p.n_classes == 2


@pytest.mark.parametrize(
    ("records", "problem"),
    [
        ([sample(0, [-1.0], "0")], "line 1 has 1 choice: a question needs at least 2"),
        ([sample(0, [-1.0, float("nan")], "0")], "line 1: choice 1 has a log-likelihood of nan"),
        (
            [sample(0, [-1.0, -2.0], "choice 9")],
            "line 1: target 'choice 9' is neither a choice's index nor a choice's text",
        ),
        (
            [sample(0, [-1.0, -2.0], "5")],
            "line 1: target '5' is neither a choice index in [0, 2) nor the text of a choice",
        ),
        ([sample(0, [-1.0, -2.0], 7)], "line 1: target 7 is outside [0, 2) for 2 choices"),
        (
            [
                sample(0, [-1.0, -2.0], "1", choices=["0", "1"]),
                sample(1, [-1.0, -2.0], "1", choices=["1", "0"]),
            ],
            "line 2: target '1' is both the index 1 and the text of choice 0: cannot tell which",
        ),
        (
            [
                sample(0, [-1.0, -2.0], "0", filt="none"),
                sample(0, [-1.0, -2.0], "0", filt="strict"),
            ],
            "holds 2 filters ('none', 'strict'); one filter's records are one data set",
        ),
        (
            [sample(0, [-1.0, -2.0], "0"), sample(0, [-1.0, -2.0], "0")],
            "line 2: doc_id 0 appears again (line 1)",
        ),
        (
            [
                {
                    **sample(0, [-1.0, -2.0], "0"),
                    "filtered_resps": ["The answer is 4."],
                    "resps": [["The answer is 4."]],
                }
            ],
            "line 1: filtered_resps holds generated text, not [log-likelihood, is_greedy] pairs: "
            "a generation task has no per-choice log-likelihoods to calibrate",
        ),
        (
            [{k: v for k, v in sample(0, [-1.0, -2.0], "0").items() if k != "target"}],
            "line 1: no 'target' field",
        ),
        (
            [sample(0, [-1.0, -2.0], "0"), {"doc_id": 1, "filtered_resps": [[1, 2, 3]]}],
            "line 2: filtered_resps[0] is",
        ),
        (
            [sample(0, [-1.0, -2.0], ["0", "1"])],
            "line 1: target ['0', '1'] names several gold choices",
        ),
    ],
)
def test_lm_eval_bad_records(tmp_path: Path, records: list[Any], problem: str) -> None:
    path = write_jsonl(tmp_path / "samples_t_2024-01-01T00-00-00.jsonl", records)
    msg = error_of(path)
    assert msg.startswith(f"{path}: "), msg
    assert problem in msg, msg


def test_lm_eval_letter_target(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", [sample(0, [-1.0, -2.0, -3.0], "C")])
    p = read_predictions(path)
    assert p.labels.tolist() == [2]  # type: ignore[attr-defined]


def test_lm_eval_multiple_input_target_text_is_ambiguous(tmp_path: Path) -> None:
    # winogrande-like: every continuation is the same text, the choices are in the contexts
    rec = sample(0, [-1.0, -2.0], "the rest", choices=["the rest", "the rest"])
    msg = error_of(write_jsonl(tmp_path / "s.jsonl", [rec]))
    assert "neither a choice's index nor a choice's text" in msg or "several" in msg


def test_length_normalize_char_is_acc_norm(tmp_path: Path) -> None:
    # lm-eval's acc_norm: argmax of ll / len(choice) in characters (the continuation without
    # its leading target delimiter)
    choices = ["a", "much longer answer"]
    lls = [-2.0, -9.0]
    path = write_jsonl(tmp_path / "s.jsonl", [sample(0, lls, "1", choices=choices)])
    plain = read_predictions(path)
    norm = read_predictions(path, ReadOptions(length_normalize="char"))
    assert plain.scores[0].tolist() == lls  # type: ignore[attr-defined]
    assert norm.scores[0].tolist() == [-2.0 / 1, -9.0 / 18]  # type: ignore[attr-defined]
    assert np.argmax(norm.scores[0]) == 1  # type: ignore[attr-defined]


def test_length_normalize_token_needs_counts(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", [sample(0, [-2.0, -4.0], "0")])
    msg = error_of(path, ReadOptions(length_normalize="token"))
    assert "length_normalize='token' needs a 'token_counts' list" in msg
    path2 = write_jsonl(tmp_path / "t.jsonl", [sample(0, [-2.0, -4.0], "0", token_counts=[2, 4])])
    p = read_predictions(path2, ReadOptions(length_normalize="token"))
    assert p.scores[0].tolist() == [-1.0, -1.0]  # type: ignore[attr-defined]


def test_length_normalize_value_is_checked() -> None:
    with pytest.raises(UsageError, match="length_normalize must be one of none, char, token"):
        ReadOptions(length_normalize="bytes")


def test_acc_mutual_info_reads_the_conditional_half(tmp_path: Path) -> None:
    rec = sample(0, [-1.0, -2.0, -5.0, -6.0], "1", choices=["x", "y", "x", "y"])
    for i in (2, 3):  # the unconditional requests: empty context, the same continuations
        rec["arguments"][f"gen_args_{i}"]["arg_0"] = ""
    p = read_predictions(write_jsonl(tmp_path / "s.jsonl", [rec]))
    assert p.scores.tolist() == [[-1.0, -2.0]]  # type: ignore[attr-defined]


def test_task_of_names() -> None:
    assert task_of(Path("samples_mmlu_college_physics_2025-01-02T03-04-05.678901.jsonl")) == (
        "mmlu_college_physics"
    )
    assert task_of(Path("samples_hellaswag_2025-01-02T03-04-05.jsonl")) == "hellaswag"
    assert task_of(Path("samples_x.jsonl")) == "x"


def test_directory_of_samples_is_one_data_set(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    write_jsonl(d / "samples_b_2024-01-01T00-00-00.jsonl", [sample(0, [-1.0, -2.0], "0")])
    write_jsonl(
        d / "samples_a_2024-01-01T00-00-00.jsonl",
        [sample(0, [-1.0, -2.0, -3.0], "2"), sample(1, [-1.0, -0.5], "1")],
    )
    (d / "results_2024-01-01T00-00-00.json").write_text("{}")  # lm-eval's other output
    assert [p.name for p in record_files(str(d)) or []] == [
        "samples_a_2024-01-01T00-00-00.jsonl",
        "samples_b_2024-01-01T00-00-00.jsonl",
    ]
    p = read_predictions(d)
    assert isinstance(p, Predictions) and p.n_rows == 3 and p.ragged
    assert p.labels.tolist() == [2, 1, 0]
    files = record_files(str(d))
    assert files is not None
    _, cols = read_samples_files(files, ReadOptions(), str(d))
    assert cols["task"].tolist() == ["a", "a", "b"]
    pattern = read_predictions(str(d / "samples_*.jsonl"))
    assert pattern.n_rows == 3


def test_directory_error_names_the_file(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    write_jsonl(d / "samples_a.jsonl", [sample(0, [-1.0, -2.0], "0")])
    bad = write_jsonl(d / "samples_b.jsonl", [sample(0, [-1.0], "0")])
    msg = error_of(d)
    assert msg.startswith(f"{bad}: line 1 has 1 choice"), msg


def test_directory_of_confidence_files_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    write_jsonl(d / "a.jsonl", [{"confidence": 0.5, "correct": 1}])
    assert "is read as lm-evaluation-harness samples" in error_of(d)


# --------------------------------------------------------------------------------------------
# confidence rows


def test_confidence_rows_jsonl(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"confidence": 0.9, "correct": True, "subject": "law"},
            {"confidence": 0, "correct": 0, "subject": "math"},
            {"confidence": 1, "correct": "yes", "subject": "law"},
            {"confidence": 0.25, "correct": "FALSE", "subject": "law"},
        ],
    )
    rows = read_predictions(path)
    assert isinstance(rows, ConfidenceRows)
    assert rows.confidence.tolist() == [0.9, 0.0, 1.0, 0.25]
    assert rows.correct.tolist() == [1.0, 0.0, 1.0, 0.0]
    _, cols = read_records(path, ReadOptions(), str(path))
    assert cols["subject"].tolist() == ["law", "math", "law", "law"]
    assert "confidence" not in cols


def test_confidence_rows_csv(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("id,confidence,correct\n1,0.8,1\n2,0.3,0\n3,80%,1\n")
    assert "line 4: confidence '80%' is text" in error_of(path)
    rows = read_predictions(path, ReadOptions(parse_confidence=True))
    assert rows.confidence.tolist() == [0.8, 0.3, 0.8]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("80%", 0.8),
        ("80 %", 0.8),
        ("0.8", 0.8),
        (".8", 0.8),
        ("8/10", 0.8),
        (" 1 ", 1.0),
        ("100%", 1.0),
        ("0%", 0.0),
        ("3 / 4", 0.75),
        ("1e-1", 0.1),
    ],
)
def test_parse_confidence(text: str, value: float) -> None:
    got = parse_confidence(text)
    assert got is not None and math.isclose(got, value)


@pytest.mark.parametrize("text", ["high", "80", "-0.5", "1/0", "", "0.8.1", "eighty %"])
def test_parse_confidence_refusals(tmp_path: Path, text: str) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"confidence": text, "correct": 1}])
    msg = error_of(path, ReadOptions(parse_confidence=True))
    assert msg.startswith(f"{path}: line 1: confidence "), msg


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"confidence": 1.7, "correct": 1}, "line 2: confidence must lie in [0, 1]; found 1.7"),
        ({"confidence": "1.7", "correct": 1}, "line 2: confidence must lie in [0, 1]; found '1.7'"),
        (
            {"confidence": float("nan"), "correct": 1},
            "line 2: confidence must lie in [0, 1]; found nan",
        ),
        ({"confidence": None, "correct": 1}, "line 2: confidence is missing (null or empty)"),
        ({"correct": 1}, "line 2: no 'confidence' field"),
        ({"confidence": 0.5}, "line 2: no 'correct' field"),
        ({"confidence": True, "correct": 1}, "line 2: confidence True is not a number"),
        ({"confidence": 0.5, "correct": 2}, "line 2: correct must be 0 or 1"),
        ({"confidence": 0.5, "correct": "maybe"}, "line 2: correct must be 0 or 1"),
    ],
)
def test_confidence_bad_rows(tmp_path: Path, record: dict[str, Any], problem: str) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"confidence": 0.5, "correct": 1}, record])
    msg = error_of(path, ReadOptions(parse_confidence=True))
    assert msg == f"{path}: {problem}" or msg.startswith(f"{path}: {problem}"), msg


def test_unknown_layout_and_ambiguity(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "u.jsonl", [{"question": "q", "answer": "a"}])
    msg = error_of(path)
    assert (
        "line 1: a record of no known layout" in msg and "fields present: answer, question" in msg
    )
    both = write_jsonl(
        tmp_path / "b.jsonl",
        [{"confidence": 0.5, "correct": 1, "logprobs": {"content": []}}],
    )
    assert "holds both confidence rows and top-k log-probabilities" in error_of(both)


def test_length_normalize_only_for_lm_eval(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"confidence": 0.5, "correct": 1}])
    assert "applies to lm-evaluation-harness samples only" in error_of(
        path, ReadOptions(length_normalize="char")
    )


def test_empty_records_file(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text("\n\n")
    assert error_of(path) == f"{path}: holds no records"


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        (ReadOptions(scores_key="confidence"), "scores_key='confidence'"),
        (ReadOptions(labels_key="correct"), "labels_key='correct'"),
        (ReadOptions(kind="probs"), "kind='probs'"),
        (ReadOptions(labels_from_counts=True), "labels_from_counts=True"),
    ],
)
def test_key_options_do_not_apply(tmp_path: Path, options: ReadOptions, shown: str) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"confidence": 0.5, "correct": 1}])
    assert error_of(path, options) == (
        f"{path}: {shown} does not apply to record files (.jsonl, .csv): their layout names "
        "the fields read"
    )


def test_directory_mixing_records_and_shards_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    write_jsonl(d / "samples_a.jsonl", [sample(0, [-1.0, -2.0], "0")])
    np.savez(d / "preds.npz", logits=np.zeros((2, 2)), labels=np.array([0, 1]))
    assert error_of(d) == (
        f"{d}: mixes .jsonl record files and .npz shards (samples_a.jsonl, preds.npz); a "
        "directory holds one data set"
    )
