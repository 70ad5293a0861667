"""Temperature scaling (Guo et al. 2017), fitted exactly.

Temperature scaling divides every logit by one scalar ``T > 0``; the argmax, and so the accuracy,
never changes. ``T`` is chosen to minimise the mean NLL on held-out data. Writing ``beta = 1/T``
and ``t`` for the (one-hot or soft) label,

    NLL(beta)   = mean_i [ logsumexp_k(beta z_ik) - beta sum_k t_ik z_ik ]
    NLL'(beta)  = mean_i [ E_p[z_i] - sum_k t_ik z_ik ]          (p = softmax(beta z_i))
    NLL''(beta) = mean_i [ Var_p[z_i] ]  >= 0

so the NLL is convex in ``beta`` and one pass over the data gives value, gradient and Hessian.
:func:`fit_temperature` runs Newton's method on ``beta`` inside a shrinking bracket (falling back
to geometric bisection when a Newton step would leave it), to ``|NLL'(beta)| <= 1e-10`` or until
the bracket is as narrow as float64 allows.

Warm start: the first pass (at ``T = 1``) also keeps every ``k``-th row (by row number, so not
depending on the chunking) in memory, at most :data:`WARM_START_ELEMENTS` numbers; while
Newton's step is long (above :data:`WARM_START_NEWTON` relative), the next ``beta`` is the root
of the gradient on those rows, shifted and tilted to agree with the full data's gradient and
Hessian at the current ``beta`` (a control variate; Newton's method in memory). On 5e4 x 1000
logits that takes the fit from 6 passes to 4; data of at most that many numbers is fitted in
memory entirely and confirmed by one more pass (2 passes). ``TemperatureFit.passes`` counts full
reads of the data only; the in-memory work is ``warm_start_evaluations`` evaluations on
``warm_start_rows`` rows.

:func:`fit_temperature_with_metrics` also returns the metrics before and after scaling,
without more reads: the first pass (at ``T = 1``) carries the metrics of the data as given
(equal to :func:`~calibkit.metrics.summary.summarize`, bit for bit on the CPU) and every later
pass those of ``softmax(beta * (z - max z))`` at its own ``beta``, from the same ``exp``, so the
last pass gives them at the reported ``T`` exactly (equal to summarising
:class:`ScaledPredictions` to ~1e-15 relative: there the logits are scaled before centring).
On 5e4 x 1000 float32 logits ``fit-temp`` reads its data 4 times in all (it was 6 + 2).

``T`` is kept in ``[t_min, t_max]`` (default ``[1e-4, 1e4]``). When the optimum lies outside,
the fit stops at the bound and says so (``clamped``): every prediction right (the NLL keeps falling
as ``T -> 0``) or predictions no better than chance (``T -> infinity``).

Probability inputs are fitted on their logarithms (``softmax(log p) = p``): ``log p`` of the
stored value in float64, as for the NLL; an exact 0 (whose log is ``-inf``) is read as the
smallest positive number of the stored dtype (:func:`~calibkit.metrics.examples.prob_floor`),
and the fit warns with the count of such zeros. Saturated probabilities (exactly 0 or 1) carry
no information about how confident the model was, so a temperature fitted on them is biased:
save logits when you can.

The fit never reports convergence on a non-finite NLL, gradient or Hessian: such a pass (which
only float64 overflow can produce) is refused with an :class:`~calibkit.errors.InputError`.
``TemperatureFit.n`` counts the rows the passes read, never a file's metadata.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibkit import progress
from calibkit._version import __version__
from calibkit.calibrators import registry
from calibkit.calibrators.base import (
    CALIBRATOR_FORMAT,
    CalibratedView,
    Calibrator,
    CalibratorBase,
    check_document,
)
from calibkit.calibrators.base import require_scores as _require_scores
from calibkit.calibrators.kernels import BLOCK_ELEMENTS, batch_sums, centre_chunk, exp_rows, row_dot
from calibkit.engine.executors import Executor, SerialExecutor, scratch
from calibkit.engine.passes import Chunk, run_pass
from calibkit.errors import ConvergenceWarning, InputError, UsageError
from calibkit.metrics.binning import Binning, check_binning, check_n_bins
from calibkit.metrics.examples import center_logits, log_probs, prob_stats
from calibkit.metrics.selection import refuse_distributed
from calibkit.metrics.softmax import softmax
from calibkit.metrics.summary import (
    CalibrationSummary,
    ChunkSums,
    MetricAccumulator,
    chunk_sums,
    zero_prob_message,
)
from calibkit.sources.predictions import (
    RAGGED_PAD,
    Predictions,
    PredictionSource,
    ScoreKind,
    input_reason,
)

__all__ = [
    "CALIBRATOR_FORMAT",
    "ScaledPredictions",
    "TemperatureFit",
    "TemperatureScaler",
    "as_logits",
    "before_after_summaries",
    "fit_temperature",
    "fit_temperature_with_metrics",
    "nll_gradient_hessian",
    "scale_logits",
]

DEFAULT_T_MIN = 1e-4
DEFAULT_T_MAX = 1e4
GRADIENT_TOL = 1e-10


def as_logits(
    scores: NDArray[np.floating], kind: str, *, out: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """Float64 logits of a chunk: the scores themselves, or ``log p`` for probabilities.

    ``log p`` is the log of the stored value; an exact 0 is read as the smallest positive number
    of the stored dtype (:func:`~calibkit.metrics.examples.log_probs`). Written to ``out`` when
    given (a work array of the chunk's shape), else to a new array.
    """
    if kind != "logits":
        return log_probs(scores, out=out)
    z: NDArray[np.float64] = scores.astype(np.float64) if out is None else out
    if out is not None:
        np.copyto(z, scores)
    return z


#: Most float64 elements kept in memory for the warm start (16 MiB): every ``k``-th row.
WARM_START_ELEMENTS = 1 << 21
#: Fewest rows worth a warm start.
WARM_START_MIN_ROWS = 64
#: Most evaluations of the warm start (each on the kept rows only).
WARM_START_MAX_EVALUATIONS = 40
#: Newton steps shorter than this (relative) are taken as they are, without the warm start.
WARM_START_NEWTON = 1e-3

Sample = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64] | None]


@dataclass(frozen=True)
class _PassPlan:
    """What one pass over the data computes besides the NLL and its derivatives at ``beta``."""

    beta: float
    first: bool = False  # the gradient's limits, the NLL at T = 1, the probability zeros
    before: tuple[int, Binning] | None = None  # metrics at T = 1 (of the scores as stored)
    after: tuple[int, Binning] | None = None  # metrics of softmax(beta * z)
    stride: int = 0  # keep every stride-th row (by row number) for the warm start; 0: none


@dataclass(kw_only=True)
class _ChunkResult:
    rows: int
    terms: NDArray[np.float64]  # NLL, gradient, Hessian, g(0+), g(inf): sums
    nll_one: float = math.nan  # the NLL at T = 1 (sum), when the pass is not at T = 1
    before: ChunkSums | None = None
    after: ChunkSums | None = None
    zeros: tuple[int, int, int] = (0, 0, 0)  # exact-0 probabilities, their rows, saturated rows
    sample: Sample | None = None


@dataclass(kw_only=True)
class _PassResult:
    f: float
    g: float
    h: float
    g_zero: float
    g_inf: float
    n: int
    nll_one: float
    before: MetricAccumulator | None
    after: MetricAccumulator | None
    zeros: tuple[int, int, int]
    sample: Sample | None


def _fit_chunk(
    item: Chunk,
    plan: _PassPlan,
    kind: str,
    n_classes: int,
) -> _ChunkResult:
    """One chunk of a pass (numpy): see :func:`_pass` and the module docstring.

    The NLL, gradient and Hessian use ``zc = z - max_k z`` (the shift cancels in every term),
    ``e = exp(beta * zc)`` and ``s = sum_k e``: NLL = ``log s - beta zc_y``, gradient
    ``E_p[zc] - zc_y`` with ``E_p[zc] = sum_k e zc / s``, Hessian
    ``Var_p[zc] = sum_k e zc^2 / s - E_p[zc]^2``; ``g(0+) = mean_k zc - zc_y`` and
    ``g(inf) = -zc_y`` (``E_p[z]`` tends to the row max).
    """
    offset, scores, labels = item.start, item.scores, item.labels
    beta = plan.beta
    z = as_logits(scores, kind, out=scratch("logits", scores.shape))  # this thread's work arrays
    c = centre_chunk(z, labels, n_classes=n_classes)
    n, k = z.shape
    step = max(1, BLOCK_ELEMENTS // k)
    e_all = scratch("work", (min(n, step), k))
    zc_y = c.label_logit
    mass: Any = 1.0 if c.mass is None else c.mass  # soft labels: ~1, kept exact
    out = _ChunkResult(rows=n, terms=np.zeros(5))
    if plan.first and kind == "probs":
        is_zero = scores == 0
        out.zeros = (
            int(np.count_nonzero(is_zero)),
            int(is_zero.any(axis=1).sum()),
            int((is_zero | (scores == 1)).any(axis=1).sum()),
        )
        if plan.before is not None:
            out.before = chunk_sums(
                prob_stats(scores, labels),
                labels,
                n_classes=n_classes,
                n_bins=plan.before[0],
                binning=plan.before[1],
            )

    want_metrics = plan.after is not None or plan.before is not None

    def sweep_rows(
        b: float, want_terms: bool, want_q: bool, dot_q: bool
    ) -> tuple[NDArray[np.float64], ...]:
        """Row sums of exp(b * zc), block by block: s, and when asked q and e_y (metrics), and
        the Newton sums sum_k e zc and sum_k e zc^2."""
        s = np.empty((1, n))
        q = np.empty((1, n)) if want_q else None
        e_y = np.empty((1, n)) if want_q else None
        ez, ez2 = np.empty(n), np.empty(n)
        for start in range(0, n, step):
            stop = min(n, start + step)
            block, e = c.rows(start, stop), e_all[: stop - start]
            exp_rows(
                block,
                b,
                e,
                s[0, start:stop],
                None if q is None else q[0, start:stop],
                None if e_y is None else e_y[0, start:stop],
                dot_q=dot_q,
            )
            if want_terms:
                with np.errstate(over="ignore", invalid="ignore"):
                    row_dot(e, block.zc, ez[start:stop])
                    np.multiply(e, block.zc, out=e)
                    row_dot(e, block.zc, ez2[start:stop])
        return s, q, e_y, ez, ez2  # type: ignore[return-value]

    if plan.first and beta != 1.0:  # the NLL (and the metrics) at T = 1 need their own exp
        want = plan.before is not None and kind == "logits"
        s1, q1, ey1, _, _ = sweep_rows(1.0, False, want, dot_q=False)
        with np.errstate(over="ignore", invalid="ignore"):
            out.nll_one = float((np.log(s1[0]) * mass - 1.0 * zc_y).sum())
        if want and plan.before is not None:
            nb, bn = plan.before
            out.before = batch_sums(c, np.ones(1), s1, q1, ey1, n_bins=nb, binning=bn).chunk_sums(0)
    # pass 1 (at T = 1) computes q as summarize() does, so "before" equals it bit for bit
    s, q, e_y, ez, ez2 = sweep_rows(beta, True, want_metrics, dot_q=not plan.first)
    if want_metrics:
        spec = plan.after or plan.before
        assert spec is not None
        sums = batch_sums(
            c, np.full(1, beta), s, q, e_y, n_bins=spec[0], binning=spec[1]
        ).chunk_sums(0)
        if plan.after is not None:
            out.after = sums
        if plan.before is not None and kind == "logits" and beta == 1.0:
            out.before = sums
    # float64 overflow (beta * zc -> -inf, whose exp is 0; or a sum -> inf) is silent here:
    # _pass refuses a non-finite NLL, gradient or Hessian
    with np.errstate(over="ignore", invalid="ignore"):
        s0 = s[0]
        mean_z = ez / s0
        var_z = np.maximum(ez2 / s0 - mean_z * mean_z, 0.0)
        nll = np.log(s0) * mass - beta * zc_y
        grad = mean_z * mass - zc_y
        out.terms[:3] = (float(nll.sum()), float(grad.sum()), float((var_z * mass).sum()))
        if plan.first:
            out.terms[3] = float((_real_mean(c.zc) * mass - zc_y).sum())
            out.terms[4] = float((-zc_y).sum())
    if plan.stride:
        take = np.arange((-offset) % plan.stride, n, plan.stride)
        if take.size:
            out.sample = (  # (fancy indexing copies: nothing refers to the scratch arrays)
                c.zc[take],
                zc_y[take],
                None if c.mass is None else c.mass[take],
            )
    return out


def _real_mean(zc: NDArray[np.float64]) -> NDArray[np.float64]:
    """The mean of each row of centred logits over its real classes: a ragged input's pads
    (:data:`~calibkit.sources.predictions.RAGGED_PAD`, still ``<= RAGGED_PAD / 2`` once centred,
    as every real logit exceeds ``RAGGED_FLOOR``) are left out of ``g(0+)``."""
    if zc.size == 0 or float(zc.min()) > RAGGED_PAD / 2:
        return zc.mean(axis=1)  # type: ignore[no-any-return]
    real = zc > RAGGED_PAD / 2
    return np.where(real, zc, 0.0).sum(axis=1) / real.sum(axis=1)  # type: ignore[no-any-return]


def _torch_chunk(
    item: Chunk,
    plan: _PassPlan,
    kind: str,
    n_classes: int,
    device: Any,
) -> _ChunkResult:
    """:func:`_fit_chunk` on a torch device; the warm-start rows and the probability zeros are
    read from the chunk on the CPU."""
    from calibkit.engine.torch_backend import torch_fit_chunk

    offset, scores, labels = item.start, item.scores, item.labels
    terms, nll_one, before, after = torch_fit_chunk(
        scores,
        labels,
        kind,
        plan.beta,
        device,
        n_classes=n_classes,
        first=plan.first,
        before=plan.before,
        after=plan.after,
    )
    out = _ChunkResult(
        rows=len(labels), terms=np.array(terms), nll_one=nll_one, before=before, after=after
    )
    if plan.first and kind == "probs":
        is_zero = scores == 0
        out.zeros = (
            int(np.count_nonzero(is_zero)),
            int(is_zero.any(axis=1).sum()),
            int((is_zero | (scores == 1)).any(axis=1).sum()),
        )
    if plan.stride:
        take = np.arange((-offset) % plan.stride, len(labels), plan.stride)
        if take.size:
            zs = center_logits(as_logits(scores[take], kind))
            zy = _label_logit(zs, labels[take])
            mass = labels[take].sum(axis=1).astype(np.float64) if labels.ndim == 2 else None
            out.sample = (zs, zy, mass)
    return out


def _label_logit(zc: NDArray[np.float64], labels: NDArray[Any]) -> NDArray[np.float64]:
    out: NDArray[np.float64]
    if labels.ndim == 1:
        out = zc[np.arange(zc.shape[0]), labels]
    else:
        out = np.einsum("ij,ij->i", labels.astype(np.float64), zc)
    return out


def _pass(
    source: PredictionSource,
    plan: _PassPlan,
    chunk_rows: int | None,
    device: Any = None,
    *,
    description: str = "temperature fit",
) -> _PassResult:
    """One (multi-threaded) read of the data: the means of the NLL terms at ``plan.beta`` and
    whatever else ``plan`` asks for, each summed in chunk order (independent of the threads).

    A non-finite NLL, gradient or Hessian (float64 overflow) is an :class:`InputError`.
    """
    totals = np.zeros(5)
    nll_one = 0.0
    n = 0
    zeros = np.zeros(3, dtype=np.int64)
    kind, n_classes = source.kind, source.n_classes
    before = after = None
    if plan.before is not None:
        before = MetricAccumulator(
            n_classes, n_bins=plan.before[0], binning=plan.before[1], kind=kind
        )
    if plan.after is not None:
        after = MetricAccumulator(n_classes, n_bins=plan.after[0], binning=plan.after[1])
    samples: list[Sample] = []
    if device is None and "mass" in (spec[1] for spec in (plan.before, plan.after) if spec):
        refuse_distributed(
            f"{source.source}: the metrics of a temperature fit with equal-mass bins keep every "
            "row's confidence"
        )

    def work(item: Chunk) -> _ChunkResult:
        if device is not None:
            return _torch_chunk(item, plan, kind, n_classes, device)
        return _fit_chunk(item, plan, kind, n_classes)

    def merge(part: _ChunkResult) -> None:
        nonlocal totals, nll_one, n, zeros
        totals += part.terms  # in chunk order: independent of the executor
        nll_one += part.nll_one
        n += part.rows
        zeros += part.zeros
        if before is not None and part.before is not None:
            before.merge(part.before)
        if after is not None and part.after is not None:
            after.merge(part.after)
        if part.sample is not None:
            samples.append(part.sample)

    # torch parallelises within a chunk; numpy runs on the executor of the pass
    executor: Executor | None = SerialExecutor() if device is not None else None
    run_pass(
        source,
        work,
        merge,
        chunk_rows=chunk_rows,
        executor=executor,
        description=f"{source.source}: {description}",
    )
    if n == 0:
        raise InputError(source.source, "no rows: the predictions are empty")
    f, g, h, g0, ginf = (totals / n).tolist()
    if not (math.isfinite(f) and math.isfinite(g) and math.isfinite(h)):
        raise InputError(
            source.source,
            f"the NLL or its derivatives are not finite at T = {1.0 / plan.beta:.6g} (float64 "
            "overflow: label logits too far below their row's maximum); temperature scaling "
            "cannot be fitted on these values",
        )
    sample: Sample | None = None
    if samples:
        masses = [m for _, _, m in samples]
        sample = (
            np.concatenate([zs for zs, _, _ in samples]),
            np.concatenate([zy for _, zy, _ in samples]),
            None if masses[0] is None else np.concatenate(masses),  # type: ignore[arg-type]
        )
    return _PassResult(
        f=f,
        g=g,
        h=h,
        g_zero=g0,
        g_inf=ginf,
        n=n,
        nll_one=nll_one / n if plan.first else math.nan,
        before=before,
        after=after,
        zeros=(int(zeros[0]), int(zeros[1]), int(zeros[2])),
        sample=sample,
    )


def nll_gradient_hessian(
    source: PredictionSource, beta: float, *, chunk_rows: int | None = None, device: Any = None
) -> tuple[float, float, float]:
    """Mean NLL of ``softmax(beta * z)`` and its first two derivatives in ``beta``; one pass.

    >>> p = Predictions.from_arrays([[0.0, 1.0]], [1], kind="logits")
    >>> f, g, h = nll_gradient_hessian(p, 1.0)
    >>> round(f, 6), round(g, 6), round(h, 6)  # log(1+e^-1), -(1-sigmoid(1)), s(1)(1-s(1))
    (0.313262, -0.268941, 0.196612)
    """
    dev = None
    if device is not None:
        from calibkit.engine.torch_backend import check_device

        dev = check_device(device) if isinstance(device, str) else device
    r = _pass(source, _PassPlan(beta), chunk_rows, dev)
    return r.f, r.g, r.h


@dataclass(kw_only=True, frozen=True)
class TemperatureFit:
    """How a temperature was fitted.

    ``nll_before`` is the NLL at ``T = 1``, ``nll_after`` at the fitted ``T``; ``gradient`` is
    ``dNLL/dbeta`` there; ``passes`` counts passes over the data; ``clamped`` is ``"t_min"`` or
    ``"t_max"`` when the optimum lies outside the allowed range, else ``None``; ``n`` is the
    number of rows read; ``zero_probs`` (probability inputs) counts the stored probabilities
    that are exactly 0, whose log is read as the dtype's smallest positive number.

    ``passes`` counts full reads of the data only. The warm start works on rows the first pass
    kept in memory: ``warm_start_evaluations`` evaluations of the gradient and Hessian on
    ``warm_start_rows`` rows (every row when the data is small), i.e. about
    ``warm_start_evaluations * warm_start_rows / n`` passes' worth of arithmetic.
    """

    temperature: float
    nll_before: float
    nll_after: float
    gradient: float
    passes: int
    converged: bool
    clamped: Literal["t_min", "t_max"] | None
    n: int
    t_min: float
    t_max: float
    message: str = ""
    zero_probs: int = 0
    warm_start_rows: int = 0
    warm_start_evaluations: int = 0


@dataclass(frozen=True)
class TemperatureScaler(CalibratorBase):
    """A fitted temperature: divides logits by ``temperature``.

    The first :class:`~calibkit.calibrators.base.Calibrator` (method ``"temperature"``): it
    keeps the argmax, and its one parameter ``temperature`` is shown as ``T``.

    >>> ts = TemperatureScaler(2.0)
    >>> ts.transform(np.array([[2.0, 4.0]])).tolist()
    [[1.0, 2.0]]
    >>> TemperatureScaler.from_json(ts.to_json()).temperature
    2.0
    """

    method: ClassVar[str] = "temperature"
    title: ClassVar[str] = "temperature scaling"
    abbreviation: ClassVar[str] = "TS"
    calibrated_as: ClassVar[str] = "temperature-scaled"
    symbols: ClassVar[Mapping[str, str]] = {"temperature": "T"}
    changes_argmax: ClassVar[bool] = False
    sweep_parameter: ClassVar[str | None] = "temperature"
    overflow_hint: ClassVar[str] = "use a larger temperature"

    temperature: float
    fit: TemperatureFit | None = None
    fitted_on: str | None = None
    n_classes: int | None = None
    input_kind: ScoreKind | None = None
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    calibkit_version: str = __version__

    def __post_init__(self) -> None:
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise UsageError(f"temperature must be a finite number > 0; got {t!r}")

    @property
    def beta(self) -> float:
        return 1.0 / self.temperature

    # -- the Calibrator protocol ---------------------------------------------------------------

    @classmethod
    def fit_source(
        cls,
        source: PredictionSource,
        *,
        chunk_rows: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> TemperatureScaler:
        """:func:`fit_temperature` (the exact Newton fit); ``options``: ``t_min``, ``t_max``,
        ``tol``, ``max_passes``."""
        return fit_temperature(source, chunk_rows=chunk_rows, device=device, **options)

    @classmethod
    def fit_with_summaries(
        cls,
        source: PredictionSource,
        *,
        n_bins: int = 15,
        binning: Binning = "width",
        chunk_rows: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> tuple[TemperatureScaler, CalibrationSummary, CalibrationSummary]:
        """:func:`fit_temperature_with_metrics`: the metrics come from the fit's own passes."""
        return fit_temperature_with_metrics(
            source, n_bins=n_bins, binning=binning, chunk_rows=chunk_rows, device=device, **options
        )

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, float]) -> TemperatureScaler:
        """``TemperatureScaler(parameters["temperature"])``."""
        unknown = set(parameters) - {"temperature"}
        if unknown or "temperature" not in parameters:
            raise UsageError(
                f"temperature scaling has one parameter, 'temperature'; got {sorted(parameters)}"
            )
        return cls(parameters["temperature"])

    def parameters(self) -> dict[str, float]:
        return {"temperature": self.temperature}

    def calibrated_logits(self, scores: NDArray[Any], kind: str) -> NDArray[np.float64]:
        """``beta * z`` with ``z`` the logits (``log p`` for probabilities), in float64."""
        return scale_logits(scores, kind, self.beta)

    def summaries(
        self,
        source: PredictionSource,
        *,
        n_bins: int = 15,
        binning: Binning = "width",
        chunk_rows: int | None = None,
        device: str | None = None,
    ) -> tuple[CalibrationSummary, CalibrationSummary]:
        """:func:`before_after_summaries`: both in one pass."""
        return before_after_summaries(
            source,
            self.temperature,
            n_bins=n_bins,
            binning=binning,
            chunk_rows=chunk_rows,
            device=device,
        )

    def fit_details(self) -> dict[str, Any]:
        """The head of ``fit-temp --json``: ``temperature``, ``objective`` (``"nll"`` for the
        exact fit), ``grid``, the fit's facts and ``fitted_on``."""
        fit = self.fit
        g = fit.gradient if fit else None
        return {
            "temperature": self.temperature,
            "objective": "nll" if fit else None,
            "grid": None,
            "converged": fit.converged if fit else None,
            "passes": fit.passes if fit else None,
            "gradient": g if isinstance(g, float) and math.isfinite(g) else None,
            "clamped": fit.clamped if fit else None,
            "message": fit.message if fit else "",
            "fitted_on": self.fitted_on,
            "zero_probs": fit.zero_probs if fit else 0,
            "warm_start_rows": fit.warm_start_rows if fit else 0,
            "warm_start_evaluations": fit.warm_start_evaluations if fit else 0,
        }

    # -- arrays --------------------------------------------------------------------------------

    def transform(self, scores: ArrayLike, kind: str = "logits") -> NDArray[np.float64]:
        """``logits / T`` in float64 (any shape: one logit per row for binary models works);
        for ``kind="probs"``, :meth:`transform_probs`."""
        if kind != "logits":
            return self.transform_probs(scores)
        return np.asarray(scores, dtype=np.float64) / self.temperature

    def transform_probs(self, probs: ArrayLike) -> NDArray[np.float64]:
        """``softmax(log p / T)`` row-wise, for probability inputs of shape ``(N, K)``.

        An exact 0 stays exactly 0 (``0^(1/T) = 0``); no log of it is needed here.

        >>> TemperatureScaler(2.0).transform_probs([[0.8, 0.2, 0.0]]).round(4).tolist()
        [[0.6667, 0.3333, 0.0]]
        """
        p = np.asarray(probs)
        zero = p == 0
        z = as_logits(p, "probs") / self.temperature
        z[zero] = -np.inf  # every valid row has a positive entry, so its max stays finite
        out: NDArray[np.float64] = softmax(z, overwrite=True)
        return out

    # -- the JSON document ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibkit_calibrator": CALIBRATOR_FORMAT,
            "method": "temperature",
            "temperature": self.temperature,
            "fitted_on": self.fitted_on,
            "n": self.fit.n if self.fit else None,
            "n_classes": self.n_classes,
            "input": self.input_kind,
            "created": self.created,
            "calibkit_version": self.calibkit_version,
            "fit": _json_safe(asdict(self.fit)) if self.fit else None,
        }

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<calibrator>") -> Self:
        check_document(doc, source, cls.method)
        t = doc.get("temperature")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise InputError(source, f"temperature must be a finite number > 0; got {t!r}")
        n_classes = doc.get("n_classes")
        if n_classes is not None and (type(n_classes) is not int or n_classes < 2):
            raise InputError(source, f"n_classes must be an integer >= 2; got {n_classes!r}")
        fit = doc.get("fit")
        return cls(
            float(t),
            fit=TemperatureFit(**fit) if isinstance(fit, dict) and _fit_keys_ok(fit) else None,
            fitted_on=doc.get("fitted_on"),
            n_classes=n_classes,
            input_kind=doc.get("input"),
            created=str(doc.get("created", "")),
            calibkit_version=str(doc.get("calibkit_version", "")),
        )


