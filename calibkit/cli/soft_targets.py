"""`calibkit soft-targets`: Hinton's soft targets softmax(z / T) of a teacher, written as
probabilities that every calibkit command reads."""

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from calibkit.cli._common import (
    ChunkRows,
    InputOpt,
    LabelsFromCounts,
    LabelsKey,
    LengthNormalize,
    LengthNormalizeOpt,
    LogitsKey,
    ParseConfidence,
    ProbsKey,
    read_options,
    reports_errors,
    stdout,
    wrote,
)
from calibkit.cli.app import app

#: The help of `calibkit soft-targets --help`; its first paragraph is the summary in
#: `calibkit --help` (calibkit/_commands.py lists it, tests/cli/test_fast_help.py checks).
HELP = (
    "Write a teacher's soft targets softmax(z / T) (probabilities: softmax(log p / T)) as "
    "probabilities, same format; mean entropy and top-1 mass."
)


class DtypeChoice(str, Enum):
    float32 = "float32"
    float64 = "float64"


@app.command("soft-targets", help=HELP)
@reports_errors
def soft_targets_command(
    path: Annotated[
        Path, typer.Argument(metavar="TEACHER", help="The teacher's logits or probabilities.")
    ],
    temperature: Annotated[
        float, typer.Option("--temperature", help="Distillation temperature T > 0.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output file, same format as the input.")],
    dtype: Annotated[
        DtypeChoice,
        typer.Option("--dtype", help="Number type of the written probabilities."),
    ] = DtypeChoice.float64,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    logits_key: LogitsKey = None,
    probs_key: ProbsKey = None,
    labels_key: LabelsKey = None,
    parse_confidence: ParseConfidence = False,
    length_normalize: LengthNormalizeOpt = LengthNormalize.none,
    input_kind: InputOpt = None,
    labels_from_counts: LabelsFromCounts = False,
    chunk_rows: ChunkRows = None,
) -> None:
    import warnings

    from calibkit.diagnostics.distillation import (
        SoftTargetScaler,
        check_temperature,
        soft_target_summary,
    )
    from calibkit.io.atomic import check_output_path
    from calibkit.loaders import read_predictions
    from calibkit.report.rewrite import probs_layout, write_calibrated
    from calibkit.report.summary_json import dumps
    from calibkit.report.teacher import soft_target_json, soft_target_table
    from calibkit.sources.predictions import refuse_ragged

    t = check_temperature(temperature, what="--temperature")
    check_output_path(out, [path])
    preds = read_predictions(
        path,
        read_options(
            logits_key,
            probs_key,
            labels_key,
            input_kind,
            labels_from_counts,
            parse_confidence=parse_confidence,
            length_normalize=length_normalize,
        ),
    )
    refuse_ragged(preds, "soft targets")  # before anything is written
    write_calibrated(  # first: a wrong --out is refused before any pass over the data
        preds, SoftTargetScaler(t), out, chunk_rows=chunk_rows, probs_dtype=dtype.value
    )
    summary = soft_target_summary(preds, t, dtype=dtype.value, chunk_rows=chunk_rows)
    wrote(out, f"soft targets at T = {t:g}, {dtype.value}; {probs_layout(preds)}")
    if summary.argmax_changed:
        rows = ", ".join(map(str, summary.examples))
        warnings.warn(
            f"{out}: the argmax of {summary.argmax_changed} of {summary.curve.n} rows differs "
            f"from the teacher's (first rows: {rows}): their top soft targets tie once rounded "
            f"to {dtype.value}"
            + ("; --dtype float64 keeps more of them apart" if dtype.value == "float32" else ""),
            UserWarning,
            stacklevel=1,
        )
    if as_json:
        typer.echo(dumps(soft_target_json(summary, str(out))), nl=False)
    else:
        stdout().print(soft_target_table(summary, str(out)))
