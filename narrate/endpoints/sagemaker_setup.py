"""Ensure a SageMaker async endpoint exists as configured: bucket, model, endpoint config, endpoint,
and the autoscaling that lets it sit at zero instances and wake for a single request.

Every call is one plain boto3 call that works unchanged against real AWS. Model and endpoint-config
names carry a short hash of the configuration, so "did the configuration change?" is a name compare.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from narrate.aws.images import image_uri
from narrate.errors import EndpointError
from narrate.log import run_logger

if TYPE_CHECKING:
    from narrate.settings import Settings

VARIANT = "AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
CONTAINER_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_MODEL_SERVER_TIMEOUT": "3600",
    "MMS_DEFAULT_RESPONSE_TIMEOUT": "900",
    "MMS_MAX_REQUEST_SIZE": "2000000000",
    "MMS_MAX_RESPONSE_SIZE": "2000000000",
    "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
}


@dataclass(frozen=True)
class EndpointSpec:
    """Everything that defines the deployed endpoint; its hash names the model and config."""

    endpoint_name: str
    bucket: str  # where requests, outputs, leases and queued-request records live
    s3_prefix: str
    image_uri: str
    model_data_url: str
    role_arn: str
    instance_type: str
    max_instances: int
    max_concurrent_invocations: int
    container_env: dict[str, str]  # the handler's NARRATE_* configuration
    output_path: str
    failure_path: str
    success_topic_arn: str | None
    error_topic_arn: str | None
    kms_key_id: str | None
    tags: tuple[tuple[str, str], ...] = ()  # on everything created; not part of the configuration

    @property
    def aws_tags(self) -> list[dict[str, str]]:
        return [{"Key": key, "Value": value} for key, value in self.tags]

    @classmethod
    def from_settings(cls, settings: Settings) -> EndpointSpec:
        base = f"s3://{settings.bucket}/{settings.s3_prefix}"
        return cls(
            endpoint_name=settings.endpoint_name,
            bucket=settings.bucket,
            s3_prefix=settings.s3_prefix,
            image_uri=image_uri(settings.region, settings.instance_type, settings.image_uri),
            model_data_url=settings.model_data,
            role_arn=settings.role_arn,
            instance_type=settings.instance_type,
            max_instances=settings.max_instances,
            max_concurrent_invocations=settings.max_concurrent_invocations,
            container_env=settings.server_config().to_env(),
            output_path=f"{base}/async-outputs",
            failure_path=f"{base}/async-failures",
            success_topic_arn=settings.success_topic_arn,
            error_topic_arn=settings.error_topic_arn,
            kms_key_id=settings.kms_key_id,
            tags=tuple((tag["Key"], tag["Value"]) for tag in settings.tag_list()),
        )

    @property
    def config_hash(self) -> str:
        # the deployed configuration only: the bucket and prefix are in the output paths already
        unhashed = {"endpoint_name", "max_instances", "bucket", "s3_prefix", "tags"}
        fields = {k: v for k, v in asdict(self).items() if k not in unhashed}
        canonical = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha256(canonical).hexdigest()[:8]

    @property
    def model_name(self) -> str:
        return f"{self.endpoint_name}-{self.config_hash}"

    @property
    def config_name(self) -> str:
        return f"{self.endpoint_name}-{self.config_hash}"

    @property
    def resource_id(self) -> str:
        return f"endpoint/{self.endpoint_name}/variant/{VARIANT}"


@dataclass(frozen=True)
class BucketSpec:
    name: str
    prefix: str  # what a render may list (its policy allows nothing wider)
    region: str
    kms_key_id: str | None
    tags: list[dict[str, str]]

    @classmethod
    def from_settings(cls, settings: Settings) -> BucketSpec:
        return cls(
            settings.bucket, settings.s3_prefix, settings.region, settings.kms_key_id, settings.tag_list()
        )


def bucket_exists(s3: Any, bucket: str, prefix: str) -> bool:
    """Whether the bucket exists, asked with the one read a render's policy allows (a listing of its
    prefix; HeadBucket needs ListBucket on the whole bucket)."""
    try:
        s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/", MaxKeys=1)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] in {"404", "NoSuchBucket", "NotFound"}:
            return False
        raise


def ensure_bucket(s3: Any, bucket: BucketSpec) -> bool:
    """Create the bucket if missing: public access blocked, default encryption, a policy refusing any
    request not made over TLS, the tags. True if created."""
    if bucket_exists(s3, bucket.name, bucket.prefix):
        return False
    kwargs: dict[str, Any] = {"Bucket": bucket.name}
    if bucket.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": bucket.region}
    s3.create_bucket(**kwargs)
    if bucket.tags:
        s3.put_bucket_tagging(Bucket=bucket.name, Tagging={"TagSet": bucket.tags})
    s3.put_public_access_block(
        Bucket=bucket.name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    rule: dict[str, Any] = (
        {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": bucket.kms_key_id}
        if bucket.kms_key_id
        else {"SSEAlgorithm": "AES256"}
    )
    s3.put_bucket_encryption(
        Bucket=bucket.name,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": rule}]},
    )
    if str(s3.meta.endpoint_url).startswith("https://"):
        s3.put_bucket_policy(Bucket=bucket.name, Policy=json.dumps(tls_only_policy(bucket.name)))
    # else: the embedded AWS of local mode speaks plain HTTP on 127.0.0.1; the policy would lock us out
    return True


def tls_only_policy(bucket: str) -> dict[str, Any]:
    """Deny every request to the bucket and its objects that does not come over TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def describe_endpoint(sagemaker: Any, name: str) -> dict[str, Any] | None:
    try:
        return sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        if "Could not find endpoint" in exc.response["Error"].get("Message", ""):
            return None
        raise


