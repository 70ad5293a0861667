"""Faults on the Dask engine: a worker killed in the middle of a pass (the numbers are still
the local engine's: Dask runs the lost parts again), a task that always kills its worker (one
line, exit 3), a corrupt shard among good ones (the shard's own error line, exit 2: the
InputError raised on the worker reaches the client as itself), calibkit's errors through
pickle, and no output file when a pass fails on its last shard."""

from __future__ import annotations

import os
import pickle
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _cli import assert_exit, invoke, one_error_line
from _engine_helpers import sample, wide, write_shards

from calibkit.errors import ExitStatus, InputError, OutputError, Param, UsageError

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")


@pytest.fixture(autouse=True)
def by_value() -> Iterator[None]:
    """The workers cannot import this test module: send its functions and classes by value."""
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    yield
    cloudpickle.unregister_pickle_by_value(module)


def _predictions(n: int = 600, k: int = 4) -> Any:
    from calibkit.sources.predictions import Predictions

    rng = np.random.default_rng(7)
    return Predictions.from_arrays(rng.normal(0, 2, (n, k)), rng.integers(0, k, n))


def _sums(chunk: Any) -> tuple[int, int, float, float]:
    """A chunk's small sums (the shape of a real pass's results), slow enough that a kill
    lands while parts are in flight."""
    import time

    time.sleep(0.02)
    s = np.asarray(chunk.scores, dtype=np.float64)
    return chunk.start, chunk.rows, float(s.sum()), float((s * s).sum())


def _run(source: Any, chunk_rows: int, executor: Any = None, on_merge: Any = None) -> list[Any]:
    from calibkit.engine.passes import run_pass

    seen: list[Any] = []

    def merge(result: Any) -> None:
        seen.append(result)
        if on_merge is not None:
            on_merge(len(seen))

    run_pass(source, _sums, merge, chunk_rows=chunk_rows, executor=executor)
    return seen


def test_worker_killed_mid_pass_gives_the_right_numbers(healthy: Any) -> None:
    from calibkit.engine.dask_executor import DaskExecutor

    client = healthy
    preds = _predictions()
    local = _run(preds, 5)
    pids = client.run(os.getpid)  # {worker address: pid}
    victim = sorted(pids.values())[0]
    killed: list[int] = []

    def kill_once(merged: int) -> None:
        if merged == 3 and not killed:  # parts are in flight on both workers now
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    dask = _run(preds, 5, DaskExecutor(client), kill_once)
    assert killed
    assert dask == local  # every chunk once, in row order, the same sums
    client.wait_for_workers(2, timeout=120)
    assert victim not in client.run(os.getpid).values()  # the nanny started a new worker


class _Killer:
    """A chunk function that kills its worker process on the chunk of row ``row``."""

    def __init__(self, row: int) -> None:
        self.row = row

    def __call__(self, chunk: Any) -> Any:
        if chunk.start <= self.row < chunk.start + chunk.rows:
            os._exit(1)
        return chunk.rows


def test_a_task_that_always_kills_its_worker_is_one_engine_error(doomed: Any) -> None:
    from calibkit.engine.dask_executor import DaskExecutor, EngineError
    from calibkit.engine.passes import run_pass

    with pytest.raises(EngineError) as err:
        run_pass(
            _predictions(),
            _Killer(123),
            lambda r: None,
            chunk_rows=50,
            executor=DaskExecutor(doomed),
        )
    assert err.value.exit_code == ExitStatus.ENGINE_FAILED
    assert "\n" not in str(err.value) and "killed" in str(err.value)


def test_cli_task_that_kills_workers_exits_3(
    doomed: Any, runner: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    from calibkit.engine import passes

    class KillingJob(passes._PartJob):  # type: ignore[type-arg]
        __slots__ = ()

        def __call__(self, part: Any) -> Any:
            if part.start > 0:
                os._exit(1)
            return super().__call__(part)

    monkeypatch.setattr(passes, "_PartJob", KillingJob)
    data = sample("digits_hard_test.npz")
    shards = write_shards(tmp_path / "s", wide(data["logits"], data["labels"]), [100])
    result = invoke(runner, "ece", shards, "--scheduler", doomed.scheduler.address)
    assert_exit(result, ExitStatus.ENGINE_FAILED)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "calibkit: error: dask: a task of this pass killed its worker (tcp://"
    )
    assert "WorkerState" not in lines[0]  # was the repr of the scheduler's state of the worker


