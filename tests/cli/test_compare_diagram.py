"""`calibkit compare`, `calibkit diagram` and `calibkit ece --plot` through Typer's runner.

Every number ``compare`` prints is checked against the library: ``summarize(read_predictions())``
for the plain columns, and ``fit_temperature`` on the validation file followed by ``evaluate`` of
the logits divided by ``T`` (computed here from the npz arrays in float64) for the TS columns.
Figures are checked as files (PNG header and size, SVG and PDF signatures, decoded pixels). Bad
inputs must end with exit status 2, nothing on stdout, no traceback, exactly one
``calibkit: error: ...`` line and no file written.

Some tests pin bugs found (and fixed) while this module was written.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _cli import assert_ok, assert_one_line_error, run_json
from _cli import invoke as run
from typer.testing import CliRunner, Result

import calibkit
from calibkit.api import evaluate
from calibkit.calibrators import fit_temperature
from calibkit.cli import app
from calibkit.loaders import read_predictions
from calibkit.metrics import summarize

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
MODELS = ("hard", "ls05", "ls10", "ls20")
TOL = 1e-12
TOP_KEYS = {
    "n_bins",
    "binning",
    "ts_on_test",
    "ci_level",
    "bootstrap",
    "seed",
    "warnings",
    "models",
}
MODEL_KEYS = {
    "median_logit_gap",  # the implied label smoothing (#16)
    "implied_ls_alpha",
    "implied_ls_correct",
    "implied_ls_reason",
    "label_distribution",
    "name",
    "source",
    "n",
    "input",
    "input_reason",
    "zero_prob_rows",
    "accuracy",
    "ece",
    "mce",
    "nll",
    "brier",
    "temperature",
    "ts_fitted_on",
    "ts_source",
    "ts",
    "ci",
    "ts_ci",
}
PLAIN = ("accuracy", "ece", "mce", "nll", "brier")
TS_METRICS = ("ece", "mce", "nll", "brier")
REPORT_FILES = ["reliability.png", "report.json", "report.md", "sweep.png"]
FORMATS_MESSAGE = "figure format must be one of .png, .svg, .pdf (by extension)"


# --------------------------------------------------------------------------------------------
# helpers


def sample(model: str, split: str = "test", fmt: str = "npz") -> Path:
    return SAMPLE / f"digits_{model}_{split}.{fmt}"


def named(model: str, split: str = "test", fmt: str = "npz") -> str:
    return f"{model}={sample(model, split, fmt)}"


def warnings_of(result: Result) -> list[str]:
    prefix = "calibkit: warning: "
    return [line[len(prefix) :] for line in result.stderr.splitlines() if line.startswith(prefix)]


def arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """float64 logits and labels of an npz file."""
    with np.load(path) as f:
        return f["logits"].astype(np.float64), f["labels"]


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def assert_real_png(path: Path) -> None:
    """A PNG over 600 px each way, over 20 kB, whose pixels are not all one colour."""
    import matplotlib.image as mpimg

    width, height = png_size(path)
    assert width > 600 and height > 600, (width, height)
    assert path.stat().st_size > 20_000
    pixels = mpimg.imread(path)
    assert pixels.shape[:2] == (height, width)
    assert float(pixels[..., :3].std()) > 0.05


def markdown_tables(text: str) -> list[list[str]]:
    """The row lines of each table of a Markdown text, table by table."""
    tables: list[list[str]] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("|"):
            if not inside:
                tables.append([])
            tables[-1].append(line)
        inside = line.startswith("|")
    return tables


def markdown_rows(text: str, table: int = 0) -> list[list[str]]:
    """The cells of every row of one table of a Markdown text (the first: the comparison; the
    second: the implied label smoothing, #16)."""
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in markdown_tables(text)[table]
    ]


