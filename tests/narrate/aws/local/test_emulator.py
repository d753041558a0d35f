"""The local async endpoint in its own right: the scale-from-zero rules, concurrency, expiry, SNS."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from model_server.protocol import BatchRequest, DevVoiceRequest, SegmentRequest
from narrate.aws.local import LocalAws
from narrate.endpoints import SynthesisJob
from narrate.endpoints.sagemaker import SageMakerEndpoint
from narrate.endpoints.sagemaker_setup import DIMENSION
from narrate.settings import get_settings
from tests.conftest import TEST_COLD_START_SECONDS, TEST_TIME_SCALE, wait_for

pytestmark = pytest.mark.usefixtures("embedded_aws")
ALARM_SECONDS = 2 * 60 * TEST_TIME_SCALE  # two 60 s evaluation periods, scaled


def endpoint(**overrides: Any) -> SageMakerEndpoint:
    return SageMakerEndpoint(get_settings().model_copy(update=overrides))


def job(request_id: str, text: str = "Hello from the queue.") -> SynthesisJob:
    request = BatchRequest(voice=DevVoiceRequest(mode="dev"), segments=[SegmentRequest(id="a", text=text)])
    return SynthesisJob(request_id, request)


def at_zero(ep: SageMakerEndpoint) -> None:
    ep.ensure()
    ep.scale_down("setup")
    assert wait_for(lambda: current(ep) == 0, 5)


def current(ep: SageMakerEndpoint) -> int:
    description = ep.sagemaker.describe_endpoint(EndpointName=ep.spec.endpoint_name)
    return int(description["ProductionVariants"][0]["CurrentInstanceCount"])


def exists(ep: SageMakerEndpoint, location: str) -> bool:
    return ep.read_if_exists(location) is not None


def test_target_tracking_alone_leaves_a_single_request_queued_at_zero(embedded_aws: LocalAws) -> None:
    """The reference pipeline's trap, reproduced: backlog 1 never exceeds the target of 2."""
    ep = endpoint()
    at_zero(ep)
    ep.cloudwatch.delete_alarms(AlarmNames=[f"{ep.spec.endpoint_name}-HasBacklogWithoutCapacity"])
    ep.autoscaling.delete_scaling_policy(
        PolicyName=f"{ep.spec.endpoint_name}-HasBacklogWithoutCapacity-ScalingPolicy",
        ServiceNamespace="sagemaker", ResourceId=ep.spec.resource_id, ScalableDimension=DIMENSION,
    )  # fmt: skip
    one = job("lonely")
    submission = ep.submit(one, ep.stage(one))
    time.sleep(ALARM_SECONDS * 2 + TEST_COLD_START_SECONDS)
    assert current(ep) == 0 and not exists(ep, submission.output_location)
    assert embedded_aws.emulator is not None
    assert embedded_aws.emulator.inspect(ep.spec.endpoint_name)["queued"] == 1
    ep.wake(30, "rescue")  # the explicit wake still serves it
    assert json.loads(ep.fetch(submission, 30))["segments"][0]["num_samples"] > 0
    ep.scale_down("rescue")


def test_the_backlog_alarm_wakes_an_endpoint_at_zero_for_one_request() -> None:
    """With the project's policies a request wakes the endpoint even if no flow is there."""
    ep = endpoint()
    at_zero(ep)
    one = job("alone")
    submitted = time.monotonic()
    submission = ep.submit(one, ep.stage(one))
    assert json.loads(ep.fetch(submission, 30))["segments"][0]["num_samples"] > 0
    waited = time.monotonic() - submitted
    assert waited >= ALARM_SECONDS + TEST_COLD_START_SECONDS * 0.9  # after the alarm, not at once


def test_target_tracking_scales_in_after_its_cooldown() -> None:
    ep = endpoint()
    at_zero(ep)
    one = job("alone")
    ep.fetch(ep.submit(one, ep.stage(one)), 30)  # woken by the alarm; MinCapacity stays 0
    assert current(ep) == 1
    scale_in_seconds = 300 * TEST_TIME_SCALE
    assert wait_for(lambda: current(ep) == 0, scale_in_seconds + 3)


def test_max_concurrent_invocations_per_instance_holds(embedded_aws: LocalAws) -> None:
    assert embedded_aws.emulator is not None
    ep = endpoint(max_concurrent_invocations=1)
    ep.ensure()
    ep.wake(30, "r")
    submissions = []
    for i in range(4):
        request = job(f"c{i}", "A sentence long enough to take a little while to speak. " * 3)
        submissions.append(ep.submit(request, ep.stage(request)))
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(embedded_aws.emulator.inspect(ep.spec.endpoint_name)["in_flight"])  # type: ignore[union-attr]
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    for submission in submissions:
        ep.fetch(submission, 30)
    stop.set()
    watcher.join()
    assert max(seen) == 1
    ep.scale_down("r")


