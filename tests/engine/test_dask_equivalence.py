"""The Dask engine gives the local engine's numbers: every streaming command's JSON (figure
bytes for ``diagram``) on parquet shards of odd sizes, of the sample data and of generated data,
and the library's results on in-memory predictions cut at odd chunk sizes. Floats to 1e-12
relative, counts exactly (:func:`_engine_helpers.assert_same`); every dask run is checked to
have run tasks on the cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _cli import assert_ok, invoke, one_error_line
from _engine_helpers import assert_same, sample, wide, write_shards

pytest.importorskip("distributed")

#: Shard layouts of the sample data: (name, shard sizes, row-group size, rows used).
LAYOUTS = {
    "row-per-shard": ([1], None, 40),  # a shard per row, for a tiny set
    "odd": ([1, 1, 7, 100, 3, 200], 5, None),  # 1-row shards, several row groups per shard
    "group-per-shard": ([37], None, None),  # one row group per shard
    "many-small": ([13, 11], 4, None),
}


def shard_sample(tmp_path: Path, name: str, layout: str) -> Path:
    sizes, group, rows = LAYOUTS[layout]
    data = sample(name)
    logits, labels = data["logits"][:rows], data["labels"][:rows]
    return write_shards(
        tmp_path / f"{Path(name).stem}-{layout}", wide(logits, labels), sizes, row_group_size=group
    )


class Both:
    """Runs a command on the local engine and on the fixture cluster (``--scheduler``)."""

    def __init__(self, runner: Any, cluster: Any) -> None:
        self.runner, self.cluster = runner, cluster

    def tasks(self) -> int:
        return int(self.cluster.scheduler.transition_counter)

    def run(self, *args: object, json_out: bool = True) -> tuple[Any, Any]:
        local = invoke(self.runner, *args, *(["--json"] if json_out else []))
        assert_ok(local)
        before = self.tasks()
        dask = invoke(
            self.runner,
            *args,
            *(["--json"] if json_out else []),
            "--scheduler",
            self.cluster.scheduler_address,
        )
        assert_ok(dask)
        assert self.tasks() > before, "the dask run ran no task on the cluster"
        assert dask.stderr == local.stderr
        if not json_out:
            return local, dask
        return json.loads(local.stdout), json.loads(dask.stdout)

    def same(self, *args: object) -> Any:
        local, dask = self.run(*args)
        assert_same(local, dask)
        return local


@pytest.fixture
def both(runner: Any, dask_cluster: Any, healthy: Any) -> Both:
    return Both(runner, dask_cluster)


# ---------------------------------------------------------------------------------------------
# (a) the sample data as parquet shards


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_ece_on_sample_shards(both: Both, tmp_path: Path, layout: str) -> None:
    shards = shard_sample(tmp_path, "digits_hard_test.npz", layout)
    doc = both.same("ece", shards)
    assert doc["n"] == (LAYOUTS[layout][2] or len(sample("digits_hard_test.npz")["labels"]))


@pytest.mark.parametrize("bins", [1, 7, 40])
def test_ece_width_bins_and_chunks(both: Both, tmp_path: Path, bins: int) -> None:
    shards = shard_sample(tmp_path, "digits_ls10_test.npz", "odd")
    both.same("ece", shards, "--binning", "width", "--bins", bins, "--chunk-rows", 3)


def test_ece_all_is_refused_in_one_line(both: Both, tmp_path: Path) -> None:
    """``--all``'s smooth ECE and bin-sensitivity table need every confidence on one machine:
    refused on a cluster with one line naming --engine local, never gathered (#17)."""
    shards = shard_sample(tmp_path, "digits_ls10_test.npz", "many-small")
    assert_ok(invoke(both.runner, "ece", shards, "--all", "--bootstrap", 100, "--json"))
    result = invoke(
        both.runner,
        "ece",
        shards,
        "--all",
        "--bootstrap",
        100,
        "--scheduler",
        both.cluster.scheduler_address,
    )
    assert "run it with --engine local" in one_error_line(result, shards)


@pytest.mark.parametrize("layout", ["odd", "many-small"])
def test_fit_temp(both: Both, tmp_path: Path, layout: str) -> None:
    shards = shard_sample(tmp_path, "digits_hard_val.npz", layout)
    doc = both.same("fit-temp", shards)
    assert doc  # a temperature was fitted on both


@pytest.mark.parametrize("method", ["temperature", "vector", "ets", "platt"])
def test_fit_methods(both: Both, tmp_path: Path, method: str) -> None:
    val = shard_sample(tmp_path, "digits_hard_val.npz", "odd")
    test = shard_sample(tmp_path, "digits_hard_test.npz", "many-small")
    if method != "platt":
        both.same("fit", val, "--method", method, "--eval", test)
        return
    # Platt on a cluster streams (one pass per Newton step); the local engine fits the rows it
    # holds in memory: the same optimum to the fit's tolerance, not the same floats (#17)
    local, dask = both.run("fit", val, "--method", method, "--eval", test)
    for doc in (local, dask):
        for residual in ("gradient_norm", "relative_gradient"):  # near 1e-13: noise
            doc["fit"].pop(residual)
        doc["fit"].pop("passes")  # reads of the data: 1 in memory, one per Newton step streamed
    assert_same(local, dask, rel=1e-8)


def test_sweep_temp(both: Both, tmp_path: Path) -> None:
    a = shard_sample(tmp_path, "digits_hard_test.npz", "odd")
    b = shard_sample(tmp_path, "digits_ls20_test.npz", "group-per-shard")
    both.same("sweep-temp", f"a={a}", f"b={b}", "--temps", "0.25,0.5,1,1.7,4")


def test_compare_with_val(both: Both, tmp_path: Path) -> None:
    a = shard_sample(tmp_path, "digits_hard_test.npz", "odd")
    b = shard_sample(tmp_path, "digits_ls10_test.npz", "many-small")
    va = shard_sample(tmp_path, "digits_hard_val.npz", "group-per-shard")
    vb = shard_sample(tmp_path, "digits_ls10_val.npz", "odd")
    both.same("compare", f"a={a}", f"b={b}", "--val", f"a={va}", "--val", f"b={vb}")


def test_check_thresholds_and_baseline(both: Both, tmp_path: Path) -> None:
    new = shard_sample(tmp_path, "digits_ls10_test.npz", "odd")
    old = shard_sample(tmp_path, "digits_hard_test.npz", "many-small")
    both.same("check", new, "--max-ece", "0.5", "--min-accuracy", "0.5")
    both.same(
        "check", new, "--baseline", old, "--max-increase", "ece=0.2,nll=1", "--bootstrap", 200
    )


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_diagram_bytes(both: Both, tmp_path: Path, suffix: str) -> None:
    shards = shard_sample(tmp_path, "digits_hard_test.npz", "odd")
    figures = []
    for name in ("local", "dask"):
        out = tmp_path / f"{name}{suffix}"
        figures.append(out)
    local, dask = figures
    assert_ok(invoke(both.runner, "diagram", f"m={shards}", "--out", local))
    before = both.tasks()
    result = invoke(
        both.runner,
        "diagram",
        f"m={shards}",
        "--out",
        dask,
        "--scheduler",
        both.cluster.scheduler_address,
    )
    assert_ok(result)
    assert both.tasks() > before
    assert local.read_bytes() == dask.read_bytes()


# ---------------------------------------------------------------------------------------------
# (b) generated data, split in odd ways

GEN_SIZES = [1, 250, 3, 1, 500, 17]


def generated(kind: str, rng: np.random.Generator) -> dict[str, Any]:
    n, k = 1001, 7
    if kind == "confidence":
        return {
            "confidence": rng.uniform(0, 1, n),
            "correct": (rng.uniform(0, 1, n) < 0.7).astype(np.float64),
        }
    labels = rng.integers(0, k, n)
    logits = rng.normal(0, 3, (n, k))
    logits[::7] *= 3000.0  # |logits| up to ~1e4: softmax far in the tails
    logits[labels[::3], 0] += 2.0
    if kind == "logits":
        return wide(logits, labels)
    if kind == "probs":
        p = np.exp(logits / 1000 - (logits / 1000).max(axis=1, keepdims=True))
        return wide(p / p.sum(axis=1, keepdims=True), labels, prefix="prob_")
    if kind == "binary":
        return {"logit": logits[:, 0], "label": (labels % 2).astype(np.int64)}
    if kind == "soft":
        soft = rng.dirichlet(np.ones(k), n)
        return {"logits": logits, "label": soft}
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["logits", "probs", "binary", "soft", "confidence"])
def test_generated_ece(both: Both, tmp_path: Path, rng: np.random.Generator, kind: str) -> None:
    shards = write_shards(tmp_path / kind, generated(kind, rng), GEN_SIZES, row_group_size=7)
    doc = both.same("ece", shards, "--bins", 11)
    assert doc["n"] == 1001


