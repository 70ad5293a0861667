"""Writing calibrated predictions back in the format, layout and key names they came in.

Any :class:`~calibkit.calibrators.base.Calibrator` (``apply-temp``: temperature scaling) gives the
new scores through :meth:`~calibkit.calibrators.base.Calibrator.transform`, of the kind they came
in. Everything except the scores is copied unchanged (other arrays, columns, labels).
Floating-point scores keep their dtype; the arithmetic itself is done in float64. For temperature
scaling logits become ``z / T`` and probabilities ``softmax(log p / T)``. The output is written
atomically and never over the input.

Memory: the scores are scaled chunk by chunk and streamed out, and the memory that needs is
checked (:func:`calibkit.readers.memory.check_fits`) before anything is allocated.

* ``.npz``: the archive is rewritten member by member with :mod:`zipfile`. The scores member is
  written anew (same name, same compression method, same timestamp); every other member is
  copied as it is stored, byte for byte in streamed blocks, whatever it holds (arrays of any
  dtype, object arrays, text files such as ``README.txt``), so nothing is ever unpickled or
  renamed. Each copied member's CRC-32 is verified on the way; a corrupt member is refused,
  naming the member, before the output exists.
* ``.parquet``: streamed batch by batch; the file is written with page checksums.
* ``.pt``: ``torch.save`` needs the whole dictionary, so the output tensor is built in memory
  (chunk by chunk); the input is memory-mapped where torch allows it (the zip format with
  stored records) and otherwise loaded, its declared storage sizes counted in the check.

**Probability-output methods** (``output_kind == "probs"``: ``ets``, the binning methods) give
probabilities, not logits, so the output holds them under a name that says so, and nothing
that calibkit would read as scores before them (:mod:`calibkit.loaders.keys`: logits win over
probabilities): ``.npz`` a member ``probs`` of shape ``(N, K)``, ``.pt`` a tensor ``probs``,
``.parquet`` the columns ``prob_0 .. prob_{K-1}`` (in place of the score columns). The input's
scores and every other key or column whose name says logits or probabilities (``logits``,
``logit_3``, ``probs``, ``proba``, ...) are left out (:func:`score_names`; ``calibkit apply``
names them), so reading the output back gives the calibrated probabilities and nothing else.
Binary inputs get both columns (``K = 2``). Probabilities are always written in float64,
whatever the input's type: a calibrator that keeps the argmax (top-versus-all binning) may
leave the top class only a float64 ulp above the runner-up, and rounding to float32 would tie
them and change the argmax of a few percent of the rows (measured: 2.7% of the sample digits
after isotonic regression), a silent change of accuracy. Only a caller that asks for it
(``probs_dtype``: ``calibkit soft-targets --dtype float32``, which counts and reports the rows
whose argmax the rounding changes) gets float32.

An input that turns out to be unreadable while it is copied is an
:class:`~calibkit.errors.InputError` naming the input (and the member), never an error of the
output.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from calibkit.calibrators.base import Calibrator, parameter_text, require_scores
from calibkit.engine.passes import Chunk, run_pass
from calibkit.errors import InputError, OutputError, Param, UsageError, describe
from calibkit.io.atomic import atomic_path
from calibkit.loaders.keys import LOGIT_FAMILIES, PROB_FAMILIES, families_of, kind_of_name
from calibkit.loaders.npz import ShardedNpz
from calibkit.loaders.parquet import ParquetPredictions, ShardedParquet
from calibkit.readers.memory import STREAMING_HINT, check_fits
from calibkit.readers.npz import npz_members
from calibkit.readers.parquet import count_mismatch, parquet_file, read_error
from calibkit.sources.predictions import Predictions, PredictionSource, default_chunk_rows

__all__ = [
    "PROBS_KEY",
    "prob_columns",
    "probs_layout",
    "rewrite_memory",
    "score_names",
    "write_calibrated",
    "write_scaled",
]

#: Where a probability-output method's probabilities go in ``.npz`` and ``.pt`` outputs.
PROBS_KEY = "probs"

_COPY_BYTES = 1 << 20
#: float64 arrays alive per element of a chunk while it is scaled: the float64 copy, the log,
#: the exponential and the normalised result (probabilities need all four, logits one)
_WORK_ARRAYS = 4


def _scaled(scores: NDArray[Any], kind: str, scaler: Calibrator) -> NDArray[np.float64]:
    """Calibrate validated ``(n, K)`` scores (binary already expanded), keeping their kind."""
    return scaler.transform(scores, kind)


def _collapse(new: NDArray[np.float64], kind: str) -> NDArray[np.float64]:
    """Back to one positive-class score per row for binary models."""
    return new[:, 1] - new[:, 0] if kind == "logits" else new[:, 1]


def _check_range(new: NDArray[np.float64], dtype: Any, source: str, scaler: Calibrator) -> None:
    """Refuse calibrated scores that the output's number type cannot hold (they would become
    inf)."""
    dtype = np.dtype(dtype)
    limit = float(np.finfo(dtype if dtype.kind == "f" else np.float64).max)
    biggest = float(np.max(np.abs(new))) if new.size else 0.0
    if not np.isfinite(biggest) or biggest > limit:
        hint = getattr(scaler, "overflow_hint", "")
        raise UsageError(
            f"{source}: with {parameter_text(scaler, 'g')} the scores reach {biggest:.3g}, beyond "
            f"the range of {dtype.name}" + (f"; {hint}" if hint else "")
        )


def _out_dtype(dtype: Any) -> np.dtype[Any]:
    """Floating inputs keep their dtype; integer ones become float64."""
    dtype = np.dtype(dtype)
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _probs_dtype(dtype: Any, override: Any = None) -> np.dtype[Any]:
    """Probabilities: float64 whatever the input's type (module docstring), unless the caller
    asks for another floating dtype (``probs_dtype`` of :func:`write_calibrated`)."""
    if override is None:
        return np.dtype(np.float64)
    chosen: np.dtype[Any] = np.dtype(override)
    if chosen.kind != "f" or chosen.itemsize not in (4, 8):
        raise UsageError(f"probabilities can be written as float32 or float64; got {chosen}")
    return chosen


def _writes_probs(scaler: Calibrator) -> bool:
    return getattr(scaler, "output_kind", "logits") == "probs"


def prob_columns(n_classes: int) -> tuple[str, ...]:
    """The parquet columns of a probability-output method: ``prob_0 .. prob_{K-1}``."""
    return tuple(f"prob_{k}" for k in range(n_classes))


def score_names(names: list[str], scores: tuple[str, ...], labels: str | None) -> list[str]:
    """The keys or columns among ``names`` that a probability output leaves out: the input's
    ``scores`` and every other name calibkit would read as logits or probabilities (an alias
    such as ``logits`` or ``proba``, or a numbered family such as ``logit_0 ..`` or ``p0 ..``),
    the ``labels`` excepted; ``.npy`` endings are ignored, as :func:`numpy.load` does."""

    def stem(name: str) -> str:
        return name[:-4] if name.endswith(".npy") else name

    families = families_of([stem(n) for n in names if n != labels])
    scored = {
        m
        for prefix, members in families.items()
        if prefix in LOGIT_FAMILIES + PROB_FAMILIES
        for spelled in members.values()
        for m in spelled
    }
    return [
        n
        for n in names
        if n != labels and (n in scores or kind_of_name(stem(n)) is not None or stem(n) in scored)
    ]


def _chunk_rows(source: PredictionSource, chunk_rows: int | None) -> int:
    rows = chunk_rows or default_chunk_rows(max(source.n_classes, 1))
    return max(1, min(rows, source.n_rows))


def rewrite_memory(
    source: PredictionSource, *, chunk_rows: int | None = None, whole_output: int = 0
) -> int:
    """Bytes :func:`write_scaled` allocates besides the input it was given: the float64 work
    arrays of one chunk, the chunk in the output dtype (at most 8 bytes a number) and
    ``whole_output`` (an output held whole, for ``.pt``)."""
    per_row = max(source.n_classes, 1) * (8 * _WORK_ARRAYS + 8)
    return _chunk_rows(source, chunk_rows) * per_row + whole_output


def write_calibrated(
    source: PredictionSource,
    scaler: Calibrator,
    out: str | Path,
    *,
    chunk_rows: int | None = None,
    probs_dtype: Any = None,
) -> Path:
    """Write ``source`` with its scores calibrated by ``scaler`` to ``out`` (same format as
    input).

    ``chunk_rows`` rows are calibrated at a time (default: about 4 MiB of float64 per chunk).
    ``probs_dtype`` (``float32`` or ``float64``; ``None``: float64) is the dtype of the
    probabilities of a probability-output ``scaler``; it changes nothing for logit outputs.
    """
    require_scores(source, scaler.title)
    if isinstance(source, (ShardedParquet, ShardedNpz)):
        raise UsageError(
            f"{source.source}: apply-temp rewrites one file; give each shard on its own"
        )
    in_path = Path(source.source)
    out = Path(out)
    suffix = in_path.suffix.lower()
    if not (
        isinstance(source, ParquetPredictions)
        or (isinstance(source, Predictions) and suffix in (".npz", ".pt", ".pth"))
    ):
        # record inputs (lm-eval samples, confidence rows, top-k logprobs, CSV) and directories
        # of them: refused before the extension of ``out`` is looked at (a directory has none)
        what = (
            "a directory of record files" if in_path.is_dir() else f"{in_path.suffix!r} predictions"
        )
        raise UsageError(
            f"{source.source}: cannot write {what} (.npz, .parquet and .pt files are "
            "rewritten; record files such as lm-eval samples, .jsonl and .csv, and directories "
            "of them are read only)"
        )
    if out.suffix.lower() != suffix:
        raise UsageError(
            Param("out", str(out)) + f" must have the input's extension {in_path.suffix!r} "
            "(the output keeps the input's format)"
        )
    if isinstance(source, ParquetPredictions):
        _write_parquet(source, scaler, out, chunk_rows, probs_dtype)
    elif isinstance(source, Predictions) and suffix == ".npz":
        _write_npz(source, scaler, out, chunk_rows, probs_dtype)
    elif isinstance(source, Predictions):
        _write_pt(source, scaler, out, chunk_rows, probs_dtype)
    return out


#: The name of :func:`write_calibrated` before calibrators other than temperature scaling.
write_scaled = write_calibrated


def _scale_pass(
    source: Predictions,
    scaler: Calibrator,
    dtype: Any,
    chunk_rows: int,
    write: Callable[[NDArray[Any]], None],
) -> None:
    """``write`` the scaled scores in ``dtype``, chunk after chunk, rows in order, binary
    collapsed to one score per row (refusing overflow): one pass
    (:func:`~calibkit.engine.passes.run_pass`) whose merge writes.

    The pass runs on the serial executor: one chunk is scaled and written before the next is
    read, which is the memory :func:`rewrite_memory` counts and :func:`check_fits` checks (a
    thread pool would keep up to twice its threads' chunks in flight). A failed chunk stops the
    pass inside the writer's :func:`~calibkit.io.atomic.atomic_path`, so nothing is renamed
    into place."""

    probs = _writes_probs(scaler)

    def scale(chunk: Chunk) -> NDArray[Any]:
        new = _scaled(chunk.scores, source.kind, scaler)
        if source.binary and not probs:
            new = _collapse(new, source.kind)
        _check_range(new, dtype, source.source, scaler)
        return np.ascontiguousarray(new.astype(dtype))

    run_pass(source, scale, write, chunk_rows=chunk_rows, executor="serial")


# --------------------------------------------------------------------------------------------
# .npz


def _scores_member(zin: zipfile.ZipFile, key: str | None, source: str) -> zipfile.ZipInfo:
    """The member holding ``key``, found as :func:`numpy.load` finds it (``key``, else
    ``key.npy``)."""
    names = zin.namelist()
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(source, f"holds two members named {name!r}; refusing to rewrite it")
        seen.add(name)
    if key is not None:
        for name in (key, f"{key}.npy"):
            if name in seen:
                return zin.getinfo(name)
    raise InputError(source, "cannot find the scores key to rewrite")


def _copy_info(info: zipfile.ZipInfo, name: str | None = None) -> zipfile.ZipInfo:
    """A fresh entry with the member's name (or ``name``), compression method, timestamp and
    attributes."""
    new = zipfile.ZipInfo(name or info.filename, date_time=info.date_time)
    new.compress_type = info.compress_type
    new.external_attr = info.external_attr
    new.create_system = info.create_system
    new.comment = info.comment
    new.file_size = info.file_size  # lets zipfile choose ZIP64 for large members
    return new


def _read_error(source: str, name: str, err: BaseException) -> InputError:
    if isinstance(err, zipfile.BadZipFile) and "CRC" in str(err):
        return InputError(source, f"member {name!r} is corrupted (its CRC-32 does not match)")
    return InputError(source, f"member {name!r} cannot be read ({describe(err)})")


def _copy_member(
    zin: zipfile.ZipFile, zout: zipfile.ZipFile, info: zipfile.ZipInfo, source: str
) -> None:
    """Copy one member's bytes unchanged, in blocks, verifying its CRC-32 on the way."""
    new = _copy_info(info)
    if info.is_dir():
        zout.writestr(new, b"")
        return
    try:
        src: IO[bytes] = zin.open(info)
    except Exception as err:  # encrypted, unknown compression, broken local header, ...
        raise _read_error(source, info.filename, err) from None
    with src, zout.open(new, "w") as dst:
        while True:
            try:
                block = src.read(_COPY_BYTES)
            except Exception as err:  # bad CRC-32, truncated or corrupt deflate data
                raise _read_error(source, info.filename, err) from None
            if not block:
                break
            dst.write(block)


@contextmanager
def _scores_member_writer(
    zout: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    name: str | None = None,
) -> Iterator[Callable[[NDArray[Any]], None]]:
    """Open the scaled scores' ``.npy`` member (named as ``info``, or ``name``) and write its
    header; yields the function that appends a chunk (in ``dtype``, rows in order) to it."""
    new = _copy_info(info, name)
    new.file_size = math.prod(shape) * dtype.itemsize + 4096  # the header is at most this
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": shape,
    }
    with zout.open(new, "w") as fh:
        try:
            np.lib.format.write_array_header_1_0(fh, header)
        except ValueError:  # a header too long for format 1.0
            np.lib.format.write_array_header_2_0(fh, header)

        def append(chunk: NDArray[Any]) -> None:
            fh.write(chunk.reshape(-1).view(np.uint8).data)

        yield append


