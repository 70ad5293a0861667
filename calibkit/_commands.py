"""The one list of calibkit's commands, and the texts of the top level of ``calibkit --help``.

Each command lives in its own module, ``calibkit/cli/<module>.py``, with its help text (``HELP``
at the top of that module, opening ``calibkit COMMAND --help``). This list names each command
once, with the module that defines it and the one-line summary that ``calibkit --help`` shows
for it (the first paragraph of that ``HELP``):

* ``calibkit/cli/__init__.py`` imports the modules listed here, which registers the commands
  with the Typer app, and the app lists them in this order;
* ``calibkit/_fast_help.py`` prints ``calibkit --help`` from this list alone, without importing
  the command modules, Typer or numpy.

``tests/cli/test_fast_help.py`` checks that the Typer app has exactly these commands, that each
summary is the first paragraph of its command's help, and that Typer's own rendering of the
top-level help shows the same commands, summaries and options.

Adding a command (commands are not plugins: the console script lists exactly these):

1. its module ``calibkit/cli/<module>.py``, with ``HELP`` and ``@app.command(NAME, help=HELP)``;
2. its line in :data:`COMMANDS` below (``calibkit/cli/__init__.py`` imports the module from it);
3. a ``### calibkit NAME`` section in ``README.md`` (``tests/test_docs.py`` asks each command
   for one);
4. its usage line in ``USAGE`` of ``tests/cli/test_help_text.py`` (a pin of how its positional
   arguments are shown, ``calibkit NAME [OPTIONS] PRED``, which the test compares with Typer's).

This module imports nothing, so reading it costs nothing.
"""

#: The usage line of ``calibkit --help`` (Typer's, for a group with options and commands).
USAGE = "calibkit [OPTIONS] COMMAND [ARGS]..."

#: The description under the usage line.
APP_HELP = "Measure and fix the calibration of classifiers from saved logits or probabilities."

DEBUG_HELP = "Show Python tracebacks instead of one-line errors."
QUIET_HELP = "Show no progress bar (one shows on a terminal for work over a second)."
VERSION_HELP = "Print the version."
HELP_HELP = "Show this message and exit."  # Typer's text for -h/--help

#: The top-level options as (long name, short name, help), in the order Typer lists them: the
#: callback's parameters (calibkit/cli/app.py), then the help option. All are flags.
OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--debug", "", DEBUG_HELP),
    ("--quiet", "", QUIET_HELP),
    ("--version", "-V", VERSION_HELP),
    ("--help", "-h", HELP_HELP),
)

#: (name, module in calibkit/cli/, one-line summary) of each command, in the order that
#: ``calibkit --help`` lists them.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    (
        "apply",
        "apply",
        "Calibrate predictions with a calibrator JSON from calibkit fit and write them, same "
        "format (probability-output methods: under probs / prob_k).",
    ),
    (
        "apply-temp",
        "apply_temp",
        "Divide logits by T (probabilities: softmax(log p / T)) and write them, same format.",
    ),
    (
        "check",
        "check",
        "Gate calibration in CI: absolute limits and significant regressions vs a baseline.",
    ),
    (
        "compare",
        "compare",
        "Compare models: accuracy, ECE, MCE, NLL, Brier and implied label smoothing, before and "
        "after calibration (temperature scaling or --method).",
    ),
    (
        "completion",
        "completion",
        "Print the script that lets your shell complete calibkit's commands and options.",
    ),
    (
        "diagram",
        "diagram",
        "Reliability diagrams (Guo et al. 2017): accuracy per confidence bin, gap, histogram.",
    ),
    (
        "ece",
        "ece",
        "Expected calibration error, MCE, RMSCE, NLL, Brier and accuracy of saved predictions.",
    ),
    (
        "fit",
        "fit",
        "Fit a calibration method (--method, default temperature) on validation data; metrics "
        "before and after.",
    ),
    (
        "fit-temp",
        "fit_temp",
        "Fit a temperature T on validation data: the NLL optimum (exact Newton on 1/T), or the "
        "lowest ECE or NLL on a grid.",
    ),
    (
        "mutual-info",
        "mutual_info",
        "Mutual information between the input and the gap of two logits, from logits saved "
        "under L augmentations (N, L, K).",
    ),
    (
        "penultimate",
        "penultimate",
        "Project penultimate-layer activations onto the plane of three class templates (Müller "
        "et al. 2019): cluster spread, centre distances, tightness.",
    ),
    (
        "selective",
        "selective",
        "Selective prediction (risk-coverage, AURC) and HELM's calibration metrics of the "
        "top-label confidence.",
    ),
    (
        "soft-targets",
        "soft_targets",
        "Write a teacher's soft targets softmax(z / T) (probabilities: softmax(log p / T)) as "
        "probabilities, same format; mean entropy and top-1 mass.",
    ),
    (
        "sweep-temp",
        "sweep_temp",
        "Sweep temperatures: ECE, NLL and Brier of softmax(z / T) for each model and each T.",
    ),
    (
        "teacher",
        "teacher",
        "Teacher diagnostics over T: mean entropy, top-1 mass and equivalent smoothing gamma(T) "
        "of softmax(z / T), for each teacher (Müller et al. 2019).",
    ),
)