# ---------------------------------------------------------------------------------------------
# corrupt shards


def _good_and_bad(tmp_path: Path, how: str) -> tuple[Path, Path]:
    data = sample("digits_hard_test.npz")
    logits, labels = data["logits"], data["labels"].copy()
    if how == "label":
        labels[250] = 99  # row 250: in shard 2 (rows 200-299), its row 50
    folder = write_shards(tmp_path / how, wide(logits, labels), [100])
    bad = folder / "part-0002.parquet"
    if how == "bytes":
        import pyarrow.parquet as pq

        table = pq.read_table(bad)
        pq.write_table(table, bad, write_page_checksum=True, compression="none")
        raw = bytearray(bad.read_bytes())
        middle = len(raw) // 3  # inside the data pages, far from the footer
        raw[middle : middle + 8] = b"\xff" * 8
        bad.write_bytes(bytes(raw))
    return folder, bad


@pytest.mark.parametrize("how", ["label", "bytes"])
def test_corrupt_shard_names_the_shard(
    healthy: Any, scheduler: str, runner: Any, tmp_path: Path, how: str
) -> None:
    folder, bad = _good_and_bad(tmp_path, how)
    local = invoke(runner, "ece", folder)
    message = one_error_line(local, bad)
    dask = invoke(runner, "ece", folder, "--scheduler", scheduler)
    assert one_error_line(dask, bad) == message


def test_input_error_from_a_worker_is_itself(healthy: Any, tmp_path: Path) -> None:
    from calibkit.engine.dask_executor import DaskExecutor
    from calibkit.engine.passes import run_pass
    from calibkit.loaders import read_predictions

    folder, bad = _good_and_bad(tmp_path, "label")
    source = read_predictions(folder)
    with pytest.raises(InputError) as local:
        run_pass(source, lambda c: c.rows, lambda r: None)
    with pytest.raises(InputError) as dask:
        run_pass(source, lambda c: c.rows, lambda r: None, executor=DaskExecutor(healthy))
    assert type(dask.value) is InputError
    assert (dask.value.source, dask.value.problem) == (local.value.source, local.value.problem)
    assert dask.value.source == str(bad)


@pytest.mark.parametrize(
    "err",
    [
        InputError("a.parquet", "row 3: label 99 is not a class"),
        InputError("a.parquet", Param("n_bins") + " must be >= 1"),
        OutputError("out.json", "is a directory"),
        UsageError(Param("engine", "dask") + " needs the dask extra"),
    ],
)
def test_errors_pickle_as_themselves(err: Exception) -> None:
    from calibkit.engine.dask_executor import EngineError

    for e in (err, EngineError("dask: lost the scheduler at tcp://x:1")):
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e)
        flags = {"n_bins": "--bins", "engine": "--engine"}
        assert back.render(flags) == e.render(flags)  # type: ignore[attr-defined]
        assert back.exit_code == e.exit_code  # type: ignore[attr-defined]
        for attr in ("source", "problem", "target"):
            assert getattr(back, attr, None) == getattr(e, attr, None)


# ---------------------------------------------------------------------------------------------
# nothing written before the numbers are final


@pytest.mark.parametrize("command", ["ece", "fit-temp"])
def test_no_output_when_the_last_shard_fails(
    healthy: Any, scheduler: str, runner: Any, tmp_path: Path, command: str
) -> None:
    data = sample("digits_hard_val.npz")
    labels = data["labels"].copy()
    labels[-1] = 99  # the last row of the last shard
    folder = write_shards(tmp_path / "s", wide(data["logits"], labels), [60, 1, 30])
    last = sorted(folder.glob("*.parquet"))[-1]
    out = tmp_path / "out.json"
    result = invoke(runner, command, folder, "--out", out, "--scheduler", scheduler)
    one_error_line(result, last)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temporary file left either


def test_a_cluster_without_workers_is_one_engine_error() -> None:
    import logging

    from calibkit.engine.dask_executor import DaskExecutor, EngineError
    from calibkit.engine.passes import run_pass

    with (
        distributed.LocalCluster(
            n_workers=0, processes=False, dashboard_address=None, silence_logs=logging.CRITICAL
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
        pytest.raises(EngineError) as err,
    ):
        run_pass(
            _predictions(),
            lambda c: c.rows,
            lambda r: None,
            chunk_rows=100,
            executor=DaskExecutor(client),
        )
    assert str(err.value) == f"dask: the scheduler at {cluster.scheduler_address} has no workers"