def write_changed_labels(tmp: Path, rows: list[int]) -> Path:
    """A copy of the hard test file with the labels of ``rows`` moved to the next class."""
    logits, labels = arrays(sample("hard"))
    labels = labels.copy()
    labels[rows] = (labels[rows] + 1) % 10
    path = tmp / "changed.npz"
    np.savez(path, logits=logits.astype(np.float32), labels=labels)
    return path


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    """Library numbers per model: summaries of test and val, T fitted on val, TS metrics."""
    out: dict[str, Any] = {}
    for m in MODELS:
        test, val = sample(m), sample(m, "val")
        t = fit_temperature(read_predictions(val)).temperature
        out[m] = {
            "summary": summarize(read_predictions(test)),
            "t": t,
            "ts": evaluate(arrays(test)[0] / t, arrays(test)[1]),
        }
    return out


# --------------------------------------------------------------------------------------------
# compare --json: schema and numbers


def test_compare_json_schema_and_numbers(runner: CliRunner, reference: dict[str, Any]) -> None:
    args = [named(m) for m in MODELS]
    vals = ["--val", named("hard", "val"), "--val", named("ls20", "val")]
    out = run_json(runner, "compare", *args, *vals)
    assert set(out) == TOP_KEYS
    assert (out["n_bins"], out["binning"], out["ts_on_test"], out["warnings"]) == (
        15,
        "width",
        False,
        [],
    )
    assert [m["name"] for m in out["models"]] == list(MODELS)
    for model in out["models"]:
        name = model["name"]
        assert set(model) == MODEL_KEYS
        ref = reference[name]
        s = ref["summary"]
        assert model["source"] == str(sample(name))
        assert model["n"] == s.n == 450
        for m in PLAIN:
            assert model[m] == pytest.approx(getattr(s, m), abs=TOL), (name, m)
        if name in ("hard", "ls20"):
            assert model["temperature"] == pytest.approx(ref["t"], rel=TOL)
            assert model["ts_fitted_on"] == "val"
            assert model["ts_source"] == str(sample(name, "val"))
            diagnostics = {"median_logit_gap", "implied_ls_alpha", "label_distribution"}  # #16
            assert set(model["ts"]) == set(TS_METRICS) | diagnostics
            for m in TS_METRICS:
                assert model["ts"][m] == pytest.approx(getattr(ref["ts"], m), abs=TOL), (name, m)
        else:
            assert model["temperature"] is None
            assert model["ts_fitted_on"] is None and model["ts_source"] is None
            assert model["ts"] is None
    hard, ls20 = out["models"][0], out["models"][3]
    assert hard["temperature"] > 1 > ls20["temperature"]
    assert hard["ts"]["nll"] < hard["nll"]


def test_compare_parquet_and_npz_give_the_same_numbers(runner: CliRunner) -> None:
    a = run_json(runner, "compare", named("ls10"), "--val", named("ls10", "val"))
    b = run_json(
        runner, "compare", named("ls10", fmt="parquet"), "--val", named("ls10", "val", "parquet")
    )
    ma, mb = a["models"][0], b["models"][0]
    assert mb["temperature"] == pytest.approx(ma["temperature"], rel=TOL)
    for m in PLAIN:
        assert mb[m] == pytest.approx(ma[m], abs=TOL), m
    for m in TS_METRICS:
        assert mb["ts"][m] == pytest.approx(ma["ts"][m], abs=TOL), m


def test_compare_mass_bins_and_bin_count(runner: CliRunner) -> None:
    out = run_json(runner, "compare", named("hard"), "--bins", "10", "--binning", "mass")
    assert (out["n_bins"], out["binning"]) == (10, "mass")
    s = summarize(read_predictions(sample("hard")), n_bins=10, binning="mass")
    assert out["models"][0]["ece"] == pytest.approx(s.ece, abs=TOL)
    assert out["models"][0]["mce"] == pytest.approx(s.mce, abs=TOL)


