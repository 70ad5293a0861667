"""The Typer application and its entry point; each command lives in its own module."""

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from calibkit._fast_help import APP_HELP, DEBUG_HELP, QUIET_HELP, VERSION_HELP
from calibkit._version import __version__
from calibkit.cli._common import error_line, state, stderr, usage_message

_MAIN_ARGS = ("args", "prog_name", "complete_var", "standalone_mode")


class CalibkitGroup(TyperGroup):
    """Typer's command group, with usage errors as one line.

    Typer (Click) reports a bad or missing value, an unknown option or an unknown command as a
    usage block and a Rich panel, in pydantic's words. Run standalone (the console script, or
    Typer's test runner), this group instead prints ``calibkit: error: <message>`` on one line
    (:func:`~calibkit.cli._common.usage_message`) and exits 2. Help, ``--version``, the help
    printed for ``calibkit`` alone (exit 2) and every exit code of the commands are Typer's.
    """

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
            sys.exit(getattr(err, "exit_code", 2))
        except typer.Abort:  # end of input while prompting (calibkit never prompts)
            stderr.print("calibkit: aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="calibkit",
    cls=CalibkitGroup,
    help=APP_HELP,
    no_args_is_help=True,
    add_completion=False,
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
        typer.Option("--version", callback=_version, is_eager=True, help=VERSION_HELP),
    ] = False,
) -> None:
    state.debug = debug
    state.quiet = quiet
