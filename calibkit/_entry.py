"""The console-script entry point: it sets up signal handling before anything else loads.

A Ctrl-C (or SIGTERM) while the command line interface is still being imported then ends with
the same one line and exit code as one during a command, not a traceback.

The handlers are installed by :func:`main`'s first statements, through ``_signal`` (the C module
behind :mod:`signal`, loaded by every interpreter at start-up, so installing them imports
nothing); this module and ``calibkit/__init__.py`` import nothing else. What comes before them is
Python's own start-up: the interpreter, ``site`` (and the ``.pth`` files of the environment),
the console-script wrapper's ``import re`` and the loading of these two small files. A Ctrl-C
there gets Python's default behaviour: before Python installs its own handler the process is
killed by the signal (exit status -2, nothing printed); after it, Python prints its
``KeyboardInterrupt`` traceback. That window is the interpreter's start-up (10 to 50 ms, mostly
``site``), which no program can shorten from inside.
"""

import os  # loaded by the interpreter's start-up (site): no import happens
import sys

try:
    import _signal as _sig  # already loaded by the interpreter: no import happens
except ImportError:  # pragma: no cover - another Python implementation
    import signal as _sig


def _early(signum: int, frame: object) -> None:
    """Print the one line and end now, with no exception: one raised here may land in a
    callback of the import system, which ignores it (printing its own traceback) and lets the
    command run on. Before the command line interface is loaded nothing needs cleaning up (no
    output or temporary file exists yet), so the process ends at once."""
    interrupted = signum == _sig.SIGINT
    sys.stderr.write("calibkit: interrupted\n" if interrupted else "calibkit: terminated\n")
    sys.stderr.flush()
    os._exit(130 if interrupted else 143)


def main() -> None:
    _sig.signal(_sig.SIGINT, _early)
    _sig.signal(_sig.SIGTERM, _early)
    from calibkit._fast_help import print_if_fast

    # `calibkit --help`, `--version` and `calibkit` alone: without Typer or the command modules
    if print_if_fast(sys.argv[1:]):
        return
    from calibkit.cli import main as cli_main  # installs the handlers used during commands

    cli_main()
