"""Least-privilege IAM policy documents, split by job, from the settings:

- ``deploy``: the one-time set-up (``narrate deploy``): the bucket and its policy, the model, the
  endpoint config and the endpoint, their autoscaling and wake alarm, the execution role (created on
  request) and passing it to SageMaker, the instance quota check, the tags on all of it;
- ``render``: what a render (the weekly one included) does to an endpoint that is deployed: describe
  it, wake it, invoke it, scale it down, hold it (leases, the scheduled release), read and write its
  S3 prefix, and Amazon Polly's SynthesizeSpeech. No bucket policy, no model, no role passing: a render
  whose configuration changed is refused by AWS and says to run ``narrate deploy``;
- ``endpoint_execution_role``: what the container may do: read the model and the requests, write the
  outputs and failures, pull its image (the image's own registry account and region), write its logs
  and metrics. :func:`execution_role_trust` lets SageMaker assume it.

``*`` appears only as the resource of actions AWS does not scope to resources (:data:`UNSCOPED_ACTIONS`,
each with its reason); every action is named in full. ``tests/narrate/aws/test_iam.py`` lints every
document with parliament, AWS's IAM linter.
"""

from __future__ import annotations

from typing import Any

from narrate.aws.images import ImageRef, image_uri, partition_of
from narrate.errors import ConfigError
from narrate.settings import Settings

# Actions IAM evaluates only against "*": they support no resource-level permissions.
UNSCOPED_ACTIONS = frozenset(
    {
        # Application Auto Scaling scopes these only to a scalable target's ARN, whose id AWS makes
        # up at registration (parliament reports the "*" as LOW): narrate cannot name it in advance.
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DescribeScalingPolicies",
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:DeregisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:PutScheduledAction",
        "application-autoscaling:DeleteScheduledAction",
        "application-autoscaling:TagResource",
        "cloudwatch:PutMetricData",
        "ecr:GetAuthorizationToken",
        # Service Quotas' list call takes no resource.
        "servicequotas:ListServiceQuotas",
        # Polly's API permissions reference gives Resource "*" for SynthesizeSpeech (only lexicons
        # have ARNs): https://docs.aws.amazon.com/polly/latest/dg/api-permissions-reference.html
        "polly:SynthesizeSpeech",
    }
)
DOCUMENTS = ("deploy", "render", "endpoint_execution_role")


def account_of(settings: Settings, account: str | None) -> str:
    if account:
        return account
    placeholder = type(settings).model_fields["role_arn"].default  # local mode's stand-in, not an account
    parts = (settings.role_arn or "").split(":")
    if settings.role_arn != placeholder and len(parts) >= 5 and parts[4].isdigit():
        return parts[4]
    raise ConfigError("iam-policy: give --account ID, or set NARRATE_ROLE_ARN (its account is used)")


def policies(settings: Settings, account: str) -> dict[str, dict[str, Any]]:
    """Every document ``narrate iam-policy`` prints, by job."""
    return {
        "deploy": deploy_policy(settings, account),
        "render": render_policy(settings, account),
        "endpoint_execution_role": endpoint_role_policy(settings, account),
    }


class _Arns:
    """The ARNs of what narrate names, in the settings' region and the given account."""

    def __init__(self, settings: Settings, account: str) -> None:
        self.partition = partition_of(settings.region)
        sagemaker = f"arn:{self.partition}:sagemaker:{settings.region}:{account}"
        self.endpoint = f"{sagemaker}:endpoint/{settings.endpoint_name}"
        self.configs = f"{sagemaker}:endpoint-config/{settings.endpoint_name}-*"
        self.models = f"{sagemaker}:model/{settings.endpoint_name}-*"
        self.alarm = (
            f"arn:{self.partition}:cloudwatch:{settings.region}:{account}:alarm:"
            f"{settings.endpoint_name}-HasBacklogWithoutCapacity"
        )
        self.bucket = f"arn:{self.partition}:s3:::{settings.bucket}"
        self.prefix = f"{self.bucket}/{settings.s3_prefix}/*"
        self.role = settings.role_arn or f"arn:{self.partition}:iam::{account}:role/<execution-role>"
        self.linked_role = (
            f"arn:{self.partition}:iam::{account}:role/aws-service-role/"
            "sagemaker.application-autoscaling.amazonaws.com/"
            "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
        )


