"""Reading ``.pt`` / ``.pth`` files: a dict of tensors, loaded with ``weights_only=True``."""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from math import prod
from pathlib import Path
from typing import IO, Any

import numpy as np

from calibkit.errors import InputError, describe
from calibkit.loaders.keys import ReadOptions, choose_keys, confidence_keys
from calibkit.sources.predictions import ConfidenceRows, Predictions, PredictionSource

__all__ = ["read_pt"]


def _tensor_types() -> tuple[type, ...]:
    import torch

    return (torch.Tensor, torch.nn.Parameter)


def _checked(value: Any, key: str, source: str) -> Any:
    """``value`` if it is a plain dense real tensor (or a numpy array), else :class:`InputError`.

    Only the exact types ``torch.Tensor`` and ``torch.nn.Parameter`` are accepted: the safe
    loader still rebuilds a tensor's instance attributes from the file, and an attribute that
    replaces a tensor method (``detach``, ``numpy``, ...) would run in its place.
    """
    import torch

    if isinstance(value, np.ndarray):
        return value
    if not isinstance(value, torch.Tensor):
        raise InputError(source, f"entry {key!r} is a {type(value).__name__}, not a tensor")
    if type(value) not in _tensor_types():
        raise InputError(
            source, f"entry {key!r} is a {type(value).__name__}, not a plain torch.Tensor"
        )
    replaced = sorted(name for name in vars(value) if hasattr(torch.Tensor, name))
    if replaced:
        raise InputError(
            source,
            f"entry {key!r} is a tensor whose {replaced[0]!r} attribute the file replaces "
            "(a crafted file); save plain tensors",
        )
    what = f"entry {key!r} ({value.dtype}, {value.layout})"
    if value.layout != torch.strided or value.is_quantized or value.is_meta:
        raise InputError(source, f"{what} is not a plain dense tensor")
    if value.dtype.is_complex:
        raise InputError(source, f"{what} holds complex numbers")
    return value


def _to_numpy(value: Any, key: str, source: str) -> np.ndarray:
    import torch

    value = _checked(value, key, source)
    if isinstance(value, np.ndarray):
        return value
    what = f"entry {key!r} ({value.dtype}, {value.layout})"
    # methods called on the class, never looked up on the (file-built) instance
    t = torch.Tensor.cpu(torch.Tensor.detach(value))
    if t.dtype.is_floating_point and t.dtype not in (torch.float16, torch.float32, torch.float64):
        t = t.to(torch.float32)  # bfloat16, float8: float32 holds them exactly
    try:
        return t.numpy()
    except (TypeError, RuntimeError, NotImplementedError) as err:
        raise InputError(source, f"{what} cannot be read ({describe(err)})") from None


def _numpy_dtype(value: Any) -> np.dtype[Any]:
    """The numpy dtype :func:`_to_numpy` turns a checked tensor (or array) into."""
    import torch

    if isinstance(value, np.ndarray):
        return np.dtype(value.dtype)
    dtype = value.dtype
    if dtype == torch.bool:
        return np.dtype(np.bool_)
    if dtype.is_floating_point:
        return np.dtype({torch.float16: "f2", torch.float64: "f8"}.get(dtype, "f4"))
    return np.dtype(f"{'i' if dtype.is_signed else 'u'}{dtype.itemsize}")


def _check_archive(path: Path, source: str) -> None:
    """Refuse a file whose records will not fit in memory, then one that fails its CRC-32.

    ``torch.load`` reads every record of a ``.pt`` zip archive into memory and checks no
    checksum. torch stores the records uncompressed, but a re-zipped file may deflate them: the
    sizes come from the zip directory (what each record becomes), so the check runs before
    anything is decompressed. The CRC-32 pass then reads each record once, in bounded memory;
    archives written with ``compute_crc32=False`` record no checksums (all zero) and are read
    unchecked. A legacy (non-zip) file holds its storages as they are: its size is what it needs.
    """
    from calibkit.loaders.npz import STREAMING_HINT
    from calibkit.sources.memory import check_fits

    size = path.stat().st_size
    try:
        archive = zipfile.ZipFile(path)
    except Exception:  # legacy format, or a file torch.load will refuse in its own words
        check_fits(source, size, hint=STREAMING_HINT)
        return
    with archive:
        records = archive.infolist()
        needed = max(size, sum(info.file_size for info in records))
        check_fits(source, needed, hint=STREAMING_HINT)
        if not any(info.CRC for info in records):
            return
        with open(path, "rb") as fh:
            for info in records:
                problem = _record_problem(path, archive, fh, info)
                if problem is not None:
                    raise InputError(source, f"record {info.filename!r} {problem}")


