"""`calibkit completion SHELL`: print the script that lets a shell complete calibkit's words.

The script calls ``calibkit`` back with ``_CALIBKIT_COMPLETE`` set whenever the user presses
Tab; :class:`~calibkit.cli.app.CalibkitGroup` answers with commands, options and choice values
(file names are left to the shell). Nothing is installed behind the user's back: they put the
script where their shell reads it (``calibkit completion --help`` says where).
"""

from enum import Enum
from typing import Annotated

import typer

from calibkit.cli._common import reports_errors
from calibkit.cli.app import app

#: The help of `calibkit completion --help`; its first paragraph is the summary in
#: `calibkit --help` (calibkit/_commands.py lists it, tests/cli/test_fast_help.py checks).
HELP = (
    "Print the script that lets your shell complete calibkit's commands and options."
    '\n\nbash: add the line  eval "$(calibkit completion bash)"  to ~/.bashrc'
    '\nzsh: add the line  eval "$(calibkit completion zsh)"  to ~/.zshrc, after compinit'
    "\nfish: calibkit completion fish > ~/.config/fish/completions/calibkit.fish"
    "\nPowerShell: add  calibkit completion pwsh | Out-String | Invoke-Expression  to $PROFILE"
)

PROG_NAME = "calibkit"
COMPLETE_VAR = "_CALIBKIT_COMPLETE"


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"
    powershell = "powershell"
    pwsh = "pwsh"


def register_shells() -> None:
    """Use Typer's completion classes (their scripts are the ones :func:`script` prints).

    Typer registers them only for apps with ``add_completion=True`` (its ``--install-completion``
    and ``--show-completion`` options, which calibkit does not add); these are Typer's own
    modules, tested with Typer 0.29 (tests/cli/test_help_text.py)."""
    from typer._completion_classes import completion_init

    completion_init()


def script(shell: str) -> str:
    """The completion script for ``shell`` (one of :class:`Shell`)."""
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name=PROG_NAME, complete_var=COMPLETE_VAR, shell=shell)


@app.command("completion", help=HELP)
@reports_errors
def completion_command(
    shell: Annotated[
        Shell, typer.Argument(metavar="SHELL", help="bash, zsh, fish, powershell or pwsh.")
    ],
) -> None:
    typer.echo(script(shell.value))
