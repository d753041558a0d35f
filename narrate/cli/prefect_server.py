"""The Prefect server the CLI talks to. An explicit ``PREFECT_API_URL`` wins. Otherwise the first command
that needs Prefect starts one local server in the background (``prefect server start`` on 127.0.0.1,
SQLite, log and record under ``.prefect/``, analytics off) and every later command reuses it while it
answers, so a command pays for no server start of its own; ``narrate server status|stop``.

Why not ``prefect server start --background``: it records the server's pid but not its port, and
returns before the server answers; the CLI needs both to reuse a server on any port and to know when
it can start work. The record here is ``.prefect/narrate-server.json``; a lock file keeps two commands
started together from starting two servers on one database.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from narrate.errors import ConfigError
from narrate.prefect_api import RECORD_NAME, BackgroundServer, configured_api_url, healthy, server_home

DEFAULT_PORT = 4200
START_TIMEOUT_SECONDS = 180.0  # a first start on a fresh database takes 10-40 s on 2 busy cores
STOP_TIMEOUT_SECONDS = 30.0


def prepare_prefect_environment() -> None:
    """Defaults that make a first run on a fresh machine work; explicit settings win. Call before
    Prefect is imported: its settings are read once, at import.

    Where Prefect starts a temporary server of its own (the benchmarks, without PREFECT_API_URL), its
    start-up can take 20-40 s on a fresh PREFECT_HOME, past Prefect's default 20 s timeout.
    """
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "240")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_UI_ENABLED", "false")


def use_prefect_server(console: Console, mode: str = "background") -> str:
    """The API this command talks to: the one configured, else the background server (started now if
    none answers), or with ``mode`` "temporary" Prefect's own server for this process alone. Sets
    ``PREFECT_API_URL`` for the rest of the process; call before importing Prefect."""
    prepare_prefect_environment()
    api = configured_api_url()
    if api is None and mode == "temporary":
        console.print("[dim]NARRATE_PREFECT_SERVER=temporary: Prefect starts a server for this command "
                      "(10-40 s)[/]")  # fmt: skip
        return "a temporary server"
    if api is None:
        api = ensure_background_server(console).api_url
        os.environ["PREFECT_API_URL"] = api
    return api


def ensure_background_server(
    console: Console, port: int | None = None, home: Path | None = None
) -> BackgroundServer:
    """The background server, reused while it answers (on ``port`` when one is asked for: a server on
    another port is stopped and started again on this one, with the same database)."""
    home = home or server_home()
    home.mkdir(parents=True, exist_ok=True)
    with _locked(home):
        server = BackgroundServer.recorded(home)
        wanted = server is not None and (port is None or server.port == port)
        if server is not None and wanted and (server.answers() or _wait_for(server, console, home)):
            return server
        if server is not None:
            _stop(server, home)
        return _start(port or _free_port(DEFAULT_PORT), console, home)


def stop_background_server(home: Path | None = None) -> BackgroundServer | None:
    """Stop the background server; the one that was recorded (None: there was none)."""
    home = home or server_home()
    if not home.is_dir():
        return None
    with _locked(home):
        server = BackgroundServer.recorded(home)
        if server is not None:
            _stop(server, home)
        return server


def _start(port: int, console: Console, home: Path) -> BackgroundServer:
    if not _port_is_free(port):
        raise ConfigError(f"port {port} is in use by another program; choose another with --port")
    api = f"http://127.0.0.1:{port}/api"
    env = os.environ | {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true",
        # the UI asks its API at the address these give; `--port` alone leaves it at 4200
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_API_URL": api,
    }
    env.pop("PREFECT_API_URL", None)
    log_path = home / "server.log"
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this command, and no terminal signal reaches it
        )  # fmt: skip
    server = BackgroundServer(process.pid, port, time.time())
    server.save(home)
    if not _wait_for(server, console, home):
        _stop(server, home)
        raise ConfigError(
            f"the local Prefect server did not start within {START_TIMEOUT_SECONDS:.0f} s; see {log_path}, "
            "or set PREFECT_API_URL to a server that runs"
        )
    console.print(f"[dim]started the local Prefect server in the background: {server.ui_url} (later commands "
                  "reuse it; narrate server stop stops it)[/]", soft_wrap=True)  # fmt: skip
    return server


def _wait_for(server: BackgroundServer, console: Console, home: Path) -> bool:
    """Wait until the recorded server answers; False when its process is gone or it is too late."""
    deadline = server.started_at + START_TIMEOUT_SECONDS
    message = (
        f"starting the local Prefect server on 127.0.0.1:{server.port} in the background "
        f"(10-40 s on a first run; log {home / 'server.log'})"
    )
    with console.status(message) if console.is_terminal else contextlib.nullcontext():
        if not console.is_terminal:
            console.print(message, highlight=False, soft_wrap=True)
        while not server.answers():
            if not _alive(server.pid) or time.time() > deadline:
                return False
            time.sleep(0.25)
    return True


def _stop(server: BackgroundServer, home: Path) -> None:
    if _alive(server.pid) and _is_prefect_server(server.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while _alive(server.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
    (home / RECORD_NAME).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie child of this process: it has exited
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False
    return True


def _is_prefect_server(pid: int) -> bool:
    """Whether ``pid`` is still the server (not an unrelated process that got its pid since)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the record
    return b"prefect" in command and b"server" in command


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is free
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return not healthy(f"http://127.0.0.1:{port}/api")


def _free_port(preferred: int) -> int:
    if _port_is_free(preferred):
        return preferred
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    with (home / "narrate-server.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
