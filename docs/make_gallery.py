"""Regenerate every figure calibkit draws on the sample data, and the gallery that shows them.

Run from anywhere::

    python docs/make_gallery.py              # into docs/
    python docs/make_gallery.py --out-dir D  # into D/ (the tests do this)

It runs the calibkit command line (``python -m calibkit``, with this checkout first on
``PYTHONPATH``) once per figure, from the repository root, and writes

* ``gallery/``: one PNG per kind of figure and ``gallery/README.md``, a section per figure with
  the command that made it, the image and what to read from it. The folder is built beside
  ``gallery/`` and swapped in whole (:func:`calibkit.io.atomic.atomic_directory`), so it
  never mixes two runs; the commands shown name the final paths, and each writes the same bytes
  there as into the build folder (calibkit's PNGs carry no dates or paths);
* ``reliability.png`` and ``sweep.png``: the two figures of the top-level README, by the
  commands printed there;
* ``report/``: ``calibkit compare --out-dir`` on the four sample models (its ``report.md``,
  ``report.json``, ``reliability.png`` and ``sweep.png``).

Every input is a file in ``sample_data/`` except the two-class predictions of the
``--binary positive`` figure, which are derived from the sample logits here (one-vs-rest
"is it a 3?", see :func:`write_binary_inputs`) into a temporary folder, shown as ``$TMP`` in the
commands. Nothing is random (no seed is needed), so the same checkout writes the same files.
The commands run a few at a time (``--jobs``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = "sample_data"
MODELS = ("hard", "ls05", "ls10", "ls20")
#: The digit taken as the positive class of the two-class ("is it a 3?") models.
POSITIVE_DIGIT = 3
#: The files the gallery folder holds (the folder is replaced only if it holds nothing else).
GALLERY_FILES = (
    "README.md",
    "diagram-single.png",
    "diagram-grid.png",
    "diagram-overlay.png",
    "diagram-overlay-smooth.png",
    "diagram-mass.png",
    "diagram-binary-positive.png",
    "sweep-four-models.png",
)


# ---------------------------------------------------------------------------------------------
# commands: tokens are plain strings, or placeholders resolved differently for running and
# for showing


@dataclass(frozen=True)
class Gallery:
    """A file in the gallery folder: run into the build folder, shown at its final place."""

    name: str


@dataclass(frozen=True)
class Docs:
    """A file or folder written directly under the output folder (README figures, report/)."""

    name: str


@dataclass(frozen=True)
class Tmp:
    """A derived input in the temporary folder, shown as ``$TMP/name`` (after ``prefix``,
    e.g. ``NAME=``)."""

    name: str
    prefix: str = ""


Token = str | Gallery | Docs | Tmp


@dataclass
class Figure:
    """A section of the gallery: one command, the images it wrote, what they show."""

    key: str
    title: str
    args: list[Token]
    images: list[Token]  # what the section shows, in order
    caption: str
    text_output: bool = False  # show the command's stdout (a text chart) instead of an image
    stdout: str = field(default="", repr=False)


def test_file(model: str) -> str:
    return f"{SAMPLE}/digits_{model}_test.npz"


def val_file(model: str) -> str:
    return f"{SAMPLE}/digits_{model}_val.npz"


def named(models: Sequence[str]) -> list[Token]:
    return [f"{m}={test_file(m)}" for m in models]


def vals(models: Sequence[str]) -> list[Token]:
    out: list[Token] = []
    for m in models:
        out += ["--val", f"{m}={val_file(m)}"]
    return out


def figures() -> list[Figure]:
    """Every figure, in the gallery's order."""
    sweep_grid: list[Token] = ["--t-min", "0.25", "--t-max", "4", "--steps", "76"]
    binary = [f"{m}-is{POSITIVE_DIGIT}" for m in ("hard", "ls10")]
    return [
        Figure(
            "diagram-single",
            "Reliability diagram of one model",
            ["diagram", *named(["hard"]), "--out", Gallery("diagram-single.png")],
            [Gallery("diagram-single.png")],
            "Bars are the accuracy of each confidence bin, the hatched band is the gap to the "
            "bin's mean confidence and the histogram under it says how many test digits each bin "
            "holds: the hard-label model is over-confident, and 386 of its 450 "
            "predictions sit in the last bin.",
        ),
        Figure(
            "diagram-grid",
            "One panel per model",
            ["diagram", *named(MODELS), "--out", Gallery("diagram-grid.png")],
            [Gallery("diagram-grid.png")],
            "With shared axes the four models compare at a glance: the hard-label model's bars "
            "fall below the diagonal (over-confident), the label-smoothed models' rise above it "
            "(under-confident), more so as the smoothing grows from 0.05 to 0.20.",
        ),
        Figure(
            "diagram-overlay",
            "All models on one axes (`--overlay`)",
            ["diagram", *named(MODELS), "--overlay", "--out", Gallery("diagram-overlay.png")],
            [Gallery("diagram-overlay.png")],
            "Each model's bins as a line with markers, one colour per model: curves under the "
            "diagonal are over-confident, curves over it under-confident.",
        ),
        Figure(
            "diagram-overlay-smooth",
            "Smoothed reliability curves (`--overlay --smooth`)",
            [
                "diagram",
                *named(MODELS),
                "--overlay",
                "--smooth",
                "--out",
                Gallery("diagram-overlay-smooth.png"),
            ],
            [Gallery("diagram-overlay-smooth.png")],
            "The kernel-smoothed reliability curve of smooth ECE (Błasiok & Nakkiran 2023) per "
            "model, with its value: the same reading as the binned curves without depending on "
            "where the bin edges fall.",
        ),
        Figure(
            "diagram-mass",
            "Equal-count bins (`--binning mass`)",
            [
                "diagram",
                *named(["hard", "ls10"]),
                "--binning",
                "mass",
                "--out",
                Gallery("diagram-mass.png"),
            ],
            [Gallery("diagram-mass.png")],
            "Every bin holds about 30 of the 450 digits, so each point rests on as many "
            "examples; the hard-label model's bins above a confidence of 0.9999 are all right, "
            "and its over-confidence is in the few bins below 0.99.",
        ),
        Figure(
            "diagram-binary-positive",
            f'A two-class model, p(y = 1) (`--binary positive`): "is it a {POSITIVE_DIGIT}?"',
            [
                "diagram",
                *[Tmp(f"{b}_test.npz", prefix=f"{b}=") for b in binary],
                "--binary",
                "positive",
                "--out",
                Gallery("diagram-binary-positive.png"),
            ],
            [Gallery("diagram-binary-positive.png")],
            "The sample models have ten classes, so this figure is made from a derived "
            f'one-vs-rest model, "is the digit a {POSITIVE_DIGIT}?": `make_gallery.py` writes '
            f"`$TMP/hard-is{POSITIVE_DIGIT}_test.npz` with one logit per row, "
            f"`z[{POSITIVE_DIGIT}] - logsumexp(z[others])` (whose sigmoid is exactly the "
            f"ten-class model's softmax probability of a {POSITIVE_DIGIT}), and the labels "
            f"`y == {POSITIVE_DIGIT}`; the same for ls10. The x axis is the predicted "
            f"p(y = 1), the y axis the observed frequency of class 1, so with about one "
            f"digit in ten a {POSITIVE_DIGIT}, most rows sit in the first bin.",
        ),
        Figure(
            "sweep-four-models",
            "ECE and NLL against the temperature (`sweep-temp --plot`)",
            [
                "sweep-temp",
                *named(MODELS),
                *vals(MODELS),
                *sweep_grid,
                "--plot",
                Gallery("sweep-four-models.png"),
            ],
            [Gallery("sweep-four-models.png")],
            "On the log T axis the hard-label model's lowest ECE and NLL lie at T = 2.55 and "
            "2.6 (2.9 fitted on validation): it needs softening; the label-smoothed models' lie "
            "at T = 0.4 to 0.65 (0.42 to 0.60 fitted): they need sharpening. Dashed lines are "
            "the temperatures fitted on the validation split, dots each curve's lowest point on "
            "the grid, the dotted line T = 1.",
        ),
        Figure(
            "ece-plot",
            "The text reliability chart (`ece --plot`)",
            ["ece", test_file("hard"), "--plot"],
            [],
            "For a terminal or a CI log: one line per bin, a bar as long as the accuracy and "
            "`|` at the bin's mean confidence, with the count, so the two-example bins that "
            "look alarming in a figure are seen to be two examples.",
            text_output=True,
        ),
        Figure(
            "readme-reliability",
            "The README's reliability figure",
            ["diagram", *named(["hard", "ls10"]), "--out", Docs("reliability.png")],
            [Docs("reliability.png")],
            "The hard-label model (over-confident) next to the label-smoothed one with alpha = 0.1 "
            "(under-confident), as shown in the top-level README.",
        ),
        Figure(
            "readme-sweep",
            "The README's temperature sweep",
            [
                "sweep-temp",
                *named(["hard", "ls10"]),
                *vals(["hard", "ls10"]),
                *sweep_grid,
                "--plot",
                Docs("sweep.png"),
            ],
            [Docs("sweep.png")],
            "The two README models: temperature scaling softens the hard-label model "
            "(fitted T ≈ 2.9) and sharpens the label-smoothed one (fitted T ≈ 0.5).",
        ),
        Figure(
            "compare-report",
            "The report folder of `compare --out-dir`",
            ["compare", *named(MODELS), *vals(MODELS), "--out-dir", Docs("report")],
            [Docs("report/reliability.png"), Docs("report/sweep.png")],
            "The report's reliability figure pairs every model with itself after temperature "
            "scaling fitted on its validation split (T in the panel title), and its sweep marks "
            "the fitted temperatures; the table is in report.md.",
        ),
    ]


