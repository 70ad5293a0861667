"""``.pt`` archives: ``torch.load`` checks no CRC-32, so calibkit checks every record's first.

Every hostile file is built here, in ``tmp_path``.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import calibkit
from calibkit.cli import app
from calibkit.errors import InputError

torch = pytest.importorskip("torch")


def _save(path: Path) -> Path:
    logits = torch.arange(600.0).reshape(100, 6) / 100
    torch.save({"logits": logits, "labels": torch.arange(100) % 6}, path)
    return path


def _record(path: Path, suffix: str) -> zipfile.ZipInfo:
    with zipfile.ZipFile(path) as zf:
        return next(i for i in zf.infolist() if i.filename.endswith(suffix))


def _flip_in_record(path: Path, info: zipfile.ZipInfo, index: int) -> None:
    data = bytearray(path.read_bytes())
    local = data[info.header_offset : info.header_offset + 30]
    start = info.header_offset + 30 + sum(struct.unpack("<HH", local[26:30]))
    data[start + index] ^= 0x01
    path.write_bytes(bytes(data))


def test_torch_itself_accepts_a_flipped_storage_byte(tmp_path) -> None:
    """Why calibkit checks: the safe loader returns the corrupted number without a word."""
    path = _save(tmp_path / "p.pt")
    _flip_in_record(path, _record(path, "data/0"), 41)
    logits = torch.load(path, weights_only=True)["logits"]
    assert not torch.equal(logits, torch.arange(600.0).reshape(100, 6) / 100)


def test_a_flipped_storage_byte_is_refused(tmp_path) -> None:
    path = _save(tmp_path / "p.pt")
    info = _record(path, "data/0")
    _flip_in_record(path, info, 41)
    with pytest.raises(InputError) as err:
        calibkit.read_predictions(path)
    assert str(err.value) == f"{path}: record {info.filename!r} fails its CRC-32 check (corrupted)"


def test_the_cli_refuses_in_one_line_before_writing(tmp_path) -> None:
    path = _save(tmp_path / "p.pt")
    info = _record(path, "data/1")  # the labels
    _flip_in_record(path, info, 8)
    out = tmp_path / "cal.json"
    result = CliRunner().invoke(app, ["fit-temp", str(path), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"calibkit: error: {path}: record {info.filename!r} fails its CRC-32 check (corrupted)"
    ]
    assert not out.exists()


def test_a_deflated_record_with_a_flipped_byte_is_refused(tmp_path) -> None:
    plain, packed = _save(tmp_path / "plain.pt"), tmp_path / "packed.pt"
    with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info), compress_type=zipfile.ZIP_DEFLATED)
    calibkit.read_predictions(packed)  # intact: fine
    info = _record(packed, "data/0")
    _flip_in_record(packed, info, info.compress_size // 2)
    with pytest.raises(InputError, match="corrupted"):
        calibkit.read_predictions(packed)


def test_archives_saved_without_checksums_are_read(tmp_path) -> None:
    config = pytest.importorskip("torch.utils.serialization").config
    with config.patch({"save.compute_crc32": False}):
        path = _save(tmp_path / "nocrc.pt")
    with zipfile.ZipFile(path) as zf:
        assert not any(info.CRC for info in zf.infolist())
    preds = calibkit.load_predictions(path)
    np.testing.assert_array_equal(
        preds.scores, np.arange(600.0, dtype=np.float32).reshape(100, 6) / 100
    )