def _fit_keys_ok(fit: dict[str, Any]) -> bool:
    """Every field of :class:`TemperatureFit`, except those with defaults that older
    calibrators did not write (``message``, ``zero_probs``, ``warm_start_*``)."""
    known = set(TemperatureFit.__dataclass_fields__)
    optional = {"message", "zero_probs", "warm_start_rows", "warm_start_evaluations"}
    return known - optional <= set(fit) <= known


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


@dataclass(frozen=True, eq=False)
class ScaledPredictions(CalibratedView):
    """A view of predictions with logits multiplied by ``beta = 1/T`` (probabilities: ``log p``).

    It streams chunks like its source, so metrics after temperature scaling cost one pass. It
    is the temperature case of :class:`~calibkit.calibrators.base.CalibratedPredictions`: the
    same view (:class:`~calibkit.calibrators.base.CalibratedView`) and the same scaling
    (:func:`scale_logits`), so with a :class:`TemperatureScaler` of the same ``beta`` the chunks
    are equal bit for bit; it is given ``beta`` itself rather than a fitted scaler (no
    ``1/(1/beta)`` rounding, nothing to build per temperature of a sweep).
    """

    beta: float

    @property
    def calibrated_as(self) -> str:
        return TemperatureScaler.calibrated_as

    def calibrated_chunk(self, scores: NDArray[Any]) -> NDArray[np.float64]:
        return scale_logits(scores, self.base.kind, self.beta)


