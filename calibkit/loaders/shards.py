"""What every set of shards read as one data set has in common (parquet or ``.npz`` shards):
shape facts from the first shard, the rows of all, the chunks of each in turn, and one part per
non-empty shard for a distributed engine (:mod:`calibkit.sources.partitions`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.sources.partitions import Part, Plan
from calibkit.sources.predictions import SourceKind

__all__ = ["ShardSet", "shard_parts"]


def shard_parts(shards: tuple[Any, ...]) -> tuple[Part, ...]:
    """One :class:`Part` per shard (each a source with ``n_rows``), starting where the shards
    before it end; an empty shard streams nothing and has no part."""
    parts, start = [], 0
    for shard in shards:
        if shard.n_rows:
            parts.append(Part(start, shard.n_rows, shard))
        start += shard.n_rows
    return tuple(parts)


@dataclass(frozen=True, eq=False)
class ShardSet:
    """Shards with one layout, read as one data set, shard after shard (errors name the shard
    and the row within it). Subclasses type ``shards``."""

    shards: tuple[Any, ...]
    source: str

    @property
    def kind(self) -> SourceKind:
        kind: SourceKind = self.shards[0].kind
        return kind

    @property
    def n_classes(self) -> int:
        return int(self.shards[0].n_classes)

    @property
    def binary(self) -> bool:
        return bool(self.shards[0].binary)

    @property
    def soft_labels(self) -> bool:
        return bool(self.shards[0].soft_labels)

    @property
    def n_rows(self) -> int:
        return sum(int(s.n_rows) for s in self.shards)

    @property
    def kind_reason(self) -> str:
        return str(self.shards[0].kind_reason)

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]:
        for shard in self.shards:
            yield from shard.chunks(chunk_rows)

    def group_column(self, name: str) -> NDArray[Any]:
        """Column ``name`` of every shard, in shard order (for ``--group-by``)."""
        from calibkit.sources.groups import group_column

        return np.concatenate([group_column(shard, name) for shard in self.shards])

    def partitions(self, chunk_rows: int | None, hint: int) -> Plan:
        """One part per shard (but empty ones), in order (``hint`` is ignored): a worker
        streams a shard's chunks exactly as the local engine does."""
        return Plan(shard_parts(self.shards))
