"""A SageMaker endpoint woken to several instances, against the embedded AWS: each instance takes
requests, one scale-down releases them all, and a render that lets go never takes instances away from
another that still holds the endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from model_server.protocol import BatchRequest, DevVoiceRequest, SegmentRequest
from narrate.aws.local import AsyncEndpointEmulator, LocalAws
from narrate.endpoints import SynthesisJob
from narrate.endpoints.sagemaker import SageMakerEndpoint
from narrate.settings import get_settings
from tests.conftest import wait_for


@pytest.fixture
def emulator(embedded_aws: LocalAws) -> Iterator[AsyncEndpointEmulator]:
    """The session's emulator, each request taking 0.3 s so that requests overlap (restored after)."""
    assert embedded_aws.emulator is not None
    embedded_aws.emulator.set_invocation_seconds(0.3)
    try:
        yield embedded_aws.emulator
    finally:
        embedded_aws.emulator.set_invocation_seconds(0.0)


def endpoint(**overrides: Any) -> SageMakerEndpoint:
    return SageMakerEndpoint(get_settings().model_copy(update=overrides))


def job(request_id: str) -> SynthesisJob:
    segments = [SegmentRequest(id="a", text="One of several requests.")]
    return SynthesisJob(request_id, BatchRequest(voice=DevVoiceRequest(mode="dev"), segments=segments))


def current(ep: SageMakerEndpoint) -> int:
    description = ep.sagemaker.describe_endpoint(EndpointName=ep.spec.endpoint_name)
    return int(description["ProductionVariants"][0]["CurrentInstanceCount"])


def min_capacity(ep: SageMakerEndpoint) -> int:
    targets = ep.autoscaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[ep.spec.resource_id]
    )["ScalableTargets"]
    return int(targets[0]["MinCapacity"])


def at_zero(ep: SageMakerEndpoint) -> None:
    """Created (with its first instance, held by "setup" as a render's would be), then at zero."""
    ep.ensure("setup")
    ep.wake(30, "setup")
    ep.scale_down("setup")
    assert wait_for(lambda: current(ep) == 0, 5)


def run_jobs(ep: SageMakerEndpoint, count: int) -> None:
    submissions = [
        ep.submit(j, ep.stage(j)) for j in (job(f"{ep.spec.endpoint_name}-{i}") for i in range(count))
    ]
    for submission in submissions:
        assert ep.fetch(submission, 30)


def instances_that_served(emulator: AsyncEndpointEmulator, ep: SageMakerEndpoint) -> set[str]:
    return {
        instance for (name, instance), count in emulator.served_by.items() if name == ep.spec.endpoint_name
    }


def test_a_wake_for_three_starts_three_each_takes_requests_and_one_release_takes_all(
    emulator: AsyncEndpointEmulator,
) -> None:
    ep = endpoint(max_instances=3)
    at_zero(ep)
    before = emulator.instance_seconds(ep.spec.endpoint_name)
    ep.wake(30, "render", instances=3)
    assert min_capacity(ep) == 3
    assert wait_for(lambda: current(ep) == 3, 5)
    run_jobs(ep, 6)
    assert len(instances_that_served(emulator, ep)) == 3
    usage = ep.scale_down("render")
    assert usage.released and usage.instances == 3
    assert wait_for(lambda: current(ep) == 0, 1)  # the next tick or two: all of them at once
    billed = emulator.instance_seconds(ep.spec.endpoint_name) - before
    assert usage.gpu_seconds == pytest.approx(billed, rel=0.2)  # each of the three, launch to release
    assert (min_capacity(ep), emulator.launches[ep.spec.endpoint_name]) == (0, 4)  # setup's + three


def test_a_wake_never_asks_beyond_max_instances() -> None:
    ep = endpoint(max_instances=2)
    at_zero(ep)
    ep.wake(30, "render", instances=5)
    assert min_capacity(ep) == 2
    assert ep.scale_down("render").instances == 2


def test_a_render_that_lets_go_leaves_another_its_instances_and_the_last_releases_all(
    emulator: AsyncEndpointEmulator,
) -> None:
    ep = endpoint(max_instances=2)
    at_zero(ep)
    ep.wake(30, "big", instances=2)
    ep.wake(30, "small", instances=1)
    assert min_capacity(ep) == 2  # the second wake does not lower the first one's
    assert sorted(ep.hold.active_leases().values()) == [1, 2]
    assert wait_for(lambda: current(ep) == 2, 5)
    big = ep.scale_down("big")
    assert not big.released and big.instances == 2
    assert min_capacity(ep) == 1  # only what the render still holding asked for
    assert current(ep) == 2  # nothing taken away: the surplus is target tracking's, once idle
    run_jobs(ep, 2)  # the render still holding is served
    assert ep.scale_down("small").released
    assert wait_for(lambda: current(ep) == 0, 1)


def test_the_instance_time_shown_while_a_fan_out_runs_counts_each_instance(tmp_path: Path) -> None:
    from narrate.aws.pricing import HourlyPrice
    from narrate.cli.progress import stage_text
    from tests.narrate.test_manifest import manifest

    record = manifest(tmp_path)
    record.held_since, record.instances = 100.0, 3
    assert "GPU ≈ 30 s held so far, ≈ $0.0300" in stage_text(record, HourlyPrice(3.6, "test"), now=110.0)
