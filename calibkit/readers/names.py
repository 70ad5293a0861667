"""Key and column names shown in one-line messages: escaped, clipped, listed.

Every reader and validator names keys and columns through these, so that a crafted name (a
newline, a megabyte of digits) can never break the one error line.
"""

from __future__ import annotations

from collections.abc import Collection

__all__ = ["LISTING_LIMIT", "NAME_LIMIT", "listing", "quoted", "shown"]

#: Longest name a message shows whole; longer ones are clipped in the middle.
NAME_LIMIT = 64
#: Most names a message lists ("keys present: ...").
LISTING_LIMIT = 30


def _clipped(name: str) -> str:
    if len(name) <= NAME_LIMIT:
        return name
    return f"{name[: NAME_LIMIT - 24]}...{name[-12:]} ({len(name)} characters)"


def shown(name: str) -> str:
    """A key or column name safe for a one-line message (control characters escaped, a very
    long name clipped in the middle).

    >>> shown("logits"), shown("a\\nb")
    ('logits', "'a\\\\nb'")
    >>> shown("logit_" + "9" * 5000)
    'logit_9999999999999999999999999999999999...999999999999 (5006 characters)'
    """
    name = _clipped(name)
    return name if name.isprintable() else repr(name)


def quoted(name: str) -> str:
    """A name in quotes for a message, like ``repr``, clipped as :func:`shown` clips it.

    >>> quoted("p0"), quoted("a\\nb")
    ("'p0'", "'a\\\\nb'")
    """
    return repr(_clipped(name))


def listing(keys: Collection[str]) -> str:
    """The names present, sorted, for a message (``"none"``; at most :data:`LISTING_LIMIT`).

    >>> listing(["b", "a"]), listing([])
    ('a, b', 'none')
    """
    if not keys:
        return "none"
    names = sorted(keys)
    listed = ", ".join(shown(k) for k in names[:LISTING_LIMIT])
    if len(names) > LISTING_LIMIT:
        listed += f", ... ({len(names)} in all)"
    return listed
