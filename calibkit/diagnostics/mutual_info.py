"""The mutual information between the input and the difference of two logits (Müller, Kornblith &
Hinton 2019, §4), estimated from logits saved under ``L`` input augmentations.

The model of the estimate: ``X`` is the index of one of the ``n`` examples of classes ``a`` and
``b`` (uniform), ``Y = z_a - z_b`` the difference of their logits for one random augmentation of
that example, and ``Y | X = x`` is Gaussian with mean ``mu_x`` and a variance ``sigma^2`` shared
by every example. With ``f[x, l]`` the difference under augmentation ``l``::

    mu_x    = (1/L) sum_l f[x, l]
    sigma^2 = sum_{x,l} (f[x, l] - mu_x)^2 / (n (L - ddof))          (ddof = 1 by default)
    I_hat   = (1/(n L)) sum_{x,l} [ -(f[x,l] - mu_x)^2 / (2 sigma^2)
                                    - log( (1/n) sum_x' exp(-(f[x,l] - mu_x')^2 / (2 sigma^2)) ) ]

i.e. the sample mean of ``log p(y | x) - log p(y)`` with ``p(y) = (1/n) sum_x' p(y | x')``; the
Gaussian's normalising constant cancels. In nats.

Range: ``I_hat <= log n`` always, because the ``x' = x`` summand is one of the ``n`` in the
mean (the mutual information of ``n`` equally likely inputs lies in ``[0, log n]``). ``I_hat``
is 0 exactly when every example has the same mean: nothing about the input passes through the
logit gap. It is not clipped at 0 (no value below 0 beyond rounding turned up in randomised and
optimised searches, but that is not a proof). It approaches ``log n`` when every example is
told apart from every other, and the entropy of the class, ``H = -(p_a log p_a + p_b log p_b)``
(``log 2`` for equally many examples of ``a`` and ``b``), when the examples of each class
collapse onto one value: then only the class can be recovered from the gap. The paper reports
that during training the estimate of a network trained with label smoothing falls toward
``log 2``, well below that of the same network trained with hard labels.

The variance: ``ddof=1`` (the default) divides the pooled sum of squares by ``n (L - 1)``, its
degrees of freedom once the ``n`` means are estimated from the same values: the unbiased
estimate of the within-example variance (the within-group mean square of a one-way analysis of
variance). ``ddof=0`` divides by ``n L`` (the maximum-likelihood estimate); it shrinks
``sigma^2`` by ``(L - 1) / L``, which makes every example's Gaussian narrower and so ``I_hat``
larger, most for few augmentations (half the variance at ``L = 2``).

Computation: float64; the ``n x n`` Gaussian kernel is never held whole but built ``block``
values (``(x, l)`` pairs) at a time against all ``n`` means, with a log-sum-exp shifted by each
row's maximum, so memory is ``O(block * n)`` and the result does not depend on ``block`` beyond
rounding. Time is ``O(n^2 L)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.errors import InputError, Message, Param, UsageError
from calibkit.progress import task

__all__ = [
    "BLOCK_ELEMENTS",
    "MutualInformation",
    "class_entropy",
    "estimate_mutual_information",
    "logit_differences",
    "mutual_information",
]

#: Kernel entries (float64) held at once: a block of ``BLOCK_ELEMENTS // n`` values against all
#: ``n`` means (16 MiB per temporary).
BLOCK_ELEMENTS = 1 << 21

LOG2 = math.log(2.0)


@dataclass(frozen=True)
class MutualInformation:
    """The estimate for one model and one pair of classes (all logs natural: nats)."""

    #: the two classes ``(a, b)``: ``f = z_a - z_b``
    classes: tuple[int, int]
    #: how many examples of ``a`` and of ``b`` the estimate uses
    counts: tuple[int, int]
    #: augmentations per example
    n_augmentations: int
    #: the pooled within-example variance of ``f`` (``ddof`` as in the module docstring)
    sigma2: float
    ddof: int
    #: the estimate, in nats
    nats: float

    @property
    def n(self) -> int:
        """The examples used, ``n_a + n_b``."""
        return self.counts[0] + self.counts[1]

    @property
    def bits(self) -> float:
        return self.nats / LOG2

    @property
    def log_n(self) -> float:
        """The largest value: every example told apart from every other."""
        return math.log(self.n)

    @property
    def class_entropy(self) -> float:
        """The value when only the class is recoverable (``log 2`` for equal counts)."""
        return class_entropy(self.counts)


def class_entropy(counts: Sequence[int]) -> float:
    """``-sum_c p_c log p_c`` of the class shares ``counts / sum(counts)``, in nats."""
    total = sum(counts)
    return -sum(c / total * math.log(c / total) for c in counts if c > 0)


def logit_differences(
    logits: Any, labels: Any, classes: tuple[int, int], *, source: str = "logits"
) -> tuple[NDArray[np.float64], tuple[int, int]]:
    """``f[x, l] = z[x, l, a] - z[x, l, b]`` (float64, ``(n, L)``) for the examples whose label
    is ``a`` or ``b`` (examples of ``a`` first, then of ``b``, each in file order), and the
    counts ``(n_a, n_b)``. ``logits``: ``(N, L, K)``; ``labels``: ``(N,)`` class indices.

    Raises :class:`~calibkit.errors.InputError` (naming ``source``) for a wrong shape, ``L < 2``,
    ``K < 2`` or fewer than two examples of the two classes, and
    :class:`~calibkit.errors.UsageError` for ``a == b`` or a class out of range.
    """
    shape = np.shape(logits)
    if len(shape) != 3:
        raise InputError(source, f"logits must have shape (N, L, K); found shape {shape}")
    n_rows, n_aug, n_classes = shape
    if n_aug < 2:
        raise InputError(
            source, f"needs L >= 2 augmentations per example (shape (N, L, K)); found L = {n_aug}"
        )
    if n_classes < 2:
        raise InputError(source, f"needs K >= 2 classes; found K = {n_classes}")
    a, b = (int(c) for c in classes)
    if a == b:
        raise UsageError(Param("classes", f"{a},{b}") + " names the same class twice")
    for c in (a, b):
        if not 0 <= c < n_classes:
            raise UsageError(
                Param("classes", f"{a},{b}") + f": class {c} is out of range [0, {n_classes})"
            )
    labels = np.asarray(labels)
    if labels.shape != (n_rows,):
        raise InputError(
            source,
            f"labels must have shape ({n_rows},) for {n_rows} examples; found {labels.shape}",
        )
    rows_a, rows_b = np.flatnonzero(labels == a), np.flatnonzero(labels == b)
    counts = (int(rows_a.size), int(rows_b.size))
    if min(counts) < 1 or counts[0] + counts[1] < 2:  # an estimate over one class only is
        raise InputError(  # not the paper's (the gap of two classes' examples)
            source,
            Message(
                f"needs examples of both classes {a} and {b} (at least 2 in all); found "
                f"{counts[0]} of {a} "
                f"and {counts[1]} of {b} (choose others with ",
                Param("classes"),
                ")",
            ),
        )
    rows = np.concatenate([rows_a, rows_b])
    z = np.asarray(logits)
    f = z[rows, :, a].astype(np.float64) - z[rows, :, b].astype(np.float64)
    return f, counts


def mutual_information(
    f: Any, *, ddof: int = 1, block: int | None = None, source: str = "logits"
) -> tuple[float, float]:
    """``(I_hat, sigma^2)`` of the differences ``f`` (``(n, L)``: ``n`` examples, ``L``
    augmentations; see the module docstring). ``block``: values compared against all ``n``
    means at once (default ``BLOCK_ELEMENTS // n``).

    Raises :class:`~calibkit.errors.InputError` for ``n < 2``, ``L < 2``, non-finite values and
    ``sigma^2 = 0`` (every example identical under all its augmentations: the Gaussian model,
    and so the estimate, is undefined).
    """
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"f must be 2-D (n, L); got shape {f.shape}")
    n, n_aug = f.shape
    if n < 2:
        raise InputError(source, f"needs at least 2 examples; found {n}")
    if n_aug < 2:
        raise InputError(source, f"needs L >= 2 augmentations per example; found L = {n_aug}")
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 or 1; got {ddof}")
    if block is not None and block < 1:
        raise ValueError(f"block must be >= 1; got {block}")
    if not np.isfinite(f).all():
        row = int(np.flatnonzero(~np.isfinite(f).all(axis=1))[0])
        raise InputError(source, f"the logit difference is not finite at example {row}")
    if (f == f[:, :1]).all():
        raise InputError(
            source,
            "every example's logits are the same under all its augmentations (within-example "
            "variance 0): the mutual information estimate is undefined",
        )
    # centred once, so that |logit| ~ 1e4 loses no precision in the squares
    f = f - f.mean()
    mu = f.mean(axis=1)
    dev = f - mu[:, None]
    sigma2 = float(np.sum(dev * dev) / (n * (n_aug - ddof)))
    if not sigma2 > 0.0 or not math.isfinite(sigma2):  # underflow of a tiny spread
        raise InputError(
            source,
            f"the within-example variance of the logit difference is {sigma2:g}: the mutual "
            "information estimate is undefined",
        )
    inv = 1.0 / (2.0 * sigma2)
    values = f.reshape(-1)
    own = -(dev.reshape(-1) ** 2) * inv
    step = block if block is not None else max(1, BLOCK_ELEMENTS // n)
    parts: list[float] = []
    with (
        np.errstate(over="ignore", under="ignore"),
        task(f"{source}: mutual information", total=values.size, unit="values") as bar,
    ):
        for start in range(0, values.size, step):
            v = values[start : start + step]
            kernel = v[:, None] - mu[None, :]
            kernel *= kernel
            kernel *= -inv
            top = kernel.max(axis=1)  # >= the own term, which is finite: no -inf rows
            kernel -= top[:, None]
            np.exp(kernel, out=kernel)
            lse = top + np.log(kernel.sum(axis=1))
            parts.append(float(np.sum(own[start : start + step] - lse)))
            bar.advance(v.size)
    value = math.fsum(parts) / values.size + math.log(n)
    return value, sigma2


def estimate_mutual_information(
    logits: Any,
    labels: Any,
    classes: tuple[int, int],
    *,
    ddof: int = 1,
    block: int | None = None,
    source: str = "logits",
) -> MutualInformation:
    """The §4 estimate for ``logits`` ``(N, L, K)`` and the examples labelled ``a`` or ``b``
    (``classes``); see :func:`logit_differences` and :func:`mutual_information`."""
    a, b = (int(c) for c in classes)
    f, counts = logit_differences(logits, labels, (a, b), source=source)
    value, sigma2 = mutual_information(f, ddof=ddof, block=block, source=source)
    return MutualInformation(
        classes=(a, b),
        counts=counts,
        n_augmentations=int(f.shape[1]),
        sigma2=sigma2,
        ddof=ddof,
        nats=value,
    )
