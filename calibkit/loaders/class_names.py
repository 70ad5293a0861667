"""Class names from a text file (``--class-names FILE``), one name a line, for the commands that
name classes (``penultimate``, ``mutual-info``): read through the small-text reader (a regular
file or a pipe, bounded in size, UTF-8; a device or directory is refused before any byte is
read).
"""

from __future__ import annotations

from pathlib import Path

from calibkit.errors import InputError
from calibkit.io.textfile import read_small_text

__all__ = ["read_class_names"]


def read_class_names(path: str | Path, n_classes: int | None = None) -> tuple[str, ...]:
    """The class names of a text file, one a line (UTF-8; a blank last line is ignored).

    Refused with one line each: an empty name, a name given twice, and, with ``n_classes``,
    a count other than ``n_classes``.
    """
    source = str(path)
    text = read_small_text(path, "a class-names file")
    lines = text.splitlines()
    names = [line.strip() for line in lines]
    if not names:
        raise InputError(source, "holds no class names (one a line)")
    for i, name in enumerate(names):
        if not name:
            raise InputError(source, f"line {i + 1} is empty; give one class name a line")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise InputError(
                source, f"class name {name!r} is on lines {seen[name] + 1} and {i + 1}"
            )
        seen[name] = i
    if n_classes is not None and len(names) != n_classes:
        raise InputError(source, f"holds {len(names)} class names for {n_classes} classes")
    return tuple(names)
