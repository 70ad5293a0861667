"""`calibkit mutual-info`: the mutual information between the input and the difference of two
logits, from logits saved under input augmentations (Müller et al. 2019, §4)."""

from pathlib import Path
from typing import Annotated, Any

import typer

from calibkit.cli._common import LabelsKey, parse_named, reports_errors, stdout
from calibkit.cli.app import app

#: The help of `calibkit mutual-info --help`; its first paragraph is the summary in
#: `calibkit --help` (calibkit/_commands.py lists it, tests/cli/test_fast_help.py checks).
HELP = (
    "Mutual information between the input and the gap of two logits, from logits saved under "
    "L augmentations (N, L, K).\n\n"
    "The estimate of Müller, Kornblith & Hinton (2019, §4), in nats, between 0 and log n for "
    "the n examples labelled a or b; near the class entropy (log 2) when only the class "
    "passes through the gap."
)


@app.command("mutual-info", help=HELP)
@reports_errors
def mutual_info_command(
    models: Annotated[
        list[str],
        typer.Argument(
            metavar="NAME=LOGITS",
            help="Logits (N, L, K) and labels (N,) as NAME=PATH (.npz or .pt; or PATH, named "
            "by its stem).",
        ),
    ],
    classes: Annotated[
        str | None,
        typer.Option(
            "--classes",
            metavar="<A,B>",
            help="The two classes a,b (index or name): f = z_a - z_b (default: the two most "
            "frequent labels).",
        ),
    ] = None,
    class_names: Annotated[
        Path | None,
        typer.Option("--class-names", help="Text file of class names, one a line."),
    ] = None,
    logits_key: Annotated[
        str | None,
        typer.Option("--logits-key", help="Key holding the (N, L, K) logits (.npz, .pt)."),
    ] = None,
    labels_key: LabelsKey = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    from calibkit.diagnostics.classes import select_classes
    from calibkit.diagnostics.mutual_info import estimate_mutual_information
    from calibkit.errors import InputError
    from calibkit.loaders.augmented import read_augmented
    from calibkit.loaders.class_names import read_class_names
    from calibkit.report.mutual_info import ModelEstimate, mutual_info_json, mutual_info_table
    from calibkit.report.summary_json import dumps

    named = parse_named(models)
    data = [
        (name, read_augmented(path, logits_key=logits_key, labels_key=labels_key))
        for name, path in named
    ]
    n_classes = data[0][1].shape[2]
    for _, d in data[1:]:
        if d.shape[2] != n_classes:
            raise InputError(
                d.source,
                f"holds K = {d.shape[2]} classes, {data[0][1].source} K = {n_classes}; the "
                "models must share their classes",
            )
    names = read_class_names(class_names, n_classes) if class_names is not None else None
    counts = _label_counts([d.labels for _, d in data], n_classes)
    a, b = select_classes(classes, count=2, n_classes=n_classes, names=names, frequencies=counts)
    rows = [
        ModelEstimate(
            name=name,
            source=d.source,
            logits_key=d.logits_key,
            labels_key=d.labels_key,
            shape=d.shape,
            estimate=estimate_mutual_information(d.logits, d.labels, (a, b), source=d.source),
        )
        for name, d in data
    ]
    if as_json:
        typer.echo(dumps(mutual_info_json(rows, (a, b), names)), nl=False)
    else:
        stdout().print(mutual_info_table(rows, (a, b), names))


def _label_counts(labels: list[Any], n_classes: int) -> list[int]:
    """How often each class is a label, over every model's file (so that the default pair is
    one pair for all)."""
    import numpy as np

    total = np.zeros(n_classes, dtype=np.int64)
    for y in labels:
        total += np.bincount(y, minlength=n_classes)
    return [int(c) for c in total]
