"""Fixtures of the distributed-engine tests: one real ``distributed.LocalCluster`` (two worker
processes, one thread each, loopback TCP) for the whole session, and writers of parquet shards.

Tests that need the cluster ask for ``dask_client`` (or ``dask_cluster``); they skip when the
dask extra (``dask``, ``distributed``) is not installed. The settings tests need neither.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    """A ``LocalCluster`` of 2 worker processes (1 thread each), shared by the session."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
    )
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def dask_client(dask_cluster: Any) -> Iterator[Any]:
    """A client of :func:`dask_cluster` (not the default client)."""
    import distributed

    client = distributed.Client(dask_cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def healthy(dask_client: Any) -> Iterator[Any]:
    """:func:`dask_client`, with both workers up before and after the test (a test that kills
    a worker leaves the nanny to restart it)."""
    dask_client.wait_for_workers(2, timeout=120)
    yield dask_client
    dask_client.wait_for_workers(2, timeout=120)


@pytest.fixture
def scheduler(dask_cluster: Any) -> str:
    """The address of :func:`dask_cluster`'s scheduler, for ``--scheduler``."""
    return str(dask_cluster.scheduler_address)


@pytest.fixture
def doomed() -> Iterator[Any]:
    """A client of a cluster of its own (one worker process, ``allowed-failures`` 0), for a
    test whose task kills its worker: the session's cluster is not left to recover."""
    distributed = pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        )
    client = distributed.Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
