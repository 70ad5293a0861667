"""``[tool.calibkit.check]`` configuration for ``calibkit check``.

Looked up in ``pyproject.toml`` in the working directory or its nearest parent that has one, or
read from the file given with ``--config`` (a ``pyproject.toml`` with that table, or any TOML file
whose top level holds the keys). Keys are the long option names, with ``-`` or ``_``:

```toml
[tool.calibkit.check]
max-ece = 0.05
min-accuracy = 0.9
baseline = "baselines/model.npz"
max-increase = { ece = 0.01, nll = 0.02 }   # or "ece=0.01,nll=0.02"
bins = 15
binning = "width"
alpha = 0.05
bootstrap = 2000
seed = 0
group-by = "task"        # or "task,subject", or ["task", "subject"]
group-min-rows = 50
```

Command-line flags override the file. A relative ``baseline`` is relative to the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from calibkit.engine.settings import clip_repr, find_pyproject
from calibkit.errors import InputError, Param, UsageError
from calibkit.gate.checks import GateConfig
from calibkit.limits import MAX_BINS, MAX_REPLICATES, MAX_SEED
from calibkit.metrics import table as metric_table

__all__ = [
    "CHECK_KEYS",
    "check_keys",
    "find_pyproject",
    "gate_config",
    "load_check_config",
    "parse_increase",
    "parse_limits",
]

#: The keys that are not metric limits, and their types (in the order the error lists them).
OTHER_KEYS: dict[str, Any] = {
    "baseline": str, "max_increase": (str, dict), "bins": int, "binning": str, "alpha": float,
    "bootstrap": int, "seed": int, "unpaired": bool, "group_by": (str, list),
    "group_min_rows": int,
}  # fmt: skip


def check_keys() -> dict[str, Any]:
    """Every key of the check configuration and its type: the limit key of each metric of the
    table that has one (``max_ece`` ... ``min_accuracy``, see
    :func:`calibkit.metrics.table.limit_keys`), then :data:`OTHER_KEYS`."""
    return {**dict.fromkeys(metric_table.limit_keys(), float), **OTHER_KEYS}


#: The keys of the built-in metrics (the loader reads :func:`check_keys` when it runs).
CHECK_KEYS = check_keys()

#: Allowed ranges of the integer keys (see :mod:`calibkit.limits`).
INT_RANGES = {
    "bins": (1, MAX_BINS), "bootstrap": (1, MAX_REPLICATES), "seed": (0, MAX_SEED),
    "group_min_rows": (1, MAX_SEED),
}  # fmt: skip
#: The settings of :data:`INT_RANGES` as the parameters an error names.
_SETTING = {
    "bins": Param("bins"), "bootstrap": Param("bootstrap"), "seed": Param("seed"),
    "group_min_rows": Param("group_min_rows"),
}  # fmt: skip


def _toml(path: Path) -> dict[str, Any]:
    from calibkit.io.textfile import load_toml

    doc: dict[str, Any] = load_toml(path, "a TOML configuration")
    return doc


def parse_increase(
    spec: str | dict[str, Any], source: str | Param = Param("max_increase")
) -> dict[str, float]:
    """``"ece=0.01,nll=0.02"`` or ``{"ece": 0.01}`` -> ``{"ece": 0.01, ...}``; errors name
    ``source`` (the ``max_increase`` parameter, a file's key).

    >>> parse_increase("ece=0.01, nll=0.02")
    {'ece': 0.01, 'nll': 0.02}
    """
    return parse_limits(spec, source, "TOLERANCE", "tolerance")


def parse_limits(
    spec: str | dict[str, Any],
    source: str | Param,
    placeholder: str = "LIMIT",
    what: str = "limit",
) -> dict[str, float]:
    """``"NAME=NUMBER,..."`` or a mapping -> ``{name: number}`` (names lower-cased); errors
    name ``source`` and say ``METRIC=<placeholder>`` / ``<what> for NAME``.

    >>> parse_limits("ece_over=0.02", Param("max_values"))
    {'ece_over': 0.02}
    """
    items: list[tuple[str, Any]]
    if isinstance(spec, dict):
        items = list(spec.items())
    else:
        items = []
        for part in spec.split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            if not sep:
                raise UsageError(source + f": expected METRIC={placeholder}; got {part.strip()!r}")
            items.append((name.strip(), value.strip()))
    out: dict[str, float] = {}
    for name, value in items:
        if name.lower() in out:
            raise UsageError(source + f": {name.lower()!r} is given twice")
        try:
            out[name.lower()] = float(value)
        except (TypeError, ValueError):
            raise UsageError(
                source + f": {what} for {name!r} must be a number; got {value!r}"
            ) from None
    return out


def load_check_config(path: Path | None = None) -> tuple[dict[str, Any], Path | None]:
    """The check settings and the file they came from (``({}, None)`` when there is none).

    With ``path`` given, that file must exist; otherwise the nearest ``pyproject.toml`` is
    used if it has a ``[tool.calibkit.check]`` table.
    """
    explicit = path is not None
    file = path if explicit else find_pyproject()
    if file is None:
        return {}, None
    doc = _toml(file)
    levels = ("tool", "calibkit", "check")
    table: Any = doc
    for depth, level in enumerate(levels, 1):  # each level, where present, must be a table
        table = table.get(level)
        if table is None:
            break
        if not isinstance(table, dict):
            where = ".".join(levels[:depth])
            raise InputError(str(file), f"[{where}] must be a table; got {clip_repr(table)}")
    if table is None:
        if not explicit:
            return {}, None
        table = {k: v for k, v in doc.items() if k != "tool"}
    out: dict[str, Any] = {}
    keys = check_keys()
    for key, value in table.items():
        norm = key.replace("-", "_")
        if norm not in keys and norm[:4] in ("max_", "min_") and metric_table.resolve([norm[4:]]):
            keys = check_keys()  # a plugin's metric
        if norm not in keys:
            raise InputError(
                str(file),
                f"unknown key {key!r} in the check configuration; known: "
                + ", ".join(k.replace("_", "-") for k in keys),
            )
        want = keys[norm]
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        wrong_bool = isinstance(value, bool) and want is not bool  # True is an int too
        if wrong_bool or not isinstance(value, want):
            raise InputError(str(file), f"{key} has the wrong type: {clip_repr(value)}")
        if norm in INT_RANGES and not INT_RANGES[norm][0] <= value <= INT_RANGES[norm][1]:
            low, high = INT_RANGES[norm]
            raise InputError(str(file), f"{key} must be from {low} to {high}; got {value}")
        names = value if norm == "group_by" and isinstance(value, list) else ["-"]
        if not names or not all(isinstance(v, str) for v in names):
            raise InputError(str(file), f"{key} must be a list of column names")
        if norm == "max_increase":
            value = parse_increase(value, f"{file}: max-increase")
        if norm == "baseline":
            value = str((file.parent / value) if not Path(value).is_absolute() else Path(value))
        out[norm] = value
    return out, file


def gate_config(settings: dict[str, Any]) -> GateConfig:
    """A :class:`~calibkit.gate.checks.GateConfig` from merged settings (file, then flags).

    Limits are the keys ``max_<metric>`` / ``min_<metric>`` (the config keys of the table's
    metrics, and those that ``check --max NAME=LIMIT`` / ``--min`` give), in settings order;
    an unknown metric is refused by :class:`~calibkit.gate.checks.GateConfig`.
    """
    for key, (low, high) in INT_RANGES.items():  # (a file's values were checked when read)
        value = settings.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            raise UsageError(_SETTING[key] + f" must be from {low} to {high}; got {value}")
    limits = {
        k: v for k, v in settings.items() if k[:4] in ("max_", "min_") and k not in OTHER_KEYS
    }
    return GateConfig(
        max_values={k[4:]: v for k, v in limits.items() if k.startswith("max_")},
        min_values={k[4:]: v for k, v in limits.items() if k.startswith("min_")},
        max_increase=settings.get("max_increase", {}),
        n_bins=settings.get("bins", 15),
        binning=settings.get("binning", "width"),
        alpha=settings.get("alpha", 0.05),
        bootstrap=settings.get("bootstrap", 2000),
        seed=settings.get("seed", 0),
    )
