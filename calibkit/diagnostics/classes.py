"""Which classes a diagnostic looks at: ``"a,b,c"`` by index or by name, or the most frequent.

>>> select_classes("2,0,1", count=3, n_classes=4)
(2, 0, 1)
>>> select_classes("cat,dog", count=2, n_classes=3, names=["bird", "cat", "dog"])
(1, 2)
>>> select_classes(None, count=2, n_classes=4, frequencies=[5, 9, 9, 1])
(1, 2)
"""

from __future__ import annotations

from collections.abc import Sequence

from calibkit.errors import Message, Param, UsageError

__all__ = ["most_frequent", "select_classes"]


def most_frequent(frequencies: Sequence[float], count: int) -> tuple[int, ...]:
    """The ``count`` classes with the largest ``frequencies``, most frequent first; a tie goes
    to the lower index (so the choice never depends on sort stability)."""
    order = sorted(range(len(frequencies)), key=lambda k: (-float(frequencies[k]), k))
    return tuple(order[:count])


def select_classes(
    spec: str | Sequence[int | str] | None,
    *,
    count: int,
    n_classes: int,
    names: Sequence[str] | None = None,
    frequencies: Sequence[float] | None = None,
) -> tuple[int, ...]:
    """The ``count`` distinct class indices that ``spec`` names, in its order.

    ``spec`` is a comma-separated string or a sequence; each entry is a class index in
    ``[0, n_classes)`` or one of ``names`` (a name is tried first, so a class *named* ``"3"``
    is that class). Without ``spec`` the ``count`` most frequent classes (``frequencies``, e.g.
    label counts; most frequent first, ties to the lower index). Raises
    :class:`~calibkit.errors.UsageError` naming ``classes`` for a wrong count, an unknown name,
    an index out of range or a class named twice.
    """
    if n_classes < count:
        raise UsageError(Message(f"needs at least {count} classes; the data has {n_classes}"))
    if spec is None:
        if frequencies is None:
            return tuple(range(count))
        if len(frequencies) != n_classes:
            raise ValueError(f"{len(frequencies)} frequencies for {n_classes} classes")
        top = most_frequent(frequencies, count)
        if any(float(frequencies[k]) <= 0 for k in top):
            present = sum(1 for f in frequencies if float(f) > 0)
            raise UsageError(
                f"needs {count} classes that occur in the labels; only {present} do (name the "
                "classes with " + Param("classes") + ")"
            )
        return top
    tokens = [t.strip() for t in spec.split(",")] if isinstance(spec, str) else list(spec)
    if len(tokens) != count:
        raise UsageError(
            Param("classes", spec) + f" names {len(tokens)} classes; give exactly {count}"
        )
    lookup = {name: k for k, name in enumerate(names or ())}
    chosen: list[int] = []
    for token in tokens:
        index = _index(token, lookup, n_classes, spec)
        if index in chosen:
            raise UsageError(Param("classes", spec) + f" names class {index} twice")
        chosen.append(index)
    return tuple(chosen)


def _index(token: int | str, lookup: dict[str, int], n_classes: int, spec: object) -> int:
    if isinstance(token, str):
        if token in lookup:
            return lookup[token]
        try:
            index = int(token)
        except ValueError:
            known = (
                f" (known: {', '.join(list(lookup)[:10])})" if lookup else " (no class names given)"
            )
            raise UsageError(
                Param("classes", spec)
                + f": {token!r} is neither a class index nor a class name{known}"
            ) from None
    else:
        index = int(token)
    if not 0 <= index < n_classes:
        raise UsageError(
            Param("classes", spec) + f": class {index} is out of range [0, {n_classes})"
        )
    return index
