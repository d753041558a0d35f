"""Least-privilege IAM policy documents for the two principals narrate needs, from the settings.

- the orchestrator (whoever runs ``narrate render`` / the Prefect deployments): exactly the calls the
  lifecycle makes, on the named endpoint, its models and configs, its scalable target and alarm, and
  the bucket prefix, plus Amazon Polly's SynthesizeSpeech in the configured region (Polly voices);
- the endpoint's execution role (what the container may do): read the model and the requests, write
  the outputs and failures, pull its image, write its logs and metrics.

``*`` appears only as a resource of actions that AWS does not scope to resources (listed in
:data:`UNSCOPED_ACTIONS`); every action is named in full.
"""

from __future__ import annotations

from typing import Any

from narrate.errors import ConfigError
from narrate.settings import Settings

# Actions IAM evaluates only against "*": they support no resource-level permissions.
UNSCOPED_ACTIONS = frozenset(
    {
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:DeregisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:PutScheduledAction",
        "application-autoscaling:DeleteScheduledAction",
        "cloudwatch:PutMetricData",
        "ecr:GetAuthorizationToken",
        # Polly's API permissions reference gives Resource "*" for SynthesizeSpeech (only lexicons
        # have ARNs): https://docs.aws.amazon.com/polly/latest/dg/api-permissions-reference.html
        "polly:SynthesizeSpeech",
    }
)


def account_of(settings: Settings, account: str | None) -> str:
    if account:
        return account
    placeholder = type(settings).model_fields["role_arn"].default  # local mode's stand-in, not an account
    parts = (settings.role_arn or "").split(":")
    if settings.role_arn != placeholder and len(parts) >= 5 and parts[4].isdigit():
        return parts[4]
    raise ConfigError("iam-policy: give --account ID, or set NARRATE_ROLE_ARN (its account is used)")


def orchestrator_policy(settings: Settings, account: str) -> dict[str, Any]:
    region, name, bucket, prefix = (
        settings.region,
        settings.endpoint_name,
        settings.bucket,
        settings.s3_prefix,
    )
    sagemaker = f"arn:aws:sagemaker:{region}:{account}"
    statements: list[dict[str, Any]] = [
        _allow(
            "EndpointLifecycle",
            [
                "sagemaker:DescribeEndpoint",
                "sagemaker:CreateEndpoint",
                "sagemaker:UpdateEndpoint",
                "sagemaker:UpdateEndpointWeightsAndCapacities",
                "sagemaker:DeleteEndpoint",
                "sagemaker:InvokeEndpointAsync",
            ],
            [f"{sagemaker}:endpoint/{name}"],
        ),
        _allow(
            "ModelAndConfig",
            [
                "sagemaker:DescribeModel",
                "sagemaker:CreateModel",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:CreateEndpointConfig",
            ],
            [f"{sagemaker}:model/{name}-*", f"{sagemaker}:endpoint-config/{name}-*"],
        ),
        _allow(
            "PassTheExecutionRoleToSageMakerOnly",
            ["iam:PassRole"],
            [settings.role_arn or f"arn:aws:iam::{account}:role/<execution-role>"],
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        _allow(
            "Autoscaling",
            sorted(a for a in UNSCOPED_ACTIONS if a.startswith("application-autoscaling:")),
            ["*"],
        ),
        _allow(
            "AutoscalingServiceLinkedRole",
            ["iam:CreateServiceLinkedRole"],
            [
                f"arn:aws:iam::{account}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
            ],
            {"StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}},
        ),
        _allow(
            "WakeAlarm",
            ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"],
            [f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}-HasBacklogWithoutCapacity"],
        ),
        _allow(
            "Objects",
            ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            [f"arn:aws:s3:::{bucket}/{prefix}/*"],
        ),
        _allow(
            "ListOwnPrefix",
            ["s3:ListBucket"],
            [f"arn:aws:s3:::{bucket}"],
            {"StringLike": {"s3:prefix": [f"{prefix}/*"]}},
        ),
        _allow(
            "PollyVoices",
            ["polly:SynthesizeSpeech"],
            ["*"],
            {"StringEquals": {"aws:RequestedRegion": region}},
        ),
    ]
    if settings.create_bucket:
        statements.append(
            _allow(
                "CreateTheBucket",
                [
                    "s3:CreateBucket",
                    "s3:PutBucketPublicAccessBlock",
                    "s3:PutEncryptionConfiguration",
                    "s3:PutBucketPolicy",
                ],
                [f"arn:aws:s3:::{bucket}"],
            )
        )
    statements += _kms(settings)
    return {"Version": "2012-10-17", "Statement": statements}


def endpoint_role_policy(settings: Settings, account: str) -> dict[str, Any]:
    region, name, bucket, prefix = (
        settings.region,
        settings.endpoint_name,
        settings.bucket,
        settings.s3_prefix,
    )
    repository = settings.image_uri.split("/", 1)[1].split(":")[0] if "/" in settings.image_uri else "*"
    registry_account = settings.image_uri.split(".", 1)[0]
    statements = [
        _allow(
            "ReadModelAndRequests",
            ["s3:GetObject"],
            [
                settings.model_data.replace("s3://", "arn:aws:s3:::"),
                f"arn:aws:s3:::{bucket}/{prefix}/requests/*",
                f"arn:aws:s3:::{bucket}/{prefix}/voices/*",
            ],
        ),
        _allow(
            "WriteOutputsAndFailures",
            ["s3:PutObject"],
            [
                f"arn:aws:s3:::{bucket}/{prefix}/async-outputs/*",
                f"arn:aws:s3:::{bucket}/{prefix}/async-failures/*",
                f"arn:aws:s3:::{bucket}/{prefix}/voices/*",
            ],
        ),
        _allow("PullImageToken", ["ecr:GetAuthorizationToken"], ["*"]),
        _allow(
            "PullImage",
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            [f"arn:aws:ecr:{region}:{registry_account}:repository/{repository}"],
        ),
        _allow(
            "Logs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{name}:*"],
        ),
        _allow(
            "Metrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            {"StringEquals": {"cloudwatch:namespace": ["AWS/SageMaker", "/aws/sagemaker/Endpoints"]}},
        ),
    ]
    topics = [t for t in (settings.success_topic_arn, settings.error_topic_arn) if t]
    if topics:
        statements.append(_allow("Notify", ["sns:Publish"], topics))
    statements += _kms(settings)
    return {"Version": "2012-10-17", "Statement": statements}


def _kms(settings: Settings) -> list[dict[str, Any]]:
    if not settings.kms_key_id:
        return []
    return [_allow("EncryptWithTheKey", ["kms:GenerateDataKey", "kms:Decrypt"], [settings.kms_key_id])]


def _allow(
    sid: str, actions: list[str], resources: list[str], condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement
