"""Record files: the #18 review's cases (each crafted in tmp_path, lm-eval's real layout).

acc_mutual_info records as lm-eval < 0.4.9 writes them (unconditional continuations without
the target delimiter), positive log-likelihoods, disagreeing alias fields, out-of-range
confidence text, generation tasks (two filters, a number as text), multi-token top-k answers
and a UTF-8 BOM at the start of a ``.jsonl`` file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from calibkit.errors import InputError
from calibkit.loaders import ReadOptions, read_predictions
from calibkit.loaders.records import parse_confidence


def mc(doc_id: int, lls: list[float], target: Any, choices: list[str], **extra: Any) -> Any:
    """An lm-eval multiple-choice sample (``gen_args_i``, text responses, ``str(target)``)."""
    return {
        "doc_id": doc_id,
        "doc": {"question": "Q?", "choices": choices},
        "target": target,
        "arguments": {
            f"gen_args_{i}": {"arg_0": "Q?\nAnswer:", "arg_1": f" {c}"}
            for i, c in enumerate(choices)
        },
        "resps": [[[str(v), "False"]] for v in lls],
        "filtered_resps": [[str(v), "False"] for v in lls],
        "filter": "none",
        "metrics": ["acc"],
        **extra,
    }


def mutual(
    doc_id: int, cond: list[float], uncond: list[float], target: str, choices: list[str], delim: str
) -> Any:
    """An acc_mutual_info sample: K conditional requests, then K with an empty context whose
    continuation is ``delim + choice`` (lm-eval < 0.4.9: ``delim = ""``)."""
    rec = mc(doc_id, cond + uncond, target, choices + choices, metrics=["acc", "acc_mutual_info"])
    k = len(choices)
    for i, c in enumerate(choices):
        rec["arguments"][f"gen_args_{k + i}"] = {"arg_0": "", "arg_1": f"{delim}{c}"}
    return rec


def write(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def error_of(path: Path, options: ReadOptions | None = None) -> str:
    with pytest.raises(InputError) as err:
        read_predictions(path, options)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{path}: "), text
    return text[len(f"{path}: ") :]


# --------------------------------------------------------------------------------------------
# 1. acc_mutual_info


@pytest.mark.parametrize("delim", ["", " "])
def test_acc_mutual_info_reads_the_conditional_half(tmp_path: Path, delim: str) -> None:
    records = [
        mutual(0, [-1.0, -2.0, -3.0, -4.0], [-2.0, -3.0, -4.0, -5.0], "0", list("abcd"), delim),
        mutual(1, [-2.0, -1.0, -3.0], [-3.0, -2.0, -4.0], "1", ["x", "y", "z"], delim),
    ]
    p = read_predictions(write(tmp_path / "samples_m_2024-01-01T00-00-00.jsonl", records))
    assert p.n_classes == 4  # type: ignore[attr-defined]
    assert p.scores[0].tolist() == [-1.0, -2.0, -3.0, -4.0]  # type: ignore[attr-defined]
    assert p.scores[1][:3].tolist() == [-2.0, -1.0, -3.0]  # type: ignore[attr-defined]
    assert p.labels.tolist() == [0, 1]  # type: ignore[attr-defined]


def test_two_halves_that_are_not_unconditional_stay_2k_choices(tmp_path: Path) -> None:
    # the second half has a context: 4 real choices, not acc_mutual_info
    rec = mc(0, [-1.0, -2.0, -3.0, -4.0], "0", ["a", "b", "a", "b"])
    p = read_predictions(write(tmp_path / "s.jsonl", [rec]))
    assert p.n_classes == 4  # type: ignore[attr-defined]
    # an empty context but other continuations: not the same choices either
    rec2 = mutual(0, [-1.0, -2.0], [-3.0, -4.0], "0", ["a", "b"], "")
    rec2["arguments"]["gen_args_3"]["arg_1"] = "c"
    rec2["metrics"] = ["acc"]
    p2 = read_predictions(write(tmp_path / "t.jsonl", [rec2]))
    assert p2.n_classes == 4  # type: ignore[attr-defined]


def test_acc_mutual_info_record_of_another_layout_is_refused(tmp_path: Path) -> None:
    # the record says acc_mutual_info, but its second half has a context: not K + K
    rec = mc(0, [-1.0, -2.0, -3.0, -4.0], "0", ["a", "b", "a", "b"])
    rec["metrics"] = ["acc", "acc_mutual_info"]
    assert error_of(write(tmp_path / "s.jsonl", [rec])) == (
        "line 1: an acc_mutual_info record whose 4 requests are not K conditional ones then "
        "the same K with an empty context: cannot tell its choices"
    )


# --------------------------------------------------------------------------------------------
# 2. positive log-likelihoods


def test_positive_log_likelihood_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "s.jsonl", [mc(0, [-1.0, 2.0, -3.0], "0", ["a", "b", "c"])])
    assert error_of(path) == (
        "line 1: choice 1 has a log-likelihood of '2.0', above 0: not the log-probability of a "
        "continuation"
    )


def test_log_likelihood_a_rounding_above_zero_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "s.jsonl", [mc(0, [1e-7, -3.0], "0", ["a", "b"])])
    p = read_predictions(path)
    assert p.scores[0].tolist() == [1e-7, -3.0]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# 3. disagreeing aliases


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (
            {"confidence": 0.5, "correct": 1, "is_correct": 0},
            "line 2: correct 1 and is_correct 0 disagree; keep one of the two fields",
        ),
        (
            {"confidence": 0.5, "conf": 0.2, "correct": 1},
            "line 2: confidence 0.5 and conf 0.2 disagree; keep one of the two fields",
        ),
        (
            {"confidence": 0.5, "correct": 1, "correctness": 0.5},
            "line 2: correct 1 and correctness 0.5 disagree",
        ),
    ],
)
def test_disagreeing_aliases_are_refused(
    tmp_path: Path, record: dict[str, Any], problem: str
) -> None:
    path = write(tmp_path / "c.jsonl", [{"confidence": 0.4, "correct": 0}, record])
    assert error_of(path).startswith(problem)


def test_agreeing_aliases_are_read(tmp_path: Path) -> None:
    rows = [
        {"confidence": 0.5, "conf": 0.5, "correct": 1, "is_correct": True},
        {"confidence": 0.25, "correct": "no", "correctness": 0},
    ]
    p = read_predictions(write(tmp_path / "c.jsonl", rows))
    assert p.confidence.tolist() == [0.5, 0.25]  # type: ignore[attr-defined]
    assert p.correct.tolist() == [1.0, 0.0]  # type: ignore[attr-defined]


def test_empty_alias_is_not_a_disagreement(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("confidence,conf,correct,is_correct\n0.5,,1,\n0.25,0.25,0,no\n")
    p = read_predictions(path)
    assert p.confidence.tolist() == [0.5, 0.25]  # type: ignore[attr-defined]
    bad = tmp_path / "d.csv"
    bad.write_text("confidence,correct,is_correct\n0.5,1,no\n")
    assert (
        error_of(bad)
        == "line 2: correct 1 and is_correct 'no' disagree; keep one of the two fields"
    )


def test_top_k_correct_aliases_must_agree(tmp_path: Path) -> None:
    rec = {
        "logprobs": {"content": [{"token": "A", "logprob": -0.1, "top_logprobs": []}]},
        "correct": 1,
        "is_correct": 0,
    }
    assert error_of(write(tmp_path / "k.jsonl", [rec])).startswith(
        "line 1: correct 1 and is_correct 0 disagree"
    )


def test_top_k_target_and_answer_must_agree(tmp_path: Path) -> None:
    rec = {
        "logprobs": {"content": [{"token": "A", "logprob": -0.1, "top_logprobs": []}]},
        "target": "A",
        "answer": "B",
    }
    assert error_of(write(tmp_path / "k.jsonl", [rec])) == (
        "line 1: target 'A' and answer 'B' disagree; keep one of the two fields"
    )
    same = {**rec, "answer": " A"}
    p = read_predictions(write(tmp_path / "k2.jsonl", [same]))
    assert p.correct.tolist() == [1.0]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# 4. out-of-range confidence text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("-0.1", "line 1: confidence must lie in [0, 1]; found '-0.1'"),
        ("-80%", "line 1: confidence must lie in [0, 1]; found '-80%'"),
        ("inf", "line 1: confidence 'inf' is not finite"),
        ("-Infinity", "line 1: confidence '-Infinity' is not finite"),
        ("nan", "line 1: confidence 'nan' is not finite"),
    ],
)
def test_out_of_range_confidence_text_says_why(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path / "c.jsonl", [{"confidence": text, "correct": 1}])
    assert error_of(path, ReadOptions(parse_confidence=True)) == problem


def test_parse_confidence_reads_signs() -> None:
    assert parse_confidence("-0.1") == -0.1
    assert parse_confidence("+0.5") == 0.5
    assert parse_confidence("high") is None


# --------------------------------------------------------------------------------------------
# 5. generation tasks

GENERATION = (
    "holds generated text, not [log-likelihood, is_greedy] pairs: a generation task has no "
    "per-choice log-likelihoods to calibrate"
)


def gen(doc_id: int, answer: str, filt: str) -> Any:
    """A gsm8k-like generation sample (``generate_until``: one request, text responses)."""
    return {
        "doc_id": doc_id,
        "doc": {"question": "2+2?", "answer": "4"},
        "target": "4",
        "arguments": {"gen_args_0": {"arg_0": "Q: 2+2?\nA:", "arg_1": {"until": ["Q:"]}}},
        "resps": [["The answer is 4"]],
        "filtered_resps": [answer],
        "filter": filt,
        "metrics": ["exact_match"],
        "exact_match": 1.0,
    }


def test_generation_task_with_two_filters_is_called_a_generation_task(tmp_path: Path) -> None:
    records = [gen(0, "4", "strict-match"), gen(0, "4", "flexible-extract")]
    path = write(tmp_path / "samples_gsm8k_2024-01-01T00-00-00.jsonl", records)
    assert error_of(path) == f"line 1: filtered_resps {GENERATION}"


@pytest.mark.parametrize("answer", ["4", "-3.5", "[invalid]"])
def test_generated_number_is_called_a_generation_task(tmp_path: Path, answer: str) -> None:
    path = write(tmp_path / "samples_gsm8k_2024-01-01T00-00-00.jsonl", [gen(0, answer, "x")])
    assert error_of(path) == f"line 1: filtered_resps {GENERATION}"


def test_rolling_log_likelihood_is_not_called_a_generation_task(tmp_path: Path) -> None:
    rec = {
        "doc_id": 0,
        "doc": {"page": "x"},
        "target": "x",
        "arguments": {"gen_args_0": {"arg_0": "some text"}},
        "resps": [["-123.4"]],
        "filtered_resps": ["-123.4"],
        "filter": "none",
        "metrics": ["word_perplexity"],
    }
    msg = error_of(write(tmp_path / "s.jsonl", [rec]))
    assert msg.startswith("line 1: filtered_resps[0] is '-123.4', not a [log-likelihood"), msg


def test_multiple_choice_with_two_filters_still_names_the_filters(tmp_path: Path) -> None:
    records = [mc(0, [-1.0, -2.0], "0", ["a", "b"]), mc(0, [-1.0, -2.0], "0", ["a", "b"])]
    records[1]["filter"] = "other"
    path = write(tmp_path / "s.jsonl", records)
    assert error_of(path).startswith("holds 2 filters ('none', 'other')")


# --------------------------------------------------------------------------------------------
# 6. multi-token answers in top-k files


def chat(tokens: list[tuple[str, float]], **extra: Any) -> Any:
    content = [
        {"token": t, "logprob": lp, "top_logprobs": [{"token": t, "logprob": lp}]}
        for t, lp in tokens
    ]
    return {
        "choices": [
            {
                "message": {"role": "assistant", "content": "".join(t for t, _ in tokens)},
                "logprobs": {"content": content},
            }
        ],
        **extra,
    }


def test_multi_token_answer_equal_to_the_target_is_refused(tmp_path: Path) -> None:
    rec = chat([("Par", -0.69), ("is", -0.01)], target="Paris")
    assert error_of(write(tmp_path / "k.jsonl", [rec])) == (
        "line 1: the answer spans 2 tokens ('Par', 'is') that make the target 'Paris'; calibkit "
        "scores the first generated token only, so it would count as wrong: write confidence "
        "rows (confidence, correct) for multi-token answers"
    )


def test_multi_token_answer_in_the_legacy_layout_is_refused(tmp_path: Path) -> None:
    rec = {
        "choices": [
            {
                "logprobs": {
                    "tokens": [" Lon", "don"],
                    "token_logprobs": [-0.5, -0.1],
                    "top_logprobs": [{" Lon": -0.5}, {"don": -0.1}],
                }
            }
        ],
        "answer": "London",
    }
    msg = error_of(write(tmp_path / "k.jsonl", [rec]))
    assert msg.startswith("line 1: the answer spans 2 tokens (' Lon', 'don') that make the answer")


def test_first_token_answers_and_plain_mismatches_are_read(tmp_path: Path) -> None:
    records = [
        chat([("B", -0.2), (".", -0.1)], target="B"),  # the first token is the answer
        chat([("Lon", -0.3), ("don", -0.1)], target="Paris"),  # wrong, whatever the tokens
        chat([("The", -0.3), (" answer", -0.1)], target="B"),
    ]
    p = read_predictions(write(tmp_path / "k.jsonl", records))
    assert p.correct.tolist() == [1.0, 0.0, 0.0]  # type: ignore[attr-defined]


def test_multi_token_answer_with_a_correct_field_is_read(tmp_path: Path) -> None:
    rec = chat([("Par", -0.69), ("is", -0.01)], target="Paris", correct=True)
    p = read_predictions(write(tmp_path / "k.jsonl", [rec]))
    assert p.correct.tolist() == [1.0]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# 7. a UTF-8 BOM


def test_jsonl_with_a_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    body = '{"confidence": 0.8, "correct": 1}\n{"confidence": 0.3, "correct": 0}\n'
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    p = read_predictions(path)
    assert p.confidence.tolist() == [0.8, 0.3]  # type: ignore[attr-defined]


def test_bom_after_the_first_line_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"confidence": 0.8, "correct": 1}\n\xef\xbb\xbf{"confidence": 0.3}\n')
    assert error_of(path).startswith("line 2: not JSON")
