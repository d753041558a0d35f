"""Which Prefect API a command talks to, and whether it answers: an explicit ``PREFECT_API_URL`` (or the
settings in force in this process), else the CLI's background server, recorded in its home folder
(``.prefect/`` unless ``PREFECT_HOME`` says otherwise). ``narrate doctor`` reads it; the CLI starts and
stops it (:mod:`narrate.cli.prefect_server`)."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from narrate.files import write_json_atomic

RECORD_NAME = "narrate-server.json"


def healthy(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api.rstrip('/')}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def configured_api_url() -> str | None:
    """The API named explicitly: ``PREFECT_API_URL`` in the environment or, once Prefect is imported,
    in its settings (a test harness sets it there). None: the CLI uses its background server."""
    if explicit := os.environ.get("PREFECT_API_URL"):
        return explicit
    if "prefect.settings" in sys.modules:
        from prefect.settings import PREFECT_API_URL

        return PREFECT_API_URL.value() or None
    return None


def server_home() -> Path:
    """Where the background server keeps its database, log and record."""
    return Path(os.environ.get("PREFECT_HOME") or ".prefect").resolve()


@dataclass(frozen=True)
class BackgroundServer:
    """The CLI's background Prefect server, as recorded when it was started."""

    pid: int
    port: int
    started_at: float

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def save(self, home: Path) -> None:
        write_json_atomic(home / RECORD_NAME, asdict(self))

    @classmethod
    def recorded(cls, home: Path) -> BackgroundServer | None:
        try:
            data = json.loads((home / RECORD_NAME).read_text(encoding="utf-8"))
            return cls(int(data["pid"]), int(data["port"]), float(data["started_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def answers(self) -> bool:
        return healthy(self.api_url)
