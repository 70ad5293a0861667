"""What every calibrator is: the :class:`Calibrator` protocol, its defaults, and a view.

A calibrator is a map fitted on held-out predictions that turns a chunk of scores (logits or
probabilities) into calibrated logits. Everything outside its own module (``compare``, the
reports, the rewriter behind ``apply-temp``, the calibrator JSON reader) uses it only through
this protocol and the registry (:mod:`calibkit.calibrators.registry`), so adding a method is one
module plus one :func:`~calibkit.calibrators.registry.register` call:

* **fit** from a prediction source, streaming (:meth:`Calibrator.fit_source`; with the metrics
  before and after, :meth:`Calibrator.fit_with_summaries`);
* **transform** a chunk: :meth:`Calibrator.calibrated_scores` (scores of the kind
  :attr:`Calibrator.output_kind`, what the view streams: logits for the scaling methods,
  probabilities for the binning ones, whose output is not a logit) and
  :meth:`Calibrator.transform` (what the rewriter writes: scores of the kind they came in for a
  logit-output method, probabilities for a probability-output one);
* **parameters** for display, ``name -> value`` (tables, JSON), with :attr:`Calibrator.symbols`
  to show them (``{"temperature": "T"}``): the scalar ones only (a method with array parameters
  shows their count and its hyper-parameters; the arrays are in its JSON document);
* **hyper-parameters** it accepts as fit options (``--param NAME=VALUE``),
  :attr:`Calibrator.hyperparameters`, read from text by :func:`read_hyperparameters`;
* how its fit **ended** (:class:`~calibkit.calibrators.outcome.FitOutcome`, in
  :meth:`Calibrator.fit_details` under ``"fit"``) for the methods fitted by optimisation;
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibkit.errors import InputError, Param, UsageError
from calibkit.metrics.binning import Binning
from calibkit.metrics.softmax import softmax
from calibkit.metrics.summary import CalibrationSummary, summarize
from calibkit.sources.predictions import (
    PredictionSource,
    ScoreKind,
    SourceView,
    input_reason,
    refuse_ragged,
)

__all__ = [
    "CALIBRATOR_FORMAT",
    "CalibratedPredictions",
    "CalibratedView",
    "Calibrator",
    "CalibratorBase",
    "Hyperparameter",
    "check_document",
    "document_input",
    "parameter_text",
    "read_hyperparameters",
    "require_scores",
]

#: Version of the calibrator JSON document (its ``calibkit_calibrator`` key).
CALIBRATOR_FORMAT = 1


@dataclass(frozen=True)
class Hyperparameter:
    """A fit option a method accepts as ``--param NAME=VALUE`` (and as ``fit_source(NAME=...)``).

    ``kind`` is ``float``, ``int`` or ``str``; ``choices`` lists the allowed strings;
    ``minimum`` is an inclusive lower bound for numbers (``exclusive_minimum`` makes it strict);
    ``default`` is what the fit uses when it is not given (``None``: chosen by the method, e.g.
    by cross-validation, said in ``help``).
    """

    name: str
    kind: type
    help: str
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    exclusive_minimum: bool = False
    #: Other spellings accepted on the command line (``"lam"`` for ``"lambda"``).
    aliases: tuple[str, ...] = field(default=())

    def parse(self, text: str) -> Any:
        """The value of ``text`` (a :class:`~calibkit.errors.UsageError` naming it if bad)."""
        import math

        where = Param("params").entry(self.name)
        if self.kind is str:
            if self.choices and text not in self.choices:
                known = ", ".join(self.choices)
                raise UsageError(where + f": {text!r} is not one of {known}")
            return text
        try:
            value: Any = int(text) if self.kind is int else float(text)
        except ValueError:
            what = "an integer" if self.kind is int else "a number"
            raise UsageError(where + f": {text!r} is not {what}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(where + f": {text!r} is not a finite number")
        if self.minimum is not None:
            low = self.minimum
            if value < low or (self.exclusive_minimum and value == low):
                sign = ">" if self.exclusive_minimum else ">="
                raise UsageError(where + f": must be {sign} {low:g}; got {text}")
        return value


def read_hyperparameters(method: Any, pairs: Mapping[str, str]) -> dict[str, Any]:
    """``{name: value}`` of the ``NAME=VALUE`` texts given for ``method`` (a class or
    instance with :attr:`Calibrator.hyperparameters`), aliases resolved to the names; an
    unknown name is a :class:`~calibkit.errors.UsageError` listing the known ones."""
    specs: tuple[Hyperparameter, ...] = tuple(getattr(method, "hyperparameters", ()))
    by_name = {s.name: s for s in specs} | {a: s for s in specs for a in s.aliases}
    out: dict[str, Any] = {}
    for name, text in pairs.items():
        spec = by_name.get(name)
        if spec is None:
            known = ", ".join(s.name for s in specs) or "none"
            raise UsageError(
                Param("params").entry(name)
                + f": {getattr(method, 'method', '?')!r} has no parameter {name!r} "
                f"(its parameters: {known})"
            )
        if spec.name in out:
            raise UsageError(Param("params").entry(spec.name) + ": given twice")
        out[spec.name] = spec.parse(text)
    return out


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
    #: The kind of :meth:`calibrated_scores`: ``"logits"`` (scaling methods) or ``"probs"``
    #: (binning methods and mixtures, whose outputs are probabilities, not logits).
    output_kind: ClassVar[ScoreKind]
    #: The fit options it accepts (``--param NAME=VALUE``), in the order they are documented.
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]]

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

    def calibrated_scores(self, scores: NDArray[Any], kind: str) -> NDArray[np.float64]:
        """Calibrated scores (float64) of :attr:`output_kind` of a validated ``(n, K)`` chunk
        of ``kind`` scores: logits, or probabilities whose rows sum to 1."""

    def transform(self, scores: ArrayLike, kind: str = "logits") -> NDArray[np.float64]:
        """Calibrated scores: of the same kind for a logit-output method (logits, or
        probabilities with rows summing to 1); probabilities for a probability-output one."""

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


def check_document(doc: Any, source: str, method: str | None = None) -> str:
    """The ``method`` of a calibrator document, after checking that it is one: a JSON object
    with ``calibkit_calibrator`` equal to :data:`CALIBRATOR_FORMAT` (else an
    :class:`InputError` naming ``source``). With ``method`` (what a class's ``from_dict``
    reads), a document of another method is refused too: one registered (or a plugin's) is
    named with the hint to read it through the registry, any other is unknown."""
    if not isinstance(doc, dict):
        raise InputError(source, "a calibrator must be a JSON object")
    version = doc.get("calibkit_calibrator")
    if type(version) is not int or version != CALIBRATOR_FORMAT:
        raise InputError(
            source,
            f"not a calibkit calibrator of format {CALIBRATOR_FORMAT} "
            f"(calibkit_calibrator = {version!r})",
        )
    found = doc.get("method")
    name = found if isinstance(found, str) else repr(found)
    if method is not None and name != method:
        from calibkit.calibrators import registry

        if registry.lookup(name) is not None:  # a plugin's method too (loaded on a miss)
            raise InputError(
                source,
                f"holds a {name!r} calibrator, not a {method} one "
                "(read it with calibkit.calibrators.registry.load)",
            )
        raise InputError(source, f"unknown calibration method {found!r}")
    return name


def document_input(doc: Mapping[str, Any], source: str) -> ScoreKind | None:
    """The ``input`` of a calibrator document (the kind of scores it was fitted on): ``None``,
    ``"logits"`` or ``"probs"``; anything else is an :class:`InputError` naming ``source``."""
    kind = doc.get("input")
    if kind not in (None, "logits", "probs"):
        raise InputError(source, f"input must be 'logits' or 'probs'; got {kind!r}")
    return kind


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
    output_kind: ClassVar[ScoreKind] = "logits"
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = ()
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

    def calibrated_logits(self, scores: NDArray[Any], kind: str) -> NDArray[np.float64]:
        """Calibrated logits of a chunk: what a logit-output method defines (the default
        :meth:`calibrated_scores` returns it). A probability-output method defines
        :meth:`calibrated_scores` instead and has no logits."""
        raise NotImplementedError(f"{type(self).__qualname__} outputs probabilities, not logits")

    def calibrated_scores(self, scores: NDArray[Any], kind: str) -> NDArray[np.float64]:
        """:meth:`calibrated_logits` (the scores of :attr:`output_kind` ``"logits"``)."""
        return self.calibrated_logits(scores, kind)

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
        """The calibrated logits, or for probabilities their softmax; a probability-output
        method's probabilities whatever the input."""
        out = self.calibrated_scores(np.asarray(scores), kind)
        if self.output_kind == "probs":
            return out
        return out if kind == "logits" else softmax(out)

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
    :meth:`calibrated_chunk` (float64 scores of :attr:`kind`, ``"logits"`` unless a subclass
    says otherwise), the labels as they are,
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
    calibrated scores (``kind``: the calibrator's ``output_kind``), so metrics after
    calibration cost one pass."""

    calibrator: Calibrator

    def __post_init__(self) -> None:
        # a map per class (vector, matrix, Dirichlet, 'ova' maps, ETS's uniform part) would mix
        # the pads of questions with fewer choices into the result
        if getattr(self.calibrator, "class_wise", False):
            refuse_ragged(self.base, self.calibrator.title)

    @property
    def calibrated_as(self) -> str:
        return self.calibrator.calibrated_as

    @property
    def kind(self) -> ScoreKind:
        return getattr(self.calibrator, "output_kind", "logits")

    def calibrated_chunk(self, scores: NDArray[Any]) -> NDArray[np.float64]:
        return self.calibrator.calibrated_scores(scores, self.base.kind)
