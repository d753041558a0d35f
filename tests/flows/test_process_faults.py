"""Faults of the machines around a render: its own process killed, the Prefect server restarted.

Renders run as ``narrate render`` subprocesses against the session's embedded AWS, which they see as
"real" AWS (``--aws real`` with ``AWS_ENDPOINT_URL`` pointing at it), so the endpoint outlives them
exactly as a real one outlives a killed orchestrator.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from narrate.aws.local import LocalAws
from narrate.manifest import RenderManifest
from narrate.outputs import RenderFolder
from tests.conftest import EXAMPLES, wait_for
from tests.flows.test_render_narration import endpoint_instances

ROOT = Path(__file__).resolve().parents[2]
HOLD_SECONDS = 6  # renewed every 2 s while a render lives
pytestmark = pytest.mark.usefixtures("prefect_server")


def render_env(embedded_aws: LocalAws, **extra: str) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return (
        dict(os.environ)
        | embedded_aws.environment()
        | {
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "NARRATE_AWS": "real",
            "NARRATE_ROLE_ARN": "arn:aws:iam::123456789012:role/narrate-test-endpoint",
            "NARRATE_BATCH_SIZE": "2",
            "NARRATE_HOLD_SECONDS": str(HOLD_SECONDS),
        }
        | extra
    )


def start_render(script: Path, out: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "narrate.cli", "render", str(script), "--out", str(out)],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def cached_clips(cache_dir: Path) -> int:
    """Clips in the cache (a killed writer can leave its hidden temporary file: not a clip)."""
    return sum(1 for path in cache_dir.rglob("*.wav") if not path.name.startswith("."))


def test_a_render_killed_mid_fan_out_is_completed_by_a_rerun_without_resynthesising(
    tmp_path: Path, embedded_aws: LocalAws
) -> None:
    emulator: Any = embedded_aws.emulator
    env = render_env(embedded_aws)
    cache_dir = Path(env["NARRATE_CACHE_DIR"])
    script = tmp_path / "demo.yaml"
    script.write_text((EXAMPLES / "demo.yaml").read_text())
    synthesised_at_start = sum(emulator.synthesised.values())
    emulator.set_invocation_seconds(1.5)  # four requests of two, one after the other: ~6 s of work
    try:
        killed = start_render(script, tmp_path / "first", env, tmp_path / "first.log")
        assert wait_for(lambda: cached_clips(cache_dir) >= 2 or killed.poll() is not None, 180)
        killed.send_signal(signal.SIGKILL)
        killed.wait(30)
        finished_before = cached_clips(cache_dir)
        assert 2 <= finished_before < 8, (tmp_path / "first.log").read_text()
        killed_at = time.monotonic()
        # nothing stays up for a dead render: its hold runs out and AWS's scheduled action releases it
        assert wait_for(lambda: endpoint_instances() == (0, 0), HOLD_SECONDS + 20), endpoint_instances()
        assert time.monotonic() - killed_at < HOLD_SECONDS + 20
    finally:
        emulator.set_invocation_seconds(0.0)

    started = time.monotonic()
    rerun = subprocess.run(
        [sys.executable, "-m", "narrate.cli", "render", str(script), "--out", str(tmp_path / "second")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    waited = time.monotonic() - started
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    log = RenderFolder(tmp_path / "second").log_path.read_text()  # the CLI's log lines go here
    manifest = RenderManifest.load(tmp_path / "second" / "manifest.json")
    assert manifest.state == "completed"
    hits = [s.id for s in manifest.segments if s.cache_hit]
    assert len(hits) == finished_before  # every clip that had finished was reused, and the requests
    # the dead render had queued were adopted, not asked again: each segment was synthesised once
    assert sum(emulator.synthesised.values()) - synthesised_at_start == 8
    assert "adopted" in log
    assert endpoint_instances() == (0, 0)
    # the dead render's slot was freed by the rerun once its heartbeat had been silent 30 s (Prefect's
    # own lease never lapses on an ephemeral server), and its run no longer claims to be running
    assert waited < 120, waited
    assert "went silent" in log
    assert run_states(f"render-{script}") == ["COMPLETED", "CRASHED"]


def run_states(flow_run_name: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        named = FlowRunFilter(name=FlowRunFilterName(any_=[flow_run_name]))
        runs = client.read_flow_runs(flow_run_filter=named)
    return sorted(run.state_type.value for run in runs if run.state_type is not None)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_prefect_server(home: Path, port: int) -> subprocess.Popen[bytes]:
    """A real ``prefect server start`` (services and all) on 127.0.0.1, its SQLite database in ``home``."""
    from narrate.prefect_api import healthy

    env = dict(os.environ) | {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    log = (home / "server.log").open("ab")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    assert wait_for(lambda: healthy(f"http://127.0.0.1:{port}/api") or server.poll() is not None, 180)
    assert server.poll() is None, (home / "server.log").read_text()
    return server


def test_a_prefect_server_restarted_during_a_render(tmp_path: Path, embedded_aws: LocalAws) -> None:
    emulator: Any = embedded_aws.emulator
    home, port = tmp_path / "prefect-home", free_port()
    home.mkdir()
    server = start_prefect_server(home, port)
    env = render_env(embedded_aws, PREFECT_API_URL=f"http://127.0.0.1:{port}/api", NARRATE_BATCH_SIZE="1")
    cache_dir = Path(env["NARRATE_CACHE_DIR"])
    script = tmp_path / "demo.yaml"
    script.write_text((EXAMPLES / "demo.yaml").read_text())
    emulator.set_invocation_seconds(4.0)  # eight requests, two at a time: ~16 s of synthesis
    try:
        render = start_render(script, tmp_path / "out", env, tmp_path / "render.log")
        assert wait_for(lambda: cached_clips(cache_dir) >= 1 or render.poll() is not None, 180)
        synthesised_before = sum(emulator.synthesised.values())
        assert render.poll() is None and cached_clips(cache_dir) < 8  # mid-fan-out
        server.terminate()  # the server goes away ...
        server.wait(60)
        time.sleep(3)
        server = start_prefect_server(home, port)  # ... and comes back on the same address and database
        render.wait(300)
    finally:
        emulator.set_invocation_seconds(0.0)
        server.terminate()
        server.wait(60)
    log = (tmp_path / "render.log").read_text()
    manifest = RenderManifest.load(tmp_path / "out" / "manifest.json")
    assert render.returncode == 0, log
    assert manifest.state == "completed" and (tmp_path / "out" / "narration.wav").exists()
    assert cached_clips(cache_dir) == 8
    assert sum(emulator.synthesised.values()) - synthesised_before <= 8  # nothing was synthesised twice
    assert all(s.attempts == 1 for s in manifest.segments if not s.cache_hit)
    assert endpoint_instances() == (0, 0)
