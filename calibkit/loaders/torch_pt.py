"""Reading ``.pt`` / ``.pth`` files: a dict of tensors, loaded with ``weights_only=True``."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from calibkit.errors import InputError
from calibkit.loaders.keys import ReadOptions, choose_keys
from calibkit.predictions import Predictions

__all__ = ["read_pt"]


def _to_numpy(value: Any, key: str, source: str) -> np.ndarray:
    import torch

    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.to(torch.float32)  # numpy has no bfloat16; float32 holds every bfloat16 exactly
        return t.numpy()
    if isinstance(value, np.ndarray):
        return value
    raise InputError(source, f"entry {key!r} is a {type(value).__name__}, not a tensor")


def read_pt(path: Path, options: ReadOptions, source: str) -> Predictions:
    try:
        import torch
    except ImportError:
        raise InputError(
            source, "reading .pt files needs PyTorch: pip install 'calibkit[torch]'"
        ) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = " ".join(str(err).split())
        if "weights_only" in text or "Unsupported global" in text:
            raise InputError(
                source,
                "holds pickled Python objects, which calibkit never loads (save a dict of tensors)",
            ) from None
        raise InputError(source, f"not a readable .pt file ({text[:200]})") from None
    except (OSError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as err:
        raise InputError(
            source, f"not a readable .pt file ({' '.join(str(err).split())[:200]})"
        ) from None
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise InputError(source, f"expected a dict of tensors; found {type(obj).__name__}")
    scores_key, labels_key, kind = choose_keys(list(obj), options, source)
    return Predictions.from_arrays(
        _to_numpy(obj[scores_key], scores_key, source),
        _to_numpy(obj[labels_key], labels_key, source),
        kind=kind,
        source=source,
        score_key=scores_key,
        label_key=labels_key,
    )
