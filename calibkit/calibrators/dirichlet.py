"""Dirichlet calibration with ODIR (Kull et al. 2019): ``softmax(W log p + b)``.

``log p`` is the log-softmax of the logits (finite for any finite logits), or the log of
stored probabilities. A stored probability of exactly 0 has no log: the fit refuses such a file
with a one-line error unless ``--param floor=VALUE`` (``0 < floor < 1``, e.g. ``1e-12``) says
to read 0 as ``floor``; the floor is kept in the calibrator JSON and used again when applying
it. The fit, penalty (λ on the off-diagonal weights, μ on the intercepts, chosen by
cross-validation unless given) and JSON document are those of
:class:`~calibkit.calibrators.linear.LinearCalibrator`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from calibkit.calibrators import registry
from calibkit.calibrators.base import Hyperparameter
from calibkit.calibrators.linear import (
    Feature,
    LinearCalibrator,
    Structure,
    _max_iter,
    _max_passes,
)
from calibkit.calibrators.matrix import odir_hyperparameters

__all__ = ["DirichletCalibrator"]


class DirichletCalibrator(LinearCalibrator):
    """A fitted Dirichlet calibration (ODIR): ``W``, ``b``, ``lambda``, ``mu`` (and ``floor``)."""

    method: ClassVar[str] = "dirichlet-odir"
    title: ClassVar[str] = "Dirichlet calibration (ODIR)"
    abbreviation: ClassVar[str] = "Dir-ODIR"
    calibrated_as: ClassVar[str] = "Dirichlet-calibrated"
    symbols: ClassVar[Mapping[str, str]] = {"n_parameters": "params", "lambda": "λ", "mu": "μ"}
    structure: ClassVar[Structure] = "matrix"
    feature: ClassVar[Feature] = "log_probs"
    regularised: ClassVar[bool] = True
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = (
        *odir_hyperparameters(),
        Hyperparameter(
            "floor",
            float,
            "read stored probabilities of exactly 0 as this value (0 < floor < 1); without "
            "it such a file is refused",
            minimum=0.0,
            exclusive_minimum=True,
        ),
        _max_iter(),
        _max_passes(),
    )


registry.register(DirichletCalibrator.method, DirichletCalibrator)
