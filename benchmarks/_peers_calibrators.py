"""The peers of ``bench_calibrators.py``: other libraries' calibrators behind one interface.

Every peer is a :class:`Peer` (method, implementation, what it needs, how to fit it); a fit
returns a :class:`Fitted`: how to get float64 log-probabilities of a chunk of logits, and for
the maps of the softmax-of-an-affine-map family (temperature, vector, matrix, the ODIR ones)
the map itself, ``(W, b)`` on its features (``"logits"`` or ``"logp"``, the log-softmax of the
logits), which the benchmark evaluates in float64 the same way for every implementation.

None of these libraries is a dependency of calibkit: a peer whose package is missing says why
and is skipped. Everything here is written for the benchmark (nothing copied from the peers).

* the common **torch LBFGS recipe** (``nn.Parameter``, ``torch.optim.LBFGS(lr=0.01,
  max_iter=50)``, one ``step`` on the full-batch cross-entropy, float32, the way the well-known
  temperature-scaling recipe does it), for temperature, vector, matrix and the ODIR maps;
* **torch-uncertainty**'s scalers (its package ``__init__`` needs ``lightning`` and
  ``torchvision``, which would replace the CPU torch here, so only its
  ``post_processing.calibration`` modules are loaded, see :func:`_torch_uncertainty`);
* **netcal** (its MLE scaling fits with ``scipy.optimize.minimize`` on probabilities; its
  binning methods are one-versus-all with renormalisation on multiclass inputs; on
  ``(confidence, correct)`` they are the top-versus-all reduction);
* **dirichletcal** (Kull et al.; it builds an ``N x (K+1)^2`` array, guarded by
  :func:`dirichletcal_bytes`);
* **scikit-learn**: ``CalibratedClassifierCV(FrozenEstimator(stored scores))`` (sigmoid and
  isotonic are one-versus-all, then normalised; temperature) and ``LogisticRegression`` with no
  penalty on the logits (matrix scaling).
"""

from __future__ import annotations

import importlib.util
import math
import sys
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TINY = np.finfo(np.float64).tiny


