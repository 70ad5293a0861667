"""``.pt`` / ``.pth`` files -> named arrays: a dict of tensors, loaded with ``weights_only=True``.

Before ``torch.load`` runs, the archive's declared record sizes must fit in memory and every
record must match its CRC-32 (:func:`check_archive`; torch checks none). The loaded object must
be a dict with string keys; each entry used must be a plain dense real ``torch.Tensor`` (or
``nn.Parameter``) whose methods the file does not replace (:func:`checked`), and it becomes a
numpy array with :func:`to_numpy` (bfloat16 and float8 widened to float32, which holds them
exactly). Nothing here knows what the arrays mean. Needs the ``torch`` extra.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from collections.abc import Collection
from math import prod
from pathlib import Path
from typing import IO, Any

import numpy as np

from calibkit.errors import InputError, describe
from calibkit.readers.memory import STREAMING_HINT, check_fits
from calibkit.readers.names import listing, quoted
from calibkit.readers.zipfiles import (
    CRC_FAILED,
    CRC_STEP,
    StoredProblem,
    check_stored,
    local_data_start,
)

__all__ = [
    "check_archive",
    "checked",
    "declared",
    "is_coarse",
    "list_keys",
    "load_pt",
    "numpy_dtype",
    "read_arrays",
    "sniff",
    "storage_bytes",
    "to_numpy",
]


def _tensor_types() -> tuple[type, ...]:
    import torch

    return (torch.Tensor, torch.nn.Parameter)


def checked(value: Any, key: str, source: str) -> Any:
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


def to_numpy(value: Any, key: str, source: str) -> np.ndarray:
    """The checked entry as a numpy array (bfloat16 and float8 become float32)."""
    import torch

    value = checked(value, key, source)
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


def numpy_dtype(value: Any) -> np.dtype[Any]:
    """The numpy dtype :func:`to_numpy` turns a checked tensor (or array) into."""
    import torch

    if isinstance(value, np.ndarray):
        return np.dtype(value.dtype)
    dtype = value.dtype
    if dtype == torch.bool:
        return np.dtype(np.bool_)
    if dtype.is_floating_point:
        return np.dtype({torch.float16: "f2", torch.float64: "f8"}.get(dtype, "f4"))
    return np.dtype(f"{'i' if dtype.is_signed else 'u'}{dtype.itemsize}")


def is_coarse(value: Any) -> bool:
    """Whether the entry is a bfloat16 or float16 tensor (its sums are only good to 1e-2)."""
    import torch

    return isinstance(value, torch.Tensor) and value.dtype in (torch.bfloat16, torch.float16)


def check_archive(path: Path, source: str) -> None:
    """Refuse a file whose records will not fit in memory, then one that fails its CRC-32.

    ``torch.load`` reads every record of a ``.pt`` zip archive into memory and checks no
    checksum. torch stores the records uncompressed, but a re-zipped file may deflate them: the
    sizes come from the zip directory (what each record becomes), so the check runs before
    anything is decompressed. The CRC-32 pass then reads each record once, in bounded memory;
    archives written with ``compute_crc32=False`` record no checksums (all zero) and are read
    unchecked. A legacy (non-zip) file holds its storages as they are: its size is what it needs.
    """
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
    try:
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            with archive.open(info) as record:
                while record.read(CRC_STEP):
                    pass
            return None
        start = local_data_start(fh, info)
        if start is None:
            return "is corrupted (its local header disagrees with the zip directory)"
        try:
            check_stored(path, start, info.compress_size, info.CRC)
        except StoredProblem as problem:
            return str(problem)
        return None
    except zipfile.BadZipFile as err:
        return CRC_FAILED if "CRC-32" in str(err) else f"is corrupted ({describe(err)})"
    except Exception as err:  # an untrusted file: any failure to read it is the file's problem
        return f"cannot be read ({describe(err)})"


def _unpickler_detail(err: BaseException) -> str:
    """The one informative clause of torch's weights-only error essay."""
    text = " ".join(str(err).split())
    match = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation|$)", text)
    return describe(ValueError(match.group(1))) if match else describe(err)


