"""The softmax: one definition for every place that needs probabilities from logits.

Both functions centre each row on its maximum first (``zc = z - max_k z_k``, so every row's
maximum is 0 and ``exp`` cannot overflow, also at ``|z| = 1e4`` or ``1e300``) and work in
float64 unless told otherwise::

    log_softmax(z) = zc - log(sum_k exp(zc_k))
    softmax(z)     = exp(zc) / sum_k exp(zc_k)

:func:`softmax` divides by the row sum rather than taking ``exp(log_softmax(z))``: the two
agree to one or two units in the last place, and the division is the form every existing result
(classwise ECE, the other libraries' conventions, probability rewrites) was computed and pinned
with.

Who does not call these, and why: the one-pass kernels — per-example statistics
(:func:`calibkit.metrics.examples.logit_stats`), the temperature fit's NLL and derivatives
(:mod:`calibkit.calibrators.temperature`), the sweep's batched sums
(:mod:`calibkit.calibrators.kernels`) and their torch twins
(:mod:`calibkit.engine.torch_backend`). They
never form the probabilities: from one ``e = exp(beta * zc)`` written into a per-thread scratch
buffer, for many ``beta`` on the same centred chunk, they take the row sums ``s`` (and
``sum e^2``, ``e_y``) and compute the confidence ``1 / s``, ``log p_y = beta zc_y - log s`` and
the Brier score from those. Calling :func:`softmax` there would allocate and write an ``(N, K)``
array per temperature and read it again; ``tests/unit/test_softmax.py`` checks that the kernels'
numbers agree with these functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = ["log_softmax", "softmax"]


def _centred(scores: ArrayLike, dtype: DTypeLike, overwrite: bool) -> NDArray[Any]:
    """``scores`` as ``dtype`` with each row's maximum subtracted (in place when allowed)."""
    z = np.asarray(scores)
    if not (overwrite and z.dtype == np.dtype(dtype)):
        z = z.astype(dtype)  # a copy: the caller's array stays as it was
    if z.ndim != 2:
        raise ValueError(f"softmax needs an (N, K) array; got shape {z.shape}")
    with np.errstate(over="ignore", invalid="ignore"):  # |z| ~ 1e308: differences hit -inf
        z -= z.max(axis=1, keepdims=True)
    return z


def softmax(
    scores: ArrayLike, *, dtype: DTypeLike = np.float64, overwrite: bool = False
) -> NDArray[Any]:
    """Row-wise softmax of logits of shape ``(N, K)``, in ``dtype`` (float64 unless told).

    ``-inf`` entries give exact zeros (a row needs one finite entry). ``overwrite=True`` lets a
    caller that owns a ``dtype`` array have it overwritten instead of copied. ``dtype=float32``
    is for reproducing other libraries' float32 softmax only
    (:mod:`calibkit.metrics.conventions`); calibkit's own numbers are float64.

    >>> softmax([[1e4, 0.0, -1e4]]).tolist()
    [[1.0, 0.0, 0.0]]
    >>> softmax([[0.0, np.log(3.0)]]).round(12).tolist()
    [[0.25, 0.75]]
    """
    p = _centred(scores, dtype, overwrite)
    np.exp(p, out=p)
    p /= p.sum(axis=1, keepdims=True)
    return p


def log_softmax(
    scores: ArrayLike, *, dtype: DTypeLike = np.float64, overwrite: bool = False
) -> NDArray[Any]:
    """Row-wise log-softmax of logits of shape ``(N, K)``, in ``dtype`` (float64 unless told):
    finite for any finite logits, however large.

    >>> log_softmax([[1e4, 0.0, -1e4]]).tolist()
    [[0.0, -10000.0, -20000.0]]
    """
    z = _centred(scores, dtype, overwrite)
    z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
    return z