def log_softmax(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    m = a.max(axis=1, keepdims=True)
    s = a - m
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def log_probs(p: np.ndarray) -> np.ndarray:
    """log of probabilities, exact zeros read as the float64 tiny (as calibkit's metrics do)."""
    return np.log(np.maximum(np.asarray(p, dtype=np.float64), TINY))


@dataclass
class Fitted:
    """A fitted calibrator, as the benchmark evaluates it."""

    #: float64 log-probabilities of a chunk of logits.
    logp: Callable[[np.ndarray], np.ndarray]
    #: ``(W, b)`` of ``softmax(W x + b)`` where ``x`` is :attr:`features` of the logits.
    linear: tuple[np.ndarray, np.ndarray] | None = None
    features: str = "logits"
    #: Full evaluations of the data (closure calls, function evaluations), where known.
    passes: int | None = None
    #: What the implementation says about its own objective / convergence.
    reported_objective: float | None = None
    reported_converged: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: The scores whose argmax is the prediction, when ``log`` of them could tie (probability
    #: outputs a float64 step apart can have equal logs); default: :attr:`logp`.
    scores: Callable[[np.ndarray], np.ndarray] | None = None


@dataclass
class Peer:
    method: str  # calibkit's method name this peer is compared with
    impl: str  # what is shown in the table
    needs: Callable[[], str | None]  # None when available, else why not
    fit: Callable[[np.ndarray, np.ndarray, dict[str, Any]], Fitted]
    #: Rough seconds at (n, k) on 2 cores, for --skip-slow (None: cheap).
    seconds: Callable[[int, int], float] | None = None
    #: Rough peak bytes at (n, k), to refuse a run that would exhaust the machine.
    memory: Callable[[int, int], float] | None = None
    note: str = ""
    #: Run only up to this many classes (a variant that is the default above it).
    only_k: int | None = None


def _module(name: str) -> Callable[[], str | None]:
    def needs() -> str | None:
        if importlib.util.find_spec(name) is None:
            return f"{name} is not installed (pip install {name.replace('_', '-')})"
        return None

    return needs


# -- linear maps: (W, b) -> log-probabilities, float64, chunked --------------------------------


def features_of(z: np.ndarray, features: str) -> np.ndarray:
    z64 = np.asarray(z, dtype=np.float64)
    return log_softmax(z64) if features == "logp" else z64


def linear_logp(w: np.ndarray, b: np.ndarray, features: str) -> Callable[[np.ndarray], np.ndarray]:
    w64, b64 = np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)

    def logp(z: np.ndarray) -> np.ndarray:
        return log_softmax(features_of(z, features) @ w64.T + b64)

    return logp


# -- the torch LBFGS recipe --------------------------------------------------------------------


def _torch_recipe(kind: str) -> Callable[[np.ndarray, np.ndarray, dict[str, Any]], Fitted]:
    """softmax(T^-1 z), softmax(w*z + b), softmax(Wz + b) (ODIR penalty when asked), or on
    log-softmax(z) for dirichlet: LBFGS(lr=0.01, max_iter=50), one step, float32."""

    def fit(z: np.ndarray, y: np.ndarray, opts: dict[str, Any]) -> Fitted:
        import torch

        torch.set_num_threads(opts.get("threads", 2))
        k = z.shape[1]
        x = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
        if kind == "dirichlet":
            x = torch.log_softmax(x, dim=1)
        labels = torch.from_numpy(y.astype(np.int64))
        lam, mu = opts.get("lambda"), opts.get("mu")
        if kind == "temperature":
            t = torch.nn.Parameter(torch.ones(1) * 1.5)
            params = [t]

            def forward() -> Any:
                return x / t
        elif kind == "vector":
            w = torch.nn.Parameter(torch.ones(k))
            b = torch.nn.Parameter(torch.zeros(k))
            params = [w, b]

            def forward() -> Any:
                return x * w + b
        else:
            w = torch.nn.Parameter(torch.eye(k))
            b = torch.nn.Parameter(torch.zeros(k))
            params = [w, b]

            def forward() -> Any:
                return x @ w.T + b

        loss_fn = torch.nn.CrossEntropyLoss()
        optimizer = torch.optim.LBFGS(params, lr=0.01, max_iter=50)
        calls = 0

        def closure() -> Any:
            nonlocal calls
            calls += 1
            optimizer.zero_grad()
            loss = loss_fn(forward(), labels)
            if kind in ("matrix-odir", "dirichlet") and lam is not None:
                off = (w * w).sum() - (torch.diagonal(w) ** 2).sum()
                loss = loss + lam * off + mu * (b * b).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        if kind == "temperature":
            wm, bm = np.eye(k) / float(t.item()), np.zeros(k)
        elif kind == "vector":
            wm = np.diag(w.detach().numpy().astype(np.float64))
            bm = b.detach().numpy().astype(np.float64)
        else:
            wm = w.detach().numpy().astype(np.float64)
            bm = b.detach().numpy().astype(np.float64)
        feats = "logp" if kind == "dirichlet" else "logits"
        return Fitted(linear_logp(wm, bm, feats), (wm, bm), feats, passes=calls)

    return fit


# -- torch-uncertainty -------------------------------------------------------------------------


def _torch_uncertainty() -> Any:
    """Its ``post_processing.calibration`` package, loaded without the package ``__init__``
    (which imports lightning and torchvision: torchvision from the registry replaces the CPU
    torch with a CUDA one)."""
    if "torch_uncertainty.post_processing.calibration" in sys.modules:
        return sys.modules["torch_uncertainty.post_processing.calibration"]
    spec = importlib.util.find_spec("torch_uncertainty")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("torch-uncertainty is not installed")
    root = next(iter(spec.submodule_search_locations))
    for name, sub in (
        ("torch_uncertainty", ""),
        ("torch_uncertainty.post_processing", "/post_processing"),
    ):
        if name not in sys.modules:
            mod = types.ModuleType(name)
            mod.__path__ = [root + sub]
            sys.modules[name] = mod
    from torch_uncertainty.post_processing.abstract import PostProcessing

    sys.modules["torch_uncertainty.post_processing"].PostProcessing = PostProcessing  # type: ignore[attr-defined]
    import torch_uncertainty.post_processing.calibration as cal

    return cal


def _tu_needs() -> str | None:
    try:
        _torch_uncertainty()
    except Exception as exc:
        return f"torch-uncertainty's scalers do not load: {exc}"
    return None


def _tu(kind: str) -> Callable[[np.ndarray, np.ndarray, dict[str, Any]], Fitted]:
    def fit(z: np.ndarray, y: np.ndarray, opts: dict[str, Any]) -> Fitted:
        import logging

        import torch

        torch.set_num_threads(opts.get("threads", 2))
        logging.getLogger().setLevel(logging.ERROR)
        cal = _torch_uncertainty()
        k = z.shape[1]
        x = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
        labels = torch.from_numpy(y.astype(np.int64))
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(x, labels), batch_size=len(y)
        )
        note = ""
        if kind == "temperature":
            m = cal.TemperatureScaler()
        elif kind == "vector":
            m = cal.VectorScaler(num_classes=k)
            note = "no bias: softmax(w*z)"
        elif kind == "matrix":
            m = cal.MatrixScaler(num_classes=k)
        else:  # dirichlet: its penalty is lambda * offdiag / (K(K-1)) + mu * mean(b^2)
            lam, mu = opts["lambda"], opts["mu"]
            m = cal.DirichletScaler(num_classes=k, lambda_reg=lam * k * (k - 1), mu_reg=mu * k)
        calls = 0
        inner = m._scale

        def counted(logits: Any) -> Any:
            nonlocal calls
            calls += 1
            return inner(logits)

        m._scale = counted  # count the closure's full-batch evaluations
        m.fit(loader, progress=False)
        m._scale = inner
        if kind == "temperature":
            wm, bm = np.eye(k) * float(m.inv_temp.item()), np.zeros(k)
        elif kind == "vector":
            wm, bm = np.diag(m.inv_temp.detach().numpy().astype(np.float64)), np.zeros(k)
        else:
            wm = m.inv_temperature_weight.detach().numpy().astype(np.float64)
            bm = m.inv_temperature_bias.detach().numpy().astype(np.float64)
        feats = "logp" if kind == "dirichlet" else "logits"
        return Fitted(linear_logp(wm, bm, feats), (wm, bm), feats, passes=calls, note=note)

    return fit