def test_request_ttl_expires_to_the_failure_path(embedded_aws: LocalAws) -> None:
    assert embedded_aws.emulator is not None
    ep = endpoint(request_ttl_seconds=60)  # 60 s scaled: 1.2 s
    at_zero(ep)
    embedded_aws.emulator.withhold_capacity(True)
    try:
        late = job("late")
        submission = ep.submit(late, ep.stage(late))
        assert wait_for(lambda: exists(ep, submission.failure_location), 5)
    finally:
        embedded_aws.emulator.withhold_capacity(False)
    body = json.loads(ep.read_if_exists(submission.failure_location) or b"{}")
    assert body["code"] == 400 and "TTL expired" in body["message"]


def test_success_and_error_notifications_reach_an_sqs_subscriber(embedded_aws: LocalAws) -> None:
    import boto3

    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="narrate-done")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="narrate-done")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )
    ep = endpoint(success_topic_arn=topic, error_topic_arn=topic)
    ep.ensure()
    ep.wake(30, "r")
    ok = job("notified")
    ep.fetch(ep.submit(ok, ep.stage(ok)), 30)
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2)["Messages"]
    events = [json.loads(m["Body"]) for m in messages]
    assert any(e["inferenceId"] == "notified" and e["invocationStatus"] == "Completed" for e in events)
    ep.scale_down("r")


def test_invocation_timeout_goes_to_the_failure_path(embedded_aws: LocalAws) -> None:
    assert embedded_aws.emulator is not None
    ep = endpoint(invocation_timeout_seconds=10)  # 10 s scaled: 0.2 s
    ep.ensure()
    ep.wake(30, "r")
    embedded_aws.emulator.set_invocation_seconds(1.0)
    try:
        slow = job("slow")
        submission = ep.submit(slow, ep.stage(slow))
        assert wait_for(lambda: exists(ep, submission.failure_location), 5)
    finally:
        embedded_aws.emulator.set_invocation_seconds(0.0)
    body = json.loads(ep.read_if_exists(submission.failure_location) or b"{}")
    assert body["code"] == 500 and "timed out" in body["message"]
    ep.scale_down("r")


def test_instance_seconds_grow_while_an_instance_lives_and_stop_at_its_release(
    embedded_aws: LocalAws,
) -> None:
    emulator = embedded_aws.emulator
    assert emulator is not None
    ep = endpoint()
    at_zero(ep)
    name = ep.spec.endpoint_name
    before = emulator.instance_seconds(name)
    ep.wake(30, "r")  # in service only after the cold start, which counts
    awake = emulator.instance_seconds(name)
    assert awake - before >= TEST_COLD_START_SECONDS
    assert wait_for(lambda: emulator.instance_seconds(name) > awake, 5)
    ep.scale_down("r")
    assert wait_for(lambda: emulator.inspect(name)["instances"] == 0, 5)
    released = emulator.instance_seconds(name)
    time.sleep(0.05)
    assert emulator.instance_seconds(name) == released


def test_a_freed_slot_takes_the_next_queued_request_without_waiting_for_a_tick(
    embedded_aws: LocalAws,
) -> None:
    """As SageMaker's queue: dispatch is not held up by the autoscaling reads of the next tick."""
    emulator = embedded_aws.emulator
    assert emulator is not None
    ep = endpoint()
    at_zero(ep)
    name = ep.spec.endpoint_name
    ep.wake(30, "r")  # one instance, two requests at a time (the default)
    emulator.set_invocation_seconds(1.0)
    try:
        jobs = [job(f"slot-{i}") for i in range(3)]
        submissions = [ep.submit(j, ep.stage(j)) for j in jobs]
        two_running_one_queued = {"in_flight": 2, "queued": 1}
        assert wait_for(lambda: two_running_one_queued.items() <= emulator.inspect(name).items(), 5)
        emulator.tick = lambda: None  # type: ignore[method-assign]  # no tick from here on
        assert wait_for(lambda: exists(ep, submissions[2].output_location), 5)
    finally:
        del emulator.tick  # the class's own again
        emulator.set_invocation_seconds(0.0)
    ep.scale_down("r")


def test_a_request_that_could_write_nothing_is_logged(
    embedded_aws: LocalAws, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = embedded_aws.emulator
    assert emulator is not None
    ep = endpoint()
    ep.ensure()
    ep.wake(30, "r")

    def unwritable(location: str, body: bytes) -> None:
        raise ConnectionError(f"S3 unreachable for {location}")

    emulator._put = unwritable  # type: ignore[method-assign]
    try:
        lost = job("lost")
        ep.submit(lost, ep.stage(lost))
        assert wait_for(lambda: "request lost ended with nothing written" in caplog.text, 10)
    finally:
        del emulator._put
    ep.scale_down("r")
