"""`calibkit compare --markdown` and the report folder's ``report.md`` show the "implied label
smoothing" table that the terminal prints under the comparison (#16).

Its numbers are checked against the JSON of the same run and against a direct formula (the
median over correct rows of ``z_y - mean_{k != y} z_k``, the logits read here with numpy), its
cells against the terminal table of the same comparison, and the Markdown before it must be
what it was before the section existed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _cli import assert_ok, run_json
from _cli import invoke as run
from typer.testing import CliRunner

from calibkit.comparison import compare_models
from calibkit.loaders import read_predictions
from calibkit.report.compare_report import (
    comparison_markdown,
    diagnostics_markdown,
    diagnostics_table,
)

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
HEADING = "## Implied label smoothing"


def sample(name: str) -> Path:
    return SAMPLE / f"digits_{name}.npz"


ARGS = [
    "compare",
    f"hard={sample('hard_test')}",
    f"ls10={sample('ls10_test')}",
    "--val",
    f"hard={sample('hard_val')}",
    "--val",
    f"ls10={sample('ls10_val')}",
]


def tables(text: str) -> list[list[list[str]]]:
    """The cells of every row of each Markdown table in ``text``, table by table."""
    out: list[list[list[str]]] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("|"):
            if not inside:
                out.append([])
            cells = line.strip().strip("|").replace("\\|", "\0").split("|")
            out[-1].append([c.strip().replace("\0", "|") for c in cells])
        inside = line.startswith("|")
    return out


def alpha(x: float | None) -> str:
    """The terminal's rule, written again: 4 decimals, 3 significant digits below 0.001."""
    if x is None:
        return "-"
    return f"{x:.4f}" if x == 0 or x >= 1e-3 else f"{x:.3g}"