# -- netcal ------------------------------------------------------------------------------------


def _probs(z: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(z))


def _netcal_scaling(kind: str) -> Callable[[np.ndarray, np.ndarray, dict[str, Any]], Fitted]:
    """netcal's MLE scaling on probabilities: TemperatureScaling (softmax(log p / T)) and
    LogisticCalibration (multiclass: softmax(w * log p + b), vector scaling on log p)."""

    def fit(z: np.ndarray, y: np.ndarray, opts: dict[str, Any]) -> Fitted:
        import torch

        torch.set_num_threads(opts.get("threads", 2))
        from netcal.scaling import LogisticCalibration, TemperatureScaling

        p = _probs(z)
        m = TemperatureScaling() if kind == "temperature" else LogisticCalibration()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(p, y, tensorboard=False)
        k = z.shape[1]
        w = np.asarray(m.weights, dtype=np.float64).ravel()
        if kind == "temperature":
            wm, bm = np.eye(k) * float(w[0]), np.zeros(k)
        else:
            wm = np.diag(w) if w.size == k else np.eye(k) * float(w[0])
            bm = np.asarray(m.intercept, dtype=np.float64).ravel() * np.ones(k)
        note = "on log p" if kind == "vector" else ""
        return Fitted(linear_logp(wm, bm, "logp"), (wm, bm), "logp", note=note)

    return fit


