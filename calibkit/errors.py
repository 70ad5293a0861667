"""The calibkit exception family.

Every error calibkit raises on purpose is a :class:`CalibkitError`; the CLI turns it into one line
on stderr and its :attr:`~CalibkitError.exit_code`. Anything else escaping the library is a bug.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "CalibkitError",
    "ConvergenceWarning",
    "ExitStatus",
    "InputError",
    "OutputError",
    "UsageError",
    "describe",
]


class ExitStatus(IntEnum):
    """Every exit status of the ``calibkit`` command (the README's exit-code table).

    >>> int(ExitStatus.BAD_INPUT), ExitStatus(130).name
    (2, 'INTERRUPTED')
    """

    OK = 0
    #: ``calibkit check``: at least one check failed (the command itself ran correctly).
    CHECK_FAILED = 1
    #: Bad usage, a bad input, or an output that cannot be written: one ``calibkit: error:`` line.
    BAD_INPUT = 2
    #: Ctrl-C (128 + SIGINT).
    INTERRUPTED = 130
    #: SIGTERM (128 + SIGTERM).
    TERMINATED = 143
    #: Click's status for an aborted prompt (calibkit never prompts) and the fast help's for a
    #: closed pipe: the same number as :attr:`CHECK_FAILED`, so an alias of it.
    ABORTED = 1


class CalibkitError(Exception):
    """Base class of the errors calibkit raises deliberately."""

    exit_code: int = ExitStatus.BAD_INPUT


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
