"""``.parquet`` files -> a schema and column streams, batch by batch, with pyarrow.

:func:`open_parquet_file` reads the footer and the schema (no data) and checks that the footer's
row count equals the sum of its row groups' counts; :meth:`ParquetFile.check_value_counts` checks
each row group's stored values of a few flat columns against its row count (pyarrow reads as
many rows as a row group *claims*). :func:`stream_batches` yields record batches of only the
columns asked for and checks that the rows read are the rows the footer counts, as they come and
at the end of a complete pass; :func:`scalar_column` and :func:`list_column` turn one column of a
batch into a numpy array (``(n,)``, or ``(n, k)`` for lists of length ``k``), refusing nulls and
non-numeric types. :func:`column_batches` and :func:`read_arrays` combine them.

A file is a local path or a URL (:mod:`calibkit.io.urls`; read through fsspec, wrapped in a
pyarrow filesystem). :func:`stream_batches` can read a selection of row groups only (the parts
a distributed engine hands to its workers), checking the rows read against those groups' counts.

Page checksums (CRC-32) are verified where the writer stored them (pyarrow >= 15:
:func:`parquet_file`). Any mismatch is an :class:`~calibkit.errors.InputError`, never a count
taken on trust. Nothing here knows what the columns mean.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.errors import InputError, describe
from calibkit.io.urls import Location, filesystem, is_url
from calibkit.readers.memory import check_fits
from calibkit.readers.names import listing, quoted

__all__ = [
    "MAGIC",
    "ParquetFile",
    "column_batches",
    "count_mismatch",
    "is_list",
    "list_column",
    "list_keys",
    "open_parquet_file",
    "parquet_errors",
    "parquet_file",
    "read_arrays",
    "read_error",
    "scalar_column",
    "stream_batches",
]

#: The first (and last) four bytes of a parquet file.
MAGIC = b"PAR1"
#: Numbers per batch that :func:`column_batches` reads by default (4 MiB of float64).
BATCH_ELEMENTS = 1 << 19


@cache
def _verifies_checksums() -> bool:
    """Whether the installed pyarrow can verify page checksums (added in pyarrow 15)."""
    import inspect

    import pyarrow.parquet as pq

    return "page_checksum_verification" in inspect.signature(pq.ParquetFile).parameters


def parquet_file(path: Location, source: str | None = None, **kwargs: Any) -> Any:
    """``pyarrow.parquet.ParquetFile(path, **kwargs)`` that verifies the CRC-32 of every page
    that stores one (pages without a checksum are read as before). A URL ``path`` is opened
    through its fsspec filesystem (``source`` names it in the error when that is missing)."""
    import pyarrow.parquet as pq

    if _verifies_checksums():
        kwargs.setdefault("page_checksum_verification", True)
    if is_url(path):
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        fs, inner = filesystem(str(path), str(path) if source is None else source)
        kwargs.pop("memory_map", None)  # a local-file option
        return pq.ParquetFile(inner, filesystem=PyFileSystem(FSSpecHandler(fs)), **kwargs)
    return pq.ParquetFile(path, **kwargs)


def read_error(source: str, err: BaseException) -> InputError:
    """The one-line error for pyarrow failing while reading pages."""
    text = describe(err)
    if "checksum" in text.lower() or "crc" in text.lower():
        return InputError(source, f"corrupted parquet: a page checksum does not match ({text})")
    return InputError(source, f"corrupted or truncated parquet ({text})")


@contextmanager
def parquet_errors(source: str) -> Iterator[None]:
    """pyarrow's (and numpy's) failures inside the block become :func:`read_error`'s line;
    an :class:`InputError` passes unchanged (it already names the file and the row)."""
    import pyarrow as pa

    try:
        yield
    except InputError:
        raise
    except (OSError, ValueError, pa.ArrowException) as err:
        raise read_error(source, err) from None


def count_mismatch(claimed: int, read: str) -> str:
    return (
        f"the file's metadata counts {claimed} rows but it holds {read}: "
        "a corrupted or forged footer"
    )


def _check_nulls(col: Any, name: str, source: str, offset: int, per_row: int = 1) -> None:
    """Refuse nulls; ``per_row`` > 1 for the flattened values of a list column."""
    if col.null_count:
        row = int(np.argmax(np.asarray(col.is_null()))) // per_row
        raise InputError(source, f"column {quoted(name)} has a null at row {row + offset}")


def scalar_column(col: Any, name: str, source: str, offset: int) -> NDArray[Any]:
    """One flat column of a batch as a numpy array (no copy where Arrow allows); nulls and
    non-numeric types are refused, naming the row (``offset`` is the batch's first row)."""
    import pyarrow as pa

    _check_nulls(col, name, source, offset)
    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        raise InputError(source, f"column {quoted(name)} must be numeric; found type {t}")
    if col.null_count == 0 and not pa.types.is_boolean(t):
        # straight from the Arrow buffer: no copy, and no lazy pandas import inside pyarrow
        # (which would swallow a Ctrl-C arriving meanwhile)
        dtype = np.dtype(t.to_pandas_dtype())
        data = np.frombuffer(col.buffers()[1], dtype=dtype)
        return data[col.offset : col.offset + len(col)]
    return np.asarray(col.to_numpy(zero_copy_only=False))


def list_column(col: Any, name: str, k: int, source: str, offset: int) -> NDArray[Any]:
    """One list column of a batch as an ``(n, k)`` array; a row of another length is refused."""
    _check_nulls(col, name, source, offset)
    n = len(col)
    lengths = np.asarray(col.value_lengths())
    if lengths.size and (lengths != k).any():
        row = int(np.argmax(lengths != k))
        raise InputError(
            source,
            f"column {quoted(name)} has {lengths[row]} values at row {row + offset}, expected {k}",
        )
    values = col.flatten()
    _check_nulls(values, name, source, offset, per_row=k)
    arr = scalar_column(values, name, source, offset)
    return arr.reshape(n, k)


def is_list(field_type: Any) -> bool:
    """Whether a column's type is a list, large list or fixed-size list."""
    import pyarrow as pa

    return bool(
        pa.types.is_list(field_type)
        or pa.types.is_large_list(field_type)
        or pa.types.is_fixed_size_list(field_type)
    )


def _check_row_counts(pf: Any, source: str) -> int:
    """The footer's row count, once it agrees with the sum over its row groups."""
    meta = pf.metadata
    claimed = int(meta.num_rows)
    groups = sum(int(meta.row_group(i).num_rows) for i in range(meta.num_row_groups))
    if claimed < 0 or groups != claimed:
        raise InputError(
            source,
            f"the file's metadata counts {claimed} rows but its row groups hold {groups}: "
            "a corrupted or forged footer",
        )
    return claimed


@dataclass(frozen=True, eq=False)
class ParquetFile:
    """An open parquet file (see :func:`open_parquet_file`): its schema and checked row count."""

    path: Location
    source: str
    #: the open ``pyarrow.parquet.ParquetFile``
    handle: Any
    schema: Any
    names: list[str]
    n_rows: int

    @property
    def group_rows(self) -> tuple[int, ...]:
        """Each row group's row count, as the footer states it."""
        meta = self.handle.metadata
        return tuple(int(meta.row_group(i).num_rows) for i in range(meta.num_row_groups))

    def field_type(self, name: str) -> Any:
        return self.schema.field(name).type

    def check_value_counts(self, columns: tuple[str, ...]) -> None:
        """Each row group's stored values of ``columns`` (scalar ones) must match its row count.

        pyarrow reads as many rows as a row group *claims*, so a footer that understates them
        would silently drop rows; a flat column stores one value (or null) per row. Costs one
        metadata lookup per row group and column, so callers pass a few columns, not all.
        """
        meta = self.handle.metadata
        schema = meta.schema
        paths = [schema.column(j).path for j in range(meta.num_columns)]
        leaves = {c: paths.index(c) for c in columns if paths.count(c) == 1}
        for i in range(meta.num_row_groups):
            group = meta.row_group(i)
            for name, j in leaves.items():
                stored = int(group.column(j).num_values)
                if stored != group.num_rows:
                    raise InputError(
                        self.source,
                        f"row group {i} counts {group.num_rows} rows but column {quoted(name)} "
                        f"stores {stored} values: a corrupted or forged footer",
                    )

    def list_length(self, name: str, field_type: Any | None = None) -> int:
        """Length of the lists in a list column (fixed size, or read off the first row)."""
        import pyarrow as pa

        field_type = self.field_type(name) if field_type is None else field_type
        source, pf = self.source, self.handle
        if pa.types.is_fixed_size_list(field_type):
            return int(field_type.list_size)
        if pf.metadata.num_rows == 0:
            return 0
        try:
            first = next(pf.iter_batches(batch_size=1, columns=[name])).column(name)
        except StopIteration:
            raise InputError(source, "metadata counts rows but the file holds none") from None
        except (OSError, pa.ArrowException) as err:
            raise read_error(source, err) from None
        if first.null_count:
            raise InputError(source, f"column {quoted(name)} has a null at row 0")
        return int(first.value_lengths()[0].as_py())


@contextmanager
def open_parquet_file(path: Location, source: str) -> Iterator[ParquetFile]:
    """Read the footer and the schema of a parquet file (no data), checking the footer's row
    count against its row groups; closed when the block ends."""
    import pyarrow as pa

    try:
        pf = parquet_file(path, source)
    except InputError:
        raise
    except (OSError, ValueError, pa.ArrowException) as err:  # ValueError: names not UTF-8
        raise InputError(source, f"not a readable parquet file ({describe(err)})") from None
    with pf:
        try:
            schema = pf.schema_arrow
            names = list(schema.names)
        except (OSError, ValueError, pa.ArrowException) as err:  # e.g. names that are not UTF-8
            raise InputError(source, f"unreadable parquet schema ({describe(err)})") from None
        n_rows = _check_row_counts(pf, source)
        yield ParquetFile(path, source, pf, schema, names, n_rows)


def stream_batches(
    path: Location,
    columns: list[str],
    batch_size: int,
    n_rows: int,
    source: str,
    *,
    row_groups: tuple[int, ...] | None = None,
) -> Iterator[Any]:
    """Record batches of ``columns`` only, of at most ``batch_size`` rows, none spanning two row
    groups; the rows read must
    be the ``n_rows`` the footer counts (checked as they come, and at the end of a complete
    pass). ``row_groups``: read only these row groups, in this order (``n_rows`` is then the
    sum of their counts). Wrap the loop that consumes them in :func:`parquet_errors`."""
    offset = 0
    groups = None if row_groups is None else list(row_groups)
    # pre_buffer=False: the default read-ahead keeps every row group it has read
    with parquet_file(path, source, memory_map=False, pre_buffer=False) as pf:
        if groups is not None and any(
            not 0 <= g < pf.metadata.num_row_groups for g in groups
        ):  # the file changed since it was opened
            raise InputError(
                source,
                f"has {pf.metadata.num_row_groups} row groups, no longer "
                f"the ones it had when it was opened",
            )
        # group by group, so that no batch spans two row groups: the batches of a run of groups
        # are then the same whether the whole file or only that run is read (a part on a
        # cluster streams the chunks the local engine streams, and gives the same sums)
        for group in range(pf.metadata.num_row_groups) if groups is None else groups:
            for batch in pf.iter_batches(
                batch_size=batch_size, columns=columns, row_groups=[group]
            ):
                if offset + batch.num_rows > n_rows:
                    raise InputError(source, count_mismatch(n_rows, "more"))
                offset += batch.num_rows
                yield batch
    if offset != n_rows:
        raise InputError(source, count_mismatch(n_rows, str(offset)))


def first_batch(path: Location, columns: list[str], batch_size: int, source: str) -> Any | None:
    """The first record batch of ``columns`` (``None`` when the file holds no rows)."""
    import pyarrow as pa

    try:
        with parquet_file(path, source, memory_map=False, pre_buffer=False) as pf:
            batches = pf.iter_batches(batch_size=batch_size, columns=columns)
            return next(iter(batches), None)
    except InputError:
        raise
    except (OSError, ValueError, pa.ArrowException) as err:
        raise read_error(source, err) from None


@dataclass(frozen=True)
class _Plan:
    """What :func:`column_batches` reads: the columns, their list lengths (0: flat), the rows."""

    path: Path
    source: str
    columns: list[str]
    lengths: dict[str, int]
    n_rows: int
    itemsizes: dict[str, int]


def _plan(path: Path, keys: Collection[str] | None, source: str) -> _Plan:
    import pyarrow as pa

    with open_parquet_file(path, source) as f:
        names = f.names
        wanted = list(dict.fromkeys(names if keys is None else keys))
        counts = Counter(names)
        for name in wanted:
            if name not in counts:
                raise InputError(
                    source, f"column {quoted(name)} not found; columns present: {listing(names)}"
                )
            if counts[name] > 1:
                raise InputError(source, f"column {quoted(name)} appears {counts[name]} times")
        f.check_value_counts(tuple(wanted))
        lengths, itemsizes = {}, {}
        for name in wanted:
            t = f.field_type(name)
            lengths[name] = f.list_length(name, t) if is_list(t) else 0
            value = t.value_type if is_list(t) else t
            fixed = pa.types.is_integer(value) or pa.types.is_floating(value)
            itemsizes[name] = value.bit_width // 8 if fixed else 8
        return _Plan(path, source, wanted, lengths, f.n_rows, itemsizes)


def _batches(plan: _Plan, batch_size: int | None) -> Iterator[dict[str, NDArray[Any]]]:
    width = sum(max(1, k) for k in plan.lengths.values())
    rows = batch_size or max(1, BATCH_ELEMENTS // max(1, width))
    offset = 0
    with parquet_errors(plan.source):
        batches = stream_batches(plan.path, plan.columns, rows, plan.n_rows, plan.source)
        for batch in batches:
            out = {}
            for name in plan.columns:
                col, k = batch.column(name), plan.lengths[name]
                out[name] = (
                    list_column(col, name, k, plan.source, offset)
                    if k
                    else scalar_column(col, name, plan.source, offset)
                )
            offset += batch.num_rows
            yield out


def column_batches(
    path: Path, keys: Collection[str] | None, source: str, *, batch_size: int | None = None
) -> Iterator[dict[str, NDArray[Any]]]:
    """The columns ``keys`` (every column when ``None``), batch by batch, as numpy arrays by
    name: ``(n,)`` for a flat column, ``(n, k)`` for a list column. Memory is bounded by the
    batch (and row-group) size. The schema is checked when this is called; the rows as they
    are read."""
    return _batches(_plan(path, keys, source), batch_size)


def read_arrays(path: Path, keys: Collection[str] | None, source: str) -> dict[str, NDArray[Any]]:
    """The columns ``keys`` (every column when ``None``) read whole, as numpy arrays by name,
    after a check that they fit in the memory available."""
    plan = _plan(path, keys, source)
    # the parts and their concatenation are held together
    needed = 2 * sum(
        plan.n_rows * max(1, plan.lengths[c]) * plan.itemsizes[c] for c in plan.columns
    )
    check_fits(source, needed)
    parts: dict[str, list[NDArray[Any]]] = {c: [] for c in plan.columns}
    for batch in _batches(plan, None):
        for name, arr in batch.items():
            parts[name].append(arr)
    out = {}
    for name, arrays in parts.items():
        if arrays:
            out[name] = np.concatenate(arrays)
        else:
            shape = (0, plan.lengths[name]) if plan.lengths[name] else (0,)
            out[name] = np.empty(shape)
    return out


def sniff(path: Path) -> bool:
    """Whether the file at ``path`` starts with the parquet magic bytes."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == MAGIC
    except OSError:
        return False


def list_keys(path: Path, source: str) -> list[str]:
    """The file's column names, from its schema (no data read)."""
    with open_parquet_file(path, source) as f:
        return list(f.names)


def read_column(path: Path, name: str, source: str) -> NDArray[Any]:
    """One flat column read whole, of any type (strings, categories, numbers; nulls as
    ``None``), as a 1-D numpy array: a grouping column (:mod:`calibkit.sources.groups`)."""
    import pyarrow as pa

    with open_parquet_file(path, source) as f:
        if name not in f.names:
            shown = ", ".join(quoted(n) for n in f.names[:20])
            raise InputError(source, f"has no column {quoted(name)} (columns: {shown})")
        if is_list(f.schema.field(name).type):
            raise InputError(source, f"column {quoted(name)} holds lists, not one value per row")
        try:
            table = f.handle.read(columns=[name])
        except (OSError, ValueError, pa.ArrowException) as err:
            raise InputError(
                source, f"cannot read column {quoted(name)} ({describe(err)})"
            ) from None
    column = table.column(name)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return np.asarray(column.to_pylist(), dtype=object)
