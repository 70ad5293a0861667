"""Toy calibrators for the tests of ``compare --method`` (tests/unit/test_comparison_methods.py,
tests/cli/test_compare_methods.py): registered by the ``toys`` fixture, unregistered after.

* ``toy-bias`` (logit output, ``changes_argmax``): adds ``strength`` (a ``--param``, default 2)
  to the logit of class 0, which moves the argmax of rows whose class 0 was close; its fit is
  one streamed pass that counts rows and records a :class:`FitOutcome` (``converge=no`` makes it
  say it did not converge).
* ``toy-mix`` (probability output): ``(1 - w) softmax(z) + w / K`` with ``w`` the
  ``weight`` parameter (default 0.1): a convex mix with the uniform, which keeps the argmax.
* ``toy-binary``: refuses any input with more than two classes (a method that does not apply).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest

from calibkit.calibrators import registry
from calibkit.calibrators.base import (
    CALIBRATOR_FORMAT,
    CalibratorBase,
    Hyperparameter,
    check_document,
)
from calibkit.calibrators.outcome import FitOutcome
from calibkit.engine.passes import run_pass
from calibkit.errors import InputError, UsageError
from calibkit.metrics.softmax import softmax


def _logits(scores: np.ndarray, kind: str) -> np.ndarray:
    z = np.array(scores, dtype=np.float64)
    return np.log(np.maximum(z, np.finfo(np.float64).tiny)) if kind == "probs" else z


@dataclass(frozen=True)
class ToyBias(CalibratorBase):
    method: ClassVar[str] = "toy-bias"
    title: ClassVar[str] = "toy class-0 bias"
    abbreviation: ClassVar[str] = "TB"
    calibrated_as: ClassVar[str] = "toy-biased"
    symbols: ClassVar[Mapping[str, str]] = {"strength": "s"}
    changes_argmax: ClassVar[bool] = True
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = (
        Hyperparameter("strength", float, "added to the logit of class 0", default=2.0),
        Hyperparameter(
            "converge", str, "say the fit converged", default="yes", choices=("yes", "no")
        ),
    )

    strength: float
    fit: FitOutcome | None = None
    fitted_on: str | None = None
    n_classes: int | None = None

    @classmethod
    def fit_source(
        cls,
        source: Any,
        *,
        chunk_rows: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> ToyBias:
        rows = [0]

        def count(chunk: Any) -> int:
            return chunk.rows

        def merge(n: int) -> None:
            rows[0] += n

        run_pass(source, count, merge, chunk_rows=chunk_rows)
        converge = options.get("converge", "yes") == "yes"
        outcome = FitOutcome(
            objective=1.0,
            gradient_norm=0.0 if converge else 1.0,
            iterations=1,
            passes=1,
            solver="toy",
            message="done" if converge else "iteration limit",
            n=rows[0],
        )
        return cls(float(options.get("strength", 2.0)), outcome, source.source, source.n_classes)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, float]) -> ToyBias:
        return cls(float(parameters["strength"]))

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<calibrator>") -> ToyBias:
        if check_document(doc, source) != cls.method:
            raise InputError(source, "not a toy-bias calibrator")
        return cls(float(doc["strength"]), FitOutcome.from_dict(doc.get("fit"), source=source))

    def parameters(self) -> dict[str, float]:
        return {"strength": self.strength}

    def calibrated_logits(self, scores: np.ndarray, kind: str) -> np.ndarray:
        z = _logits(scores, kind)
        z[:, 0] += self.strength
        return z

    def fit_details(self) -> dict[str, Any]:
        return {**super().fit_details(), "fit": self.fit.to_dict() if self.fit else None}

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibkit_calibrator": CALIBRATOR_FORMAT,
            "method": self.method,
            "strength": self.strength,
            "fit": self.fit.to_dict() if self.fit else None,
        }


@dataclass(frozen=True)
class ToyMix(CalibratorBase):
    method: ClassVar[str] = "toy-mix"
    title: ClassVar[str] = "toy uniform mix"
    abbreviation: ClassVar[str] = "TM"
    calibrated_as: ClassVar[str] = "toy-mixed"
    symbols: ClassVar[Mapping[str, str]] = {"weight": "w"}
    changes_argmax: ClassVar[bool] = False
    output_kind: ClassVar[Any] = "probs"
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = (
        Hyperparameter(
            "weight", float, "weight of the uniform", default=0.1, minimum=0.0, aliases=("w",)
        ),
    )

    weight: float
    fitted_on: str | None = None
    n_classes: int | None = None

    @classmethod
    def fit_source(
        cls,
        source: Any,
        *,
        chunk_rows: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> ToyMix:
        return cls(float(options.get("weight", 0.1)), source.source, source.n_classes)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, float]) -> ToyMix:
        return cls(float(parameters["weight"]))

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<calibrator>") -> ToyMix:
        if check_document(doc, source) != cls.method:
            raise InputError(source, "not a toy-mix calibrator")
        return cls(float(doc["weight"]))

    def parameters(self) -> dict[str, float]:
        return {"weight": self.weight}

    def calibrated_scores(self, scores: np.ndarray, kind: str) -> np.ndarray:
        p = softmax(_logits(scores, kind))
        out: np.ndarray = (1.0 - self.weight) * p + self.weight / p.shape[1]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibkit_calibrator": CALIBRATOR_FORMAT,
            "method": self.method,
            "weight": self.weight,
        }


@dataclass(frozen=True)
class ToyBinary(ToyMix):
    method: ClassVar[str] = "toy-binary"
    title: ClassVar[str] = "toy binary-only"
    abbreviation: ClassVar[str] = "TBO"

    @classmethod
    def fit_source(
        cls,
        source: Any,
        *,
        chunk_rows: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> ToyBinary:
        if source.n_classes > 2:
            raise UsageError(
                f"{source.source}: toy binary-only needs 2 classes; this input has "
                f"{source.n_classes}"
            )
        return cls(0.0, source.source, source.n_classes)


TOYS = (ToyBias, ToyMix, ToyBinary)


@pytest.fixture
def toys() -> Iterator[None]:
    """The toy methods registered for one test, unregistered after it."""
    for cls in TOYS:
        registry.register(cls.method, cls)
    try:
        yield
    finally:
        for cls in TOYS:
            registry.unregister(cls.method)
