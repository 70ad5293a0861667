"""docs/make_gallery.py: one script regenerates every figure of the gallery (issue #13).

The script runs into a temporary folder; every image its README shows must exist and be a
whole PNG, every PNG it wrote must be shown, and the committed gallery page must be the one the
script writes now (so a change to the figures' commands cannot leave docs/ stale).
"""

from __future__ import annotations

import importlib.util
import re
import struct
import sys
import zlib
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "make_gallery.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_gallery", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, Path]:
    script = load_script()
    out = tmp_path_factory.mktemp("docs")
    assert script.main(["--out-dir", str(out)]) == 0
    return script, out


def png_ok(path: Path) -> tuple[int, int]:
    """Check the PNG chunk by chunk (lengths, CRCs, IHDR first, IDAT present, IEND last) and
    decode it; return (width, height)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, kinds = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, (path, kind)
        kinds.append(kind)
        pos += 12 + length
    assert pos == len(data) and kinds[0] == b"IHDR" and kinds[-1] == b"IEND", path
    assert b"IDAT" in kinds, path
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return im.size


def sections(text: str) -> list[tuple[str, str, list[str]]]:
    """(title, command, image links) of every ``## `` section but the contents."""
    out = []
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        title = part.splitlines()[0]
        if title == "Contents":
            continue
        commands = re.findall(r"```bash\n(.*?)\n```", part, flags=re.S)
        images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", part)
        out.append((title, "\n".join(commands), images))
    return out


def test_every_figure_shown_exists_and_is_a_png(gallery: tuple[ModuleType, Path]) -> None:
    script, out = gallery
    readme = out / "gallery" / "README.md"
    shown = set()
    for title, command, images in sections(readme.read_text(encoding="utf-8")):
        assert command.startswith("calibkit "), title
        for link in images:
            path = (readme.parent / link).resolve()
            assert path.is_file(), (title, link)
            width, height = png_ok(path)
            assert width >= 400 and height >= 300, (link, width, height)
            # the section's command names the file it shows (or, for compare, its folder)
            flat = command.replace(" \\\n    ", " ")
            named = script.shown(path) in flat.split()
            assert named or f"--out-dir {script.shown(path.parent)}" in flat, (title, link)
            shown.add(path)
    written = {p.resolve() for p in out.rglob("*.png")}
    assert written == shown  # no figure written and not shown, none shown and not written
    # the kinds of figure the issue asks for, and the README's own figures
    names = {p.relative_to(out.resolve()).as_posix() for p in shown}
    assert {
        "gallery/diagram-single.png",
        "gallery/diagram-grid.png",
        "gallery/diagram-overlay.png",
        "gallery/diagram-overlay-smooth.png",
        "gallery/diagram-mass.png",
        "gallery/diagram-binary-positive.png",
        "gallery/sweep-four-models.png",
        "reliability.png",
        "sweep.png",
        "report/reliability.png",
        "report/sweep.png",
    } <= names
    assert sorted(p.name for p in (out / "gallery").iterdir()) == sorted(script.GALLERY_FILES)
    assert (out / "report" / "report.md").is_file() and (out / "report" / "report.json").is_file()


def test_text_chart_is_in_the_gallery(gallery: tuple[ModuleType, Path]) -> None:
    _, out = gallery
    text = (out / "gallery" / "README.md").read_text(encoding="utf-8")
    assert "reliability: bar = accuracy, | = mean confidence" in text
    assert not re.search(r"[ \t]+$", text, flags=re.M)  # no trailing blanks
    assert "\x1b[" not in text  # no terminal colour codes


def test_committed_gallery_page_is_current(gallery: tuple[ModuleType, Path]) -> None:
    """docs/gallery/README.md is what the script writes now (commands, captions, text chart);
    if this fails, run `python docs/make_gallery.py` and look at the figures."""
    script, out = gallery
    fresh = (out / "gallery" / "README.md").read_text(encoding="utf-8")
    committed = (ROOT / "docs" / "gallery" / "README.md").read_text(encoding="utf-8")

    def unwrapped(text: str) -> str:  # commands wrap at other places for longer paths
        return text.replace(" \\\n    ", " ")

    assert unwrapped(committed) == unwrapped(fresh).replace(script.shown(out), "docs")


def test_gallery_folder_with_a_stray_file_is_refused(tmp_path: Path) -> None:
    """gallery/ is replaced whole, so a file the script did not write there is not silently
    deleted: the run is refused before any command, and the folder is left as it was."""
    script = load_script()
    (tmp_path / "gallery").mkdir()
    stray = tmp_path / "gallery" / "notes.txt"
    stray.write_text("mine", encoding="utf-8")
    from calibkit.errors import OutputError

    with pytest.raises(OutputError):
        script.main(["--out-dir", str(tmp_path)])
    assert stray.read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in (tmp_path / "gallery").iterdir()) == ["notes.txt"]


def test_binary_inputs_are_the_ten_class_probability(tmp_path: Path) -> None:
    script = load_script()
    for path in script.write_binary_inputs(tmp_path):
        model = path.name.split("-")[0]
        with np.load(path, allow_pickle=False) as d:
            logit, labels = d["logits"], d["labels"]
        with np.load(ROOT / script.test_file(model), allow_pickle=False) as d:
            z, y = d["logits"].astype(np.float64), d["labels"]
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        k = script.POSITIVE_DIGIT
        np.testing.assert_allclose(1 / (1 + np.exp(-logit)), p[:, k], rtol=1e-9, atol=1e-15)
        np.testing.assert_array_equal(labels, (y == k).astype(np.int64))
        assert logit.shape == (450,) and 0 < labels.sum() < 450
