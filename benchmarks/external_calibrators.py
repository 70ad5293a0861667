"""Proof on real models (#15): every registered calibrator on 12 published CIFAR models.

Run:  python benchmarks/external_calibrators.py [--methods a,b,...] [--models SUBSTR,...]
                                                [--out table.md]

For each model folder in ``../shared/external-logits`` (next to the repository: real logits of
Mukhoti et al. 2020's CIFAR-10/100 networks; see its README for provenance) every registered
method (``registry.names()``, or ``--methods``) is fitted on ``val.npz`` (5 000 rows) and
evaluated on ``test.npz`` (10 000 rows). A method with a ``reduction`` hyper-parameter (the
binning methods: top-versus-all, one-versus-all) gets one row per reduction. Columns: ECE
(15 equal-width bins, top label), class-wise ECE (15 bins per class, mean over classes), MCE,
NLL, Brier, accuracy and whether it moved from the uncalibrated accuracy, fit seconds, whether
the fit converged (its :class:`~calibkit.calibrators.outcome.FitOutcome`; ``-`` for a fit that
is not an optimisation) and the chosen hyper-parameters (cross-validated λ, μ for the ODIR
methods). All numbers are calibkit's own metrics, through the library API. Then a summary
answers the issue's questions from what was measured.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "external-logits"


@dataclass
class Row:
    model: str
    method: str
    ece: float = math.nan
    cw_ece: float = math.nan
    mce: float = math.nan
    nll: float = math.nan
    brier: float = math.nan
    accuracy: float = math.nan
    accuracy_moved: bool = False
    seconds: float = math.nan
    converged: str = "-"
    params: str = ""
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def variants(name: str, cls: Any) -> list[tuple[str, dict[str, Any]]]:
    """``(row label, fit options)`` of a method: one per reduction when it has that option."""
    for spec in getattr(cls, "hyperparameters", ()):
        if spec.name == "reduction" and spec.choices:
            return [(f"{name}[{c}]", {"reduction": c}) for c in spec.choices]
    return [(name, {})]


def metrics(row: Row, source: Any) -> None:
    from calibkit.metrics.classwise import class_statistics
    from calibkit.metrics.summary import summarize

    s = summarize(source, n_bins=15)
    row.ece, row.mce, row.nll, row.brier, row.accuracy = s.ece, s.mce, s.nll, s.brier, s.accuracy
    row.cw_ece = class_statistics(source, n_bins=15, top_k=(1,)).classwise_ece


def describe_fit(cal: Any) -> tuple[str, str, dict[str, Any]]:
    """``(converged, hyper-parameters shown, extra)`` from a fitted calibrator."""
    details = cal.fit_details() if hasattr(cal, "fit_details") else {}
    fit = details.get("fit")
    converged = "-"
    extra: dict[str, Any] = {}
    if isinstance(fit, dict):
        converged = "yes" if fit.get("converged") else "NO"
        extra["fit"] = fit
    shown = []
    cv = details.get("cv")
    if isinstance(cv, dict) and isinstance(cv.get("chosen"), dict):
        extra["cv"] = cv
        shown += [f"{k}={v:.3g}" for k, v in cv["chosen"].items()]
        shown.append(f"(CV {len(cv.get('curve', []))} pts)")
    else:
        params = cal.parameters()
        shown += [
            f"{cal.symbols.get(k, k)}={v:.4g}"
            for k, v in params.items()
            if isinstance(v, float) and k != "n_parameters"
        ]
    return converged, " ".join(shown), extra


def run_model(
    folder: Path,
    methods: list[str],
    chunk_rows: int | None,
    given: dict[str, dict[str, Any]] | None = None,
) -> list[Row]:
    import warnings

    from calibkit.calibrators import registry
    from calibkit.calibrators.base import CalibratedPredictions
    from calibkit.errors import CalibkitError
    from calibkit.loaders import load_predictions

    val = load_predictions(folder / "val.npz")
    test = load_predictions(folder / "test.npz")
    base = Row(folder.name, "uncalibrated")
    metrics(base, test)
    rows = [base]
    for name in methods:
        cls = registry.get(name)
        for label, reduction in variants(name, cls):
            options = {**reduction, **(given or {}).get(name, {})}
            row = Row(folder.name, label)
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    cal = cls.fit_source(val, chunk_rows=chunk_rows, **options)
                    row.seconds = time.perf_counter() - t0
                    metrics(row, CalibratedPredictions(test, cal))
                row.converged, row.params, row.extra = describe_fit(cal)
                if (given or {}).get(name):
                    row.params += " (given, no CV)" if "CV" not in row.params else ""
            except CalibkitError as err:
                row.seconds = time.perf_counter() - t0
                row.error = str(err).splitlines()[0]
            row.accuracy_moved = not row.error and row.accuracy != base.accuracy
            rows.append(row)
            print(f"  {folder.name:42s} {label:28s} {row.seconds:7.2f} s", file=sys.stderr)
    return rows


def table(rows: list[Row]) -> str:
    best: dict[str, float] = {}
    for key in ("ece", "cw_ece", "mce", "nll", "brier"):
        vals = [getattr(r, key) for r in rows if not r.error]
        best[key] = min(vals)
    best_acc = max(r.accuracy for r in rows if not r.error)
    base_acc = rows[0].accuracy
    out = [
        "| method | ECE % | cw-ECE % | MCE % | NLL | Brier | acc % | fit s | converged | "
        "hyper-parameters |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.error:
            out.append(f"| {r.method} | error: {r.error} |||||||||")
            continue

        def cell(key: str, scale: float, digits: int, r: Row = r) -> str:
            v = getattr(r, key)
            text = f"{v * scale:.{digits}f}"
            return f"**{text}**" if v == best[key] else text

        acc = f"{r.accuracy * 100:.2f}"
        if r.accuracy == best_acc:
            acc = f"**{acc}**"
        if r.accuracy_moved:
            acc += f" (Δ {(r.accuracy - base_acc) * 100:+.2f})"
        fit_s = "" if math.isnan(r.seconds) else f"{r.seconds:.2f}"
        out.append(
            f"| {r.method} | {cell('ece', 100, 2)} | {cell('cw_ece', 100, 3)} | "
            f"{cell('mce', 100, 2)} | {cell('nll', 1, 4)} | {cell('brier', 1, 4)} | {acc} | "
            f"{fit_s} | {r.converged} | {r.params} |"
        )
    return "\n".join(out)


def _short(model: str) -> str:
    return model.split("_", 1)[1] if "_" in model else model


def _get(rows: list[Row], method: str) -> Row | None:
    return next((r for r in rows if r.method == method and not r.error), None)


def summary(results: dict[str, list[Row]]) -> str:
    """The issue's questions, answered from the rows measured (only where both sides ran)."""
    lines: list[str] = []
    c100 = {m: rows for m, rows in results.items() if "_c100_" in m}

    def compare(title: str, a: str, b: str, keys: tuple[str, ...], models: dict[str, Any]) -> None:
        pairs = [(m, _get(rows, a), _get(rows, b)) for m, rows in models.items()]
        pairs = [(m, x, y) for m, x, y in pairs if x is not None and y is not None]
        if not pairs:
            lines.append(f"- {title}: not measured ({a} or {b} not run)")
            return
        lines.append(f"- {title}:")
        for key in keys:
            wins = sum(getattr(x, key) <= getattr(y, key) for _, x, y in pairs)
            scale = 100 if "ece" in key else 1
            detail = ", ".join(
                f"{_short(m)}: {getattr(x, key) * scale:.4g} vs {getattr(y, key) * scale:.4g}"
                for m, x, y in pairs
            )
            lines.append(
                f"  - {key}{' %' if scale == 100 else ''}: {a} <= {b} on {wins}/{len(pairs)} "
                f"models ({detail})"
            )

    compare(
        "Unregularised matrix vs TS on CIFAR-100 (Guo 2017: matrix far worse)",
        "matrix",
        "temperature",
        ("ece", "nll"),
        c100,
    )
    for odir in ("matrix-odir", "dirichlet-odir"):
        compare(
            f"{odir} vs TS on CIFAR-100 (Kull 2019: at or below TS)",
            odir,
            "temperature",
            ("nll", "cw_ece", "ece"),
            c100,
        )
    pairs = [(m, _get(rows, "vector"), _get(rows, "temperature")) for m, rows in results.items()]
    pairs = [(m, v, t) for m, v, t in pairs if v is not None and t is not None]
    if pairs:
        worst = max(abs(v.nll - t.nll) / t.nll for _, v, t in pairs)
        worst_ece = max(abs(v.ece - t.ece) for _, v, t in pairs)
        lines.append(
            f"- Vector scaling vs TS (Guo 2017: close): largest relative NLL difference "
            f"{worst * 100:.2f} %, largest ECE difference {worst_ece * 100:.2f} points over "
            f"{len(pairs)} models; vector's NLL lower on "
            f"{sum(v.nll <= t.nll for _, v, t in pairs)}/{len(pairs)}"
        )
    else:
        lines.append("- Vector scaling vs TS: not measured")
    moved: dict[str, list[str]] = {}
    for m, rows in results.items():
        for r in rows:
            if "[" in r.method and not r.error:
                moved.setdefault(r.method, [])
                if r.accuracy_moved:
                    moved[r.method].append(
                        f"{m.split('_', 1)[1]} ({(r.accuracy - rows[0].accuracy) * 100:+.2f})"
                    )
    if moved:
        lines.append("- Binning reductions (Guo 2017: one-vs-all per class changes accuracy):")
        for method, models in sorted(moved.items()):
            n = len(results)
            lines.append(
                f"  - {method}: accuracy moved on {len(models)}/{n} models"
                + (f": {', '.join(models)}" if models else "")
            )
    else:
        lines.append("- Binning reductions: not measured (no method with a 'reduction' option)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", help="comma-separated methods (default: every registered)")
    parser.add_argument("--models", help="comma-separated substrings of model folders to run")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    parser.add_argument("--chunk-rows", type=int, default=None)
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="METHOD:NAME=VALUE",
        help="a fit option of one method (e.g. matrix-odir:lambda=1); repeatable. Given λ and "
        "μ skip the cross-validation (the table then says so: not the paper's protocol)",
    )
    parser.add_argument("--data", type=Path, default=SHARED, help="the external-logits folder")
    args = parser.parse_args(argv)
    data: Path = args.data
    if not data.is_dir():
        print(
            f"external_calibrators: {data} not found: this benchmark needs the shared "
            "external logits next to the repository (see its README for where they come from)",
            file=sys.stderr,
        )
        return 2
    from calibkit.calibrators import registry
    from calibkit.calibrators.base import read_hyperparameters
    from calibkit.errors import CalibkitError, UsageError

    try:
        methods = args.methods.split(",") if args.methods else list(registry.names())
        for m in methods:
            registry.get(m)
    except CalibkitError as err:
        print(f"external_calibrators: {err}", file=sys.stderr)
        return 2
    given: dict[str, dict[str, str]] = {}
    try:
        for item in args.param:
            method, _, pair = item.partition(":")
            name, eq, value = pair.partition("=")
            if not eq or method not in methods:
                raise UsageError(f"--param {item!r}: expected METHOD:NAME=VALUE for a run method")
            given.setdefault(method, {})[name] = value
        options = {m: read_hyperparameters(registry.get(m), kv) for m, kv in given.items()}
    except CalibkitError as err:
        print(f"external_calibrators: {err}", file=sys.stderr)
        return 2
    folders = sorted(p for p in data.iterdir() if (p / "val.npz").is_file())
    if args.models:
        wanted = args.models.split(",")
        folders = [p for p in folders if any(w in p.name for w in wanted)]
    results: dict[str, list[Row]] = {}
    parts = [
        "# Every calibrator on 12 published CIFAR models",
        "",
        f"Fitted on val.npz (5 000 rows), evaluated on test.npz (10 000 rows); methods: "
        f"{', '.join(methods)}"
        + (f" (given: {'; '.join(args.param)})" if args.param else "")
        + ". Bold: best of the column; Δ: accuracy moved (points).",
        "",
    ]
    for folder in folders:
        rows = run_model(folder, methods, args.chunk_rows, options)
        results[folder.name] = rows
        parts += [f"## {folder.name}", "", table(rows), ""]
        print(f"## {folder.name}\n\n{table(rows)}\n", flush=True)
    parts += ["## Summary (measured)", "", summary(results), ""]
    print("## Summary (measured)\n\n" + summary(results))
    if args.out:
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text("\n".join(parts), encoding="utf-8")
        tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
