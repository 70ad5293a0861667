"""`calibkit apply`: write predictions calibrated by a calibrator JSON of any method."""

from pathlib import Path
from typing import Annotated

import typer

from calibkit.cli._common import (
    ChunkRows,
    InputOpt,
    LabelsKey,
    LengthNormalize,
    LengthNormalizeOpt,
    LogitsKey,
    ParseConfidence,
    ProbsKey,
    read_options,
    reports_errors,
    wrote,
)
from calibkit.cli.app import app

#: The help of `calibkit apply --help`; its first paragraph is the summary in `calibkit --help`
#: (calibkit/_commands.py lists it, tests/cli/test_fast_help.py checks).
HELP = (
    "Calibrate predictions with a calibrator JSON from calibkit fit and write them, same format "
    "(probability-output methods: under probs / prob_k)."
)


@app.command("apply", help=HELP)
@reports_errors
def apply_command(
    path: Annotated[Path, typer.Argument(metavar="PRED", help="Predictions to calibrate.")],
    calibrator: Annotated[
        Path, typer.Option("--calibrator", help="A calibrator JSON from calibkit fit --out.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output file, same format as the input.")],
    logits_key: LogitsKey = None,
    probs_key: ProbsKey = None,
    labels_key: LabelsKey = None,
    parse_confidence: ParseConfidence = False,
    length_normalize: LengthNormalizeOpt = LengthNormalize.none,
    input_kind: InputOpt = None,
    chunk_rows: ChunkRows = None,
) -> None:
    from calibkit.calibrators import registry
    from calibkit.calibrators.base import parameter_text
    from calibkit.io.atomic import check_output_path
    from calibkit.loaders import read_predictions
    from calibkit.report.rewrite import probs_layout, write_calibrated
    from calibkit.sources.checks import check_class_count

    check_output_path(out, [path, calibrator])
    scaler = registry.load(calibrator)  # any registered method
    preds = read_predictions(
        path,
        read_options(
            logits_key,
            probs_key,
            labels_key,
            input_kind,
            parse_confidence=parse_confidence,
            length_normalize=length_normalize,
        ),
    )
    check_class_count(str(calibrator), scaler.n_classes, path, preds.n_classes, fitted=True)
    write_calibrated(preds, scaler, out, chunk_rows=chunk_rows)
    detail = f"{scaler.method}: {parameter_text(scaler, '.6g')}"
    if getattr(scaler, "output_kind", "logits") == "probs":
        detail += f"; {probs_layout(preds)}"
    wrote(out, detail)
