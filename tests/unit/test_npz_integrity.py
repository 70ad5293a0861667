"""Corrupt ``.npz`` members are refused with the member named, before any output is written.

Uncompressed members (``np.savez``) are memory-mapped, so numpy's zip reader never reads them and
never checks their CRC-32: calibkit checks it in one pass when the file is opened. Compressed
members are checked by the zip reader as numpy reads them to their end; these tests pin that
down for the scores and the labels member. Every hostile file is built here, in ``tmp_path``.
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
from calibkit.readers import npz as npz_loader
from calibkit.sources.predictions import Predictions


def _arrays(n: int = 400, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(12)
    return rng.normal(size=(n, k)).astype(np.float32), rng.integers(0, k, n)


def _save(path: Path, *, compressed: bool = False) -> Path:
    logits, labels = _arrays()
    (np.savez_compressed if compressed else np.savez)(path, logits=logits, labels=labels)
    return path


def _stored_range(path: Path, name: str) -> tuple[int, int]:
    """``(start, size)`` of a member's stored bytes in the file."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
    start = info.header_offset + 30 + struct.unpack("<HH", local[26:30])[0]
    start += struct.unpack("<HH", local[26:30])[1]
    return start, info.compress_size


def _flip(path: Path, offset: int, mask: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


def _flip_in_array(path: Path, name: str, index: int) -> None:
    """Flip the lowest bit of byte ``index`` of a stored member's array data (still finite)."""
    start, _ = _stored_range(path, name)
    raw = path.read_bytes()
    assert raw[start : start + 8] == b"\x93NUMPY\x01\x00"
    header_size = 10 + struct.unpack("<H", raw[start + 8 : start + 10])[0]
    _flip(path, start + header_size + index)


def _set_crc(path: Path, name: str, crc: int) -> None:
    """Record a wrong CRC-32 for a member (local header and central directory), data intact."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    data[info.header_offset + 14 : info.header_offset + 18] = struct.pack("<I", crc)
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        length = struct.unpack("<H", data[at + 28 : at + 30])[0]
        if bytes(data[at + 46 : at + 46 + length]) == name.encode():
            data[at + 16 : at + 20] = struct.pack("<I", crc)
        at = data.find(b"PK\x01\x02", at + 1)
    path.write_bytes(bytes(data))


def _crc_message(path: Path, name: str) -> str:
    return f"{path}: member '{name}' fails its CRC-32 check (corrupted)"


# --------------------------------------------------------------------------------------------
# uncompressed (memory-mapped) members


def test_a_flipped_bit_in_a_mapped_member_is_refused(tmp_path) -> None:
    path = _save(tmp_path / "p.npz")
    calibkit.read_predictions(path)  # intact: fine
    _flip_in_array(path, "logits.npy", 1001)  # a low mantissa bit: the value stays plausible
    with pytest.raises(InputError) as info:
        calibkit.read_predictions(path)
    assert str(info.value) == _crc_message(path, "logits.npy")


def test_the_crc_covers_the_npy_header(tmp_path) -> None:
    path = _save(tmp_path / "p.npz")
    start, _ = _stored_range(path, "logits.npy")
    raw = path.read_bytes()
    pad = raw.index(b" \n", start)  # the header's space padding: a tab still parses
    data = bytearray(raw)
    data[pad] = ord("\t")
    path.write_bytes(bytes(data))
    assert npz_loader.npz_members(path, str(path))["logits.npy"].shape == (400, 5)  # still parses
    with pytest.raises(InputError) as info:
        calibkit.read_predictions(path)
    assert str(info.value) == _crc_message(path, "logits.npy")


def test_the_last_byte_of_a_mapped_member_is_covered(tmp_path) -> None:
    path = _save(tmp_path / "p.npz")
    start, size = _stored_range(path, "logits.npy")
    _flip(path, start + size - 1)
    with pytest.raises(InputError, match="fails its CRC-32 check"):
        calibkit.read_predictions(path)


@pytest.mark.parametrize("command", ["ece", "fit-temp", "apply-temp"])
def test_the_cli_refuses_before_writing_anything(tmp_path, command) -> None:
    path = _save(tmp_path / "p.npz")
    _flip_in_array(path, "logits.npy", 77)
    out = tmp_path / ("out.npz" if command == "apply-temp" else "out.json")
    args = [command, str(path), "--out", str(out)]
    if command == "apply-temp":
        args += ["--temperature", "1.5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [f"calibkit: error: {_crc_message(path, 'logits.npy')}"]
    assert result.stdout == ""
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.npz"]  # no temporary file left


def test_a_flipped_labels_member_is_named(tmp_path) -> None:
    path = _save(tmp_path / "p.npz")
    start, size = _stored_range(path, "labels.npy")
    _flip(path, start + size - 3)  # in the label data
    with pytest.raises(InputError) as info:
        calibkit.read_predictions(path)
    assert str(info.value) == _crc_message(path, "labels.npy")


def test_confidence_members_are_checked(tmp_path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "c.npz"
    np.savez(path, confidence=rng.random(300), correct=rng.random(300) < 0.5)
    _flip_in_array(path, "confidence.npy", 100)
    with pytest.raises(InputError) as info:
        calibkit.read_predictions(path)
    assert str(info.value) == _crc_message(path, "confidence.npy")


def test_verify_crc_maps_an_intact_member(tmp_path) -> None:
    path = _save(tmp_path / "p.npz")
    member = npz_loader.npz_members(path, str(path))["logits.npy"]
    raw = npz_loader.verify_crc(path, member, str(path))
    assert isinstance(raw, np.memmap) and raw.size == member.info.compress_size
    logits, _ = _arrays()
    np.testing.assert_array_equal(
        np.frombuffer(raw, dtype=logits.dtype, offset=member.header_size).reshape(400, 5), logits
    )
    preds = calibkit.read_predictions(path)
    assert isinstance(preds, Predictions)
    np.testing.assert_array_equal(np.asarray(preds.scores), logits)
    assert not preds.scores.flags.writeable


def test_fortran_order_members_are_mapped_in_their_order(tmp_path) -> None:
    logits, labels = _arrays()
    path = tmp_path / "f.npz"
    np.savez(path, logits=np.asfortranarray(logits), labels=labels)
    preds = calibkit.read_predictions(path)
    assert isinstance(preds, Predictions)
    np.testing.assert_array_equal(np.asarray(preds.scores), logits)


def test_an_encrypted_member_is_not_mapped(tmp_path) -> None:
    """The encryption flag means the stored bytes are not the array: zipfile's refusal holds."""
    path = _save(tmp_path / "p.npz")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("logits.npy")
    data[info.header_offset + 6] |= 0x01
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        if data[at + 46 : at + 56] == b"logits.npy":
            data[at + 8] |= 0x01
        at = data.find(b"PK\x01\x02", at + 1)
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="encrypted"):
        calibkit.read_predictions(path)


