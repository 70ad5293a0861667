"""A test executor shared by the pass-engine tests (tests/unit/test_engine.py,
tests/unit/test_pass_seams.py)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Shuffled:
    """Takes every item, computes them on one other thread in a seeded random order and yields
    the results in that order (as a cluster might hand back partitions)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.calls = 0
        self.items = 0
        self.threads: set[str] = set()

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        self.calls += 1
        todo = list(items)
        self.items += len(todo)
        self.rng.shuffle(todo)

        def run(item: T) -> R:
            self.threads.add(threading.current_thread().name)
            return fn(item)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shuffled") as pool:
            results = [pool.submit(run, item) for item in todo]
            for fut in results:
                yield fut.result()
