"""The label digest of fixed row blocks: independent of chunking and partitioning, and of the
order in which partitions are merged; different for any changed label, order or layout."""

from __future__ import annotations

import itertools
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from calibkit.sources.digest import (
    BLOCK_BYTES,
    BlockDigest,
    LabelDigest,
    block_rows_for,
    canonical_labels,
    digest_piece,
    same_labels,
)
from calibkit.sources.predictions import Predictions


def _whole(labels: Any, block_rows: int | None = None) -> str:
    d = BlockDigest(block_rows=block_rows)
    d.add(0, np.asarray(labels))
    return d.hexdigest()


def _split(n: int, rng: random.Random, pieces: int) -> list[tuple[int, int]]:
    cuts = sorted(rng.sample(range(1, n), pieces - 1)) if pieces > 1 else []
    bounds = [0, *cuts, n]
    return list(itertools.pairwise(bounds))


@pytest.mark.parametrize("seed", range(6))
def test_any_partition_merged_in_any_order_gives_the_same_digest(seed: int) -> None:
    rng = random.Random(seed)
    y = np.random.default_rng(seed).integers(0, 7, 103)
    ref = _whole(y, block_rows=8)
    spans = _split(len(y), rng, rng.randint(1, 40))
    rng.shuffle(spans)
    with ThreadPoolExecutor(max_workers=3) as pool:  # pieces hashed in parallel
        pieces = list(pool.map(lambda s: digest_piece(s[0], y[s[0] : s[1]], 8), spans))
    d = BlockDigest(block_rows=8)
    for piece in pieces:
        d.merge(piece)
    assert d.hexdigest() == ref and d.rows == len(y)


def test_label_digest_ignores_chunking_across_real_block_boundaries() -> None:
    n = 2 * block_rows_for(canonical_labels(np.zeros(1, dtype=np.int64))) + 12345
    y = np.random.default_rng(2).integers(0, 3, n)
    source = Predictions.from_arrays(np.zeros((n, 3), dtype=np.float32), y)
    digests = set()
    for rows in (n, 131072, 100_000, 77_777, 65_537):
        d = LabelDigest(source)
        for _ in d.chunks(rows):
            pass
        digests.add(d.digest)
        assert d.rows == n
    assert len(digests) == 1 and None not in digests


def test_streaming_in_order_keeps_at_most_one_partial_block() -> None:
    y = np.arange(1000) % 5
    d = BlockDigest(block_rows=16)
    for start in range(0, 1000, 7):
        d.add(start, y[start : start + 7])
        assert len(d._parts) <= 1 and not d._done  # every whole block is folded at once
        assert all(not p.held for p in d._parts.values())  # nothing copied and held
    assert d.hexdigest() == _whole(y, 16)


def test_every_changed_label_and_every_swap_changes_the_digest() -> None:
    y = np.arange(40) % 4
    seen = {_whole(y, 8)}
    for i in range(len(y)):
        changed = y.copy()
        changed[i] = (changed[i] + 1) % 4
        seen.add(_whole(changed, 8))
    for i in range(len(y) - 1):  # adjacent swaps, within and across blocks
        swapped = y.copy()
        swapped[[i, i + 1]] = swapped[[i + 1, i]]
        if not np.array_equal(swapped, y):
            seen.add(_whole(swapped, 8))
    assert len(seen) == 1 + len(y) + (len(y) - 1)


def test_length_layout_and_kind_change_the_digest() -> None:
    y = np.arange(64) % 4
    ref = _whole(y)
    assert _whole(y[:63]) != ref
    assert _whole(np.append(y, 0)) != ref
    assert _whole(np.eye(4)[y]) != ref  # soft labels of the same classes
    assert _whole(y.astype(np.int8)) == ref  # integer width does not matter
    soft = np.eye(4)[y]
    negative = soft.copy()
    negative[negative == 0] = -0.0
    assert _whole(negative) == _whole(soft)
    a, b = BlockDigest(), BlockDigest()
    a.add(0, y[:10])
    with pytest.raises(ValueError, match="layouts differ"):
        a.add(10, np.eye(4)[y[10:]])
    b.add(0, np.array([], dtype=np.int64))
    assert b.rows == 0 and b.hexdigest() == BlockDigest().hexdigest()


def test_soft_labels_use_blocks_of_a_fixed_size_in_bytes() -> None:
    wide = canonical_labels(np.zeros((3, 1000)))
    assert block_rows_for(wide) == BLOCK_BYTES // 8000
    y = np.eye(1000)[np.random.default_rng(0).integers(0, 1000, 500)]
    ref = _whole(y)
    d = BlockDigest()
    for start, stop in ((0, 50), (300, 500), (50, 300)):
        d.merge(digest_piece(start, y[start:stop]))
    assert d.hexdigest() == ref


def test_gaps_and_overlaps_are_refused() -> None:
    y = np.arange(30) % 3
    gap = BlockDigest(block_rows=8)
    gap.add(0, y[:10])
    gap.add(12, y[12:])
    with pytest.raises(ValueError, match="do not tile"):
        gap.hexdigest()
    overlap = BlockDigest(block_rows=8)
    overlap.add(0, y[:10])
    overlap.add(9, y[9:])
    with pytest.raises(ValueError, match="do not tile"):
        overlap.hexdigest()


def test_label_digest_api_is_kept() -> None:
    y = np.arange(50) % 5
    a = LabelDigest(Predictions.from_arrays(np.zeros((50, 5)), y))
    b = LabelDigest(Predictions.from_arrays(np.ones((50, 5)), y.astype(np.uint8)))
    for d, rows in ((a, 7), (b, 50)):
        for _ in d.chunks(rows):
            pass
    assert same_labels(a, b) is True and a.digest == _whole(y)
