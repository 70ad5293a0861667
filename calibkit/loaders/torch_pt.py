"""Reading ``.pt`` / ``.pth`` files: a dict of tensors, loaded with ``weights_only=True``."""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from calibkit.errors import InputError, describe
from calibkit.loaders.keys import ReadOptions, choose_keys, confidence_keys
from calibkit.predictions import ConfidenceRows, Predictions, PredictionSource

__all__ = ["read_pt"]


def _to_numpy(value: Any, key: str, source: str) -> np.ndarray:
    import torch

    if isinstance(value, torch.Tensor):
        what = f"entry {key!r} ({value.dtype}, {value.layout})"
        if value.layout != torch.strided or value.is_quantized or value.is_meta:
            raise InputError(source, f"{what} is not a plain dense tensor")
        if value.is_complex():
            raise InputError(source, f"{what} holds complex numbers")
        t = value.detach().cpu()
        if t.is_floating_point() and t.dtype not in (torch.float16, torch.float32, torch.float64):
            t = t.to(torch.float32)  # bfloat16, float8: float32 holds them exactly
        try:
            return t.numpy()
        except (TypeError, RuntimeError, NotImplementedError) as err:
            raise InputError(source, f"{what} cannot be read ({describe(err)})") from None
    if isinstance(value, np.ndarray):
        return value
    raise InputError(source, f"entry {key!r} is a {type(value).__name__}, not a tensor")


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
    from calibkit.loaders.npz import STREAMING_HINT
    from calibkit.memory import check_fits

    check_fits(source, int(path.stat().st_size * 1.5), hint=STREAMING_HINT)
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
        return ConfidenceRows.from_arrays(
            _to_numpy(obj[pair[0]], pair[0], source),
            _to_numpy(obj[pair[1]], pair[1], source),
            source=source,
        )
    scores_key, labels_key, kind = choose_keys(list(obj), options, source)
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
