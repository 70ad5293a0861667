"""A FIFO reader for the tests that write outputs into named pipes (imported by test modules;
``tests/`` is on ``sys.path`` because ``tests/conftest.py`` lives there)."""

import os
import select
import threading
import time
from collections.abc import Callable
from pathlib import Path

PATIENCE = 60.0  # seconds before a FIFO reader gives up (a safety net, not an assertion)


def read_fifo_while(fifo: Path, write: Callable[[], object]) -> bytes:
    """Call ``write()`` while a thread reads ``fifo``; returns what the thread read.

    The read end is opened first and without blocking, so a writer never waits for a reader,
    and a ``write()`` that wrongly replaces the FIFO returns without anyone blocking."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    done = threading.Event()
    chunks: list[bytes] = []

    def read_available() -> bytes:
        try:
            return os.read(fd, 1 << 16)
        except BlockingIOError:
            return b""

    def reader() -> None:
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            select.select([fd], [], [], 0.01)
            data = read_available()
            if data:
                chunks.append(data)
            elif done.is_set():  # every byte was written before this was set
                while data := read_available():
                    chunks.append(data)
                break
            else:
                time.sleep(0.001)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        write()
    finally:
        done.set()
        thread.join(PATIENCE)
        os.close(fd)
    return b"".join(chunks)
