"""Know whether two prediction files hold the same labels without reading either twice.

``calibkit check`` pairs a candidate with its baseline, and ``calibkit compare`` warns about
models evaluated on different data, when the label vectors are (not) identical. Reading every
file a second time just to compare labels doubles the I/O on a large parquet data set, so
:class:`LabelDigest` wraps a source and hashes its labels as the metrics pass streams them.

The digest is one of fixed row blocks (:class:`BlockDigest`): the labels, widened to
little-endian int64 (hard labels) or float64 (soft labels, with -0.0 written as 0.0), are cut
into blocks of a fixed number of rows (:func:`block_rows_for` the label layout, about
:data:`BLOCK_BYTES` each) counted from row 0; each block gets its own SHA-256, and the digest is
the SHA-256 of a header (the label layout and the block size), the block digests in block
order and the row count. So it depends only on the label values and their order,
never on how the rows were split into chunks or partitions, nor on the order in which those
are hashed (a block cut by a chunk boundary waits for its other part), the file format or the
integer width: an ``.npz`` and a ``.parquet`` copy of the same labels match. The digest lives
in memory only (it is never written), so its value may change between releases.

>>> import numpy as np
>>> from calibkit.sources.predictions import Predictions
>>> a = LabelDigest(Predictions.from_arrays(np.zeros((4, 3)), np.array([0, 1, 2, 1])))
>>> b = LabelDigest(Predictions.from_arrays(np.ones((4, 3)), np.array([0, 1, 2, 1], np.int8)))
>>> a.digest is None  # nothing streamed yet
True
>>> for src in (a, b):
...     _ = [c for c in src.chunks(chunk_rows=3)]
>>> a.digest == b.digest, a.rows
(True, 4)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.sources.partitions import Plan, TapView, plan_of
from calibkit.sources.predictions import PredictionSource, SourceView

__all__ = [
    "BLOCK_BYTES",
    "BlockDigest",
    "LabelDigest",
    "PieceDigest",
    "block_rows_for",
    "canonical_labels",
    "digest_piece",
    "same_labels",
]

#: Bytes of canonical labels per hashed block: a block holds ``BLOCK_BYTES // row bytes`` rows
#: (131 072 hard labels; 131 soft labels of 1 000 classes), so a block waiting for its other
#: part never holds more than 1 MiB.
BLOCK_BYTES = 1 << 20


def canonical_labels(labels: NDArray[Any]) -> NDArray[Any]:
    """Labels as the digest sees them: little-endian int64, or float64 with -0.0 as 0.0."""
    if labels.dtype.kind in "biu":
        return np.ascontiguousarray(labels, dtype="<i8")
    out = np.ascontiguousarray(labels, dtype="<f8")
    return out + 0.0  # -0.0 -> +0.0: equal values, equal bytes (labels are finite, validated)


def block_rows_for(canon: NDArray[Any]) -> int:
    """Rows per block for canonical labels of this layout (the same for every piece)."""
    row_bytes = canon.dtype.itemsize * int(np.prod(canon.shape[1:], dtype=np.int64))
    return max(1, BLOCK_BYTES // max(1, row_bytes))


@dataclass(kw_only=True, frozen=True, eq=False)
class PieceDigest:
    """What one piece of rows (a chunk or a partition, rows ``start:stop``) contributes: the
    digests of the blocks it holds entirely, and the canonical bytes of the blocks it holds only
    part of (at most two: its first and its last) as ``(block, first row, rows, bytes)`` (views
    of the piece's canonical labels: no copy)."""

    start: int
    stop: int
    layout: str
    block_rows: int
    blocks: dict[int, bytes]
    edges: list[tuple[int, int, int, memoryview | bytes]]


def digest_piece(start: int, labels: NDArray[Any], block_rows: int | None = None) -> PieceDigest:
    """The :class:`PieceDigest` of ``labels``, the rows from row ``start`` on. It reads no
    shared state, so workers may compute the pieces of a pass in parallel. ``block_rows``
    defaults to :func:`block_rows_for` the labels' layout."""
    canon = canonical_labels(labels)
    size = block_rows or block_rows_for(canon)
    stop = start + canon.shape[0]
    blocks: dict[int, bytes] = {}
    edges: list[tuple[int, int, int, memoryview | bytes]] = []
    row = start
    while row < stop:
        block = row // size
        end = min(stop, (block + 1) * size)
        part = canon[row - start : end - start]
        if row == block * size and end == (block + 1) * size:
            blocks[block] = hashlib.sha256(part.data).digest()
        else:
            edges.append((block, row, end - row, part.data))
        row = end
    layout = f"{canon.dtype.str}{canon.shape[1:]}"
    return PieceDigest(
        start=start, stop=stop, layout=layout, block_rows=size, blocks=blocks, edges=edges
    )


class _Partial:
    """A block that piece boundaries cut: the SHA-256 of its rows so far, from its first row on,
    and the parts that came ahead of their turn (copied: they wait)."""

    __slots__ = ("hash", "held", "next", "rows")

    def __init__(self, first_row: int) -> None:
        self.hash = hashlib.sha256()
        self.next = first_row  # the row the hash continues with
        self.rows = 0
        self.held: dict[int, tuple[int, bytes]] = {}

    def add(self, row: int, n: int, data: memoryview | bytes) -> None:
        if row != self.next:
            self.held[row] = (n, bytes(data))
            return
        self.hash.update(data)
        self.next, self.rows = row + n, self.rows + n
        while self.next in self.held:
            n, waiting = self.held.pop(self.next)
            self.hash.update(waiting)
            self.next, self.rows = self.next + n, self.rows + n


@dataclass(kw_only=True)
class BlockDigest:
    """The digest of fixed row blocks, fed pieces (:class:`PieceDigest`) in any order.

    A block's digest is folded in as soon as it and every block before it are known, and a block
    cut by piece boundaries is hashed part by part as its parts arrive in row order, so memory
    holds only the block digests and the parts that came ahead of their turn (none when the
    pieces come in row order, as a stream's chunks do).

    >>> y = np.arange(10) % 3
    >>> one, two = BlockDigest(block_rows=4), BlockDigest(block_rows=4)
    >>> one.add(0, y)
    >>> for start, stop in ((7, 10), (0, 3), (3, 7)):  # three partitions, out of order
    ...     two.merge(digest_piece(start, y[start:stop], 4))
    >>> one.hexdigest() == two.hexdigest()
    True
    """

    block_rows: int | None = None
    rows: int = 0
    layout: str | None = None
    _hash: Any = None  # a hashlib sha256 object, once the layout is known
    _next: int = 0  # the first block not yet folded into _hash
    _done: dict[int, bytes] = field(default_factory=dict)  # block digests ahead of _next
    _parts: dict[int, _Partial] = field(default_factory=dict)
    _spans: list[tuple[int, int]] = field(default_factory=list)

    def add(self, start: int, labels: NDArray[Any]) -> None:
        """Hash the rows ``start : start + len(labels)``."""
        self.merge(digest_piece(start, labels, self.block_rows))

    def merge(self, piece: PieceDigest) -> None:
        """Fold in a piece computed by :func:`digest_piece`."""
        if piece.stop == piece.start:
            return
        if self.layout is None:
            self.layout, self.block_rows = piece.layout, piece.block_rows
            self._hash = hashlib.sha256(f"{self.layout}|{self.block_rows}|".encode())
        elif (piece.layout, piece.block_rows) != (self.layout, self.block_rows):
            raise ValueError(f"label layouts differ: {self.layout} and {piece.layout}")
        size = piece.block_rows
        self._spans.append((piece.start, piece.stop))
        self.rows += piece.stop - piece.start
        self._done.update(piece.blocks)
        for block, row, n, data in piece.edges:
            partial = self._parts.get(block)
            if partial is None:
                partial = self._parts[block] = _Partial(block * size)
            partial.add(row, n, data)
            if partial.rows == size:  # the block is whole
                self._done[block] = self._parts.pop(block).hash.digest()
        while self._next in self._done:
            self._hash.update(self._done.pop(self._next))
            self._next += 1

    def hexdigest(self) -> str:
        """The digest of every row added (the pieces must tile rows ``0 .. rows - 1``)."""
        end = 0
        for a, b in sorted(self._spans):
            if a != end:
                raise ValueError(f"the pieces do not tile the rows: row {min(a, end)} is wrong")
            end = b
        if self._hash is None:  # no rows
            return hashlib.sha256(b"|0").hexdigest()
        h = self._hash.copy()
        done = dict(self._done)
        for block, partial in self._parts.items():  # the last block, short
            assert not partial.held
            done[block] = partial.hash.copy().digest()
        block = self._next
        while block in done:
            h.update(done.pop(block))
            block += 1
        assert not done and block * (self.block_rows or 1) >= self.rows
        h.update(f"|{self.rows}".encode())
        out: str = h.hexdigest()
        return out


class LabelDigest(SourceView):
    """A :class:`~calibkit.sources.predictions.PredictionSource` that hashes its labels in passing.

    Chunks go through unchanged. :attr:`digest` is set when a pass has run to the end (and
    reset when another starts), so a pass cut short never yields a digest.
    """

    def __init__(self, base: PredictionSource) -> None:
        self.base = base
        self._digest: str | None = None
        self._rows = 0

    @property
    def digest(self) -> str | None:
        """Hex digest of the labels of the last complete pass (see the module docstring), else
        ``None``."""
        return self._digest

    @property
    def rows(self) -> int:
        """Rows seen by the last complete pass."""
        return self._rows

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]:
        self._digest = None
        d = BlockDigest()
        for scores, labels in self.base.chunks(chunk_rows):
            d.add(d.rows, labels)
            yield scores, labels
        self._digest, self._rows = d.hexdigest(), d.rows

    def partitions(self, chunk_rows: int | None, hint: int) -> Plan | None:
        """The parts of ``base``, each streamed through a :class:`DigestTap` on its worker;
        the digest is set when every part's pieces have been merged (see
        :mod:`calibkit.sources.partitions`)."""
        plan = plan_of(self.base, chunk_rows, hint)
        if plan is None:
            return None
        self._digest = None

        def finish(pieces: list[PieceDigest]) -> None:
            d = BlockDigest()
            for piece in pieces:
                d.merge(piece)
            self._digest, self._rows = d.hexdigest(), d.rows

        return plan.tapped(lambda key, part: DigestTap(part.source, key, part.start), finish)


@dataclass(frozen=True, eq=False)
class DigestTap(TapView, SourceView):
    """A part of a :class:`LabelDigest`'s base, whose worker keeps the :class:`PieceDigest` of
    each chunk it streams (with bytes, not views, so that it can be sent back)."""

    base: PredictionSource
    key: int
    start: int

    def observe(self, start: int, scores: NDArray[Any], labels: NDArray[Any]) -> PieceDigest:
        piece = digest_piece(start, labels)
        edges: list[tuple[int, int, int, memoryview | bytes]] = [
            (b, row, n, bytes(data)) for b, row, n, data in piece.edges
        ]
        return replace(piece, edges=edges)


def same_labels(a: PredictionSource, b: PredictionSource) -> bool | None:
    """Whether two digested sources streamed identical labels; ``None`` if that is not known."""
    if not (isinstance(a, LabelDigest) and isinstance(b, LabelDigest)):
        return None
    if a.digest is None or b.digest is None:
        return None
    return a.digest == b.digest and a.rows == b.rows
