"""The deployments as users run them: served by one process against a real local Prefect server.

The serve process runs each flow run in a process of its own, with its own embedded AWS; faults are
injected through local mode's fault file (the only way into that process).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from narrate.manifest import RenderManifest
from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(scope="module")
def served(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``python -m deployments.deployments`` with narrate's state in a folder of its own."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    home = tmp_path_factory.mktemp("served")
    env = os.environ | {
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "NARRATE_CACHE_DIR": str(home / "cache"),
        "NARRATE_STATE_DIR": str(home / "state"),
        "NARRATE_RENDERS_DIR": str(home / "renders"),
        "NARRATE_ENDPOINT_NAME": "narrate-served",
        "NARRATE_BUCKET": "narrate-served",
        "NARRATE_LOCAL_COLD_START_SECONDS": "0.3",
        "NARRATE_LOCAL_TIME_SCALE": "0.02",
        "NARRATE_RETRY_BASE_SECONDS": "0",
        "NARRATE_LOCAL_FAULT_FILE": str(home / "faults.json"),
        "NARRATE_WEEKLY_SCRIPT": str(Path(shutil.copy(EXAMPLES / "demo.yaml", home / "weekly.yaml"))),
    }
    log = (home / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "deployments.deployments"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    client.read_deployment_by_name("retry-failed-segments/retry-failed-segments")
                    break
                except Exception:
                    assert process.poll() is None and time.monotonic() < deadline, (
                        home / "serve.log"
                    ).read_text()
                    time.sleep(0.5)
        yield home
    finally:
        process.terminate()
        process.wait(timeout=30)


def fresh_script(folder: Path, suffix: str) -> Path:
    import yaml

    data = yaml.safe_load((EXAMPLES / "demo.yaml").read_text())
    for segment in data["segments"]:
        segment["text"] += f" {suffix}"
    path = folder / "script.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run(name: str, parameters: dict[str, Any]) -> Any:
    from prefect.deployments import run_deployment

    return run_deployment(name, parameters=parameters, timeout=240, poll_interval=1)


def test_a_manual_run_of_the_render_deployment_completes(served: Path, tmp_path: Path) -> None:
    script = shutil.copy(EXAMPLES / "demo.yaml", tmp_path / "demo.yaml")
    flow_run = run("render-narration/render", {"script": str(script), "out_dir": str(tmp_path / "out")})
    assert flow_run.state.is_completed(), (served / "serve.log").read_text()[-3000:]
    assert (tmp_path / "out" / "narration.wav").exists()
    assert RenderManifest.load(tmp_path / "out" / "manifest.json").state == "completed"


def test_an_invalid_parameter_is_refused_before_the_run(served: Path, tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"(?i)validat"):
        run("render-narration/render", {"script": "x.yaml", "voice_engine": "klingon"})
    with pytest.raises(Exception, match=r"(?i)validat"):
        run("render-narration/render", {"script": "x.yaml", "generation": {"seed": -1}})


def test_the_ui_retry_re_runs_only_what_failed(served: Path, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    script = fresh_script(tmp_path, "Once more.")  # not in the served cache yet
    (served / "faults.json").write_text(json.dumps({"fail_segments_once": ["pick-tables", "alerts"]}))
    out = tmp_path / "out"
    flow_run = run("render-narration/render", {"script": str(script), "out_dir": str(out)})
    assert flow_run.state.is_failed()
    assert set(RenderManifest.load(out / "manifest.json").failed()) == {"pick-tables", "alerts"}

    with get_client(sync_client=True) as client:  # what the UI's Retry button does
        retry = Scheduled(scheduled_time=datetime.now(UTC), name="AwaitingRetry", message="Retry from the UI")
        client.set_flow_run_state(flow_run.id, retry, force=True)
        deadline = time.monotonic() + 240
        while True:
            state = client.read_flow_run(flow_run.id).state
            if (
                state is not None and state.is_final() and state.name != "Failed"
            ) or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert state is not None and state.is_completed(), (served / "serve.log").read_text()[-3000:]
    manifest = RenderManifest.load(out / "manifest.json")
    synthesised = sorted(s.id for s in manifest.segments if not s.cache_hit)
    assert synthesised == ["alerts", "pick-tables"] and manifest.state == "completed"


def test_the_weekly_deployment_runs_and_a_second_week_wakes_nothing(served: Path) -> None:
    first = run("render-narration/weekly-render", {})
    assert first.state.is_completed()
    second = run("render-narration/weekly-render", {})
    assert second.state.is_completed()
    manifest = RenderManifest.load(served / "renders" / "weekly" / "manifest.json")
    assert all(s.cache_hit for s in manifest.segments) and "ensure" not in manifest.stage_seconds


def test_narrate_serve_on_any_port_gives_a_ui_that_shows_the_deployments(tmp_path: Path) -> None:
    """``narrate serve --port N`` on a port other than 4200: the background server on N, and its UI
    (in a real headless Chromium) reaches its API there and lists the three deployments."""
    import socket
    import urllib.request

    from tests.browser import chromium_page

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "NARRATE_STATE_DIR": str(tmp_path / "state")}
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "narrate.cli", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 240
        names: list[str] = []
        while len(names) < 3:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
            try:
                request = urllib.request.Request(f"{api}/deployments/filter", data=b"{}", method="POST")
                request.add_header("Content-Type", "application/json")
                with urllib.request.urlopen(request, timeout=5) as response:
                    names = sorted(d["name"] for d in json.load(response))
            except OSError:
                continue
        assert names == ["render", "retry-failed-segments", "weekly-render"]
        assert f"Prefect UI: http://127.0.0.1:{port}" in log.read_text()
        assert (tmp_path / "prefect").is_dir()  # SQLite under the given Prefect home
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui-settings", timeout=5) as response:
            assert json.load(response)["api_url"] == api  # not 4200's
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{port}/deployments")
            for name in names:
                page.get_by_text(name, exact=True).first.wait_for(timeout=60_000)
            shown = page.inner_text("body")
            page.screenshot(path=str(tmp_path / "deployments.png"))
            assert "Unable to connect" not in shown, shown
            artifact = report_timeline(tmp_path, env | {"PREFECT_API_URL": api})
            page.goto(f"http://127.0.0.1:{port}/artifacts/artifact/{artifact}")
            page.wait_for_function("Array.from(document.images).some(i => i.naturalWidth === 1200)")
    finally:
        process.terminate()
        process.wait(timeout=60)
        stopped = subprocess.run(
            [sys.executable, "-m", "narrate.cli", "server", "stop"], cwd=ROOT, env=env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert f"stopped the Prefect server on port {port}" in stopped.stdout + stopped.stderr


def report_timeline(folder: Path, env: dict[str, str]) -> str:
    """The report's timeline artifact of a render folder, created on the server ``env`` names; its id.
    The picture is inline: the UI shows it without reaching the machine that rendered."""
    import numpy as np

    from narrate.outputs import TIMELINE_PNG
    from narrate.review.picture import timeline_png
    from tests.narrate.review.test_picture import small_timeline

    timeline, track = small_timeline()
    (folder / TIMELINE_PNG).write_bytes(timeline_png(timeline, track.astype(np.float32)))
    code = (
        "import sys; from pathlib import Path; from prefect.artifacts import create_markdown_artifact; "
        "from tasks.report import timeline_markdown; "
        "print(create_markdown_artifact(timeline_markdown(Path(sys.argv[1])), key='render-ui-check'))"
    )
    made = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, str(folder / "review.html")], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return made.stdout.strip().splitlines()[-1]
