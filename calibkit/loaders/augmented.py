"""Logits saved under input augmentations: ``(N, L, K)`` arrays (``N`` examples, ``L``
augmented views of each, ``K`` classes) and their labels ``(N,)``, for ``calibkit
mutual-info``.

The arrays come through :func:`calibkit.readers.read_arrays`, with every safety check of the
predictions readers (no unpickling, CRC-32 checks, memory estimated before loading). Formats:
``.npz`` (arrays of any shape) and ``.pt`` (a dict of tensors); a parquet file cannot hold a
3-D array (its columns are ``(N,)`` or ``(N, k)`` lists) and is refused with one line saying so.

Keys: the logits under ``logits_key``, else the first of ``logits`` / ``logit`` (any case); the
labels under ``labels_key``, else the first of the label aliases of
:mod:`calibkit.loaders.keys` (``labels``, ``label``, ``targets``, ...). The labels must be class
indices ``(N,)`` (soft labels say nothing about which examples belong to a class).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.errors import InputError, Param
from calibkit.loaders.keys import LOGIT_ALIASES, ReadOptions, choose_labels_key
from calibkit.readers import check_file, format_for, read_arrays
from calibkit.readers.names import listing, quoted
from calibkit.sources.predictions import validate_labels

__all__ = ["AugmentedLogits", "read_augmented"]

#: Elements checked for NaN/inf at once (a bounded temporary for a memory-mapped array).
_CHECK_ELEMENTS = 1 << 22


@dataclass(frozen=True, eq=False)
class AugmentedLogits:
    """Logits ``(N, L, K)`` as stored (float32 stays float32; an uncompressed ``.npz`` member is
    memory-mapped) and int64 labels ``(N,)``."""

    logits: NDArray[Any]
    labels: NDArray[np.int64]
    source: str
    logits_key: str
    labels_key: str

    @property
    def shape(self) -> tuple[int, int, int]:
        n, n_aug, k = self.logits.shape
        return int(n), int(n_aug), int(k)


def _logits_key(keys: list[str], logits_key: str | None, source: str) -> str:
    if logits_key is not None:
        if logits_key not in keys:
            raise InputError(
                source, f"key {quoted(logits_key)} not found; keys present: {listing(keys)}"
            )
        return logits_key
    lowered = {k.lower(): k for k in keys}
    for alias in LOGIT_ALIASES:
        if alias in lowered:
            return lowered[alias]
    raise InputError(
        source,
        f"no logits found; keys present: {listing(keys)} (name them with "
        + Param("logits_key")
        + ")",
    )


def read_augmented(
    path: str | Path,
    *,
    logits_key: str | None = None,
    labels_key: str | None = None,
    source: str | None = None,
) -> AugmentedLogits:
    """Read and check ``(N, L, K)`` logits and ``(N,)`` labels from an ``.npz`` or ``.pt`` file.

    Checks (each an :class:`~calibkit.errors.InputError` naming the file): the logits are a
    real-valued 3-D array with ``L >= 2`` augmentations and ``K >= 2`` classes, every value
    finite; the labels are ``N`` integers in ``[0, K)``.
    """
    source = str(path) if source is None else source
    path = Path(path)
    check_file(path, source, what="data file")
    fmt = format_for(path, source, sniff=True)
    if fmt.name == "parquet":
        raise InputError(
            source,
            "a parquet column holds (N,) or (N, k) values, not logits of shape (N, L, K) "
            "under L augmentations; save them in an .npz or .pt file",
        )
    keys = list(fmt.reader().list_keys(path, source))
    z_key = _logits_key(keys, logits_key, source)
    y_key = choose_labels_key(keys, ReadOptions(labels_key=labels_key), source)
    if y_key == z_key:
        raise InputError(source, f"the logits and the labels are both key {quoted(z_key)}")
    arrays = read_arrays(path, [z_key, y_key], source=source)
    logits, labels = arrays[z_key], arrays[y_key]
    if logits.dtype.kind not in "fiu":
        raise InputError(
            source, f"logits {quoted(z_key)} must be real numbers; found dtype {logits.dtype}"
        )
    if logits.ndim != 3:
        hint = (
            " (one view per example: the mutual information needs L >= 2 augmentations of each)"
            if logits.ndim == 2
            else ""
        )
        raise InputError(
            source,
            f"logits {quoted(z_key)} must have shape (N, L, K) (examples, augmentations, "
            f"classes); found shape {logits.shape}{hint}",
        )
    n, n_aug, k = logits.shape
    if n_aug < 2:
        raise InputError(
            source,
            f"logits {quoted(z_key)} have L = {n_aug} augmentation per example (shape "
            f"{logits.shape}); the mutual information needs L >= 2",
        )
    if k < 2:
        raise InputError(
            source,
            f"logits {quoted(z_key)} have K = {k} class (shape {logits.shape}); needs K >= 2",
        )
    if labels.ndim == 2 and labels.shape[1] == k:  # k >= 2: not an (N, 1) column
        raise InputError(
            source,
            f"labels {quoted(y_key)} are soft labels (shape {labels.shape}); the mutual "
            "information needs class indices (N,)",
        )
    hard = validate_labels(np.asarray(labels), k, source)
    if hard.shape[0] != n:
        raise InputError(
            source, f"{hard.shape[0]} labels for {n} examples of logits {quoted(z_key)}"
        )
    _check_finite(logits, z_key, source)
    return AugmentedLogits(
        logits=logits, labels=hard, source=source, logits_key=z_key, labels_key=y_key
    )


def _check_finite(logits: NDArray[Any], key: str, source: str) -> None:
    if logits.dtype.kind != "f":
        return
    n = logits.shape[0]
    per_row = max(1, int(np.prod(logits.shape[1:])))
    step = max(1, _CHECK_ELEMENTS // per_row)
    for start in range(0, n, step):
        block = np.asarray(logits[start : start + step])
        bad = ~np.isfinite(block)
        if bad.any():
            x, view, c = (int(i) for i in np.argwhere(bad)[0])
            raise InputError(
                source,
                f"logits {quoted(key)} hold {block[x, view, c]} at example {start + x}, "
                f"augmentation {view}, class {c}",
            )
