"""Top-k log-probabilities (OpenAI chat completions, legacy completions, vLLM): the answer's
confidence is exp(its logprob), the tail is kept apart, vLLM's -9999.0 is probability 0.

Records are hand-written in the layouts of openai-python's ``ChatCompletionTokenLogprob``
(``token``, ``logprob``, ``bytes``, ``top_logprobs``) and the legacy ``Logprobs``
(``tokens``, ``token_logprobs``, ``top_logprobs``: one ``{token: logprob}`` map per token).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from calibkit.errors import InputError
from calibkit.loaders import ReadOptions, read_predictions
from calibkit.loaders.records import read_records
from calibkit.sources.predictions import ConfidenceRows


def chat(
    top: list[tuple[str, float]], answer: tuple[str, float] | None = None, **extra: Any
) -> dict[str, Any]:
    token, lp = answer or top[0]
    entries = [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in top]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": token},
                "logprobs": {
                    "content": [
                        {
                            "token": token,
                            "logprob": lp,
                            "bytes": list(token.encode()),
                            "top_logprobs": entries,
                        }
                    ]
                },
            }
        ],
        **extra,
    }


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def error_of(path: Path) -> str:
    with pytest.raises(InputError) as err:
        read_predictions(path)
    return str(err.value)


L = math.log


def test_chat_confidence_is_the_answer_probability_not_renormalised(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.jsonl",
        [
            chat([("B", L(0.6)), ("A", L(0.2)), ("C", L(0.1))], target="B"),  # tail 0.1
            chat([("A", L(0.5)), ("B", L(0.45))], target=" B "),  # wrong; tail 0.05
            chat([("C", L(0.3)), ("D", L(0.3))], correct=True),  # the field wins
        ],
    )
    rows = read_predictions(path)
    assert isinstance(rows, ConfidenceRows)
    np.testing.assert_allclose(rows.confidence, [0.6, 0.5, 0.3], rtol=1e-12)
    # renormalised over the top-k they would be 0.6/0.9, 0.5/0.95, 0.5: not what we read
    assert rows.correct.tolist() == [1.0, 0.0, 1.0]
    _, cols = read_records(path, ReadOptions(), str(path))
    np.testing.assert_allclose(cols["tail_mass"], [0.1, 0.05, 0.4], atol=1e-12)
    assert cols["answer_token"].tolist() == ["B", "A", "C"]


def test_vllm_sentinel_is_probability_zero(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.jsonl",
        [chat([("A", L(0.7)), ("B", L(0.2)), ("C", -9999.0)], target="A")],
    )
    rows = read_predictions(path)
    assert rows.confidence.tolist() == [pytest.approx(0.7)]  # type: ignore[attr-defined]
    _, cols = read_records(path, ReadOptions(), str(path))
    assert cols["tail_mass"].tolist() == [pytest.approx(0.1)]  # exp(-9999) is not mass either


def test_answer_sentinel_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.jsonl",
        [
            chat([("A", L(0.7))], target="A"),
            chat([("A", L(0.7))], answer=("B", -9999.0), target="A"),
        ],
    )
    assert error_of(path) == (
        f"{path}: line 2: the answer token's log-probability is -9999.0 (vLLM's sentinel for "
        "-inf): its confidence is unknown"
    )


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (
            chat([("A", L(0.7)), ("B", L(0.6))], target="A"),
            "line 1: the top-k probabilities sum to 1.3, above 1",
        ),
        (
            chat([("A", 0.5)], target="A"),
            "line 1: the answer's logprob 0.5 is not a log-probability (<= 0)",
        ),
        (
            chat([("A", L(0.5)), ("B", float("nan"))], target="A"),
            "line 1: a top_logprobs logprob nan is not",
        ),
        (
            chat([("A", L(0.5))], answer=("A", float("nan")), target="A"),
            "line 1: the answer's logprob nan",
        ),
        (chat([("A", L(0.5))]), "line 1: no 'correct' field, and no 'target' or 'answer'"),
        ({"logprobs": {"content": []}, "target": "A"}, "line 1: logprobs.content holds no tokens"),
        ({"logprobs": {"text": "x"}, "target": "A"}, "line 1: logprobs holds neither 'content'"),
        (chat([("A", L(0.5))], target="A", correct=3), "line 1: correct must be 0 or 1"),
    ],
)
def test_topk_bad_records(tmp_path: Path, record: dict[str, Any], problem: str) -> None:
    path = write(tmp_path / "t.jsonl", [record])
    msg = error_of(path)
    assert msg.startswith(f"{path}: {problem}"), msg


def test_sum_within_tolerance_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", [chat([("A", L(0.6)), ("B", L(0.4005))], target="A")])
    _, cols = read_records(path, ReadOptions(), str(path))
    assert cols["tail_mass"].tolist() == [0.0]


def test_legacy_completions_and_batch_output(tmp_path: Path) -> None:
    legacy = {
        "choices": [
            {
                "text": " B",
                "logprobs": {
                    "tokens": [" B", "."],
                    "token_logprobs": [L(0.8), L(0.9)],
                    "top_logprobs": [{" B": L(0.8), " A": L(0.15)}, {".": L(0.9)}],
                    "text_offset": [0, 2],
                },
            }
        ],
        "answer": "B",
    }
    batch = {
        "custom_id": "q1",
        "response": {"status_code": 200, "body": chat([("A", L(0.4)), ("B", L(0.35))])},
        "target": "B",
    }
    path = write(tmp_path / "t.jsonl", [legacy, batch])
    rows = read_predictions(path)
    np.testing.assert_allclose(rows.confidence, [0.8, 0.4])  # type: ignore[attr-defined]
    assert rows.correct.tolist() == [1.0, 0.0]  # type: ignore[attr-defined]
    _, cols = read_records(path, ReadOptions(), str(path))
    np.testing.assert_allclose(cols["tail_mass"], [0.05, 0.25], atol=1e-12)


def test_a_record_without_logprobs_after_the_first(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", [chat([("A", L(0.5))], target="A"), {"target": "A"}])
    assert error_of(path) == f"{path}: line 2: no 'logprobs' (the first record has them)"


def test_odd_response_fields_are_no_traceback(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", [{"response": "text", "choices": "none", "target": "A"}])
    assert "a record of no known layout" in error_of(path)
