"""``narrate retry``, ``narrate runs`` and ``narrate serve``: the Prefect side of the command line."""

from __future__ import annotations

import argparse
import os
import signal
from typing import Any

from rich.console import Console
from rich.table import Table

from narrate.cli.options import AWS_OPTION, settings_for
from narrate.cli.prefect_server import DEFAULT_PORT, prepare_prefect_environment, start_server
from narrate.cli.progress import ManifestProgress, console, print_result
from narrate.errors import ConfigError
from narrate.prefect_api import healthy

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
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port of the local Prefect server")
    serve.set_defaults(run=lambda args: serve_deployments(args.port))


def run_retry(args: argparse.Namespace) -> int:
    from flows.retry_failed_segments import load_manifest, retry_failed_segments
    from narrate.aws.clients import AwsClients
    from narrate.endpoints.session import aws_for

    prepare_prefect_environment()
    with settings_for(args.aws) as settings:
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


def serve_deployments(port: int) -> int:
    prepare_prefect_environment()
    server = None
    api = os.environ.get("PREFECT_API_URL")
    if not api or not healthy(api):
        if api:
            raise ConfigError(f"PREFECT_API_URL={api} does not answer; start that server or unset it")
        api = f"http://127.0.0.1:{port}/api"
        if not healthy(api):
            server = start_server(port, console)
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
