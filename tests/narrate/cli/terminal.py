"""``narrate`` run as a person runs it: a pseudo-terminal for its stdout and stderr, and what that
terminal then shows, scrollback included, as a real terminal emulator (pyte) draws it."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pyte

COLUMNS, ROWS = 120, 40


def run_in_terminal(args: list[str], cwd: Path, env: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    """The exit code and every byte the command wrote to its terminal."""
    controller, terminal = pty.openpty()
    os.set_inheritable(terminal, True)
    environment = {**os.environ, **(env or {}), "COLUMNS": str(COLUMNS), "LINES": str(ROWS)}
    environment["TERM"] = "xterm-256color"
    process = subprocess.Popen(
        [sys.executable, "-m", "narrate.cli", *args], stdin=terminal, stdout=terminal, stderr=terminal,
        cwd=cwd, env=environment, close_fds=True,
    )  # fmt: skip
    os.close(terminal)
    chunks = []
    while True:
        try:
            data = os.read(controller, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(controller)
    return process.wait(timeout=600), b"".join(chunks)


def screen_lines(output: bytes) -> list[str]:
    """The lines a 120x40 terminal holds after ``output``: its scrollback, then the screen."""
    screen = pyte.HistoryScreen(COLUMNS, ROWS, history=10_000, ratio=0.5)
    screen.set_mode(pyte.modes.LNM)  # the pty turns \n into \r\n; pyte needs to be told
    pyte.ByteStream(screen).feed(output)
    scrolled = ["".join(line[x].data for x in range(COLUMNS)) for line in screen.history.top]
    return [line.rstrip() for line in [*scrolled, *screen.display] if line.strip()]


def shown_text(output: bytes) -> str:
    return "\n".join(screen_lines(output))
