"""The Typer application and its entry point; each command lives in its own module."""

from typing import Annotated

import typer

from calibkit._fast_help import APP_HELP, DEBUG_HELP, VERSION_HELP
from calibkit._version import __version__
from calibkit.cli._common import state

app = typer.Typer(
    name="calibkit",
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
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help=VERSION_HELP),
    ] = False,
) -> None:
    state.debug = debug
