"""Sizing a render's fan-out: the instances its work is worth, and batches that keep each one busy."""

from __future__ import annotations

import math

import pytest

from narrate.endpoints.capacity import (
    COLD_STARTS_OF_WORK_PER_INSTANCE,
    REAL_COLD_START_SECONDS,
    Capacity,
    expected_cold_start_seconds,
    size_fan_out,
)
from narrate.settings import Settings


def capacity(max_instances: int = 4, cold_start: float = 60.0, batch_size: int = 8) -> Capacity:
    return Capacity(throughput=10.0, cold_start_seconds=cold_start, max_instances=max_instances,
                    batch_size=batch_size)  # fmt: skip


def speech_for_work(work_seconds: float) -> float:
    return work_seconds * 10.0  # at the throughput above


def test_work_below_ten_cold_starts_a_second_instance_stays_on_one() -> None:
    # two instances need 2 x 10 cold starts of work: 1,199 s of it at a 60 s cold start is not enough
    fan_out = size_fan_out(speech_for_work(1199), segments=1000, capacity=capacity())
    assert (fan_out.instances, fan_out.batch_size) == (1, 8)
    assert fan_out.work_seconds == pytest.approx(1199)


@pytest.mark.parametrize(("work", "instances"), [(1200, 2), (1799, 2), (1800, 3), (2400, 4), (10**6, 4)])
def test_each_instance_gets_ten_cold_starts_of_work_up_to_max_instances(work: float, instances: int) -> None:
    assert size_fan_out(speech_for_work(work), segments=1000, capacity=capacity()).instances == instances


def test_the_instance_time_of_a_fan_out_stays_within_a_tenth_of_one_instance() -> None:
    """What the rule is for: N cold starts plus the work, against one cold start plus the work."""
    cold = 60.0
    for work in range(600, 20000, 150):
        n = size_fan_out(speech_for_work(work), 10**5, capacity(max_instances=20, cold_start=cold)).instances
        assert (n * cold + work) / (cold + work) <= 1 + 1 / COLD_STARTS_OF_WORK_PER_INSTANCE


def test_max_instances_caps_it_and_one_is_one() -> None:
    assert size_fan_out(speech_for_work(10**6), 1000, capacity(max_instances=1)).instances == 1
    assert size_fan_out(speech_for_work(10**6), 1000, capacity(max_instances=3)).instances == 3


def test_no_cold_start_means_every_instance_allowed() -> None:
    assert size_fan_out(1.0, 1000, capacity(cold_start=0)).instances == 4


def test_never_more_instances_than_segments_and_every_instance_gets_a_request() -> None:
    for segments in range(1, 40):
        fan_out = size_fan_out(speech_for_work(10**6), segments, capacity(max_instances=4, batch_size=8))
        requests = math.ceil(segments / fan_out.batch_size)
        assert fan_out.instances == min(4, segments)
        assert requests >= fan_out.instances, (segments, fan_out)
        assert 1 <= fan_out.batch_size <= 8


def test_one_instance_keeps_the_configured_batch() -> None:
    """On a GPU a batch costs about what one segment does: one instance gets no smaller batches."""
    assert size_fan_out(30.0, 20, capacity(max_instances=1, batch_size=8)).batch_size == 8
    assert size_fan_out(3.0, 5, capacity(max_instances=1, batch_size=8)).batch_size == 5


def test_a_fan_out_without_segments_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one segment"):
        size_fan_out(0.0, 0, capacity())


def test_the_cold_start_it_weighs_follows_the_mode_unless_set() -> None:
    local = Settings(aws="local", local_cold_start_seconds=7.5)
    assert expected_cold_start_seconds(local) == 7.5
    assert expected_cold_start_seconds(Settings(aws="real")) == REAL_COLD_START_SECONDS
    assert expected_cold_start_seconds(Settings(aws="real", cold_start_seconds=95)) == 95
    assert Capacity.from_settings(Settings(max_instances=5), fans_out=False).max_instances == 1
    assert Capacity.from_settings(Settings(max_instances=5)).max_instances == 5
