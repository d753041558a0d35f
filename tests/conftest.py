"""Session-wide Prefect server (a real local API, not ephemeral mode) and per-test narrate folders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_UI_ENABLED", "false")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(autouse=True)
def narrate_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Cache, state and renders in a fresh folder per test; settings re-read."""
    from narrate.settings import get_settings

    monkeypatch.setenv("NARRATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NARRATE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NARRATE_RENDERS_DIR", str(tmp_path / "renders"))
    monkeypatch.setenv("NARRATE_RETRY_BASE_SECONDS", "0")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def write_script(folder: Path, body: str, name: str = "script.yaml") -> Path:
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path
