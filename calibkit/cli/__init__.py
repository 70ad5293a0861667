"""calibkit's command line: ``calibkit COMMAND ...`` (see ``calibkit --help``).

The commands only parse arguments, call the library and format its results. Each lives in its
own module, listed in :data:`calibkit._commands.COMMANDS`; importing this package imports them
all, which registers them with :data:`app`.
"""

from importlib import import_module

from calibkit._commands import COMMANDS
from calibkit.cli._common import Terminated, state, stderr
from calibkit.cli.app import app
from calibkit.errors import ExitStatus

__all__ = ["app", "main"]

for _name, _module, _summary in COMMANDS:  # importing a command's module registers it
    import_module(f"calibkit.cli.{_module}")


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _on_sigint(signum: int, frame: object) -> None:
    # report here, whatever is running (Typer turns a Ctrl-C while parsing into a silent exit)
    if not state.interrupt_reported:
        state.interrupt_reported = True
        stderr.print("calibkit: interrupted")
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point: SIGTERM unwinds like Ctrl-C, so no temporary file is left."""
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        app(prog_name="calibkit")
    except KeyboardInterrupt:  # before a command started (while importing)
        if not state.interrupt_reported:
            stderr.print("calibkit: interrupted")
        raise SystemExit(ExitStatus.INTERRUPTED) from None
    except Terminated:
        stderr.print("calibkit: terminated")
        raise SystemExit(ExitStatus.TERMINATED) from None
