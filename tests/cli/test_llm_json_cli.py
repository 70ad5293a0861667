"""lm-eval samples as older lm-eval versions wrote them, on the command line: ``.json`` files of
JSON Lines, JSON arrays in ``.jsonl`` files, output directories mixing multiple-choice and
generation tasks (one warning line, the rest read), and a ``.json`` baseline or calibrator that
is still read as one. Every file is crafted in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _cli import assert_ok, invoke, one_error_line, run_json

DATE = "2026-07-08T18-15-33.115417"


def mc(doc_id: int, lls: list[float], target: str) -> dict[str, Any]:
    choices = [f"answer {i}" for i in range(len(lls))]
    return {
        "doc_id": doc_id,
        "doc": {"subject": "law" if doc_id % 2 else "math", "choices": choices},
        "target": target,
        "arguments": {
            f"gen_args_{i}": {"arg_0": "Q?\nAnswer:", "arg_1": f" {c}"}
            for i, c in enumerate(choices)
        },
        "resps": [[[str(v), "False"]] for v in lls],
        "filtered_resps": [[str(v), "False"] for v in lls],
        "filter": "none",
    }


def gen(doc_id: int) -> dict[str, Any]:
    return {
        "doc_id": doc_id,
        "doc": {"q": "Q?"},
        "target": "B",
        "arguments": {"gen_args_0": {"arg_0": "Q?", "arg_1": {"until": ["\n"]}}},
        "resps": [["A  "]],
        "filtered_resps": ["A  "],
        "filter": "none",
    }


RECORDS = [mc(i, [-1.0 - (i % 3) * 0.5, -1.2, -2.0 + (i % 2)], str(i % 3)) for i in range(12)]


def lines(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_a_json_file_of_json_lines_and_an_array_give_the_same_numbers(
    runner: Any, tmp_path: Path
) -> None:
    want = run_json(runner, "ece", lines(tmp_path / "samples_t.jsonl", RECORDS))
    as_json = lines(tmp_path / f"samples_t_{DATE}.json", RECORDS)
    as_array = tmp_path / "pretrained__gpt2_t.jsonl"
    as_array.write_text(json.dumps(RECORDS, indent=2))
    for path in (as_json, as_array):
        got = run_json(runner, "ece", path)
        assert got["ece"] == want["ece"] and got["n"] == want["n"] == 12


def test_a_broken_array_is_one_line(runner: Any, tmp_path: Path) -> None:
    path = tmp_path / "samples_t.jsonl"
    path.write_text(json.dumps([*RECORDS[:2], {**RECORDS[2], "target": "zebra"}], indent=2))
    msg = one_error_line(invoke(runner, "ece", path), path)
    assert msg.startswith("record 2: target 'zebra' is neither"), msg


def test_generation_files_are_left_out_with_one_warning_line(runner: Any, tmp_path: Path) -> None:
    d = tmp_path / "out"
    d.mkdir()
    lines(d / f"samples_belief_{DATE}.jsonl", RECORDS[:6])
    lines(d / f"samples_desire_{DATE}.jsonl", RECORDS[6:])
    lines(d / f"samples_intention_{DATE}.jsonl", [gen(0), gen(1)])
    (d / f"results_{DATE}.json").write_text(json.dumps({"results": {}}, indent=2))
    result = invoke(runner, "ece", d, "--json")
    assert_ok(result)
    assert result.stderr == (
        f"calibkit: warning: {d}: left out 1 of 3 samples files, generation tasks without "
        f"per-choice log-likelihoods: samples_intention_{DATE}.jsonl\n"
    )
    assert json.loads(result.stdout)["n"] == 12
    grouped = invoke(runner, "selective", d, "--group-by", "task", "--json")
    assert_ok(grouped)
    assert grouped.stderr.count("left out 1 of 3 samples files") == 1


def test_a_directory_of_generation_tasks_only_is_an_error(runner: Any, tmp_path: Path) -> None:
    d = tmp_path / "out"
    d.mkdir()
    path = lines(d / f"samples_intention_{DATE}.json", [gen(0)])
    msg = one_error_line(invoke(runner, "ece", d), path)
    assert msg.startswith("line 1: filtered_resps holds generated text"), msg


def test_a_json_baseline_and_a_json_calibrator_are_still_read_as_such(
    runner: Any, tmp_path: Path
) -> None:
    data = lines(tmp_path / f"samples_t_{DATE}.json", RECORDS)
    base = tmp_path / "base.json"
    assert_ok(invoke(runner, "ece", data, "--json", "--out", base))
    out = run_json(runner, "check", data, "--baseline", base, "--max-increase", "ece=0.5")
    assert out["paired"] is None  # a JSON of point values, not a samples file
    cal = tmp_path / "temp.json"
    assert_ok(invoke(runner, "fit-temp", data, "--out", cal))
    assert json.loads(cal.read_text())  # the calibrator, pretty-printed JSON
    msg = one_error_line(invoke(runner, "ece", cal), cal)  # not predictions: said so
    assert msg.startswith("line 1: not JSON ("), msg
    assert msg.endswith("or a JSON array of records, not one pretty-printed object"), msg