# ---------------------------------------------------------------------------------------------
# derived inputs


def write_binary_inputs(folder: Path) -> list[Path]:
    """One-vs-rest "is it a 3?" models from the hard and ls10 test logits.

    ``logit = z[3] - logsumexp(z[k], k != 3)``, so ``sigmoid(logit)`` is the ten-class softmax
    probability of a 3; ``label = (y == 3)``. Computed in float64; deterministic.
    """
    import numpy as np

    written = []
    for model in ("hard", "ls10"):
        with np.load(ROOT / test_file(model), allow_pickle=False) as data:
            z = np.asarray(data["logits"], dtype=np.float64)
            y = np.asarray(data["labels"])
        others = np.delete(z, POSITIVE_DIGIT, axis=1)
        top = others.max(axis=1, keepdims=True)
        lse = top[:, 0] + np.log(np.exp(others - top).sum(axis=1))
        path = folder / f"{model}-is{POSITIVE_DIGIT}_test.npz"
        np.savez(
            path, logits=z[:, POSITIVE_DIGIT] - lse, labels=(y == POSITIVE_DIGIT).astype(np.int64)
        )
        written.append(path)
    return written


# ---------------------------------------------------------------------------------------------
# running


def shown(path: Path) -> str:
    """A path as the commands show it: relative to the repository root when inside it."""
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path.resolve().as_posix()


