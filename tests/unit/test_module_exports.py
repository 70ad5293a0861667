"""The format modules of ``calibkit.loaders`` export what they define (#14).

The reader layer's names (``npz_members``, ``verify_crc``, ``parquet_file``, ``read_error``, ...)
live in :mod:`calibkit.readers`; the validators above them no longer re-export them. The memory
helpers stay importable from :mod:`calibkit.sources.memory` (the CHANGELOG promises it), as the
very objects of :mod:`calibkit.readers.memory`.
"""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    "name", ["calibkit.loaders.npz", "calibkit.loaders.parquet", "calibkit.loaders.torch_pt"]
)
def test_a_loader_exports_only_its_own_names(name: str) -> None:
    module = importlib.import_module(name)
    foreign = [n for n in module.__all__ if getattr(getattr(module, n), "__module__", name) != name]
    assert foreign == []


def test_the_reader_names_are_not_re_exported_by_the_loaders() -> None:
    from calibkit.loaders import npz, parquet

    assert npz.__all__ == ["NpzShard", "ShardedNpz", "open_npz_shards", "read_npz"]
    for gone in ("npz_members", "verify_crc", "crc32_of"):
        assert not hasattr(npz, gone), gone
    for gone in ("parquet_file", "read_error", "count_mismatch"):
        assert not hasattr(parquet, gone), gone


def test_the_memory_helpers_are_still_importable_from_sources_memory() -> None:
    from calibkit.readers import memory as readers_memory
    from calibkit.sources import memory

    for name in ("available_memory", "check_fits", "format_bytes"):
        assert getattr(memory, name) is getattr(readers_memory, name)
