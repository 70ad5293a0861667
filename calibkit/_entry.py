"""The console-script entry point: it sets up signal handling before anything heavy loads.

A Ctrl-C (or SIGTERM) while the command line interface is still being imported then ends with
the same one line and exit code as one during a command, not a traceback.
"""

from __future__ import annotations

import signal
import sys
from typing import Any


def _early(signum: int, frame: Any) -> None:
    interrupted = signum == signal.SIGINT
    sys.stderr.write("calibkit: interrupted\n" if interrupted else "calibkit: terminated\n")
    raise SystemExit(130 if interrupted else 143)


def main() -> None:
    signal.signal(signal.SIGINT, _early)
    signal.signal(signal.SIGTERM, _early)
    from calibkit._fast_help import print_if_fast

    if print_if_fast(sys.argv[1:]):  # `calibkit --help` / `--version` without Typer and Rich
        return
    from calibkit.cli import main as cli_main  # installs the handlers used during commands

    cli_main()
