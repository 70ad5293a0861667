"""A Ctrl-C at the worst moment of making an output's temporary file or folder: right after it
was created, before the code that removes it on error was entered. Regression (seen in CI):
``mkstemp`` returns the name only after creating the file, so a SIGINT in between left a
hidden ``.out.npz.XXXX.tmp.npz`` beside the output. The name is now recorded first."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from calibkit.io import atomic
from calibkit.io.atomic import atomic_directory, atomic_path


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """Make ``os.<name>`` do its work, then raise KeyboardInterrupt (once)."""
    real = getattr(os, name)
    calls: list[str] = []

    def patched(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if not calls:
            calls.append(str(args[0]))
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(atomic.os, name, patched)
    return calls


@pytest.mark.parametrize("name", ["open", "close"])
def test_an_interrupt_right_after_the_temporary_file_exists_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    out = tmp_path / "out.npz"
    out.write_bytes(b"old")
    calls = _interrupt_after(monkeypatch, name)
    with pytest.raises(KeyboardInterrupt), atomic_path(out) as tmp:
        tmp.write_bytes(b"new")  # pragma: no cover - never reached
    assert calls, "the interrupt was not raised where the file is made"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]
    assert out.read_bytes() == b"old"


def test_an_interrupt_right_after_the_temporary_folder_exists_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report"
    calls = _interrupt_after(monkeypatch, "mkdir")
    with pytest.raises(KeyboardInterrupt), atomic_directory(target, owned={"a.txt"}) as built:
        (built / "a.txt").write_text("x")  # pragma: no cover - never reached
    assert calls
    assert list(tmp_path.iterdir()) == []


def test_a_name_already_taken_is_never_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.npz"
    tokens = iter(["taken", "fresh"])
    monkeypatch.setattr(atomic, "_token", lambda: next(tokens))
    other = tmp_path / ".out.npz.taken.tmp.npz"
    other.write_bytes(b"someone else's")
    with atomic_path(out) as tmp:
        assert tmp.name == ".out.npz.fresh.tmp.npz"
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new"
    assert other.read_bytes() == b"someone else's"
