"""What every calibrator is: the :class:`Calibrator` protocol, its defaults, and a view.

A calibrator is a map fitted on held-out predictions that turns a chunk of scores (logits or
probabilities) into calibrated logits. Everything outside its own module (``compare``, the
reports, the rewriter behind ``apply-temp``, the calibrator JSON reader) uses it only through
this protocol and the registry (:mod:`calibkit.calibrators.registry`), so adding a method is one
module plus one :func:`~calibkit.calibrators.registry.register` call:

* **fit** from a prediction source, streaming (:meth:`Calibrator.fit_source`; with the metrics
  before and after, :meth:`Calibrator.fit_with_summaries`);
* **transform** a chunk: :meth:`Calibrator.calibrated_logits` (what the view streams) and
  :meth:`Calibrator.transform` (scores of the kind they came in, what the rewriter writes);
* **parameters** for display, ``name -> value`` (tables, JSON), with :attr:`Calibrator.symbols`
  to show them (``{"temperature": "T"}``);
* :attr:`Calibrator.changes_argmax`: whether accuracy can change (then reports show it after);
* a **JSON document** (:meth:`Calibrator.to_dict` / :meth:`Calibrator.from_dict`): an object
  with ``"calibkit_calibrator": 1`` (:data:`CALIBRATOR_FORMAT`, the document's version) and
  ``"method"`` (the registry name) that the registry dispatches on, plus the method's own keys;
* a view, :class:`CalibratedPredictions`, that applies any calibrator to a source (a
  :class:`CalibratedView`, the one streaming code of every calibrated view).

:class:`CalibratorBase` supplies the defaults a new method can keep: the probabilities of
:meth:`~Calibrator.transform` as the softmax of the calibrated logits, the metrics before and
after from two passes, ``to_json``/``from_json``/``load``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibkit.errors import InputError, UsageError
from calibkit.metrics.binning import Binning
from calibkit.metrics.softmax import softmax
from calibkit.metrics.summary import CalibrationSummary, summarize
from calibkit.sources.predictions import PredictionSource, ScoreKind, SourceView, input_reason

__all__ = [
    "CALIBRATOR_FORMAT",
    "CalibratedPredictions",
    "CalibratedView",
    "Calibrator",
    "CalibratorBase",
    "check_document",
    "parameter_text",
    "require_scores",
]

#: Version of the calibrator JSON document (its ``calibkit_calibrator`` key).
CALIBRATOR_FORMAT = 1


@runtime_checkable
class Calibrator(Protocol):
    """A fitted calibrator (see the module docstring)."""

    #: The registry name, and the ``method`` of its JSON document.
    method: ClassVar[str]
    #: What it is called in text: ``"temperature scaling"``.
    title: ClassVar[str]
    #: The short name of its columns and panels (``"TS"``); lower-cased, the prefix of its keys
    #: in ``compare --json`` (``ts_fitted_on``, ``ts``, ``ts_ci``).
    abbreviation: ClassVar[str]
    #: How calibrated scores are described: ``"temperature-scaled"`` (``input_reason``).
    calibrated_as: ClassVar[str]
    #: How each parameter is shown: ``{"temperature": "T"}``; also the order of the parameters.
    symbols: ClassVar[Mapping[str, str]]
    #: Whether the calibrated argmax can differ from the original one (accuracy can change).
    changes_argmax: ClassVar[bool]
    #: A parameter that is a temperature, marked on the temperature sweep of a compare report.
    sweep_parameter: ClassVar[str | None]

    @property
    def fitted_on(self) -> str | None:
        """The source it was fitted on (``None`` when it was given, not fitted)."""

    @property
    def n_classes(self) -> int | None:
        """The number of classes it was fitted on, when known."""

    @classmethod
    def fit_source(
        cls,
        source: PredictionSource,
        *,
        chunk_rows: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> Calibrator:
        """Fit on ``source``, streaming its chunks."""

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
    ) -> tuple[Calibrator, CalibrationSummary, CalibrationSummary]:
        """Fit on ``source``; also its metrics before and after calibration."""

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, float]) -> Calibrator:
        """The calibrator with these parameters (``{"temperature": 2.0}``), not fitted."""

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<calibrator>") -> Calibrator:
        """Read its JSON document (refusing anything else with an :class:`InputError`)."""

    def parameters(self) -> dict[str, float]:
        """Its parameters, ``name -> value``, in the order of :attr:`symbols`."""

    def calibrated_logits(self, scores: NDArray[Any], kind: str) -> NDArray[np.float64]:
        """Calibrated logits (float64) of a validated ``(n, K)`` chunk of ``kind`` scores."""

    def transform(self, scores: ArrayLike, kind: str = "logits") -> NDArray[np.float64]:
        """Calibrated scores of the same kind: logits, or probabilities (rows summing to 1)."""

    def summaries(
        self,
        source: PredictionSource,
        *,
        n_bins: int = 15,
        binning: Binning = "width",
        chunk_rows: int | None = None,
        device: str | None = None,
    ) -> tuple[CalibrationSummary, CalibrationSummary]:
        """The metrics of ``source`` as given and after calibration."""

    def fit_details(self) -> dict[str, Any]:
        """JSON-ready facts of the fit, the parameters first (``fit-temp --json``'s head)."""

    def to_dict(self) -> dict[str, Any]:
        """Its JSON document."""


def parameter_text(calibrator: Calibrator, spec: str = ".6g") -> str:
    """Its parameters as text, each value formatted with ``spec``: ``"T = 2.5"``.

    >>> from calibkit.calibrators.temperature import TemperatureScaler
    >>> parameter_text(TemperatureScaler(2.5)), parameter_text(TemperatureScaler(2.5), ".3f")
    ('T = 2.5', 'T = 2.500')
    """
    values = calibrator.parameters()
    return ", ".join(
        f"{symbol} = {values[name]:{spec}}" for name, symbol in calibrator.symbols.items()
    )


def require_scores(source: PredictionSource, title: str = "temperature scaling") -> None:
    """A calibrator needs logits or probabilities, not confidence-only rows."""
    if source.kind not in ("logits", "probs"):
        raise UsageError(
            f"{source.source}: {title} needs logits or probabilities; this file "
            "holds only confidences and correctness"
        )


def check_document(doc: Any, source: str) -> str:
    """The ``method`` of a calibrator document, after checking that it is one: a JSON object
    with ``calibkit_calibrator`` equal to :data:`CALIBRATOR_FORMAT` (else an
    :class:`InputError` naming ``source``)."""
    if not isinstance(doc, dict):
        raise InputError(source, "a calibrator must be a JSON object")
    version = doc.get("calibkit_calibrator")
    if type(version) is not int or version != CALIBRATOR_FORMAT:
        raise InputError(
            source,
            f"not a calibkit calibrator of format {CALIBRATOR_FORMAT} "
            f"(calibkit_calibrator = {version!r})",
        )
    method = doc.get("method")
    return method if isinstance(method, str) else repr(method)


class CalibratorBase(ABC):
    """Defaults for a :class:`Calibrator`: subclass it and define the abstract methods and the
    class attributes (``method``, ``title``, ``abbreviation``, ``calibrated_as``, ``symbols``,
    ``changes_argmax``), then register the class."""

    method: ClassVar[str]
    title: ClassVar[str]
    abbreviation: ClassVar[str]
    calibrated_as: ClassVar[str]
    symbols: ClassVar[Mapping[str, str]]
    changes_argmax: ClassVar[bool] = True
    sweep_parameter: ClassVar[str | None] = None
    #: Advice appended when calibrated scores overflow the output's number type.
    overflow_hint: ClassVar[str] = ""

    @classmethod
    @abstractmethod
    def fit_source(
        cls,
        source: PredictionSource,
        *,
        chunk_rows: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> Calibrator: ...

    @classmethod
    @abstractmethod
    def from_parameters(cls, parameters: Mapping[str, float]) -> Calibrator: ...

    @classmethod
    @abstractmethod
    def from_dict(cls, doc: Any, *, source: str = "<calibrator>") -> Self: ...

    @abstractmethod
    def parameters(self) -> dict[str, float]: ...

    @abstractmethod
    def calibrated_logits(self, scores: NDArray[Any], kind: str) -> NDArray[np.float64]: ...

    @abstractmethod
    def to_dict(self) -> dict[str, Any]: ...

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
    ) -> tuple[Calibrator, CalibrationSummary, CalibrationSummary]:
        """:meth:`fit_source`, then :meth:`summaries` (two more passes)."""
        calibrator = cls.fit_source(source, chunk_rows=chunk_rows, device=device, **options)
        before, after = calibrator.summaries(
            source, n_bins=n_bins, binning=binning, chunk_rows=chunk_rows, device=device
        )
        return calibrator, before, after

    def transform(self, scores: ArrayLike, kind: str = "logits") -> NDArray[np.float64]:
        """The calibrated logits, or for probabilities their softmax."""
        z = self.calibrated_logits(np.asarray(scores), kind)
        return z if kind == "logits" else softmax(z)

    def summaries(
        self,
        source: PredictionSource,
        *,
        n_bins: int = 15,
        binning: Binning = "width",
        chunk_rows: int | None = None,
        device: str | None = None,
    ) -> tuple[CalibrationSummary, CalibrationSummary]:
        """:func:`~calibkit.metrics.summary.summarize` of ``source`` and of the
        :class:`CalibratedPredictions` view (two passes; ``device`` is not used)."""
        me: Any = self
        kw: dict[str, Any] = {"n_bins": n_bins, "binning": binning, "chunk_rows": chunk_rows}
        return summarize(source, **kw), summarize(CalibratedPredictions(source, me), **kw)

    def fit_details(self) -> dict[str, Any]:
        return {**self.parameters(), "fitted_on": getattr(self, "fitted_on", None)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "<calibrator>") -> Self:
        from calibkit.io.textfile import parse_json

        return cls.from_dict(parse_json(text, source), source=source)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a calibrator JSON (a regular file or pipe of at most 16 MiB)."""
        from calibkit.io.textfile import read_small_text

        return cls.from_json(read_small_text(path, "a calibrator JSON"), source=str(path))


@dataclass(frozen=True, eq=False)
class CalibratedView(SourceView):
    """What every calibrated view is: it streams ``base`` with each chunk's scores replaced by
    :meth:`calibrated_chunk` (float64 logits; ``kind`` ``"logits"``), the labels as they are,
    so metrics after calibration cost one pass. A subclass gives :meth:`calibrated_chunk` and
    :attr:`calibrated_as`: :class:`CalibratedPredictions` (any calibrator),
    :class:`~calibkit.calibrators.temperature.ScaledPredictions` (a ``beta`` alone)."""

    base: PredictionSource

    @property
    def calibrated_as(self) -> str:
        """How its scores are described (``"temperature-scaled"``)."""
        raise NotImplementedError

    @property
    def kind(self) -> ScoreKind:
        return "logits"

    @property
    def kind_reason(self) -> str:
        base = input_reason(self.base)
        return f"{self.calibrated_as} {self.base.kind}" + (f" ({base})" if base else "")

    def chunks(
        self, chunk_rows: int | None = None
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[Any]]]:
        for scores, labels in self.base.chunks(chunk_rows):
            yield self.calibrated_chunk(scores), labels

    def calibrated_chunk(self, scores: NDArray[Any]) -> NDArray[np.float64]:
        """The calibrated logits of one chunk of ``base``'s scores."""
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class CalibratedPredictions(CalibratedView):
    """A view of predictions with every chunk calibrated by ``calibrator``: it streams the
    calibrated logits (``kind`` ``"logits"``), so metrics after calibration cost one pass."""

    calibrator: Calibrator

    @property
    def calibrated_as(self) -> str:
        return self.calibrator.calibrated_as

    def calibrated_chunk(self, scores: NDArray[Any]) -> NDArray[np.float64]:
        return self.calibrator.calibrated_logits(scores, self.base.kind)
