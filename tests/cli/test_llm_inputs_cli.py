"""LLM evaluation inputs on the command line: each bad record is one stderr line
``calibkit: error: FILE: problem`` and exit 2; the flags are named as flags; the commands run on
the synthetic lm-eval samples in sample_data/llm/."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from _cli import assert_ok, invoke, one_error_line, run_json

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data" / "llm"
LM_EVAL = SAMPLES / "lm_eval_synthetic"


def mc(doc_id: int, lls: list[float], target: Any, **extra: Any) -> dict[str, Any]:
    """An lm-eval multiple-choice sample record (as lm-eval writes it: text values)."""
    choices = [f"answer {i}" for i in range(len(lls))]
    return {
        "doc_id": doc_id,
        "doc": {"subject": "law", "choices": choices},
        "target": target,
        "arguments": {
            f"gen_args_{i}": {"arg_0": "Q?\nAnswer:", "arg_1": f" {c}"}
            for i, c in enumerate(choices)
        },
        "resps": [[[str(v), "False"]] for v in lls],
        "filtered_resps": [[str(v), "False"] for v in lls],
        "filter": "none",
        **extra,
    }


def write(path: Path, records: list[Any], raw: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + raw)
    return path


GOOD = [mc(0, [-1.0, -2.0], "0"), mc(1, [-3.0, -1.0, -2.5], "1")]


@pytest.mark.parametrize(
    ("records", "raw", "problem"),
    [
        (GOOD, "{oops\n", "line 3: not JSON"),
        (GOOD, "[1]\n", "line 3: a JSON array where a record (a JSON object) belongs"),
        ([*GOOD, mc(2, [-1.0], "0")], "", "line 3 has 1 choice: a question needs at least 2"),
        ([*GOOD, mc(2, [-1.0, -2.0], "zebra")], "", "line 3: target 'zebra' is neither"),
        (
            [mc(0, [-1.0, -2.0], "0"), mc(0, [-1.0, -2.0], "0", filter="strict-match")],
            "",
            "holds 2 filters ('none', 'strict-match')",
        ),
        (
            [{**mc(0, [-1.0, -2.0], "0"), "filtered_resps": ["42"], "resps": [["42"]]}],
            "",
            "line 1: filtered_resps[0] is",
        ),
        (
            [{**mc(0, [-1.0, -2.0], "0"), "filtered_resps": ["It is 42"], "resps": [["It is 42"]]}],
            "",
            "line 1: filtered_resps holds generated text",
        ),
        (
            [{"confidence": 1.7, "correct": 1}],
            "",
            "line 1: confidence must lie in [0, 1]; found 1.7",
        ),
        ([{"confidence": math.nan, "correct": 1}], "", "line 1: confidence must lie in [0, 1]"),
        ([{"confidence": 0.4, "correct": 1}, {"correct": 0}], "", "line 2: no 'confidence' field"),
        (
            [
                {
                    "logprobs": {
                        "content": [{"token": "A", "logprob": -9999.0, "top_logprobs": []}]
                    },
                    "target": "A",
                }
            ],
            "",
            "line 1: the answer token's log-probability is -9999.0",
        ),
    ],
)
def test_bad_records_are_one_line(
    runner: Any, tmp_path: Path, records: list[Any], raw: str, problem: str
) -> None:
    path = write(tmp_path / "samples_t_2024-01-01T00-00-00.jsonl", records, raw)
    for command in (("ece",), ("fit-temp",), ("check", "--max-ece", "0.1")):
        msg = one_error_line(invoke(runner, *command, path), path)
        assert msg.startswith(problem), msg


def test_csv_confidence_needs_the_flag_named_as_a_flag(runner: Any, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("confidence,correct\n80%,1\n0.3,0\n")
    msg = one_error_line(invoke(runner, "ece", path), path)
    assert msg == (
        'line 2: confidence \'80%\' is text; to read confidences such as "80%" or "8/10", '
        "give --parse-confidence"
    )
    out = run_json(runner, "ece", path, "--parse-confidence")
    assert out["n"] == 2 and out["mean_confidence"] == pytest.approx(0.55)


def test_length_normalize_token_is_refused_with_its_flag(runner: Any, tmp_path: Path) -> None:
    path = write(tmp_path / "s.jsonl", GOOD)
    msg = one_error_line(invoke(runner, "ece", path, "--length-normalize", "token"), path)
    assert msg.startswith("line 1: --length-normalize token needs a 'token_counts' list"), msg
    bad = invoke(runner, "ece", path, "--length-normalize", "bytes")
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_ece_on_the_lm_eval_samples(runner: Any) -> None:
    out = run_json(runner, "ece", LM_EVAL)
    assert out["n"] == 1065 and out["input"] == "logits"
    assert "ragged: 2 to 5 choices" in out["input_reason"]
    char = run_json(runner, "ece", LM_EVAL, "--length-normalize", "char")
    assert char["accuracy"] != out["accuracy"]


def test_ece_all_leaves_out_the_classwise_parts(runner: Any) -> None:
    out = run_json(runner, "ece", LM_EVAL, "--all", "--bootstrap", "100", quiet=False)
    assert "classwise_ece" not in out and "brier_reliability" not in out
    assert out["implied_ls_alpha"] is None and "choices" in out["implied_ls_reason"]
    assert "smece" in out


def test_fit_temp_and_check_on_the_lm_eval_samples(runner: Any, tmp_path: Path) -> None:
    out = run_json(runner, "fit-temp", LM_EVAL)
    assert out["temperature"] > 1.0  # the pooled subjects are over-confident on balance
    assert_ok(invoke(runner, "check", LM_EVAL, "--max-ece", "0.2"))
    result = invoke(runner, "check", LM_EVAL, "--max-ece", "0.01")
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_per_class_methods_are_refused_in_one_line(runner: Any) -> None:
    for args in (
        ("--method", "vector"),
        ("--method", "matrix"),
        ("--method", "ets"),
        ("--method", "platt", "--param", "reduction=ova"),
    ):
        msg = one_error_line(invoke(runner, "fit", LM_EVAL, *args), LM_EVAL)
        assert "needs the same classes in every row; this input has between 2 and 5" in msg
    assert_ok(invoke(runner, "fit", LM_EVAL, "--method", "platt"))


def test_verbalized_and_topk_samples(runner: Any) -> None:
    path = SAMPLES / "verbalized_confidence.jsonl"
    one_error_line(invoke(runner, "ece", path), path)
    out = run_json(runner, "ece", path, "--parse-confidence", quiet=False)
    assert out["n"] == 400 and out["input"] == "confidence"
    top = run_json(runner, "ece", SAMPLES / "topk_logprobs.jsonl")
    assert top["n"] == 300


def test_apply_temp_on_a_record_file_is_one_line(runner: Any, tmp_path: Path) -> None:
    path = write(tmp_path / "s.jsonl", GOOD)
    msg = one_error_line(
        invoke(runner, "apply-temp", path, "--temperature", "1.5", "--out", tmp_path / "o.jsonl"),
        path,
    )
    assert msg.startswith("cannot write '.jsonl' predictions"), msg
    assert not (tmp_path / "o.jsonl").exists()


def test_no_missing_class_warning_on_ragged_input(runner: Any, tmp_path: Path) -> None:
    # no question's gold answer is its third choice: on ragged input that is no "class"
    path = write(tmp_path / "s.jsonl", [mc(0, [-1.0, -2.0, -3.0], "0"), mc(1, [-1.0, -2.0], "1")])
    result = invoke(runner, "ece", path)
    assert_ok(result)
    assert "never occur" not in result.stderr


def test_key_flags_are_refused_on_record_files(runner: Any, tmp_path: Path) -> None:
    path = write(tmp_path / "s.jsonl", GOOD)
    msg = one_error_line(invoke(runner, "ece", path, "--logits-key", "x"), path)
    assert msg.startswith("--logits-key x does not apply to record files"), msg
    msg = one_error_line(invoke(runner, "ece", LM_EVAL, "--input", "probs"), LM_EVAL)
    assert msg.startswith("--input probs does not apply to record files"), msg