def test_a_local_header_naming_another_member_is_not_mapped(tmp_path) -> None:
    path = _save(tmp_path / "p.npz")
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("logits.npy")
    data = bytearray(path.read_bytes())
    at = info.header_offset + 30
    assert data[at : at + 10] == b"logits.npy"
    data[at : at + 10] = b"logitz.npy"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupted"):
        calibkit.read_predictions(path)


def test_a_header_declaring_more_data_than_the_member_holds(tmp_path) -> None:
    """Refused from the header, before numpy would allocate the declared size."""
    path = tmp_path / "short.npz"
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**9, 10)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("logits.npy", "w") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            fh.write(np.zeros(100, dtype="<f8").tobytes())
        with zf.open("labels.npy", "w") as fh:
            np.save(fh, np.zeros(10**9, dtype=np.int8)[:10])
    with pytest.raises(InputError) as info:
        calibkit.read_predictions(path)
    assert "member 'logits.npy' declares a float64 array of shape (1000000000, 10)" in str(
        info.value
    )
    assert "(truncated or corrupted)" in str(info.value)


def test_a_forged_header_length_is_not_read(tmp_path) -> None:
    """A v2 header claiming 4 GB is refused by numpy's header limit, not read into memory."""
    path = tmp_path / "forged.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("logits.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**32 - 1) + b"{" * 64)
        with zf.open("labels.npy", "w") as fh:
            np.save(fh, np.zeros(3, dtype=np.int64))
    assert npz_loader.npz_members(path, str(path))["logits.npy"].shape is None
    with pytest.raises(InputError, match=str(path)):
        calibkit.read_predictions(path)


# --------------------------------------------------------------------------------------------
# compressed members: numpy's zip reader checks the CRC when it reads a member to its end


@pytest.mark.parametrize("name", ["logits.npy", "labels.npy"])
@pytest.mark.parametrize("compressed", [True, False], ids=["deflated", "stored"])
def test_a_wrong_recorded_crc_is_refused(tmp_path, name, compressed) -> None:
    path = _save(tmp_path / "p.npz", compressed=compressed)
    with zipfile.ZipFile(path) as zf:
        crc = zf.getinfo(name).CRC
    _set_crc(path, name, crc ^ 0x00010000)
    with pytest.raises(InputError) as info:
        calibkit.read_predictions(path)
    assert str(info.value) == _crc_message(path, name)


@pytest.mark.parametrize("n", [1, 1000, 65_536, 300_001])
def test_the_zip_reader_checks_compressed_labels_of_any_length(tmp_path, n) -> None:
    """numpy reads exactly the array's bytes; the CRC must still be checked at the end."""
    path = tmp_path / "p.npz"
    rng = np.random.default_rng(n)
    np.savez_compressed(path, logits=rng.normal(size=(n, 2)), labels=np.zeros(n, dtype=np.int64))
    with zipfile.ZipFile(path) as zf:
        crc = zf.getinfo("labels.npy").CRC
    _set_crc(path, "labels.npy", crc ^ 1)
    with pytest.raises(InputError) as info:
        calibkit.read_predictions(path)
    assert str(info.value) == _crc_message(path, "labels.npy")


@pytest.mark.parametrize("name", ["logits.npy", "labels.npy"])
@pytest.mark.parametrize("where", [0.3, 0.5, 0.9])
def test_a_flipped_byte_in_a_compressed_member_is_refused(tmp_path, name, where) -> None:
    path = _save(tmp_path / "p.npz", compressed=True)
    start, size = _stored_range(path, name)
    _flip(path, start + int(size * where), 0x10)
    result = CliRunner().invoke(app, ["ece", str(path), "--json"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"calibkit: error: {path}: "), lines
    assert "corrupted" in lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_negative_declared_size_is_a_corrupt_member(tmp_path, method) -> None:
    """numpy's header check lets ``(-1, 10)`` through; it must not reach the memory map."""
    path = tmp_path / "negative.npz"
    header = {"descr": "<f8", "fortran_order": False, "shape": (-1, 10)}
    with zipfile.ZipFile(path, "w", method) as zf:
        with zf.open("logits.npy", "w") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            fh.write(np.zeros(100).tobytes())
        with zf.open("labels.npy", "w") as fh:
            np.save(fh, np.zeros(10, dtype=np.int64))
    with pytest.raises(InputError) as info:
        calibkit.read_predictions(path)
    assert str(info.value) == f"{path}: corrupted array (negative dimensions are not allowed)"
