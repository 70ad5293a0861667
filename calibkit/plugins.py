"""Plugins: modules outside calibkit that register calibrators, metrics, formats or executors.

A registration (``calibkit.calibrators.registry.register``, ``calibkit.metrics.table.register``,
``calibkit.readers.register``, ``calibkit.engine.executors.register_executor``) made in a
module of your own only holds in a process that imports that module. The ``calibkit`` command
imports it when it is a plugin, named in either of two ways:

* an entry point of the group ``calibkit.plugins`` in the installed distribution that ships
  it, e.g. in its ``pyproject.toml``::

      [project.entry-points."calibkit.plugins"]
      vector = "mypkg.calibkit_vector"            # a module: importing it registers
      other = "mypkg.plugin:register"             # or a function, called with no arguments

* the environment variable ``CALIBKIT_PLUGINS``: module names (or ``module:function``),
  separated by commas, e.g. ``CALIBKIT_PLUGINS=mypkg.calibkit_vector,myconf``.

:func:`load_plugins` imports them all, at most once per process, entry points first (sorted by
name) and then the modules of ``CALIBKIT_PLUGINS`` in their order. It costs nothing at start-up:
nobody calls it until a registry lookup misses (an unknown calibration method, metric, file
suffix or executor name); the registry then calls it and looks again once. A plugin that fails
to import is a :class:`~calibkit.errors.UsageError`, one line naming the plugin and what went
wrong (the other plugins are imported all the same).

This module imports only the standard library (``importlib.metadata`` when it runs) and
:mod:`calibkit.errors`.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from calibkit.errors import UsageError, describe

__all__ = ["ENTRY_POINT_GROUP", "ENV_VAR", "load_plugins", "plugins_loaded"]

#: The entry-point group of calibkit plugins.
ENTRY_POINT_GROUP = "calibkit.plugins"
#: The environment variable naming plugin modules, comma-separated.
ENV_VAR = "CALIBKIT_PLUGINS"

_lock = threading.RLock()
_state = "new"  # "new", then "loading" (while importing: a nested miss does not recurse), "done"


def plugins_loaded() -> bool:
    """Whether :func:`load_plugins` has run (or is running) in this process."""
    return _state != "new"


def _import(spec: str) -> None:
    """Import ``module`` or ``module:function`` (and call the function)."""
    module, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module.strip())
    if attr:
        for part in attr.strip().split("."):
            obj = getattr(obj, part)
        obj()


def _env_specs() -> list[str]:
    raw = os.environ.get(ENV_VAR, "")
    return [s.strip() for s in raw.split(",") if s.strip()]


def _entry_points() -> list[tuple[str, Callable[[], None]]]:
    from importlib.metadata import entry_points

    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    out: list[tuple[str, Callable[[], None]]] = []
    for ep in found:

        def run(ep: Any = ep) -> None:
            obj = ep.load()
            if getattr(ep, "attr", None) and callable(obj):
                obj()

        dist = getattr(getattr(ep, "dist", None), "name", None)
        where = f"entry point {ep.name} = {ep.value}" + (f" of {dist}" if dist else "")
        out.append((f"plugin {ep.name!r} ({where})", run))
    return out


def load_plugins() -> None:
    """Import every plugin, once per process; later calls (and a call made while a plugin is
    being imported) return at once. A registry whose lookup missed calls this, then looks again.

    Raises :class:`~calibkit.errors.UsageError` for the first plugin that failed to import
    (after trying all of them): ``plugin 'vec' (CALIBKIT_PLUGINS): cannot import: ...``.
    """
    global _state
    with _lock:
        if _state != "new":
            return
        _state = "loading"
        try:
            jobs = _entry_points()
        except Exception as err:  # a broken installation's metadata
            jobs = []
            first: UsageError | None = UsageError(
                f"cannot list the {ENTRY_POINT_GROUP!r} entry points: {describe(err)}"
            )
        else:
            first = None
        jobs += [(f"plugin {spec!r} ({ENV_VAR})", partial(_import, spec)) for spec in _env_specs()]
        try:
            for what, job in jobs:
                try:
                    job()
                except Exception as err:  # whatever a plugin raises
                    if first is None:
                        kind = type(err).__name__
                        first = UsageError(f"{what}: cannot import: {kind}: {describe(err)}")
        finally:
            _state = "done"
        if first is not None:
            raise first


def _reset() -> None:
    """Forget that the plugins were loaded (for tests; the modules stay imported)."""
    global _state
    with _lock:
        _state = "new"
