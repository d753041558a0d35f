"""The local Prefect server the commands share: started once in the background (two commands started
together start one), reused while it answers, reported and stopped by ``narrate server``."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from rich.console import Console

from narrate.cli import prefect_server
from narrate.cli.prefect_server import ensure_background_server
from narrate.prefect_api import RECORD_NAME, BackgroundServer

ROOT = Path(__file__).resolve().parents[3]


def narrate_server(action: str, home: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")} | {
        "PREFECT_HOME": str(home)
    }
    return subprocess.Popen(
        [sys.executable, "-m", "narrate.cli", "server", action], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def finished(process: subprocess.Popen[str]) -> tuple[int, str]:
    output, _ = process.communicate(timeout=240)
    return process.returncode, output


def test_one_background_server_for_every_command_until_stopped(tmp_path: Path) -> None:
    home = tmp_path / "prefect"
    together = [narrate_server("start", home), narrate_server("start", home)]
    try:
        outputs = [finished(p) for p in together]
        assert [code for code, _ in outputs] == [0, 0], outputs
        pids = {re.search(r"pid (\d+)", output)[1] for _, output in outputs}  # type: ignore[index]
        server = BackgroundServer.recorded(home)
        assert server is not None and pids == {str(server.pid)}, outputs  # one server, not two
        assert server.answers()
        reused = ensure_background_server(Console(file=io.StringIO()), home=home)
        assert reused == server  # answered: nothing started
        code, status = finished(narrate_server("status", home))
        assert code == 0 and f"running: {server.ui_url} (pid {server.pid}" in status, status
    finally:
        code, stopped = finished(narrate_server("stop", home))
    assert code == 0 and "stopped the Prefect server" in stopped, stopped
    assert not server.answers() and not (home / RECORD_NAME).exists()
    code, status = finished(narrate_server("status", home))
    assert code == 1 and "no background Prefect server" in status, status


def test_commands_started_together_wait_for_the_first_ones_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock around look-and-start: without it both commands find no server and start one each."""
    starts: list[int] = []

    def slow_start(port: int, console: Console, home: Path) -> BackgroundServer:
        starts.append(port)
        time.sleep(0.5)  # a server's start takes seconds: the other command looks meanwhile
        server = BackgroundServer(os.getpid(), port, time.time())
        server.save(home)
        return server

    monkeypatch.setattr(prefect_server, "_start", slow_start)
    monkeypatch.setattr(BackgroundServer, "answers", lambda self: True)
    console = Console(file=io.StringIO())
    with ThreadPoolExecutor(2) as pool:
        servers = list(pool.map(lambda _: ensure_background_server(console, home=tmp_path), range(2)))
    assert len(starts) == 1 and servers[0] == servers[1]
