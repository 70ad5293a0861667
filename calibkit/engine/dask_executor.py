"""The Dask engine: every pass of calibkit on a ``distributed`` cluster, with the same numbers.

:class:`DaskExecutor` is an :class:`~calibkit.engine.executors.Executor` with
``distributed = True``: :func:`calibkit.engine.passes.run_pass` splits the source into parts
(:mod:`calibkit.sources.partitions`: a parquet or npz shard, whole row groups of one parquet
file, chunk-aligned row ranges of an in-memory array) and hands them to :meth:`map_remote`,
which submits one task per part. A worker opens its part, runs the pass's function on each
chunk and returns the chunk results (the mergeable float64 sums of one pass: bin counts and
sums, NLL / Brier / accuracy totals, the value, gradient and Hessian of a temperature fit);
the client merges them in part order, so the numbers do not depend on the partitioning, the
number of workers, the order in which tasks finish or the scheduler. Only those sums cross the
network: the client never holds rows (an in-memory source is the exception: its parts are its
rows, sent with the tasks).

At most :meth:`DaskExecutor.window` tasks are in flight (a few per worker thread), so the
results waiting to be merged stay bounded whatever the number of parts. Work that is not a pass
over a source (the replicate batches of a bootstrap over arrays already in memory) runs on the
client's threads (:meth:`DaskExecutor.map`).

Faults: a worker that dies takes its tasks with it; the scheduler runs them again elsewhere
(Dask's own rescheduling, up to ``distributed.scheduler.allowed-failures`` times), and since a
part's result depends on the part alone, the numbers are the same. A task that keeps killing
workers, a lost scheduler or a cluster with no workers ends the command with one line
(:class:`EngineError`); an error of the data (a corrupt shard) is raised on the worker as the
:class:`~calibkit.errors.InputError` the local engine would raise, naming the shard, and
reaches the client as itself.

:func:`dask_executor` gives an executor for the length of a ``with`` block: attached to the
scheduler at ``address``, or on a ``distributed.LocalCluster`` of worker processes started for
the block and closed after it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from calibkit.engine.executors import ThreadExecutor
from calibkit.errors import CalibkitError, ExitStatus, Param, UsageError

__all__ = ["DaskExecutor", "EngineError", "dask_executor", "local_cluster_workers"]

T = TypeVar("T")
R = TypeVar("R")

#: Seconds to wait for a scheduler to answer, or for a local cluster to start.
CONNECT_TIMEOUT = 20
#: What a scheduler address looks like: ``[protocol://]host:port``.
_ADDRESS = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?:\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):\d{1,5}/?$")


def check_address(address: str) -> str:
    """``address`` if it reads ``[protocol://]host:port`` (``tcp://10.0.0.5:8786``); else a
    :class:`~calibkit.errors.UsageError` before any connection is tried."""
    if not _ADDRESS.match(address.strip()):
        raise UsageError(
            Param("scheduler") + f": {address!r} is not a scheduler address such as tcp://host:8786"
        )
    return address.strip()


class EngineError(CalibkitError):
    """The distributed engine failed (no scheduler, no workers, a task that kills workers);
    the data may be fine, and nothing was decided: exit status 3
    (:attr:`~calibkit.errors.ExitStatus.ENGINE_FAILED`), neither a failed check (1) nor a bad
    input (2)."""

    exit_code = ExitStatus.ENGINE_FAILED


def _need_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise UsageError(
            Param("engine", "dask")
            + " needs the dask extra: pip install 'calibkit[dask]' (dask and distributed)"
        ) from None
    return distributed


def local_cluster_workers() -> int:
    """Worker processes of a local cluster: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


class DaskExecutor:
    """Passes on the workers of a ``distributed.Client`` (see the module docstring)."""

    distributed = True

    def __init__(self, client: Any, *, parts_per_thread: int = 4) -> None:
        self.client = client
        self.parts_per_thread = parts_per_thread

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client.scheduler.address if self.client.scheduler else '?'})"

    def threads(self) -> int:
        """Worker threads in the cluster now (at least 1)."""
        info = self.client.nthreads()
        return max(1, sum(info.values()) if info else 1)

    def partition_hint(self) -> int:
        """How many parts a source that can be cut freely should be cut into."""
        return self.parts_per_thread * self.threads()

    def window(self) -> int:
        """Most tasks in flight at once."""
        return 2 * self.partition_hint()

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """Work on arrays already on the client runs on the client's threads."""
        return ThreadExecutor().map(fn, items)

    def map_remote(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """``fn(item)`` for every item, on the workers; results in completion order.

        Item ``j`` is submitted only once every item before ``j - window()`` has come back, so
        the results a caller holds while it waits for a slow item (to merge in order) and the
        tasks in flight are at most :meth:`window` together, whatever the number of items.
        """
        distributed = _need_distributed()
        if not self.client.nthreads():
            raise EngineError(f"dask: the scheduler at {self._address()} has no workers")
        window = self.window()
        it = enumerate(items)
        ordinal: dict[Any, int] = {}  # future -> its item's number
        waiting: set[int] = set()  # items submitted whose result has not come back
        done = distributed.as_completed([], loop=self.client.loop)
        following = 0  # the number of the next item to submit
        exhausted = False

        def fill() -> None:
            nonlocal following, exhausted
            while not exhausted and following < (min(waiting) if waiting else following) + window:
                try:
                    j, item = next(it)
                except StopIteration:
                    exhausted = True
                    return
                future = self._submit(fn, item)
                ordinal[future] = j
                waiting.add(j)
                done.add(future)
                following = j + 1

        try:
            fill()
            for future in done:
                result = self._result(future)
                waiting.discard(ordinal.pop(future))
                yield result
                fill()
        finally:
            pending = [f for f in ordinal if not f.done()]
            if pending:
                self.client.cancel(pending)

    def _address(self) -> str:
        try:
            return str(self.client.scheduler.address)
        except AttributeError:  # pragma: no cover - a client that lost its scheduler
            return "?"

    def _submit(self, fn: Callable[[T], R], item: T) -> Any:
        return self.client.submit(fn, item, pure=False)

    def _result(self, future: Any) -> Any:
        from distributed import KilledWorker

        try:
            return future.result()
        except KilledWorker as err:
            # last_worker is the scheduler's WorkerState of the worker (its repr is a page of
            # state): name the worker by its address
            last = getattr(err, "last_worker", None)
            where = getattr(last, "address", last)
            worker = f"its worker ({where})" if isinstance(where, str) and where else "its worker"
            raise EngineError(
                f"dask: a task of this pass killed {worker} again and again (out of memory?); "
                "the scheduler gave up on it"
            ) from None
        except CalibkitError:
            raise
        except (OSError, TimeoutError) as err:
            raise EngineError(f"dask: lost the scheduler at {self._address()} ({err})") from None


@contextmanager
def dask_executor(
    address: str | None = None,
    *,
    workers: int | None = None,
    threads_per_worker: int = 1,
    processes: bool = True,
) -> Iterator[DaskExecutor]:
    """A :class:`DaskExecutor` for the ``with`` block: attached to the scheduler at ``address``
    (``tcp://host:8786``), or on a ``LocalCluster`` of ``workers`` (default: one per core)
    worker processes (threads with ``processes=False``), closed when the block ends."""
    distributed = _need_distributed()
    cluster = None
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    try:
        if address:
            address = check_address(address)
            try:
                client = distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as err:
                raise EngineError(
                    f"dask: cannot reach the scheduler at {address} ({err})"
                ) from None
        else:
            cluster = distributed.LocalCluster(
                n_workers=workers or local_cluster_workers(),
                threads_per_worker=threads_per_worker,
                processes=processes,
                dashboard_address=None,
                # the scheduler's HTTP server on any free port: never "8787 is in use" when two
                # commands run at once
                scheduler_kwargs={"dashboard_address": ":0"},
                silence_logs=logging.CRITICAL,
            )
            client = distributed.Client(cluster, set_as_default=False)
    except BaseException:
        if cluster is not None:
            cluster.close()
        raise
    try:
        yield DaskExecutor(client)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
