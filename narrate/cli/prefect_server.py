"""The Prefect server the CLI talks to: defaults that make a first run work, and a local server for
``narrate serve`` (SQLite under the project's ``.prefect/``, on 127.0.0.1, analytics off)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from narrate.errors import ConfigError
from narrate.prefect_api import healthy

DEFAULT_PORT = 4200


def prepare_prefect_environment() -> None:
    """Defaults that make a first run on a fresh machine work; explicit settings win.

    Without PREFECT_API_URL, Prefect starts a temporary local server per process; on a fresh
    PREFECT_HOME its start-up can take 20-40 s, past Prefect's default 20 s timeout.
    """
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "240")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_UI_ENABLED", "false")


def start_server(port: int, console: Console) -> subprocess.Popen[bytes]:
    """``prefect server start`` on 127.0.0.1, waited for until it answers."""
    home = Path(os.environ.get("PREFECT_HOME", ".prefect")).resolve()
    env = os.environ | {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true",
    }
    env.pop("PREFECT_API_URL", None)
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "server.log").open("ab")
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api"
    with console.status(f"starting a local Prefect server on 127.0.0.1:{port} (log: {home / 'server.log'})"):
        deadline = time.monotonic() + 180
        while not healthy(api):
            if server.poll() is not None or time.monotonic() > deadline:
                server.terminate()
                raise ConfigError(f"the Prefect server did not start; see {home / 'server.log'}")
            time.sleep(0.5)
    return server
