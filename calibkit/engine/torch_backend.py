"""The one-pass metrics and the temperature-fit pass on a torch device (``--device``).

The optional compute backend: the default is numpy on the executor of the pass
(:mod:`calibkit.engine.executors`); this one runs the same chunk computations in torch, one
chunk at a time (torch parallelises within a chunk), and returns the same partial-sum records
(:class:`~calibkit.engine.sums.ChunkSums`), which the metrics layer merges as it merges its own.

Same definitions and float64 arithmetic as the numpy kernels
(:func:`calibkit.metrics.examples.logit_stats`, :func:`calibkit.metrics.summary.chunk_sums`,
:mod:`calibkit.calibrators.temperature`): each chunk is copied to the device, reduced there to
O(bins) float64 sums, and only those sums come back. Results equal the numpy path up to float64
summation order (tested to 1e-12 on the CPU; on a GPU, atomic additions make the order
vary, so agree to ~1e-12 relative rather than bit for bit). Needs the ``torch`` extra.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.engine.sums import BinaryMode, ChunkSums, prob_floor
from calibkit.errors import Param, UsageError

__all__ = ["check_device", "torch_chunk_sums", "torch_fit_chunk", "torch_temperature_terms"]


#: The device types calibkit computes on: they have float64 and hand their results back.
#: (``meta`` has no data, ``mps`` no float64; others are untested.)
DEVICE_TYPES = ("cpu", "cuda")


def check_device(device: str) -> Any:
    """The ``torch.device`` for ``device``, or a :class:`UsageError` saying why not.

    Only CPUs and CUDA devices are accepted (:data:`DEVICE_TYPES`), and a CUDA index must name a
    device that exists.
    """
    try:
        import torch
    except ImportError:
        raise UsageError(
            Param("device", device) + " needs PyTorch: pip install 'calibkit[torch]'"
        ) from None
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise UsageError(
            Param("device", device) + ": not a torch device; give cpu, cuda or cuda:N"
        ) from None
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(Param("device", device) + ": MPS is not available")
    if dev.type == "mps":
        raise UsageError(Param("device", "mps") + ": MPS has no float64; use cpu or cuda")
    if dev.type not in DEVICE_TYPES:
        raise UsageError(
            Param("device", device) + ": calibkit computes on cpu or cuda devices only"
        )
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(Param("device", device) + ": no CUDA device is available")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise UsageError(
                Param("device", device)
                + f": there {'is' if count == 1 else 'are'} only {count} CUDA "
                f"device{'' if count == 1 else 's'} (cuda:0 to cuda:{count - 1})"
            )
    return dev


#: The float dtypes torch takes from numpy; scores of any other dtype (float128, i.e.
#: ``numpy.longdouble``) are converted to float64 first, as the numpy kernels compute anyway.
_TORCH_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _torch_ready(scores: NDArray[Any]) -> NDArray[Any]:
    """``scores`` as a contiguous array of a dtype torch can wrap."""
    if scores.dtype not in _TORCH_FLOATS:
        scores = scores.astype(np.float64)
    return np.ascontiguousarray(scores)


def _labels(labels: NDArray[Any], dev: Any) -> Any:
    import torch

    if labels.ndim == 1:
        return torch.as_tensor(np.ascontiguousarray(labels), device=dev).long()
    return torch.as_tensor(np.ascontiguousarray(labels), device=dev).to(torch.float64)


def torch_chunk_sums(
    scores: NDArray[Any],
    labels: NDArray[Any],
    *,
    kind: str,
    n_classes: int,
    n_bins: int,
    binning: str,
    binary_mode: BinaryMode,
    device: Any,
) -> ChunkSums:
    """:func:`~calibkit.metrics.summary.chunk_sums` of one chunk, computed on ``device``."""
    import torch

    scores = _torch_ready(scores)
    z = torch.as_tensor(np.ascontiguousarray(scores), device=device).to(torch.float64)
    y = _labels(labels, device)
    spec = (n_classes, n_bins, binning, binary_mode)
    if kind == "logits":
        pred = z.argmax(dim=1)
        zc = z - z.gather(1, pred[:, None])
        return _logit_sums(zc, torch.exp(zc), y, 1.0, pred, spec, device)
    return _prob_sums(z, scores.dtype, y, spec, device)


def _logit_sums(
    zc: Any, e: Any, y: Any, beta: float, pred: Any, spec: tuple[int, int, str, str], device: Any
) -> ChunkSums:
    """The sums of ``softmax(beta * zc)`` from ``e = exp(beta * zc)`` (``zc`` centred)."""
    import torch

    soft = y.dtype == torch.float64
    s = e.sum(dim=1)
    sum_sq = (e * e).sum(dim=1)
    p_top = 1.0 / s
    log_s = torch.log(s)
    if soft:
        log_prob = beta * (y * zc).sum(dim=1) - log_s * y.sum(dim=1)
        brier = sum_sq / (s * s) - 2.0 * (y * e).sum(dim=1) / s + (y * y).sum(dim=1)
    else:
        log_prob = beta * zc.gather(1, y[:, None]).squeeze(1) - log_s
        brier = sum_sq / (s * s) - 2.0 * e.gather(1, y[:, None]).squeeze(1) / s + 1.0
    p1 = e[:, 1] / s if zc.shape[1] > 1 else None
    return _finish(pred, y, p_top, log_prob, brier, p1, 0, spec, device)


def _prob_sums(
    p: Any, dtype: np.dtype, y: Any, spec: tuple[int, int, str, str], device: Any
) -> ChunkSums:
    """The sums of stored probabilities ``p``, used as they are."""
    import torch

    soft = y.dtype == torch.float64
    pred = p.argmax(dim=1)
    p_top = p.gather(1, pred[:, None]).squeeze(1)
    # the stored value as is; only an exact 0 is read as the dtype's smallest subnormal
    logp = torch.log(torch.clamp(p, min=prob_floor(dtype)))
    sum_sq = (p * p).sum(dim=1)
    if soft:
        log_prob = (y * logp).sum(dim=1)
        brier = sum_sq - 2.0 * (y * p).sum(dim=1) + (y * y).sum(dim=1)
        n_zero = int(((y > 0) & (p == 0)).any(dim=1).sum().item())
    else:
        p_y = p.gather(1, y[:, None]).squeeze(1)
        log_prob = logp.gather(1, y[:, None]).squeeze(1)
        brier = sum_sq - 2.0 * p_y + 1.0
        n_zero = int((p_y == 0).sum().item())
    p1 = p[:, 1] if p.shape[1] > 1 else None
    return _finish(pred, y, p_top, log_prob, brier, p1, n_zero, spec, device)


def _finish(
    pred: Any,
    y: Any,
    p_top: Any,
    log_prob: Any,
    brier: Any,
    p1: Any,
    n_zero: int,
    spec: tuple[int, int, str, str],
    device: Any,
) -> ChunkSums:
    """Bin and reduce per-row numbers to a :class:`ChunkSums` (only the sums leave the device)."""
    import torch

    n_classes, n_bins, binning, binary_mode = spec
    soft = y.dtype == torch.float64
    n = p_top.shape[0]
    brier = torch.clamp(brier, min=0.0)
    truth = y.argmax(dim=1) if soft else y
    correct = pred == truth
    if binary_mode == "positive" and p1 is not None:
        conf = p1
        outcome = y[:, 1] if soft else (y == 1).to(torch.float64)
    else:
        conf = p_top
        outcome = correct.to(torch.float64)
    class_mass = y.sum(dim=0) if soft else torch.bincount(y, minlength=n_classes).to(torch.float64)
    count = bin_conf = bin_out = None
    mass_part = None
    if binning == "width":
        edges = torch.arange(n_bins + 1, device=device, dtype=torch.float64) / n_bins
        idx = torch.clamp(torch.ceil(conf * n_bins).long(), 1, n_bins)
        idx = idx + (conf > edges[idx]).long()
        idx = idx - (conf <= edges[idx - 1]).long()
        idx = torch.clamp(idx, 1, n_bins) - 1
        count = torch.bincount(idx, minlength=n_bins).cpu().numpy().astype(np.int64)
        bin_conf = torch.bincount(idx, weights=conf, minlength=n_bins).cpu().numpy()
        bin_out = torch.bincount(idx, weights=outcome, minlength=n_bins).cpu().numpy()
    else:
        mass_part = (conf.cpu().numpy(), outcome.cpu().numpy())
    return ChunkSums(
        n=int(n),
        n_correct=int(correct.sum().item()),
        n_saturated=int((p_top == 1.0).sum().item()),
        sum_log_prob=float(log_prob.sum().item()),
        sum_brier=float(brier.sum().item()),
        sum_confidence=float(conf.sum().item()),
        class_mass=class_mass.cpu().numpy(),
        soft_labels=bool(soft),
        count=count,
        bin_confidence=bin_conf,
        bin_outcome=bin_out,
        mass_part=mass_part,
        n_zero_prob=n_zero,
    )


def _real_mean(torch: Any, zc: Any) -> Any:
    """Each row's mean over its real classes: a ragged input's pads (centred, still
    ``<= -5e11``; :data:`calibkit.sources.predictions.RAGGED_PAD`) are left out."""
    real = zc > -5e11
    if bool(real.all().item()):
        return zc.mean(dim=1)
    return torch.where(real, zc, torch.zeros_like(zc)).sum(dim=1) / real.sum(dim=1)


def torch_temperature_terms(
    scores: NDArray[Any], labels: NDArray[Any], kind: str, beta: float, device: Any
) -> tuple[float, float, float, float, float]:
    """The sums of :func:`calibkit.calibrators.temperature._fit_chunk`'s NLL, gradient,
    Hessian and gradient limits, on ``device``."""
    terms, _, _, _ = torch_fit_chunk(scores, labels, kind, beta, device, n_classes=0, first=True)
    return terms


def torch_fit_chunk(
    scores: NDArray[Any],
    labels: NDArray[Any],
    kind: str,
    beta: float,
    device: Any,
    *,
    n_classes: int,
    first: bool = False,
    before: tuple[int, str] | None = None,
    after: tuple[int, str] | None = None,
) -> tuple[tuple[float, float, float, float, float], float, ChunkSums | None, ChunkSums | None]:
    """One chunk of a temperature-fit pass on ``device``: the sums of the NLL, its gradient
    and Hessian at ``beta`` and (``first``) the gradient's limits and the NLL at ``T = 1``;
    with ``before``/``after`` (bins, binning) the metric sums of the scores as stored and of
    ``softmax(beta * z)``. One ``exp`` at ``beta`` serves the terms and the metrics."""
    import torch

    scores = _torch_ready(scores)
    z = torch.as_tensor(np.ascontiguousarray(scores), device=device).to(torch.float64)
    y = _labels(labels, device)
    soft = y.dtype == torch.float64
    before_sums = after_sums = None
    if before is not None and kind == "probs":
        before_sums = _prob_sums(z, scores.dtype, y, (n_classes, *before, "top-label"), device)
    if kind == "probs":
        z = torch.log(torch.clamp(z, min=prob_floor(scores.dtype)))
    pred = z.argmax(dim=1)
    zc = z - z.gather(1, pred[:, None])
    if soft:
        zc_y = (y * zc).sum(dim=1)
        mass = y.sum(dim=1)
    else:
        zc_y = zc.gather(1, y[:, None]).squeeze(1)
        mass = torch.ones_like(zc_y)
    nll_one = float("nan")
    if first and beta != 1.0:
        e1 = torch.exp(zc)
        nll_one = float((torch.log(e1.sum(dim=1)) * mass - zc_y).sum().item())
        if before is not None and kind == "logits":
            before_sums = _logit_sums(
                zc, e1, y, 1.0, pred, (n_classes, *before, "top-label"), device
            )
    e = torch.exp(beta * zc)
    if after is not None:
        after_sums = _logit_sums(zc, e, y, beta, pred, (n_classes, *after, "top-label"), device)
        if before is not None and kind == "logits" and beta == 1.0:
            before_sums = after_sums
    s = e.sum(dim=1)
    mean_z = (e * zc).sum(dim=1) / s
    var_z = torch.clamp((e * zc * zc).sum(dim=1) / s - mean_z * mean_z, min=0.0)
    terms = (
        float((torch.log(s) * mass - beta * zc_y).sum().item()),
        float((mean_z * mass - zc_y).sum().item()),
        float((var_z * mass).sum().item()),
        float((_real_mean(torch, zc) * mass - zc_y).sum().item()) if first else 0.0,
        float((-zc_y).sum().item()) if first else 0.0,
    )
    return terms, nll_one, before_sums, after_sums
