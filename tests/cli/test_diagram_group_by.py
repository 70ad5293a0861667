"""`calibkit diagram --group-by COLUMN`: a panel per group, the largest first, ``--max-groups``,
titles, shared axes, the figure written atomically; inputs crafted in ``tmp_path``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from _cli import assert_exit, invoke, one_error_line
from typer.testing import CliRunner

from calibkit.errors import UsageError
from calibkit.metrics import summarize
from calibkit.plotting import groups as plot_groups
from calibkit.plotting.groups import largest_groups, plot_group_reliability
from calibkit.sources.predictions import Predictions

SIZES = {"law": 500, "anatomy": 135, "astronomy": 320, "logic": 60, "virology": 210}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    task = np.concatenate([[k] * n for k, n in SIZES.items()])
    rng.shuffle(task)
    y = rng.integers(0, 3, task.size)
    z = rng.normal(size=(task.size, 3))
    z[np.arange(task.size), y] += 1.0
    return {"logits": z, "labels": y, "task": task}


@pytest.fixture
def pred(tmp_path: Path) -> Path:
    np.savez(tmp_path / "p.npz", **_arrays())
    return tmp_path / "p.npz"


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures the command draws (it imports the function when it runs)."""
    drawn: list[Any] = []
    real = plot_groups.plot_group_reliability

    def spy(*args: Any, **kwargs: Any) -> Any:
        fig = real(*args, **kwargs)
        drawn.append(fig)
        return fig

    monkeypatch.setattr(plot_groups, "plot_group_reliability", spy)
    return drawn


def _panels(fig: Any) -> list[Any]:
    """The reliability axes (the count histograms have no title)."""
    return [ax for ax in fig.axes if ax.get_title()]


def test_largest_groups_first_and_the_rest_counted() -> None:
    assert largest_groups(SIZES, 3) == (["law", "astronomy", "virology"], 2)
    assert largest_groups(SIZES, 10) == (list(sorted(SIZES, key=lambda k: -SIZES[k])), 0)
    with pytest.raises(UsageError, match="max_groups must be an integer >= 1"):
        largest_groups(SIZES, 0)


def test_a_panel_per_group_with_its_label_n_and_ece(
    runner: CliRunner, pred: Path, tmp_path: Path, figures: list[Any]
) -> None:
    out = tmp_path / "fig.png"
    result = invoke(runner, "diagram", pred, "--group-by", "task", "--out", out)
    assert_exit(result, 0)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png", "p.npz"]  # no temporary left
    (fig,) = figures
    panels = _panels(fig)
    order = sorted(SIZES, key=lambda k: -SIZES[k])
    assert [ax.get_title() for ax in panels] == [f"task={k}" for k in order]
    assert len(fig.axes) == 2 * len(SIZES)  # a reliability panel and a histogram each
    a = _arrays()
    for ax, k in zip(panels, order, strict=True):
        m = a["task"] == k
        ece = summarize(Predictions.from_arrays(a["logits"][m], a["labels"][m])).ece
        (box,) = [t.get_text() for t in ax.texts if t.get_text().startswith("ECE")]
        assert box == f"ECE = {ece:.4f}\nN = {SIZES[k]}"
    # shared axes: every panel's y limits are the first's, the histograms share one scale
    assert {ax.get_ylim() for ax in panels} == {(0.0, 1.0)}
    assert len({ax.get_ylim() for ax in fig.axes if not ax.get_title()}) == 1
    assert "3 of the groups drawn have fewer than 300 rows" in result.stderr
    assert "calibkit: wrote" in result.stderr and "(5 groups)" in result.stderr