def scale_logits(scores: NDArray[Any], kind: str, beta: float) -> NDArray[np.float64]:
    """``beta * z`` with ``z`` the float64 logits of ``scores`` (``log p`` for probabilities):
    what temperature scaling does to a chunk."""
    z = as_logits(scores, kind)
    z *= beta
    return z


def require_scores(source: PredictionSource) -> None:
    """Temperature scaling needs logits or probabilities, not confidence-only rows."""
    _require_scores(source, TemperatureScaler.title)


def _check_range(t_min: float, t_max: float) -> None:
    if not (0 < t_min < t_max < math.inf):
        raise UsageError(f"need 0 < t_min < t_max < inf; got t_min={t_min}, t_max={t_max}")


def _as_source(
    predictions: PredictionSource | ArrayLike, labels: ArrayLike | None, kind: ScoreKind | None
) -> PredictionSource:
    if labels is not None:
        scores: Any = predictions
        return Predictions.from_arrays(scores, labels, kind=kind)
    if hasattr(predictions, "chunks"):
        return predictions  # type: ignore[return-value]
    raise UsageError("fit_temperature needs labels when given an array of scores")


def fit_temperature(
    predictions: PredictionSource | ArrayLike,
    labels: ArrayLike | None = None,
    *,
    kind: ScoreKind | None = None,
    t_min: float = DEFAULT_T_MIN,
    t_max: float = DEFAULT_T_MAX,
    tol: float = GRADIENT_TOL,
    max_passes: int = 100,
    chunk_rows: int | None = None,
    device: str | None = None,
) -> TemperatureScaler:
    """Fit ``T`` minimising the mean NLL of ``softmax(z / T)`` (see the module docstring).

    Pass a :class:`~calibkit.sources.predictions.PredictionSource` (e.g. from
    :func:`calibkit.read_predictions`) or arrays ``(scores, labels)``; for arrays, ``kind``
    forces their reading, and by default probabilities are detected
    (:func:`~calibkit.sources.predictions.choose_kind`).

    >>> z = np.array([[3.0, 0.0], [3.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    >>> ts = fit_temperature(z, [0, 0, 1, 1])  # 1 of 4 wrong: soften to p = 3/4
    >>> round(ts.temperature, 6), round(3 / math.log(3), 6)
    (2.730718, 2.730718)
    """
    source = _as_source(predictions, labels, kind)
    scaler, _, _ = _fit(
        source,
        t_min=t_min,
        t_max=t_max,
        tol=tol,
        max_passes=max_passes,
        chunk_rows=chunk_rows,
        device=device,
        metrics=None,
    )
    return scaler


