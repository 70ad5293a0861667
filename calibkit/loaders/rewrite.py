"""Writing temperature-scaled predictions back in the format, layout and key names they came in.

Everything except the scores is copied unchanged (other arrays, columns, labels). Floating-point
scores keep their dtype; the division itself is done in float64. Probabilities become
``softmax(log p / T)``. The output is written atomically and never over the input.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.calibrators.temperature import TemperatureScaler, require_scores
from calibkit.errors import InputError, UsageError
from calibkit.loaders.parquet import ParquetPredictions, parquet_file
from calibkit.predictions import Predictions, PredictionSource
from calibkit.report.atomic import atomic_path

__all__ = ["write_scaled"]


def _scaled(scores: NDArray[Any], kind: str, scaler: TemperatureScaler) -> NDArray[np.float64]:
    """Scale validated ``(n, K)`` scores (binary already expanded)."""
    if kind == "logits":
        return scaler.transform(scores)
    return scaler.transform_probs(scores)


def _collapse(new: NDArray[np.float64], kind: str) -> NDArray[np.float64]:
    """Back to one positive-class score per row for binary models."""
    return new[:, 1] - new[:, 0] if kind == "logits" else new[:, 1]


def _check_range(
    new: NDArray[np.float64], dtype: Any, source: str, scaler: TemperatureScaler
) -> None:
    """Refuse scaled scores that the output's number type cannot hold (they would become inf)."""
    dtype = np.dtype(dtype)
    limit = float(np.finfo(dtype if dtype.kind == "f" else np.float64).max)
    biggest = float(np.max(np.abs(new))) if new.size else 0.0
    if not np.isfinite(biggest) or biggest > limit:
        raise UsageError(
            f"{source}: with T = {scaler.temperature:g} the scores reach {biggest:.3g}, beyond "
            f"the range of {dtype.name}; use a larger temperature"
        )


def _out_dtype(dtype: Any) -> np.dtype[Any]:
    """Floating inputs keep their dtype; integer ones become float64."""
    dtype = np.dtype(dtype)
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def write_scaled(source: PredictionSource, scaler: TemperatureScaler, out: str | Path) -> Path:
    """Write ``source`` with its scores temperature-scaled to ``out`` (same format as input)."""
    require_scores(source)
    in_path = Path(source.source)
    out = Path(out)
    if out.suffix.lower() != in_path.suffix.lower():
        raise UsageError(
            f"--out {out} must have the input's extension {in_path.suffix!r} "
            "(the output keeps the input's format)"
        )
    if isinstance(source, ParquetPredictions):
        _write_parquet(source, scaler, out)
    elif isinstance(source, Predictions) and in_path.suffix.lower() == ".npz":
        _write_npz(source, scaler, out)
    elif isinstance(source, Predictions) and in_path.suffix.lower() in (".pt", ".pth"):
        _write_pt(source, scaler, out)
    else:
        raise UsageError(f"cannot write {in_path.suffix!r} predictions")
    return out


def _new_scores(
    source: Predictions, scaler: TemperatureScaler, shape: tuple[int, ...], dtype: Any
) -> NDArray[Any]:
    """The scaled scores in the stored shape and ``dtype`` (refusing overflow)."""
    new = _scaled(source.scores, source.kind, scaler)
    if source.binary:
        new = _collapse(new, source.kind)
    _check_range(new, dtype, source.source, scaler)
    return new.astype(dtype).reshape(shape)


def _write_npz(source: Predictions, scaler: TemperatureScaler, out: Path) -> None:
    in_path = Path(source.source)
    with zipfile.ZipFile(in_path) as zf:
        compressed = any(i.compress_type != zipfile.ZIP_STORED for i in zf.infolist())
    with np.load(in_path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    key = source.score_key
    if key is None or key not in arrays:
        raise InputError(source.source, "cannot find the scores key to rewrite")
    original = arrays[key]
    arrays[key] = _new_scores(source, scaler, original.shape, _out_dtype(original.dtype))
    save = np.savez_compressed if compressed else np.savez
    with atomic_path(out, inputs=[in_path]) as tmp, open(tmp, "wb") as fh:
        save(fh, **arrays)


def _write_pt(source: Predictions, scaler: TemperatureScaler, out: Path) -> None:
    import torch

    in_path = Path(source.source)
    obj = torch.load(in_path, map_location="cpu", weights_only=True)
    key = source.score_key
    original = obj[key]
    target = original.dtype if original.is_floating_point() else torch.float64
    # numpy has no bfloat16; float32 has the same range, so the overflow check is exact
    check = np.float32 if target == torch.bfloat16 else torch.empty(0, dtype=target).numpy().dtype
    new = _new_scores(source, scaler, tuple(original.shape), check)
    obj[key] = torch.from_numpy(np.ascontiguousarray(new)).to(target)
    with atomic_path(out, inputs=[in_path]) as tmp:
        torch.save(obj, tmp)


def _write_parquet(source: ParquetPredictions, scaler: TemperatureScaler, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with (
        atomic_path(out, inputs=[source.path]) as tmp,
        parquet_file(source.path, memory_map=False, pre_buffer=False) as pf,  # CRC checked
    ):
        schema = pf.schema_arrow
        with pq.ParquetWriter(tmp, schema) as writer:
            offset = 0
            for batch in pf.iter_batches():
                scores, _ = source.convert_batch(batch, offset)  # validated, binary expanded
                offset += batch.num_rows
                new = _scaled(scores, source.kind, scaler)
                if source.binary:
                    new = _collapse(new, source.kind)[:, None]
                ftype = schema.field(source.score_columns[0]).type
                value_type = ftype.value_type if hasattr(ftype, "value_type") else ftype
                _check_range(new, value_type.to_pandas_dtype(), source.source, scaler)
                columns = dict(zip(batch.schema.names, batch.columns, strict=True))
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
