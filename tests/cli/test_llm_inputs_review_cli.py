"""The #18 review's record-file cases on the command line: one stderr line
``calibkit: error: FILE: problem`` and exit 2, or the right numbers (each file crafted in
tmp_path)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from _cli import invoke, one_error_line, run_json


def mc(doc_id: int, lls: list[float], target: str, choices: list[str]) -> dict[str, Any]:
    return {
        "doc_id": doc_id,
        "doc": {"choices": choices},
        "target": target,
        "arguments": {
            f"gen_args_{i}": {"arg_0": "Q?", "arg_1": f" {c}"} for i, c in enumerate(choices)
        },
        "resps": [[[str(v), "False"]] for v in lls],
        "filtered_resps": [[str(v), "False"] for v in lls],
        "filter": "none",
        "metrics": ["acc"],
    }


def write(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


GEN = {
    "arguments": {"gen_args_0": {"arg_0": "Q: 2+2?\nA:", "arg_1": {"until": ["Q:"]}}},
    "resps": [["The answer is 4"]],
    "filtered_resps": ["4"],
}


def nll_of(rows: list[tuple[list[float], int]]) -> float:
    total = 0.0
    for lls, y in rows:
        top = max(lls)
        total += -(lls[y] - top - math.log(sum(math.exp(v - top) for v in lls)))
    return total / len(rows)


def test_acc_mutual_info_as_lm_eval_writes_it(runner: Any, tmp_path: Path) -> None:
    # lm-eval < 0.4.9: (ctx, " Paris") then ("", "Paris"), the delimiter left out
    data = [([-1.0, -2.0, -3.0, -4.0], 0), ([-2.5, -1.0, -3.0, -0.5], 1)]
    records = []
    for doc_id, (lls, y) in enumerate(data):
        choices = ["Paris", "London", "Berlin", "Rome"]
        rec = mc(doc_id, lls + [v - 1.0 for v in lls], str(y), choices + choices)
        for i, c in enumerate(choices):
            rec["arguments"][f"gen_args_{4 + i}"] = {"arg_0": "", "arg_1": c}
        rec["metrics"] = ["acc", "acc_mutual_info"]
        records.append(rec)
    path = write(tmp_path / "samples_copa_2024-01-01T00-00-00.jsonl", records)
    out = run_json(runner, "ece", path, quiet=False)  # a warning about 2 rows
    assert out["n_classes"] == 4
    assert out["nll"] == pytest.approx(nll_of(data), rel=1e-12)


@pytest.mark.parametrize(
    ("records", "problem"),
    [
        (
            [mc(0, [-1.0, 2.0], "0", ["a", "b"])],
            "line 1: choice 1 has a log-likelihood of '2.0', above 0",
        ),
        (
            [{"confidence": 0.5, "correct": 1, "is_correct": 0}],
            "line 1: correct 1 and is_correct 0 disagree; keep one of the two fields",
        ),
        (
            [{"confidence": 0.5, "conf": 0.2, "correct": 1}],
            "line 1: confidence 0.5 and conf 0.2 disagree; keep one of the two fields",
        ),
        (
            [  # gsm8k-like: generation arguments, two filters, an answer that is a number
                {**mc(0, [0.0], "4", ["x"]), **GEN, "filter": "strict-match"},
                {**mc(0, [0.0], "4", ["x"]), **GEN, "filter": "flexible-extract"},
            ],
            "line 1: filtered_resps holds generated text, not [log-likelihood, is_greedy] pairs",
        ),
        (
            [
                {
                    "choices": [
                        {
                            "logprobs": {
                                "content": [
                                    {"token": "Par", "logprob": -0.7, "top_logprobs": []},
                                    {"token": "is", "logprob": -0.01, "top_logprobs": []},
                                ]
                            }
                        }
                    ],
                    "target": "Paris",
                }
            ],
            "line 1: the answer spans 2 tokens ('Par', 'is') that make the target 'Paris'",
        ),
    ],
)
def test_review_refusals_are_one_line(
    runner: Any, tmp_path: Path, records: list[Any], problem: str
) -> None:
    path = write(tmp_path / "r.jsonl", records)
    for command in (("ece",), ("check", "--max-ece", "0.5")):
        msg = one_error_line(invoke(runner, *command, path), path)
        assert msg.startswith(problem), msg


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("-0.1", "line 1: confidence must lie in [0, 1]; found '-0.1'"),
        ("inf", "line 1: confidence 'inf' is not finite"),
    ],
)
def test_confidence_text_out_of_range(runner: Any, tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path / "c.jsonl", [{"confidence": text, "correct": 1}])
    msg = one_error_line(invoke(runner, "ece", path, "--parse-confidence"), path)
    assert msg == problem


def test_jsonl_bom_is_read(runner: Any, tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    body = '{"confidence": 0.8, "correct": 1}\n{"confidence": 0.4, "correct": 0}\n'
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    out = run_json(runner, "ece", path, quiet=False)
    assert out["n"] == 2 and out["mean_confidence"] == pytest.approx(0.6)
