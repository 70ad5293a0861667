"""``.npz`` predictions: the archive's named arrays (:mod:`calibkit.readers.npz`) validated into
:class:`~calibkit.sources.predictions.Predictions` or
:class:`~calibkit.sources.predictions.ConfidenceRows`.

The reader opens the archive (never unpickling), describes its members from their headers and
memory-maps uncompressed ones after their CRC-32 check; here the keys are chosen
(:mod:`calibkit.loaders.keys`), the memory the validation's copies need is checked up front, and
the arrays are validated.

Several archives (a directory or a glob of ``.npz`` files) are one data set, read shard after
shard in sorted order (:class:`ShardedNpz`, :func:`open_npz_shards`): their layout (keys, kind,
number of classes, binary, soft labels) is checked to agree when they are opened, from the zip
directories and ``.npy`` headers alone (no array data, except the first shard's scores when
their values decide whether they are probabilities); each shard is then read whole, with every
check of a single archive, only when it is streamed (on a cluster: by the worker that streams
it), and must hold what its headers declared and the kind the first shard's values decided.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from math import prod
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.errors import InputError
from calibkit.io.urls import Location
from calibkit.loaders.keys import ReadOptions, choose_keys, confidence_keys, keyed_predictions
from calibkit.loaders.shards import ShardSet
from calibkit.readers.memory import STREAMING_HINT, check_fits
from calibkit.readers.npz import NpzMember, check_declared, held_bytes, open_npz
from calibkit.sources.groups import FileColumns
from calibkit.sources.memory import confidence_copies, prediction_copies
from calibkit.sources.predictions import (
    CONFIDENCE,
    ConfidenceRows,
    Predictions,
    PredictionSource,
    SourceKind,
    choose_kind,
)

__all__ = ["NpzShard", "ShardedNpz", "open_npz_shards", "read_npz"]


def read_npz(path: Location, options: ReadOptions, source: str) -> PredictionSource:
    with open_npz(path, source) as archive:
        pair = confidence_keys(archive.keys, options)
        if pair is not None:
            members = archive.members(pair)
            _check_size(
                source, members[pair[0]], members[pair[1]], confidence=True, local=archive.local
            )
            rows = ConfidenceRows.from_arrays(
                archive.load(pair[0]), archive.load(pair[1]), source=source
            )
            return replace(rows, columns=FileColumns(path, source))
        keys = choose_keys(archive.keys, options, source)
        scores_key, labels_key, _ = keys
        members = archive.members([scores_key, labels_key])
        _check_size(source, members[scores_key], members[labels_key], local=archive.local)
        scores = archive.mapped(members[scores_key])
        if scores is None:
            scores = archive.load(scores_key)
        labels = archive.load(labels_key)
    preds = keyed_predictions(scores, labels, keys, options, source)
    return replace(preds, columns=FileColumns(path, source))


def _check_size(
    source: str,
    first: NpzMember | None,
    second: NpzMember | None,
    *,
    confidence: bool = False,
    local: bool = True,
) -> None:
    """Refuse an input whose arrays and their copies will not fit in memory.

    Sizes come from the declared shapes and dtypes: the members read into memory (compressed
    ones, labels, anything that cannot be mapped) plus the copies the validation makes, such as
    the float64 copy of integer logits. A memory-mapped member costs page cache, not memory.
    """
    for member in (first, second):
        check_declared(member, source)
    mapped = local and not confidence and first is not None and first.mappable
    needed = held_bytes(first, mapped) + held_bytes(second, False)
    scores = first.loaded_as if first is not None else None
    labels = second.loaded_as if second is not None else None
    if scores is not None and labels is not None:
        shape, dtype = scores
        y_shape, y_dtype = labels
        if confidence:
            needed += confidence_copies(max(prod(shape), prod(y_shape)))
        else:
            needed += prediction_copies(shape, dtype, y_shape, y_dtype)
    else:  # a header numpy will refuse or read in its own way: its size, with room for copies
        needed = needed * 3 // 2
    check_fits(source, needed, hint=STREAMING_HINT)


@dataclass(frozen=True)
class _Layout:
    """What a shard's zip directory and ``.npy`` headers say it holds (no data read)."""

    kind: SourceKind | None  # CONFIDENCE, else what the key's name says (None: undecided)
    n_rows: int
    n_classes: int
    binary: bool
    soft_labels: bool
    score_key: str
    label_key: str


def _layout(path: Location, options: ReadOptions, source: str) -> _Layout:
    """A shard's layout from its headers; a header that cannot say (unreadable, or a shape no
    prediction has) is refused here, naming the shard."""
    with open_npz(path, source) as archive:
        pair = confidence_keys(archive.keys, options)
        if pair is not None:
            keys: tuple[str, str] = pair
            named: SourceKind | None = CONFIDENCE
        else:
            scores_key, labels_key, named = choose_keys(archive.keys, options, source)
            keys = (scores_key, labels_key)
        members = archive.members(keys)
    shapes = []
    for key in keys:
        member = members[key]
        declared = None if member is None else member.loaded_as
        if declared is None:
            raise InputError(source, f"member for key {key!r} is not a readable .npy array")
        shapes.append(declared[0])
    shape, y_shape = shapes
    if not shape or not y_shape or shape[0] != y_shape[0]:
        raise InputError(source, f"scores have shape {shape} but labels have shape {y_shape}")
    if named == CONFIDENCE:
        return _Layout(CONFIDENCE, shape[0], 0, False, False, *keys)
    if len(shape) > 2:
        raise InputError(source, f"scores must have shape (N, K) or (N,); found shape {shape}")
    binary = len(shape) == 1 or shape[1] == 1
    k = 2 if binary else shape[1]
    return _Layout(named, shape[0], k, binary, len(y_shape) == 2, *keys)