def _write_npz(
    source: Predictions,
    scaler: Calibrator,
    out: Path,
    chunk_rows: int | None,
    probs_dtype: Any = None,
) -> None:
    in_path = Path(source.source)
    try:
        zin = zipfile.ZipFile(in_path)
    except Exception as err:
        raise InputError(source.source, f"not a readable .npz archive ({describe(err)})") from None
    with zin:
        info = _scores_member(zin, source.score_key, source.source)
        loaded = npz_members(in_path, source.source, [info.filename])[info.filename].loaded_as
        if loaded is None:
            raise InputError(source.source, f"member {info.filename!r}: unreadable array header")
        shape, dtype = loaded
        expected = source.n_rows * (1 if source.binary else source.n_classes)
        if math.prod(shape) != expected:
            raise InputError(
                source.source, f"member {info.filename!r} changed while calibkit read it"
            )
        out_dtype = _out_dtype(dtype)
        name: str | None = None
        left_out: set[str] = set()
        if _writes_probs(scaler):  # (N, K) probabilities under "probs.npy" (module docstring)
            out_dtype = _probs_dtype(dtype, probs_dtype)
            shape, name = (source.n_rows, source.n_classes), f"{PROBS_KEY}.npy"
            labels = _member_name(zin, source.label_key)
            left_out = set(score_names(zin.namelist(), (info.filename,), labels))
        check_fits(source.source, rewrite_memory(source, chunk_rows=chunk_rows))
        rows = _chunk_rows(source, chunk_rows)
        with (
            atomic_path(out, inputs=[in_path]) as tmp,
            zipfile.ZipFile(tmp, "w", allowZip64=True) as zout,
        ):
            zout.comment = zin.comment
            for member in zin.infolist():
                if member is info:
                    with _scores_member_writer(zout, member, shape, out_dtype, name) as append:
                        _scale_pass(source, scaler, out_dtype, rows, append)
                elif member.filename not in left_out:
                    _copy_member(zin, zout, member, source.source)


