"""`calibkit check`: a CI gate that exits 1 when calibration is out of bounds or regressed."""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from calibkit.cli._common import (
    BinaryChoice,
    BinaryOpt,
    ChunkRows,
    EngineOpt,
    GroupByOpt,
    InputOpt,
    LabelsFromCounts,
    LabelsKey,
    LengthNormalize,
    LengthNormalizeOpt,
    LogitsKey,
    ParseConfidence,
    ProbsKey,
    SchedulerOpt,
    read_options,
    reports_errors,
    stdout,
    uses_engine,
    warning_line,
    wrote,
)
from calibkit.cli.app import app
from calibkit.errors import ExitStatus

#: The help of `calibkit check --help`; its first paragraph is the summary in
#: `calibkit --help` (calibkit/_commands.py lists it, tests/cli/test_fast_help.py checks).
HELP = (
    "Gate calibration in CI: absolute limits and significant regressions vs a baseline."
    "\n\nExit 0 when every check passes, 1 when one fails, 2 for bad usage or input."
)

if TYPE_CHECKING:
    from calibkit.metrics.examples import BinaryMode


def _limit(flag: str, help_text: str) -> Any:
    return typer.Option(flag, help=help_text)


#: The flags of the built-in metrics' limits: (flag, config key). They read "Fail if <label> is
#: above/below this." with the label of :mod:`calibkit.metrics.table`, which a test holds them
#: to (``tests/unit/test_metric_table.py``); ``--max NAME=LIMIT`` / ``--min NAME=LIMIT`` reach
#: every gated metric of the table, one registered later included.
LIMIT_FLAGS = (
    ("--max-ece", "max_ece"), ("--max-mce", "max_mce"), ("--max-rmsce", "max_rmsce"),
    ("--max-nll", "max_nll"), ("--max-brier", "max_brier"), ("--min-accuracy", "min_accuracy"),
)  # fmt: skip


