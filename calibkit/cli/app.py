"""The Typer application and its entry point; each command lives in its own module."""

from typing import Annotated

import typer

from calibkit._version import __version__
from calibkit.cli._common import state

app = typer.Typer(
    name="calibkit",
    help="Measure and fix the calibration of classifiers from saved logits or probabilities.",
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
    debug: Annotated[
        bool, typer.Option("--debug", help="Show Python tracebacks instead of one-line errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Measure and fix the calibration of classifiers from saved logits or probabilities."""
    state.debug = debug
