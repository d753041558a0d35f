"""``narrate endpoint up|status|wake|sleep|down``, ``narrate package``, ``narrate iam-policy`` and
``narrate deploy``.

In local mode (the default) the embedded AWS lives for one command, so these are a dry run of the
calls; with ``--aws real`` they manage your endpoint in your account.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from narrate.cli.options import AWS_OPTION, settings_for
from narrate.cli.progress import console


def add_commands(commands: Any) -> None:
    endpoint = commands.add_parser("endpoint", help="manage the SageMaker async endpoint")
    endpoint.add_argument("action", choices=["up", "status", "wake", "sleep", "down"])
    endpoint.add_argument("--aws", **AWS_OPTION)
    endpoint.set_defaults(run=run_endpoint)
    package = commands.add_parser("package", help="build model.tar.gz for the container")
    package.add_argument("--out", default="dist/model.tar.gz", help="where to write it")
    package.add_argument(
        "--no-wheels", action="store_true", help="do not vendor wheels (container needs PyPI)"
    )
    package.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="DIR",
        help="ship this checkpoint directory at the tarball's root as <DIR name>/ (repeatable); "
        "point NARRATE_QWEN_*_MODEL at that name",
    )
    package.set_defaults(run=run_package)
    iam = commands.add_parser(
        "iam-policy", help="print least-privilege IAM policies: deploy, render, the endpoint's execution role"
    )
    iam.add_argument("--account", help="AWS account id (default: the one in NARRATE_ROLE_ARN)")
    iam.set_defaults(run=run_iam_policy)
    deploy = commands.add_parser(
        "deploy", help="check the quota, the role and the bucket, upload model.tar.gz, create the endpoint"
    )
    deploy.add_argument("--aws", **AWS_OPTION)
    deploy.add_argument("--no-wheels", action="store_true", help="do not vendor wheels")
    deploy.add_argument(
        "--create-role",
        action="store_true",
        help="create the execution role NARRATE_ROLE_ARN names (or update it)",
    )
    deploy.add_argument("--dry-run", action="store_true", help="print the calls it would make; call nothing")
    deploy.set_defaults(run=run_deploy)
    doctor = commands.add_parser(
        "doctor",
        help="check every precondition of a render (read-only): credentials, quota, role, bucket, ...",
    )
    doctor.add_argument("script", nargs="?", help="also check that the endpoint speaks this script's voices")
    doctor.add_argument("--aws", **AWS_OPTION)
    doctor.set_defaults(run=run_doctor)


def run_iam_policy(args: argparse.Namespace) -> int:
    from narrate.aws.iam import account_of, policies

    with settings_for(None) as settings:
        documents = policies(settings, account_of(settings, args.account))
    Console().print_json(json.dumps(documents))
    return 0


def run_package(args: argparse.Namespace) -> int:
    from narrate.aws.package import build_model_package

    with settings_for(None) as settings:
        engines = settings.server_config().engine_names
    with console.status("packaging the handler (first run downloads the container's wheels)"):
        path = build_model_package(
            Path(args.out), engines, vendor_wheels=not args.no_wheels, weights=[Path(w) for w in args.weights]
        )
    console.print(f"wrote {path} ({path.stat().st_size} bytes)", soft_wrap=True, highlight=False)
    return 0


def run_endpoint(args: argparse.Namespace) -> int:
    from narrate.aws.mode import aws_session
    from narrate.endpoints.sagemaker import SageMakerEndpoint

    with settings_for(args.aws) as settings, aws_session(settings):
        endpoint = SageMakerEndpoint(settings)
        if args.action == "up":
            result: Any = endpoint.ensure()
        elif args.action == "status":
            result = endpoint.status()
        elif args.action == "wake":
            endpoint.ensure()
            endpoint.wake(settings.wake_deadline_seconds, "manual")
            result = endpoint.status()
        elif args.action == "sleep":
            endpoint.sleep()
            result = endpoint.status()
        else:
            result = endpoint.delete()
    Console().print_json(json.dumps(result, default=str))  # results on stdout, for scripts
    return 0


def run_deploy(args: argparse.Namespace) -> int:
    from narrate.aws.clients import AwsClients
    from narrate.aws.mode import aws_session
    from narrate.aws.package import build_model_package
    from narrate.endpoints.deploy import DeployOptions, deploy
    from narrate.endpoints.dry_run import FreshAccount

    options = DeployOptions(create_role=args.create_role, vendor_wheels=not args.no_wheels)
    with settings_for(args.aws) as settings, tempfile.TemporaryDirectory() as scratch:
        if args.dry_run:
            quota = (f"{settings.instance_type} for endpoint usage", settings.max_instances)
            account = FreshAccount(role_exists=not args.create_role, quota=quota)
            deploy(settings, account.clients(settings.region), options, lambda: Path("model.tar.gz"))
            print(f"narrate deploy --dry-run: nothing was called; in {settings.region} it would make these "
                  f"{len(account.calls)} calls:")  # fmt: skip
            for line in account.lines():
                print(line)
            print(json.dumps({"image": plan_image(account), "tags": settings.tag_list()}))
            return 0

        def package() -> Path:
            with console.status("packaging the handler (first run downloads the container's wheels)"):
                return build_model_package(
                    Path(scratch) / "model.tar.gz",
                    settings.server_config().engine_names,
                    vendor_wheels=options.vendor_wheels,
                )

        with aws_session(settings):
            result = deploy(settings, AwsClients(settings.region), options, package)
    Console().print_json(json.dumps(result, default=str))
    return 0


def plan_image(account: Any) -> str:
    return next(k["PrimaryContainer"]["Image"] for _, op, k in account.calls if op == "create_model")


def run_doctor(args: argparse.Namespace) -> int:
    from narrate.aws.clients import AwsClients
    from narrate.aws.mode import aws_session
    from narrate.endpoints.doctor import Doctor

    with settings_for(args.aws) as settings, aws_session(settings, sagemaker=False):
        checks = Doctor(
            settings, AwsClients(settings.region), Path(args.script) if args.script else None
        ).checks()
    where = (
        "the embedded AWS of local mode (empty: deploy there first)"
        if settings.aws == "local"
        else settings.region
    )
    console.print(f"narrate doctor: {settings.endpoint_name} in {where}", highlight=False)
    for check in checks:
        mark = "[green]OK  [/]" if check.ok else "[bold red]FAIL[/]"
        fix = f" [yellow]-> {escape(check.fix)}[/]" if check.fix else ""
        console.print(f"{mark} {check.name}: {escape(check.detail)}{fix}", highlight=False, soft_wrap=True)
    failed = [check.name for check in checks if not check.ok]
    console.print(
        f"{len(checks) - len(failed)} of {len(checks)} OK"
        + (f"; to fix: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0
