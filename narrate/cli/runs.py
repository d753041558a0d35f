"""``narrate retry``, ``narrate runs``, ``narrate serve`` and ``narrate server``: the Prefect side of the
command line."""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from narrate.cli.options import AWS_OPTION, settings_for
from narrate.cli.prefect_server import (
    ensure_background_server,
    prepare_prefect_environment,
    stop_background_server,
    use_prefect_server,
)
from narrate.cli.progress import ManifestProgress, console, print_result
from narrate.errors import ConfigError
from narrate.prefect_api import BackgroundServer, configured_api_url, healthy, server_home
from narrate.settings import get_settings

FLOW_NAMES = ("render-narration", "retry-failed-segments")


def add_commands(commands: Any) -> None:
    retry = commands.add_parser("retry", help="re-synthesise only the failed or missing segments of a render")
    retry.add_argument("manifest", help="the render's manifest.json (path or s3:// URI)")
    retry.add_argument("--segment", action="append", dest="segments", metavar="ID", help="only this one")
    retry.add_argument("--aws", **AWS_OPTION)
    retry.set_defaults(run=run_retry)
    runs = commands.add_parser("runs", help="recent renders and retries, with their state")
    runs.add_argument("--limit", type=int, default=20)
    runs.set_defaults(run=lambda args: list_runs(args.limit))
    serve = commands.add_parser(
        "serve", help="serve the deployments (starts a local Prefect server if needed)"
    )
    serve.add_argument(
        "--port",
        type=int,
        help="port of the local Prefect server and its UI (default: the running one, or 4200)",
    )
    serve.set_defaults(run=lambda args: serve_deployments(args.port))
    server = commands.add_parser(
        "server", help="the local Prefect server the commands share, in the background"
    )
    server.add_argument("action", choices=["status", "start", "stop"])
    server.add_argument("--port", type=int, help="with start: the port (default 4200, or a free one)")
    server.set_defaults(run=run_server)


def run_retry(args: argparse.Namespace) -> int:
    from flows.retry_failed_segments import load_manifest, retry_failed_segments
    from narrate.aws.clients import AwsClients
    from narrate.endpoints.session import aws_for

    with settings_for(args.aws) as settings:
        use_prefect_server(console, settings.prefect_server)
        with aws_for([settings.backend] if args.manifest.startswith("s3://") else [], settings):
            record = load_manifest(
                args.manifest, settings.state_dir / "manifests", AwsClients(settings.region)
            )
        with ManifestProgress(record.path, [s.id for s in record.segments]):
            result = retry_failed_segments(manifest=args.manifest, segment_ids=args.segments)
    console.print(f"retried: {', '.join(result['retried']) or 'nothing (no segment had failed)'}")
    print_result(result)
    return 0


def list_runs(limit: int) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    api = use_prefect_server(console, get_settings().prefect_server)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=list(FLOW_NAMES))),
            sort=FlowRunSort.START_TIME_DESC,
            limit=limit,
        )
    table = Table(title=f"recent runs ({api})")
    for column in ("run", "state", "started", "seconds", "parameters"):
        table.add_column(column)
    for run in runs:
        started = run.start_time.isoformat(timespec="seconds") if run.start_time else "-"
        state = run.state.name if run.state else "-"
        parameters = ", ".join(f"{k}={v}" for k, v in run.parameters.items() if v is not None)
        table.add_row(run.name, state, started, f"{run.total_run_time.total_seconds():.1f}", parameters)
    Console().print(table)
    return 0


def serve_deployments(port: int | None) -> int:
    """Serve every deployment from this process, against the configured API or the background server
    (started on ``port``, or moved there). The server stays up after Ctrl-C: ``narrate server stop``."""
    prepare_prefect_environment()
    api = configured_api_url()
    if api is not None and not healthy(api):
        raise ConfigError(f"PREFECT_API_URL={api} does not answer; start that server or unset it")
    if api is None:
        api = ensure_background_server(console, port).api_url
        os.environ["PREFECT_API_URL"] = api
    console.print(f"Prefect UI: [bold]{api.removesuffix('/api')}[/]  (serving weekly-render, render, "
                  "retry-failed-segments; Ctrl-C stops)")  # fmt: skip
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # systemd stops with SIGTERM
    from deployments.deployments import serve_all

    serve_all()
    return 0


def run_server(args: argparse.Namespace) -> int:
    home = server_home()
    if args.action == "start":
        server = ensure_background_server(console, args.port, home)
        console.print(
            f"Prefect server: {server.ui_url} (pid {server.pid}, database in {home})", highlight=False
        )
    elif args.action == "stop":
        stopped = stop_background_server(home)
        console.print(
            f"stopped the Prefect server on port {stopped.port}" if stopped else "no server was running"
        )
    else:
        return print_server_status(home)
    return 0


def print_server_status(home: Path) -> int:
    """One line on the background server; exit code 1 when none answers (for scripts)."""
    server = BackgroundServer.recorded(home)
    if server is None:
        console.print(f"no background Prefect server (none recorded in {home}); the next command starts one")
        return 1
    if not server.answers():
        console.print(f"the background Prefect server (pid {server.pid}, port {server.port}) does not "
                      "answer; the next command starts it again")  # fmt: skip
        return 1
    up = time.time() - server.started_at
    console.print(f"running: {server.ui_url} (pid {server.pid}, up {up / 60:.0f} min, database in {home})",
                  highlight=False)  # fmt: skip
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)