def test_compare_bare_paths_are_named_after_their_stems(runner: CliRunner) -> None:
    out = run_json(runner, "compare", sample("hard"), sample("ls05"))
    assert [m["name"] for m in out["models"]] == ["digits_hard_test", "digits_ls05_test"]


# --------------------------------------------------------------------------------------------
# compare --out-dir


def test_compare_out_dir_writes_the_report(runner: CliRunner, tmp_path: Path) -> None:
    out_dir = tmp_path / "report"
    args = ["compare", named("hard"), named("ls05"), "--val", named("hard", "val")]
    result = run(runner, *args, "--out-dir", out_dir, "--json")
    assert_ok(result)
    assert listing(out_dir) == REPORT_FILES  # exactly these, no temp files
    assert listing(tmp_path) == ["report"]
    for name in REPORT_FILES:
        assert f"calibkit: wrote {out_dir / name}" in result.stderr

    doc = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    assert doc == json.loads(result.stdout)

    md = (out_dir / "report.md").read_text(encoding="utf-8")
    plain = run(runner, *args, "--markdown")
    assert_ok(plain)
    assert plain.stdout in md  # the same table and notes
    assert "| model | N | accuracy | ECE | MCE | NLL | Brier | T | TS ECE |" in md
    assert "![reliability diagrams](reliability.png)" in md
    assert "](sweep.png)" in md

    for name in ("reliability.png", "sweep.png"):
        assert_real_png(out_dir / name)


def test_compare_out_dir_into_a_folder_of_other_files_is_refused(
    runner: CliRunner, tmp_path: Path
) -> None:
    """The report folder is replaced as a whole (#12), so a folder holding files calibkit did
    not write is refused, never emptied."""
    (tmp_path / "keep.txt").write_text("x")
    result = run(runner, "compare", named("ls20"), "--out-dir", tmp_path)
    assert_one_line_error(
        result,
        f"{tmp_path}: holds files calibkit did not write (keep.txt); give a new or empty "
        "folder, or one holding only an earlier calibkit report",
    )
    assert listing(tmp_path) == ["keep.txt"]
    assert (tmp_path / "keep.txt").read_text() == "x"


def test_compare_out_dir_replaces_an_earlier_report(runner: CliRunner, tmp_path: Path) -> None:
    out_dir = tmp_path / "report"
    assert_ok(run(runner, "compare", named("hard"), "--out-dir", out_dir))
    result = run(runner, "compare", named("ls20"), "--out-dir", out_dir)
    assert_ok(result)
    assert listing(out_dir) == REPORT_FILES
    assert listing(tmp_path) == ["report"]  # no temporary or old folder left
    md = (out_dir / "report.md").read_text(encoding="utf-8")
    assert "TS" not in md.split("\n\n")[1]  # no TS columns without --val
    assert "| ls20 | 450 |" in md and "| hard |" not in md


def test_compare_error_writes_no_out_dir(runner: CliRunner, tmp_path: Path) -> None:
    out_dir = tmp_path / "report"
    missing = tmp_path / "missing.npz"
    result = run(runner, "compare", named("hard"), f"x={missing}", "--out-dir", out_dir)
    assert_one_line_error(result, f"{missing}: no such file")
    assert listing(tmp_path) == []


def test_compare_out_dir_below_a_file_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    result = run(runner, "compare", named("hard"), "--out-dir", blocker / "sub")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("calibkit: error: ")
    assert len(result.stderr.splitlines()) == 1
    assert listing(tmp_path) == ["file.txt"]


# --------------------------------------------------------------------------------------------
# compare: label checks


def test_compare_different_row_counts_warn(runner: CliRunner) -> None:
    result = run(runner, "compare", named("hard"), f"hardval={sample('hard', 'val')}")
    assert_ok(result)
    assert warnings_of(result) == [
        "'hardval' and 'hard' were evaluated on different data: 449 vs 450 rows"
    ]
    assert "hardval" in result.stdout  # the table is still printed


