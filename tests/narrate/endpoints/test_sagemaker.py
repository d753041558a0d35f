"""The SageMaker lifecycle against the embedded AWS: ensure, roll out, wake, invoke, gather, release."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from model_server.protocol import BatchRequest, DevVoiceRequest, SegmentRequest
from narrate.aws.local import LocalAws
from narrate.endpoints import SynthesisJob
from narrate.endpoints.sagemaker import SageMakerEndpoint
from narrate.errors import EndpointError, SegmentRejected
from narrate.settings import Settings, get_settings
from tests.conftest import TEST_COLD_START_SECONDS, TEST_TIME_SCALE, wait_for

pytestmark = pytest.mark.usefixtures("embedded_aws")


def endpoint(**overrides: Any) -> SageMakerEndpoint:
    return SageMakerEndpoint(get_settings().model_copy(update=overrides))


def job(request_id: str, *texts: str) -> SynthesisJob:
    segments = [SegmentRequest(id=f"s{i}", text=t) for i, t in enumerate(texts)]
    request = BatchRequest(voice=DevVoiceRequest(mode="dev"), segments=segments)
    return SynthesisJob(request_id, request, {s.id: "k" for s in segments})


def stage_raw(ep: SageMakerEndpoint, request_id: str, body: dict[str, Any]) -> str:
    """A request body as any client may write it, valid or not: the endpoint reads bytes from S3."""
    key = f"{ep.settings.s3_prefix}/requests/{request_id}.json"
    ep.s3.put_object(Bucket=ep.settings.bucket, Key=key, Body=json.dumps(body).encode())
    return f"s3://{ep.settings.bucket}/{key}"


def variant(ep: SageMakerEndpoint) -> dict[str, Any]:
    return ep.sagemaker.describe_endpoint(EndpointName=ep.spec.endpoint_name)["ProductionVariants"][0]


def test_ensure_is_idempotent_and_sets_up_scale_to_zero() -> None:
    ep = endpoint()
    first = ep.ensure()
    assert set(first["created"]) >= {f"endpoint {ep.spec.endpoint_name}", f"model {ep.spec.model_name}"}
    assert ep.ensure()["created"] == []
    targets = ep.autoscaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[ep.spec.resource_id]
    )
    assert (targets["ScalableTargets"][0]["MinCapacity"], targets["ScalableTargets"][0]["MaxCapacity"]) == (
        0,
        1,
    )
    policies = ep.autoscaling.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=ep.spec.resource_id
    )
    kinds = {p["PolicyType"] for p in policies["ScalingPolicies"]}
    assert kinds == {"TargetTrackingScaling", "StepScaling"}
    alarm = ep.cloudwatch.describe_alarms(AlarmNames=[f"{ep.spec.endpoint_name}-HasBacklogWithoutCapacity"])
    step = next(p for p in policies["ScalingPolicies"] if p["PolicyType"] == "StepScaling")
    assert alarm["MetricAlarms"][0]["AlarmActions"] == [step["PolicyARN"]]
    config = ep.sagemaker.describe_endpoint_config(EndpointConfigName=ep.spec.config_name)
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g5.xlarge"  # the real default, kept
    assert config["AsyncInferenceConfig"]["OutputConfig"]["S3FailurePath"].endswith("/async-failures")
    s3 = ep.s3
    assert s3.get_public_access_block(Bucket=ep.settings.bucket)["PublicAccessBlockConfiguration"][
        "BlockPublicAcls"
    ]
    assert s3.get_bucket_encryption(Bucket=ep.settings.bucket)["ServerSideEncryptionConfiguration"]["Rules"]


def test_a_changed_configuration_is_rolled_out() -> None:
    before = endpoint()
    before.ensure()
    after = endpoint(instance_type="ml.g6.xlarge", max_concurrent_invocations=4)
    assert after.spec.config_name != before.spec.config_name
    assert f"rollout to {after.spec.config_name}" in after.ensure()["created"]
    description = after.sagemaker.describe_endpoint(EndpointName=after.spec.endpoint_name)
    assert description["EndpointConfigName"] == after.spec.config_name
    assert description["EndpointStatus"] == "InService"
    targets = after.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert any(t["ResourceId"] == after.spec.resource_id for t in targets)  # registered again


def test_update_of_an_autoscaled_instance_type_is_refused_like_aws() -> None:
    before = endpoint()
    before.ensure()
    after = endpoint(instance_type="ml.g6.2xlarge")
    from narrate.endpoints.sagemaker_setup import ensure_model_and_config

    ensure_model_and_config(after.sagemaker, after.spec)
    with pytest.raises(Exception, match="must be deregistered as scalable targets"):
        after.sagemaker.update_endpoint(
            EndpointName=after.spec.endpoint_name, EndpointConfigName=after.spec.config_name
        )


def test_explicit_wake_starts_at_once_and_release_goes_to_zero() -> None:
    ep = endpoint()
    ep.ensure()
    ep.scale_down("setup")
    assert wait_for(lambda: variant(ep)["CurrentInstanceCount"] == 0, 5)
    started = time.monotonic()
    ep.wake(30, "render-a")
    woke_after = time.monotonic() - started
    alarm_after = 2 * 60 * TEST_TIME_SCALE
    assert woke_after < alarm_after  # not left to the backlog alarm
    assert woke_after >= TEST_COLD_START_SECONDS * 0.9
    usage = ep.scale_down("render-a")
    assert usage.released and usage.gpu_seconds > 0
    assert usage.cost_usd == pytest.approx(usage.gpu_seconds / 3600 * 1.408, rel=0.01)
    assert wait_for(lambda: variant(ep)["CurrentInstanceCount"] == 0, 5)
    assert variant(ep)["DesiredInstanceCount"] == 0


def test_invoke_gather_and_a_failure_object_with_its_message() -> None:
    ep = endpoint()
    ep.ensure()
    ep.wake(30, "r")
    good = job("good", "Hello there.", "General Kenobi.")
    submission = ep.submit(good, ep.stage(good))
    assert submission.output_location.startswith(f"s3://{ep.settings.bucket}/")
    body = json.loads(ep.fetch(submission, 30))
    assert [s["id"] for s in body["segments"]] == ["s0", "s1"] and all(
        s["num_samples"] > 0 for s in body["segments"]
    )
    bad = job("bad", "x")
    whisper = {"voice": {"mode": "whisper"}, "segments": [{"id": "s0", "text": "x"}]}
    failed = ep.submit(bad, stage_raw(ep, "bad", whisper))
    with pytest.raises(SegmentRejected, match="mode: unknown mode; use one of"):
        ep.fetch(failed, 30)
    request = ep.s3.head_object(Bucket=ep.settings.bucket, Key=f"{ep.settings.s3_prefix}/requests/good.json")
    assert request["ServerSideEncryption"] == "AES256"
    ep.scale_down("r")


def test_a_lease_keeps_the_endpoint_up_for_another_render() -> None:
    ep = endpoint()
    ep.ensure()
    ep.wake(30, "render-a")
    ep.wake(30, "render-b")
    first = ep.scale_down("render-a")
    assert not first.released
    time.sleep(0.3)
    assert variant(ep)["CurrentInstanceCount"] == 1
    assert ep.scale_down("render-b").released
    assert wait_for(lambda: variant(ep)["CurrentInstanceCount"] == 0, 5)


def test_a_failed_endpoint_quotes_its_failure_reason() -> None:
    ep = endpoint()
    ep.ensure()
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends["123456789012"]["us-east-1"]
    fake = backend.endpoints[ep.spec.endpoint_name]
    fake.endpoint_status, fake.failure_reason = "Failed", "CannotStartContainerError: pip install failed"
    with pytest.raises(EndpointError, match="CannotStartContainerError: pip install failed"):
        ep.ensure()


def test_never_waking_is_a_clear_error_and_the_request_survives(embedded_aws: LocalAws) -> None:
    ep = endpoint()
    ep.ensure()
    ep.scale_down("setup")
    assert wait_for(lambda: variant(ep)["CurrentInstanceCount"] == 0, 5)
    assert embedded_aws.emulator is not None
    embedded_aws.emulator.withhold_capacity(True)
    queued = job("queued", "Still here later.")
    submission = ep.submit(queued, ep.stage(queued))
    try:
        with pytest.raises(EndpointError, match="has no instance after 1 s"):
            ep.wake(1, "r")
    finally:
        embedded_aws.emulator.withhold_capacity(False)
    ep.wake(30, "r")
    assert json.loads(ep.fetch(submission, 30))["segments"][0]["num_samples"] > 0
    ep.scale_down("r")


def test_boto3_reaches_the_embedded_aws_only_through_standard_variables(embedded_aws: LocalAws) -> None:
    import os

    assert os.environ["AWS_ENDPOINT_URL"] == embedded_aws.url
    assert boto3.client("s3").meta.endpoint_url == embedded_aws.url
    settings = Settings()
    assert settings.instance_type == "ml.g5.xlarge"


class RecordingS3:
    """The S3 API at the boundary narrate cannot reach from here: real AWS over HTTPS."""

    def __init__(self) -> None:
        self.meta = type("Meta", (), {"endpoint_url": "https://s3.eu-west-1.amazonaws.com"})()
        self.calls: dict[str, dict] = {}

    def list_objects_v2(self, **kwargs: object) -> None:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "NoSuchBucket"}}, "ListObjectsV2")

    def __getattr__(self, name: str) -> object:
        return lambda **kwargs: self.calls.__setitem__(name, kwargs)


def test_a_created_bucket_refuses_requests_without_tls() -> None:
    from narrate.endpoints.sagemaker_setup import BucketSpec, ensure_bucket

    s3 = RecordingS3()
    tags = [{"Key": "project", "Value": "narrate"}]
    assert ensure_bucket(
        s3, BucketSpec("narrate-prod", "narrate", "eu-west-1", "arn:aws:kms:eu-west-1:1:key/k", tags)
    )
    assert s3.calls["create_bucket"]["CreateBucketConfiguration"] == {"LocationConstraint": "eu-west-1"}
    assert all(s3.calls["put_public_access_block"]["PublicAccessBlockConfiguration"].values())
    rule = s3.calls["put_bucket_encryption"]["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    (deny,) = json.loads(s3.calls["put_bucket_policy"]["Policy"])["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == ["arn:aws:s3:::narrate-prod", "arn:aws:s3:::narrate-prod/*"]


def test_a_request_left_queued_is_adopted_by_a_later_run_until_collected(embedded_aws: LocalAws) -> None:
    ep = endpoint()
    ep.ensure()
    left = job("left-behind", "Nobody collected me.", "Nor me.")
    submission = ep.submit(left, ep.stage(left))  # ... and the run that submitted it dies here
    later = endpoint()  # another run, another process: it knows only what S3 says
    assert later.queued({"unrelated"}) == []
    [(adopted, adopted_job)] = later.queued({"k"})
    assert adopted == submission and adopted_job.segment_ids == ("s0", "s1")
    assert adopted_job.text_of("s1") == "Nor me."
    ep.wake(30, "r")
    assert json.loads(later.fetch(adopted, 30))["segments"][0]["num_samples"] > 0
    assert later.queued({"k"}) != []  # read but not yet cached: a crash here must not lose it
    later.forget(adopted)  # what gather-outputs does once the clips are in the cache
    assert later.queued({"k"}) == []
    stale = job("stale", "Too old.")
    ep.submit(stale, ep.stage(stale))
    key = f"{ep.settings.s3_prefix}/queued/{ep.spec.endpoint_name}/stale.json"
    record = json.loads(ep.s3.get_object(Bucket=ep.settings.bucket, Key=key)["Body"].read())
    record["expires_at"] = time.time() - 1  # past its TTL and timeout: the endpoint can no longer run it
    ep.s3.put_object(Bucket=ep.settings.bucket, Key=key, Body=json.dumps(record).encode())
    assert later.queued({"k"}) == []
    assert "Contents" not in ep.s3.list_objects_v2(Bucket=ep.settings.bucket, Prefix=key)  # dropped
    ep.scale_down("r")
