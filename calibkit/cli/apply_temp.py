"""`calibkit apply-temp`: write temperature-scaled (or, from a calibrator JSON, calibrated)
predictions."""

from pathlib import Path
from typing import Annotated

import typer

from calibkit.cli._common import (
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

#: The help of `calibkit apply-temp --help`; its first paragraph is the summary in
#: `calibkit --help` (calibkit/_commands.py lists it, tests/cli/test_fast_help.py checks).
HELP = "Divide logits by T (probabilities: softmax(log p / T)) and write them, same format."


@app.command("apply-temp", help=HELP)
@reports_errors
def apply_temp_command(
    path: Annotated[Path, typer.Argument(metavar="PRED", help="Predictions to calibrate.")],
    out: Annotated[Path, typer.Option("--out", help="Output file, same format as the input.")],
    temperature: Annotated[
        float | None, typer.Option("--temperature", "-t", help="The temperature T (> 0).")
    ] = None,
    calibrator: Annotated[
        Path | None, typer.Option("--calibrator", help="A calibrator JSON from fit-temp --out.")
    ] = None,
    logits_key: LogitsKey = None,
    probs_key: ProbsKey = None,
    labels_key: LabelsKey = None,
    parse_confidence: ParseConfidence = False,
    length_normalize: LengthNormalizeOpt = LengthNormalize.none,
    input_kind: InputOpt = None,
) -> None:
    from calibkit.calibrators import registry
    from calibkit.calibrators.base import parameter_text
    from calibkit.errors import UsageError
    from calibkit.io.atomic import check_output_path
    from calibkit.loaders import read_predictions
    from calibkit.report.rewrite import write_calibrated
    from calibkit.sources.checks import check_class_count

    if (temperature is None) == (calibrator is None):
        raise UsageError("give exactly one of --temperature and --calibrator")
    check_output_path(out, [path] + ([calibrator] if calibrator else []))
    if calibrator is not None:
        scaler = registry.load(calibrator)  # any registered method
    else:
        assert temperature is not None
        scaler = registry.get("temperature").from_parameters({"temperature": temperature})
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
    write_calibrated(preds, scaler, out)
    wrote(out, parameter_text(scaler, ".6g"))
