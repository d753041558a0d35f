"""``narrate deploy``: what the reference deploy does, in order, and nothing created when a
precondition fails: the instance quota (Service Quotas), the execution role (created with
``--create-role``, else checked), the bucket, ``model.tar.gz``, the endpoint with its autoscaling.
Every resource it creates carries the tags of ``NARRATE_TAGS`` and ``narrate:endpoint``.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from narrate.aws.iam import endpoint_role_policy, execution_role_trust
from narrate.aws.package import handler_code_sha256
from narrate.aws.quotas import endpoint_quota
from narrate.aws.s3 import s3_encryption, split_s3
from narrate.endpoints.sagemaker import SageMakerEndpoint
from narrate.endpoints.sagemaker_setup import BucketSpec, ensure_bucket
from narrate.errors import ConfigError
from narrate.log import run_logger

if TYPE_CHECKING:
    from narrate.aws.clients import AwsClients
    from narrate.settings import Settings

EXECUTION_POLICY_NAME = "narrate-endpoint-execution"
CODE_HASH_KEY = "narrate-handler-code-sha256"  # S3 metadata of the uploaded model.tar.gz


@dataclass(frozen=True)
class DeployOptions:
    create_role: bool = False
    vendor_wheels: bool = True


def deploy(
    settings: Settings, clients: AwsClients, options: DeployOptions, package: Callable[[], Path]
) -> dict[str, Any]:
    """Deploy the endpoint; ``package`` builds model.tar.gz (called only once the checks passed)."""
    done: dict[str, Any] = {}
    if settings.quota_check:
        quota = endpoint_quota(
            clients.quotas, settings.instance_type, settings.region, settings.max_instances
        )
        if not quota.ok:
            raise ConfigError(f"{quota.describe()}: nothing was created. {quota.fix()}")
        done["quota"] = quota.describe()
    done["role"] = ensure_role(clients.iam, settings, options.create_role)
    if settings.create_bucket and ensure_bucket(clients.s3, BucketSpec.from_settings(settings)):
        done["bucket"] = f"created {settings.bucket}"
    bucket, key = split_s3(settings.model_data)
    clients.s3.upload_file(
        Filename=str(package()),
        Bucket=bucket,
        Key=key,
        ExtraArgs=s3_encryption(settings.kms_key_id) | {"Metadata": {CODE_HASH_KEY: handler_code_sha256()}},
    )
    done["uploaded"] = settings.model_data
    return done | SageMakerEndpoint(settings, clients).ensure()


def role_name(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[-1]


def trusts_sagemaker(document: Any) -> bool:
    """Whether a role's trust policy (as IAM returns it: a document, or its URL-encoded JSON) lets
    SageMaker assume the role."""
    if isinstance(document, str):
        document = json.loads(urllib.parse.unquote(document))
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        services = statement.get("Principal", {}).get("Service", [])
        services = [services] if isinstance(services, str) else services
        if statement.get("Effect") == "Allow" and "sagemaker.amazonaws.com" in services:
            return True
    return False


def ensure_role(iam: Any, settings: Settings, create: bool) -> str:
    """The execution role: created with its trust and execution policy (``create``), or checked."""
    name = role_name(settings.role_arn)
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchEntity":
            raise
        role = None
    account = settings.role_arn.split(":")[4]  # the role lives in the endpoint's account
    policy = json.dumps(endpoint_role_policy(settings, account))
    if role is None:
        if not create:
            raise ConfigError(
                f"NARRATE_ROLE_ARN: role {name} does not exist; run `narrate deploy --create-role`, or "
                "create it yourself (trusting sagemaker.amazonaws.com, with the endpoint_execution_role "
                "policy of `narrate iam-policy`)"
            )
        iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(execution_role_trust()),
            Description=f"narrate: execution role of the SageMaker endpoint {settings.endpoint_name}",
            Tags=settings.tag_list(),
        )
        iam.put_role_policy(RoleName=name, PolicyName=EXECUTION_POLICY_NAME, PolicyDocument=policy)
        run_logger().info("created the execution role %s", name)
        return f"created {settings.role_arn}"
    if not trusts_sagemaker(role.get("AssumeRolePolicyDocument", {})):
        raise ConfigError(
            f"NARRATE_ROLE_ARN: role {name} does not trust sagemaker.amazonaws.com, so SageMaker cannot run "
            "the endpoint as it; add that trust (see `narrate iam-policy`), or use another role"
        )
    if create:  # keep its policy what this version of narrate needs
        iam.put_role_policy(RoleName=name, PolicyName=EXECUTION_POLICY_NAME, PolicyDocument=policy)
        return f"updated the policy of {settings.role_arn}"
    return f"{settings.role_arn} exists and trusts SageMaker"