def load_pt(path: Path, source: str) -> dict[str, Any]:
    """The dict the file holds, its entries as stored (tensors not yet checked).

    The archive is checked first (:func:`check_archive`); ``torch.load`` runs with
    ``weights_only=True`` on the CPU. A file holding pickled Python objects, anything but a
    dict, or a dict with keys that are not strings is an :class:`InputError`.
    """
    try:
        import torch
    except ImportError:
        raise InputError(
            source, "reading .pt files needs PyTorch: pip install 'calibkit[torch]'"
        ) from None
    check_archive(path, source)
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
        # torch's messages are long essays; their first sentence says what went wrong
        raise InputError(source, f"not a readable .pt file ({describe(err)})") from None
    if not isinstance(obj, dict):
        raise InputError(source, f"expected a dict of tensors; found {type(obj).__name__}")
    bad_keys = [k for k in obj if not isinstance(k, str)]
    if bad_keys:
        raise InputError(
            source,
            f"dict keys must be strings; found {type(bad_keys[0]).__name__} key {bad_keys[0]!r}",
        )
    return obj


def storage_bytes(obj: dict[str, Any]) -> int:
    """Bytes of every distinct tensor storage the loaded dict holds (all in memory already)."""
    import torch

    storages: dict[int, int] = {}
    for value in obj.values():
        if type(value) in _tensor_types() and value.layout == torch.strided and not value.is_meta:
            storage = torch.Tensor.untyped_storage(value)
            storages[storage.data_ptr() or id(storage)] = storage.nbytes()
    return sum(storages.values())


def declared(value: Any, key: str, source: str) -> tuple[tuple[int, ...], np.dtype[Any], int]:
    """``(shape, numpy dtype, extra bytes)`` of a checked entry as :func:`to_numpy` returns it.

    The extra bytes are what converting it costs beyond its storage: a view larger than its
    data (an expanded, stride-0 view is tiny on disk, but every element is touched and copied),
    and the float32 copy of bfloat16/float8.
    """
    import torch

    value = checked(value, key, source)
    dtype = numpy_dtype(value)
    shape = tuple(int(d) for d in value.shape)
    numel = prod(shape)
    extra = 0
    if not isinstance(value, np.ndarray):
        held = torch.Tensor.untyped_storage(value).nbytes()
        extra += max(0, numel * value.dtype.itemsize - held)  # a view larger than its data
        if value.dtype.is_floating_point and value.dtype not in (
            torch.float16,
            torch.float32,
            torch.float64,
        ):
            extra += numel * 4  # the float32 copy
    return shape, dtype, extra


def sniff(path: Path) -> bool:
    """Whether the file at ``path`` looks like a ``torch.save`` file: a zip archive with a
    ``data.pkl`` record, or a legacy pickle stream."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(name.endswith("/data.pkl") or name == "data.pkl" for name in zf.namelist())
    except Exception:
        pass
    try:
        with open(path, "rb") as fh:
            return fh.read(1) == b"\x80"
    except OSError:
        return False


def read_arrays(
    path: Path, keys: Collection[str] | None, source: str
) -> dict[str, np.ndarray[Any, Any]]:
    """The tensors under ``keys`` (every tensor entry when ``None``) as numpy arrays, by key."""
    import torch

    obj = load_pt(path, source)
    if keys is None:
        wanted = [k for k, v in obj.items() if isinstance(v, torch.Tensor | np.ndarray)]
    else:
        wanted = list(dict.fromkeys(keys))
    for key in wanted:
        if key not in obj:
            raise InputError(source, f"key {quoted(key)} not found; keys present: {listing(obj)}")
    needed = storage_bytes(obj) + sum(declared(obj[key], key, source)[2] for key in wanted)
    check_fits(source, needed, hint=STREAMING_HINT)
    return {key: to_numpy(obj[key], key, source) for key in wanted}


def list_keys(path: Path, source: str) -> list[str]:
    """The keys of the file's dict (the file is loaded: ``torch.load`` has no index)."""
    return list(load_pt(path, source))