def test_max_groups_leaves_the_smallest_out_and_says_so(
    runner: CliRunner, pred: Path, tmp_path: Path, figures: list[Any]
) -> None:
    out = tmp_path / "fig.svg"
    result = invoke(
        runner, "diagram", pred, "--group-by", "task", "--max-groups", "2", "--out", out
    )
    assert_exit(result, 0)
    (fig,) = figures
    assert [ax.get_title() for ax in _panels(fig)] == ["task=law", "task=astronomy"]
    assert "3 of 5 groups by task left out of the figure" in result.stderr
    assert "the 2 largest of 5 groups shown; 3 smaller left out" in fig.get_suptitle()
    assert out.read_text().lstrip().startswith("<?xml")
    one = invoke(runner, "diagram", pred, "--group-by", "task", "--max-groups", "1", "--out", out)
    assert_exit(one, 0)
    assert [ax.get_title() for ax in _panels(figures[-1])] == ["task=law"]
    assert "the largest of 5 groups shown" in figures[-1].get_suptitle()


def test_several_models_are_columns_and_a_missing_group_is_blank(
    runner: CliRunner, pred: Path, tmp_path: Path, figures: list[Any]
) -> None:
    a = _arrays(1)
    keep = a["task"] != "logic"
    np.savez(tmp_path / "q.npz", **{k: v[keep] for k, v in a.items()})
    out = tmp_path / "fig.png"
    result = invoke(
        runner, "diagram", f"one={pred}", f"two={tmp_path / 'q.npz'}", "--group-by", "task",
        "--out", out,
    )  # fmt: skip
    assert_exit(result, 0)
    (fig,) = figures
    titles = [ax.get_title() for ax in _panels(fig)]
    assert titles[:2] == ["one · task=law", "two · task=law"]
    assert "one · task=logic" in titles and "two · task=logic" not in titles
    blank = [t.get_text() for ax in fig.axes if not ax.axison for t in ax.texts]
    assert blank == ["two · task=logic"]


def test_overlay_draws_a_line_per_group(
    runner: CliRunner, pred: Path, tmp_path: Path, figures: list[Any]
) -> None:
    out = tmp_path / "fig.png"
    result = invoke(runner, "diagram", pred, "--group-by", "task", "--overlay", "--out", out)
    assert_exit(result, 0)
    (fig,) = figures
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert sum(lab.startswith("task=") for lab in labels) == len(SIZES)
    both = invoke(
        runner, "diagram", pred, f"b={pred}", "--group-by", "task", "--overlay", "--out", out
    )
    assert "--overlay --group-by draws the groups of one model only" in one_error_line(both)


def test_a_missing_column_is_one_line_and_writes_nothing(
    runner: CliRunner, pred: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fig.png"
    msg = one_error_line(invoke(runner, "diagram", pred, "--group-by", "topic", "--out", out), pred)
    assert msg.startswith("has no column 'topic' to group by")
    assert not out.exists()


def test_the_library_function_draws_the_panels_it_is_given() -> None:
    a = _arrays()
    panels = {}
    for k in ("law", "logic"):
        m = a["task"] == k
        panels[f"task={k}"] = {
            "m": summarize(Predictions.from_arrays(a["logits"][m], a["labels"][m]))
        }
    fig = plot_group_reliability(panels, by=("task",))
    assert [ax.get_title() for ax in _panels(fig)] == ["task=law", "task=logic"]
    assert fig.get_suptitle() == "reliability by task (15 width bins)"
    long = {"task=" + "x" * 60: panels["task=law"]}
    (ax,) = _panels(plot_group_reliability(long, by=("task",)))
    assert "\n" in ax.get_title()  # wrapped, not cut or spilling over the next panel
    with pytest.raises(UsageError, match="at least one group"):
        plot_group_reliability({}, by=("task",))


def test_an_overlay_of_long_group_labels_keeps_its_legend_inside_the_figure() -> None:
    a = _arrays()
    panels = {}
    for k in SIZES:
        m = a["task"] == k
        label = f"task=mmlu_high_school_{k}_and_a_long_tail_of_words, level=1"
        panels[label] = {"m": summarize(Predictions.from_arrays(a["logits"][m], a["labels"][m]))}
    fig = plot_group_reliability(panels, by=("task", "level"), overlay=True)
    fig.draw_without_rendering()
    (legend,) = fig.legends
    box = legend.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width  # not cut at either side
    assert sum(t.get_text().startswith("task=") for t in legend.get_texts()) == len(SIZES)