@dataclass(frozen=True)
class Places:
    out: Path  # the output folder (docs/ by default)
    build: Path  # where the gallery files are written before the swap
    tmp: Path  # derived inputs

    def run(self, token: Token) -> str:
        if isinstance(token, Gallery):
            return str(self.build / token.name)
        if isinstance(token, Docs):
            return shown(self.out / token.name)
        if isinstance(token, Tmp):
            return token.prefix + str(self.tmp / token.name)
        return token

    def show(self, token: Token) -> str:
        if isinstance(token, Gallery):
            return f"{shown(self.out)}/gallery/{token.name}"
        if isinstance(token, Docs):
            return f"{shown(self.out)}/{token.name}"
        if isinstance(token, Tmp):
            return f"{token.prefix}$TMP/{token.name}"
        return token

    def link(self, token: Token) -> str:
        """Where an image is, relative to gallery/README.md."""
        if isinstance(token, Gallery):
            return token.name
        if isinstance(token, Docs):
            return f"../{token.name}"
        raise TypeError(f"not an image: {token!r}")


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["MPLBACKEND"] = "Agg"
    env["COLUMNS"] = "100"  # the text chart's width
    env.pop("FORCE_COLOR", None)
    env["NO_COLOR"] = "1"
    return env


def run_figure(fig: Figure, places: Places, env: dict[str, str]) -> Figure:
    args = [places.run(t) for t in fig.args]
    done = subprocess.run(
        [sys.executable, "-m", "calibkit", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{fig.key}: calibkit {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
        )
    fig.stdout = done.stdout
    return fig


def command_line(fig: Figure, places: Places) -> str:
    """The command as a reader types it: an option stays with its value, and lines longer
    than 92 characters are continued with a backslash."""
    words = [places.show(t) for t in fig.args]
    groups = [f"calibkit {words[0]}"]
    i = 1
    while i < len(words):
        w = words[i]
        if w.startswith("--") and i + 1 < len(words) and not words[i + 1].startswith("--"):
            groups.append(f"{w} {words[i + 1]}")
            i += 2
        else:
            groups.append(w)
            i += 1
    lines, line = [], ""
    for g in groups:
        if line and len(line) + 1 + len(g) > 92:
            lines.append(line + " \\")
            line = "    " + g
        else:
            line = f"{line} {g}" if line else g
    lines.append(line)
    return "\n".join(lines)


def readme(figs: Sequence[Figure], places: Places) -> str:
    parts = [
        "# Gallery\n",
        "Every figure calibkit draws, on the sample data of `sample_data/` (hard-label and "
        "label-smoothed digits classifiers, 450 test and 449 validation digits). Regenerate all "
        "of them (and this page) with `python docs/make_gallery.py`, and look at each one after "
        "any change to `calibkit/plotting/`. Each command below, run from the repository root, "
        "writes the file shown (the script builds `gallery/` in a temporary folder beside it "
        "and swaps it in whole; calibkit's PNGs hold no dates or paths, so the bytes are the "
        "same).\n",
        "## Contents\n",
        "\n".join(f"- [{f.title}](#{f.key})" for f in figs) + "\n",
    ]
    for f in figs:
        body = [
            f'<a id="{f.key}"></a>\n',
            f"## {f.title}\n",
            "```bash\n" + command_line(f, places) + "\n```\n",
        ]
        if f.text_output:
            text = "\n".join(line.rstrip() for line in f.stdout.strip("\n").splitlines())
            body.append("```\n" + text + "\n```\n")
        for img in f.images:
            body.append(f"![{f.title}]({places.link(img)})\n")
        body.append(f.caption + "\n")
        parts += body
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Regenerate calibkit's figure gallery and the README figures."
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=ROOT / "docs",
        help="folder for gallery/, reliability.png, sweep.png and report/ (default: docs/)",
    )
    parser.add_argument(
        "--jobs", type=int, default=min(4, os.cpu_count() or 1), help="commands run at a time"
    )
    opts = parser.parse_args(argv)

    from calibkit.io.atomic import atomic_directory

    out = Path(opts.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    figs = figures()
    env = _environment()
    with (
        tempfile.TemporaryDirectory(prefix="calibkit-gallery-") as tmp,
        atomic_directory(out / "gallery", owned=GALLERY_FILES) as build,
    ):
        places = Places(out=out, build=Path(build), tmp=Path(tmp))
        write_binary_inputs(places.tmp)
        with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
            # the slowest (compare) first, so the others fill the remaining workers
            order = sorted(figs, key=lambda f: f.key != "compare-report")
            for done in pool.map(lambda f: run_figure(f, places, env), order):
                for img in done.images:
                    print(f"make_gallery: wrote {places.show(img)}", file=sys.stderr)
        (places.build / "README.md").write_text(readme(figs, places), encoding="utf-8")
    print(f"make_gallery: wrote {shown(out / 'gallery' / 'README.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
