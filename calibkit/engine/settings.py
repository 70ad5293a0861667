"""Which engine runs the passes: the option, the environment, or ``[tool.calibkit]``.

Two engines: ``local`` (this machine's threads, :mod:`calibkit.engine.executors`; the default)
and ``dask`` (a ``distributed`` cluster, :mod:`calibkit.engine.dask_executor`). A command's
engine comes from the first of these that says anything, so a CI job can set it once:

1. the command's options, ``engine=`` / ``scheduler=`` (a scheduler alone means ``dask``);
2. the environment, ``CALIBKIT_ENGINE`` / ``CALIBKIT_SCHEDULER`` / ``CALIBKIT_DASK_WORKERS``;
3. the ``[tool.calibkit]`` table of the nearest ``pyproject.toml`` (the working directory or a
   parent)::

       [tool.calibkit]
       engine = "dask"
       scheduler = "tcp://scheduler.internal:8786"   # omit: a local cluster per command
       dask-workers = 4                               # local cluster size (default: the cores)

Everything here is resolved before any data is read; an unknown engine, a scheduler given
with the local engine or an unknown key of ``[tool.calibkit]`` is a usage error naming where it
came from.

>>> resolve_engine(None, None, environ={}, pyproject=None)
EngineSettings(engine='local', scheduler=None, workers=None, origin='default')
>>> resolve_engine(None, "tcp://10.0.0.1:8786", environ={}, pyproject=None).engine
'dask'
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from calibkit.errors import Message, Param, UsageError

__all__ = ["ENGINES", "EngineSettings", "engine_scope", "find_pyproject", "resolve_engine"]

Engine = Literal["local", "dask"]
ENGINES: tuple[Engine, ...] = ("local", "dask")
#: The keys of ``[tool.calibkit]`` itself (its sub-tables, such as ``check``, are other tools').
CONFIG_KEYS = ("engine", "scheduler", "dask-workers")
#: The sub-tables of ``[tool.calibkit]`` that other parts of calibkit read (and check).
SUBTABLES = ("check",)


@dataclass(frozen=True)
class EngineSettings:
    """The engine of a command, and where that came from (``origin``)."""

    engine: Engine
    scheduler: str | None = None
    #: Worker processes of a local Dask cluster (``None``: one per core).
    workers: int | None = None
    origin: str = "default"


def find_pyproject(start: Path | None = None) -> Path | None:
    """The nearest ``pyproject.toml`` in ``start`` (default: the working directory) or above."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _table(pyproject: Path) -> dict[str, Any]:
    from calibkit.io.textfile import load_toml

    doc = load_toml(pyproject, "a TOML configuration")
    table: Any = doc
    for where in ("tool", "tool.calibkit"):  # each level, where present, must be a table
        table = table.get(where.rpartition(".")[2], {})
        if not isinstance(table, dict):
            shown = repr(table) if len(repr(table)) <= 60 else repr(table)[:57] + "..."
            raise UsageError(f"{pyproject}: [{where}] must be a table; got {shown}")
    # the sub-tables (``[tool.calibkit.check]``) are other commands' to read and to check
    return {k: v for k, v in table.items() if not isinstance(v, dict) and k not in SUBTABLES}


def _engine(value: object, origin: str | Param | Message) -> Engine:
    for engine in ENGINES:
        if value == engine:
            return engine
    raise UsageError(origin + f": the engine must be one of {', '.join(ENGINES)}; got {value!r}")


def _workers(value: object, origin: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if isinstance(value, bool) or number < 1 or str(number) != str(value).strip():
        raise UsageError(f"{origin}: the number of Dask workers must be an integer >= 1")
    return number


def resolve_engine(
    engine: str | None,
    scheduler: str | None,
    *,
    environ: Mapping[str, str] | None = None,
    pyproject: Path | Literal["auto"] | None = "auto",
) -> EngineSettings:
    """The engine settings of a command (see the module docstring for the order).

    Each setting comes from the first layer that gives it. A scheduler means ``dask`` unless
    a higher layer chose ``local`` (``engine="local"`` overrides a configured cluster); a
    scheduler and ``local`` in the same layer contradict each other.
    """
    env = os.environ if environ is None else environ
    layers: list[tuple[str, dict[str, Any]]] = []
    options = {"engine": engine, "scheduler": scheduler}
    layers.append(("options", {k: v for k, v in options.items() if v is not None}))
    named = {
        "engine": env.get("CALIBKIT_ENGINE"),
        "scheduler": env.get("CALIBKIT_SCHEDULER"),
        "dask-workers": env.get("CALIBKIT_DASK_WORKERS"),
    }
    layers.append(("environment", {k: v for k, v in named.items() if v}))
    path = find_pyproject() if pyproject == "auto" else pyproject
    if path is not None:
        table = _table(path)
        unknown = sorted(set(table) - set(CONFIG_KEYS))
        if unknown:
            raise UsageError(
                f"{path}: unknown key {unknown[0]!r} in [tool.calibkit] "
                f"(known: {', '.join(CONFIG_KEYS)})"
            )
        layers.append((f"{path} [tool.calibkit]", table))

    def first(key: str) -> tuple[int, str, Any] | None:
        for level, (name, values) in enumerate(layers):
            if key in values:
                return level, name, values[key]
        return None

    words: dict[str, str | Param | Message] = {
        "options": Param("engine"),
        "environment": "CALIBKIT_ENGINE",
    }
    found_engine, found_address = first("engine"), first("scheduler")
    address: str | None = None
    if found_address is not None:
        level, name, value = found_address
        if not isinstance(value, str) or not value.strip():
            where = "CALIBKIT_SCHEDULER" if name == "environment" else name
            raise UsageError(f"{where}: the scheduler must be an address such as tcp://host:8786")
        address = value.strip()
    if found_engine is None:
        chosen: Engine = "dask" if address else "local"
        origin = found_address[1] if found_address else "default"
    else:
        level, origin, value = found_engine
        chosen = _engine(value, words.get(origin, origin))
        if chosen == "local" and found_address is not None:
            if found_address[0] == level:
                raise UsageError(
                    f"{words.get(origin, origin)}: a scheduler attaches to a Dask cluster; it "
                    "does not go with the local engine"
                    if origin != "options"
                    else Param("scheduler")
                    + " attaches to a Dask cluster; it does not go with "
                    + Param("engine", "local")
                )
            address = None  # a lower layer's cluster, overridden
    found_workers = first("dask-workers")
    workers = None
    if found_workers is not None and chosen == "dask":
        where = "CALIBKIT_DASK_WORKERS" if found_workers[1] == "environment" else found_workers[1]
        workers = _workers(found_workers[2], where)
    return EngineSettings(chosen, address if chosen == "dask" else None, workers, origin)


@contextmanager
def engine_scope(settings: EngineSettings, *, device: str | None = None) -> Iterator[None]:
    """Run the passes inside the block on ``settings``' engine (the local one: nothing to do).
    ``device`` (a torch device) runs passes on this machine and is refused with ``dask``."""
    if settings.engine == "local":
        yield
        return
    if device is not None:
        raise UsageError(
            Param("device")
            + " computes with torch on this machine; it does not go with "
            + Param("engine", "dask")
        )
    from calibkit.engine.dask_executor import dask_executor
    from calibkit.engine.executors import using_executor

    with dask_executor(settings.scheduler, workers=settings.workers) as ex, using_executor(ex):
        yield