@app.command("check", help=HELP)
@reports_errors
@uses_engine
def check_command(
    path: Annotated[Path, typer.Argument(metavar="PRED", help="Candidate predictions to gate.")],
    max_ece: Annotated[float | None, _limit("--max-ece", "Fail if ECE is above this.")] = None,
    max_mce: Annotated[float | None, _limit("--max-mce", "Fail if MCE is above this.")] = None,
    max_rmsce: Annotated[
        float | None, _limit("--max-rmsce", "Fail if RMSCE is above this.")
    ] = None,
    max_nll: Annotated[float | None, _limit("--max-nll", "Fail if NLL is above this.")] = None,
    max_brier: Annotated[
        float | None, _limit("--max-brier", "Fail if Brier is above this.")
    ] = None,
    min_accuracy: Annotated[
        float | None, _limit("--min-accuracy", "Fail if accuracy is below this.")
    ] = None,
    max_any: Annotated[
        str | None,
        typer.Option("--max", help="Upper limits by metric name: ece_over=0.02,nll=0.3"),
    ] = None,
    min_any: Annotated[
        str | None,
        typer.Option("--min", help="Lower limits by metric name: accuracy=0.9"),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="Baseline predictions file, or JSON from ece --json."),
    ] = None,
    max_increase: Annotated[
        str | None,
        typer.Option("--max-increase", help="Tolerated worsening vs baseline: ece=0.01,nll=0.02"),
    ] = None,
    bins: Annotated[int | None, typer.Option("--bins", min=1, help="Number of bins.")] = None,
    binning: Annotated[
        str | None,
        typer.Option("--binning", metavar="<width|mass>", help="width or mass (default width)."),
    ] = None,
    alpha: Annotated[
        float | None, typer.Option("--alpha", help="One-sided significance level (0.05).")
    ] = None,
    bootstrap: Annotated[
        int | None, typer.Option("--bootstrap", help="Bootstrap replicates (2000).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Bootstrap seed (0).")] = None,
    unpaired: Annotated[
        bool,
        typer.Option(
            "--unpaired",
            help="Allow a baseline of other examples (another N or other labels): an unpaired "
            "bootstrap, much less sensitive.",
        ),
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML with \\[tool.calibkit.check] settings.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Write JUnit XML here (one testcase per check).")
    ] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print a Markdown summary instead of the table.")
    ] = False,
    group_by: GroupByOpt = None,
    group_min_rows: Annotated[
        int | None,
        typer.Option(
            "--group-min-rows",
            min=1,
            help="With --group-by: leave groups of fewer rows out of the gate (reported as "
            "skipped).",
        ),
    ] = None,
    binary: BinaryOpt = BinaryChoice.top_label,
    logits_key: LogitsKey = None,
    probs_key: ProbsKey = None,
    labels_key: LabelsKey = None,
    parse_confidence: ParseConfidence = False,
    length_normalize: LengthNormalizeOpt = LengthNormalize.none,
    input_kind: InputOpt = None,
    labels_from_counts: LabelsFromCounts = False,
    chunk_rows: ChunkRows = None,
    engine: EngineOpt = None,
    scheduler: SchedulerOpt = None,
) -> None:
    import numpy as np

    from calibkit.errors import UsageError
    from calibkit.gate.baseline import baseline_stats, open_baseline
    from calibkit.gate.checks import run_gate
    from calibkit.gate.config import (
        OTHER_KEYS,
        gate_config,
        load_check_config,
        parse_increase,
        parse_limits,
    )
    from calibkit.gate.groups import check_resolution, group_checks, pair_groups, with_groups
    from calibkit.io.atomic import atomic_write_text, check_output_path
    from calibkit.loaders import read_predictions
    from calibkit.report.check_report import verdict_junit, verdict_markdown, verdict_table
    from calibkit.report.summary_json import dumps
    from calibkit.sources.digest import LabelDigest
    from calibkit.sources.groups import group_rows
    from calibkit.stats.bootstrap import check_replicates, model_sums

    if as_json and markdown:
        raise UsageError("give --json or --markdown, not both")
    file_cfg, cfg_path = load_check_config(config)
    named = (max_ece, max_mce, max_rmsce, max_nll, max_brier, min_accuracy)
    limits: dict[str, float | None] = {k: v for (_, k), v in zip(LIMIT_FLAGS, named, strict=True)}
    for option, kind, spec in (("--max", "max", max_any), ("--min", "min", min_any)):
        for name, value in (parse_limits(spec, option) if spec is not None else {}).items():
            key = f"{kind}_{name}"
            if key in OTHER_KEYS:  # max_increase is a setting, not the limit of a metric
                raise UsageError(f"{option} {name}: not a metric (see {option} in --help)")
            if limits.get(key) is not None:
                raise UsageError(f"{option} {name}: also given as --{key.replace('_', '-')}")
            limits[key] = value
    flags = {
        **limits,
        "baseline": str(baseline) if baseline else None,
        "max_increase": parse_increase(max_increase) if max_increase is not None else None,
        "bins": bins, "binning": binning, "alpha": alpha, "bootstrap": bootstrap, "seed": seed,
        "group_by": group_by or None, "group_min_rows": group_min_rows,
    }  # fmt: skip
    merged = {**file_cfg, **{k: v for k, v in flags.items() if v is not None}}
    gate_cfg = gate_config(merged)
    baseline_path = merged.get("baseline")
    inputs = [str(path)] + ([baseline_path] if baseline_path else [])
    if cfg_path is not None:
        inputs.append(str(cfg_path))
    if junit is not None:
        check_output_path(junit, inputs)
    if gate_cfg.empty:
        where = f" (and none in {cfg_path})" if cfg_path else ""
        raise UsageError(f"nothing to check: give --max-ece, --max-increase, ...{where}")

    allow_unpaired = unpaired or bool(merged.get("unpaired", False))
    options = read_options(
        logits_key,
        probs_key,
        labels_key,
        input_kind,
        labels_from_counts,
        parse_confidence=parse_confidence,
        length_normalize=length_normalize,
    )
    candidate = read_predictions(path, options)
    raw_candidate = candidate
    columns = group_columns(merged.get("group_by"))
    json_baseline = baseline_path is not None and Path(baseline_path).suffix.lower() == ".json"
    if columns and json_baseline and gate_cfg.max_increase:
        raise UsageError(
            "--group-by: a JSON baseline holds the point values of the whole file only; give "
            "the baseline's predictions file to test each group for a regression"
        )
    grouping = group_rows(candidate, columns) if columns else None  # its columns read first
    least = merged.get("group_min_rows")
    if baseline_path is not None and not json_baseline:
        candidate = LabelDigest(candidate)  # labels hashed in passing, to pair with the baseline
    base_mode: BinaryMode | None = binary.value if candidate.n_classes == 2 else None
    opened = None
    if baseline_path is not None:  # its layout is checked before the candidate is streamed
        opened = open_baseline(
            baseline_path,
            candidate,
            gate_cfg,
            options,
            binary_mode=base_mode,
            unpaired=allow_unpaired,
        )
    base_grouping, groups_paired = None, True
    if grouping is not None:
        gated = int(np.count_nonzero(grouping.counts >= (least or 0)))
        check_resolution(gated, gate_cfg)
        if gate_cfg.max_increase and opened is not None and not isinstance(opened, dict):
            base_grouping = group_rows(opened, columns)
            groups_paired = pair_groups(
                grouping,
                base_grouping,
                candidate_name=str(path),
                baseline_name=str(baseline_path),
                unpaired=allow_unpaired,
            )
    resampled = opened is not None and not isinstance(opened, dict) and gate_cfg.max_increase
    if resampled:  # both models' rows count, before either is read
        rows = candidate.n_rows + getattr(opened, "n_rows", 0)
        check_replicates(gate_cfg.bootstrap, gate_cfg.seed, rows)
    cand_sums = model_sums(  # one streamed pass: point values, and the bootstrap if needed
        candidate,
        n_bins=gate_cfg.n_bins,
        binning=gate_cfg.binning,
        replicates=gate_cfg.bootstrap if resampled else 0,
        seed=gate_cfg.seed,
        binary_mode=binary.value,
        chunk_rows=chunk_rows,
        warn=True,
    )
    base: Any = None
    paired, notes = True, list[str]()
    if opened is not None:
        base, paired, notes = baseline_stats(
            opened,
            candidate,
            config=gate_cfg,
            binary_mode=base_mode,
            chunk_rows=chunk_rows,
            unpaired=allow_unpaired,
        )
    if cfg_path is not None:
        notes.append(f"settings from {cfg_path}")
    verdict = run_gate(
        cand_sums,
        gate_cfg,
        baseline=base,
        paired=paired,
        baseline_name=baseline_path,
        notes=tuple(notes),
        source=candidate.source,
    )
    if grouping is not None:
        _warn_small(grouping, least, candidate.source)
        base_source = None if isinstance(opened, dict) else opened
        checks, outcomes, group_notes = group_checks(
            raw_candidate,
            gate_cfg,
            grouping,
            baseline=base_source if base_grouping is not None else None,
            baseline_grouping=base_grouping,
            paired=paired and groups_paired,
            binary_mode=binary.value,
            chunk_rows=chunk_rows,
            group_min_rows=least,
        )
        if base_grouping is not None and paired and not groups_paired:
            group_notes.append(
                "the groups hold other rows in the baseline: each group compared unpaired"
            )
        verdict = with_groups(verdict, columns, checks, outcomes, group_notes)
    if junit is not None:
        atomic_write_text(junit, verdict_junit(verdict), inputs=inputs)
        wrote(junit)
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        try:
            with open(summary_file, "a", encoding="utf-8") as fh:
                fh.write(verdict_markdown(verdict) + "\n")
        except OSError as err:
            warning_line(f"GITHUB_STEP_SUMMARY={summary_file}: cannot append ({err.strerror})")
    if as_json:
        typer.echo(dumps(verdict.to_dict()), nl=False)
    elif markdown:
        typer.echo(verdict_markdown(verdict), nl=False)
    else:
        stdout().print(verdict_table(verdict))
    if not verdict.passed:
        raise typer.Exit(ExitStatus.CHECK_FAILED)


def group_columns(spec: Any) -> tuple[str, ...]:
    """The columns of ``--group-by`` (or the configuration's ``group-by``: a name, a
    comma-separated list or a list of names)."""
    from calibkit.sources.groups import parse_group_by

    if spec is None:
        return ()
    return parse_group_by([spec] if isinstance(spec, str) else list(spec))


def _warn_small(grouping: Any, least: int | None, source: str) -> None:
    """One warning line (naming ``source`` first) for the gated groups under HELM's guideline of
    rows."""
    from calibkit.sources.groups import MIN_GROUP_ROWS

    small = [
        f"{grouping.label(g)} N={int(n)}"
        for g, n in enumerate(grouping.counts)
        if (least or 0) <= n < MIN_GROUP_ROWS
    ]
    if not small:
        return
    shown = ", ".join(small[:5]) + (f", ... ({len(small) - 5} more)" if len(small) > 5 else "")
    warning_line(
        f"{source}: {len(small)} of {grouping.n_groups} groups have fewer than "
        f"{MIN_GROUP_ROWS} rows ({shown}): their estimates are noisy; they are gated like the "
        "others (--group-min-rows N leaves smaller groups out)"
    )
