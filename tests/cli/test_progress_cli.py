"""The progress bar of the real program (``python -m calibkit``), with stderr on a
pseudo-terminal and stdout on a pipe.

* On a terminal the bar is drawn on stderr (``CALIBKIT_PROGRESS_DELAY=0`` shows it at once), then
  erased: what stays on the screen is calibkit's own lines, and the cursor is visible again.
* Nothing is drawn with ``--quiet``, when stderr is a pipe (whatever ``FORCE_COLOR`` says), on a
  dumb terminal, or before the delay.
* stdout never receives any of it: with ``--json`` it is one JSON object.
* Ctrl-C while the bar is up: exit 130, and the screen holds exactly ``calibkit: interrupted``.

The screen is what a terminal would show after the bytes written to it
(:func:`screen`: a small emulator of the few controls Rich uses). Sleeps are used only to poll;
no test asserts on durations.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

if sys.platform == "win32":  # pragma: no cover
    pytest.skip("pseudo-terminals are POSIX", allow_module_level=True)

import fcntl
import pty
import struct
import termios

PATIENCE = 60.0  # seconds before a run is abandoned (a safety net, not an assertion)
WIDTH = 100


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALIBKIT_")}
    for k in ("FORCE_COLOR", "NO_COLOR", "TTY_INTERACTIVE", "TTY_COMPATIBLE", "COLUMNS"):
        env.pop(k, None)
    env.update({"TERM": "xterm-256color", "CALIBKIT_PROGRESS_DELAY": "0"})
    env.update(extra)
    return env


def run_on_tty(
    *args: object, interrupt_on: bytes | None = None, **env: str
) -> tuple[int, str, bytes]:
    """Run calibkit with stderr on a pseudo-terminal of ``WIDTH`` columns and stdout on a pipe;
    ``(exit status, stdout, bytes written to the terminal)``. With ``interrupt_on``, send
    SIGINT once those bytes have appeared on the terminal."""
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, WIDTH, 0, 0))
    out_r, out_w = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "calibkit", *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=out_w,
        stderr=secondary,
        env=environment(**env),
    )
    os.close(secondary)
    os.close(out_w)
    tty, out = b"", b""
    open_fds = {main, out_r}
    deadline = time.monotonic() + PATIENCE
    sent = False
    try:
        while open_fds and time.monotonic() < deadline:
            ready, _, _ = select.select(list(open_fds), [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # the terminal's other side closed (EIO on Linux)
                    data = b""
                if not data:
                    open_fds.discard(fd)
                elif fd == main:
                    tty += data
                else:
                    out += data
            if interrupt_on is not None and not sent and interrupt_on in tty:
                time.sleep(0.2)  # a few redraws of the bar
                proc.send_signal(signal.SIGINT)
                sent = True
        if open_fds:
            proc.kill()
            pytest.fail(f"calibkit did not finish; terminal: {tty[-2000:]!r}")
        rc = proc.wait(timeout=PATIENCE)
    finally:
        os.close(main)
        os.close(out_r)
        if proc.poll() is None:
            proc.kill()
    if interrupt_on is not None:
        assert sent, f"the bar never showed: {tty!r}"
    return rc, out.decode(), tty


_TOKEN = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\r|\n|[^\x1b\r\n]+")


def screen(data: bytes) -> list[str]:
    """The lines a terminal shows after ``data``: text, CR, LF, cursor up/down, erase in line;
    colours and cursor visibility change nothing on it. Anything else fails the test."""
    lines, row, col = [""], 0, 0
    for m in _TOKEN.finditer(data.decode()):
        tok = m.group(0)
        if tok == "\r":
            col = 0
        elif tok == "\n":
            row, col = row + 1, 0
        elif tok.startswith("\x1b["):
            params, cmd = m.group(1), m.group(2)
            if cmd in "hlm" and (cmd == "m" or params.startswith("?")):
                continue
            n = int(params or 1)
            if cmd == "A":
                row = max(0, row - n)
            elif cmd == "B":
                row += n
            elif cmd == "K" and params == "2":
                lines[row] = ""
            elif cmd == "K" and params in ("", "0"):
                lines[row] = lines[row][:col]
            else:
                pytest.fail(f"unexpected control {tok!r}")
        else:
            lines[row] = lines[row].ljust(col)[:col] + tok + lines[row][col + len(tok) :]
            col += len(tok)
        while len(lines) <= row:
            lines.append("")
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.rstrip() for line in lines]


def cursor_shown(data: bytes) -> bool:
    return data.rfind(b"\x1b[?25h") >= data.rfind(b"\x1b[?25l")


@pytest.fixture(scope="module")
def preds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 2.0, size=(20_000, 10)).astype(np.float32)
    y = np.where(rng.random(20_000) < 0.6, z.argmax(axis=1), rng.integers(0, 10, 20_000))
    path = tmp_path_factory.mktemp("progress") / "val.npz"
    np.savez(path, logits=z, labels=y)
    return path


# ---------------------------------------------------------------------------------------------


def test_the_bar_shows_on_a_terminal_and_leaves_stdout_one_json_object(preds: Path) -> None:
    rc, out, tty = run_on_tty("fit-temp", preds, "--json", "--chunk-rows", "1000")
    assert rc == 0, tty
    report = json.loads(out)  # the whole of stdout: one JSON object
    assert report["passes"] >= 2
    drawn = tty.decode()
    assert f"{preds}: temperature fit · pass 1" in drawn
    assert "/20,000 rows" in drawn
    # (no separate "metrics" pass: the fit's first and last passes carry the metrics)
    assert "\x1b" not in out and "━" not in out and "/20,000" not in out
    assert screen(tty) == []  # erased: no bar, nothing else was printed on stderr
    assert cursor_shown(tty)


def test_lines_printed_while_the_bar_is_up_stay_and_the_bar_goes(
    preds: Path, tmp_path: Path
) -> None:
    out_file = tmp_path / "T.json"
    rc, out, tty = run_on_tty("fit-temp", preds, "--out", out_file, "--chunk-rows", "1000")
    assert rc == 0, tty
    assert out.startswith("T = ")  # the table on stdout, untouched
    assert out_file.exists()
    assert "rows" in tty.decode()
    assert all("rows" not in line for line in screen(tty))


def test_no_bar_with_quiet(preds: Path) -> None:
    rc, out, tty = run_on_tty("--quiet", "ece", preds, "--json", "--chunk-rows", "1000")
    assert rc == 0
    json.loads(out)
    assert tty == b""


def test_no_bar_before_the_delay(preds: Path) -> None:
    rc, out, tty = run_on_tty("ece", preds, "--json", CALIBKIT_PROGRESS_DELAY="3600")
    assert rc == 0
    json.loads(out)
    assert tty == b""


def test_no_bar_on_a_dumb_terminal(preds: Path) -> None:
    rc, out, tty = run_on_tty("ece", preds, "--json", "--chunk-rows", "1000", TERM="dumb")
    assert rc == 0
    json.loads(out)
    assert tty == b""


@pytest.mark.parametrize("force", [{}, {"FORCE_COLOR": "1", "TTY_INTERACTIVE": "1"}])
def test_no_bar_when_stderr_is_a_pipe(preds: Path, force: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "calibkit", "fit-temp", str(preds), "--json"],
        capture_output=True,
        text=True,
        env=environment(**force),
        timeout=PATIENCE,
    )
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout)
    assert proc.stderr == ""


def test_ctrl_c_while_the_bar_is_up_leaves_one_line_and_a_sane_terminal(preds: Path) -> None:
    rc, out, tty = run_on_tty(
        "sweep-temp", preds, "--steps", "2000", "--chunk-rows", "200", interrupt_on=b"rows"
    )
    assert rc == 130
    assert out == ""
    assert b"Traceback" not in tty
    assert screen(tty) == ["calibkit: interrupted"]
    assert tty.count(b"calibkit: interrupted") == 1
    assert cursor_shown(tty)


def test_a_warning_during_the_work_stays_on_the_screen(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(5), size=5_000)
    p[:200] = np.eye(5)[rng.integers(0, 5, 200)]  # saturated rows: the fit warns about them
    y = rng.integers(0, 5, 5_000)
    path = tmp_path / "probs.npz"
    np.savez(path, probs=p, labels=y)
    rc, _, tty = run_on_tty("fit-temp", path, "--json", "--chunk-rows", "500")
    assert rc == 0, tty
    shown = screen(tty)
    assert shown and all(line.startswith("calibkit: warning: ") for line in shown), shown