def test_compare_same_n_different_labels_warn(runner: CliRunner, tmp_path: Path) -> None:
    changed = write_changed_labels(tmp_path, [3, 40, 41, 200, 449])
    result = run(runner, "compare", named("hard"), f"changed={changed}", "--json")
    assert_ok(result)
    message = (
        "'changed' and 'hard' have the same N (450) but different labels "
        "(5 rows differ, first at row 3)"
    )
    assert warnings_of(result) == [message]
    assert json.loads(result.stdout)["warnings"] == [message]


def test_compare_same_labels_do_not_warn(runner: CliRunner) -> None:
    """The label vector is shared across models (and npz/parquet) within a split."""
    args = [named(m) for m in MODELS]
    result = run(runner, "compare", *args, f"pq={sample('hard', fmt='parquet')}")
    assert_ok(result)
    assert result.stderr == ""


def test_compare_different_labels_flag_suppresses_the_warning(
    runner: CliRunner, tmp_path: Path
) -> None:
    changed = write_changed_labels(tmp_path, [0])
    for other in (f"changed={changed}", f"val={sample('hard', 'val')}"):
        out = run_json(runner, "compare", named("hard"), other, "--different-labels")
        assert out["warnings"] == []


# --------------------------------------------------------------------------------------------
# compare: temperature scaling columns


def test_compare_without_val_has_no_ts_columns(runner: CliRunner) -> None:
    result = run(runner, "compare", named("hard"), named("ls05"))
    assert_ok(result)
    assert result.stderr == ""
    assert "TS" not in result.stdout and " T " not in result.stdout
    assert "hard" in result.stdout and "ls05" in result.stdout
    md = run(runner, "compare", named("hard"), named("ls05"), "--markdown")
    assert_ok(md)
    assert markdown_rows(md.stdout)[0] == ["model", "N", "accuracy", "ECE", "MCE", "NLL", "Brier"]
    assert "TS ECE" not in md.stdout and "fitted on `" not in md.stdout


def test_compare_ts_on_test_fits_in_sample(runner: CliRunner) -> None:
    test = sample("ls05")
    args = ("compare", named("ls05"), named("hard"), "--val", named("hard", "val"), "--ts-on-test")
    result = run(runner, *args, "--json")
    assert_ok(result)
    out = json.loads(result.stdout)
    assert out["ts_on_test"] is True
    ls05, hard = out["models"]
    assert (ls05["ts_fitted_on"], ls05["ts_source"]) == ("test", str(test))
    assert (hard["ts_fitted_on"], hard["ts_source"]) == ("val", str(sample("hard", "val")))
    t = fit_temperature(read_predictions(test)).temperature
    assert ls05["temperature"] == pytest.approx(t, rel=TOL)
    ref = evaluate(arrays(test)[0] / t, arrays(test)[1])
    for m in TS_METRICS:
        assert ls05["ts"][m] == pytest.approx(getattr(ref, m), abs=TOL), m
    [warning] = warnings_of(result)
    assert "in-sample" in warning and "--ts-on-test" in warning
    assert out["warnings"] == [warning]

    md = run(runner, *args, "--markdown")
    assert_ok(md)
    assert f"`ls05`: T = {t:.4f} fitted on `{test}` (**in-sample**)" in md.stdout
    hard_note = f"`hard`: T = {hard['temperature']:.4f} fitted on `{sample('hard', 'val')}`"
    assert hard_note + "\n" in md.stdout  # not flagged: fitted on validation data
    assert "> **Warning:** temperature fitted on the evaluated data itself" in md.stdout


