"""Reproduce the temperature-scaling cells of Mukhoti et al. (2020) with calibkit.

Mukhoti, Kulharia, Sanyal, Golodetz, Torr & Dokania, "Calibrating Deep Neural Networks using
Focal Loss", NeurIPS 2020 (arXiv 2002.09437), report for each pretrained model the test error,
the test ECE (15 equal-width bins, in %) before temperature scaling, the temperature T chosen on
the validation set, and the test ECE after. They chose T on the grid 0.1, 0.2, ..., 10.0 as the
point of lowest *validation ECE* (their ``--cverror ece``), so this script runs calibkit's
equivalent, ``fit-temp VAL --eval TEST --objective ece --grid 0.1:10:0.1``, on the 12 models
whose logits are public, and prints published and calibkit numbers side by side as Markdown.

The logits: ``data/`` of https://github.com/AIgen/df-posthoc-calibration at commit
2e41ac939f23 (saved by Gupta & Ramdas, ICLR 2022, from the networks released with
torrvision/focal_calibration), as ``<folder>/val.npz`` (5,000 images held out of the training
set) and ``<folder>/test.npz`` (the 10,000 CIFAR test images), each with ``logits`` and
``labels``. Point ``--logits`` at the directory holding the 12 folders (default:
``../shared/external-logits`` beside this checkout).

Usage::

    python scripts/reproduce_mukhoti2020.py [--logits DIR] [--guo]

``--guo`` also recomputes T and the test ECE under ``--convention guo`` (the float32 rule of the
paper's own ``ECELoss``) and says how far they are from calibkit's float64 numbers.

Exit status 0 when every cell matches at its printed rounding (and, with ``--guo``, the float32
rule picks the same T), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NamedTuple

GRID = "0.1:10:0.1"
N_BINS = 15


class Published(NamedTuple):
    """One row of the paper: test error %, test ECE % before, T, test ECE % after (as printed)."""

    error: str
    ece_before: str
    temperature: str
    ece_after: str
    source: str


README = "torrvision/focal_calibration README.md (commit 475422a6754e)"
TABLES = "Mukhoti et al. 2020 Tables 1-2, as reprinted in AdaFocal (Ghosh et al. 2022) Tables 1-2"

#: folder -> the published cells, exactly as printed (trailing zeros dropped as in the source)
PUBLISHED: dict[str, Published] = {
    "mukhoti20_c10_resnet50_brier": Published("5.0", "1.82", "1.1", "1.08", README),
    "mukhoti20_c10_resnet110_brier": Published("5.48", "2.56", "1.2", "1.25", README),
    "mukhoti20_c10_wrn26_10_brier": Published("4.08", "1.25", "1", "1.25", README),
    "mukhoti20_c10_densenet121_brier": Published("5.11", "1.53", "1", "1.53", README),
    "mukhoti20_c10_resnet50_flsd53": Published("4.98", "1.55", "1.1", "0.95", README),
    "mukhoti20_c10_resnet110_flsd53": Published("5.42", "1.87", "1.1", "1.07", README),
    "mukhoti20_c10_wrn26_10_flsd53": Published("4.01", "1.56", "0.9", "0.84", README),
    "mukhoti20_c10_densenet121_flsd53": Published("5.46", "1.22", "1", "1.22", README),
    "mukhoti20_c100_resnet50_brier": Published("23.39", "6.52", "1.1", "3.64", TABLES),
    "mukhoti20_c100_resnet110_brier": Published("25.1", "7.88", "1.2", "4.65", TABLES),
    "mukhoti20_c100_wrn26_10_brier": Published("20.59", "4.31", "1.1", "2.7", TABLES),
    "mukhoti20_c100_densenet121_brier": Published("23.75", "5.17", "1.1", "2.29", TABLES),
}

ARCH = {
    "resnet50": "ResNet-50",
    "resnet110": "ResNet-110",
    "wrn26_10": "Wide-ResNet-26-10",
    "densenet121": "DenseNet-121",
}
LOSS = {"brier": "Brier", "flsd53": "FLSD-53"}


def reproduce(folder: Path) -> dict[str, Any]:
    """calibkit's cells for one model: what ``fit-temp --objective ece --grid`` reports."""
    from calibkit.calibrators.grid import fit_temperature_grid
    from calibkit.calibrators.report import scaling_report
    from calibkit.loaders import read_predictions

    val = read_predictions(folder / "val.npz")
    test = read_predictions(folder / "test.npz")
    scaler = fit_temperature_grid(val, grid=GRID, objective="ece", n_bins=N_BINS)
    report = scaling_report(scaler, val, test, n_bins=N_BINS)
    ev = report["eval"]
    return {
        "error": 100 * (1 - ev["accuracy"]),
        "ece_before": 100 * ev["ece_before"],
        "temperature": scaler.temperature,
        "ece_after": 100 * ev["ece_after"],
        "ties": scaler.ties,
        "margin": 100 * (sorted(scaler.values)[1] - scaler.objective_value),
    }


