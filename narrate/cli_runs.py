"""``narrate retry``, ``narrate runs`` and ``narrate serve``: the Prefect side of the command line."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from narrate.errors import ConfigError

FLOW_NAMES = ("render-narration", "retry-failed-segments")
DEFAULT_PORT = 4200


def add_run_commands(commands: Any) -> None:
    retry = commands.add_parser("retry", help="re-synthesise only the failed or missing segments of a render")
    retry.add_argument("manifest", help="the render's manifest.json (path or s3:// URI)")
    retry.add_argument("--segment", action="append", dest="segments", metavar="ID", help="only this one")
    retry.add_argument("--aws", choices=["local", "real"], help="default NARRATE_AWS (local)")
    runs = commands.add_parser("runs", help="recent renders and retries, with their state")
    runs.add_argument("--limit", type=int, default=20)
    serve = commands.add_parser(
        "serve", help="serve the deployments (starts a local Prefect server if needed)"
    )
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port of the local Prefect server")


def run_command(args: argparse.Namespace, console: Console) -> int:
    if args.command == "retry":
        return _retry(args, console)
    if args.command == "runs":
        return _runs(args.limit, console)
    return _serve(args.port, console)


def _retry(args: argparse.Namespace, console: Console) -> int:
    from flows.retry_failed_segments import load_manifest, retry_failed_segments
    from narrate.aws_mode import aws_for
    from narrate.cli import ManifestProgress, prepare_prefect_environment, print_result
    from narrate.settings import get_settings

    prepare_prefect_environment()
    settings = get_settings()
    with aws_for(settings.backend if args.manifest.startswith("s3://") else "inprocess", args.aws):
        record = load_manifest(args.manifest, settings.state_dir / "manifests")
    with (
        aws_for(record.backend, args.aws),
        ManifestProgress(Path(record.out_dir) / "manifest.json", [s.id for s in record.segments]),
    ):
        result = retry_failed_segments(manifest=args.manifest, segment_ids=args.segments)
    console.print(f"retried: {', '.join(result['retried']) or 'nothing (no segment had failed)'}")
    print_result(result)
    return 0


def _runs(limit: int, console: Console) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    from narrate.cli import prepare_prefect_environment

    prepare_prefect_environment()
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=list(FLOW_NAMES))),
            sort=FlowRunSort.START_TIME_DESC,
            limit=limit,
        )
    table = Table(title=f"recent runs ({os.environ.get('PREFECT_API_URL') or 'local Prefect database'})")
    for column in ("run", "state", "started", "seconds", "parameters"):
        table.add_column(column)
    for run in runs:
        started = run.start_time.isoformat(timespec="seconds") if run.start_time else "-"
        state = run.state.name if run.state else "-"
        parameters = ", ".join(f"{k}={v}" for k, v in run.parameters.items() if v is not None)
        table.add_row(run.name, state, started, f"{run.total_run_time.total_seconds():.1f}", parameters)
    Console().print(table)
    return 0


def _serve(port: int, console: Console) -> int:
    from narrate.cli import prepare_prefect_environment

    prepare_prefect_environment()
    server = None
    api = os.environ.get("PREFECT_API_URL")
    if not api or not _healthy(api):
        if api:
            raise ConfigError(f"PREFECT_API_URL={api} does not answer; start that server or unset it")
        api = f"http://127.0.0.1:{port}/api"
        if not _healthy(api):
            server = _start_server(port, console)
        os.environ["PREFECT_API_URL"] = api
    console.print(f"Prefect UI: [bold]{api.removesuffix('/api')}[/]  (serving weekly-render, render, "
                  "retry-failed-segments; Ctrl-C stops)")  # fmt: skip
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # systemd stops with SIGTERM: stop the server too
    try:
        from deployments.deployments import serve_all

        serve_all()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _start_server(port: int, console: Console) -> subprocess.Popen[bytes]:
    """``prefect server start`` on 127.0.0.1: SQLite under the project's .prefect/, analytics off."""
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
        while not _healthy(api):
            if server.poll() is not None or time.monotonic() > deadline:
                server.terminate()
                raise ConfigError(f"the Prefect server did not start; see {home / 'server.log'}")
            time.sleep(0.5)
    return server


def _healthy(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api.rstrip('/')}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
