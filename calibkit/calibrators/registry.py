"""The calibration methods by name, and the calibrator JSON reader that dispatches on them.

Temperature scaling (``"temperature"``) registers itself in
:mod:`calibkit.calibrators.temperature`. A new method is one module defining a
:class:`~calibkit.calibrators.base.Calibrator` and one call::

    from calibkit.calibrators import registry
    registry.register("platt", PlattScaler)

after which ``compare_models(..., method="platt")``, the compare report, the rewriter and
:func:`load` (so ``apply-temp --calibrator``) handle it. Where the call goes: inside calibkit,
at the end of the method's module, which ``calibkit/calibrators/__init__.py`` imports (see
there); outside, in a plugin (:mod:`calibkit.plugins`): :func:`get` and :func:`from_dict`
import the plugins when a method is not registered, then look again.

:func:`from_dict` checks the document's envelope (a JSON object whose ``calibkit_calibrator``
is :data:`~calibkit.calibrators.base.CALIBRATOR_FORMAT`), then hands it to the class registered
under its ``method``; every problem is an :class:`~calibkit.errors.InputError` naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from calibkit.calibrators.base import Calibrator, check_document
from calibkit.errors import InputError, UsageError

__all__ = ["from_dict", "from_json", "get", "load", "lookup", "names", "register", "unregister"]

_METHODS: dict[str, type[Calibrator]] = {}


def register(name: str, cls: type[Any]) -> None:
    """Register ``cls`` under ``name`` (its ``method``). A name is registered once: a second
    registration (of any class) is refused with a :class:`ValueError`."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a calibration method needs a non-empty name; got {name!r}")
    if name in _METHODS:
        raise ValueError(
            f"calibration method {name!r} is already registered "
            f"({_METHODS[name].__module__}.{_METHODS[name].__qualname__})"
        )
    if getattr(cls, "method", None) != name:
        method = getattr(cls, "method", None)
        raise ValueError(f"{cls.__qualname__}.method is {method!r}, not {name!r}")
    _METHODS[name] = cls


def unregister(name: str) -> None:
    """Remove ``name`` (for tests that register a method of their own)."""
    _METHODS.pop(name, None)


def names() -> tuple[str, ...]:
    """The registered methods, in the order they were registered."""
    return tuple(_METHODS)


def lookup(name: object) -> type[Calibrator] | None:
    """The class of ``name``; on a miss the plugins are imported (once) and looked in again."""
    if not isinstance(name, str):
        return None
    cls = _METHODS.get(name)
    if cls is None:
        from calibkit.plugins import load_plugins

        load_plugins()
        cls = _METHODS.get(name)
    return cls


def get(name: str) -> type[Calibrator]:
    """The class registered under ``name`` (by calibkit or by a plugin, see
    :mod:`calibkit.plugins`); an unknown name is a :class:`~calibkit.errors.UsageError`
    naming the known ones."""
    cls = lookup(name)
    if cls is None:
        known = ", ".join(repr(n) for n in _METHODS) or "none"
        raise UsageError(f"unknown calibration method {name!r}; the known methods are {known}")
    return cls


def from_dict(doc: Any, *, source: str = "<calibrator>") -> Calibrator:
    """The calibrator a JSON document describes, of whichever registered method it names."""
    method = check_document(doc, source)
    cls = lookup(method)
    if cls is None:
        raise InputError(source, f"unknown calibration method {doc.get('method')!r}")
    return cls.from_dict(doc, source=source)


def from_json(text: str, *, source: str = "<calibrator>") -> Calibrator:
    from calibkit.io.textfile import parse_json

    return from_dict(parse_json(text, source), source=source)


def load(path: str | Path) -> Calibrator:
    """Read a calibrator JSON (a regular file or pipe of at most 16 MiB), any method."""
    from calibkit.io.textfile import read_small_text

    return from_json(read_small_text(path, "a calibrator JSON"), source=str(path))
