"""Regression tests of the review of issue #18 (command line): each builds its input in
``tmp_path``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli import assert_exit, assert_ok, invoke, one_error_line, run_json
from typer.testing import CliRunner

from calibkit.errors import ExitStatus


def _fractional(tmp_path: Path, name: str = "f.jsonl") -> Path:
    """Confidence rows with correctness 1, 0.5 and 0: the mean is 0.5 (a >= 0.5 threshold would
    count 2 of 3)."""
    path = tmp_path / name
    rows = [(0.5, 1), (0.9, 0.5), (0.7, 0)]
    path.write_text("".join(json.dumps({"confidence": c, "correct": k}) + "\n" for c, k in rows))
    return path


# 1. fractional correctness: the accuracy is the mean everywhere


def test_ece_accuracy_of_fractional_correctness(runner: CliRunner, tmp_path: Path) -> None:
    assert run_json(runner, "ece", _fractional(tmp_path))["accuracy"] == 0.5


def test_check_min_accuracy_uses_the_mean(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "check", _fractional(tmp_path), "--min-accuracy", "0.6")
    assert_exit(result, ExitStatus.CHECK_FAILED)
    assert "accuracy 0.5000 < limit 0.6" in result.output
    assert_ok(invoke(runner, "check", _fractional(tmp_path), "--min-accuracy", "0.5"))


def test_check_json_and_selective_agree(runner: CliRunner, tmp_path: Path) -> None:
    f = _fractional(tmp_path)
    out = json.loads(invoke(runner, "check", f, "--min-accuracy", "0.6", "--json").stdout)
    assert out["checks"][0]["value"] == 0.5
    assert run_json(runner, "selective", f, quiet=False)["accuracy"] == 0.5


def test_compare_accuracy_of_fractional_correctness(runner: CliRunner, tmp_path: Path) -> None:
    a, b = _fractional(tmp_path, "a.jsonl"), _fractional(tmp_path, "b.jsonl")
    out = run_json(runner, "compare", f"A={a}", f"B={b}", quiet=False)
    text = json.dumps(out)
    assert "0.6666" not in text
    accs = [m["accuracy"] for m in out["models"]] if "models" in out else None
    assert accs is None or accs == [0.5, 0.5]


# 2. HELM names: the table says which Platt numbers are HELM's (in-sample), which cross-fitted


def _conf_rows(tmp_path: Path, n: int = 300, name: str = "c.jsonl") -> Path:
    import numpy as np

    rng = np.random.default_rng(11)
    c = np.round(rng.uniform(0.2, 1.0, n), 6)
    y = (rng.uniform(0, 1, n) < c).astype(int)
    path = tmp_path / name
    path.write_text(
        "".join(
            json.dumps({"confidence": float(a), "correct": int(b)}) + "\n"
            for a, b in zip(c, y, strict=True)
        )
    )
    return path


def test_selective_table_labels_helm_and_cross_fitted(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "selective", _conf_rows(tmp_path))
    assert_ok(result)
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line.count("│") >= 3}
    assert "same rows" in lines["platt_ece_10_bin"] and "HELM" in lines["platt_ece_10_bin"]
    assert "cross-fitted" in lines["platt_ece_10_bin_cv"]
    assert "cross-fitted" in lines["ts_ece_10_bin_cv"]
    doc = run_json(runner, "selective", _conf_rows(tmp_path), quiet=False)
    assert {"platt_ece_10_bin", "platt_ece_10_bin_cv", "platt_coef", "ts_ece_10_bin_cv"} <= set(doc)
    assert "platt_ece_10_bin_in_sample" not in doc


# 3. no "(whole tie group)" without ties


def test_selective_says_tie_group_only_for_ties(runner: CliRunner, tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(2)
    c = rng.permutation(np.linspace(0.3, 0.99, 1065))  # 1065 distinct values: ceil(.1 N) = 107
    y = (rng.uniform(0, 1, 1065) < c).astype(int)
    path = tmp_path / "d.jsonl"
    rows = [{"confidence": float(a), "correct": int(b)} for a, b in zip(c, y, strict=True)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = invoke(runner, "selective", path)
    assert_ok(result)
    assert "the 107 most confident" in result.stdout
    assert "tie group" not in result.stdout
    tied = tmp_path / "t.jsonl"
    tied.write_text(
        "".join(json.dumps({"confidence": 0.9, "correct": i % 2}) + "\n" for i in range(10))
    )
    result = invoke(runner, "selective", tied)
    assert_ok(result)
    assert "(whole tie group)" in result.stdout


# 4. selective reads verbalised confidences and length-normalised lm-eval samples


def test_selective_parse_confidence(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "v.jsonl"
    rows = [("90%", True), ("0.8", True), ("7/10", False), ("60 %", True), ("0.3", False)]
    path.write_text("".join(json.dumps({"confidence": c, "correct": k}) + "\n" for c, k in rows))
    doc = run_json(runner, "selective", path, "--parse-confidence", "--folds", "2", quiet=False)
    assert doc["n"] == 5 and doc["accuracy"] == 0.6
    assert doc["max_prob"] == pytest.approx((0.9 + 0.8 + 0.7 + 0.6 + 0.3) / 5, abs=1e-15)


def test_selective_length_normalize(runner: CliRunner, tmp_path: Path) -> None:
    # choice 0 is longer: by total log-likelihood choice 1 wins, per character choice 0 wins
    def rec(i: int) -> dict[str, object]:
        choices = ["a long long answer", "b"]
        lls = [-3.0, -2.0]
        return {
            "doc_id": i,
            "doc": {"choices": choices},
            "target": "0",
            "arguments": {
                f"gen_args_{j}": {"arg_0": "Q?\nAnswer:", "arg_1": f" {c}"}
                for j, c in enumerate(choices)
            },
            "resps": [[[str(v), "False"]] for v in lls],
            "filtered_resps": [[str(v), "False"] for v in lls],
            "filter": "none",
        }

    path = tmp_path / "samples_t_2024-01-01T00-00-00.jsonl"
    path.write_text("".join(json.dumps(rec(i)) + "\n" for i in range(4)))
    plain = run_json(runner, "selective", path, "--folds", "2", quiet=False)
    char = run_json(
        runner, "selective", path, "--folds", "2", "--length-normalize", "char", quiet=False
    )
    assert plain["accuracy"] == 0.0 and char["accuracy"] == 1.0


# 5. compare: a missing (NaN) NLL / Brier cell is never marked best


def test_compare_never_marks_a_missing_cell_best(runner: CliRunner, tmp_path: Path) -> None:
    a, b = _conf_rows(tmp_path, name="a.jsonl"), _conf_rows(tmp_path, 200, name="b.jsonl")
    result = invoke(runner, "compare", f"A={a}", f"B={b}")
    assert_ok(result)
    assert "-*" not in result.stdout
    assert "*" in result.stdout.split("\n", 1)[1]  # the known columns keep their marker
    md = invoke(runner, "compare", f"A={a}", f"B={b}", "--markdown")
    assert_ok(md)
    assert "**-**" not in md.stdout and "**" in md.stdout


# 6. check --group-by: a skipped group shows "-", not "nan"; 7. messages name the file first


def _grouped_rows(tmp_path: Path) -> Path:
    import numpy as np

    rng = np.random.default_rng(4)
    path = tmp_path / "g.jsonl"
    lines = []
    for subject, n in (("big", 320), ("small", 40)):
        c = np.round(rng.uniform(0.2, 1.0, n), 6)
        for a, b in zip(c, rng.uniform(0, 1, n) < c, strict=True):
            lines.append(json.dumps({"confidence": float(a), "correct": bool(b), "s": subject}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_check_skipped_group_shows_a_dash(runner: CliRunner, tmp_path: Path) -> None:
    f = _grouped_rows(tmp_path)
    args = ("check", f, "--max-ece", "0.5", "--group-by", "s", "--group-min-rows", "100")
    table = invoke(runner, *args)
    assert_ok(table)
    row = next(line for line in table.stdout.splitlines() if "max_ece[s=small]" in line)
    assert "nan" not in row and "skip" in row
    assert row.split("│")[3].strip() == "-"  # check | N | value
    md = invoke(runner, *args, "--markdown")
    assert_ok(md)
    row = next(line for line in md.stdout.splitlines() if "max_ece[s=small]" in line)
    assert "nan" not in row and row.split("|")[2].strip() == "-"


def test_check_max_nll_on_confidence_rows_names_the_file(runner: CliRunner, tmp_path: Path) -> None:
    f = _fractional(tmp_path)
    problem = one_error_line(invoke(runner, "check", f, "--max-nll", "0.5"), f)
    assert problem.startswith("cannot check nll:")


def test_check_small_group_warning_names_the_file(runner: CliRunner, tmp_path: Path) -> None:
    f = _grouped_rows(tmp_path)
    result = invoke(runner, "check", f, "--max-ece", "0.5", "--group-by", "s")
    assert_ok(result)
    warnings = [w for w in result.stderr.splitlines() if "fewer than" in w]
    assert len(warnings) == 1 and warnings[0].startswith(f"calibkit: warning: {f}: ")


# 8. compare --group-by: each refused option gets a hint that fits it


@pytest.mark.parametrize(
    ("extra", "hint"),
    [
        (("--markdown",), "calibkit check PRED --group-by COLUMN --markdown"),
        (("--out-dir", "OUT"), "use --json and redirect it"),
        (("--ts-on-test",), "calibkit fit-temp VAL --group-by COLUMN"),
    ],
)
def test_compare_group_by_refusal_hints(
    runner: CliRunner, tmp_path: Path, extra: tuple[str, ...], hint: str
) -> None:
    a, b = _fractional(tmp_path, "a.jsonl"), _fractional(tmp_path, "b.jsonl")
    args = [str(tmp_path / "out") if x == "OUT" else x for x in extra]
    problem = one_error_line(
        invoke(runner, "compare", f"A={a}", f"B={b}", "--group-by", "s", *args)
    )
    assert problem.startswith(f"{extra[0]} is not available with --group-by")
    assert hint in problem
    if extra[0] != "--ts-on-test":
        assert "fit-temp" not in problem
    assert not (tmp_path / "out").exists()


# 9. apply / apply-temp on a directory of lm-eval samples: read-only inputs, not an extension


def _samples_dir(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    for task in ("a", "b"):
        recs = []
        for i in range(30):
            lls = [-1.0 - (i % 3), -2.0, -1.5 + (i % 2)]
            recs.append(
                {
                    "doc_id": i,
                    "doc": {"choices": ["x", "y", "z"]},
                    "target": str(i % 3),
                    "arguments": {
                        f"gen_args_{j}": {"arg_0": "Q?", "arg_1": f" {c}"}
                        for j, c in enumerate("xyz")
                    },
                    "resps": [[[str(v), "False"]] for v in lls],
                    "filtered_resps": [[str(v), "False"] for v in lls],
                    "filter": "none",
                }
            )
        path = d / f"samples_{task}_2024-01-01T00-00-00.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return d


@pytest.mark.parametrize("command", ["apply-temp", "apply"])
@pytest.mark.parametrize("out_name", ["x.npz", "outdir"])
def test_apply_on_a_samples_directory_says_read_only(
    runner: CliRunner, tmp_path: Path, command: str, out_name: str
) -> None:
    d = _samples_dir(tmp_path)
    cal = tmp_path / "t.json"
    assert_ok(invoke(runner, "fit-temp", d, "--out", cal))
    out = tmp_path / out_name
    problem = one_error_line(invoke(runner, command, d, "--calibrator", cal, "--out", out), d)
    assert "read only" in problem and "directories" in problem
    assert "extension" not in problem and "''" not in problem
    assert not out.exists()
