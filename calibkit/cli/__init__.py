"""calibkit's command line: ``calibkit COMMAND ...`` (see ``calibkit --help``).

The commands only parse arguments, call the library and format its results.
"""

from calibkit.cli import (  # noqa: F401  (importing a command module registers it)
    apply_temp,
    check,
    compare,
    diagram,
    ece,
    fit_temp,
    sweep_temp,
)
from calibkit.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app(prog_name="calibkit")