@dataclass(frozen=True, eq=False)
class NpzShard:
    """One ``.npz`` archive of a :class:`ShardedNpz`, read (whole, with every check of
    :func:`read_npz`) only when it is streamed; picklable (a location and facts, no data)."""

    path: Location
    source: str
    kind: SourceKind
    n_classes: int
    n_rows: int
    binary: bool
    soft_labels: bool
    score_key: str
    label_key: str
    kind_reason: str
    options: ReadOptions
    #: the shard whose values decided the kind (the kind is then not forced or named)
    decided_by: str = ""

    def read(self) -> PredictionSource:
        """The shard's validated predictions; they must be what its headers declared, and of
        the kind decided for all shards."""
        options = self.options
        if self.kind == "logits" and options.kind is None:
            # logits by name or by the first shard's values: a later shard whose rows happen
            # to be probabilities is read as logits too, as the rows of one file are
            options = replace(options, kind="logits")
        src = read_npz(self.path, options, self.source)
        if src.kind != self.kind:
            why = getattr(src, "kind_reason", "")
            raise InputError(
                self.source,
                f"holds {src.kind} ({why}), but the kind of every shard is {self.kind}, "
                f"decided by {self.decided_by or 'the first shard'} ({self.kind_reason})",
            )
        for attr in ("n_rows", "n_classes", "binary", "soft_labels"):
            if getattr(src, attr) != getattr(self, attr):
                raise InputError(
                    self.source,
                    f"{attr} is {getattr(src, attr)!r}, but its headers said "
                    f"{getattr(self, attr)!r} when it was opened (the file changed)",
                )
        if isinstance(src, Predictions):
            return replace(src, kind_reason=self.kind_reason)
        return src

    @property
    def columns(self) -> FileColumns:
        """The archive's members, for ``--group-by`` (:mod:`calibkit.sources.groups`)."""
        return FileColumns(self.path, self.source)

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]:
        if self.n_rows == 0:  # an empty shard (its headers said so): nothing to stream
            return
        yield from self.read().chunks(chunk_rows)


@dataclass(frozen=True, eq=False)
class ShardedNpz(ShardSet):
    """Several ``.npz`` archives with one layout, read as one data set, shard after shard.

    Errors name the shard (and the row within it).
    """

    shards: tuple[NpzShard, ...]

    @property
    def score_key(self) -> str:
        return self.shards[0].score_key

    @property
    def label_key(self) -> str:
        return self.shards[0].label_key


def open_npz_shards(paths: list[Location], options: ReadOptions, source: str) -> ShardedNpz:
    """Read every shard's headers and check that they share one layout; decide the kind (forced,
    named, or from the first non-empty shard's values) for all of them. Shards of no rows are
    allowed among others (they stream nothing); every shard empty is the error an empty file
    is."""
    layouts = [_layout(p, options, str(p)) for p in paths]
    names = [str(p) for p in paths]
    ref = next((i for i, layout in enumerate(layouts) if layout.n_rows), None)
    if ref is None:
        raise InputError(source, "no rows: every shard is empty")
    first = layouts[ref]
    for name, layout in zip(names, layouts, strict=True):
        for attr in ("kind", "n_classes", "binary", "soft_labels"):
            if attr == "kind" and CONFIDENCE not in (layout.kind, first.kind):
                continue  # logits vs probs names: the kind decided below applies to both
            if getattr(layout, attr) != getattr(first, attr):
                raise InputError(
                    name,
                    f"{_shown(attr, getattr(layout, attr))}, but {names[ref]} has "
                    f"{_shown(attr, getattr(first, attr))} (shards must share one layout)",
                )
        if (layout.score_key, layout.label_key) != (first.score_key, first.label_key):
            raise InputError(
                name,
                f"holds keys {layout.score_key!r}, {layout.label_key!r}, but {names[ref]} holds "
                f"{first.score_key!r}, {first.label_key!r} (shards must share one layout)",
            )
    decided_by = ""
    if first.kind == CONFIDENCE:
        kind: SourceKind = CONFIDENCE
        reason = ConfidenceRows.kind_reason
    elif options.kind is not None or first.kind == "probs":
        choice = choose_kind(
            np.empty((0, first.n_classes)),
            forced=options.kind,
            named=first.kind if first.kind in ("logits", "probs") else None,
            key=first.score_key,
            forced_by="--input",
        )
        kind, reason = choice.kind, choice.reason
    else:  # named like logits: the first shard's values say whether they are probabilities
        head = read_npz(paths[ref], options, names[ref])
        kind, reason = head.kind, getattr(head, "kind_reason", "")
        decided_by = names[ref]
    shards = tuple(
        NpzShard(
            path=p,
            source=name,
            kind=kind,
            n_classes=layout.n_classes,
            n_rows=layout.n_rows,
            binary=layout.binary,
            soft_labels=layout.soft_labels,
            score_key=layout.score_key,
            label_key=layout.label_key,
            kind_reason=reason,
            options=options,
            decided_by=decided_by,
        )
        for p, name, layout in zip(paths, names, layouts, strict=True)
    )
    return ShardedNpz(shards, source)


def _shown(attr: str, value: object) -> str:
    return f"{attr} is {value!r}"