def _succeeds(call: Any, unless: str, **kwargs: Any) -> bool:
    """True if the call succeeds, False if AWS answers with a message containing ``unless``.

    SageMaker reports a missing or an already existing name as a ValidationException that only
    its message tells apart.
    """
    try:
        call(**kwargs)
        return True
    except ClientError as exc:
        if unless in exc.response["Error"].get("Message", ""):
            return False
        raise


def _exists(call: Any, **kwargs: Any) -> bool:
    return _succeeds(call, "Could not find", **kwargs)


def created_unless_existing(call: Any, **kwargs: Any) -> bool:
    """Create, tolerating a concurrent render that created the same name a moment earlier."""
    return _succeeds(call, "already existing", **kwargs)


def ensure_model_and_config(sagemaker: Any, spec: EndpointSpec) -> list[str]:
    """Create the model and endpoint config of this spec if missing; returns what was created."""
    created = []
    if not _exists(sagemaker.describe_model, ModelName=spec.model_name) and created_unless_existing(
        sagemaker.create_model,
        ModelName=spec.model_name,
        ExecutionRoleArn=spec.role_arn,
        PrimaryContainer={
            "Image": spec.image_uri,
            "ModelDataUrl": spec.model_data_url,
            "Environment": CONTAINER_ENVIRONMENT | spec.container_env,
        },
        Tags=spec.aws_tags,
    ):
        created.append(f"model {spec.model_name}")
    if not _exists(sagemaker.describe_endpoint_config, EndpointConfigName=spec.config_name):
        output: dict[str, Any] = {"S3OutputPath": spec.output_path, "S3FailurePath": spec.failure_path}
        topics = {"SuccessTopic": spec.success_topic_arn, "ErrorTopic": spec.error_topic_arn}
        if any(topics.values()):
            output["NotificationConfig"] = {k: v for k, v in topics.items() if v}
        if spec.kms_key_id:
            output["KmsKeyId"] = spec.kms_key_id
        if not created_unless_existing(
            sagemaker.create_endpoint_config,
            EndpointConfigName=spec.config_name,
            ProductionVariants=[
                {
                    "VariantName": VARIANT,
                    "ModelName": spec.model_name,
                    "InstanceType": spec.instance_type,
                    "InitialInstanceCount": 1,
                    "ContainerStartupHealthCheckTimeoutInSeconds": 1800,
                    "ModelDataDownloadTimeoutInSeconds": 1800,
                }
            ],
            AsyncInferenceConfig={
                "OutputConfig": output,
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": spec.max_concurrent_invocations},
            },
            Tags=spec.aws_tags,
        ):
            return created
        created.append(f"endpoint config {spec.config_name}")
    return created


FAILED_STATES = {"Failed", "UpdateRollbackFailed"}
POLL_CAP_SECONDS = 0.5  # describe calls are cheap; a cold start is not


def failure_message(name: str, description: dict[str, Any]) -> str:
    reason = description.get("FailureReason") or "no reason given"
    return f"endpoint {name} is {description['EndpointStatus']}: {reason!r}"


def instances_in_service(description: dict[str, Any]) -> int:
    return int(description["ProductionVariants"][0].get("CurrentInstanceCount") or 0)


def wait_for_endpoint(
    sagemaker: Any,
    name: str,
    deadline_seconds: float,
    ready: Callable[[dict[str, Any]], bool] = lambda d: d["EndpointStatus"] == "InService",
    timeout_message: str = "endpoint {name} still {status} after {seconds:.0f} s",
) -> dict[str, Any]:
    """Poll describe_endpoint until ``ready``; a Failed endpoint raises with its FailureReason."""
    started = time.monotonic()
    logger, last_log, delay = run_logger(), 0.0, 0.2
    while True:
        description = describe_endpoint(sagemaker, name)
        if description is None:
            raise EndpointError(f"endpoint {name} does not exist; run `narrate endpoint up`")
        if description["EndpointStatus"] in FAILED_STATES:
            raise EndpointError(failure_message(name, description))
        if ready(description):
            return description
        status, current = description["EndpointStatus"], instances_in_service(description)
        elapsed = time.monotonic() - started
        if elapsed >= deadline_seconds:
            raise EndpointError(timeout_message.format(name=name, status=status, seconds=deadline_seconds))
        if elapsed - last_log >= 5:
            logger.info("endpoint %s: %s, %d instance(s), %.0f s", name, status, current, elapsed)
            last_log = elapsed
        time.sleep(delay)
        delay = min(delay * 1.5, POLL_CAP_SECONDS)


