"""The Typer application and its entry point; each command lives in its own module."""

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.models import CommandFunctionType

from calibkit._commands import APP_HELP, COMMANDS, DEBUG_HELP, QUIET_HELP, VERSION_HELP
from calibkit._version import __version__
from calibkit.cli._common import error_line, state, stderr, usage_message
from calibkit.errors import ExitStatus

_MAIN_ARGS = ("args", "prog_name", "complete_var", "standalone_mode")


class _Argument(TyperArgument):
    """A positional argument shown by its metavar alone, as a user types it.

    Typer shows a required argument as ``{name}`` in the usage line and adds a type column
    (``<path>``, ``<list[str]>``) in the Arguments panel. calibkit's arguments each declare a
    metavar that says what to type (``PRED``, ``NAME=PRED``), so the usage line reads
    ``calibkit ece [OPTIONS] PRED`` and ``calibkit compare [OPTIONS] NAME=PRED...``, and the
    panel shows the same words, with no type.
    """

    @property
    def display_name_raw(self) -> str:
        name = self.metavar if self.metavar is not None else (self.name or "").upper()
        return name + ("..." if self.nargs != 1 else "")

    def _usage_display_name(self) -> str:
        return self.display_name_raw if self.required else f"[{self.display_name_raw}]"

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def tidy_params(params: list[Any]) -> None:
    """Shape the help of ``params`` in place, the same way for every command.

    * a flag (``--json``, ``--same-labels/--different-labels``, ``--help``) takes no value, so
      it shows no type (Typer's ``<bool>`` read as if the flag took one);
    * a number with bounds shows its type as ``<int>`` / ``<float>`` before the bounds Typer
      prints (``<int> [1<=x<=10000]``), not ``<int range>``, so one option reads the same in
      every command whether or not that command bounds it;
    * a positional argument is shown by its metavar (:class:`_Argument`).
    """
    for param in params:
        if type(param) is TyperArgument:
            param.__class__ = _Argument
        elif isinstance(param, TyperOption) and param.metavar is None:
            descriptor = getattr(param, "type_descriptor", None)
            if param.is_flag:
                param.metavar = ""
            elif descriptor is not None and getattr(descriptor, "is_ranged", False):
                param.metavar = f"<{descriptor.ranged_type_name}>"


class _TidyHelp:
    """Mixin: the parameters and the help option shaped by :func:`tidy_params`."""

    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy_params(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]  # (a click.Command)
        if option is not None:
            tidy_params([option])
        return option


class CalibkitCommand(_TidyHelp, TyperCommand):
    """Typer's command, with the help shaped by :func:`tidy_params`."""


class CalibkitGroup(_TidyHelp, TyperGroup):
    """Typer's command group, with usage errors as one line.

    Typer (Click) reports a bad or missing value, an unknown option or an unknown command as a
    usage block and a Rich panel, in pydantic's words. Run standalone (the console script, or
    Typer's test runner), this group instead prints ``calibkit: error: <message>`` on one line
    (:func:`~calibkit.cli._common.usage_message`) and exits 2. ``--version``, the help printed
    for ``calibkit`` alone (exit 2) and every exit code of the commands are Typer's; the
    top-level help is the page of :mod:`calibkit._fast_help` (:meth:`format_help`), and the
    commands are listed in the order of :data:`calibkit._commands.COMMANDS`. Its options are
    shaped like the commands' (:func:`tidy_params`).
    """

    def _main_shell_completion(self, ctx_args: Any, prog_name: str, *args: Any) -> None:
        """Answer a shell's completion request (``_CALIBKIT_COMPLETE`` set by the script that
        ``calibkit completion SHELL`` prints) with Typer's completion classes."""
        import os

        if os.environ.get(f"_{prog_name}_COMPLETE".replace("-", "_").upper()):
            from calibkit.cli.completion import register_shells

            register_shells()
        super()._main_shell_completion(ctx_args, prog_name, *args)

    def list_commands(self, ctx: Any) -> list[str]:
        """The commands in the order of :data:`calibkit._commands.COMMANDS` (any others after
        them, in the order they were added)."""
        order = {name: i for i, (name, _, _) in enumerate(COMMANDS)}
        return sorted(self.commands, key=lambda name: order.get(name, len(order)))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """The top-level help is the page :mod:`calibkit._fast_help` draws (``calibkit --help``
        prints it without loading Typer), so it reads the same whichever of the two prints it,
        on every Typer and Rich release."""
        from calibkit import _fast_help

        _fast_help.print_help()

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) > len(_MAIN_ARGS):
            raise TypeError("give main()'s later arguments by name")
        kwargs.update(zip(_MAIN_ARGS, args, strict=False))  # by position: in this order
        standalone = kwargs.pop("standalone_mode", True)
        kwargs["standalone_mode"] = False
        if not standalone:
            return super().main(**kwargs)
        try:
            code = super().main(**kwargs)
        except typer.TyperException as err:  # Click's usage errors (exit 2) and their kin
            if type(err).__name__ != "NoArgsIsHelpError":  # (that one has printed the help)
                error_line(usage_message(err))
            sys.exit(getattr(err, "exit_code", ExitStatus.BAD_INPUT))
        except typer.Abort:  # end of input while prompting (calibkit never prompts)
            stderr.print("calibkit: aborted")
            sys.exit(ExitStatus.ABORTED)
        sys.exit(code if isinstance(code, int) else ExitStatus.OK)


class CalibkitTyper(typer.Typer):
    """A Typer app whose commands are :class:`CalibkitCommand` unless they say otherwise."""

    def command(
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(name, cls=cls or CalibkitCommand, **kwargs)


app = CalibkitTyper(
    name="calibkit",
    cls=CalibkitGroup,
    help=APP_HELP,
    no_args_is_help=True,
    add_completion=False,  # `calibkit completion SHELL` prints the script instead
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"calibkit {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help=DEBUG_HELP)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help=QUIET_HELP)] = False,
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help=VERSION_HELP),
    ] = False,
) -> None:
    state.debug = debug
    state.quiet = quiet
