"""``narrate endpoint up|status|wake|sleep|down``, ``narrate package`` and ``narrate deploy``.

In local mode (the default) the embedded AWS lives for one command, so these are a dry run of the
calls; with ``--aws real`` they manage your endpoint in your account.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from narrate.aws_mode import aws_session


def add_endpoint_commands(commands: Any) -> None:
    endpoint = commands.add_parser("endpoint", help="manage the SageMaker async endpoint")
    endpoint.add_argument("action", choices=["up", "status", "wake", "sleep", "down"])
    endpoint.add_argument("--aws", choices=["local", "real"], help="default NARRATE_AWS (local)")
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
    iam = commands.add_parser(
        "iam-policy", help="print least-privilege IAM policies (orchestrator, endpoint)"
    )
    iam.add_argument("--account", help="AWS account id (default: the one in NARRATE_ROLE_ARN)")
    deploy = commands.add_parser("deploy", help="package, upload model.tar.gz and ensure the endpoint")
    deploy.add_argument("--aws", choices=["local", "real"], help="default NARRATE_AWS (local)")
    deploy.add_argument("--no-wheels", action="store_true", help="do not vendor wheels")


def run_endpoint_command(args: argparse.Namespace, console: Console) -> int:
    if args.command == "iam-policy":
        from narrate.iam import account_of, endpoint_role_policy, orchestrator_policy
        from narrate.settings import get_settings

        settings = get_settings()
        account = account_of(settings, args.account)
        documents = {
            "orchestrator": orchestrator_policy(settings, account),
            "endpoint_execution_role": endpoint_role_policy(settings, account),
        }
        Console().print_json(json.dumps(documents))
        return 0
    if args.command == "package":
        from narrate.package import build_model_package

        with console.status("packaging the handler (first run downloads the container's wheels)"):
            path = build_model_package(
                Path(args.out), vendor_wheels=not args.no_wheels, weights=[Path(w) for w in args.weights]
            )
        console.print(f"wrote {path} ({path.stat().st_size} bytes)", soft_wrap=True, highlight=False)
        return 0
    with aws_session(args.aws) as settings:
        from narrate.endpoints import get_endpoint
        from narrate.endpoints.sagemaker import SageMakerEndpoint

        endpoint = get_endpoint("sagemaker")
        assert isinstance(endpoint, SageMakerEndpoint)
        if args.command == "deploy":
            result: Any = _deploy(endpoint, settings.model_data, not args.no_wheels)
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


def _deploy(endpoint: Any, model_data: str, vendor_wheels: bool) -> dict[str, Any]:
    import tempfile

    from narrate.endpoints.sagemaker import split_s3
    from narrate.package import build_model_package

    with tempfile.TemporaryDirectory() as scratch:
        package = build_model_package(Path(scratch) / "model.tar.gz", vendor_wheels=vendor_wheels)
        bucket, key = split_s3(model_data)
        if endpoint.settings.create_bucket:
            from narrate.endpoints.sagemaker_setup import ensure_bucket

            ensure_bucket(endpoint.s3, bucket, endpoint.settings.region, endpoint.spec.kms_key_id)
        endpoint.s3.upload_file(str(package), bucket, key, ExtraArgs=endpoint.encryption())
    return {"uploaded": model_data} | endpoint.ensure()
