"""The calibkit exception family.

Every error calibkit raises on purpose is a :class:`CalibkitError`; the CLI turns it into one line
on stderr and its :attr:`~CalibkitError.exit_code`. Anything else escaping the library is a bug.

A library error speaks of the library's parameters, never of command-line flags: a message that
names a parameter holds it as a :class:`Param` (``Param("n_bins") + " must be >= 1"``, a
:class:`Message`). ``str(err)`` says ``n_bins must be >= 1``; the CLI prints
``err.render(FLAGS)``, in which each parameter is its flag (``--bins must be >= 1``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any

__all__ = [
    "CalibkitError",
    "ConvergenceWarning",
    "ExitStatus",
    "InputError",
    "Message",
    "OutputError",
    "Param",
    "UsageError",
    "describe",
    "render",
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
    #: The distributed engine failed (no scheduler, no workers, a task that keeps killing its
    #: workers): the inputs may be fine, and no check was decided.
    ENGINE_FAILED = 3
    #: Ctrl-C (128 + SIGINT).
    INTERRUPTED = 130
    #: SIGTERM (128 + SIGTERM).
    TERMINATED = 143
    #: Click's status for an aborted prompt (calibkit never prompts) and the fast help's for a
    #: closed pipe: the same number as :attr:`CHECK_FAILED`, so an alias of it.
    ABORTED = 1


@dataclass(frozen=True)
class Param:
    """A parameter named in a message, with the value it is given as, if any.

    In the library's words it is ``name`` or ``name=value`` (``value`` as ``repr`` shows it); the
    CLI shows its flag instead (``--flag``, or ``--flag value``; a switch given as ``True`` is
    ``--flag``), looked up by ``alias`` when given (the CLI's name for the
    parameter where one library parameter is two flags: ``scores_key`` as ``logits_key`` or
    ``probs_key``), else by ``name``. Adding text makes a :class:`Message`.

    ``key`` names one entry of a mapping parameter (:meth:`entry`): ``max_values['ece']`` in the
    library's words; on the command line the entry's own flag where ``flags`` has one under
    ``name[key]`` (``--max-ece``), else the parameter's flag followed by the key
    (``--max ece_over``).

    >>> str("use " + Param("kind", "logits"))
    "use kind='logits'"
    >>> ("use " + Param("kind", "logits")).render({"kind": "--input"})
    'use --input logits'
    >>> limit = Param("max_values").entry("ece")
    >>> str(limit), limit.render({"max_values": "--max", "max_values[ece]": "--max-ece"})
    ("max_values['ece']", '--max-ece')
    >>> Param("max_values").entry("ece_over").render({"max_values": "--max"})
    '--max ece_over'
    """

    name: str
    value: object = None
    alias: str | None = None
    key: str | None = None

    def entry(self, key: str) -> Param:
        """The entry ``key`` of this mapping parameter (``max_values['ece']``)."""
        return replace(self, key=key)

    def render(self, flags: Mapping[str, str]) -> str:
        lookup = self.alias or self.name
        if self.key is None:
            flag = flags.get(lookup)
        else:  # the entry's own flag, else the parameter's flag and the key
            flag = flags.get(f"{lookup}[{self.key}]")
            if flag is None and lookup in flags:
                flag = f"{flags[lookup]} {self.key}"
        if flag is None:
            name = self.name if self.key is None else f"{self.name}[{self.key!r}]"
            return name if self.value is None else f"{name}={self.value!r}"
        return flag if self.value is None or self.value is True else f"{flag} {self.value}"

    def __str__(self) -> str:
        return self.render({})

    def __add__(self, other: str | Param | Message) -> Message:
        return Message(self) + other

    def __radd__(self, other: str) -> Message:
        return Message(other, self)


class Message:
    """Text naming :class:`Param` parameters: ``str()`` in the library's words, :meth:`render`
    with the CLI's flags."""

    __slots__ = ("parts",)

    def __init__(self, *parts: str | Param) -> None:
        self.parts = parts

    def render(self, flags: Mapping[str, str]) -> str:
        return "".join(p if isinstance(p, str) else p.render(flags) for p in self.parts)

    def __str__(self) -> str:
        return self.render({})

    def __repr__(self) -> str:
        return f"Message{self.parts!r}"

    def __add__(self, other: str | Param | Message) -> Message:
        more = other.parts if isinstance(other, Message) else (other,)
        return Message(*self.parts, *more)

    def __radd__(self, other: str) -> Message:
        return Message(other, *self.parts)


def render(text: str | Message, flags: Mapping[str, str]) -> str:
    """``text`` with its parameters shown as ``flags`` gives them."""
    return text.render(flags) if isinstance(text, Message) else text


class CalibkitError(Exception):
    """Base class of the errors calibkit raises deliberately."""

    exit_code: int = ExitStatus.BAD_INPUT

    def __init__(self, message: str | Message = "") -> None:
        self.message = message
        super().__init__(str(message))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message,))

    def render(self, flags: Mapping[str, str]) -> str:
        """The message with each :class:`Param` shown as its flag (the CLI's words)."""
        return render(self.message, flags)


class InputError(CalibkitError, ValueError):
    """An input (file or array) that calibkit cannot use.

    The message always starts with the source, so a user knows which file is wrong:

    >>> str(InputError("val.npz", "key 'labels' not found"))
    "val.npz: key 'labels' not found"
    """

    def __init__(self, source: str, problem: str | Message) -> None:
        self.source = source
        self.problem = str(problem)
        self._problem = problem
        super().__init__(f"{source}: " + problem)

    def __reduce__(self) -> tuple[Any, ...]:
        # picklable with its arguments, so an error raised on a worker of a distributed
        # engine reaches the client as itself
        return (type(self), (self.source, self._problem))


class UsageError(CalibkitError, ValueError):
    """Arguments that contradict each other or lie outside their range."""


class OutputError(CalibkitError, OSError):
    """An output that cannot be written (or would overwrite an input)."""

    def __init__(self, target: str, problem: str | Message) -> None:
        self.target = target
        self.problem = str(problem)
        self._problem = problem
        super().__init__(f"{target}: " + problem)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.target, self._problem))


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