def _member_name(zin: zipfile.ZipFile, key: str | None) -> str | None:
    """The member that holds ``key`` (``key`` or ``key.npy``), if any."""
    names = set(zin.namelist())
    for name in (key, f"{key}.npy") if key is not None else ():
        if name in names:
            return name
    return None


# --------------------------------------------------------------------------------------------
# .pt


def _pt_storages(path: Path) -> tuple[bool, int]:
    """``(mappable, bytes)``: whether ``torch.load(mmap=True)`` can map the file (the zip format
    with every record stored uncompressed) and the declared size of its records (the file size
    for other formats)."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except Exception:
        return False, path.stat().st_size
    stored = all(i.compress_type == zipfile.ZIP_STORED for i in infos)
    return stored, sum(i.file_size for i in infos)


def _write_pt(
    source: Predictions,
    scaler: Calibrator,
    out: Path,
    chunk_rows: int | None,
    probs_dtype: Any = None,
) -> None:
    import torch

    in_path = Path(source.source)
    mappable, declared = _pt_storages(in_path)
    numbers = source.n_rows * (1 if source.binary else source.n_classes)
    loaded = 0 if mappable else int(declared * 1.5)
    written = source.n_rows * source.n_classes if _writes_probs(scaler) else numbers
    needed = rewrite_memory(source, chunk_rows=chunk_rows, whole_output=written * 8 + loaded)
    check_fits(source.source, needed, hint=STREAMING_HINT)
    try:
        obj = torch.load(in_path, map_location="cpu", weights_only=True, mmap=mappable)
    except Exception as err:  # an untrusted file: any failure is the file's problem
        raise InputError(source.source, f"not a readable .pt file ({describe(err)})") from None
    key = source.score_key
    if not isinstance(obj, dict) or key not in obj or not isinstance(obj[key], torch.Tensor):
        raise InputError(source.source, "changed while calibkit read it")
    original = obj[key]
    target = original.dtype if original.is_floating_point() else torch.float64
    shape = tuple(original.shape)
    probs = _writes_probs(scaler)
    if probs:  # (N, K) float64 probabilities under "probs" (module docstring)
        target = torch.from_numpy(np.empty(0, dtype=_probs_dtype(None, probs_dtype))).dtype
        shape = (source.n_rows, source.n_classes)
    # numpy has no bfloat16; float32 has the same range, so the overflow check is exact
    check = np.float32 if target == torch.bfloat16 else torch.empty(0, dtype=target).numpy().dtype
    if original.numel() != numbers:
        raise InputError(source.source, "changed while calibkit read it")
    result = torch.empty(shape, dtype=target)
    flat = result.view(-1)
    start = 0

    def put(chunk: NDArray[Any]) -> None:
        nonlocal start
        values = chunk.reshape(-1)
        flat[start : start + values.size] = torch.from_numpy(values).to(target)
        start += values.size

    _scale_pass(source, scaler, check, _chunk_rows(source, chunk_rows), put)
    if probs:
        names = [k for k in obj if isinstance(k, str)]
        left_out = set(score_names(names, (str(key),), source.label_key))
        obj = {
            (PROBS_KEY if k == key else k): (result if k == key else v)
            for k, v in obj.items()
            if k == key or k not in left_out
        }
    else:
        obj[key] = result
    with atomic_path(out, inputs=[in_path]) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as err:  # torch's stream writer reports failed writes this way
            raise OutputError(str(out), f"cannot write ({describe(err)})") from None


# --------------------------------------------------------------------------------------------
# .parquet


def _writer_options() -> dict[str, Any]:
    """Page checksums where the installed pyarrow can write them (pyarrow >= 14)."""
    import pyarrow as pa

    major = int(pa.__version__.split(".")[0])
    return {"write_page_checksum": True} if major >= 14 else {}


def _batches(pf: Any, rows: int, source: str) -> Iterator[Any]:
    """The input's record batches; a read failure is the input's error, not the output's."""
    import pyarrow as pa

    batches = iter(pf.iter_batches(batch_size=rows))
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (OSError, ValueError, pa.ArrowException) as err:
            raise read_error(source, err) from None
        yield batch


