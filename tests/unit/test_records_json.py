"""lm-evaluation-harness samples as lm-eval really wrote them over its versions: JSON Lines in
``samples_<task>_<date>.json`` (May to June 2024), a pretty-printed JSON array in
``<model_args>_<task>.jsonl`` (v0.4.0 to v0.4.2); output directories mixing multiple-choice and
generation tasks, or holding several runs of one task; text targets that look like indices.

Every file is hand-written here in tmp_path (lm-eval's record layout: ``target`` as text,
``arguments`` as ``gen_args_i`` / ``arg_j``, responses as text).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from calibkit.errors import InputError
from calibkit.loaders import ReadOptions, read_predictions
from calibkit.loaders.records import (
    known_tasks,
    read_records,
    read_samples_files,
    record_files,
    task_of,
)
from calibkit.readers import format_for, read_arrays
from calibkit.readers.jsonl import first_char, iter_records
from calibkit.sources.predictions import Predictions


def mc(
    doc_id: int, lls: list[float], target: Any, choices: list[str] | None = None
) -> dict[str, Any]:
    """An lm-eval multiple-choice sample record (text values, as lm-eval writes them)."""
    choices = choices or [f"answer {i}" for i in range(len(lls))]
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
        "acc": 1.0,
    }


def gen(doc_id: int) -> dict[str, Any]:
    """An lm-eval generation-task record: the responses are text."""
    return {
        "doc_id": doc_id,
        "doc": {"question": "Q?"},
        "target": "A",
        "arguments": {"gen_args_0": {"arg_0": "Q?", "arg_1": {"until": ["\n"]}}},
        "resps": [["A  "]],
        "filtered_resps": ["A  "],
        "filter": "none",
        "exact_match": 1.0,
    }


RECORDS = [mc(0, [-1.0, -2.0], "0"), mc(1, [-3.0, -1.0, -2.5], "1"), mc(2, [-0.5, -0.7], "1")]


def lines(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def array(path: Path, records: list[Any]) -> Path:
    """As lm-eval v0.4.0 to v0.4.2 wrote a samples file: ``json.dumps(samples, indent=2)``."""
    path.write_text(json.dumps(records, indent=2, ensure_ascii=False))
    return path


def error_of(path: Path | str, options: ReadOptions | None = None) -> str:
    with pytest.raises(InputError) as err:
        read_predictions(path, options)
    text = str(err.value)
    assert "\n" not in text
    return text


def same(a: Any, b: Any) -> None:
    assert isinstance(a, Predictions) and isinstance(b, Predictions)
    assert a.labels.tolist() == b.labels.tolist()
    assert a.scores.tolist() == b.scores.tolist()


# --------------------------------------------------------------------------------------------
# .json files (mid-2024 lm-eval): JSON Lines under another suffix


def test_json_suffix_is_a_record_format(tmp_path: Path) -> None:
    assert format_for(tmp_path / "samples_t_2024-06-17T16-06-39.458097.json", "x").name == "jsonl"
    want = read_predictions(lines(tmp_path / "samples_t.jsonl", RECORDS))
    got = read_predictions(lines(tmp_path / "samples_t_2024-06-17T16-06-39.458097.json", RECORDS))
    same(got, want)
    _, cols = read_records(
        tmp_path / "samples_t_2024-06-17T16-06-39.458097.json",
        ReadOptions(),
        "x",
    )
    assert cols["doc.subject"].tolist() == ["law"] * 3


def test_a_pretty_printed_object_says_what_a_record_file_holds(tmp_path: Path) -> None:
    path = tmp_path / "results_2024-06-17T16-06-39.json"  # lm-eval's results, not samples
    path.write_text(json.dumps({"results": {"t": {"acc,none": 0.5}}}, indent=2))
    msg = error_of(path)
    assert msg.startswith(f"{path}: line 1: not JSON ("), msg
    assert msg.endswith("or a JSON array of records, not one pretty-printed object"), msg


# --------------------------------------------------------------------------------------------
# a JSON array of records (lm-eval v0.4.0 to v0.4.2)


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_json_array_of_records_is_read(tmp_path: Path, suffix: str) -> None:
    want = read_predictions(lines(tmp_path / "samples_t.jsonl", RECORDS))
    path = array(tmp_path / f"pretrained__EleutherAI__pythia-160m_arc_easy{suffix}", RECORDS)
    assert first_char(path, "x") == "["
    same(read_predictions(path), want)
    assert [n for n, _ in iter_records(path, "x")] == [0, 1, 2]
    assert read_arrays(path, "doc_id")["doc_id"].tolist() == [0.0, 1.0, 2.0]


def test_v042_task_names_come_from_results_json(tmp_path: Path) -> None:
    d = tmp_path / "out"
    d.mkdir()
    prefix = "pretrained__EleutherAI__pythia-160m,dtype__float32"  # re.sub("/|=", "__", args)
    array(d / f"{prefix}_arc_easy.jsonl", RECORDS[:2])
    array(d / f"{prefix}_arc_challenge.jsonl", RECORDS[2:])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, cols = read_samples_files(record_files(str(d)) or [], ReadOptions(), str(d))
    assert cols["task"].tolist() == [f"{prefix}_arc_challenge"] + [f"{prefix}_arc_easy"] * 2
    configs = {"arc_easy": {}, "arc_challenge": {}, "easy": {}}
    (d / "results.json").write_text(json.dumps({"results": {}, "configs": configs}, indent=2))
    assert known_tasks(d) == {"arc_easy", "arc_challenge", "easy"}
    _, cols = read_samples_files(record_files(str(d)) or [], ReadOptions(), str(d))
    assert cols["task"].tolist() == ["arc_challenge", "arc_easy", "arc_easy"]
    _, one = read_records(d / f"{prefix}_arc_easy.jsonl", ReadOptions(), "x")
    assert one["task"].tolist() == ["arc_easy", "arc_easy"]
    # a samples_ name is its own task; a results.json that is not one names nothing
    assert task_of(Path("samples_easy_2024-01-01T00-00-00.jsonl"), {"x_easy"}) == "easy"
    (d / "results.json").write_text("[1, 2")
    assert known_tasks(d) == frozenset()


def test_blank_space_before_the_array_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text("\n \t\n" + json.dumps(RECORDS, indent=2))
    assert read_predictions(path).n_rows == 3


@pytest.mark.parametrize(
    ("records", "problem"),
    [
        ([*RECORDS, mc(3, [-1.0], "0")], "record 3 has 1 choice: a question needs at least 2"),
        ([RECORDS[0], 7], "record 1: a JSON number where a record (a JSON object) belongs"),
        ([RECORDS[0], mc(1, [-1.0, -2.0], "zebra")], "record 1: target 'zebra' is neither"),
        ([RECORDS[0], RECORDS[0]], "record 1: doc_id 0 appears again (record 0)"),
        ([], "holds no records"),
    ],
)
def test_array_problems_name_the_record(tmp_path: Path, records: list[Any], problem: str) -> None:
    path = array(tmp_path / "samples_t.jsonl", records)
    msg = error_of(path)
    assert msg.startswith(f"{path}: {problem}"), msg


def test_a_broken_array_names_where(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(RECORDS, indent=2)[:-40])
    msg = error_of(path)
    assert msg.startswith(f"{path}: a JSON array of records that is not JSON at line "), msg


def test_an_array_file_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'[{"doc_id": "\xff"}]')
    assert error_of(path) == f"{path}: not UTF-8 text (byte 13)"


def test_an_array_is_checked_against_the_memory_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = array(tmp_path / "s.jsonl", RECORDS)
    monkeypatch.setenv("CALIBKIT_MEMORY_LIMIT", "1000")
    with pytest.raises(InputError) as err:
        list(iter_records(path, str(path)))  # the reader checks, whoever calls it
    assert "memory" in str(err.value)


# --------------------------------------------------------------------------------------------
# directories and patterns


def test_directory_of_samples_json_files(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    lines(d / "samples_b_2024-06-17T16-12-47.023639.json", RECORDS[:1])
    lines(d / "samples_a_2024-06-17T16-12-47.023639.json", RECORDS[1:])
    (d / "results_2024-06-17T16-12-47.023639.json").write_text(json.dumps({"r": 1}, indent=2))
    (d / "calibrator.json").write_text('{"method": "temperature"}')
    assert [p.name for p in record_files(str(d)) or []] == [
        "samples_a_2024-06-17T16-12-47.023639.json",
        "samples_b_2024-06-17T16-12-47.023639.json",
    ]
    p = read_predictions(d)
    assert isinstance(p, Predictions) and p.n_rows == 3
    _, cols = read_samples_files(record_files(str(d)) or [], ReadOptions(), str(d))
    assert cols["task"].tolist() == ["a", "a", "b"]
    assert read_predictions(str(d / "samples_*.json")).n_rows == 3


def test_directory_of_arrays_and_lines_together(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    array(d / "pretrained__gpt2_arc_easy.jsonl", RECORDS[:2])
    lines(d / "samples_hellaswag_2024-06-17T16-12-47.json", RECORDS[2:])
    (d / "results.json").write_text(json.dumps({"results": {}}, indent=2))
    p = read_predictions(d)
    assert p.n_rows == 3


def test_pattern_of_json_and_jsonl(tmp_path: Path) -> None:
    lines(tmp_path / "samples_a.json", RECORDS[:1])
    lines(tmp_path / "samples_b.jsonl", RECORDS[1:])
    assert read_predictions(str(tmp_path / "samples_*")).n_rows == 3


def test_empty_directory_names_every_format_it_may_hold(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    (d / "results_2024-06-17T16-12-47.json").write_text("{}")
    assert error_of(d) == (
        f"{d}: is a directory with no data files: it may hold .parquet or .npz shards, or "
        "lm-evaluation-harness samples files (samples_*.jsonl, samples_*.json)"
    )


def test_generation_tasks_are_left_out_of_a_directory_with_one_warning(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    date = "2026-07-08T18-15-33.115417"
    lines(d / f"samples_belief_{date}.jsonl", RECORDS[:2])
    lines(d / f"samples_desire_{date}.jsonl", RECORDS[2:])
    lines(d / f"samples_intention_{date}.jsonl", [gen(0), gen(1)])
    for spec in (str(d), str(d / "samples_*.jsonl")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            p = read_predictions(spec)
        assert p.n_rows == 3
        assert [str(w.message) for w in caught] == [
            f"{spec}: left out 1 of 3 samples files, generation tasks without per-choice "
            f"log-likelihoods: samples_intention_{date}.jsonl"
        ]
        assert all(issubclass(w.category, UserWarning) for w in caught)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        _, cols = read_samples_files(record_files(str(d)) or [], ReadOptions(), str(d))
    assert sorted(set(cols["task"].tolist())) == ["belief", "desire"]


def test_only_generation_tasks_is_an_error(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    first = lines(d / "samples_a.jsonl", [gen(0)])
    lines(d / "samples_b.jsonl", [gen(0)])
    problem = "line 1: filtered_resps holds generated text, not [log-likelihood, is_greedy] pairs"
    assert error_of(d).startswith(f"{first}: {problem}")
    assert error_of(str(d / "samples_a*")).startswith(f"{first}: {problem}")  # a one-file pattern
    assert error_of(first).startswith(f"{first}: {problem}")  # the file itself


def test_a_generation_record_after_the_first_is_still_an_error(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    lines(d / "samples_a.jsonl", RECORDS[:1])
    bad = lines(d / "samples_b.jsonl", [RECORDS[0], gen(1)])
    assert error_of(d).startswith(f"{bad}: line 2: filtered_resps holds generated text")


def test_several_runs_of_one_task_are_refused(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    lines(d / "samples_bias_2024-06-17T12-20-26.826621.json", RECORDS)
    lines(d / "samples_bias_2024-06-17T16-06-39.458097.json", RECORDS)
    lines(d / "samples_other_2024-06-17T16-06-39.458097.json", RECORDS)
    pattern = d / "samples_*_2024-06-17T16-06-39.458097.json"
    with pytest.raises(InputError) as err:
        read_predictions(d)
    assert str(err.value) == (
        f"{d}: task bias is in 2 samples files, runs of the same questions; to read one run, "
        f"give its files, e.g. {pattern}"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_predictions(str(pattern)).n_rows == 6


# --------------------------------------------------------------------------------------------
# a target that looks like an index but is an answer's text


def test_a_numeric_target_out_of_range_is_a_choice_text(tmp_path: Path) -> None:
    rec = mc(0, [-3.0, -2.0, -1.0], " 38", choices=["12", "24", "38"])
    p = read_predictions(lines(tmp_path / "s.jsonl", [rec]))
    assert p.labels.tolist() == [2]  # type: ignore[attr-defined]


def test_an_in_range_index_that_is_another_choice_text_stays_ambiguous(tmp_path: Path) -> None:
    rec = mc(0, [-3.0, -2.0, -1.0], "1", choices=["1", "2", "3"])
    msg = error_of(lines(tmp_path / "s.jsonl", [rec]))
    assert "target '1' is both the index 1 and the text of choice 0" in msg


@pytest.mark.parametrize(
    ("choices", "tail"),
    [
        (["12", "24", "36", "40", "44"], ""),
        (None, " (the record gives no choice's text)"),
    ],
)
def test_a_numeric_target_matching_nothing(
    tmp_path: Path, choices: list[str] | None, tail: str
) -> None:
    rec = mc(0, [-1.0, -2.0, -3.0, -4.0, -5.0], " 38", choices=choices)
    if choices is None:  # as lm-eval's mid-2023 dumps: the gold request only, no doc.choices
        rec["doc"] = {"question": "Q?"}
        rec["arguments"] = [["Q?", " 38"]]
    msg = error_of(lines(tmp_path / "s.jsonl", [rec]))
    assert msg.endswith(
        "line 1: target ' 38' is neither a choice index in [0, 5) nor the text of a choice" + tail
    ), msg
