"""The reader layer (#14): each format -> named arrays, the format registry, ``read_arrays``.

Readers know nothing about logits, labels or predictions: an input kind other than predictions
(penultimate features with a final layer's weight and bias, logits of shape ``(N, L, K)``) asks
for its arrays by key, with every safety check of the predictions readers, and without
importing calibkit.sources or calibkit.loaders. Every hostile file is crafted here.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import calibkit.readers as readers
from calibkit.errors import InputError
from calibkit.loaders import ReadOptions, read_predictions
from calibkit.readers import Format, format_for, read_arrays, register, suffixes
from calibkit.readers.parquet import column_batches

PACKAGE = Path(__file__).resolve().parents[2] / "calibkit"


@pytest.fixture
def kinds() -> dict[str, np.ndarray]:
    """Arrays of the input kinds to come: features + final layer, and (N, L, K) logits."""
    rng = np.random.default_rng(7)
    n, d, k, steps = 12, 5, 3, 4
    return {
        "features": rng.standard_normal((n, d)).astype(np.float32),
        "weight": rng.standard_normal((k, d)),
        "bias": rng.standard_normal(k),
        "labels": rng.integers(0, k, n),
        "seq_logits": rng.standard_normal((n, steps, k)).astype(np.float32),
    }


def same(got: Mapping[str, Any], want: Mapping[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for key, value in want.items():
        assert isinstance(got[key], np.ndarray), key
        np.testing.assert_array_equal(got[key], value, err_msg=key)
        assert got[key].dtype == value.dtype, key


# --------------------------------------------------------------------------------------------
# npz


def test_npz_gives_every_array_by_key_memory_mapped(
    tmp_path: Path, kinds: dict[str, np.ndarray]
) -> None:
    path = tmp_path / "model.npz"
    np.savez(path, **kinds)
    got = read_arrays(path)
    same(got, kinds)
    # uncompressed members are mapped from the file (after their CRC-32 check), not copied
    assert not got["features"].flags.owndata
    assert not got["features"].flags.writeable
    same(read_arrays(path, ["weight", "bias"]), {"weight": kinds["weight"], "bias": kinds["bias"]})
    same(read_arrays(path, "seq_logits"), {"seq_logits": kinds["seq_logits"]})


def test_npz_compressed_and_text_members(tmp_path: Path, kinds: dict[str, np.ndarray]) -> None:
    path = tmp_path / "model.npz"
    np.savez_compressed(path, **kinds)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("notes.txt", "trained for 3 epochs")
    same(read_arrays(path), kinds)  # the text member is not an array: left out
    with pytest.raises(InputError, match=r"member 'notes.txt' is not a \.npy array"):
        read_arrays(path, ["notes.txt"])


def test_npz_missing_key_lists_the_keys(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    np.savez(path, weight=np.zeros((2, 2)), bias=np.zeros(2))
    with pytest.raises(InputError, match=r"key 'features' not found; keys present: bias, weight"):
        read_arrays(path, ["features"])


def test_npz_refuses_pickles_and_corruption(tmp_path: Path) -> None:
    pickled = tmp_path / "obj.npz"
    np.savez(pickled, weight=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="pickled"):
        read_arrays(pickled)
    corrupt = tmp_path / "corrupt.npz"
    np.savez(corrupt, weight=np.arange(1000, dtype=np.float64))
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the array
    corrupt.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"member 'weight.npy' fails its CRC-32 check"):
        read_arrays(corrupt)
    npy = tmp_path / "one.npz"
    with open(npy, "wb") as fh:
        np.save(fh, np.zeros(3))
    with pytest.raises(InputError, match=r"single \.npy array"):
        read_arrays(npy)


def test_npz_refuses_a_member_larger_than_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.npz"
    np.savez_compressed(path, weight=np.zeros((1000, 100)))  # 800 kB declared, tiny on disk
    monkeypatch.setenv("CALIBKIT_MEMORY_LIMIT", "100000")
    with pytest.raises(InputError, match=r"needs about 781\.2 KiB of memory"):
        read_arrays(path)


# --------------------------------------------------------------------------------------------
# parquet


def write_parquet(path: Path, columns: dict[str, Any], **kwargs: Any) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path, **kwargs)
    return path


def test_parquet_gives_columns_as_arrays(tmp_path: Path, kinds: dict[str, np.ndarray]) -> None:
    import pyarrow as pa

    feats = kinds["features"]
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(feats.reshape(-1)), feats.shape[1])
    path = write_parquet(
        tmp_path / "f.parquet",
        {
            "features": fixed,
            "listed": pa.array([list(row) for row in kinds["features"]]),
            "labels": kinds["labels"],
        },
        row_group_size=5,
    )
    got = read_arrays(path)
    assert list(got) == ["features", "listed", "labels"]
    np.testing.assert_array_equal(got["features"], feats)
    np.testing.assert_array_equal(got["listed"], feats)
    np.testing.assert_array_equal(got["labels"], kinds["labels"])
    assert read_arrays(path, ["labels"]).keys() == {"labels"}


def test_parquet_column_streams(tmp_path: Path) -> None:
    x = np.arange(23, dtype=np.float64)
    path = write_parquet(tmp_path / "s.parquet", {"x": x, "y": x * 2}, row_group_size=10)
    parts = list(column_batches(path, ["y"], str(path), batch_size=4))
    # no batch spans two row groups (10, 10, 3 rows): a run of groups streams the same batches
    # on its own as inside the whole file (#17)
    assert [len(p["y"]) for p in parts] == [4, 4, 2, 4, 4, 2, 3]
    assert all(p.keys() == {"y"} for p in parts)  # only the column asked for is read
    np.testing.assert_array_equal(np.concatenate([p["y"] for p in parts]), x * 2)


def test_parquet_refusals_name_the_column_and_row(tmp_path: Path) -> None:
    import pyarrow as pa

    path = write_parquet(tmp_path / "n.parquet", {"x": pa.array([1.0, None, 3.0])})
    with pytest.raises(InputError, match="column 'x' has a null at row 1"):
        read_arrays(path)
    with pytest.raises(InputError, match="column 'z' not found; columns present: x"):
        read_arrays(path, ["z"])
    text = write_parquet(tmp_path / "t.parquet", {"s": ["a", "b"]})
    with pytest.raises(InputError, match="column 's' must be numeric"):
        read_arrays(text)


def test_parquet_footer_that_understates_its_rows_is_refused(tmp_path: Path) -> None:
    """The footer-vs-row-groups check of the predictions reader guards read_arrays too."""
    import pyarrow.parquet as pq

    path = write_parquet(tmp_path / "f.parquet", {"x": np.arange(100.0)})
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == 100
    data = path.read_bytes()
    footer_len = int.from_bytes(data[-8:-4], "little")
    footer = bytearray(data[-8 - footer_len : -8])
    # FileMetaData field 3 (num_rows, i64 zigzag varint): 100 -> 200 is 0xC8 0x01 -> 0x90 0x03
    at = footer.find(bytes([0x16, 0xC8, 0x01]))
    assert at >= 0
    footer[at + 1 : at + 3] = bytes([0x90, 0x03])
    path.write_bytes(data[: -8 - footer_len] + bytes(footer) + data[-8:])
    with pytest.raises(InputError, match="counts 200 rows but its row groups hold 100"):
        read_arrays(path)


# --------------------------------------------------------------------------------------------
# pt


def test_pt_gives_tensors_as_arrays(tmp_path: Path, kinds: dict[str, np.ndarray]) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "head.pt"
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in kinds.items()}
    torch.save({**tensors, "epoch": 3, "half": tensors["weight"].to(torch.bfloat16)}, path)
    got = read_arrays(path)
    assert list(got) == [*kinds, "half"]  # the int entry is no tensor: left out
    same({k: got[k] for k in kinds}, kinds)
    assert got["half"].dtype == np.float32  # bfloat16 widened exactly
    with pytest.raises(InputError, match="entry 'epoch' is a int, not a tensor"):
        read_arrays(path, ["epoch"])
    with pytest.raises(InputError, match="key 'x' not found; keys present: bias, epoch"):
        read_arrays(path, ["x"])


def test_pt_refuses_pickled_objects_and_corrupt_records(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pickled = tmp_path / "obj.pt"
    torch.save({"weight": torch.zeros(2), "cfg": Path("x")}, pickled)
    with pytest.raises(InputError, match="pickled Python objects"):
        read_arrays(pickled)
    corrupt = tmp_path / "corrupt.pt"
    torch.save({"weight": torch.arange(4096, dtype=torch.float64)}, corrupt)
    data = bytearray(corrupt.read_bytes())
    with zipfile.ZipFile(corrupt) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("data/0"))
    data[info.header_offset + 200] ^= 0xFF  # inside the storage record
    corrupt.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"record '.*data/0' fails its CRC-32 check"):
        read_arrays(corrupt)


# --------------------------------------------------------------------------------------------
# the registry


def test_registry_suffixes_and_magic(tmp_path: Path) -> None:
    assert suffixes() == (
        ".npz",
        ".parquet",
        ".pq",
        ".pt",
        ".pth",
        ".jsonl",
        ".ndjson",
        ".json",
        ".csv",
    )
    assert [f.name for f in readers.formats()] == ["npz", "parquet", "pt", "jsonl", "csv"]
    assert format_for(Path("A.NPZ"), "A.NPZ").name == "npz"
    assert format_for(Path("x.pq"), "x.pq").name == "parquet"
    with pytest.raises(InputError, match=r"unknown file type '\.txt'; expected one of \.npz, "):
        format_for(Path("x.txt"), "x.txt")
    # without a known suffix, the contents say (read_arrays sniffs; read_predictions does not)
    npz = tmp_path / "arrays.bin"
    with open(npz, "wb") as fh:
        np.savez(fh, w=np.ones(3))
    assert format_for(npz, str(npz), sniff=True).name == "npz"
    np.testing.assert_array_equal(read_arrays(npz)["w"], np.ones(3))
    pq_file = write_parquet(tmp_path / "cols.dat", {"w": np.ones(3)})
    assert format_for(pq_file, str(pq_file), sniff=True).name == "parquet"
    with pytest.raises(InputError, match=r"unknown file type '\.bin'"):
        read_predictions(npz)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello")
    with pytest.raises(InputError, match="unknown file type"):
        read_arrays(junk)


def test_registry_sniffs_a_pt_archive_apart_from_an_npz(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "weights.bin"
    torch.save({"w": torch.ones(3)}, path)
    assert format_for(path, str(path), sniff=True).name == "pt"
    np.testing.assert_array_equal(read_arrays(path)["w"], np.ones(3, dtype=np.float32))


def test_registry_refuses_a_taken_name_or_suffix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "_FORMATS", dict(readers._FORMATS))
    with pytest.raises(ValueError, match="registered already"):
        register(Format(name="npz2", suffixes=(".npz",), module=__name__))
    with pytest.raises(ValueError, match="registered already"):
        register(Format(name="pt", suffixes=(".pt2",), module=__name__))
    with pytest.raises(ValueError, match="lower case"):
        register(Format(name="upper", suffixes=(".TOY",), module=__name__))


# A format in one module and one registration: the reader of ``.toy`` files, lines of
# ``name: v1 v2 ...`` (its two functions, put in a module of their own by the test below).


def list_keys(path: Path, source: str) -> list[str]:
    return [line.split(":", 1)[0] for line in path.read_text().splitlines()]


def read_arrays_toy(path: Path, keys: Collection[str] | None, source: str) -> dict[str, Any]:
    rows = dict(line.split(":", 1) for line in path.read_text().splitlines())
    wanted = list(rows) if keys is None else list(keys)
    missing = [k for k in wanted if k not in rows]
    if missing:
        raise InputError(source, f"key {missing[0]!r} not found")
    return {k: np.array([float(v) for v in rows[k].split()]) for k in wanted}


def test_a_new_format_is_one_module_and_one_registration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "_FORMATS", dict(readers._FORMATS))
    module = type(sys)("calibkit_test_toy_reader")
    module.list_keys = list_keys  # type: ignore[attr-defined]
    module.read_arrays = read_arrays_toy  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    register(Format(name="toy", suffixes=(".toy",), module=module.__name__))
    path = tmp_path / "preds.toy"
    path.write_text("logit: 2.0 -1.0 0.5 3.0\nlabel: 1 0 1 1\n")
    assert list(read_arrays(path)) == ["logit", "label"]
    # the predictions readers use it too, choosing the keys as for every format
    preds = read_predictions(path)
    assert (preds.n_rows, preds.n_classes, preds.binary, preds.kind) == (4, 2, True, "logits")
    probs = tmp_path / "p.toy"
    probs.write_text("p: 0.9 0.2\ny: 0 0\n")
    opts = ReadOptions(scores_key="p", labels_key="y", kind="probs")
    assert read_predictions(probs, opts).kind == "probs"
    (tmp_path / "bad.toy").write_text("a: 1\n")
    with pytest.raises(InputError, match="no logits or probabilities found; keys present: a"):
        read_predictions(tmp_path / "bad.toy")


# --------------------------------------------------------------------------------------------
# the layer


def test_readers_import_nothing_above_them() -> None:
    """Readers import only errors/limits/_version, io and themselves (also inside functions)."""
    allowed = (
        "calibkit.errors",
        "calibkit.limits",
        "calibkit._version",
        "calibkit.plugins",  # the errors layer: imported when a suffix is not registered
        "calibkit.io",
        "calibkit.readers",
    )
    for path in sorted((PACKAGE / "readers").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.startswith("calibkit"):
                    assert name.startswith(allowed), f"{path.name} imports {name}"


def test_reading_arrays_loads_no_validator(tmp_path: Path) -> None:
    """In a fresh interpreter, reading npz, parquet and pt arrays imports no calibkit.sources
    or calibkit.loaders module."""
    pytest.importorskip("torch")
    script = (
        "import sys, numpy as np, torch, pyarrow as pa, pyarrow.parquet as pq\n"
        "from calibkit.readers import read_arrays\n"
        "np.savez(sys.argv[1] + '/a.npz', w=np.ones(2))\n"
        "pq.write_table(pa.table({'w': [1.0]}), sys.argv[1] + '/a.parquet')\n"
        "torch.save({'w': torch.ones(2)}, sys.argv[1] + '/a.pt')\n"
        "for ext in ('npz', 'parquet', 'pt'):\n"
        "    assert 'w' in read_arrays(sys.argv[1] + '/a.' + ext)\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('calibkit.sources',"
        " 'calibkit.loaders', 'calibkit.metrics', 'calibkit.cli')))\n"
        "print(bad)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
