"""Vector scaling (Guo et al. 2017): ``softmax(w ⊙ z + b)``, ``2K`` parameters, fitted exactly.

The family's fit, JSON document and display are those of
:class:`~calibkit.calibrators.linear.LinearCalibrator`: the mean NLL (no penalty) minimised by
Newton's method from the temperature-scaling solution (``w = 1/T``, ``b = 0``), to a gradient of
``1e-8`` relative (:mod:`calibkit.calibrators.outcome`). Probability inputs are scaled on
``log p``, as temperature scaling reads them. It can change the argmax.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from calibkit.calibrators import registry
from calibkit.calibrators.base import Hyperparameter
from calibkit.calibrators.linear import LinearCalibrator, Structure, _max_iter, _max_passes

__all__ = ["VectorScaler"]


class VectorScaler(LinearCalibrator):
    """A fitted vector scaling: ``w`` (``(K,)``) and ``b`` (``(K,)``)."""

    method: ClassVar[str] = "vector"
    title: ClassVar[str] = "vector scaling"
    abbreviation: ClassVar[str] = "VS"
    calibrated_as: ClassVar[str] = "vector-scaled"
    symbols: ClassVar[Mapping[str, str]] = {"n_parameters": "params"}
    structure: ClassVar[Structure] = "vector"
    weights_key: ClassVar[str] = "w"
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = (_max_iter(), _max_passes())


registry.register(VectorScaler.method, VectorScaler)