@pytest.mark.parametrize("kind", ["logits", "binary", "soft"])
def test_generated_fit_temp(
    both: Both, tmp_path: Path, rng: np.random.Generator, kind: str
) -> None:
    shards = write_shards(tmp_path / kind, generated(kind, rng), GEN_SIZES[::-1])
    both.same("fit-temp", shards, "--chunk-rows", 64)


def test_generated_check_confidence(both: Both, tmp_path: Path, rng: np.random.Generator) -> None:
    shards = write_shards(tmp_path / "c", generated("confidence", rng), [1, 99, 2, 400])
    both.same("check", shards, "--max-ece", "0.9")
    both.same("ece", shards, "--binning", "width", "--bins", 3)


# ---------------------------------------------------------------------------------------------
# (c) in-memory predictions, cut at odd chunk sizes, through the library


@pytest.mark.parametrize("chunk_rows", [1, 7, 333, 5000])
def test_in_memory_predictions(healthy: Any, rng: np.random.Generator, chunk_rows: int) -> None:
    from calibkit.calibrators.temperature import fit_temperature
    from calibkit.engine.dask_executor import DaskExecutor
    from calibkit.engine.executors import using_executor
    from calibkit.metrics.summary import summarize
    from calibkit.report.summary_json import summary_to_dict
    from calibkit.sources.predictions import ConfidenceRows, Predictions

    n, k = 1001 if chunk_rows > 1 else 97, 5
    logits = rng.normal(0, 4, (n, k))
    logits[::5] *= 2500.0
    labels = np.where(rng.uniform(size=n) < 0.7, logits.argmax(axis=1), rng.integers(0, k, n))
    preds = Predictions.from_arrays(logits, labels)
    rows = ConfidenceRows.from_arrays(rng.uniform(size=n), rng.uniform(size=n) < 0.5)

    def results() -> list[Any]:
        return [
            summary_to_dict(summarize(preds, n_bins=13, chunk_rows=chunk_rows)),
            summary_to_dict(summarize(rows, n_bins=13, chunk_rows=chunk_rows)),
            fit_temperature(preds, chunk_rows=chunk_rows).temperature,
        ]

    local = results()
    ex = DaskExecutor(healthy)
    assert ex.partition_hint() > 1
    with using_executor(ex):
        dask = results()
    assert_same(local, dask)