def reproduce_guo(folder: Path) -> dict[str, Any]:
    """The same cells under ``--convention guo``, the rule of the paper's ``ECELoss`` (float32
    softmax, float32 ``linspace`` edges, ``(lo, hi]`` bins), T chosen by that ECE too."""
    from calibkit.calibrators.grid import parse_grid
    from calibkit.calibrators.temperature import ScaledPredictions
    from calibkit.loaders import read_predictions
    from calibkit.metrics.conventions import convention_bins

    def ece(source: Any, t: float) -> float:
        return convention_bins(ScaledPredictions(source, 1 / t), "guo", n_bins=N_BINS).ece()

    val = read_predictions(folder / "val.npz")
    test = read_predictions(folder / "test.npz")
    curve = [ece(val, t) for t in parse_grid(GRID).values]
    t = parse_grid(GRID).values[curve.index(min(curve))]  # the first minimum
    return {"temperature": t, "ece_before": 100 * ece(test, 1.0), "ece_after": 100 * ece(test, t)}


def matches(value: float, printed: str, *, places: int) -> bool:
    """Whether ``value`` shows as ``printed`` at ``places`` decimals (the source drops
    trailing zeros, so ``"5.0"`` is 5.00 and ``"1"`` is a temperature of 1.0)."""
    return f"{value:.{places}f}" == f"{float(printed):.{places}f}"


def _describe(name: str) -> tuple[str, str, str]:
    data = "CIFAR-10" if "_c10_" in name else "CIFAR-100"
    arch = next(v for k, v in ARCH.items() if f"_{k}_" in name)
    return data, arch, LOSS[name.rsplit("_", 1)[1]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "external-logits"
    parser.add_argument("--logits", type=Path, default=default, help="the 12 model folders")
    parser.add_argument(
        "--guo", action="store_true", help="also compare T and the ECE under --convention guo"
    )
    args = parser.parse_args(argv)
    root: Path = args.logits
    if not root.is_dir():
        print(f"reproduce_mukhoti2020: {root}: no such directory (see --help)", file=sys.stderr)
        return 2
    print(
        "| data | model | loss | test error % (paper / calibkit) | test ECE % before | "
        "T (lowest val ECE) | test ECE % after | val ECE margin |"
    )
    print("|---|---|---|---|---|---|---|---|")
    mismatches = same_t = 0
    worst = 0.0
    for name, pub in PUBLISHED.items():
        got = reproduce(root / name)
        cells = [
            (got["error"], pub.error, 2),
            (got["ece_before"], pub.ece_before, 2),
            (got["temperature"], pub.temperature, 1),
            (got["ece_after"], pub.ece_after, 2),
        ]
        shown = []
        for value, printed, places in cells:
            good = matches(value, printed, places=places)
            mismatches += not good
            shown.append(f"{printed} / {value:.{places}f}" + ("" if good else " (differs)"))
        margin = f"{got['margin']:.3f}" + (f", {got['ties']} tied" if got["ties"] > 1 else "")
        print("| " + " | ".join([*_describe(name), *shown, margin]) + " |")
        if args.guo:
            guo = reproduce_guo(root / name)
            same_t += guo["temperature"] == got["temperature"]
            for key in ("ece_before", "ece_after"):
                worst = max(worst, abs(guo[key] - got[key]))
    total = 4 * len(PUBLISHED)
    print()
    print(f"{total - mismatches} of {total} cells match at their printed rounding.")
    print(
        "val ECE margin: how far (in percentage points) the second-lowest validation ECE on "
        "the grid lies above the lowest, i.e. how far T is from a tie."
    )
    if args.guo:
        print(
            f"Under the paper's float32 ECE rule (--convention guo): the same T for {same_t} of "
            f"{len(PUBLISHED)} models; test ECE within {worst:.1e} percentage points of "
            "calibkit's (float32 rounding)."
        )
    return 0 if mismatches == 0 and (not args.guo or same_t == len(PUBLISHED)) else 1


if __name__ == "__main__":
    sys.exit(main())
