"""Matrix scaling: ``softmax(W z + b)``, ``K² + K`` parameters, unregularised (Guo et al. 2017,
``matrix``) or with ODIR (Kull et al. 2019, ``matrix-odir``).

The fit, JSON document and display are those of
:class:`~calibkit.calibrators.linear.LinearCalibrator` (read its module docstring for the
objective, the penalty's scaling and the solvers). Unregularised matrix scaling overfits when
``K`` is large for the data (at ``K = 100`` on 5000 rows one map separates the classes and no
minimum exists): the fit stops at ``max_iter`` and says so, and its numbers are kept, so that a
comparison shows it. ``matrix-odir`` penalises the off-diagonal weights (``λ``) and the
intercepts (``μ``); without ``--param lambda=... mu=...`` it chooses them by k-fold
cross-validation on the NLL (:mod:`calibkit.calibrators.cv`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from calibkit.calibrators import registry
from calibkit.calibrators.base import Hyperparameter
from calibkit.calibrators.linear import LinearCalibrator, Structure, _max_iter, _max_passes

__all__ = ["MatrixScaler", "OdirMatrixScaler", "odir_hyperparameters"]


def odir_hyperparameters() -> tuple[Hyperparameter, ...]:
    """``lambda`` (alias ``lam``), ``mu``, ``folds``, ``seed``: the ODIR options."""
    return (
        Hyperparameter(
            "lambda",
            float,
            "weight of the off-diagonal penalty λ/(K(K-1)) Σ_{i≠j} W_ij² (default: chosen by "
            "cross-validation)",
            minimum=0.0,
            aliases=("lam",),
        ),
        Hyperparameter(
            "mu",
            float,
            "weight of the intercept penalty μ/K Σ_j b_j² (default: chosen by cross-validation)",
            minimum=0.0,
        ),
        Hyperparameter("folds", int, "cross-validation folds", default=5, minimum=2),
        Hyperparameter("seed", int, "seed of the cross-validation folds", default=0, minimum=0),
    )


class MatrixScaler(LinearCalibrator):
    """A fitted (unregularised) matrix scaling: ``W`` (``(K, K)``) and ``b`` (``(K,)``)."""

    method: ClassVar[str] = "matrix"
    title: ClassVar[str] = "matrix scaling"
    abbreviation: ClassVar[str] = "MS"
    calibrated_as: ClassVar[str] = "matrix-scaled"
    symbols: ClassVar[Mapping[str, str]] = {"n_parameters": "params"}
    structure: ClassVar[Structure] = "matrix"
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = (_max_iter(), _max_passes())


class OdirMatrixScaler(LinearCalibrator):
    """A fitted matrix scaling with ODIR: ``W``, ``b`` and the ``lambda``, ``mu`` it used."""

    method: ClassVar[str] = "matrix-odir"
    title: ClassVar[str] = "matrix scaling (ODIR)"
    abbreviation: ClassVar[str] = "MS-ODIR"
    calibrated_as: ClassVar[str] = "matrix-scaled (ODIR)"
    symbols: ClassVar[Mapping[str, str]] = {"n_parameters": "params", "lambda": "λ", "mu": "μ"}
    structure: ClassVar[Structure] = "matrix"
    regularised: ClassVar[bool] = True
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = (
        *odir_hyperparameters(),
        _max_iter(),
        _max_passes(),
    )


registry.register(MatrixScaler.method, MatrixScaler)
registry.register(OdirMatrixScaler.method, OdirMatrixScaler)