def _top_label(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return p.max(axis=1), p.argmax(axis=1)


def rescale_top(p: np.ndarray, new_conf: np.ndarray) -> np.ndarray:
    """Top-versus-all: the top class gets ``new_conf``, the others share ``1 - new_conf`` in
    their old proportions (the argmax can only change through a tie)."""
    conf, top = _top_label(p)
    rest = 1.0 - conf
    scale = np.where(rest > 0, (1.0 - new_conf) / np.where(rest > 0, rest, 1.0), 0.0)
    out = p * scale[:, None]
    out[np.arange(len(p)), top] = new_conf
    return out


def _netcal_binary(
    name: str, reduction: str
) -> Callable[[np.ndarray, np.ndarray, dict[str, Any]], Fitted]:
    """netcal's binning / binary scaling: ``reduction="ova"`` is netcal's own multiclass mode
    (one-versus-all per class, renormalised); ``"tva"`` fits it on (confidence, correct) and
    rescales the other classes (the top-versus-all reduction)."""

    def make() -> Any:
        import netcal.binning as nb
        import netcal.scaling as ns

        if name == "histogram":
            return nb.HistogramBinning(bins=15)
        if name == "isotonic":
            return nb.IsotonicRegression()
        if name == "platt":
            return ns.LogisticCalibration()
        if name == "beta":
            return ns.BetaCalibration()
        if name == "bbq":
            return nb.BBQ()
        if name == "enir":
            return nb.ENIR()
        raise ValueError(name)

    def fit(z: np.ndarray, y: np.ndarray, opts: dict[str, Any]) -> Fitted:
        import torch

        torch.set_num_threads(opts.get("threads", 2))
        p = _probs(z)
        m = make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if reduction == "tva":
                conf, top = _top_label(p)
                kw = {"tensorboard": False} if name in ("platt", "beta") else {}
                m.fit(conf, (top == y).astype(np.int64), **kw)
            else:
                kw = {"tensorboard": False} if name in ("platt", "beta") else {}
                m.fit(p, y, **kw)

        def logp(zc: np.ndarray) -> np.ndarray:
            pc = _probs(zc)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if reduction == "tva":
                    new = np.clip(np.asarray(m.transform(pc.max(axis=1)), dtype=np.float64), 0, 1)
                    return log_probs(rescale_top(pc, new.reshape(-1)))
                out = np.asarray(m.transform(pc), dtype=np.float64)
            return log_probs(out)

        return Fitted(logp)

    return fit


# -- dirichletcal ------------------------------------------------------------------------------


def dirichletcal_bytes(n: int, k: int, optimizer: str = "auto") -> float:
    """dirichletcal's ``XXT`` is ``N x (K+1)^2`` float64, built from two arrays of that size;
    its Newton path (``auto`` for K <= 36) also takes jax's Hessian of the objective, whose
    intermediates are about ``3.5 N (K+1)^3 K`` float64 (measured: 750 MB at 2000 x 10)."""
    xxt = 3.0 * n * (k + 1) ** 2 * 8
    if optimizer == "newton" or (optimizer == "auto" and k <= 36):
        return xxt + 3.5 * n * (k + 1) ** 3 * k * 8
    return xxt


def _dirichletcal(
    kind: str, optimizer: str = "auto"
) -> Callable[[np.ndarray, np.ndarray, dict[str, Any]], Fitted]:
    """Its matrix scaling (MultinomialRegression on the logits, as its MatrixScaling with
    ``logit_input=True``) or FullDirichletCalibrator, with its own optimizer
    choice (``auto``: Newton with jax's Hessian for K <= 36, else scipy's fmin_l_bfgs_b)."""

    def fit(z: np.ndarray, y: np.ndarray, opts: dict[str, Any]) -> Fitted:
        import logging

        logging.getLogger().setLevel(logging.ERROR)
        lam, mu = opts.get("lambda", 0.0), opts.get("mu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "dirichlet":
                from dirichletcal.calib.fulldirichlet import FullDirichletCalibrator

                m = FullDirichletCalibrator(reg_lambda=lam, reg_mu=mu, optimizer=optimizer)
                m.fit(_probs(z), y)
                weights = np.asarray(m.weights, dtype=np.float64)
                feats = "logp"
            else:
                # what its MatrixScaling(logit_input=True) fits, with the optimizer choice
                from dirichletcal.calib.multinomial import MultinomialRegression

                m = MultinomialRegression(
                    method="Full", reg_lambda=lam, reg_mu=mu, optimizer=optimizer
                )
                m.fit(np.asarray(z, dtype=np.float64), y)
                weights = np.asarray(m.weights_, dtype=np.float64)
                feats = "logits"
        wm, bm = weights[:, :-1], weights[:, -1]
        return Fitted(linear_logp(wm, bm, feats), (wm, bm), feats, note="penalty on ref-row W")

    return fit


# -- scikit-learn ------------------------------------------------------------------------------


def _stored(k: int, scores: str) -> Any:
    from sklearn.base import BaseEstimator, ClassifierMixin

    class StoredScores(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
        """A 'model' whose outputs are the stored logits (decision_function) or their softmax."""

        def __init__(self, n_classes: int = k) -> None:
            self.n_classes = n_classes

        def fit(self, x: Any, y: Any) -> StoredScores:
            self.classes_ = np.arange(self.n_classes)
            return self

        def predict(self, x: Any) -> Any:
            return np.asarray(x).argmax(axis=1)

        def predict_proba(self, x: Any) -> Any:
            return _probs(np.asarray(x))

    def decision_function(self: Any, x: Any) -> Any:
        return np.asarray(x, dtype=np.float64)

    if scores == "logits":  # sklearn then calibrates the logits, not the probabilities
        StoredScores.decision_function = decision_function  # type: ignore[attr-defined]
    return StoredScores().fit(None, None)


def _sklearn_ccv(method: str) -> Callable[[np.ndarray, np.ndarray, dict[str, Any]], Fitted]:
    """CalibratedClassifierCV(FrozenEstimator(stored), method=...): sigmoid on the logits (its
    decision_function), isotonic on the probabilities, both one-versus-all then normalised."""

    def fit(z: np.ndarray, y: np.ndarray, opts: dict[str, Any]) -> Fitted:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.frozen import FrozenEstimator

        scores = "probs" if method == "isotonic" else "logits"
        est = _stored(z.shape[1], scores)
        ccv = CalibratedClassifierCV(FrozenEstimator(est), method=method)
        ccv.fit(np.asarray(z, dtype=np.float64), y)

        def logp(zc: np.ndarray) -> np.ndarray:
            return log_probs(ccv.predict_proba(np.asarray(zc, dtype=np.float64)))

        linear = None
        if method == "temperature":
            beta = float(ccv.calibrated_classifiers_[0].calibrators[0].beta_)
            k = z.shape[1]
            linear = (np.eye(k) * beta, np.zeros(k))
        return Fitted(logp, linear, "logits")

    return fit


def _sklearn_lr(z: np.ndarray, y: np.ndarray, opts: dict[str, Any]) -> Fitted:
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=math.inf, max_iter=opts.get("lr_max_iter", 1000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(np.asarray(z, dtype=np.float64), y)
    wm, bm = m.coef_.astype(np.float64), m.intercept_.astype(np.float64)
    iters = int(np.max(m.n_iter_))
    return Fitted(linear_logp(wm, bm, "logits"), (wm, bm), "logits", note=f"lbfgs {iters} it")


# -- the list ----------------------------------------------------------------------------------


def _data_seconds(per_pass: float) -> Callable[[int, int], float]:
    """``per_pass`` seconds per 10^6 numbers, times the numbers."""
    return lambda n, k: per_pass * n * k / 1e6


def _matrix_seconds(per: float) -> Callable[[int, int], float]:
    """``per`` seconds per 10^9 multiply-adds of one N x K x K pass."""
    return lambda n, k: per * n * k * k / 1e9


def peers() -> list[Peer]:
    tu = _tu_needs
    nc, dc, sk, th = (
        _module("netcal"),
        _module("dirichletcal"),
        _module("sklearn"),
        _module("torch"),
    )
    dmem = dirichletcal_bytes

    def dmem_lbfgs(n: int, k: int) -> float:
        return dirichletcal_bytes(n, k, "fmin_l_bfgs_b")

    lb = "fmin_l_bfgs_b"
    out = [
        Peer("temperature", "torch LBFGS recipe", th, _torch_recipe("temperature")),
        Peer("temperature", "torch-uncertainty", tu, _tu("temperature")),
        Peer("temperature", "netcal", nc, _netcal_scaling("temperature"), _data_seconds(0.5)),
        Peer("temperature", "sklearn CCV temperature", sk, _sklearn_ccv("temperature")),
        Peer("vector", "torch LBFGS recipe", th, _torch_recipe("vector")),
        Peer("vector", "torch-uncertainty", tu, _tu("vector")),
        Peer(
            "vector",
            "netcal LogisticCalibration",
            nc,
            _netcal_scaling("vector"),
            lambda n, k: 4e-7 * n * k * k,
        ),
        Peer("matrix", "torch LBFGS recipe", th, _torch_recipe("matrix"), _matrix_seconds(2.0)),
        Peer("matrix", "torch-uncertainty", tu, _tu("matrix"), _matrix_seconds(8.0)),
        Peer("matrix", "sklearn LogisticRegression", sk, _sklearn_lr, _matrix_seconds(30.0)),
        Peer("matrix", "dirichletcal", dc, _dirichletcal("matrix"), _matrix_seconds(200.0), dmem),
        Peer(
            "matrix",
            "dirichletcal (L-BFGS)",
            dc,
            _dirichletcal("matrix", lb),
            _matrix_seconds(50.0),
            dmem_lbfgs,
            only_k=36,
        ),
        Peer(
            "matrix-odir",
            "torch LBFGS recipe",
            th,
            _torch_recipe("matrix-odir"),
            _matrix_seconds(2.0),
        ),
        Peer(
            "matrix-odir", "dirichletcal", dc, _dirichletcal("matrix"), _matrix_seconds(200.0), dmem
        ),
        Peer(
            "matrix-odir",
            "dirichletcal (L-BFGS)",
            dc,
            _dirichletcal("matrix", lb),
            _matrix_seconds(50.0),
            dmem_lbfgs,
            only_k=36,
        ),
        Peer(
            "dirichlet-odir",
            "torch LBFGS recipe",
            th,
            _torch_recipe("dirichlet"),
            _matrix_seconds(2.0),
        ),
        Peer("dirichlet-odir", "torch-uncertainty", tu, _tu("dirichlet"), _matrix_seconds(8.0)),
        Peer(
            "dirichlet-odir",
            "dirichletcal",
            dc,
            _dirichletcal("dirichlet"),
            _matrix_seconds(200.0),
            dmem,
        ),
        Peer(
            "dirichlet-odir",
            "dirichletcal (L-BFGS)",
            dc,
            _dirichletcal("dirichlet", lb),
            _matrix_seconds(50.0),
            dmem_lbfgs,
            only_k=36,
        ),
        Peer(
            "histogram",
            "netcal HistogramBinning (ova)",
            nc,
            _netcal_binary("histogram", "ova"),
            _data_seconds(0.05),
        ),
        Peer("histogram", "netcal HistogramBinning (tva)", nc, _netcal_binary("histogram", "tva")),
        Peer(
            "isotonic",
            "netcal IsotonicRegression (ova)",
            nc,
            _netcal_binary("isotonic", "ova"),
            _data_seconds(0.05),
        ),
        Peer("isotonic", "netcal IsotonicRegression (tva)", nc, _netcal_binary("isotonic", "tva")),
        Peer(
            "isotonic",
            "sklearn CCV isotonic (ova)",
            sk,
            _sklearn_ccv("isotonic"),
            _data_seconds(0.05),
        ),
        Peer("platt", "netcal LogisticCalibration (tva)", nc, _netcal_binary("platt", "tva")),
        Peer("platt", "sklearn CCV sigmoid (ova)", sk, _sklearn_ccv("sigmoid"), _data_seconds(0.2)),
        Peer("beta", "netcal BetaCalibration (tva)", nc, _netcal_binary("beta", "tva")),
    ]
    return out