def deploy_policy(settings: Settings, account: str) -> dict[str, Any]:
    arns = _Arns(settings, account)
    statements = [
        _allow(
            "TheBucket",
            [
                "s3:CreateBucket",
                "s3:PutBucketPublicAccessBlock",
                "s3:PutEncryptionConfiguration",
                "s3:PutBucketPolicy",
                "s3:PutBucketTagging",
                "s3:GetBucketPublicAccessBlock",
                "s3:GetEncryptionConfiguration",
                "s3:GetBucketPolicy",
                "s3:ListBucket",
            ],
            [arns.bucket],
        ),
        # The bucket is narrate's own: the deploy role, which sets its policy, owns its objects too.
        _allow(
            "TheBucketsObjects", ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"], [f"{arns.bucket}/*"]
        ),
        _allow(
            "ModelAndConfig",
            [
                "sagemaker:CreateModel",
                "sagemaker:DescribeModel",
                "sagemaker:CreateEndpointConfig",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:AddTags",
            ],
            [arns.models, arns.configs, arns.endpoint],
        ),
        # CreateEndpoint and UpdateEndpoint are authorised against the endpoint and its config.
        _allow(
            "Endpoint",
            [
                "sagemaker:CreateEndpoint",
                "sagemaker:UpdateEndpoint",
                "sagemaker:DescribeEndpoint",
                "sagemaker:DeleteEndpoint",
                "sagemaker:UpdateEndpointWeightsAndCapacities",
                "sagemaker:InvokeEndpointAsync",
            ],
            [arns.endpoint, arns.configs],
        ),
        _allow(
            "Autoscaling",
            sorted(a for a in UNSCOPED_ACTIONS if a.startswith("application-autoscaling:")),
            ["*"],
        ),
        _allow(
            "AutoscalingServiceLinkedRole",
            ["iam:CreateServiceLinkedRole"],
            [arns.linked_role],
            {"StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}},
        ),
        _allow(
            "WakeAlarm",
            [
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:DeleteAlarms",
                "cloudwatch:TagResource",
            ],
            [arns.alarm],
        ),
        _allow(
            "ExecutionRole",
            ["iam:CreateRole", "iam:GetRole", "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:TagRole"],
            [arns.role],
        ),
        _allow(
            "PassTheExecutionRoleToSageMakerOnly",
            ["iam:PassRole"],
            [arns.role],
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        _allow("QuotaCheck", ["servicequotas:ListServiceQuotas"], ["*"]),
    ]
    return _document(statements + _kms(settings))


def render_policy(settings: Settings, account: str) -> dict[str, Any]:
    arns = _Arns(settings, account)
    statements = [
        _allow(
            "DescribeWakeInvokeRelease",
            [
                "sagemaker:DescribeEndpoint",
                "sagemaker:UpdateEndpointWeightsAndCapacities",
                "sagemaker:InvokeEndpointAsync",
            ],
            [arns.endpoint],
        ),
        _allow(
            "SeeTheDeployedConfiguration",
            ["sagemaker:DescribeModel", "sagemaker:DescribeEndpointConfig"],
            [arns.models, arns.configs],
        ),
        _allow(
            "WakeHoldAndRelease",
            [
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:DescribeScalingPolicies",
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:PutScheduledAction",
                "application-autoscaling:DeleteScheduledAction",
            ],
            ["*"],
        ),
        _allow("ReadTheWakeAlarm", ["cloudwatch:DescribeAlarms"], [arns.alarm]),
        _allow("Objects", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], [arns.prefix]),
        _allow(
            "ListOwnPrefix",
            ["s3:ListBucket"],
            [arns.bucket],
            {"StringLike": {"s3:prefix": [f"{settings.s3_prefix}/*"]}},
        ),
        _allow(
            "PollyVoices",
            ["polly:SynthesizeSpeech"],
            ["*"],
            {"StringEquals": {"aws:RequestedRegion": settings.region}},
        ),
    ]
    return _document(statements + _kms(settings) + _signing_key(settings, arns, account))


def endpoint_role_policy(settings: Settings, account: str) -> dict[str, Any]:
    arns = _Arns(settings, account)
    image = ImageRef.parse(image_uri(settings.region, settings.instance_type, settings.image_uri))
    prefix = f"{arns.bucket}/{settings.s3_prefix}"
    statements = [
        _allow(
            "ReadModelAndRequests",
            ["s3:GetObject"],
            [
                settings.model_data.replace("s3://", f"arn:{arns.partition}:s3:::"),
                f"{prefix}/requests/*",
                f"{prefix}/voices/*",
            ],
        ),
        _allow(
            "WriteOutputsAndFailures",
            ["s3:PutObject"],
            [f"{prefix}/async-outputs/*", f"{prefix}/async-failures/*", f"{prefix}/voices/*"],
        ),
        _allow("PullImageToken", ["ecr:GetAuthorizationToken"], ["*"]),
        _allow(
            "PullImage",
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            [image.repository_arn(partition_of(image.region))],
        ),
        _allow(
            "Logs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [
                f"arn:{arns.partition}:logs:{settings.region}:{account}:log-group:/aws/sagemaker/Endpoints/"
                f"{settings.endpoint_name}:*"
            ],
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
    return _document(statements + _kms(settings))


def execution_role_trust() -> dict[str, Any]:
    """Who may assume the endpoint's execution role: SageMaker, nobody else."""
    return _document(
        [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    )


def _document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


def _kms(settings: Settings) -> list[dict[str, Any]]:
    if not settings.kms_key_id:
        return []
    return [_allow("EncryptWithTheKey", ["kms:GenerateDataKey", "kms:Decrypt"], [settings.kms_key_id])]


def _signing_key(settings: Settings, arns: _Arns, account: str) -> list[dict[str, Any]]:
    """Signing the outputs' Content Credentials with a KMS key (NARRATE_PROVENANCE_KMS_KEY_ID): its
    public key is read once at a render's start, then each file is signed; by an alias, only through it."""
    key_id = settings.provenance_kms_key_id
    if not key_id:
        return []
    actions = ["kms:Sign", "kms:GetPublicKey"]
    if key_id.startswith("arn:"):
        return [_allow("SignContentCredentials", actions, [key_id])]
    keys = f"arn:{arns.partition}:kms:{settings.region}:{account}:key"
    if key_id.startswith("alias/"):
        alias = {"StringEquals": {"kms:RequestAlias": key_id}}
        return [_allow("SignContentCredentials", actions, [f"{keys}/*"], alias)]
    return [_allow("SignContentCredentials", actions, [f"{keys}/{key_id}"])]


def _allow(
    sid: str, actions: list[str], resources: list[str], condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement
