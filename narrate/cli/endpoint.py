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
        "iam-policy", help="print least-privilege IAM policies (orchestrator, endpoint)"
    )
    iam.add_argument("--account", help="AWS account id (default: the one in NARRATE_ROLE_ARN)")
    iam.set_defaults(run=run_iam_policy)
    deploy = commands.add_parser("deploy", help="package, upload model.tar.gz and ensure the endpoint")
    deploy.add_argument("--aws", **AWS_OPTION)
    deploy.add_argument("--no-wheels", action="store_true", help="do not vendor wheels")
    deploy.set_defaults(run=run_endpoint)


def run_iam_policy(args: argparse.Namespace) -> int:
    from narrate.aws.iam import account_of, endpoint_role_policy, orchestrator_policy

    with settings_for(None) as settings:
        account = account_of(settings, args.account)
        documents = {
            "orchestrator": orchestrator_policy(settings, account),
            "endpoint_execution_role": endpoint_role_policy(settings, account),
        }
    Console().print_json(json.dumps(documents))
    return 0


def run_package(args: argparse.Namespace) -> int:
    from narrate.aws.package import build_model_package

    with console.status("packaging the handler (first run downloads the container's wheels)"):
        path = build_model_package(
            Path(args.out), vendor_wheels=not args.no_wheels, weights=[Path(w) for w in args.weights]
        )
    console.print(f"wrote {path} ({path.stat().st_size} bytes)", soft_wrap=True, highlight=False)
    return 0


def run_endpoint(args: argparse.Namespace) -> int:
    from narrate.aws.mode import aws_session
    from narrate.endpoints.sagemaker import SageMakerEndpoint

    with settings_for(args.aws) as settings, aws_session(settings):
        endpoint = SageMakerEndpoint(settings)
        if args.command == "deploy":
            result: Any = deploy(endpoint, not args.no_wheels)
        elif args.action == "up":
            result = endpoint.ensure()
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


def deploy(endpoint: Any, vendor_wheels: bool) -> dict[str, Any]:
    """Build model.tar.gz, upload it where the model reads it, and ensure the endpoint."""
    from narrate.aws.package import build_model_package
    from narrate.aws.s3 import s3_encryption, split_s3
    from narrate.endpoints.sagemaker_setup import ensure_bucket

    settings = endpoint.settings
    with tempfile.TemporaryDirectory() as scratch:
        package = build_model_package(Path(scratch) / "model.tar.gz", vendor_wheels=vendor_wheels)
        bucket, key = split_s3(settings.model_data)
        if settings.create_bucket:
            ensure_bucket(endpoint.s3, bucket, settings.region, settings.kms_key_id)
        endpoint.s3.upload_file(str(package), bucket, key, ExtraArgs=s3_encryption(settings.kms_key_id))
    return {"uploaded": settings.model_data} | endpoint.ensure()