def test_compare_ts_on_test_figures_say_in_sample(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.text import Text

    import calibkit.plotting.save as save

    texts: dict[str, str] = {}
    original = save.save_figure

    def recording(fig: Any, path: Any, **kw: Any) -> Any:
        texts[Path(path).name] = "\n".join(t.get_text() for t in fig.findobj(Text))
        return original(fig, path, **kw)

    monkeypatch.setattr(save, "save_figure", recording)
    result = run(runner, "compare", named("hard"), "--ts-on-test", "--out-dir", tmp_path / "r")
    assert_ok(result)
    assert set(texts) == {"reliability.png", "sweep.png"}
    assert "fitted on validation" not in texts["sweep.png"]
    for name, text in texts.items():
        assert "in-sample" in text, name


# --------------------------------------------------------------------------------------------
# compare --markdown


def test_compare_markdown_table_and_bold_best(runner: CliRunner) -> None:
    result = run(runner, "compare", named("hard"), named("ls05"), "--markdown")
    assert_ok(result)
    lines = result.stdout.splitlines()
    assert lines[0] == "| model | N | accuracy | ECE | MCE | NLL | Brier |"
    assert lines[1] == "|---|---:|---:|---:|---:|---:|---:|"
    rows = markdown_rows(result.stdout)
    assert len(rows) == 4  # header, alignment, one per model
    hard, ls05 = rows[2], rows[3]
    assert hard[:2] == ["hard", "450"] and ls05[:2] == ["ls05", "450"]
    # by hand (15 width bins): hard acc 0.8778 ECE 0.0876 MCE 0.6055 NLL 0.5196 Brier 0.1996;
    # ls05 acc 0.9289 ECE 0.1008 MCE 0.3242 NLL 0.3045 Brier 0.1273
    assert hard[2:] == ["0.8778", "**0.0876**", "0.6055", "0.5196", "0.1996"]
    assert ls05[2:] == ["**0.9289**", "0.1008", "**0.3242**", "**0.3045**", "**0.1273**"]
    assert "ECE and MCE with 15 width bins" in result.stdout
    assert result.stderr == ""


def test_compare_markdown_bold_is_the_best_in_each_column(runner: CliRunner) -> None:
    vals = [a for m in MODELS for a in ("--val", named(m, "val"))]
    result = run(runner, "compare", *(named(m) for m in MODELS), *vals, "--markdown")
    assert_ok(result)
    out = run_json(runner, "compare", *(named(m) for m in MODELS), *vals)
    rows = markdown_rows(result.stdout)
    heads = rows[0]
    assert heads == [
        "model",
        "N",
        "accuracy",
        "ECE",
        "MCE",
        "NLL",
        "Brier",
        "T",
        "TS ECE",
        "TS MCE",
        "TS NLL",
        "TS Brier",
    ]
    assert set(rows[1]) == {"---", "---:"}
    body = rows[2:]
    assert [r[0] for r in body] == list(MODELS)
    models = out["models"]
    columns = [(h, h.lower(), False) for h in heads[2:7]]
    columns += [(h, h[3:].lower(), True) for h in heads[8:]]
    for head, metric, ts in columns:
        values = [(m["ts"] if ts else m)[metric] for m in models]
        best = int(np.argmax(values) if metric == "accuracy" else np.argmin(values))
        col = heads.index(head)
        bold = [i for i, r in enumerate(body) if r[col].startswith("**")]
        assert bold == [best], head
        assert body[best][col] == f"**{values[best]:.4f}**"
    for row, m in zip(body, models, strict=True):
        assert row[heads.index("T")] == f"{m['temperature']:.3f}"


def test_compare_table_marks_the_best(runner: CliRunner) -> None:
    result = run(runner, "compare", named("hard"), named("ls05"))
    assert_ok(result)
    assert "0.9289*" in result.stdout and "0.8778*" not in result.stdout
    assert "* = best in column" in result.stdout


def test_compare_markdown_escapes_pipes_in_names(runner: CliRunner) -> None:
    result = run(runner, "compare", f"a|b={sample('hard')}", named("ls05"), "--markdown")
    assert_ok(result)
    main, implied = markdown_tables(result.stdout)
    counts = [{line.replace("\\|", "").count("|") for line in rows} for rows in (main, implied)]
    assert counts == [{8}, {4}], (main, implied)
    assert implied[2].startswith("| a\\|b | ")


# --------------------------------------------------------------------------------------------
# compare: bad inputs


def _val_with_3_classes(tmp: Path) -> list[Any]:
    path = tmp / "three.npz"
    labels = np.arange(449) % 3
    np.savez(path, logits=np.eye(3, dtype=np.float32)[labels] * 2, labels=labels)
    return [named("hard"), "--val", f"hard={path}"]


COMPARE_BAD = [
    pytest.param(
        lambda tmp: [f"m={sample('hard')}", f"m={sample('ls05')}"],
        "model name 'm' is given more than once; give each model its own NAME",
        id="duplicate-names",
    ),
    pytest.param(
        lambda tmp: [sample("hard"), sample("hard", fmt="parquet")],
        "model name 'digits_hard_test' is given more than once; name them NAME=PATH",
        id="duplicate-stems",
    ),
    pytest.param(
        lambda tmp: [named("hard"), "--val", named("ls05", "val")],
        "--val names 'ls05', which is not one of the models",
        id="val-unknown-name",
    ),
    pytest.param(
        _val_with_3_classes,
        "{tmp}/three.npz: has 3 classes, but " + str(sample("hard")) + " has 10",
        id="val-other-classes",
    ),
    pytest.param(
        lambda tmp: [named("hard"), f"x={tmp}/missing.npz"],
        "{tmp}/missing.npz: no such file",
        id="missing-model-file",
    ),
    pytest.param(
        lambda tmp: [named("hard"), "--val", f"hard={tmp}/missing.npz"],
        "{tmp}/missing.npz: no such file",
        id="missing-val-file",
    ),
    pytest.param(
        lambda tmp: [named("hard"), "--json", "--markdown"],
        "give --json or --markdown, not both",
        id="json-and-markdown",
    ),
]


@pytest.mark.parametrize(("build", "message"), COMPARE_BAD)
def test_compare_bad_input(
    runner: CliRunner, tmp_path: Path, build: Callable[[Path], list[Any]], message: str
) -> None:
    args = build(tmp_path)
    before = listing(tmp_path)
    result = run(runner, "compare", *args, "--out-dir", tmp_path / "report")
    assert_one_line_error(result, message.format(tmp=tmp_path))
    assert listing(tmp_path) == before  # no report folder, no temp file


def test_compare_out_dir_that_is_a_file_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "report"
    target.write_text("keep me")
    result = run(runner, "compare", named("hard"), "--out-dir", target)
    assert_one_line_error(result, f"--out-dir {target} exists and is not a directory")
    assert target.read_text() == "keep me"
    assert listing(tmp_path) == ["report"]


# --------------------------------------------------------------------------------------------
# diagram


@pytest.mark.parametrize("suffix", ["png", "svg", "pdf"])
def test_diagram_writes_each_format(runner: CliRunner, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"rel.{suffix}"
    result = run(runner, "diagram", named("hard"), named("ls20"), "--out", out)
    assert_ok(result)
    assert result.stdout == ""
    assert result.stderr == f"calibkit: wrote {out}\n"
    assert listing(tmp_path) == [out.name]
    if suffix == "png":
        assert_real_png(out)
    elif suffix == "svg":
        text = out.read_text(encoding="utf-8")
        assert "<svg" in text
        assert "hard" in text and "ls20" in text  # panel titles (as comments of text paths)
        assert "reliability (15 width bins)" in text
    else:
        assert out.read_bytes().startswith(b"%PDF")
        assert out.stat().st_size > 5_000


def test_diagram_overlay_title_mass_and_many_models(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "overlay.svg"
    args = ["--overlay", "--title", "digits: hard vs smoothing", "--binning", "mass", "--bins", "8"]
    result = run(runner, "diagram", *(named(m) for m in MODELS), *args, "--out", out)
    assert_ok(result)
    text = out.read_text(encoding="utf-8")
    assert "digits: hard vs smoothing" in text
    for m in MODELS:
        ece = summarize(read_predictions(sample(m)), n_bins=8, binning="mass").ece
        assert f"{m} (ECE {ece:.4f}, N 450)" in text  # the legend entry of each model
    panels = tmp_path / "panels.png"
    assert_ok(
        run(runner, "diagram", *(named(m) for m in MODELS), "--binning", "mass", "--out", panels)
    )
    assert_real_png(panels)
    width, height = png_size(panels)
    assert width > height  # three panels in the first row, one in the second


def test_diagram_title_in_panel_mode(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "t.svg"
    assert_ok(run(runner, "diagram", sample("hard"), "--title", "Hard labels", "--out", out))
    text = out.read_text(encoding="utf-8")
    assert "Hard labels" in text
    assert "digits_hard_test" in text  # a bare path is named after its stem
    assert "reliability (15 width bins)" not in text


def test_diagram_jpg_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "rel.jpg"
    result = run(runner, "diagram", named("hard"), "--out", out)
    assert_one_line_error(result, f"{out}: {FORMATS_MESSAGE}")
    assert listing(tmp_path) == []


def test_diagram_out_over_an_input_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    # an input with a figure's extension, and a .png link to an input
    src = tmp_path / "pred.png"
    shutil.copyfile(sample("hard"), src)
    before = src.read_bytes()
    result = run(runner, "diagram", f"m={src}", "--out", src)
    assert_one_line_error(result, f"{src}: is also an input; refusing to overwrite it")
    assert src.read_bytes() == before

    link = tmp_path / "link.png"
    link.symlink_to(sample("hard"))
    result = run(runner, "diagram", f"m={sample('hard')}", "--out", link)
    assert_one_line_error(result, f"{link}: is also an input; refusing to overwrite it")
    assert listing(tmp_path) == ["link.png", "pred.png"]
    assert link.is_symlink()

    npz = sample("hard")
    result = run(runner, "diagram", npz, "--out", npz)  # .npz: not a figure format
    assert_one_line_error(result, f"{npz}: {FORMATS_MESSAGE}")


def test_diagram_missing_input_writes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "missing.npz"
    out = tmp_path / "rel.png"
    result = run(runner, "diagram", named("hard"), f"x={missing}", "--out", out)
    assert_one_line_error(result, f"{missing}: no such file")
    assert listing(tmp_path) == []


def test_diagram_out_in_a_missing_directory(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "nope" / "rel.png"
    result = run(runner, "diagram", named("hard"), "--out", out)
    assert_one_line_error(result, f"{out}: directory {str(out.parent)!r} does not exist")
    assert listing(tmp_path) == []


def test_diagram_duplicate_names_are_refused(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "rel.png"
    result = run(runner, "diagram", f"a={sample('hard')}", f"a={sample('ls05')}", "--out", out)
    assert_one_line_error(
        result, "model name 'a' is given more than once; give each model its own NAME"
    )
    assert listing(tmp_path) == []


# --------------------------------------------------------------------------------------------
# ece --plot


def test_ece_plot_prints_the_text_chart(runner: CliRunner) -> None:
    path = sample("hard")
    result = run(runner, "ece", path, "--plot")
    assert_ok(result)
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert "reliability: bar = accuracy, | = mean confidence" in lines
    bins = summarize(read_predictions(path)).bins
    rows = [line for line in lines if line[:3].strip().isdigit()]
    assert len(rows) == 15
    for i, row in enumerate(rows):
        assert row.startswith(f"{i + 1:3d} ")
        assert f"{int(bins.count[i]):7d}" in row
        if bins.count[i] == 0:
            assert row.rstrip().endswith("empty") and "|" not in row
        else:
            assert row.count("|") == 1
            assert row.endswith(f"acc {bins.accuracy[i]:.3f} conf {bins.confidence[i]:.3f}"), row
    assert [r.split()[1] for r in rows[:6]] == [
        "[0.00,0.07]",
        "(0.07,0.13]",
        "(0.13,0.20]",
        "(0.20,0.27]",
        "(0.27,0.33]",
        "(0.33,0.40]",
    ]
    assert sum(r.rstrip().endswith("empty") for r in rows) == 6
    # the metric table is still there, the per-bin table is not
    assert "ECE" in result.stdout and "0.0876" in result.stdout
    assert "confidence ┃ accuracy" not in result.stdout and "gap" not in result.stdout
    with_bins = run(runner, "ece", path)
    assert "gap" in with_bins.stdout  # (the per-bin table, without --plot)


def test_ece_plot_with_json_prints_json_only(runner: CliRunner) -> None:
    out = run_json(runner, "ece", sample("ls20"), "--plot")
    assert out["ece"] == pytest.approx(summarize(read_predictions(sample("ls20"))).ece, abs=TOL)


# --------------------------------------------------------------------------------------------
# calibkit.compare (library)


def test_api_compare_returns_a_frame(reference: dict[str, Any]) -> None:
    frame = calibkit.compare(
        {m: sample(m) for m in ("hard", "ls05")}, val={"hard": str(sample("hard", "val"))}
    )
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == ["hard", "ls05"]
    assert frame.index.name == "name"
    assert list(frame.columns) == [
        "source",
        "n",
        "input",
        "input_reason",
        "zero_prob_rows",
        "accuracy",
        "ece",
        "mce",
        "nll",
        "brier",
        "median_logit_gap",  # the implied label smoothing (#16)
        "implied_ls_alpha",
        "implied_ls_correct",
        "implied_ls_reason",
        "temperature",
        "ts_fitted_on",
        "ts_source",
        "ts_ece",
        "ts_mce",
        "ts_nll",
        "ts_brier",
        "ts_median_logit_gap",
        "ts_implied_ls_alpha",
    ]
    for name in ("hard", "ls05"):
        s = reference[name]["summary"]
        for m in PLAIN:
            assert frame.loc[name, m] == pytest.approx(getattr(s, m), abs=TOL)
    assert frame.loc["hard", "temperature"] == pytest.approx(reference["hard"]["t"], rel=TOL)
    for m in TS_METRICS:
        assert frame.loc["hard", f"ts_{m}"] == pytest.approx(
            getattr(reference["hard"]["ts"], m), abs=TOL
        )
        assert np.isnan(frame.loc["ls05", f"ts_{m}"])
    assert np.isnan(frame.loc["ls05", "temperature"])
    assert frame.loc["hard", "ts_fitted_on"] == "val"


def test_api_compare_accepts_sources() -> None:
    with pytest.warns(UserWarning, match="in-sample"):
        frame = calibkit.compare({"a": read_predictions(sample("ls10"))}, ts_on_test=True)
    assert frame.loc["a", "ts_fitted_on"] == "test"
    assert frame.loc["a", "n"] == 450


def test_api_compare_mismatched_labels_warn() -> None:
    with pytest.warns(UserWarning, match=r"'b' and 'a' were evaluated on different data"):
        frame = calibkit.compare({"a": sample("hard"), "b": sample("hard", "val")})
    assert list(frame["n"]) == [450, 449]


def test_compare_ci_brackets_the_values(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        [
            "compare",
            f"hard={sample('hard')}",
            f"ls05={sample('ls05')}",
            "--val",
            f"hard={sample('hard', 'val')}",
            "--ci",
            "0.9",
            "--bootstrap",
            "300",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["ci_level"], out["bootstrap"], out["seed"]) == (0.9, 300, 0)
    for model in out["models"]:
        for metric in ("accuracy", "ece", "nll", "brier"):
            lo, hi = model["ci"][metric]
            assert lo <= model[metric] <= hi, (model["name"], metric)
    hard = out["models"][0]
    assert set(hard["ts_ci"]) >= {"ece", "nll"}
    assert out["models"][1]["ts_ci"] is None