def four(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def median_gap(path: Path, temperature: float = 1.0) -> float:
    """The median over correctly classified rows of z_y - mean_{k != y} z_k (logits / T)."""
    with np.load(path) as f:
        z = f["logits"].astype(np.float64) / temperature
        y = f["labels"]
    k = z.shape[1]
    correct = z.argmax(axis=1) == y
    zy = z[np.arange(len(y)), y]
    gaps = zy - (z.sum(axis=1) - zy) / (k - 1)
    return float(np.median(gaps[correct]))


def cells_of(table: Any) -> list[list[str]]:
    """The rows of a Rich table, as text."""
    columns = [list(c.cells) for c in table.columns]
    return [list(row) for row in zip(*columns, strict=True)]


# --------------------------------------------------------------------------------------------
# the sample data (hard labels)


def test_markdown_section_numbers_are_the_json_numbers(runner: CliRunner) -> None:
    md = run(runner, *ARGS, "--markdown")
    assert_ok(md)
    assert md.stderr == ""
    doc = run_json(runner, *ARGS)
    _, implied = tables(md.stdout)
    assert implied[0] == ["model", "median gap", "LS alpha", "TS median gap", "TS LS alpha"]
    assert implied[1] == ["---", "---:", "---:", "---:", "---:"]
    body = implied[2:]
    assert [r[0] for r in body] == ["hard", "ls10"]
    for row, m in zip(body, doc["models"], strict=True):
        ts = m["ts"]
        assert row[1:] == [
            four(m["median_logit_gap"]),
            alpha(m["implied_ls_alpha"]),
            four(ts["median_logit_gap"]),
            alpha(ts["implied_ls_alpha"]),
        ]
        # and the JSON's numbers are the direct formula's (TS divides every gap by T)
        test = sample(f"{m['name']}_test")
        assert m["median_logit_gap"] == pytest.approx(median_gap(test), rel=1e-9)
        assert ts["median_logit_gap"] == pytest.approx(median_gap(test, m["temperature"]), rel=1e-9)
        g = m["median_logit_gap"]
        assert m["implied_ls_alpha"] == pytest.approx(10 / (np.exp(g) + 9), rel=1e-9)
    # hand-checked on the sample data: the hard model implies almost no smoothing, the
    # alpha = 0.10 model about 0.13; after TS both sit near 0.0025
    assert body[0][1:] == ["24.3929", "2.55e-10", "8.3450", "0.0024"]
    assert body[1][1:] == ["4.1829", "0.1341", "8.2649", "0.0026"]
    assert "which divides every gap by T" in md.stdout
    assert "`-`" not in md.stdout.split(HEADING)[1]  # no dash, so no note on dashes


def test_the_section_comes_after_the_main_table_and_leaves_it_as_it_was(
    runner: CliRunner,
) -> None:
    md = run(runner, *ARGS, "--markdown")
    assert_ok(md)
    before, heading, after = md.stdout.partition("\n" + HEADING + "\n")
    assert heading and HEADING not in after
    # what --markdown printed before #16, byte for byte
    lines = before.splitlines()
    assert lines[0].startswith("| model | N | accuracy | ECE |")
    assert lines[4] == ""
    assert lines[5].startswith("- ECE and MCE with 15 width bins; NLL in nats; TS = ")
    assert lines[6:] == [
        f"- `hard`: T = {run_json(runner, *ARGS)['models'][0]['temperature']:.4f} fitted on "
        f"`{sample('hard_val')}`",
        f"- `ls10`: T = {run_json(runner, *ARGS)['models'][1]['temperature']:.4f} fitted on "
        f"`{sample('ls10_val')}`",
    ]
    assert before.endswith("`\n")
    assert after.startswith("\n| model | median gap |")
    assert after.endswith("\n") and not after.endswith("\n\n")


def test_report_md_shows_the_section(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert_ok(run(runner, *ARGS, "--out-dir", out))
    md = (out / "report.md").read_text(encoding="utf-8")
    plain = run(runner, *ARGS, "--markdown")
    assert_ok(plain)
    assert plain.stdout.count(HEADING) == 1
    assert md == (
        "# Calibration report\n\n"
        + plain.stdout
        + "\n## Reliability diagrams\n\n![reliability diagrams](reliability.png)\n"
        + "\n## Temperature sweep\n\n![ECE and NLL against temperature](sweep.png)\n"
    )
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    _, implied = tables(md)
    for row, m in zip(implied[2:], doc["models"], strict=True):
        assert row[1] == four(m["median_logit_gap"]) and row[2] == alpha(m["implied_ls_alpha"])


def test_markdown_cells_are_the_terminal_cells() -> None:
    sources = {n: read_predictions(sample(f"{n}_test")) for n in ("hard", "ls10")}
    vals = {"ls10": read_predictions(sample("ls10_val"))}  # hard: no TS, dashes
    comp = compare_models(sources, val=vals)
    terminal = diagnostics_table(comp)
    [implied] = tables(diagnostics_markdown(comp))
    assert implied[0] == [str(c.header) for c in terminal.columns]
    assert implied[2:] == cells_of(terminal)
    assert implied[2][3:] == ["-", "-"]
    assert "`-`: no TS fitted" in diagnostics_markdown(comp)
    assert comparison_markdown(comp).endswith(diagnostics_markdown(comp))


def test_long_comparison_markdown_has_the_section(runner: CliRunner) -> None:
    args = [*ARGS, "--method", "temperature,vector"]
    md = run(runner, *args, "--markdown")
    assert_ok(md)
    doc = run_json(runner, *args)
    main, implied = tables(md.stdout)
    assert main[0][:2] == ["model", "method"]
    assert implied[0] == ["model", "median gap", "LS alpha", "TS median gap", "TS LS alpha"]
    for row, m in zip(implied[2:], doc["models"], strict=True):
        assert row[1:3] == [four(m["median_logit_gap"]), alpha(m["implied_ls_alpha"])]


# --------------------------------------------------------------------------------------------
# soft labels; nothing measured


def test_soft_label_columns_equal_the_json(runner: CliRunner, tmp_path: Path) -> None:
    """A model with vote-share labels beside one with hard labels: the soft-label columns
    appear (as on the terminal), with ``-`` for the hard-label model."""
    with np.load(sample("ls10_test_votes")) as f:
        logits, votes = f["logits"], f["labels"]
    shares = tmp_path / "shares.npz"
    np.savez(shares, logits=logits, labels=votes / votes.sum(axis=1, keepdims=True))
    args = [
        "compare",
        f"soft={shares}",
        f"hard={sample('hard_test')}",
        "--val",
        f"soft={sample('ls10_val')}",
        "--different-labels",
    ]
    md = run(runner, *args, "--markdown")
    assert_ok(md)
    doc = run_json(runner, *args)
    assert f"{HEADING}; soft labels (nats)\n" in md.stdout
    _, implied = tables(md.stdout)
    assert implied[0] == [
        "model", "median gap", "LS alpha", "TS median gap", "TS LS alpha",
        "KL", "H(p)", "H(t)", "TS KL", "TS H(p)",
    ]  # fmt: skip
    soft, hard = doc["models"]
    dist, ts_dist = soft["label_distribution"], soft["ts"]["label_distribution"]
    assert implied[2] == [
        "soft",
        four(soft["median_logit_gap"]),
        alpha(soft["implied_ls_alpha"]),
        four(soft["ts"]["median_logit_gap"]),
        alpha(soft["ts"]["implied_ls_alpha"]),
        four(dist["kl_divergence"]),
        four(dist["entropy_predictions"]),
        four(dist["entropy_labels"]),
        four(ts_dist["kl_divergence"]),
        four(ts_dist["entropy_predictions"]),
    ]
    assert hard["label_distribution"] is None and hard["ts"] is None
    assert implied[3] == [
        "hard",
        four(hard["median_logit_gap"]),
        alpha(hard["implied_ls_alpha"]),
        *["-"] * 7,
    ]
    note = md.stdout.split(HEADING)[1]
    assert "KL = `KL(t‖p)`" in note and "`-`: no TS fitted, hard labels" in note


def test_nothing_measured_is_a_dash(runner: CliRunner, tmp_path: Path) -> None:
    """No row classified correctly: no gap, no alpha; the JSON says why, the table shows
    ``-`` and its note points there."""
    labels = np.arange(60) % 3
    logits = np.eye(3)[(labels + 1) % 3] * 2.0  # every argmax wrong
    path = tmp_path / "wrong.npz"
    np.savez(path, logits=logits, labels=labels)
    md = run(runner, "compare", f"w={path}", "--markdown")
    assert_ok(md)
    doc = run_json(runner, "compare", f"w={path}", quiet=False)
    [m] = doc["models"]
    assert m["median_logit_gap"] is None and m["implied_ls_reason"]
    _, implied = tables(md.stdout)
    assert implied == [
        ["model", "median gap", "LS alpha"],
        ["---", "---:", "---:"],
        ["w", "-", "-"],
    ]
    assert "`-`: nothing measured (`implied_ls_reason` in the JSON)" in md.stdout
