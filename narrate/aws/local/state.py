"""What the local async endpoint keeps per endpoint: its simulated instances, its queue of requests,
and what its autoscaling rules remember."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from narrate.aws.local.autoscaling import ScalingMemory


@dataclass
class SimRequest:
    inference_id: str
    input_location: str
    content_type: str
    accept: str
    output_location: str
    failure_location: str
    enqueued_at: float
    ttl_seconds: float
    invocation_timeout_seconds: float


@dataclass
class SimInstance:
    instance_id: str
    launched_at: float
    ready_at: float
    model: Any = None  # None while started: model_fn failed, and the next request loads again
    started: bool = False  # its container is up and answers /ping
    busy: int = 0
    retiring: bool = False

    def in_service(self, now: float) -> bool:
        return self.started and now >= self.ready_at


@dataclass
class SimEndpoint:
    name: str
    moto_endpoint: Any
    backend: Any
    instances: list[SimInstance] = field(default_factory=list)
    queue: deque[SimRequest] = field(default_factory=deque)
    in_flight: int = 0
    created: bool = True  # still creating its first instance
    scaling: ScalingMemory = field(default_factory=ScalingMemory)
    container_failing: bool = False  # its container failed to start: no more launches (as AWS gives up)

    @property
    def variant(self) -> dict[str, Any]:
        return self.moto_endpoint.production_variants[0]

    @property
    def config(self) -> dict[str, Any]:
        return self.backend.describe_endpoint_config(self.moto_endpoint.endpoint_config_name)

    @property
    def deleted(self) -> bool:
        """Deleted in moto, or replaced there by a new endpoint of the same name."""
        return self.moto_endpoint is not self.backend.endpoints.get(self.name)

    @property
    def slots_per_instance(self) -> int:
        client = self.config.get("AsyncInferenceConfig", {}).get("ClientConfig", {})
        return int(client.get("MaxConcurrentInvocationsPerInstance", 1))
