"""One end-to-end run of ``calibkit ... --engine dask`` in its own process: the command starts
its own local cluster of worker processes (``CALIBKIT_DASK_WORKERS=2``), prints the local
engine's numbers and closes the cluster (the process ends, leaving no worker behind)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _engine_helpers import assert_same, sample, wide, write_shards

pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[2]


def _calibkit(*args: object, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "calibkit", *map(str, args)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
        check=False,
    )


def test_ece_engine_dask_starts_and_closes_its_own_cluster(tmp_path: Path) -> None:
    data = sample("digits_ls05_test.npz")
    shards = write_shards(tmp_path / "s", wide(data["logits"], data["labels"]), [1, 60, 7])
    local = _calibkit("ece", shards, "--json")
    assert local.returncode == 0, local.stderr
    dask = _calibkit("ece", shards, "--json", "--engine", "dask", CALIBKIT_DASK_WORKERS="2")
    assert dask.returncode == 0, dask.stderr
    assert dask.stderr == local.stderr  # no log lines, no warnings of distributed
    assert_same(json.loads(local.stdout), json.loads(dask.stdout))
