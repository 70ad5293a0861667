"""A model's last layer from a saved file: penultimate features, the final layer's weight and
bias, labels, and (optionally) the logits and class names, checked against one another.

:func:`read_layer` reads them through :func:`calibkit.readers.read_arrays` (``.npz``,
``.parquet``, ``.pt``: no unpickling, CRC and memory checks), choosing the keys:

* features: ``--features-key``, else one of :data:`FEATURE_ALIASES`; in a parquet file also wide
  columns ``PREFIX_0 ... PREFIX_{D-1}`` (``feature_0`` ...), or a list column;
* weight: ``--weight-key``, else one of :data:`WEIGHT_ALIASES` (``weight``, ``fc.weight``,
  ``classifier.weight``, ...), else the one ``NAME.weight`` of shape ``(K, D)`` whose ``D`` is
  the features'; bias: ``--bias-key``, else the ``bias`` next to the weight (``fc.bias`` for
  ``fc.weight``). ``weights_path`` takes weight and bias from another file (a state dict);
* logits (optional): ``--logits-key``, else ``logits`` / ``logit``; labels: ``--labels-key``,
  else ``labels``, ``label``, ``targets``, ...; class names: a string array ``class_names``.

Two or more candidates for one role are an error that lists them and names the option to choose.
Checks, each one line naming the file: features 2-D with ``N >= 1`` rows and ``D >= 1``, weight
``(K, D)`` with the features' ``D`` (``(D, K)`` "looks transposed"), bias ``(K,)``, ``K >= 3``,
labels integers in ``[0, K)``, finite values, and when the file holds logits, that
``features @ weight.T + bias`` reproduces them (:func:`logits_mismatch`) within the rounding of
the precision they were computed in (``logits_precision``: :data:`LOGITS_PRECISIONS`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.errors import InputError, Message, Param, UsageError
from calibkit.loaders.keys import LABEL_ALIASES, LOGIT_ALIASES
from calibkit.readers import check_file, format_for, read_arrays
from calibkit.readers.names import listing, quoted

__all__ = [
    "FEATURE_ALIASES",
    "LOGITS_PRECISIONS",
    "WEIGHT_ALIASES",
    "Layer",
    "LayerKeys",
    "logits_mismatch",
    "read_layer",
]

#: Names under which penultimate activations are found, in no order (two present: ambiguous).
FEATURE_ALIASES = (
    "features", "feature", "penultimate", "embeddings", "embedding", "activations",
    "activation", "feats", "hidden",
)  # fmt: skip
#: Names of a final layer's weight (``X.bias`` goes with ``X.weight``).
WEIGHT_ALIASES = (
    "weight", "fc.weight", "classifier.weight", "head.weight", "linear.weight", "final.weight",
    "out.weight", "output.weight",
)  # fmt: skip
CLASS_NAMES_KEY = "class_names"
#: ``logits_precision`` -> the unit roundoff ``u`` of the arithmetic the logits were computed in
#: (``"auto"``: the least precise floating dtype among the stored arrays). TF32 keeps float16's
#: 10-bit mantissa (u = 2**-11), bfloat16 7 bits (u = 2**-8).
LOGITS_PRECISIONS: dict[str, float | None] = {
    "auto": None, "float32": 2.0**-24, "tf32": 2.0**-11, "float16": 2.0**-11,
    "bfloat16": 2.0**-8, "float64": 2.0**-53,
}  # fmt: skip
_UNIT_NAMES = {2.0**-24: "float32", 2.0**-11: "float16", 2.0**-8: "bfloat16", 2.0**-53: "float64"}
#: Wide parquet columns of features: ``PREFIX_<i>``.
_WIDE = re.compile(r"^(.*?)_?(\d+)$")


@dataclass(frozen=True, kw_only=True)
class LayerKeys:
    """Keys given on the command line (``None``: detect)."""

    features: str | None = None
    weight: str | None = None
    bias: str | None = None
    logits: str | None = None
    labels: str | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class Layer:
    """A checked last layer: float64 arrays and where each came from."""

    source: str
    features: NDArray[np.float64]
    weight: NDArray[np.float64]
    bias: NDArray[np.float64]
    labels: NDArray[np.int64]
    class_names: tuple[str, ...] | None = None
    #: whether the file held logits (and they were reproduced)
    has_logits: bool = False
    #: role -> key (or ``"PREFIX_0..PREFIX_{D-1}"``), and the file the final layer came from
    keys: Mapping[str, str] = field(default_factory=dict)
    weights_source: str = ""
    #: the unit roundoff of the precision weight and bias were stored in (2**-24: float32)
    weight_unit: float = 2.0**-53

    @property
    def n_classes(self) -> int:
        return int(self.weight.shape[0])


def _keys_of(path: Path, source: str) -> list[str]:
    check_file(path, source, what="data file")
    return list(format_for(path, source, sniff=True).reader().list_keys(path, source))


def _pick(
    role: str, given: str | None, aliases: Sequence[str], keys: Sequence[str], source: str,
    param: Param, *, required: bool = True,
) -> str | None:  # fmt: skip
    if given is not None:
        if given not in keys:
            raise InputError(
                source, f"key {quoted(given)} not found; keys present: {listing(keys)}"
            )
        return given
    found = [k for k in aliases if k in keys]
    if len(found) > 1:
        raise InputError(
            source,
            Message(f"several keys could hold the {role}: {', '.join(map(quoted, found))}; choose "
                    "one with ", param),
        )  # fmt: skip
    if not found:
        if not required:
            return None
        raise InputError(
            source,
            Message(f"no {role} found (looked for {', '.join(aliases[:6])}, ...); keys present: "
                    f"{listing(keys)}; name it with ", param),
        )  # fmt: skip
    return found[0]


def _wide_columns(
    keys: Sequence[str], prefix: str | None, source: str
) -> tuple[str, list[str]] | None:
    """Wide feature columns ``PREFIX_0 .. PREFIX_{D-1}`` (prefix given, or a features alias);
    a prefix whose numbers have a gap is an error naming the first missing column."""
    groups: dict[str, dict[int, str]] = {}
    for k in keys:
        m = _WIDE.match(k)
        if m:
            groups.setdefault(m.group(1), {})[int(m.group(2))] = k
    prefixes = [prefix] if prefix is not None else [p for p in FEATURE_ALIASES if p in groups]
    for p in prefixes:
        cols = groups.get(p)
        if not cols:
            continue
        missing = [i for i in range(max(cols) + 1) if i not in cols]
        if missing:
            last = cols[max(cols)]
            raise InputError(
                source,
                f"feature columns {p}_0 ... {last} found, but column {p}_{missing[0]} is missing"
                + (f" ({len(missing)} missing in all)" if len(missing) > 1 else ""),
            )
        return p, [cols[i] for i in range(len(cols))]
    return None


def _float(name: str, array: Any, source: str) -> NDArray[np.float64]:
    a = np.asarray(array)
    if a.dtype.kind not in "fiub":
        raise InputError(source, f"{name} has dtype {a.dtype}; expected numbers")
    out = a.astype(np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])  # plain ints, not np.int64 reprs
        raise InputError(
            source, f"{name} holds {int(bad.sum())} non-finite values (first at {first})"
        )
    return out


def _unit_roundoff(*arrays: Any) -> float:
    """The unit roundoff of the least precise floating dtype among ``arrays`` (float64 if none)."""
    units = [np.finfo(np.asarray(a).dtype).eps / 2 for a in arrays
             if np.asarray(a).dtype.kind == "f"]  # fmt: skip
    return float(max(units)) if units else float(np.finfo(np.float64).eps / 2)


def logits_mismatch(
    features: Any, weight: Any, bias: Any, logits: Any, *, unit: float
) -> tuple[float, int, int] | None:
    """``None`` when ``features @ weight.T + bias`` (in float64) reproduces ``logits``, else
    ``(largest difference, row, class)``.

    The tolerance per entry is the worst-case rounding of a stored product in arithmetic of unit
    roundoff ``unit`` (2**-24 for float32): a dot product of ``D`` terms summed in that precision
    is off by at most ``D u sum_i |x_i w_i|`` (Higham, *Accuracy and Stability*, §3.1), the bias
    adds one more rounding and storing the result one more of ``u |z|``; so
    ``|z - z_hat| <= (D + 2) u (|x| . |w| + |b|) + u |z|``, with a floor of a few float64 ulps.
    A wrong layer or transposed weights miss by orders of magnitude more.
    """
    x = np.asarray(features, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64)
    z_hat = x @ w.T + b
    scale = np.abs(x) @ np.abs(w).T + np.abs(b)
    d = x.shape[1]
    tol = (d + 2) * unit * scale + unit * np.abs(z) + 8 * np.finfo(np.float64).eps * scale
    diff = np.abs(z - z_hat)
    over = diff > tol
    if not over.any():
        return None
    row, col = np.unravel_index(int(np.argmax(np.where(over, diff, -1.0))), diff.shape)
    return float(diff[row, col]), int(row), int(col)


def _features(
    path: Path, keys: Sequence[str], given: str | None, source: str
) -> tuple[str, NDArray[Any]]:
    if given is not None and given in keys:
        return given, np.asarray(read_arrays(path, given, source=source)[given])
    present = [k for k in FEATURE_ALIASES if k in keys]
    if given is None and present:
        key = _pick("features", None, FEATURE_ALIASES, keys, source, Param("features_key"))
        assert key is not None
        return key, np.asarray(read_arrays(path, key, source=source)[key])
    wide = _wide_columns(keys, given, source)
    if wide is not None:
        prefix, cols = wide
        arrays = read_arrays(path, cols, source=source)
        parts = [np.asarray(arrays[c]) for c in cols]
        if any(p.ndim != 1 for p in parts):
            raise InputError(source, f"columns {prefix}_0 ... are not one value per row")
        return f"{prefix}_0..{prefix}_{len(cols) - 1}", np.stack(parts, axis=1)
    if given is not None:
        raise InputError(
            source,
            f"neither a key {quoted(given)} nor columns {given}_0, {given}_1, ... found; "
            f"keys present: {listing(keys)}",
        )
    _pick("features", None, FEATURE_ALIASES, keys, source, Param("features_key"))
    raise AssertionError("unreachable")  # pragma: no cover


def _final_layer(
    path: Path, keys: Sequence[str], names: LayerKeys, d: int, source: str
) -> tuple[str, str, NDArray[Any], NDArray[Any]]:
    if names.weight is not None:
        wkey = _pick("weight", names.weight, (), keys, source, Param("weight_key"))
    else:
        named = [k for k in WEIGHT_ALIASES if k in keys]
        if len(named) > 1:
            raise InputError(
                source,
                Message(f"several keys could hold the final layer's weight: "
                        f"{', '.join(map(quoted, named))}; choose one with ", Param("weight_key")),
            )  # fmt: skip
        if named:
            wkey = named[0]
        else:
            generic = [k for k in keys if k.endswith(".weight")]
            arrays = read_arrays(path, generic, source=source) if generic else {}
            fits = [k for k in generic
                    if np.ndim(arrays[k]) == 2 and np.shape(arrays[k])[1] == d]  # fmt: skip
            if len(fits) > 1:
                raise InputError(
                    source,
                    Message(f"several (K, {d}) weights could be the final layer: "
                            f"{', '.join(map(quoted, fits))}; choose one with ",
                            Param("weight_key")),
                )  # fmt: skip
            if not fits:
                raise InputError(
                    source,
                    Message(f"no final-layer weight of shape (K, {d}) found (looked for "
                            f"{', '.join(WEIGHT_ALIASES[:5])}, ..., NAME.weight); keys present: "
                            f"{listing(keys)}; name it with ", Param("weight_key"),
                            " or give the final layer in a file of its own (",
                            Param("weights"), ")"),
                )  # fmt: skip
            wkey = fits[0]
    assert wkey is not None
    if names.bias is not None:
        bkey = _pick("bias", names.bias, (), keys, source, Param("bias_key"))
    else:
        bkey = wkey[: -len("weight")] + "bias" if wkey.endswith("weight") else "bias"
        if bkey not in keys:
            raise InputError(
                source,
                Message(f"no bias {quoted(bkey)} next to the weight {quoted(wkey)}; keys present: "
                        f"{listing(keys)}; name it with ", Param("bias_key")),
            )  # fmt: skip
    assert bkey is not None
    arrays = read_arrays(path, [wkey, bkey], source=source)
    return wkey, bkey, np.asarray(arrays[wkey]), np.asarray(arrays[bkey])


def read_layer(
    path: str | os.PathLike[str],
    names: LayerKeys | None = None,
    *,
    weights_path: str | os.PathLike[str] | None = None,
    source: str | None = None,
    logits_precision: str = "auto",
) -> Layer:
    """The checked :class:`Layer` of the file at ``path`` (final layer from ``weights_path``
    when given). Raises :class:`~calibkit.errors.InputError` naming the file for any problem.

    ``logits_precision`` (a key of :data:`LOGITS_PRECISIONS`) is the arithmetic the stored
    logits were computed in, which sets the tolerance of :func:`logits_mismatch`: ``"auto"``
    the least precise dtype among the stored arrays; ``"tf32"``, ``"float16"``, ``"bfloat16"``
    for logits computed on a GPU with TF32 matmuls or under autocast, whose error is far
    above that of the float32 arrays they are stored in."""
    if logits_precision not in LOGITS_PRECISIONS:
        raise UsageError(
            Param("logits_precision", logits_precision)
            + f" must be one of {', '.join(LOGITS_PRECISIONS)}"
        )
    names = names or LayerKeys()
    source = str(path) if source is None else source
    p = Path(path)
    keys = _keys_of(p, source)
    fkey, raw_x = _features(p, keys, names.features, source)
    if raw_x.ndim != 2:
        raise InputError(
            source, f"features {quoted(fkey)} have shape {raw_x.shape}; expected (N, D)"
        )
    n, d = raw_x.shape
    if n == 0:
        raise InputError(source, f"features {quoted(fkey)} have no rows (N = 0): no examples")
    if d == 0:
        raise InputError(source, f"features {quoted(fkey)} have shape {raw_x.shape}: D = 0")
    if weights_path is None:
        wsource, wpath, wkeys = source, p, keys
    else:
        wsource, wpath = str(weights_path), Path(weights_path)
        wkeys = _keys_of(wpath, wsource)
    wkey, bkey, raw_w, raw_b = _final_layer(wpath, wkeys, names, d, wsource)
    if raw_w.ndim != 2:
        raise InputError(wsource, f"weight {quoted(wkey)} has shape {raw_w.shape}; expected (K, D)")
    if raw_w.shape[1] != d:
        if raw_w.shape[0] == d:
            raise InputError(
                wsource,
                f"weight {quoted(wkey)} has shape {raw_w.shape} and the features D = {d}: it looks "
                f"transposed (expected (K, D) = ({raw_w.shape[1]}, {d}), as torch's nn.Linear "
                "stores it)",
            )
        raise InputError(
            wsource,
            f"weight {quoted(wkey)} has shape {raw_w.shape}; expected (K, {d}) for features of "
            f"D = {d}",
        )
    k = raw_w.shape[0]
    if raw_b.shape != (k,):
        raise InputError(wsource, f"bias {quoted(bkey)} has shape {raw_b.shape}; expected ({k},)")
    if k < 3:
        raise InputError(wsource, f"the final layer has K = {k} classes; the projection needs >= 3")
    x = _float(f"features {quoted(fkey)}", raw_x, source)
    w = _float(f"weight {quoted(wkey)}", raw_w, wsource)
    b = _float(f"bias {quoted(bkey)}", raw_b, wsource)
    ykey = _pick("labels", names.labels, LABEL_ALIASES, keys, source, Param("labels_key"))
    assert ykey is not None
    labels = _labels(np.asarray(read_arrays(p, ykey, source=source)[ykey]), n, k, ykey, source)
    zkey = _pick(
        "logits", names.logits, LOGIT_ALIASES, keys, source, Param("logits_key"), required=False
    )
    if zkey is not None:
        raw_z = np.asarray(read_arrays(p, zkey, source=source)[zkey])
        if raw_z.shape != (n, k):
            raise InputError(
                source, f"logits {quoted(zkey)} have shape {raw_z.shape}; expected ({n}, {k})"
            )
        z = _float(f"logits {quoted(zkey)}", raw_z, source)
        given = LOGITS_PRECISIONS[logits_precision]
        unit = _unit_roundoff(raw_x, raw_w, raw_b, raw_z) if given is None else given
        miss = logits_mismatch(x, w, b, z, unit=unit)
        if miss is not None:
            diff, row, col = miss
            now = logits_precision if given is not None else _UNIT_NAMES.get(unit, "auto")
            raise InputError(
                source,
                Message(
                    f"features @ weight.T + bias does not reproduce the logits {quoted(zkey)} "
                    f"(max difference {diff:.3g} at row {row}, class {col}, checked at {now} "
                    "precision): wrong layer or transposed weights; logits computed in lower "
                    "precision (TF32, autocast): give ",
                    Param("logits_precision"),
                ),
            )
    class_names = None
    if CLASS_NAMES_KEY in keys:
        raw = np.asarray(read_arrays(p, CLASS_NAMES_KEY, source=source)[CLASS_NAMES_KEY])
        if raw.dtype.kind != "U" or raw.shape != (k,):
            raise InputError(
                source,
                f"{CLASS_NAMES_KEY!r} must be {k} strings (one per class); got {raw.dtype} "
                f"{raw.shape}",
            )
        class_names = tuple(str(s) for s in raw)
    used = {"features": fkey, "weight": wkey, "bias": bkey, "labels": ykey}
    if zkey is not None:
        used["logits"] = zkey
    return Layer(
        source=source,
        features=x,
        weight=w,
        bias=b,
        labels=labels,
        class_names=class_names,
        has_logits=zkey is not None,
        keys=used,
        weights_source=wsource,
        weight_unit=_unit_roundoff(raw_w, raw_b),
    )


def _labels(raw: NDArray[Any], n: int, k: int, key: str, source: str) -> NDArray[np.int64]:
    if raw.ndim != 1 or raw.shape[0] != n:
        raise InputError(
            source, f"labels {quoted(key)} have shape {raw.shape}; expected ({n},), one per row"
        )
    if raw.dtype.kind in "iub":
        y = raw.astype(np.int64)
    elif raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or not np.all(raw == np.round(raw)):
            raise InputError(source, f"labels {quoted(key)} are not whole numbers")
        y = raw.astype(np.int64)
    else:
        raise InputError(source, f"labels {quoted(key)} have dtype {raw.dtype}; expected integers")
    bad = (y < 0) | (y >= k)
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(
            source, f"label {int(y[row])} at row {row} is outside [0, {k}) (K = {k} classes)"
        )
    return y
