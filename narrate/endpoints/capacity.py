"""How many instances a render's work is worth, and how its requests are cut so each instance is busy.

A render's work is its expected speech divided by what one instance makes of it a second (its
throughput, ``NARRATE_INSTANCE_THROUGHPUT``). Every instance added costs one more cold start of
instance time, so an instance is added only while each one gets at least
:data:`COLD_STARTS_OF_WORK_PER_INSTANCE` cold starts of work: then the fan-out costs at most about a
tenth more instance time than one instance would, and the synthesis takes about 1/N of the time.
``NARRATE_MAX_INSTANCES`` (the autoscaling MaxCapacity) caps it. With N instances the requests are cut
so there are at least N of them; one instance keeps the configured batch size (on a GPU a batch costs
about what one segment does, so smaller batches only cost more).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from narrate.settings import Settings

# Each instance's share of the work, in its own cold starts: 10 keeps the instance time of a fan-out
# within about 10 % of one instance's (N cold starts instead of one, against N x 10 of work).
COLD_STARTS_OF_WORK_PER_INSTANCE = 10
# A scale-from-zero start against real AWS when NARRATE_COLD_START_SECONDS is unset: community reports
# give 1-3 minutes on ml.g5.xlarge for a small model; the container adds its requirements install and
# the load of two 1.7B checkpoints. An estimate, not a measurement: `narrate endpoint wake` logs one.
REAL_COLD_START_SECONDS = 240.0


@dataclass(frozen=True)
class Capacity:
    """What the sizing weighs the work against: one instance's throughput and cold start, the most
    instances the endpoint may have, and the configured batch size."""

    throughput: float  # seconds of speech one instance synthesises per second
    cold_start_seconds: float
    max_instances: int
    batch_size: int

    @classmethod
    def from_settings(cls, settings: Settings, fans_out: bool = True) -> Capacity:
        """The settings' capacity; ``fans_out`` False for endpoints with no instances to add (one)."""
        return cls(
            throughput=settings.instance_throughput,
            cold_start_seconds=expected_cold_start_seconds(settings),
            max_instances=settings.max_instances if fans_out else 1,
            batch_size=settings.batch_size,
        )


@dataclass(frozen=True)
class FanOut:
    """The instances a render asks for, and the batch size that gives each of them requests."""

    instances: int
    batch_size: int
    speech_seconds: float  # expected
    work_seconds: float  # expected instance time of the synthesis alone

    def describe(self) -> str:
        return (
            f"{self.instances} instance(s) for about {self.speech_seconds:.0f} s of speech "
            f"({self.work_seconds:.0f} s of instance time), batches of up to {self.batch_size}"
        )


def expected_cold_start_seconds(settings: Settings) -> float:
    """NARRATE_COLD_START_SECONDS; else the embedded AWS's own in local mode, the estimate with real AWS."""
    if settings.cold_start_seconds is not None:
        return settings.cold_start_seconds
    return settings.local_cold_start_seconds if settings.aws == "local" else REAL_COLD_START_SECONDS


def instances_worth(work_seconds: float, capacity: Capacity) -> int:
    """The most instances that each get COLD_STARTS_OF_WORK_PER_INSTANCE cold starts of the work, at
    least one and at most max_instances."""
    if capacity.cold_start_seconds <= 0:
        return capacity.max_instances
    worth = math.floor(work_seconds / (COLD_STARTS_OF_WORK_PER_INSTANCE * capacity.cold_start_seconds))
    return max(1, min(capacity.max_instances, worth))


def size_fan_out(speech_seconds: float, segments: int, capacity: Capacity) -> FanOut:
    """The fan-out of ``segments`` segments expected to speak ``speech_seconds``: never more instances
    than segments, and batches small enough that every instance gets a request."""
    if segments < 1:
        raise ValueError("a fan-out needs at least one segment")
    work = speech_seconds / capacity.throughput
    instances = min(instances_worth(work, capacity), segments)
    batch = min(capacity.batch_size, segments // instances)  # so at least ``instances`` requests
    return FanOut(instances, batch, round(speech_seconds, 2), round(work, 2))