def fit_temperature_with_metrics(
    predictions: PredictionSource | ArrayLike,
    labels: ArrayLike | None = None,
    *,
    kind: ScoreKind | None = None,
    n_bins: int = 15,
    binning: Binning = "width",
    t_min: float = DEFAULT_T_MIN,
    t_max: float = DEFAULT_T_MAX,
    tol: float = GRADIENT_TOL,
    max_passes: int = 100,
    chunk_rows: int | None = None,
    device: str | None = None,
) -> tuple[TemperatureScaler, CalibrationSummary, CalibrationSummary]:
    """:func:`fit_temperature`, with the metrics of the data before and after scaling.

    Returns ``(scaler, before, after)``: ``before`` is
    :func:`~calibkit.metrics.summary.summarize` of the data as given (equal to it bit for bit
    on the CPU), ``after`` that of ``softmax(z / T)`` at the fitted ``T`` (equal to
    :class:`ScaledPredictions` summarised to ~1e-15; see the module docstring). Both come
    from the fit's own passes: the first (at ``T = 1``) and the last (at the reported ``T``),
    so the fit costs no extra read of the data.

    >>> z = np.array([[3.0, 0.0], [3.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    >>> ts, before, after = fit_temperature_with_metrics(z, [0, 0, 1, 1], n_bins=5)
    >>> round(before.nll, 4), round(after.nll, 4), round(ts.fit.nll_after, 4)
    (0.7986, 0.5623, 0.5623)
    """
    source = _as_source(predictions, labels, kind)
    scaler, before, after = _fit(
        source,
        t_min=t_min,
        t_max=t_max,
        tol=tol,
        max_passes=max_passes,
        chunk_rows=chunk_rows,
        device=device,
        metrics=(check_n_bins(n_bins), check_binning(binning)),
    )
    assert before is not None and after is not None
    return scaler, before, after