def _record_problem(
    path: Path, archive: zipfile.ZipFile, fh: IO[bytes], info: zipfile.ZipInfo
) -> str | None:
    """What is wrong with a record's bytes, or ``None`` when they match their CRC-32.

    A stored record is checked through a memory map (as ``.npz`` members are); a deflated one
    is decompressed in steps by zipfile, which checks the CRC-32 at the record's end. A local
    header that disagrees with the zip directory is corruption too: torch would read the data
    from the wrong offset.
    """
    from calibkit.loaders.npz import _CRC_STEP, _local_data_start, crc32_of

    failed = "fails its CRC-32 check (corrupted)"
    try:
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            with archive.open(info) as record:
                while record.read(_CRC_STEP):
                    pass
            return None
        start = _local_data_start(fh, info)
        if start is None:
            return "is corrupted (its local header disagrees with the zip directory)"
        size = info.compress_size
        if start + size > path.stat().st_size:
            return "is truncated"
        if size == 0:
            return None if info.CRC == 0 else failed
        raw = np.memmap(path, dtype=np.uint8, mode="r", offset=start, shape=(size,))
        return None if crc32_of(raw) == info.CRC else failed
    except zipfile.BadZipFile as err:
        return failed if "CRC-32" in str(err) else f"is corrupted ({describe(err)})"
    except Exception as err:  # an untrusted file: any failure to read it is the file's problem
        return f"cannot be read ({describe(err)})"


def _check_tensors(
    obj: dict[str, Any], keys: tuple[str, str], source: str, *, confidence: bool = False
) -> None:
    """Refuse tensors whose use will not fit in memory, from their declared shapes and dtypes.

    Counts every storage the load holds, each used tensor at its full view size (an expanded,
    stride-0 view is tiny on disk, but every element is touched and copied when converted), the
    float32 copy of bfloat16/float8, and the copies the validation makes.
    """
    import torch

    from calibkit.loaders.npz import STREAMING_HINT
    from calibkit.sources.memory import check_fits, confidence_copies, prediction_copies

    storages: dict[int, int] = {}
    for value in obj.values():
        if type(value) in _tensor_types() and value.layout == torch.strided and not value.is_meta:
            storage = torch.Tensor.untyped_storage(value)
            storages[storage.data_ptr() or id(storage)] = storage.nbytes()
    needed = sum(storages.values())
    specs = []
    for key in keys:
        value = _checked(obj[key], key, source)
        dtype = _numpy_dtype(value)
        shape = tuple(int(d) for d in value.shape)
        numel = prod(shape)
        if not isinstance(value, np.ndarray):
            held = torch.Tensor.untyped_storage(value).nbytes()
            needed += max(0, numel * value.dtype.itemsize - held)  # a view larger than its data
            if value.dtype.is_floating_point and value.dtype not in (
                torch.float16,
                torch.float32,
                torch.float64,
            ):
                needed += numel * 4  # the float32 copy
        specs.append((shape, dtype))
    (shape, dtype), (y_shape, y_dtype) = specs
    if confidence:
        needed += confidence_copies(max(prod(shape), prod(y_shape)))
    else:
        needed += prediction_copies(shape, dtype, y_shape, y_dtype)
    check_fits(source, needed, hint=STREAMING_HINT)


def _first_line(err: BaseException) -> str:
    # torch's messages are long essays; their first sentence says what went wrong
    return describe(err)


def _unpickler_detail(err: BaseException) -> str:
    """The one informative clause of torch's weights-only error essay."""
    text = " ".join(str(err).split())
    match = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation|$)", text)
    return describe(ValueError(match.group(1))) if match else describe(err)


def read_pt(path: Path, options: ReadOptions, source: str) -> PredictionSource:
    try:
        import torch
    except ImportError:
        raise InputError(
            source, "reading .pt files needs PyTorch: pip install 'calibkit[torch]'"
        ) from None
    _check_archive(path, source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. torch's note on old pickle protocols
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        detail = _unpickler_detail(err)
        if detail.startswith("Unsupported global"):
            raise InputError(
                source,
                "holds pickled Python objects, which calibkit never loads (save a dict of tensors)",
            ) from None
        raise InputError(
            source, f"not a readable .pt file (torch's safe loader: {detail})"
        ) from None
    except Exception as err:  # an untrusted file: any parser failure is the file's problem
        raise InputError(source, f"not a readable .pt file ({_first_line(err)})") from None
    if not isinstance(obj, dict):
        raise InputError(source, f"expected a dict of tensors; found {type(obj).__name__}")
    bad_keys = [k for k in obj if not isinstance(k, str)]
    if bad_keys:
        raise InputError(
            source,
            f"dict keys must be strings; found {type(bad_keys[0]).__name__} key {bad_keys[0]!r}",
        )
    pair = confidence_keys(list(obj), options)
    if pair is not None:
        _check_tensors(obj, pair, source, confidence=True)
        return ConfidenceRows.from_arrays(
            _to_numpy(obj[pair[0]], pair[0], source),
            _to_numpy(obj[pair[1]], pair[1], source),
            source=source,
        )
    scores_key, labels_key, kind = choose_keys(list(obj), options, source)
    _check_tensors(obj, (scores_key, labels_key), source)
    coarse = isinstance(obj[scores_key], torch.Tensor) and obj[scores_key].dtype in (
        torch.bfloat16,
        torch.float16,
    )
    return Predictions.from_arrays(
        _to_numpy(obj[scores_key], scores_key, source),
        _to_numpy(obj[labels_key], labels_key, source),
        kind=options.kind,  # --input forces; else the name says, and probabilities are detected
        named=kind,
        forced_by="--input",
        source=source,
        score_key=scores_key,
        label_key=labels_key,
        sum_atol=1e-2 if coarse else None,  # the tolerance of the tensor's own dtype
    )