def _float_scores(schema: Any, names: tuple[str, ...]) -> Any:
    """The output schema: integer (or boolean) score columns become float64, as in the
    ``.npz`` and ``.pt`` outputs (scaled scores are no longer whole numbers)."""
    import pyarrow as pa

    for name in names:
        i = schema.get_field_index(name)
        field = schema.field(i)
        t = field.type
        listed = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
        inner = t.value_type if listed else t
        if pa.types.is_floating(inner):
            continue
        if pa.types.is_fixed_size_list(t):
            new = pa.list_(pa.float64(), t.list_size)
        elif pa.types.is_large_list(t):
            new = pa.large_list(pa.float64())
        elif listed:
            new = pa.list_(pa.float64())
        else:
            new = pa.float64()
        schema = schema.set(i, field.with_type(new))
    return schema


def _write_parquet(
    source: ParquetPredictions,
    scaler: Calibrator,
    out: Path,
    chunk_rows: int | None,
    probs_dtype: Any = None,
) -> None:
    """Rewrite a parquet file batch by batch. This loop reads the file's record batches itself
    instead of the source's chunks (:func:`~calibkit.engine.passes.run_pass`): every column of a
    batch is copied to the output as read, and a :class:`PredictionSource` chunk holds only the
    validated scores and labels. One batch is in memory at a time (what :func:`check_fits` is
    given), inside :func:`~calibkit.io.atomic.atomic_path`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _chunk_rows(source, chunk_rows)
    # the Arrow batch read, the numpy work arrays and the Arrow columns written
    check_fits(source.source, 2 * rewrite_memory(source, chunk_rows=rows))
    try:
        pf = parquet_file(source.path, memory_map=False, pre_buffer=False)  # CRC checked
        schema = _float_scores(pf.schema_arrow, source.score_columns)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise InputError(source.source, f"not a readable parquet file ({describe(err)})") from None
    if _writes_probs(scaler):
        with pf:
            _write_parquet_probs(source, scaler, out, rows, pf, schema, probs_dtype)
        return
    with (
        pf,
        atomic_path(out, inputs=[source.path]) as tmp,
        pq.ParquetWriter(tmp, schema, **_writer_options()) as writer,
    ):
        offset = 0
        for batch in _batches(pf, rows, source.source):
            scores, _ = source.convert_batch(batch, offset)  # validated, binary expanded
            offset += batch.num_rows
            new = _scaled(scores, source.kind, scaler)
            if source.binary:
                new = _collapse(new, source.kind)[:, None]
            ftype = schema.field(source.score_columns[0]).type
            value_type = ftype.value_type if hasattr(ftype, "value_type") else ftype
            _check_range(new, value_type.to_pandas_dtype(), source.source, scaler)
            columns = dict(zip(batch.schema.names, batch.columns, strict=True))  # as read
            if source.wide or source.binary:
                for k, name in enumerate(source.score_columns):
                    columns[name] = pa.array(new[:, k]).cast(schema.field(name).type)
            else:
                name = source.score_columns[0]
                ftype = schema.field(name).type
                values = pa.array(new.reshape(-1)).cast(ftype.value_type)
                if pa.types.is_fixed_size_list(ftype):
                    arr = pa.FixedSizeListArray.from_arrays(values, ftype.list_size)
                else:
                    k = new.shape[1]
                    offsets = pa.array(np.arange(0, new.size + 1, k, dtype=np.int64))
                    arr = pa.LargeListArray.from_arrays(offsets, values)
                columns[name] = arr.cast(ftype)
            table = pa.Table.from_arrays([columns[n] for n in schema.names], schema=schema)
            writer.write_table(table)
        if offset != source.n_rows:  # the footer said otherwise: nothing is renamed into place
            raise InputError(source.source, count_mismatch(source.n_rows, str(offset)))


def _parquet_probs_schema(
    source: ParquetPredictions, schema: Any, probs_dtype: Any = None
) -> tuple[Any, list[str]]:
    """The output schema of a probability output (module docstring) and the input columns it
    leaves out: ``prob_0 .. prob_{K-1}`` where the first score column was, in the scores'
    float type (:func:`_probs_dtype`)."""
    import pyarrow as pa

    left_out = score_names(list(schema.names), source.score_columns, source.label_column)
    ftype = schema.field(source.score_columns[0]).type
    value_type = ftype.value_type if hasattr(ftype, "value_type") else ftype
    dtype = _probs_dtype(value_type.to_pandas_dtype(), probs_dtype)
    arrow = pa.from_numpy_dtype(dtype)
    fields: list[Any] = []
    for field in schema:
        if field.name == source.score_columns[0]:
            fields.extend(pa.field(c, arrow) for c in prob_columns(source.n_classes))
        elif field.name not in left_out:
            fields.append(field)
    return pa.schema(fields, metadata=schema.metadata), left_out


def _write_parquet_probs(
    source: ParquetPredictions,
    scaler: Calibrator,
    out: Path,
    rows: int,
    pf: Any,
    schema: Any,
    probs_dtype: Any = None,
) -> None:
    """:func:`_write_parquet` for a probability-output method: the other columns copied as
    read, the probabilities in ``prob_0 .. prob_{K-1}``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out_schema, _ = _parquet_probs_schema(source, schema, probs_dtype)
    columns_out = prob_columns(source.n_classes)
    dtype = out_schema.field(columns_out[0]).type.to_pandas_dtype()
    with (
        atomic_path(out, inputs=[source.path]) as tmp,
        pq.ParquetWriter(tmp, out_schema, **_writer_options()) as writer,
    ):
        offset = 0
        for batch in _batches(pf, rows, source.source):
            scores, _ = source.convert_batch(batch, offset)  # validated, binary expanded
            offset += batch.num_rows
            new = _scaled(scores, source.kind, scaler)
            _check_range(new, dtype, source.source, scaler)
            columns = dict(zip(batch.schema.names, batch.columns, strict=True))  # as read
            for k, name in enumerate(columns_out):
                columns[name] = pa.array(new[:, k].astype(dtype))
            table = pa.Table.from_arrays([columns[n] for n in out_schema.names], schema=out_schema)
            writer.write_table(table)
        if offset != source.n_rows:  # the footer said otherwise: nothing is renamed into place
            raise InputError(source.source, count_mismatch(source.n_rows, str(offset)))


def probs_layout(source: PredictionSource) -> str:
    """Where :func:`write_calibrated` puts a probability-output method's probabilities, in
    words, for the message of ``calibkit apply``: ``"probabilities under 'probs'"``, or
    ``"probabilities in prob_0 .. prob_9"`` (nothing is read)."""
    if isinstance(source, ParquetPredictions):
        return f"probabilities in prob_0 .. prob_{source.n_classes - 1}"
    return f"probabilities under {PROBS_KEY!r}"