def before_after_summaries(
    source: PredictionSource,
    temperature: float,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    chunk_rows: int | None = None,
    device: str | None = None,
) -> tuple[CalibrationSummary, CalibrationSummary]:
    """The metrics of ``source`` as given and after scaling by ``temperature``: one pass.

    ``before`` equals :func:`~calibkit.metrics.summary.summarize` of ``source`` (bit for bit on
    the CPU), ``after`` that of ``ScaledPredictions(source, 1 / temperature)`` to ~1e-15 (the
    logits are scaled after centring, as in :func:`~calibkit.calibrators.sweep_temperatures`).
    """
    require_scores(source)
    if not (math.isfinite(temperature) and temperature > 0):
        raise UsageError(f"temperature must be a finite number > 0; got {temperature!r}")
    spec = (check_n_bins(n_bins), check_binning(binning))
    dev = _device(device)
    r = _pass(
        source,
        _PassPlan(1.0 / temperature, first=True, before=spec, after=spec),
        chunk_rows,
        dev,
        description="metrics",
    )
    assert r.before is not None and r.after is not None
    return _summaries(source, r.before, r.after, stacklevel=3)


def _device(device: str | None) -> Any:
    if device is None:
        return None
    from calibkit.engine.torch_backend import check_device

    return check_device(device)