def register_autoscaling(autoscaling: Any, cloudwatch: Any, spec: EndpointSpec) -> None:
    """Scale to zero when idle; wake for a single request even if no flow is there to wake it.

    Target tracking on the backlog per instance scales out and in, but it alone never wakes an
    endpoint at zero (a backlog of 1 never exceeds the target), so a step policy fired by an alarm
    on HasBacklogWithoutCapacity adds the first instance.
    """
    current = autoscaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[spec.resource_id]
    )
    targets = current["ScalableTargets"]
    min_capacity = int(targets[0]["MinCapacity"]) if targets else 0  # keep a running render's wake
    if not targets or int(targets[0]["MaxCapacity"]) != spec.max_instances:
        autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=spec.resource_id,
            ScalableDimension=DIMENSION,
            MinCapacity=min(min_capacity, spec.max_instances),
            MaxCapacity=spec.max_instances,
            **({"Tags": dict(spec.tags)} if spec.tags else {}),
        )
    if scaling_in_place(autoscaling, cloudwatch, spec):
        return  # as deployed: a render (whose policy may not change it) needs nothing more
    common = {"ServiceNamespace": "sagemaker", "ResourceId": spec.resource_id, "ScalableDimension": DIMENSION}
    autoscaling.put_scaling_policy(
        PolicyName=f"{spec.endpoint_name}-backlog-per-instance",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration=tracking_configuration(spec),
        **common,
    )
    step = autoscaling.put_scaling_policy(
        PolicyName=step_policy_name(spec),
        PolicyType="StepScaling",
        StepScalingPolicyConfiguration=STEP_CONFIGURATION,
        **common,
    )
    cloudwatch.put_metric_alarm(
        AlarmName=alarm_name(spec),
        MetricName="HasBacklogWithoutCapacity",
        Namespace="AWS/SageMaker",
        Dimensions=[{"Name": "EndpointName", "Value": spec.endpoint_name}],
        Statistic="Average",
        Period=60,
        EvaluationPeriods=2,
        DatapointsToAlarm=2,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="missing",
        AlarmActions=[step["PolicyARN"]],
        Tags=spec.aws_tags,
    )


STEP_CONFIGURATION: dict[str, Any] = {
    "AdjustmentType": "ChangeInCapacity",
    "MetricAggregationType": "Average",
    "Cooldown": 300,
    "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
}


def tracking_configuration(spec: EndpointSpec) -> dict[str, Any]:
    return {
        "TargetValue": float(spec.max_concurrent_invocations),
        "CustomizedMetricSpecification": {
            "MetricName": "ApproximateBacklogSizePerInstance",
            "Namespace": "AWS/SageMaker",
            "Dimensions": [{"Name": "EndpointName", "Value": spec.endpoint_name}],
            "Statistic": "Average",
        },
        "ScaleInCooldown": 300,
        "ScaleOutCooldown": 60,
    }


def step_policy_name(spec: EndpointSpec) -> str:
    return f"{spec.endpoint_name}-HasBacklogWithoutCapacity-ScalingPolicy"


def alarm_name(spec: EndpointSpec) -> str:
    return f"{spec.endpoint_name}-HasBacklogWithoutCapacity"


def scaling_in_place(autoscaling: Any, cloudwatch: Any, spec: EndpointSpec) -> bool:
    """Both policies as this spec has them, and the wake alarm firing the step policy: read with the
    describe calls a render's policy allows."""
    policies = {
        p["PolicyName"]: p
        for p in autoscaling.describe_scaling_policies(
            ServiceNamespace="sagemaker", ResourceId=spec.resource_id
        )["ScalingPolicies"]
    }
    tracking = policies.get(f"{spec.endpoint_name}-backlog-per-instance")
    step = policies.get(step_policy_name(spec))
    if tracking is None or step is None:
        return False
    wanted = tracking_configuration(spec)["TargetValue"]
    if float(tracking.get("TargetTrackingScalingPolicyConfiguration", {}).get("TargetValue", -1)) != wanted:
        return False
    alarms = cloudwatch.describe_alarms(AlarmNames=[alarm_name(spec)])["MetricAlarms"]
    return bool(alarms) and step["PolicyARN"] in alarms[0].get("AlarmActions", [])


def set_min_capacity(autoscaling: Any, spec: EndpointSpec, minimum: int) -> None:
    """The scalable target's MinCapacity: 1 wakes the endpoint now, 0 lets it go back to zero."""
    autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=spec.resource_id,
        ScalableDimension=DIMENSION,
        MinCapacity=minimum,
        MaxCapacity=spec.max_instances,
    )


def deregister_autoscaling(autoscaling: Any, spec: EndpointSpec) -> None:
    try:
        autoscaling.deregister_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=spec.resource_id, ScalableDimension=DIMENSION
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in {"ObjectNotFoundException", "ValidationException"}:
            raise
