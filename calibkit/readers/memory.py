"""How much memory this process may use, so that oversized inputs are refused up front.

An input that does not fit is refused with a message saying how much it needs, instead of the
machine swapping or the process being killed. The limit is the smaller of ``MemAvailable`` in
``/proc/meminfo`` and the cgroup (container) memory limit; ``CALIBKIT_MEMORY_LIMIT`` (bytes)
overrides both. Where neither is known (not Linux), nothing is refused.

Readers call :func:`check_fits` with what a file DECLARES (``.npy`` headers, the zip directory,
tensor metadata), never its size on disk; the copies the validators make on top are estimated in
:mod:`calibkit.sources.memory`.
"""

from __future__ import annotations

import os
from pathlib import Path

from calibkit.errors import InputError

__all__ = ["STREAMING_HINT", "available_memory", "check_fits", "format_bytes"]

#: Appended to a "does not fit in memory" message about an input read whole.
STREAMING_HINT = (
    "; save the predictions as parquet (row groups of a few MB), which calibkit streams in "
    "bounded memory"
)


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> int | None:
    """Bytes this process can still allocate, or ``None`` when unknown."""
    env = os.environ.get("CALIBKIT_MEMORY_LIMIT")
    if env and env.isdigit():
        return int(env)
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    cg_max = _read_int("/sys/fs/cgroup/memory.max")
    cg_used = _read_int("/sys/fs/cgroup/memory.current")
    if cg_max is not None and cg_used is not None:
        limits.append(max(0, cg_max - cg_used))
    return min(limits) if limits else None


def format_bytes(n: float) -> str:
    """
    >>> format_bytes(3 * 1024**3)
    '3.0 GiB'
    >>> format_bytes(4 * 10**18)
    '3.5 EiB'
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"  # pragma: no cover


def check_fits(source: str, needed: int, *, hint: str = "") -> None:
    """Raise :class:`InputError` when ``needed`` bytes exceed what is available."""
    available = available_memory()
    if available is not None and needed > available:
        raise InputError(
            source,
            f"needs about {format_bytes(needed)} of memory to load, but only "
            f"{format_bytes(available)} is available{hint}",
        )