def _summaries(
    source: PredictionSource,
    before: MetricAccumulator,
    after: MetricAccumulator,
    *,
    stacklevel: int,
) -> tuple[CalibrationSummary, CalibrationSummary]:
    """The summaries of a fit's first and last passes, as :func:`summarize` would give them
    (with its warning about label probabilities of exactly 0)."""
    binary = source.n_classes == 2
    b = before.result(source=source.source, binary=binary, input_reason=input_reason(source))
    base = input_reason(source)
    a = after.result(
        source=source.source,
        binary=binary,
        input_reason=f"temperature-scaled {source.kind}" + (f" ({base})" if base else ""),
    )
    if b.zero_prob_rows:
        warnings.warn(
            zero_prob_message(source.source, b.zero_prob_rows), UserWarning, stacklevel=stacklevel
        )
    return b, a


def _sample_stride(source: PredictionSource) -> int:
    """Every how many rows the warm start keeps one (0: no warm start)."""
    k = max(1, source.n_classes)
    cap = WARM_START_ELEMENTS // k
    if cap < WARM_START_MIN_ROWS:
        return 0
    try:
        rows = int(source.n_rows)
    except (TypeError, ValueError):  # pragma: no cover - every source says
        return 0
    return max(1, -(-rows // cap))


def _sample_terms(sample: Sample, beta: float) -> tuple[float, float]:
    """Mean gradient and Hessian of the NLL on the warm-start rows."""
    zs, zy, mass = sample
    m: Any = 1.0 if mass is None else mass
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.multiply(zs, beta)
        np.exp(e, out=e)
        s = e.sum(axis=1)
        ez, ez2 = np.empty(len(s)), np.empty(len(s))
        row_dot(e, zs, ez)
        e *= zs
        row_dot(e, zs, ez2)
        mean_z = ez / s
        var_z = np.maximum(ez2 / s - mean_z * mean_z, 0.0)
        return float((mean_z * m - zy).mean()), float((var_z * m).mean())


def _warm_start(
    sample: Sample,
    beta0: float,
    g0: float,
    h0: float,
    lo: float,
    hi: float,
    *,
    exact: bool,
    tol: float,
) -> tuple[float | None, int]:
    """Newton's method, in memory, on the rows kept by the first pass: ``(beta, evaluations)``.

    The gradient on the kept rows is shifted and tilted to agree with the full data's gradient
    and Hessian at ``beta0`` (a control variate: ``g(b) ~ g_kept(b) + (g0 - g_kept(beta0)) +
    (h0 - h_kept(beta0)) (b - beta0)``), which takes most of the subsample's error away (about
    1e-3 relative with 2 000 rows of 1 000 classes). With every row kept (``exact``) it is the
    fit itself, run to the tolerance; otherwise it stops at a step of 1e-5 relative (the next
    iterate is then good to ~1e-10, far below the statistical error of the kept rows). ``None``
    when the kept rows give no usable estimate (e.g. non-finite values).
    """
    gs, hs = _sample_terms(sample, beta0)
    shift, tilt = g0 - gs, h0 - hs

    def model(b: float) -> tuple[float, float]:
        gs, hs = _sample_terms(sample, b)
        return gs + shift + tilt * (b - beta0), hs + tilt

    # a bracket [a, b] of the model's root; a side is "known" once the model changed sign there
    a, b = (lo, beta0) if g0 > 0 else (beta0, hi)
    a_known, b_known = g0 <= 0, g0 > 0
    beta, g, h = beta0, g0, h0
    evaluations = 1
    for _ in range(WARM_START_MAX_EVALUATIONS):
        step = beta - g / h if h > 0 else math.nan
        if math.isfinite(step) and a < step < b:
            new = step
        elif a_known and b_known:
            new = math.sqrt(a * b)
        else:  # Newton points beyond the range's end: try the end itself
            new = b if g < 0 else a
            if new == beta:
                break
        g, h = model(new)
        evaluations += 1
        if not (math.isfinite(g) and math.isfinite(h)):
            return None, evaluations
        moved = abs(new - beta)
        beta = new
        if g > 0:
            b, b_known = beta, True
        else:
            a, a_known = beta, True
        if (beta == lo and g > 0) or (beta == hi and g <= 0):
            break  # the model's root lies beyond the range: the fit decides clamping there
        if abs(g) <= (tol * 1e-3 if exact else 0.0) or b <= a * (1 + 4 * np.finfo(float).eps):
            break
        if moved <= (4 * np.finfo(float).eps if exact else 1e-5) * beta:
            break
    return beta, evaluations


@progress.counts_passes("temperature fit")
def _fit(
    source: PredictionSource,
    *,
    t_min: float,
    t_max: float,
    tol: float,
    max_passes: int,
    chunk_rows: int | None,
    device: str | None,
    metrics: tuple[int, Binning] | None,
) -> tuple[TemperatureScaler, CalibrationSummary | None, CalibrationSummary | None]:
    """The fit (with the before/after metrics when ``metrics`` gives their bins).

    Pass 1 is at ``T = 1`` (clipped to the range): the NLL and its derivatives, the gradient's
    limits, the metrics before scaling, the probability zeros and the warm-start rows. Newton's
    method then starts from the warm start and every later pass carries the metrics at its own
    temperature, so those of the last pass are the metrics at the reported ``T``.
    """
    _check_range(t_min, t_max)
    require_scores(source)
    dev = _device(device)
    lo, hi = 1.0 / t_max, 1.0 / t_min
    beta = min(max(1.0, lo), hi)
    stride = _sample_stride(source)
    first = _pass(
        source,
        _PassPlan(beta, first=True, before=metrics, after=metrics, stride=stride),
        chunk_rows,
        dev,
    )
    zero_probs = (
        _warn_about_probabilities(source, first.zeros, first.n) if source.kind == "probs" else 0
    )
    f, g, h, g_zero, g_inf = first.f, first.g, first.h, first.g_zero, first.g_inf
    n_read = first.n
    nll_before = f if beta == 1.0 else first.nll_one
    first_before, after = first.before, first.after
    passes = 1
    warm_rows = warm_evaluations = 0
    lo_known = hi_known = False  # whether g(lo) < 0 < g(hi) has been observed
    converged = False
    clamped: Literal["t_min", "t_max"] | None = None
    message = ""

    def evaluate(b: float) -> tuple[float, float, float]:
        nonlocal passes, after
        r = _pass(source, _PassPlan(b, after=metrics), chunk_rows, dev)
        passes += 1
        after = r.after
        return r.f, r.g, r.h

    # The gradient is increasing in beta, from g(0+) to g(inf) = mean(max_k z - z_y) >= 0. When
    # a limit has the wrong sign the optimum is at a bound; deciding it here avoids creeping
    # towards it while the gradient underflows below the tolerance.
    if g_inf <= 0 and h > 0:
        beta = 1.0 / t_min
    elif g_zero >= 0 and h > 0:
        beta = 1.0 / t_max
    sample = first.sample
    exact = sample is not None and len(sample[1]) == n_read  # every row is in memory
    if sample is not None:
        warm_rows = len(sample[1])
    del first
    if beta != min(max(1.0, lo), hi):
        f, g, h = evaluate(beta)
    while True:
        if beta == 1.0 / t_min and g <= 0 and (g < 0 or g_inf <= 0):
            clamped, converged = "t_min", True
            message = "the NLL keeps falling as T -> 0 (predictions are right and confident)"
            break
        if beta == 1.0 / t_max and g >= 0 and (g > 0 or g_zero >= 0):
            clamped, converged = "t_max", True
            message = "the NLL keeps falling as T grows (predictions no better than uniform)"
            break
        if abs(g) <= tol:
            converged = True
            break
        if g > 0:
            hi, hi_known = beta, True
        else:
            lo, lo_known = beta, True
        if hi <= lo * (1 + 4 * np.finfo(float).eps):
            converged = True
            message = "stopped at float64 resolution of T"
            break
        if passes >= max_passes:
            break
        step = beta - g / h if h > 0 else math.nan
        warm: float | None = None
        if sample is not None and (
            exact or not (math.isfinite(step) and abs(step - beta) <= WARM_START_NEWTON * beta)
        ):
            # far from the optimum Newton's step is poor: take the root of the gradient of the
            # rows in memory, made to agree with the full data's gradient and Hessian here
            warm, evaluations = _warm_start(sample, beta, g, h, lo, hi, exact=exact, tol=tol)
            warm_evaluations += evaluations
        if warm is not None and lo <= warm <= hi and warm != beta:
            new = warm
        elif math.isfinite(step) and lo < step < hi:
            new = step
        elif lo_known and hi_known:
            new = math.sqrt(lo * hi)
        else:
            # not bracketed yet on that side: jump to the bound (cheap, decides clamping)
            new = hi if g < 0 else lo
            if not (lo <= new <= hi) or new == beta:
                new = math.sqrt(lo * hi)
        beta = new
        f, g, h = evaluate(beta)
    if not converged:
        warnings.warn(
            f"{source.source}: temperature fit stopped after {passes} passes with "
            f"gradient {g:.3g} (tolerance {tol:g})",
            ConvergenceWarning,
            stacklevel=4,  # _fit < counts_passes wrapper < public fit < caller
        )
    if clamped:
        bound = t_min if clamped == "t_min" else t_max
        warnings.warn(
            f"{source.source}: {message}; temperature clamped to {bound:g}",
            ConvergenceWarning,
            stacklevel=4,  # _fit < counts_passes wrapper < public fit < caller
        )
    fit = TemperatureFit(
        temperature=1.0 / beta,
        nll_before=nll_before,
        nll_after=f,
        gradient=g,
        passes=passes,
        converged=converged,
        clamped=clamped,
        n=n_read,
        t_min=t_min,
        t_max=t_max,
        message=message,
        zero_probs=zero_probs,
        warm_start_rows=warm_rows,
        warm_start_evaluations=warm_evaluations,
    )
    scaler = TemperatureScaler(
        1.0 / beta,
        fit=fit,
        fitted_on=source.source,
        n_classes=source.n_classes,
        input_kind="probs" if source.kind == "probs" else "logits",
    )
    if metrics is None:
        return scaler, None, None
    assert first_before is not None and after is not None
    before_summary, after_summary = _summaries(source, first_before, after, stacklevel=5)
    return scaler, before_summary, after_summary


def _warn_about_probabilities(source: PredictionSource, zeros: tuple[int, int, int], n: int) -> int:
    """Warn about exact zeros (read as the dtype's smallest positive number when their log is
    taken) and about saturation, as counted by the first pass; return the number of exact
    zeros."""
    zero_count, zero_rows, saturated = zeros
    if zero_count:
        warnings.warn(
            f"{source.source}: {zero_count} probabilit{'ies are' if zero_count != 1 else 'y is'} "
            f"exactly 0 (in {zero_rows} row{'s' if zero_rows != 1 else ''}); the fit takes log 0 "
            "as the log of the smallest positive number of the stored dtype",
            UserWarning,
            stacklevel=5,
        )
    if n and saturated / n > 0.01:
        warnings.warn(
            f"{source.source}: {saturated / n:.1%} of rows have a probability of exactly 0 or 1; "
            "a temperature fitted on saturated probabilities is biased (save logits instead)",
            UserWarning,
            stacklevel=5,
        )
    return zero_count


registry.register(TemperatureScaler.method, TemperatureScaler)
_IS_A_CALIBRATOR: type[Calibrator] = TemperatureScaler  # mypy checks the protocol here
