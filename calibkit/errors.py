"""The calibkit exception family.

Every error calibkit raises on purpose is a :class:`CalibkitError`; the CLI turns it into one line
on stderr and its :attr:`~CalibkitError.exit_code`. Anything else escaping the library is a bug.
"""

from __future__ import annotations

__all__ = [
    "CalibkitError",
    "ConvergenceWarning",
    "InputError",
    "OutputError",
    "UsageError",
    "describe",
]


class CalibkitError(Exception):
    """Base class of the errors calibkit raises deliberately."""

    exit_code: int = 2


class InputError(CalibkitError, ValueError):
    """An input (file or array) that calibkit cannot use.

    The message always starts with the source, so a user knows which file is wrong:

    >>> str(InputError("val.npz", "key 'labels' not found"))
    "val.npz: key 'labels' not found"
    """

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


class UsageError(CalibkitError, ValueError):
    """Arguments that contradict each other or lie outside their range."""


class OutputError(CalibkitError, OSError):
    """An output that cannot be written (or would overwrite an input)."""

    def __init__(self, target: str, problem: str) -> None:
        self.target = target
        self.problem = problem
        super().__init__(f"{target}: {problem}")


def describe(err: BaseException, limit: int = 160) -> str:
    """A library exception's text as one short clause: first line, first sentence, clipped.

    >>> describe(ValueError("File is not a zip file.  More text follows."))
    'File is not a zip file'
    """
    text = " ".join(str(err).split()) or type(err).__name__
    first = text.split(". ")[0].rstrip(".")
    return first if len(first) <= limit else first[: limit - 3].rstrip() + "..."


class ConvergenceWarning(UserWarning):
    """A fit stopped before meeting its tolerance, or hit the bound of its range."""
